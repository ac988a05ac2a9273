//! The loopback HTTP API: every request is translated into an [`ApiRequest`] and answered by
//! `Services::api`, the same routes API Gateway serves in AWS.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use espbridge_core::service::Services;
use espbridge_core::service::api::ApiRequest;
use std::collections::BTreeMap;

/// The router: one fallback handler, since routing is the service's.
pub fn router(services: Services) -> Router {
    Router::new().fallback(handle).with_state(services)
}

/// The request as the service sees it (query decoded; later duplicates win).
pub fn to_api_request(method: &Method, uri: &Uri, body: &[u8]) -> ApiRequest {
    let query: BTreeMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    ApiRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query,
        body: (!body.is_empty()).then(|| body.to_vec()),
    }
}

async fn handle(
    State(services): State<Services>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let req = to_api_request(&method, &uri, &body);
    let resp = services.api(&req).await;
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    tracing::info!(method = %method, path = %uri.path(), status = resp.status, "api request");
    (
        status,
        [(header::CONTENT_TYPE, resp.content_type)],
        resp.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded_and_empty_body_is_none() {
        let uri: Uri = "/templates?esp=emarsys&prefix=optimove%5F&account=a+b"
            .parse()
            .unwrap();
        let r = to_api_request(&Method::GET, &uri, b"");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/templates");
        assert_eq!(r.query.get("prefix").map(String::as_str), Some("optimove_"));
        assert_eq!(r.query.get("account").map(String::as_str), Some("a b"));
        assert!(r.body.is_none());
        let r = to_api_request(&Method::POST, &"/campaigns/x".parse().unwrap(), b"{}");
        assert_eq!(r.body.as_deref(), Some(&b"{}"[..]));
        assert!(r.query.is_empty());
    }
}
