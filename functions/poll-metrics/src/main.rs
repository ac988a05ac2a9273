use espbridge_app::aws::Bootstrap;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let poll = Bootstrap::from_env().await.poll().await?;
    let poll = &poll;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<serde_json::Value>| async move {
            poll_metrics::handle(poll, ev.payload)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
