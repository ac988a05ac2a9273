use espbridge_app::aws::Bootstrap;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let schedule = Bootstrap::from_env().await.schedule().await?;
    let schedule = &schedule;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, Error>(schedule_send::handle(schedule, ev.payload).await)
        },
    ))
    .await
}
