//! http-api: the HTTP API behind API Gateway (HTTP API, payload format 2.0, IAM auth).
//! `lambda_http` turns each event into an HTTP request (query string, base64 body) and the
//! shared router ([`espbridge_api::router`]) answers it, as `espbridge serve` does locally.
//! With a named stage, set `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` (the SAM template does) so
//! the routes see paths without the stage.

use espbridge_core::service::ApiService;
use lambda_http::tower::ServiceExt;

/// The function's service: the router over `api`.
pub fn app(api: ApiService) -> espbridge_api::Router {
    espbridge_api::router(api)
}

/// Answers one API Gateway event (its JSON) as the function would: status, content type and
/// body. For tests driving the function with real event JSON.
pub async fn answer_event(
    api: ApiService,
    event_json: &str,
) -> Result<(u16, String, Vec<u8>), lambda_http::Error> {
    let request = lambda_http::request::from_str(event_json)?;
    let response = app(api).oneshot(request).await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(lambda_http::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = axum_body_bytes(response.into_body()).await?;
    Ok((status, content_type, body))
}

async fn axum_body_bytes(body: espbridge_api::Body) -> Result<Vec<u8>, lambda_http::Error> {
    Ok(espbridge_api::to_bytes(body).await?.to_vec())
}
