//! Cancelling a campaign: at the ESP before its send time, or before anything is booked (the
//! upload and schedule-send then stop without booking); the refusals leave it as it was.

use super::*;
use crate::campaign::{SendClaim, State};
use crate::clock::Clock;
use crate::service::cancel::ControlError;
use crate::service::poll::PollOutcome;
use crate::service::upload::UploadOutcome;
use jiff::Timestamp;

async fn state(w: &World) -> State {
    w.services.store.get(&id()).await.unwrap().unwrap().state
}

fn refusal_code(e: ControlError) -> &'static str {
    match e {
        ControlError::Refused { code, .. } => code,
        ControlError::Busy(_) => "busy",
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Runs the drop and its continuations until schedule-send is queued, leaving it queued.
async fn upload_until_ready(w: &World, drop: &ObjectRef) {
    w.services
        .upload()
        .handle_drop(drop, Deadline::none(), false)
        .await
        .unwrap();
    loop {
        let item = w.queue.0.lock().unwrap().front().cloned().expect("queued");
        match item {
            WorkItem::ContinueUpload { campaign_id } => {
                w.queue.0.lock().unwrap().pop_front();
                w.services
                    .upload()
                    .continue_upload(&campaign_id, Deadline::none(), false)
                    .await
                    .unwrap();
            }
            WorkItem::ScheduleSend { .. } => return,
        }
    }
}

#[tokio::test]
async fn a_scheduled_campaign_is_unscheduled_at_the_esp_and_sends_nothing() {
    let w = world();
    upload_and_schedule(&w).await;
    assert_eq!(w.scheduler.0.lock().unwrap().len(), 1);

    let done = w.services.cancel().cancel(&id()).await.unwrap();
    assert_eq!(
        (done.state, done.unscheduled_sends, done.already),
        (State::Cancelled, 1, false)
    );
    assert_eq!(state(&w).await, State::Cancelled);
    assert!(w.esp.cancelled.lock().unwrap().contains("espbridge_c1"));
    assert!(
        w.scheduler.0.lock().unwrap().is_empty(),
        "the poll schedule is deleted"
    );

    // Twice is harmless and asks the ESP nothing more.
    let again = w.services.cancel().cancel(&id()).await.unwrap();
    assert!(again.already);
    assert_eq!(w.esp.cancelled.lock().unwrap().len(), 1);

    // Past the send time nothing polls a cancelled campaign.
    w.clock.set("2026-11-26T09:00:00Z".parse().unwrap());
    assert!(matches!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::Skipped(_)
    ));
    assert!(w.services.store.snapshots(&id()).await.unwrap().is_empty());
    // A retry of a cancelled campaign is refused.
    let e = w.services.retry().retry(&id()).await.unwrap_err();
    assert_eq!(refusal_code(e), "not_retryable");
}

#[tokio::test]
async fn at_or_after_the_send_time_it_is_refused_and_nothing_changes() {
    let w = world();
    upload_and_schedule(&w).await;
    w.clock.set("2026-11-25T08:00:00Z".parse().unwrap());
    let e = w.services.cancel().cancel(&id()).await.unwrap_err();
    assert!(e.to_string().contains("has passed"), "{e}");
    assert_eq!(refusal_code(e), "send_time_passed");
    assert_eq!(state(&w).await, State::Scheduled);
    assert!(w.esp.cancelled.lock().unwrap().is_empty());
    assert_eq!(w.scheduler.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_esp_that_cannot_cancel_changes_nothing_and_says_why() {
    let w = world_with(FakeEsp {
        cannot_cancel: true,
        ..Default::default()
    });
    upload_and_schedule(&w).await;
    let e = w.services.cancel().cancel(&id()).await.unwrap_err();
    assert!(e.to_string().contains("cannot cancel the send"), "{e}");
    assert!(e.to_string().contains("stays scheduled"), "{e}");
    assert_eq!(refusal_code(e), "cannot_cancel");
    assert_eq!(state(&w).await, State::Scheduled);
    assert_eq!(w.scheduler.0.lock().unwrap().len(), 1, "still polled");
}

#[tokio::test]
async fn while_schedule_send_holds_its_claim_the_answer_is_try_again_shortly() {
    let w = world();
    let drop = drop_files(&w, 10, serde_json::json!({}));
    upload_until_ready(&w, &drop).await;
    let mut c = w.services.store.get(&id()).await.unwrap().unwrap();
    c.send_claim = Some(SendClaim {
        owner: "schedule-other".into(),
        until: w.clock.now() + SignedDuration::from_mins(10),
    });
    w.services.store.save(&c).await.unwrap();
    let e = w.services.cancel().cancel(&id()).await.unwrap_err();
    assert!(e.to_string().contains("try again shortly"), "{e}");
    assert_eq!(refusal_code(e), "busy");
    assert_eq!(state(&w).await, State::AudienceReady);

    // Once the lease has run out (its owner died), the cancel goes through.
    w.clock.advance(SignedDuration::from_mins(11));
    let done = w.services.cancel().cancel(&id()).await.unwrap();
    assert_eq!(done.unscheduled_sends, 0, "nothing was booked");
}

#[tokio::test]
async fn a_campaign_cancelled_before_booking_is_never_booked() {
    let w = world();
    let drop = drop_files(&w, 10, serde_json::json!({}));
    upload_until_ready(&w, &drop).await;
    assert_eq!(state(&w).await, State::AudienceReady);
    w.services.cancel().cancel(&id()).await.unwrap();

    // The queued schedule-send re-reads the campaign and books nothing.
    let out = w
        .services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(out, ScheduleOutcome::Skipped(id(), State::Cancelled));
    assert_eq!(*w.esp.bookings.lock().unwrap(), 0);
    assert!(w.scheduler.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_upload_in_flight_stops_at_its_next_write_and_queues_nothing() {
    let mut w = world();
    w.services.upload_settings.max_batches_per_run = Some(1);
    let drop = drop_files(&w, 250, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Continued(id()));
    // The continuation has read the record when the marketer cancels.
    let in_flight = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(in_flight.state, State::Uploading);
    w.queue.0.lock().unwrap().clear();
    w.services.cancel().cancel(&id()).await.unwrap();

    let out = w
        .services
        .upload()
        .run_upload(in_flight, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Superseded(id()));
    assert!(
        w.queue.0.lock().unwrap().is_empty(),
        "no continuation, no schedule-send"
    );
    assert_eq!(state(&w).await, State::Cancelled);
    // A continuation delivered later finds the campaign cancelled.
    let out = w
        .services
        .upload()
        .continue_upload(&id(), Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Skipped(id(), State::Cancelled));
    assert_eq!(*w.esp.bookings.lock().unwrap(), 0);
}

#[tokio::test]
async fn over_campaigns_and_unknown_ones_are_answered_clearly() {
    let w = world();
    match w.services.cancel().cancel(&id()).await.unwrap_err() {
        ControlError::NotFound(c) => assert_eq!(c, id()),
        other => panic!("{other:?}"),
    }
    upload_and_schedule(&w).await;
    let send_at: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
    w.clock.set(send_at + SignedDuration::from_hours(25));
    w.services.poll().poll_metrics(&id()).await.unwrap();
    assert_eq!(state(&w).await, State::Collecting);
    let e = w.services.cancel().cancel(&id()).await.unwrap_err();
    assert!(e.to_string().contains("went out"), "{e}");
    assert_eq!(refusal_code(e), "already_sent");
}

#[tokio::test]
async fn each_booked_variant_is_unscheduled() {
    let w = world();
    let drop = drop_files(
        &w,
        40,
        serde_json::json!({"variants": [
            {"name": "A", "template_id": "t1", "share": 0.5},
            {"name": "B", "template_id": "t2", "share": 0.5}
        ]}),
    );
    run_to_scheduled(&w, &drop).await;
    let done = w.services.cancel().cancel(&id()).await.unwrap();
    assert_eq!(done.unscheduled_sends, 2);
    let cancelled = w.esp.cancelled.lock().unwrap().clone();
    assert_eq!(
        cancelled.into_iter().collect::<Vec<_>>(),
        ["espbridge_c1_A", "espbridge_c1_B"]
    );
}
