//! list-templates: the HTTP API behind API Gateway (HTTP API, payload format 2.0, IAM auth).
//! Translates the request to the domain's `ApiRequest` and the answer back; every route lives
//! in `espbridge_core::service::api`.

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
use espbridge_core::service::Services;
use espbridge_core::service::api::ApiRequest;
use std::collections::BTreeMap;

pub async fn handle(services: &Services, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let path = req
        .raw_path
        .clone()
        .or_else(|| req.request_context.http.path.clone())
        .unwrap_or_default();
    // A named stage prefixes raw paths with `/<stage>`.
    let path = match &req.request_context.stage {
        Some(stage) if stage != "$default" => path
            .strip_prefix(&format!("/{stage}"))
            .map(str::to_owned)
            .unwrap_or(path),
        _ => path,
    };
    let query: BTreeMap<String, String> = req
        .raw_query_string
        .as_deref()
        .map(url_decode_pairs)
        .unwrap_or_default();
    let body = match decode_body(req.body.as_deref(), req.is_base64_encoded) {
        Ok(b) => b,
        Err(e) => return respond(400, "application/json", bad_body(&e)),
    };
    let api_req = ApiRequest {
        method: req.request_context.http.method.to_string(),
        path,
        query,
        body,
    };
    let out = services.api(&api_req).await;
    respond(out.status, out.content_type, out.body)
}

fn respond(status: u16, content_type: &'static str, body: String) -> ApiGatewayV2httpResponse {
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(status);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers = headers;
    resp.body = Some(Body::Text(body));
    resp
}

/// API Gateway base64-encodes bodies it does not take for text (e.g. no or a binary content type).
fn decode_body(body: Option<&str>, base64_encoded: bool) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine as _;
    match body {
        None => Ok(None),
        Some(b) if base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(Some)
            .map_err(|e| format!("body is marked base64 but does not decode: {e}")),
        Some(b) => Ok(Some(b.as_bytes().to_vec())),
    }
}

fn bad_body(problem: &str) -> String {
    serde_json::json!({"error": {"code": "bad_request", "message": problem}}).to_string()
}

/// `application/x-www-form-urlencoded` pairs, as API Gateway passes the raw query string.
fn url_decode_pairs(q: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_bodies_are_decoded() {
        assert_eq!(
            super::decode_body(Some("eyJhIjoxfQ=="), true).unwrap(),
            Some(br#"{"a":1}"#.to_vec())
        );
        assert_eq!(
            super::decode_body(Some("{}"), false).unwrap(),
            Some(b"{}".to_vec())
        );
        assert!(super::decode_body(Some("%%%"), true).is_err());
        assert_eq!(super::decode_body(None, true).unwrap(), None);
    }

    #[test]
    fn query_strings_are_decoded() {
        let q = super::url_decode_pairs("esp=emarsys&prefix=spring%20sale&x=a+b&flag");
        assert_eq!(q["esp"], "emarsys");
        assert_eq!(q["prefix"], "spring sale");
        assert_eq!(q["x"], "a b");
        assert_eq!(q["flag"], "");
    }
}
