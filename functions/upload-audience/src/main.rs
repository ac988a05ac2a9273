use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let services = espbridge_app::aws::services_from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            let deadline = espbridge_app::lambda::deadline(&ev.context);
            Ok::<_, Error>(upload_audience::handle(services, ev.payload, deadline).await)
        },
    ))
    .await
}
