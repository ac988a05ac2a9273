//! Retrying a failed campaign: it resumes at the failed step from the checkpoints, never sends an
//! uploaded batch again and never books a send twice; two retries (or a retry and a cancel) at
//! once are safe.

use super::*;
use crate::campaign::State;
use crate::service::cancel::ControlError;
use crate::service::schedule::SENT_KEY;
use crate::service::upload::UploadOutcome;
use std::sync::Mutex;

async fn campaign(w: &World) -> crate::campaign::Campaign {
    w.services.store.get(&id()).await.unwrap().unwrap()
}

fn code(e: ControlError) -> &'static str {
    match e {
        ControlError::Refused { code, .. } => code,
        ControlError::Busy(_) => "busy",
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn pop(w: &World) -> Option<WorkItem> {
    w.queue.0.lock().unwrap().pop_front()
}

/// 250 rows, one batch of 100 per run; the second run's batch fails on its final attempt.
async fn failed_mid_upload() -> World {
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
    assert_eq!(
        pop(&w),
        Some(WorkItem::ContinueUpload { campaign_id: id() })
    );
    *w.esp.fail_next_uploads.lock().unwrap() = 1;
    let out = w
        .services
        .upload()
        .continue_upload(&id(), Deadline::none(), true)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    let c = campaign(&w).await;
    assert_eq!(c.state, State::Failed);
    assert_eq!(c.failure.as_ref().unwrap().step, "upload");
    assert_eq!(c.audience.uploaded, 100, "the checkpoint: the first batch");
    assert!(w.queue.0.lock().unwrap().is_empty());
    w
}

#[tokio::test]
async fn after_an_upload_failure_it_continues_from_the_checkpoint() {
    let w = failed_mid_upload().await;
    assert_eq!(
        *w.esp.batch_calls.lock().unwrap(),
        2,
        "one sent, one refused"
    );

    let r = w.services.retry().retry(&id()).await.unwrap();
    assert_eq!(
        (r.state, r.step.as_str(), r.queued.as_str()),
        (State::Uploading, "upload", "continue_upload")
    );
    assert!(campaign(&w).await.failure.is_none());
    let continuations = drain_to_scheduled(&w).await;
    assert_eq!(
        continuations, 2,
        "the rest: rows 100..250, one batch per run"
    );
    assert_eq!(
        *w.esp.batch_calls.lock().unwrap(),
        2 + 2,
        "only the two batches after the checkpoint"
    );
    assert_eq!(
        *w.esp.ids_sent.lock().unwrap(),
        250,
        "no uploaded batch sent again"
    );
    assert_eq!(w.esp.lists.lock().unwrap()["espbridge_c1"].len(), 250);
    assert_eq!(campaign(&w).await.state, State::Scheduled);
    assert_eq!(*w.esp.bookings.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_retry_after_a_failed_batch_job_imports_that_batch_anew() {
    // Full batches run as jobs; waiting for the first fails on the final attempt.
    let w = world_with(FakeEsp {
        jobs_from: Some(100),
        fail_next_job_waits: Mutex::new(1),
        ..Default::default()
    });
    let drop = drop_files(&w, 250, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), true)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    let c = campaign(&w).await;
    assert_eq!((c.state, c.audience.jobs.len()), (State::Failed, 1));

    w.services.retry().retry(&id()).await.unwrap();
    assert!(
        campaign(&w).await.audience.jobs.is_empty(),
        "not waited for again"
    );
    drain_to_scheduled(&w).await;
    assert_eq!(
        w.esp.jobs.lock().unwrap().len(),
        3,
        "the failed job's batch started again, then the second batch; 50 rows per call"
    );
    assert_eq!(w.esp.lists.lock().unwrap()["espbridge_c1"].len(), 250);
    assert_eq!(campaign(&w).await.state, State::Scheduled);
}

#[tokio::test]
async fn after_a_schedule_failure_the_send_is_booked_once() {
    let w = world();
    *w.esp.refuse_send.lock().unwrap() = true;
    let drop = drop_files(&w, 10, serde_json::json!({}));
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(pop(&w), Some(WorkItem::ScheduleSend { campaign_id: id() }));
    let out = w
        .services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(out, ScheduleOutcome::Failed(id()));
    assert_eq!(campaign(&w).await.failure.unwrap().step, "schedule");

    *w.esp.refuse_send.lock().unwrap() = false;
    let r = w.services.retry().retry(&id()).await.unwrap();
    assert_eq!(
        (r.state, r.queued.as_str()),
        (State::AudienceReady, "schedule_send")
    );
    assert_eq!(pop(&w), Some(WorkItem::ScheduleSend { campaign_id: id() }));
    assert!(w.queue.0.lock().unwrap().is_empty());
    let out = w
        .services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(out, ScheduleOutcome::Scheduled(id()));
    assert_eq!(*w.esp.bookings.lock().unwrap(), 1);

    // A redelivered message and a second retry book nothing more.
    let out = w
        .services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(out, ScheduleOutcome::Skipped(id(), State::Scheduled));
    assert_eq!(
        code(w.services.retry().retry(&id()).await.unwrap_err()),
        "not_retryable"
    );
    assert_eq!(*w.esp.bookings.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_partially_scheduled_campaign_books_only_the_missing_send() {
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
    assert_eq!(*w.esp.bookings.lock().unwrap(), 2);
    // As if B had been refused after A was booked.
    let mut c = campaign(&w).await;
    c.state = State::PartiallyScheduled;
    c.variants[1].esp_ids.0.remove(SENT_KEY);
    w.services.store.save(&c).await.unwrap();

    let r = w.services.retry().retry(&id()).await.unwrap();
    assert_eq!(
        (r.state, r.step.as_str()),
        (State::PartiallyScheduled, "schedule")
    );
    assert_eq!(pop(&w), Some(WorkItem::ScheduleSend { campaign_id: id() }));
    let out = w
        .services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(out, ScheduleOutcome::Scheduled(id()));
    assert_eq!(*w.esp.bookings.lock().unwrap(), 3, "B only");
}

#[tokio::test]
async fn a_refused_manifest_is_not_retryable() {
    let w = world();
    let drop = drop_files(&w, 10, serde_json::json!({"send_at": "tomorrow morning"}));
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    let c = campaign(&w).await;
    assert_eq!(
        (c.state, c.failure.unwrap().step.as_str()),
        (State::Failed, "manifest")
    );
    let e = w.services.retry().retry(&id()).await.unwrap_err();
    assert!(e.to_string().contains("new campaign id"), "{e}");
    assert_eq!(code(e), "not_retryable");
    assert_eq!(campaign(&w).await.state, State::Failed);
    assert!(w.queue.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_schedule_failure_past_the_send_time_is_refused_with_the_reason() {
    let w = world();
    *w.esp.refuse_send.lock().unwrap() = true;
    let drop = drop_files(&w, 10, serde_json::json!({}));
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    pop(&w);
    w.services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    w.clock.set("2026-11-25T09:00:00Z".parse().unwrap());
    let e = w.services.retry().retry(&id()).await.unwrap_err();
    assert_eq!(code(e), "send_time_passed");
    assert_eq!(campaign(&w).await.state, State::Failed);
}

#[tokio::test]
async fn two_retries_at_once_queue_the_work_once() {
    let w = failed_mid_upload().await;
    let (r1, r2, cid) = (w.services.retry(), w.services.retry(), id());
    let (a, b) = tokio::join!(r1.retry(&cid), r2.retry(&cid));
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
    let loser = a.err().or(b.err()).unwrap();
    assert!(matches!(code(loser), "not_retryable" | "busy"));
    assert_eq!(w.queue.0.lock().unwrap().len(), 1);
    drain_to_scheduled(&w).await;
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 250);
    assert_eq!(*w.esp.bookings.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_retry_and_a_cancel_at_once_never_book() {
    let w = failed_mid_upload().await;
    let (retry, cancel, cid) = (w.services.retry(), w.services.cancel(), id());
    let (r, c) = tokio::join!(retry.retry(&cid), cancel.cancel(&cid));
    // Whichever came first, the work that runs afterwards books nothing once cancelled.
    while let Some(item) = pop(&w) {
        match item {
            WorkItem::ContinueUpload { campaign_id } => {
                w.services
                    .upload()
                    .continue_upload(&campaign_id, Deadline::none(), false)
                    .await
                    .unwrap();
            }
            WorkItem::ScheduleSend { campaign_id } => {
                w.services
                    .schedule()
                    .schedule_send(&campaign_id, false)
                    .await
                    .unwrap();
            }
        }
    }
    let end = campaign(&w).await.state;
    match (r.is_ok(), c.is_ok()) {
        (true, true) => assert_eq!(end, State::Cancelled),
        (true, false) => assert_eq!(end, State::Scheduled),
        (false, _) => assert!(matches!(end, State::Failed | State::Cancelled)),
    }
    if end == State::Cancelled {
        assert_eq!(*w.esp.bookings.lock().unwrap(), 0);
    }
}
