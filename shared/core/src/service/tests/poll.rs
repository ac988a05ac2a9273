//! Completion and the clean-up of what a campaign left at the ESP.

use super::*;
use crate::campaign::State;
use crate::ports::scheduler::PollSchedule;
use crate::service::poll::PollOutcome;
use jiff::Timestamp;

#[tokio::test]
async fn esp_objects_are_cleaned_up_after_the_retention_and_only_once() {
    let w = bronto_world();
    upload_and_schedule(&w).await;
    let send_at: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
    for day in 1..=7 {
        w.clock
            .set(send_at + SignedDuration::from_hours(24 * day) + SignedDuration::from_mins(1));
        w.services.poll().poll_metrics(&id()).await.unwrap();
    }
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Completed);
    let due = c.cleanup_due_at.expect("a clean-up date");
    let completed_at = send_at + SignedDuration::from_hours(24 * 7) + SignedDuration::from_mins(1);
    assert_eq!(due, completed_at + SignedDuration::from_hours(24 * 30));
    assert_eq!(
        *w.esp.cleanups.lock().unwrap(),
        0,
        "kept during the retention"
    );
    let pending: Vec<PollSchedule> = w.scheduler.0.lock().unwrap().values().cloned().collect();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(pending[0].is_once() && pending[0].first_at == due);

    // A stray trigger before the due time changes nothing.
    w.clock.set(due - SignedDuration::from_hours(1));
    assert_eq!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::Skipped(State::Completed)
    );
    assert_eq!(*w.esp.cleanups.lock().unwrap(), 0);

    // Due: the ESP refuses once (a retry is scheduled an hour later), then it works.
    w.clock.set(due);
    *w.esp.fail_cleanups.lock().unwrap() = 1;
    assert!(w.services.poll().poll_metrics(&id()).await.is_err());
    let retry = w
        .scheduler
        .0
        .lock()
        .unwrap()
        .values()
        .next()
        .cloned()
        .unwrap();
    assert_eq!(retry.first_at, due + SignedDuration::from_hours(1));
    w.clock.set(retry.first_at);
    assert_eq!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::CleanedUp
    );
    assert_eq!(*w.esp.cleanups.lock().unwrap(), 1);
    assert!(w.scheduler.0.lock().unwrap().is_empty());
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.cleaned_up_at, Some(retry.first_at));
    // A redelivered trigger does not clean up twice.
    assert_eq!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::Skipped(State::Completed)
    );
    assert_eq!(*w.esp.cleanups.lock().unwrap(), 1);
}

#[tokio::test]
async fn without_a_retention_the_clean_up_runs_at_completion() {
    let w = world();
    upload_and_schedule(&w).await;
    let send_at: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
    w.clock
        .set(send_at + SignedDuration::from_hours(24 * 7) + SignedDuration::from_mins(1));
    assert_eq!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::Completed { day: 7 }
    );
    assert_eq!(*w.esp.cleanups.lock().unwrap(), 1);
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert!(c.cleaned_up_at.is_some());
    assert!(w.scheduler.0.lock().unwrap().is_empty());
}
