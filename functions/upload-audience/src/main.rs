use espbridge_app::aws::Bootstrap;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let upload = Bootstrap::from_env().await.upload().await?;
    let upload = &upload;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            let deadline = espbridge_app::lambda::deadline(&ev.context);
            Ok::<_, Error>(upload_audience::handle(upload, ev.payload, deadline).await)
        },
    ))
    .await
}
