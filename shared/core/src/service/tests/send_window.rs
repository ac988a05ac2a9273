//! The send time against the clock: at intake (the account's grace, the horizon) and again when
//! the send is booked after the upload (the account's policy for a late send).

use super::*;
use crate::campaign::State;
use crate::service::upload::UploadOutcome;
use crate::service::{LateSend, SendPolicy};

/// A drop sent at 08:00 whose audience is up at 02:00; the clock is then moved to `booked_at`
/// and schedule-send runs.
async fn book_at(w: &World, booked_at: &str) -> ScheduleOutcome {
    let drop = drop_files(w, 10, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    w.clock.set(booked_at.parse().unwrap());
    w.services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap()
}

fn with_policy(w: &mut World, policy: SendPolicy) {
    let account = AccountId::parse("default").unwrap();
    let esps = EspRegistry::new(vec![w.esp.clone()]).with_policy(
        crate::ids::EspKind::Emarsys,
        account,
        policy,
    );
    w.services.esps = esps;
}

#[tokio::test]
async fn an_upload_that_outlived_the_send_time_books_nothing_by_default() {
    let w = world();
    let out = book_at(&w, "2026-11-25T09:00:00Z").await;
    assert_eq!(out, ScheduleOutcome::Failed(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Failed);
    assert_eq!(
        c.failure.unwrap().reason,
        "the send time 2026-11-25T08:00:00Z passed before the send could be booked; nothing was booked"
    );
    assert!(w.esp.launches.lock().unwrap().is_empty());
    assert!(w.scheduler.0.lock().unwrap().is_empty(), "no polls");
}

#[tokio::test]
async fn an_account_that_sends_late_campaigns_at_once_books_it_for_now() {
    let mut w = world();
    with_policy(
        &mut w,
        SendPolicy {
            late: LateSend::AtOnce,
            ..SendPolicy::default()
        },
    );
    let out = book_at(&w, "2026-11-25T09:00:00Z").await;
    assert_eq!(out, ScheduleOutcome::Scheduled(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Scheduled);
    assert_eq!(c.send_at, Some("2026-11-25T09:02:00Z".parse().unwrap()));
    assert_eq!(w.esp.launches.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn within_the_grace_the_send_is_booked_as_planned() {
    let w = world();
    let out = book_at(&w, "2026-11-25T08:10:00Z").await;
    assert_eq!(out, ScheduleOutcome::Scheduled(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.send_at, Some("2026-11-25T08:00:00Z".parse().unwrap()));
}

#[tokio::test]
async fn an_account_with_a_longer_grace_takes_a_late_drop() {
    let w = world();
    // Two hours after the send time: refused with the default grace…
    w.clock.set("2026-11-25T10:00:00Z".parse().unwrap());
    let drop = drop_files(&w, 10, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    // …taken by an account whose grace is three hours.
    let mut w = world();
    with_policy(
        &mut w,
        SendPolicy {
            grace: std::time::Duration::from_secs(3 * 3600),
            late: LateSend::AtOnce,
        },
    );
    w.clock.set("2026-11-25T10:00:00Z".parse().unwrap());
    let drop = drop_files(&w, 10, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
}
