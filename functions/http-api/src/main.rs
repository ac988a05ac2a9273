use espbridge_app::aws::Bootstrap;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let api = Bootstrap::from_env().await.api().await?;
    lambda_http::run(http_api::app(api)).await
}
