use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let services = espbridge_app::aws::services_from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<serde_json::Value>| async move {
            poll_metrics::handle(services, ev.payload)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
