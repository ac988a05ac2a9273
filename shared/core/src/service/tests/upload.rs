//! Intake, validation, upload and continuations; refusals; control-group files.

use super::*;
use crate::campaign::State;
use crate::service::poll::PollOutcome;
use crate::service::upload::UploadOutcome;
use jiff::Timestamp;

#[tokio::test]
async fn drop_to_completed_with_continuations() {
    let mut w = world();
    w.services.upload_settings.max_batches_per_run = Some(2);
    let drop = drop_files(&w, 450, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Continued(id()));
    // Feed continuations back until the audience is ready.
    let rounds = 1 + drain_to_scheduled(&w).await;
    assert_eq!(
        rounds, 3,
        "450 rows in batches of 100, two per run: three runs"
    );
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Scheduled);
    assert_eq!(
        (
            c.audience.rows,
            c.audience.valid,
            c.audience.rejected,
            c.audience.uploaded
        ),
        (452, 450, 2, 450)
    );
    assert_eq!(c.audience.rejected_by_reason["duplicate_customer_id"], 1);
    let rejects = String::from_utf8(w.src.get(&format!("{PREFIX}rejects.csv")).unwrap()).unwrap();
    assert_eq!(rejects.lines().count(), 3, "{rejects}");
    assert!(rejects.contains("a.csv,453,"), "{rejects}");
    assert_eq!(w.esp.lists.lock().unwrap()["espbridge_c1"].len(), 450);
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 450, "no batch sent twice");
    assert_eq!(w.scheduler.0.lock().unwrap().len(), 1);

    // Polls: too early, then days 1..7, then the schedule is gone.
    assert_eq!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::TooEarly
    );
    let send_at: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
    for day in 1..=7 {
        w.clock
            .set(send_at + SignedDuration::from_hours(24 * day) + SignedDuration::from_mins(1));
        let out = w.services.poll().poll_metrics(&id()).await.unwrap();
        if day < 7 {
            assert_eq!(
                out,
                PollOutcome::Stored {
                    day: day as u32,
                    new: true
                }
            );
        } else {
            assert_eq!(out, PollOutcome::Completed { day: 7 });
        }
    }
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Completed);
    assert_eq!(w.services.store.snapshots(&id()).await.unwrap().len(), 7);
    assert!(
        w.scheduler.0.lock().unwrap().is_empty(),
        "schedule deleted after day 7"
    );
    let doc = w
        .services
        .api()
        .campaign_document(&id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc["daily_metrics"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn a_redelivered_drop_and_a_failed_batch_resume_without_duplicates() {
    let w = world();
    let drop = drop_files(&w, 350, serde_json::json!({}));
    // Two batches in the first run, then the third batch fails transiently: the call errors
    // (SQS will redeliver) and the checkpoint stands.
    let mut svc = w.services.clone();
    svc.upload_settings.max_batches_per_run = Some(2);
    assert_eq!(
        svc.upload()
            .handle_drop(&drop, Deadline::none(), false)
            .await
            .unwrap(),
        UploadOutcome::Continued(id())
    );
    *w.esp.fail_next_uploads.lock().unwrap() = 1;
    let err = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.state, c.audience.uploaded), (State::Uploading, 200));
    // Redelivery of the same S3 event finishes the job.
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 350);
    assert_eq!(w.esp.lists.lock().unwrap()["espbridge_c1"].len(), 350);
    // And once more: nothing is uploaded again; schedule-send is (re)queued, and runs once.
    let again = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(again, UploadOutcome::AudienceReady(id()));
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 350);
    assert_eq!(
        w.services
            .schedule()
            .schedule_send(&id(), false)
            .await
            .unwrap(),
        ScheduleOutcome::Scheduled(id())
    );
    let second = w
        .services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(second, ScheduleOutcome::Skipped(id(), State::Scheduled));
    assert_eq!(w.esp.launches.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_drop_interrupted_on_its_final_delivery_fails_the_campaign_with_its_reason() {
    let w = world();
    let drop = drop_files(&w, 50, serde_json::json!({}));
    *w.esp.fail_next_uploads.lock().unwrap() = 2;
    // Not the last delivery: the error is left for the redelivery, the campaign waits for it.
    let err = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Uploading);
    // The last delivery: the campaign fails with the cause instead of staying `uploading`.
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), true)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Failed);
    let f = c.failure.unwrap();
    assert_eq!(f.step, "upload");
    assert!(f.reason.contains("HTTP 503"), "{}", f.reason);
    assert!(w.queue.0.lock().unwrap().is_empty(), "nothing handed on");
}

#[tokio::test]
async fn bad_manifests_and_refusals_fail_the_campaign_with_their_reason() {
    let w = world();
    let drop = drop_files(
        &w,
        5,
        serde_json::json!({"send_at": "tomorrow", "account": "nope"}),
    );
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    let f = c.failure.unwrap();
    assert_eq!(f.step, "manifest");
    assert!(f.reason.contains("/send_at"), "{}", f.reason);
    assert!(
        w.src.get(&format!("{PREFIX}a.csv")).is_some(),
        "the drop is kept"
    );
    assert!(
        w.esp.lists.lock().unwrap().is_empty(),
        "nothing reached the ESP"
    );

    let w = world();
    let drop = drop_files(&w, 5, serde_json::json!({"account": "nope"}));
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert!(
        c.failure
            .unwrap()
            .reason
            .contains("no emarsys account named")
    );

    let w = world();
    let drop = drop_files(&w, 5, serde_json::json!({}));
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    *w.esp.refuse_send.lock().unwrap() = true;
    assert_eq!(
        w.services
            .schedule()
            .schedule_send(&id(), false)
            .await
            .unwrap(),
        ScheduleOutcome::Failed(id())
    );
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Failed);
    assert!(c.failure.unwrap().reason.contains("6032"));
}

#[tokio::test]
async fn a_control_group_file_holds_its_customers_out() {
    let w = control_file_campaign(&["X-not-in-audience"]).await;
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.control.as_ref().unwrap().file_ids, 4);
    assert_eq!(
        c.audience.held_out, 3,
        "the file's customers found in the audience"
    );
    let list = w.esp.lists.lock().unwrap()["espbridge_c1"].clone();
    assert_eq!(list.len(), 47);
    assert!(!list.contains("C1") && !list.contains("C2") && !list.contains("C3"));
}

#[tokio::test]
async fn a_missing_control_group_file_fails_the_campaign_naming_it() {
    let w = world();
    let drop = drop_files(
        &w,
        5,
        serde_json::json!({"control_group": {"file": "absent.csv"}}),
    );
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .ok();
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Failed);
    let reason = c.failure.unwrap().reason;
    assert!(reason.contains("absent.csv"), "{reason}");
    assert!(w.esp.lists.lock().unwrap().is_empty(), "nothing sent");
}

/// A drop of `rows` rows for campaign `id` under its own prefix.
fn named_drop(w: &World, id: &str, rows: usize) -> ObjectRef {
    let prefix = format!("campaigns/2026-11-24/{id}/");
    let mut body = String::from("customer_id\n");
    for i in 0..rows {
        body.push_str(&format!("{id}-{i}\n"));
    }
    w.src.put(&format!("{prefix}a.csv"), body);
    let m = serde_json::json!({
        "schema_version": "1", "campaign_id": id, "esp": "emarsys", "template_id": "t1",
        "send_at": "2026-11-25T09:00:00+01:00",
        "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id"}}
    });
    w.src.put(&format!("{prefix}manifest.json"), m.to_string());
    ObjectRef {
        bucket: "b".into(),
        key: format!("{prefix}manifest.json"),
        etag: format!("e-{id}"),
    }
}

/// With a time slice, a big campaign yields its worker after each slice (a continuation at the
/// back of the queue), so a small campaign of the same account dropped after it is ready long
/// before the big one: one worker serves both in turns.
#[tokio::test]
async fn a_small_campaign_behind_a_big_one_is_ready_first() {
    let mut w = world();
    w.services.upload_settings.slice = Some(std::time::Duration::ZERO);
    let upload = w.services.upload();
    let big = named_drop(&w, "big", 2_000);
    let small = named_drop(&w, "small", 150);
    upload
        .handle_drop(&big, Deadline::none(), false)
        .await
        .unwrap();
    upload
        .handle_drop(&small, Deadline::none(), false)
        .await
        .unwrap();
    let state = |id: &str| {
        let store = Arc::clone(&w.services.store);
        let id = CampaignId::parse(id).unwrap();
        async move { store.get(&id).await.unwrap().unwrap().state }
    };
    // One worker takes the queue in order, as SQS hands it out.
    let mut small_ready_at = None;
    for step in 1..=100 {
        let Some(item) = w.queue.0.lock().unwrap().pop_front() else {
            break;
        };
        match item {
            WorkItem::ContinueUpload { campaign_id } => {
                upload
                    .continue_upload(&campaign_id, Deadline::none(), false)
                    .await
                    .unwrap();
            }
            WorkItem::ScheduleSend { .. } => {}
        }
        if small_ready_at.is_none() && state("small").await == State::AudienceReady {
            small_ready_at = Some(step);
            assert_eq!(
                state("big").await,
                State::Uploading,
                "the big one is not done"
            );
        }
    }
    assert!(small_ready_at.is_some_and(|s| s <= 3), "{small_ready_at:?}");
    assert_eq!(state("big").await, State::AudienceReady);
}

/// An ESP that keeps throttling past a call's patience is no reason to give up: while the
/// send time leaves room the upload continues in a new invocation, from its checkpoint, and
/// finishes; nothing is uploaded twice.
#[tokio::test]
async fn a_throttled_upload_continues_while_the_send_time_leaves_room() {
    let w = world();
    let drop = drop_files(&w, 250, serde_json::json!({}));
    *w.esp.throttle_next_uploads.lock().unwrap() = 2;
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Continued(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Uploading);
    let rounds = drain_to_scheduled(&w).await;
    assert!(rounds >= 2, "each throttled round continues: {rounds}");
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Scheduled);
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 250);
}

/// Throttled when the rest can no longer arrive before the send time (less schedule-send's
/// lead): the campaign fails, with that reason, instead of continuing into the past.
#[tokio::test]
async fn a_throttled_upload_fails_when_the_send_time_can_no_longer_be_met() {
    let w = world();
    let drop = drop_files(&w, 250, serde_json::json!({}));
    // Four minutes before the 08:00 send: inside the five-minute lead.
    w.clock.set("2026-11-25T07:56:00Z".parse().unwrap());
    *w.esp.throttle_next_uploads.lock().unwrap() = 1;
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Failed);
    let reason = c.failure.unwrap().reason;
    assert!(
        reason.contains("can no longer be met") && reason.contains("still throttling"),
        "{reason}"
    );
    assert!(w.queue.0.lock().unwrap().is_empty(), "no continuation");
}

/// An upload cut short (as near an invocation's deadline) goes on in continuations, each of
/// which reads the drop again from its first line and makes every decision again without
/// calling the ESP: the counts, the rejects report and the audience are those of a pass in one
/// go, and no row is sent twice (a duplicate of a row sent by an earlier invocation is still
/// rejected).
#[tokio::test]
async fn an_upload_cut_short_rebuilds_its_state_and_sends_each_row_once() {
    // Two files; rejects and a duplicate across them.
    let setup = |w: &World| {
        let drop = drop_files(
            w,
            0,
            serde_json::json!({"audience": {"files": ["a.csv", "b.csv"],
                "columns": {"customer_id": "customer_id"}}}),
        );
        w.src.put(
            &format!("{PREFIX}a.csv"),
            "customer_id,first_name\nA1,x\n,empty\nA2,x\nA3,x\n\"A4,broken\nA5,x\n",
        );
        w.src.put(
            &format!("{PREFIX}b.csv"),
            "customer_id,first_name\nB1,x\nA2,dup\nB2,x\nB3,x\n,empty\nB4,x\nB5,x\n",
        );
        drop
    };
    // In one go.
    let whole = world();
    let drop = setup(&whole);
    assert_eq!(
        whole
            .services
            .upload()
            .handle_drop(&drop, Deadline::none(), false)
            .await
            .unwrap(),
        UploadOutcome::AudienceReady(id())
    );
    let one = whole.services.store.get(&id()).await.unwrap().unwrap();

    // One batch of two rows an invocation.
    let mut w = world_with(FakeEsp {
        batch: 2,
        ..Default::default()
    });
    w.services.upload_settings.max_batches_per_run = Some(1);
    let drop = setup(&w);
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Continued(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.state, c.audience.uploaded), (State::Uploading, 2));
    assert_eq!(c.audience.file_etags.len(), 1, "b.csv not opened yet");
    assert!(
        w.src.get(&format!("{PREFIX}rejects.csv")).is_none(),
        "the report is written when the pass ends"
    );
    let mut runs = 1;
    loop {
        let item = w
            .queue
            .0
            .lock()
            .unwrap()
            .pop_front()
            .expect("a queued item");
        let WorkItem::ContinueUpload { campaign_id } = item else {
            break;
        };
        runs += 1;
        w.services
            .upload()
            .continue_upload(&campaign_id, Deadline::none(), false)
            .await
            .unwrap();
    }
    assert_eq!(
        runs, 4,
        "four batches, one an invocation; the last one sees the end"
    );
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::AudienceReady);
    assert_eq!(
        *w.esp.ids_sent.lock().unwrap(),
        8,
        "every valid row sent once"
    );
    assert_eq!(*w.esp.batch_calls.lock().unwrap(), 4);
    assert_eq!(
        (c.audience.rows, c.audience.valid, c.audience.rejected),
        (one.audience.rows, one.audience.valid, one.audience.rejected)
    );
    assert_eq!((c.audience.rows, c.audience.valid), (12, 8));
    assert_eq!(
        c.audience.rejected_by_reason,
        one.audience.rejected_by_reason
    );
    assert_eq!(c.audience.rejected_by_reason["duplicate_customer_id"], 1);
    assert_eq!(
        w.src.get(&format!("{PREFIX}rejects.csv")),
        whole.src.get(&format!("{PREFIX}rejects.csv"))
    );
    assert_eq!(w.esp.lists.lock().unwrap()["espbridge_c1"].len(), 8);
}

/// The upload validates as it reads: one read of each audience file takes a campaign from its
/// drop to its audience at the ESP (no count of lines first, no validation pass before).
#[tokio::test]
async fn one_read_of_each_file_takes_a_drop_to_its_audience() {
    let w = world();
    let drop = drop_files(&w, 250, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    assert_eq!(w.src.opens(&format!("{PREFIX}a.csv")), 1);
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(
        (c.audience.rows, c.audience.valid, c.audience.uploaded),
        (252, 250, 250)
    );
    assert_eq!(c.audience.rejected_by_reason["duplicate_customer_id"], 1);
    assert_eq!(c.audience.rejected_by_reason["empty_customer_id"], 1);
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 250);
}

/// A drop without a usable row fails when its pass ends, and nothing of it ever reached the
/// ESP: the audience is created only with a valid row in hand.
#[tokio::test]
async fn a_drop_without_a_valid_row_leaves_nothing_at_the_esp() {
    for body in [
        "customer_id,first_name\n",
        "customer_id,first_name\n,a\n,b\n\"x,broken\n",
    ] {
        let w = world();
        let drop = drop_files(&w, 0, serde_json::json!({}));
        w.src.put(&format!("{PREFIX}a.csv"), body);
        let out = w
            .services
            .upload()
            .handle_drop(&drop, Deadline::none(), false)
            .await
            .unwrap();
        assert_eq!(out, UploadOutcome::Failed(id()));
        let c = w.services.store.get(&id()).await.unwrap().unwrap();
        let failure = c.failure.expect("a failure");
        assert_eq!(failure.step, "audience");
        assert!(failure.reason.starts_with("no "), "{}", failure.reason);
        assert!(
            w.esp.lists.lock().unwrap().is_empty(),
            "no audience created"
        );
        assert_eq!(*w.esp.batch_calls.lock().unwrap(), 0);
        assert!(!take_items(&w).iter().any(is_schedule_send));
    }
}

/// The rejects cap reached after valid rows went to the ESP fails the campaign there: the
/// report holds the first rejected rows, and nothing is scheduled.
#[tokio::test]
async fn the_rejects_cap_reached_mid_pass_fails_the_campaign_without_a_send() {
    let mut w = world_with(FakeEsp {
        batch: 2,
        ..Default::default()
    });
    w.services.upload_settings.audience_limits.max_rejects = 3;
    let drop = drop_files(&w, 0, serde_json::json!({}));
    let mut body = String::from("customer_id,first_name\n");
    for i in 0..6 {
        body.push_str(&format!("C{i},x\n"));
    }
    for _ in 0..5 {
        body.push_str(",empty\n");
    }
    body.push_str("C9,x\n");
    w.src.put(&format!("{PREFIX}a.csv"), body);
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    let failure = c.failure.expect("a failure");
    assert_eq!(failure.step, "audience");
    assert!(
        failure.reason.starts_with("more than 3 rows rejected"),
        "{}",
        failure.reason
    );
    assert_eq!(c.audience.rejected, 3);
    let report = String::from_utf8(w.src.get(&format!("{PREFIX}rejects.csv")).unwrap()).unwrap();
    assert_eq!(report.lines().count(), 4, "{report}");
    assert!(report.contains("a.csv,8,"), "{report}");
    assert!(!take_items(&w).iter().any(is_schedule_send));
    assert_eq!(w.scheduler.0.lock().unwrap().len(), 0);
    let alerts = w.alerts.raised();
    assert_eq!(alerts.len(), 1, "the failure is alerted");
    assert_eq!(alerts[0].state, State::Failed);
}

/// An ESP that batches by the audience's size (Silverpop's bulk import from 5,000 rows): the
/// one pass learns the size at its end, so an audience that turns out smaller than the first
/// round is read again at its own batch size; a larger one goes in the largest batches.
#[tokio::test]
async fn a_small_audience_goes_in_the_batches_its_size_asks_for() {
    for (rows, calls, opens) in [(30, 3, 2), (250, 3, 1)] {
        let w = world_with(FakeEsp {
            small_below: Some(50),
            ..Default::default()
        });
        let drop = drop_files(&w, rows, serde_json::json!({}));
        let out = w
            .services
            .upload()
            .handle_drop(&drop, Deadline::none(), false)
            .await
            .unwrap();
        assert_eq!(out, UploadOutcome::AudienceReady(id()), "{rows} rows");
        assert_eq!(*w.esp.batch_calls.lock().unwrap(), calls, "{rows} rows");
        assert_eq!(w.src.opens(&format!("{PREFIX}a.csv")), opens, "{rows} rows");
        assert_eq!(*w.esp.ids_sent.lock().unwrap(), rows as u64);
    }
}

/// Work queued so far, taken off the queue.
fn take_items(w: &World) -> Vec<WorkItem> {
    w.queue.0.lock().unwrap().drain(..).collect()
}

fn is_schedule_send(item: &WorkItem) -> bool {
    matches!(item, WorkItem::ScheduleSend { .. })
}
