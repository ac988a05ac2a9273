use espbridge_app::aws::Bootstrap;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sweep = Bootstrap::from_env().await.sweep().await?;
    let sweep = &sweep;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            sweep::handle(sweep).await.map_err(Error::from)
        },
    ))
    .await
}
