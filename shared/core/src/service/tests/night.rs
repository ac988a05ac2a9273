//! The campaign listing and the night report on the in-memory store.

use super::world;
use crate::campaign::{MetricSnapshot, RejectSample, State};
use crate::ids::EspKind;
use crate::ports::listing::{CampaignFilter, CursorError, MAX_PAGE, RunDate};
use crate::ports::{CampaignStore, Created, MetricCounts};
use crate::service::ApiError;
use crate::service::night::ListRequest;
use crate::testkit::sample_campaign;

/// A campaign of `night` in `state`, stored.
async fn stored(store: &dyn CampaignStore, id: &str, night: &str, state: State) {
    let mut c = sample_campaign(id);
    c.run_date = night.to_owned();
    c.audience.rows = 1000;
    c.audience.valid = 990;
    c.audience.rejected = 10;
    c.audience
        .rejected_by_reason
        .insert("invalid_email".into(), 10);
    c.audience.reject_samples.push(RejectSample {
        file: "audience.csv".into(),
        line: 7,
        reason: "invalid_email".into(),
    });
    let Created::New(mut c) = store.create_from_drop(&c.drop, &c).await.unwrap() else {
        panic!("new")
    };
    match state {
        State::Received => return,
        State::Failed => c.fail("upload", "emarsys: HTTP 400 code 2008", c.updated_at),
        _ => {
            for s in [
                State::Uploading,
                State::AudienceReady,
                State::Scheduled,
                State::Collecting,
                State::Completed,
            ] {
                c.transition(s, c.updated_at).unwrap();
                c.audience.uploaded = 990;
                if s == state {
                    break;
                }
                c = store.save(&c).await.unwrap();
            }
        }
    }
    store.save(&c).await.unwrap();
}

fn snapshot(day: u32, opens: u64) -> MetricSnapshot {
    MetricSnapshot {
        day,
        taken_at: "2026-11-26T09:00:00Z".parse().unwrap(),
        counts: MetricCounts {
            sent: 990,
            delivered: 900,
            opens,
            clicks: opens / 10,
            unsubscribes: 2,
            bounces: 90,
            complaints: 0,
        },
        by_variant: Default::default(),
    }
}

fn night(d: &str) -> CampaignFilter {
    CampaignFilter {
        run_date: Some(RunDate::parse(d).unwrap()),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_listing_pages_through_cursors_and_refuses_foreign_ones() {
    let w = world();
    let store = w.services.store.as_ref();
    for (id, state) in [
        ("c1", State::Completed),
        ("c2", State::Failed),
        ("c3", State::Received),
        ("c4", State::Failed),
        ("c5", State::Collecting),
    ] {
        stored(store, id, "2026-11-24", state).await;
    }
    stored(store, "other", "2026-11-23", State::Failed).await;
    let api = w.services.api();
    let mut req = ListRequest {
        filter: night("2026-11-24"),
        cursor: None,
        limit: Some(2),
    };
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = api.list_campaigns(&req).await.unwrap();
        pages += 1;
        let json = serde_json::to_value(&page).unwrap();
        assert!(json["campaigns"].as_array().unwrap().len() <= 2);
        for c in json["campaigns"].as_array().unwrap() {
            ids.push(c["campaign_id"].as_str().unwrap().to_owned());
            assert_eq!(c["audience"]["rows"], 1000);
            for field in ["manifest", "drop", "reject_samples", "esp_ids"] {
                assert!(c.get(field).is_none(), "{field} is not listed");
                assert!(c["audience"].get(field).is_none());
            }
        }
        match page.cursor {
            Some(c) => req.cursor = Some(c.as_str().to_owned()),
            None => break,
        }
    }
    assert_eq!(ids, ["c5", "c1", "c2", "c4", "c3"]);
    assert_eq!(pages, 3);

    let first = api
        .list_campaigns(&ListRequest {
            limit: Some(1),
            ..req.clone()
        })
        .await;
    assert!(first.is_ok());
    let failed_only = ListRequest {
        filter: CampaignFilter {
            state: Some(State::Failed),
            ..night("2026-11-24")
        },
        cursor: None,
        limit: Some(1),
    };
    let page = api.list_campaigns(&failed_only).await.unwrap();
    let cursor = page.cursor.unwrap().as_str().to_owned();
    let json = serde_json::to_value(&page.campaigns).unwrap();
    assert_eq!(json[0]["failure"]["reason"], "emarsys: HTTP 400 code 2008");
    let foreign = ListRequest {
        cursor: Some(cursor),
        ..req.clone()
    };
    assert!(matches!(
        api.list_campaigns(&foreign).await,
        Err(ApiError::Cursor(CursorError::OtherFilter))
    ));
    for bad in ["", "nope", &"f".repeat(10_000)] {
        let r = api
            .list_campaigns(&ListRequest {
                cursor: Some(bad.to_owned()),
                ..req.clone()
            })
            .await;
        assert!(matches!(r, Err(ApiError::Cursor(_))), "{bad:.20}: {r:?}");
    }
    for limit in [0, MAX_PAGE + 1] {
        let r = api
            .list_campaigns(&ListRequest {
                limit: Some(limit),
                cursor: None,
                ..req.clone()
            })
            .await;
        assert!(matches!(r, Err(ApiError::InvalidLimit(l)) if l == limit));
    }
    let bronto = ListRequest {
        filter: CampaignFilter {
            esp: Some(EspKind::Bronto),
            ..Default::default()
        },
        cursor: None,
        limit: None,
    };
    assert!(
        api.list_campaigns(&bronto)
            .await
            .unwrap()
            .campaigns
            .is_empty()
    );
}

#[tokio::test]
async fn the_night_report_puts_failures_first_with_the_latest_metrics() {
    let w = world();
    let store = w.services.store.as_ref();
    stored(store, "done", "2026-11-24", State::Completed).await;
    stored(store, "broken", "2026-11-24", State::Failed).await;
    stored(store, "waiting", "2026-11-24", State::Received).await;
    stored(store, "yesterday", "2026-11-23", State::Failed).await;
    let done = crate::ids::CampaignId::parse("done").unwrap();
    store.put_snapshot(&done, &snapshot(1, 300)).await.unwrap();
    store.put_snapshot(&done, &snapshot(3, 450)).await.unwrap();
    store.put_snapshot(&done, &snapshot(2, 400)).await.unwrap();

    let report = w
        .services
        .api()
        .night_report(&RunDate::parse("2026-11-24").unwrap())
        .await
        .unwrap();
    let ids: Vec<_> = report
        .campaigns
        .iter()
        .map(|c| c.campaign_id.as_str())
        .collect();
    assert_eq!(ids, ["broken", "done", "waiting"]);
    assert_eq!(report.states["failed"], 1);
    assert!(!report.truncated);
    let m = report.campaigns[1].metrics.as_ref().expect("polled");
    assert_eq!((m.day, m.opens), (3, 450), "the latest day's counts");
    assert_eq!(m.open_rate.unwrap().value, 0.5);
    assert!(report.campaigns[2].metrics.is_none());
    assert_eq!(report.totals.rejected, 30);
    assert_eq!(report.rejected_by_reason["invalid_email"], 30);
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("audience.csv"), "no reject samples: {json}");
    let html = espbridge_analysis::render_night_html(&report);
    assert!(html.contains("emarsys: HTTP 400 code 2008"));
    let empty = w
        .services
        .api()
        .night_report(&RunDate::parse("2026-01-01").unwrap())
        .await
        .unwrap();
    assert!(empty.campaigns.is_empty());
}

/// The in-memory store the services' tests run on keeps the same contract as the real ones.
#[tokio::test]
async fn the_memory_store_passes_the_store_contract() {
    crate::testkit::run_store_contract(&crate::testkit::MemStore::default(), "mem").await;
}
