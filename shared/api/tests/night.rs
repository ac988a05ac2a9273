//! The listing and night-report routes: parameters in, pages and reports out, every bad
//! parameter a 400 naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use espbridge_core::ids::AccountId;
use espbridge_core::ports::{CampaignStore, Created};
use espbridge_core::service::{ApiService, EspRegistry};
use espbridge_core::testkit::{FakeEsp, MemQueue, MemScheduler, MemStore, sample_campaign};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

/// The API over a store holding one night: `c0`..`c4`, every other one failed, and one
/// campaign of the night before.
async fn api() -> ApiService {
    let store = Arc::new(MemStore::default());
    for (id, night) in [
        ("c0", "2026-11-24"),
        ("c1", "2026-11-24"),
        ("c2", "2026-11-24"),
        ("c3", "2026-11-24"),
        ("c4", "2026-11-24"),
        ("before", "2026-11-23"),
    ] {
        let mut c = sample_campaign(id);
        c.run_date = night.to_owned();
        let Created::New(mut c) = store.create_from_drop(&c.drop, &c).await.unwrap() else {
            panic!("new")
        };
        if id.ends_with(['1', '3']) {
            c.fail("schedule", "emarsys: HTTP 400 code 6032", c.updated_at);
            store.save(&c).await.unwrap();
        }
    }
    ApiService {
        store,
        esps: EspRegistry::new(vec![Arc::new(FakeEsp {
            account: Some(AccountId::parse("default").unwrap()),
            ..Default::default()
        })]),
        queue: Arc::new(MemQueue::default()),
        scheduler: Arc::new(MemScheduler::default()),
        clock: Arc::new(espbridge_core::SystemClock),
    }
}

async fn get(api: &ApiService, uri: &str) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = espbridge_api::router(api.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = espbridge_api::to_bytes(resp.into_body()).await.unwrap();
    (status, ct, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn get_json(api: &ApiService, uri: &str) -> (StatusCode, Value) {
    let (s, _, body) = get(api, uri).await;
    (s, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn campaigns_are_listed_page_by_page() {
    let api = api().await;
    let mut uri = "/campaigns?run_date=2026-11-24&limit=2".to_owned();
    let mut seen = Vec::new();
    loop {
        let (s, v) = get_json(&api, &uri).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let page = v["campaigns"].as_array().unwrap();
        assert!(page.len() <= 2);
        for c in page {
            seen.push(c["campaign_id"].as_str().unwrap().to_owned());
            assert_eq!(c["run_date"], "2026-11-24");
            for key in ["esp", "account", "state", "send_at", "audience", "failure"] {
                assert!(c.get(key).is_some(), "{key} in {c}");
            }
        }
        match v["cursor"].as_str() {
            Some(cursor) => uri = format!("/campaigns?run_date=2026-11-24&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["c1", "c3", "c0", "c2", "c4"], "by state, then id");

    let (s, v) = get_json(&api, "/campaigns?state=failed").await;
    assert_eq!(s, StatusCode::OK);
    let failed: Vec<_> = v["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["campaign_id"].as_str().unwrap(),
                c["failure"]["step"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(failed, [("c1", "schedule"), ("c3", "schedule")]);
    assert_eq!(v["cursor"], Value::Null);
    let (_, v) = get_json(&api, "/campaigns?esp=bronto").await;
    assert_eq!(v["campaigns"], serde_json::json!([]));
    let (_, v) = get_json(&api, "/campaigns").await;
    assert_eq!(
        v["campaigns"].as_array().unwrap().len(),
        6,
        "no filter: every night"
    );
}

#[tokio::test]
async fn bad_listing_parameters_are_400s_naming_them() {
    let api = api().await;
    let (_, first) = get_json(&api, "/campaigns?state=received&limit=1").await;
    let foreign = first["cursor"].as_str().unwrap().to_owned();
    for (uri, prefix) in [
        ("/campaigns?run_date=2026-02-30", "run_date:"),
        ("/campaigns?run_date=yesterday", "run_date:"),
        ("/campaigns?state=lost", "state:"),
        ("/campaigns?esp=mailchimp", "esp:"),
        ("/campaigns?account=a%20b", "account:"),
        ("/campaigns?limit=0", "limit:"),
        ("/campaigns?limit=101", "limit:"),
        ("/campaigns?limit=-1", "limit:"),
        ("/campaigns?cursor=abc", "cursor:"),
        (
            &format!("/campaigns?cursor={}", "0".repeat(5000)),
            "cursor:",
        ),
        (
            &format!("/campaigns?state=failed&cursor={foreign}"),
            "cursor:",
        ),
    ] {
        let (s, v) = get_json(&api, uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["error"]["code"], "bad_request");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(prefix), "{uri}: {message}");
    }
    let req = Request::builder()
        .method(Method::POST)
        .uri("/campaigns")
        .body(Body::empty())
        .unwrap();
    let resp = espbridge_api::router(api).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_night_report_answers_json_and_a_page() {
    let api = api().await;
    let (s, v) = get_json(&api, "/runs/2026-11-24/report").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<_> = v["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["campaign_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c1", "c3", "c0", "c2", "c4"], "failures first");
    assert_eq!(v["states"]["failed"], 2);
    assert_eq!(v["states"]["received"], 3);
    assert_eq!(
        v["campaigns"][0]["failure"]["reason"],
        "emarsys: HTTP 400 code 6032"
    );

    let (s, ct, html) = get(&api, "/runs/2026-11-24/report.html").await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(html.contains(r#"data-chart="states""#));
    assert!(html.find("c1").unwrap() < html.find("c0").unwrap());
    assert!(html.contains("emarsys: HTTP 400 code 6032"));

    let (s, v) = get_json(&api, "/runs/2026-11-22/report").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["campaigns"], serde_json::json!([]));
    let (s, v) = get_json(&api, "/runs/not-a-date/report.html").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("run_date:")
    );
}
