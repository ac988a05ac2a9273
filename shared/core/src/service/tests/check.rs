//! The check of a drop: the same verdicts the intake, the upload's validation, the template check
//! and the send window give, in one report, with nothing written anywhere.

use super::*;
use crate::ports::esp::UploadPace;
use crate::service::check::{CheckKind, CheckOptions, CheckReport};
use std::time::Duration;

const MANIFEST: &str = "campaigns/2026-11-24/c1/manifest.json";

async fn check(w: &World) -> CheckReport {
    check_with(w, CheckOptions::default()).await
}

async fn check_with(w: &World, opts: CheckOptions) -> CheckReport {
    w.services
        .check()
        .check("b", MANIFEST, opts)
        .await
        .expect("the drop is judged")
}

fn kinds(r: &CheckReport) -> Vec<CheckKind> {
    r.reasons.iter().map(|n| n.check).collect()
}

/// `rows` good rows, no bad one.
fn clean_drop(w: &World, rows: usize, manifest_extra: serde_json::Value) {
    drop_files(w, 0, manifest_extra);
    let mut body = String::from("customer_id,first_name\n");
    for i in 0..rows {
        body.push_str(&format!("C{i},N{i}\n"));
    }
    w.src.put(&format!("{PREFIX}a.csv"), body);
}

/// Nothing of the check is left behind: no record, no report, no state, no ESP call but the
/// listing.
fn nothing_written(w: &World) {
    assert!(w.src.get(&format!("{PREFIX}rejects.csv")).is_none());
    assert!(w.src.get(&format!("{PREFIX}validation.state")).is_none());
    assert!(
        w.esp.lists.lock().unwrap().is_empty(),
        "no audience created"
    );
    assert_eq!(*w.esp.batch_calls.lock().unwrap(), 0);
    assert!(w.esp.launches.lock().unwrap().is_empty());
    assert!(w.queue.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_clean_drop_is_a_go_with_every_finding() {
    let w = world();
    clean_drop(&w, 250, serde_json::json!({}));
    let r = check(&w).await;
    assert!(r.go, "{:?}", r.reasons);
    assert!(r.manifest.ok);
    assert_eq!(r.campaign_id, Some(id()));
    assert_eq!(r.account.as_ref().map(|a| a.as_str()), Some("default"));
    let a = r.audience.as_ref().unwrap();
    assert_eq!((a.rows, a.valid, a.rejected), (250, 250, 0));
    assert_eq!(a.files.len(), 1);
    assert_eq!((a.files[0].rows, a.files[0].valid), (250, 250));
    assert_eq!(r.templates.len(), 1);
    assert!(r.templates[0].eligible);
    let window = r.send_window.as_ref().unwrap();
    assert_eq!(window.problem, None);
    // 08:00Z tomorrow less 5 minutes, from 02:00Z.
    assert_eq!(window.time_left_secs, 30 * 3600 - 300);
    let u = r.upload.as_ref().unwrap();
    assert_eq!((u.rows, u.calls), (250, 3), "100 contacts a call");
    assert!(u.fits);
    nothing_written(&w);
    assert!(w.services.store.get(&id()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_manifest_that_breaks_the_schema_is_a_no_go_naming_each_field() {
    let w = world();
    clean_drop(&w, 10, serde_json::json!({}));
    w.src.put(
        MANIFEST,
        serde_json::json!({
            "schema_version": "1", "campaign_id": "other", "esp": "emarsys", "template_id": "t1",
            "send_at": "2026-11-25T09:00:00+01:00", "timezone": "Mars/Olympus",
            "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id"}}
        })
        .to_string(),
    );
    let r = check(&w).await;
    assert!(!r.go);
    assert!(!r.manifest.ok);
    let fields: Vec<&str> = r
        .manifest
        .problems
        .iter()
        .map(|p| p.field.as_str())
        .collect();
    assert_eq!(fields, ["/campaign_id", "/timezone"]);
    assert!(r.manifest.problems.iter().all(|p| p.file == MANIFEST));
    assert_eq!(kinds(&r), [CheckKind::Manifest, CheckKind::Manifest]);
    assert!(r.audience.is_none(), "nothing to go on with");

    w.src.put(MANIFEST, "{\"schema_version\": \"1\",");
    let r = check(&w).await;
    assert!(
        r.reasons[0].reason.contains("not valid JSON at line 1"),
        "{:?}",
        r.reasons
    );
    w.src.put(MANIFEST, vec![b' '; 300 * 1024]);
    let r = check(&w).await;
    assert!(r.reasons[0].reason.contains("larger than 262144 bytes"));
}

#[tokio::test]
async fn a_missing_manifest_is_a_no_go() {
    let w = world();
    let r = check(&w).await;
    assert!(!r.go);
    assert_eq!(
        r.reasons[0].reason,
        format!("{MANIFEST}: (document): no such file")
    );
}

#[tokio::test]
async fn a_manifest_the_account_cannot_serve_is_a_no_go_naming_the_field() {
    let w = world_with(FakeEsp {
        drops_fields: true,
        ..Default::default()
    });
    clean_drop(&w, 10, serde_json::json!({}));
    let r = check(&w).await;
    assert_eq!(kinds(&r), [CheckKind::Manifest]);
    assert_eq!(r.manifest.problems[0].field, "/audience/columns/fields");
    // The rest is still checked.
    assert_eq!(r.audience.as_ref().unwrap().valid, 10);
    assert!(r.templates[0].eligible);
}

#[tokio::test]
async fn bad_rows_are_counted_by_reason_and_never_shown() {
    let w = world();
    clean_drop(
        &w,
        0,
        serde_json::json!({"audience": {
        "files": ["a.csv", "b.csv"],
        "columns": {"customer_id": "customer_id", "email": "email"}}}),
    );
    w.src.put(
        &format!("{PREFIX}a.csv"),
        "customer_id,email\nC-HOSTILE-1,ok@shop.example\n,leak-one@evil.example\n\
         C-HOSTILE-1,leak-two@evil.example\nC-HOSTILE-2,not-an-address-HOSTILE\n",
    );
    w.src.put(
        &format!("{PREFIX}b.csv"),
        "customer_id,email\nC-HOSTILE-3,fine@shop.example\nC-HOSTILE-4,a@b.example,extra-HOSTILE\n",
    );
    // The real run skips rejected rows: reported, and still a go.
    let r = check(&w).await;
    assert!(r.go, "{:?}", r.reasons);
    assert_eq!(r.audience.as_ref().unwrap().rejected, 4);
    // Stricter than the real run: a no-go.
    let r = check_with(
        &w,
        CheckOptions {
            max_rejects: Some(3),
        },
    )
    .await;
    assert!(!r.go);
    assert_eq!(kinds(&r), [CheckKind::Audience]);
    let a = r.audience.as_ref().unwrap();
    assert_eq!((a.rows, a.valid, a.rejected), (6, 2, 4));
    let by_reason: Vec<(&str, u64)> = a
        .rejected_by_reason
        .iter()
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    assert_eq!(
        by_reason,
        [
            ("column_count", 1),
            ("duplicate_customer_id", 1),
            ("empty_customer_id", 1),
            ("invalid_email", 1)
        ]
    );
    assert_eq!((a.files[0].rows, a.files[0].rejected), (4, 3));
    assert_eq!((a.files[1].rows, a.files[1].rejected), (2, 1));
    let lines: Vec<(&str, u64)> = a
        .reject_samples
        .iter()
        .map(|s| (s.file.as_str(), s.line))
        .collect();
    assert!(
        lines.contains(&("a.csv", 3)) && lines.contains(&("b.csv", 3)),
        "{lines:?}"
    );
    assert_eq!(
        r.reasons[0].reason,
        "4 of 6 rows would be rejected (1 column_count, 1 duplicate_customer_id, \
         1 empty_customer_id, 1 invalid_email), more than --max-rejects 3"
    );
    let text = serde_json::to_string(&r).unwrap();
    for cell in ["HOSTILE", "evil.example", "shop.example", "a@b"] {
        assert!(!text.contains(cell), "{cell} leaked: {text}");
    }
    nothing_written(&w);

    // A cap the drop stays within: a go.
    let r = check_with(
        &w,
        CheckOptions {
            max_rejects: Some(4),
        },
    )
    .await;
    assert!(r.go, "{:?}", r.reasons);
}

#[tokio::test]
async fn a_file_that_is_no_audience_or_has_no_usable_row_is_a_no_go() {
    let w = world();
    clean_drop(&w, 0, serde_json::json!({}));
    w.src
        .put(&format!("{PREFIX}a.csv"), "customer_id,first_name\n");
    let r = check(&w).await;
    assert_eq!(
        r.reasons[0].reason,
        "no data rows: the audience files hold a header only"
    );
    w.src
        .put(&format!("{PREFIX}a.csv"), "id,first_name\nSECRET-ID,x\n");
    let r = check(&w).await;
    let reason = &r.reasons[0].reason;
    assert_eq!(
        reason,
        "a.csv line 1: header lacks column(s) \"customer_id\" (2 columns)"
    );
    assert!(!serde_json::to_string(&r).unwrap().contains("SECRET"));
    w.src.put(
        &format!("{PREFIX}a.csv"),
        "customer_id,first_name\n,x\n,y\n",
    );
    let r = check(&w).await;
    assert!(
        r.reasons[0]
            .reason
            .starts_with("no valid rows: all 2 rows rejected"),
        "{:?}",
        r.reasons
    );
}

#[tokio::test]
async fn templates_the_account_does_not_list_are_a_no_go_per_variant() {
    let w = world();
    clean_drop(
        &w,
        20,
        serde_json::json!({"template_id": "t1", "variants": [
            {"name": "A", "template_id": "t2", "share": 0.5},
            {"name": "B", "template_id": "t9", "share": 0.5}]}),
    );
    let r = check(&w).await;
    assert!(!r.go);
    let eligible: Vec<(Option<&str>, &str, bool)> = r
        .templates
        .iter()
        .map(|t| (t.variant.as_deref(), t.template_id.as_str(), t.eligible))
        .collect();
    assert_eq!(
        eligible,
        [
            (None, "t1", true),
            (Some("A"), "t2", true),
            (Some("B"), "t9", false)
        ]
    );
    assert_eq!(kinds(&r), [CheckKind::Templates]);
    assert_eq!(
        r.reasons[0].reason,
        "template \"t9\" (variant B) is not among the emarsys account default's eligible \
         templates (see GET /templates)"
    );
}

#[tokio::test]
async fn a_send_time_passed_or_too_close_is_a_no_go() {
    let w = world();
    clean_drop(&w, 20, serde_json::json!({}));
    // Past, beyond the grace: the intake's own refusal.
    w.clock.set("2026-11-25T09:00:00Z".parse().unwrap());
    let r = check(&w).await;
    assert_eq!(kinds(&r), [CheckKind::SendWindow]);
    assert_eq!(
        r.reasons[0].reason,
        "send_at: 2026-11-25T08:00:00Z is more than 15 minutes in the past"
    );
    assert!(r.manifest.ok, "the send time is the window's finding");
    // Past, within the grace: the intake takes it, the check does not.
    w.clock.set("2026-11-25T08:05:00Z".parse().unwrap());
    let r = check(&w).await;
    assert_eq!(kinds(&r), [CheckKind::SendWindow]);
    assert!(
        r.reasons[0].reason.contains("has passed"),
        "{:?}",
        r.reasons
    );
    // Three minutes ahead: inside schedule-send's five.
    w.clock.set("2026-11-25T07:57:00Z".parse().unwrap());
    let r = check(&w).await;
    assert_eq!(kinds(&r), [CheckKind::SendWindow]);
    assert_eq!(
        r.reasons[0].reason,
        "send_at: 2026-11-25T08:00:00Z is 3 min 00 s away: the audience must be up 5 min before the send"
    );
    // Beyond the horizon.
    w.clock.set("2026-10-01T00:00:00Z".parse().unwrap());
    let r = check(&w).await;
    assert!(
        r.reasons[0].reason.contains("days ahead"),
        "{:?}",
        r.reasons
    );
}

#[tokio::test]
async fn an_audience_that_cannot_be_up_before_the_send_is_a_no_go() {
    let w = world();
    clean_drop(&w, 10_000, serde_json::json!({}));
    // 100 calls of 100 contacts at the default second a call: 100 s; 60 s are left.
    w.clock.set("2026-11-25T07:54:00Z".parse().unwrap());
    let r = check(&w).await;
    assert_eq!(kinds(&r), [CheckKind::UploadTime], "{:?}", r.reasons);
    let u = r.upload.as_ref().unwrap();
    assert_eq!((u.calls, u.estimate_secs, u.time_left_secs), (100, 100, 60));
    assert!(!u.fits);
    assert_eq!(
        r.reasons[0].reason,
        "the audience would not be up in time: 10000 valid rows take about 1 min 40 s at the \
         account's pace (100 calls), 1 min 00 s are left before the send time less 5 min"
    );
    // Two minutes earlier it fits.
    w.clock.set("2026-11-25T07:52:00Z".parse().unwrap());
    assert!(check(&w).await.go);
}

#[test]
fn the_pace_is_the_slowest_of_the_rates_and_the_calls() {
    let pace = UploadPace {
        rows_per_call: 1000,
        calls_per_minute: Some(60.0),
        rows_per_minute: None,
        concurrency: 1,
        call_secs: 0.5,
    };
    // 10 calls: a second each by the rate, half a second by the calls.
    assert_eq!(pace.estimate(10_000), Duration::from_secs(10));
    let by_rows = UploadPace {
        rows_per_minute: Some(50_000.0),
        ..pace
    };
    assert_eq!(by_rows.estimate(100_000), Duration::from_secs(120));
    let concurrent = UploadPace {
        rows_per_call: 1,
        calls_per_minute: None,
        rows_per_minute: None,
        concurrency: 10,
        call_secs: 0.3,
    };
    assert_eq!(concurrent.estimate(1000), Duration::from_secs(30));
    let absurd = UploadPace {
        rows_per_call: 0,
        calls_per_minute: Some(0.0),
        rows_per_minute: Some(f64::NAN),
        concurrency: 0,
        call_secs: f64::INFINITY,
    };
    assert_eq!(
        absurd.estimate(u64::MAX),
        Duration::from_secs(365 * 24 * 3600)
    );
}
