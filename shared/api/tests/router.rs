//! The router's translation: paths, query strings and bodies in; status codes, content types
//! and error bodies out. The use cases behind it run on the core testkit's in-memory store and
//! ESP double.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use espbridge_core::ids::AccountId;
use espbridge_core::ports::SenderHeaders;
use espbridge_core::service::{ApiService, EspRegistry};
use espbridge_core::testkit::{FakeEsp, MemStore};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

fn api(headers: bool) -> ApiService {
    let esp = FakeEsp {
        account: Some(AccountId::parse("default").unwrap()),
        headers: headers.then(|| SenderHeaders {
            from_email: "news@brand.example".into(),
            from_name: "Brand".into(),
            reply_to: None,
        }),
        ..Default::default()
    };
    ApiService {
        store: Arc::new(MemStore::default()),
        esps: EspRegistry::new(vec![Arc::new(esp)]),
        queue: Arc::new(espbridge_core::testkit::MemQueue::default()),
        scheduler: Arc::new(espbridge_core::testkit::MemScheduler::default()),
        clock: Arc::new(espbridge_core::SystemClock),
    }
}

async fn call(
    api: ApiService,
    method: Method,
    uri: &str,
    body: &str,
) -> (StatusCode, String, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = espbridge_api::router(api).oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = espbridge_api::to_bytes(resp.into_body()).await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, ct, v)
}

#[tokio::test]
async fn headers_routes_map_every_outcome_to_its_status() {
    let path = "/templates/bronto/t1/headers";
    let (s, ct, v) = call(api(true), Method::GET, path, "").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/json"));
    assert_eq!(v["source"], "account_default");

    let bad = r#"{"from_email": "not-an-address", "from_name": " ", "reply_to": "x@"}"#;
    let (s, _, v) = call(api(true), Method::PUT, path, bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_headers");
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["from_email", "reply_to", "from_name"]);

    let (s, _, v) = call(api(true), Method::PUT, path, "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("body:"),
        "{v}"
    );
    let (s, _, v) = call(api(true), Method::PUT, path, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    let good = r#"{"from_email": "sale@brand.example", "from_name": "Brand Sale"}"#;
    let (s, _, _) = call(
        api(true),
        Method::PUT,
        "/templates/bronto/unknown/headers",
        good,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a template the ESP does not have");
    let (s, _, v) = call(api(true), Method::PUT, path, good).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["source"], "template");

    let (s, _, v) = call(api(true), Method::DELETE, path, "").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(v["error"]["code"], "method_not_allowed");
    let (s, _, _) = call(api(false), Method::GET, "/templates/emarsys/t1/headers", "").await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "Emarsys keeps its headers in the message"
    );
}

#[tokio::test]
async fn parameters_are_checked_and_named() {
    let (s, _, v) = call(api(false), Method::GET, "/templates?esp=mailchimp", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("esp:"),
        "{v}"
    );
    let (s, _, v) = call(api(false), Method::GET, "/templates?account=a%20b", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("account:"),
        "{v}"
    );
    let (s, _, v) = call(api(false), Method::GET, "/templates?esp=silverpop", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no such account: {v}");
    let (s, _, v) = call(
        api(false),
        Method::GET,
        "/templates?esp=emarsys&prefix=x",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["templates"], serde_json::json!([]));
    let (s, _, _) = call(
        api(false),
        Method::GET,
        "/templates/mailchimp/t1/preview",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "an unknown ESP in a path");
    let (s, ct, v) = call(api(false), Method::GET, "/templates/emarsys/t1/preview", "").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/json"));
    assert_eq!(v["body"], "<p>hi</p>");
    let (s, ct, _) = call(
        api(false),
        Method::GET,
        "/templates/emarsys/t1/preview?format=html",
        "",
    )
    .await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    let (s, _, _) = call(api(false), Method::GET, "/campaigns/a%20b", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not a campaign id");
    let (s, _, v) = call(api(false), Method::GET, "/campaigns/c1", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["message"], "no campaign c1");
    let (s, _, v) = call(
        api(false),
        Method::GET,
        "/campaigns/c1/report?metric=nope",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("metric:"),
        "{v}"
    );
    let (s, _, v) = call(api(false), Method::GET, "/nowhere", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["message"], "no route /nowhere");
}
