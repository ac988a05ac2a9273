//! Alerts and metrics: every failure and every partly booked campaign is alerted (once, after
//! its state is saved) and counted; an alert channel that is down never fails the step; an
//! upload counts its rows, rejects and how far ahead of the send time its audience was ready.

use super::*;
use crate::campaign::State;
use crate::ports::metrics::name;
use crate::service::schedule::SENT_KEY;
use crate::service::upload::UploadOutcome;

/// An alert channel that is down.
struct DownAlerts;

#[async_trait::async_trait]
impl Alerts for DownAlerts {
    async fn raise(&self, _alert: &Alert) -> Result<(), BackendError> {
        Err(BackendError {
            operation: "Publish",
            code: Some("AuthorizationError".into()),
            detail: "AuthorizationError: not authorized to publish".into(),
            retryable: false,
            source: None,
        })
    }
}

/// The measurements named `metric`, as (value, dimensions).
fn measured(w: &World, metric: &str) -> Vec<(f64, Vec<(&'static str, String)>)> {
    w.metrics
        .recorded()
        .into_iter()
        .filter(|m| m.name == metric)
        .map(|m| (m.value, m.dimensions))
        .collect()
}

fn dims(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

#[tokio::test]
async fn a_failed_upload_is_alerted_once_with_its_reason_and_counted_by_step() {
    let w = world();
    let drop = drop_files(&w, 50, serde_json::json!({}));
    *w.esp.fail_next_uploads.lock().unwrap() = 2;
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap_err();
    assert!(w.alerts.raised().is_empty(), "a retry is not a failure");
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), true)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    let alerts = w.alerts.raised();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.kind, AlertKind::Failed);
    assert_eq!(a.campaign_id, id());
    assert_eq!(a.run_date, "2026-11-24");
    assert_eq!(a.state, State::Failed);
    assert_eq!(a.esp, Some(crate::ids::EspKind::Emarsys));
    assert_eq!(a.account.as_ref().map(|a| a.as_str()), Some("default"));
    assert_eq!(a.reason, c.failure.unwrap().reason);
    assert!(a.reason.contains("HTTP 503"), "{}", a.reason);
    assert_eq!(
        measured(&w, name::CAMPAIGNS_FAILED),
        vec![(1.0, dims(&[("step", "upload")]))]
    );
}

#[tokio::test]
async fn refused_manifests_and_unusable_audiences_are_alerted_as_failures() {
    // A manifest refused at intake: its failed record is created and alerted, once.
    let w = world();
    let drop = drop_files(&w, 5, serde_json::json!({"account": "nope"}));
    for _ in 0..2 {
        w.services
            .upload()
            .handle_drop(&drop, Deadline::none(), false)
            .await
            .unwrap();
    }
    let alerts = w.alerts.raised();
    assert_eq!(alerts.len(), 1, "a redelivered drop is not alerted again");
    assert_eq!(alerts[0].kind, AlertKind::Failed);
    assert!(
        alerts[0].reason.contains("/account"),
        "{}",
        alerts[0].reason
    );
    assert_eq!(
        measured(&w, name::CAMPAIGNS_FAILED),
        vec![(1.0, dims(&[("step", "manifest")]))]
    );

    // An audience with no valid row fails when the upload's pass ends.
    let w = world();
    let drop = drop_files(&w, 0, serde_json::json!({}));
    w.src.put(
        &format!("{PREFIX}a.csv"),
        "customer_id,first_name\n,empty\n,blank\n",
    );
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    let alerts = w.alerts.raised();
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].reason.contains("no valid rows"),
        "{}",
        alerts[0].reason
    );
    assert_eq!(
        measured(&w, name::CAMPAIGNS_FAILED),
        vec![(1.0, dims(&[("step", "audience")]))]
    );
    assert_eq!(
        measured(&w, name::ROWS_REJECTED),
        vec![(2.0, dims(&[("esp", "emarsys"), ("account", "default")]))]
    );
}

#[tokio::test]
async fn a_campaign_with_a_booked_send_and_a_refused_one_alerts_that_mail_may_go_out() {
    let w = world();
    let drop = drop_files(
        &w,
        20,
        serde_json::json!({"variants": [
            {"name": "A", "template_id": "t1", "share": 0.5},
            {"name": "B", "template_id": "t2", "share": 0.5}
        ]}),
    );
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    // An earlier attempt booked A and stopped; B's booking is refused now.
    let mut c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::AudienceReady);
    c.variants[0].esp_ids = c.variants[0].esp_ids.clone().with(SENT_KEY, "1");
    w.services.store.save(&c).await.unwrap();
    *w.esp.refuse_send.lock().unwrap() = true;
    let out = w
        .services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(out, ScheduleOutcome::Partial(id()));
    let alerts = w.alerts.raised();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.kind, AlertKind::MailMayGoOut);
    assert_eq!(a.state, State::PartiallyScheduled);
    assert!(
        a.reason.contains("6032") && a.reason.contains("1 of 2 sends booked"),
        "{}",
        a.reason
    );
    assert!(a.subject().contains("mail may go out"), "{}", a.subject());
    assert_eq!(
        measured(&w, name::CAMPAIGNS_PARTIALLY_SCHEDULED),
        vec![(1.0, dims(&[("esp", "emarsys"), ("account", "default")]))]
    );
    assert!(measured(&w, name::CAMPAIGNS_FAILED).is_empty());
}

#[tokio::test]
async fn steps_finish_when_the_alert_channel_is_down() {
    let mut w = world();
    w.services.alerts = Arc::new(DownAlerts);
    let drop = drop_files(&w, 5, serde_json::json!({}));
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    *w.esp.refuse_send.lock().unwrap() = true;
    let out = w
        .services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(out, ScheduleOutcome::Failed(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Failed);
    assert_eq!(c.failure.unwrap().step, "schedule");
    // Still counted: the metric (and its alarm) do not depend on the alert channel.
    assert_eq!(
        measured(&w, name::CAMPAIGNS_FAILED),
        vec![(1.0, dims(&[("step", "schedule")]))]
    );

    // A partly booked campaign too.
    let mut w = world();
    w.services.alerts = Arc::new(DownAlerts);
    let drop = drop_files(
        &w,
        20,
        serde_json::json!({"variants": [
            {"name": "A", "template_id": "t1", "share": 0.5},
            {"name": "B", "template_id": "t2", "share": 0.5}
        ]}),
    );
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    let mut c = w.services.store.get(&id()).await.unwrap().unwrap();
    c.variants[1].esp_ids = c.variants[1].esp_ids.clone().with(SENT_KEY, "1");
    w.services.store.save(&c).await.unwrap();
    *w.esp.refuse_send.lock().unwrap() = true;
    let out = w
        .services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(out, ScheduleOutcome::Partial(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::PartiallyScheduled);
}

#[tokio::test]
async fn an_upload_counts_its_rows_rejects_and_lead_on_the_send_time() {
    let mut w = world();
    w.services.upload_settings.max_batches_per_run = Some(1);
    let drop = drop_files(&w, 250, serde_json::json!({}));
    let continuations = {
        w.services
            .upload()
            .handle_drop(&drop, Deadline::none(), false)
            .await
            .unwrap();
        drain_to_scheduled(&w).await
    };
    assert!(continuations >= 2, "several slices: {continuations}");
    let account = dims(&[("esp", "emarsys"), ("account", "default")]);
    let uploaded = measured(&w, name::ROWS_UPLOADED);
    assert!(uploaded.len() >= 2, "one per slice: {uploaded:?}");
    assert!(uploaded.iter().all(|(_, d)| *d == account));
    assert_eq!(uploaded.iter().map(|(v, _)| v).sum::<f64>(), 250.0);
    assert_eq!(
        measured(&w, name::ROWS_REJECTED),
        vec![(2.0, account.clone())]
    );
    // Ready at 02:00Z for an 08:00Z send the next day: 30 hours ahead.
    assert_eq!(
        measured(&w, name::SECONDS_BEFORE_SEND),
        vec![(30.0 * 3600.0, account.clone())]
    );
    assert!(w.alerts.raised().is_empty());
    assert!(measured(&w, name::CAMPAIGNS_FAILED).is_empty());
}

#[tokio::test]
async fn an_audience_ready_after_its_send_time_counts_a_negative_lead() {
    let mut w = world();
    w.services.upload_settings.max_batches_per_run = Some(1);
    let drop = drop_files(&w, 150, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Continued(id()));
    assert!(measured(&w, name::SECONDS_BEFORE_SEND).is_empty());
    // The continuation runs ten minutes after the 08:00Z send time.
    w.clock.set("2026-11-25T08:10:00Z".parse().unwrap());
    let out = w
        .services
        .upload()
        .continue_upload(&id(), Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    let lead = measured(&w, name::SECONDS_BEFORE_SEND);
    assert_eq!(lead.len(), 1, "{lead:?}");
    assert_eq!(lead[0].0, -600.0);
}

#[tokio::test]
async fn a_throttled_slice_is_counted() {
    let w = world();
    let drop = drop_files(&w, 250, serde_json::json!({}));
    *w.esp.throttle_next_uploads.lock().unwrap() = 1;
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(
        measured(&w, name::ESP_THROTTLED),
        vec![(1.0, dims(&[("esp", "emarsys"), ("account", "default")]))]
    );
}
