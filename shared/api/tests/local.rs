//! What the loopback server (`espbridge serve`) adds to the router: only loopback hosts, the
//! optional token, no writes without one; and what every deployment gets: previews sandboxed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use espbridge_api::{LocalGuard, Router, Token};
use espbridge_core::ids::AccountId;
use espbridge_core::ports::SenderHeaders;
use espbridge_core::service::{ApiService, EspRegistry};
use espbridge_core::testkit::{FakeEsp, MemStore};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const HEADERS: &str = "/templates/bronto/t1/headers";
const GOOD: &str = r#"{"from_email": "sale@brand.example", "from_name": "Brand Sale"}"#;

/// A Bronto-like ESP with account default headers, and one template, `t1`.
fn api() -> ApiService {
    let esp = FakeEsp {
        account: Some(AccountId::parse("default").unwrap()),
        headers: Some(SenderHeaders {
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

fn local(api: ApiService, token: Option<&str>) -> Router {
    let bound = "127.0.0.1:8080".parse().unwrap();
    espbridge_api::local_router(
        api,
        LocalGuard::new(Some(bound), token.map(Token::from)).unwrap(),
    )
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

async fn send(
    router: Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = espbridge_api::to_bytes(resp.into_body()).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn foreign_hosts_are_refused_without_being_echoed() {
    for host in [
        "attacker.example",
        "attacker.example:8080",
        "127.0.0.1.attacker.example",
        "localhost.attacker.example:8080",
        "<script>alert(1)</script>",
        "192.168.1.5:8080",
    ] {
        let a = send(
            local(api(), None),
            Method::GET,
            "/templates",
            &[("host", host)],
            "",
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{host}: {}", a.text);
        assert_eq!(a.json["error"]["code"], "host_not_allowed", "{host}");
        assert!(!a.text.contains(host), "the host is not echoed: {}", a.text);
        assert_eq!(header(&a, "content-type"), "application/json");
        assert_eq!(header(&a, "x-content-type-options"), "nosniff");
    }
    // DNS rebinding with the token known changes nothing: the host is checked first.
    let a = send(
        local(api(), Some(TOKEN)),
        Method::PUT,
        HEADERS,
        &[
            ("host", "rebind.attacker.example:8080"),
            ("authorization", &format!("Bearer {TOKEN}")),
            ("content-type", "application/json"),
        ],
        GOOD,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    // No Host at all, two of them, or an absolute target naming another host.
    let a = send(local(api(), None), Method::GET, "/templates", &[], "").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "no Host");
    let two = [("host", "localhost"), ("host", "attacker.example")];
    let a = send(local(api(), None), Method::GET, "/templates", &two, "").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "two Hosts");
    let a = send(
        local(api(), None),
        Method::GET,
        "http://attacker.example/templates",
        &[("host", "localhost")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "absolute-form target");
    // Unknown routes too: nothing is answered for a foreign host.
    let a = send(
        local(api(), None),
        Method::GET,
        "/nope",
        &[("host", "x.example")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn loopback_hosts_are_answered() {
    for host in [
        "localhost",
        "localhost:8080",
        "LocalHost:3000",
        "127.0.0.1",
        "127.0.0.1:8080",
        "[::1]",
        "[::1]:8080",
    ] {
        let a = send(
            local(api(), None),
            Method::GET,
            "/templates",
            &[("host", host)],
            "",
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{host}: {}", a.text);
        assert!(a.json["templates"].is_array(), "{host}");
    }
    let a = send(
        local(api(), None),
        Method::GET,
        "http://localhost:8080/templates",
        &[("host", "localhost:8080")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "absolute-form to loopback");
}

#[tokio::test]
async fn previews_are_sandboxed_locally_and_in_aws() {
    let host = [("host", "localhost:8080")];
    for router in [espbridge_api::router(api()), local(api(), None)] {
        let a = send(
            router.clone(),
            Method::GET,
            "/templates/bronto/t1/preview?format=html",
            &host,
            "",
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.text, "<p>hi</p>");
        assert_eq!(header(&a, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&a, "content-security-policy"), "sandbox");
        assert_eq!(header(&a, "x-content-type-options"), "nosniff");
        // The JSON form and the errors of the route too.
        for uri in [
            "/templates/bronto/t1/preview",
            "/templates/bronto/unknown/preview?format=html",
        ] {
            let a = send(router.clone(), Method::GET, uri, &host, "").await;
            assert_eq!(header(&a, "content-security-policy"), "sandbox", "{uri}");
            assert_eq!(header(&a, "x-content-type-options"), "nosniff", "{uri}");
        }
        // Other answers are the API's own: typed, not sandboxed.
        let a = send(router, Method::GET, "/templates", &host, "").await;
        assert_eq!(header(&a, "x-content-type-options"), "nosniff");
        assert_eq!(header(&a, "content-security-policy"), "");
    }
}

#[tokio::test]
async fn a_configured_token_is_required_on_every_request() {
    let host = ("host", "127.0.0.1:8080");
    let good = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {}x", &TOKEN[..TOKEN.len() - 1]);
    let longer = format!("Bearer {TOKEN}0");
    let basic = format!("Basic {TOKEN}");
    for auth in [
        None,
        Some(wrong.as_str()),
        Some(longer.as_str()),
        Some(basic.as_str()),
        Some("Bearer "),
    ] {
        let mut headers = vec![host];
        headers.extend(auth.map(|a| ("authorization", a)));
        for (method, uri, body) in [
            (Method::GET, "/templates", ""),
            (Method::GET, "/campaigns/c1", ""),
            (Method::GET, "/nope", ""),
            (Method::PUT, HEADERS, GOOD),
        ] {
            let a = send(
                local(api(), Some(TOKEN)),
                method.clone(),
                uri,
                &headers,
                body,
            )
            .await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} {auth:?}"
            );
            assert_eq!(a.json["error"]["code"], "unauthorized");
            assert_eq!(header(&a, "www-authenticate"), "Bearer realm=\"espbridge\"");
            assert!(!a.text.contains(TOKEN), "the token is not echoed");
        }
    }
    let api = api();
    let ok = [host, ("authorization", good.as_str())];
    let a = send(
        local(api.clone(), Some(TOKEN)),
        Method::GET,
        "/templates",
        &ok,
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let lower = format!("bearer {TOKEN}");
    let a = send(
        local(api.clone(), Some(TOKEN)),
        Method::GET,
        HEADERS,
        &[host, ("authorization", &lower)],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "the scheme is case-insensitive");
    assert_eq!(a.json["source"], "account_default");

    // PUT with the token: accepted, and it took.
    let a = send(
        local(api.clone(), Some(TOKEN)),
        Method::PUT,
        HEADERS,
        &ok,
        GOOD,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["source"], "template");
    let a = send(local(api, Some(TOKEN)), Method::GET, HEADERS, &ok, "").await;
    assert_eq!(
        a.json["headers"]["from_email"], "sale@brand.example",
        "{}",
        a.json
    );
}

#[tokio::test]
async fn without_a_token_the_local_api_only_reads() {
    let api = api();
    let host = [("host", "localhost:8080")];
    let a = send(local(api.clone(), None), Method::PUT, HEADERS, &host, GOOD).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.json["error"]["code"], "token_required");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("PUT needs a token: start serve with --token"),
        "{}",
        a.json
    );
    // A bearer header does not help when no token is configured.
    let with = [host[0], ("authorization", "Bearer anything-at-all-1234")];
    let a = send(local(api.clone(), None), Method::PUT, HEADERS, &with, GOOD).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    for method in [Method::POST, Method::DELETE, Method::PATCH] {
        let a = send(
            local(api.clone(), None),
            method.clone(),
            HEADERS,
            &host,
            GOOD,
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method}");
    }
    // Nothing changed; reads are answered.
    let a = send(local(api.clone(), None), Method::GET, HEADERS, &host, "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["source"], "account_default");
    // The router alone (API Gateway, IAM-authorized) takes the PUT.
    let a = send(espbridge_api::router(api), Method::PUT, HEADERS, &[], GOOD).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}
