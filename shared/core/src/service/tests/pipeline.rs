//! Pipelined uploads: the next batch goes out while the previous checkpoint is written, and the
//! checkpoint only ever covers batches that are done.

use super::*;
use crate::campaign::State;
use crate::service::upload::UploadOutcome;
use crate::testkit::{HookedStore, SaveHook};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

/// One upload checkpoint as the store saw it: the rows it covers, and the ESP's batch calls
/// when its write began and when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checkpoint {
    uploaded: u64,
    batches: u64,
    calls_at_start: u64,
    calls_at_end: u64,
}

/// What the slow store saw and does, shared with its save hook.
#[derive(Default)]
struct Watch {
    checkpoints: Mutex<Vec<Checkpoint>>,
    /// The checkpoint covering this many rows makes the ESP fail its next batch call.
    fail_call_during: Option<u64>,
    /// The checkpoint covering this many rows fails (the invocation dies while writing it).
    fail_save_of: Mutex<Option<u64>>,
}

/// The world with a store whose upload checkpoints take 20 ms, watching the ESP while each is
/// written (`tune` sets its failures).
fn slow_world(tune: impl FnOnce(&mut Watch)) -> (World, Arc<Watch>) {
    let mut w = world();
    let mut watch = Watch::default();
    tune(&mut watch);
    let watch = Arc::new(watch);
    let (esp, seen) = (w.esp.clone(), watch.clone());
    let hook: SaveHook = Box::new(move |next| {
        let (esp, seen) = (esp.clone(), seen.clone());
        let (state, uploaded, batches) =
            (next.state, next.audience.uploaded, next.audience.batches);
        Box::pin(async move {
            if state != State::Uploading || uploaded == 0 {
                return Ok(());
            }
            let calls = || *esp.batch_calls.lock().unwrap();
            let calls_at_start = calls();
            if seen.fail_call_during == Some(uploaded) {
                *esp.fail_next_uploads.lock().unwrap() = 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen.checkpoints.lock().unwrap().push(Checkpoint {
                uploaded,
                batches,
                calls_at_start,
                calls_at_end: calls(),
            });
            let fail = seen
                .fail_save_of
                .lock()
                .unwrap()
                .take_if(|u| *u == uploaded);
            match fail {
                Some(_) => Err(BackendError::transient("save", "connection reset").into()),
                None => Ok(()),
            }
        })
    });
    w.services.store = Arc::new(HookedStore::new(MemStore::default(), hook));
    (w, watch)
}

/// Whether the ESP's list holds exactly the ids of a drop of `rows` rows.
fn all_ids_at_the_esp(w: &World, rows: usize) -> bool {
    let want: BTreeSet<String> = (0..rows).map(|i| format!("C{i}")).collect();
    w.esp.lists.lock().unwrap()["espbridge_c1"] == want
}

#[tokio::test]
async fn the_next_batch_goes_out_while_the_checkpoint_is_written() {
    let (w, store) = slow_world(|_| {});
    let drop = drop_files(&w, 450, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    let seen = store.checkpoints.lock().unwrap().clone();
    let uploaded: Vec<u64> = seen.iter().map(|c| c.uploaded).collect();
    assert_eq!(
        uploaded,
        [100, 200, 300, 400, 450],
        "one checkpoint per batch, in order"
    );
    for c in &seen {
        // A checkpoint covers only batches whose call came back.
        assert!(c.calls_at_start >= c.batches, "{c:?}");
        assert_eq!(c.batches, c.uploaded.div_ceil(100), "{c:?}");
    }
    for c in &seen[..4] {
        assert_eq!(
            c.calls_at_end,
            c.calls_at_start + 1,
            "the next batch's call started while this checkpoint was written: {c:?}"
        );
    }
    assert_eq!(seen[4].calls_at_end, 5, "nothing after the last batch");
    assert!(all_ids_at_the_esp(&w, 450));
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 450, "no batch sent twice");
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.audience.uploaded, c.audience.batches), (450, 5));
}

#[tokio::test]
async fn a_failed_call_beside_a_checkpoint_leaves_the_checkpoint_at_the_batch_before() {
    // Batch 2's call fails while batch 1's checkpoint is written.
    let (w, store) = slow_world(|s| s.fail_call_during = Some(100));
    let drop = drop_files(&w, 450, serde_json::json!({}));
    let err = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(*w.esp.batch_calls.lock().unwrap(), 2);
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(
        (c.state, c.audience.uploaded, c.audience.batches),
        (State::Uploading, 100, 1)
    );
    assert_eq!(store.checkpoints.lock().unwrap().len(), 1);
    // The redelivery resumes at batch 2 and sends each row once.
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    assert!(all_ids_at_the_esp(&w, 450));
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 450);
}

#[tokio::test]
async fn an_invocation_dying_on_a_checkpoint_resumes_without_losing_rows() {
    // The checkpoint of batch 2 fails while batch 3 is at the ESP: the record stays at batch 1.
    let (w, store) = slow_world(|s| *s.fail_save_of.get_mut().unwrap() = Some(200));
    let drop = drop_files(&w, 450, serde_json::json!({}));
    let err = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        *w.esp.batch_calls.lock().unwrap(),
        3,
        "batch 3 was in flight"
    );
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.audience.uploaded, c.audience.batches), (100, 1));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    assert!(all_ids_at_the_esp(&w, 450), "every row reached the ESP");
    // Batches 2 and 3 went out twice (harmless: the list is a set), nothing else did.
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 650);
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.audience.uploaded, c.audience.valid), (450, 450));
    assert_eq!(
        store.checkpoints.lock().unwrap().last().map(|c| c.uploaded),
        Some(450)
    );
}

#[tokio::test]
async fn a_run_stopped_by_its_batch_budget_sends_no_batch_beyond_it() {
    // Stopping waits for the work in flight and starts none: two batches per run, each once.
    let (mut w, _store) = slow_world(|_| {});
    w.services.upload_settings.max_batches_per_run = Some(2);
    let drop = drop_files(&w, 450, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Continued(id()));
    assert_eq!(*w.esp.batch_calls.lock().unwrap(), 2);
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(
        c.audience.uploaded, 200,
        "the stop wrote the last checkpoint"
    );
    drain_to_scheduled(&w).await;
    assert!(all_ids_at_the_esp(&w, 450));
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 450);
}

#[tokio::test]
async fn an_esp_taking_two_batches_at_once_gets_two_in_flight_and_every_row_once() {
    let w = world_with(FakeEsp {
        in_flight: 2,
        call_time: Some(Duration::from_millis(30)),
        ..Default::default()
    });
    let drop = drop_files(&w, 450, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    assert_eq!(
        w.esp.calls_running.lock().unwrap().1,
        2,
        "peak calls at once"
    );
    assert!(all_ids_at_the_esp(&w, 450));
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 450, "no batch sent twice");
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.audience.uploaded, c.audience.batches), (450, 5));
}

#[tokio::test]
async fn a_failed_batch_with_the_next_in_flight_leaves_the_checkpoint_before_both() {
    // The first batch fails while the second is at the ESP: the second's success is not
    // counted (it is not contiguous), and the redelivery sends both again.
    let w = world_with(FakeEsp {
        in_flight: 2,
        call_time: Some(Duration::from_millis(30)),
        fail_next_uploads: Mutex::new(1),
        ..Default::default()
    });
    let drop = drop_files(&w, 450, serde_json::json!({}));
    let err = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        *w.esp.batch_calls.lock().unwrap(),
        2,
        "batch 2 was in flight"
    );
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.audience.uploaded, c.audience.batches), (0, 0));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    assert!(all_ids_at_the_esp(&w, 450), "every row reached the ESP");
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.audience.uploaded, c.audience.batches), (450, 5));
}

#[tokio::test]
async fn a_batch_job_is_recorded_before_the_wait_and_a_resumed_run_waits_for_the_same_job() {
    // Full batches run as jobs; the invocation dies while the first one runs.
    let w = world_with(FakeEsp {
        jobs_from: Some(100),
        fail_next_job_waits: Mutex::new(1),
        ..Default::default()
    });
    let drop = drop_files(&w, 450, serde_json::json!({}));
    let err = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.audience.uploaded, 0);
    let refs: Vec<_> = c
        .audience
        .jobs
        .iter()
        .map(|j| j.job.reference.as_str())
        .collect();
    assert_eq!(refs, ["job-1"], "the running job is in the record");
    assert_eq!(c.audience.jobs[0].job.rows, 100);

    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    assert_eq!(
        w.esp.jobs.lock().unwrap().len(),
        4,
        "four full batches, four jobs: the first was not started again"
    );
    assert_eq!(
        *w.esp.batch_calls.lock().unwrap(),
        1,
        "the last 50 rows, under the job size, went by upload_batch"
    );
    assert!(all_ids_at_the_esp(&w, 450));
    assert_eq!(
        *w.esp.ids_sent.lock().unwrap(),
        450,
        "no row imported twice"
    );
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.audience.uploaded, c.audience.batches), (450, 5));
    assert!(c.audience.jobs.is_empty(), "no job left in the record");
}

#[tokio::test]
async fn a_job_outlasting_the_invocation_is_left_running_and_a_continuation_waits_for_it() {
    let mut w = world_with(FakeEsp {
        jobs_from: Some(100),
        job_time: Some(Duration::from_millis(300)),
        ..Default::default()
    });
    w.services.upload_settings.stop_margin = Duration::from_millis(100);
    let drop = drop_files(&w, 250, serde_json::json!({}));
    // 250 ms left: the first job's wait reaches the stop margin.
    let deadline = Deadline::at(std::time::Instant::now() + Duration::from_millis(250));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, deadline, false)
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Continued(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.audience.uploaded, 0);
    assert_eq!(c.audience.jobs.len(), 1, "the running job is in the record");
    assert_eq!(
        w.queue.0.lock().unwrap().front(),
        Some(&WorkItem::ContinueUpload { campaign_id: id() })
    );
    drain_to_scheduled(&w).await;
    assert_eq!(
        w.esp.jobs.lock().unwrap().len(),
        2,
        "two full batches, two jobs: the first was waited for, not started again"
    );
    assert!(all_ids_at_the_esp(&w, 250));
}
