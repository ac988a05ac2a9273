//! `POST /campaigns/{id}/cancel` and `/retry`: 200 done, 404 unknown, 409 refused with the
//! reason; on the loopback server they need the token, like every write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use espbridge_api::{LocalGuard, Token};
use espbridge_core::ids::AccountId;
use espbridge_core::ports::CampaignStore;
use espbridge_core::service::{ApiService, EspRegistry};
use espbridge_core::testkit::{FakeEsp, MemQueue, MemScheduler, MemStore, sample_campaign};
use espbridge_core::{ManualClock, State};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// An API whose store holds `c1` (received) and `bad` (failed at its manifest).
async fn api() -> ApiService {
    let store = Arc::new(MemStore::default());
    store
        .create_from_drop(&sample_campaign("c1").drop, &sample_campaign("c1"))
        .await
        .unwrap();
    let mut bad = sample_campaign("bad");
    bad.fail("manifest", "send_at: not a date", bad.created_at);
    store.create_from_drop(&bad.drop, &bad).await.unwrap();
    let esp = FakeEsp {
        account: Some(AccountId::parse("default").unwrap()),
        ..Default::default()
    };
    ApiService {
        store,
        esps: EspRegistry::new(vec![Arc::new(esp)]),
        queue: Arc::new(MemQueue::default()),
        scheduler: Arc::new(MemScheduler::default()),
        clock: Arc::new(ManualClock::new("2026-11-24T03:00:00Z".parse().unwrap())),
    }
}

async fn post(
    router: espbridge_api::Router,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("host", "localhost:8080");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = router
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = espbridge_api::to_bytes(resp.into_body()).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn cancel_and_retry_answer_200_404_and_409_with_the_reason() {
    let api = api().await;
    let router = || espbridge_api::router(api.clone());

    let (s, v) = post(router(), "/campaigns/c1/cancel", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "cancelled");
    assert_eq!(v["already"], false);
    let (s, v) = post(router(), "/campaigns/c1/cancel", None).await;
    assert_eq!((s, &v["already"]), (StatusCode::OK, &Value::Bool(true)));
    let stored = api
        .store
        .get(&espbridge_core::CampaignId::parse("c1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, State::Cancelled);

    let (s, v) = post(router(), "/campaigns/c1/retry", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "not_retryable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{v}"
    );

    let (s, v) = post(router(), "/campaigns/bad/retry", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("manifest"),
        "{v}"
    );
    let (s, v) = post(router(), "/campaigns/bad/cancel", None).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (StatusCode::CONFLICT, &Value::from("not_cancellable"))
    );

    for op in ["cancel", "retry"] {
        let (s, v) = post(router(), &format!("/campaigns/nope/{op}"), None).await;
        assert_eq!(
            (s, &v["error"]["code"]),
            (StatusCode::NOT_FOUND, &Value::from("not_found"))
        );
    }
    let (s, _) = post(router(), "/campaigns/a%20b/cancel", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_loopback_server_wants_its_token_for_both() {
    let api = api().await;
    let bound = "127.0.0.1:8080".parse().unwrap();
    let open =
        || espbridge_api::local_router(api.clone(), LocalGuard::new(Some(bound), None).unwrap());
    for op in ["cancel", "retry"] {
        let (s, v) = post(open(), &format!("/campaigns/c1/{op}"), None).await;
        assert_eq!(
            (s, &v["error"]["code"]),
            (StatusCode::FORBIDDEN, &Value::from("token_required"))
        );
    }
    let guarded = || {
        espbridge_api::local_router(
            api.clone(),
            LocalGuard::new(Some(bound), Some(Token::from(TOKEN))).unwrap(),
        )
    };
    let (s, _) = post(guarded(), "/campaigns/c1/cancel", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = post(guarded(), "/campaigns/c1/cancel", Some(TOKEN)).await;
    assert_eq!(
        (s, &v["state"]),
        (StatusCode::OK, &Value::from("cancelled"))
    );
}
