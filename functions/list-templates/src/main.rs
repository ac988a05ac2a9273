use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let services = espbridge_app::aws::services_from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            Ok::<_, Error>(list_templates::handle(services, ev.payload).await)
        },
    ))
    .await
}
