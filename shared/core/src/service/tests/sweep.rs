//! The sweep: each rule on a campaign left stuck the way a lost message or a lost schedule
//! leaves it, that running it again changes nothing the rule does not allow, and that nothing
//! it resumes books a send twice.

use super::*;
use crate::campaign::{Campaign, State};
use crate::ports::scheduler::PollSchedule;
use crate::service::poll::PollOutcome;
use crate::service::schedule::SENT_KEY;
use crate::service::sweep::{MAX_RESUMES, SweepMode, SweepReport};
use crate::service::{LateSend, SendPolicy};
use crate::testkit::{HookedStore, SaveHook};
use jiff::Timestamp;

const HOUR: SignedDuration = SignedDuration::from_hours(1);

fn send_at() -> Timestamp {
    "2026-11-25T08:00:00Z".parse().unwrap()
}

fn day(n: i32) -> SignedDuration {
    SignedDuration::from_hours(24) * n
}

async fn hourly(w: &World) -> SweepReport {
    w.services.sweep().sweep(SweepMode::Hourly).await.unwrap()
}

/// The queued work items, taken off the queue (as if their messages were lost).
fn take_queued(w: &World) -> Vec<WorkItem> {
    w.queue.0.lock().unwrap().drain(..).collect()
}

async fn record(w: &World) -> Campaign {
    w.services.store.get(&id()).await.unwrap().unwrap()
}

fn stuck_alerts(w: &World) -> Vec<Alert> {
    w.alerts
        .raised()
        .into_iter()
        .filter(|a| a.kind == AlertKind::Stuck)
        .collect()
}

fn bookings(w: &World) -> u64 {
    *w.esp.bookings.lock().unwrap()
}

fn continue_upload() -> WorkItem {
    WorkItem::ContinueUpload { campaign_id: id() }
}

fn schedule_send() -> WorkItem {
    WorkItem::ScheduleSend { campaign_id: id() }
}

/// A 250-row campaign whose upload stopped after its first batch and whose continuation was
/// lost: `uploading`, 100 rows up, nothing queued.
async fn stalled_upload() -> World {
    let mut w = world();
    w.services.upload_settings.max_batches_per_run = Some(1);
    let drop = drop_files(&w, 250, serde_json::json!({}));
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(take_queued(&w), vec![continue_upload()]);
    let c = record(&w).await;
    assert_eq!((c.state, c.audience.uploaded), (State::Uploading, 100));
    w
}

/// A campaign whose audience is up and whose schedule-send message was lost.
async fn ready_unbooked(w: &World) {
    let drop = drop_files(w, 10, serde_json::json!({}));
    w.services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(take_queued(w), vec![schedule_send()]);
    assert_eq!(record(w).await.state, State::AudienceReady);
}

#[tokio::test]
async fn a_stalled_upload_is_resumed_an_hour_apart_a_bounded_number_of_times_then_alerted_once() {
    let w = stalled_upload().await;
    let stalled_at = record(&w).await.updated_at;

    w.clock.advance(SignedDuration::from_mins(30));
    assert_eq!(hourly(&w).await.resumed, 0, "half an hour is no stall");
    assert!(take_queued(&w).is_empty());

    w.clock.set(stalled_at + HOUR);
    assert_eq!(hourly(&w).await.resumed, 1);
    assert_eq!(
        hourly(&w).await.resumed,
        0,
        "a second run in the hour adds nothing"
    );
    assert_eq!(take_queued(&w), vec![continue_upload()]);
    assert_eq!(record(&w).await.sweep.unwrap().resumes, 1);

    // The resumed upload makes progress (its own continuation is lost again): the count
    // starts afresh from that progress.
    w.services
        .upload()
        .continue_upload(&id(), Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(take_queued(&w), vec![continue_upload()]);
    let progressed = record(&w).await;
    assert_eq!(progressed.audience.uploaded, 200);
    for n in 1..=MAX_RESUMES {
        w.clock.set(progressed.updated_at + HOUR * n as i32);
        assert_eq!(hourly(&w).await.resumed, 1, "resume {n}");
        assert_eq!(take_queued(&w), vec![continue_upload()]);
        assert_eq!(record(&w).await.sweep.unwrap().resumes, n);
    }
    assert!(stuck_alerts(&w).is_empty());
    w.clock.advance(HOUR);
    let report = hourly(&w).await;
    assert_eq!((report.resumed, report.alerted), (0, 1));
    let alerts = stuck_alerts(&w);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, State::Uploading);
    assert!(
        alerts[0].reason.contains("resumes by the sweep"),
        "{}",
        alerts[0].reason
    );
    for _ in 0..3 {
        w.clock.advance(HOUR);
        let report = hourly(&w).await;
        assert_eq!(
            (report.resumed, report.alerted),
            (0, 0),
            "alerted once per state"
        );
    }
    assert_eq!(stuck_alerts(&w).len(), 1);
    assert!(take_queued(&w).is_empty());

    // Resumed by hand at last, it ends whole and booked once.
    w.services
        .upload()
        .continue_upload(&id(), Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(take_queued(&w), vec![schedule_send()]);
    w.services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    let c = record(&w).await;
    assert_eq!((c.state, c.audience.uploaded), (State::Scheduled, 250));
    assert_eq!(w.esp.lists.lock().unwrap()["espbridge_c1"].len(), 250);
    assert_eq!(bookings(&w), 1);
    let runs = w.services.store.runs(&id()).await.unwrap();
    let swept: Vec<&str> = runs
        .iter()
        .filter(|r| r.step == "sweep")
        .map(|r| r.outcome.as_str())
        .collect();
    assert_eq!(
        swept,
        ["resumed", "resumed", "resumed", "resumed", "alerted"]
    );
}

/// A campaign recorded whose first upload invocation died before it began (its write to
/// `uploading` failed, and the event was not redelivered) stays `received`; the sweep queues
/// its upload.
#[tokio::test]
async fn a_campaign_left_in_received_is_resumed() {
    let mut w = world();
    let fail_once = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let hook: SaveHook = Box::new(move |c: &Campaign| {
        let fail = c.state == State::Uploading
            && fail_once.swap(false, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            if fail {
                Err(BackendError::transient("save", "connection reset").into())
            } else {
                Ok(())
            }
        })
    });
    w.services.store = Arc::new(HookedStore::new(MemStore::default(), hook));
    let drop = drop_files(&w, 20, serde_json::json!({}));
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await;
    assert!(out.is_err(), "a retryable error: {out:?}");
    assert!(take_queued(&w).is_empty());
    assert_eq!(record(&w).await.state, State::Received);
    w.clock.advance(HOUR);
    assert_eq!(hourly(&w).await.resumed, 1);
    assert_eq!(take_queued(&w), vec![continue_upload()]);
    w.services
        .upload()
        .continue_upload(&id(), Deadline::none(), false)
        .await
        .unwrap();
    assert_eq!(record(&w).await.state, State::AudienceReady);
}

#[tokio::test]
async fn an_audience_ready_campaign_is_handed_to_schedule_send_when_stalled_and_books_once() {
    let w = world();
    ready_unbooked(&w).await;
    w.clock.advance(SignedDuration::from_mins(59));
    assert_eq!(hourly(&w).await.resumed, 0);
    w.clock.advance(SignedDuration::from_mins(1));
    assert_eq!(hourly(&w).await.resumed, 1);
    assert_eq!(hourly(&w).await.resumed, 0, "once in the hour");
    assert_eq!(take_queued(&w), vec![schedule_send()]);
    w.services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    assert_eq!(record(&w).await.state, State::Scheduled);
    assert_eq!(bookings(&w), 1);

    // Scheduled: sweeping it any number of times books nothing and queues nothing.
    for _ in 0..3 {
        w.clock.advance(HOUR);
        hourly(&w).await;
    }
    assert!(take_queued(&w).is_empty());
    assert_eq!(bookings(&w), 1);
    assert!(stuck_alerts(&w).is_empty());
}

#[tokio::test]
async fn past_its_send_time_schedule_send_applies_the_accounts_policy_fail() {
    let w = world();
    ready_unbooked(&w).await;
    w.clock.set(send_at() + HOUR);
    assert_eq!(hourly(&w).await.resumed, 1);
    assert_eq!(take_queued(&w), vec![schedule_send()]);
    w.services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    let c = record(&w).await;
    assert_eq!(c.state, State::Failed);
    assert!(
        c.failure.unwrap().reason.contains("send time"),
        "failed with the reason"
    );
    assert_eq!(bookings(&w), 0);
}

#[tokio::test]
async fn past_its_send_time_schedule_send_applies_the_accounts_policy_at_once() {
    let mut w = world();
    w.services.esps = w.services.esps.clone().with_policy(
        w.esp.kind(),
        AccountId::parse("default").unwrap(),
        SendPolicy {
            late: LateSend::AtOnce,
            ..Default::default()
        },
    );
    ready_unbooked(&w).await;
    w.clock.set(send_at() + HOUR);
    assert_eq!(hourly(&w).await.resumed, 1);
    assert_eq!(take_queued(&w), vec![schedule_send()]);
    w.services
        .schedule()
        .schedule_send(&id(), false)
        .await
        .unwrap();
    let c = record(&w).await;
    assert_eq!(c.state, State::Scheduled);
    assert!(c.send_at.unwrap() > send_at() + HOUR, "booked for now");
    assert_eq!(bookings(&w), 1);
}

/// Marks the campaign's send as booked and puts it in `state`, as a crash mid-booking or a
/// refused second send leaves it.
async fn partly_booked(w: &World, state: State) {
    let mut c = record(w).await;
    c.esp_ids = c.esp_ids.clone().with(SENT_KEY, "1");
    c.state = state;
    w.services.store.save(&c).await.unwrap();
}

#[tokio::test]
async fn a_partly_booked_campaign_past_its_time_and_grace_is_alerted_once_and_never_booked_again() {
    for state in [State::PartiallyScheduled, State::AudienceReady] {
        let w = world();
        ready_unbooked(&w).await;
        partly_booked(&w, state).await;
        // Before the send time a partially scheduled campaign waits for a retry.
        if state == State::PartiallyScheduled {
            w.clock.set(send_at() - HOUR);
            let r = hourly(&w).await;
            assert_eq!((r.resumed, r.alerted), (0, 0), "{state}");
        }
        w.clock.set(send_at() + HOUR);
        let r = hourly(&w).await;
        assert_eq!((r.resumed, r.alerted), (0, 1), "{state}");
        let alerts = stuck_alerts(&w);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].state, state);
        assert!(
            alerts[0].reason.contains("mail may go out"),
            "{}",
            alerts[0].reason
        );
        w.clock.advance(HOUR);
        assert_eq!(hourly(&w).await.alerted, 0, "{state}: once");
        assert!(take_queued(&w).is_empty(), "{state}: nothing queued");
        assert_eq!(bookings(&w), 0);
        assert_eq!(record(&w).await.state, state, "never failed");
    }
}

#[tokio::test]
async fn a_partly_booked_campaign_within_the_grace_gets_schedule_send() {
    let w = world();
    ready_unbooked(&w).await;
    partly_booked(&w, State::PartiallyScheduled).await;
    w.clock.set(send_at() + SignedDuration::from_mins(5));
    assert_eq!(hourly(&w).await.resumed, 1);
    assert_eq!(take_queued(&w), vec![schedule_send()]);
}

#[tokio::test]
async fn a_lost_poll_schedule_is_recreated_from_the_day_after_the_last_snapshot() {
    let w = world();
    upload_and_schedule(&w).await;
    // Scheduled, never polled, its schedule gone.
    w.scheduler.0.lock().unwrap().clear();
    w.clock.set(send_at() + day(1) + HOUR);
    assert_eq!(hourly(&w).await.polls_restored, 0, "not late yet");
    w.clock.set(send_at() + day(1) + HOUR * 3);
    assert_eq!(hourly(&w).await.polls_restored, 1);
    let pending: Vec<PollSchedule> = w.scheduler.0.lock().unwrap().values().cloned().collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].first_at, pending[0].last_at),
        (send_at() + day(1), send_at() + day(7))
    );

    // Polled on days 1 and 2, then lost again.
    for d in 1..=2 {
        w.clock
            .set(send_at() + day(d) + SignedDuration::from_mins(1));
        w.services.poll().poll_metrics(&id()).await.unwrap();
    }
    w.scheduler.0.lock().unwrap().clear();
    w.clock.set(send_at() + day(3) + HOUR);
    assert_eq!(
        hourly(&w).await.polls_restored,
        0,
        "day 3's poll is not late yet"
    );
    w.clock.set(send_at() + day(3) + HOUR * 3);
    assert_eq!(hourly(&w).await.polls_restored, 1);
    hourly(&w).await;
    let pending: Vec<PollSchedule> = w.scheduler.0.lock().unwrap().values().cloned().collect();
    assert_eq!(pending.len(), 1, "created again, not twice");
    assert_eq!(pending[0].first_at, send_at() + day(3));
    assert_eq!(
        pending[0].name,
        PollSchedule::daily_after(&id(), send_at(), 7).name
    );
    assert!(take_queued(&w).is_empty());
    assert_eq!(bookings(&w), 1);
}

#[tokio::test]
async fn eight_days_after_the_send_a_campaign_is_completed_with_the_figures_it_has() {
    let w = bronto_world();
    upload_and_schedule(&w).await;
    for d in 1..=3 {
        w.clock
            .set(send_at() + day(d) + SignedDuration::from_mins(1));
        w.services.poll().poll_metrics(&id()).await.unwrap();
    }
    w.scheduler.0.lock().unwrap().clear();
    w.clock.set(send_at() + day(8) - HOUR);
    let r = hourly(&w).await;
    assert_eq!(
        (r.completed, r.polls_restored),
        (0, 1),
        "polls late, not yet overdue"
    );
    w.scheduler.0.lock().unwrap().clear();
    let completed_at = send_at() + day(8);
    w.clock.set(completed_at);
    let r = hourly(&w).await;
    assert_eq!((r.completed, r.alerted), (1, 0));
    let c = record(&w).await;
    assert_eq!(c.state, State::Completed);
    assert!(
        c.note.as_deref().unwrap().contains("figures of day 3"),
        "{:?}",
        c.note
    );
    assert!(stuck_alerts(&w).is_empty(), "it has figures");
    assert_eq!(w.services.store.snapshots(&id()).await.unwrap().len(), 3);

    // The clean-up comes back through poll-metrics, which knows the list's retention.
    let once: Vec<PollSchedule> = w.scheduler.0.lock().unwrap().values().cloned().collect();
    assert_eq!(once.len(), 1);
    assert!(once[0].is_once());
    w.clock.set(once[0].first_at);
    assert_eq!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::Skipped(State::Completed)
    );
    let due = completed_at + day(30);
    assert_eq!(record(&w).await.cleanup_due_at, Some(due));
    let once: Vec<PollSchedule> = w.scheduler.0.lock().unwrap().values().cloned().collect();
    assert_eq!(once.len(), 1);
    assert_eq!(once[0].first_at, due);
    assert_eq!(
        *w.esp.cleanups.lock().unwrap(),
        0,
        "kept during the retention"
    );
    w.clock.set(due);
    assert_eq!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::CleanedUp
    );
    assert_eq!(*w.esp.cleanups.lock().unwrap(), 1);

    // Completed: later sweeps leave it alone.
    hourly(&w).await;
    assert!(take_queued(&w).is_empty());
    assert_eq!(bookings(&w), 1);
}

#[tokio::test]
async fn a_campaign_without_any_figures_eight_days_on_is_completed_and_alerted() {
    let w = world();
    upload_and_schedule(&w).await;
    w.scheduler.0.lock().unwrap().clear();
    w.clock.set(send_at() + day(8) + HOUR);
    let r = hourly(&w).await;
    assert_eq!((r.completed, r.alerted), (1, 1));
    let c = record(&w).await;
    assert_eq!(c.state, State::Completed);
    assert!(
        c.note.as_deref().unwrap().contains("without figures"),
        "{:?}",
        c.note
    );
    let alerts = stuck_alerts(&w);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, State::Completed);
    w.clock.advance(HOUR);
    assert_eq!(hourly(&w).await.alerted, 0);
    assert_eq!(stuck_alerts(&w).len(), 1);
}

#[tokio::test]
async fn the_last_poll_without_figures_from_the_esp_completes_the_campaign_with_a_note() {
    let w = world_with(FakeEsp {
        no_figures: true,
        ..Default::default()
    });
    upload_and_schedule(&w).await;
    for d in 1..=6 {
        w.clock
            .set(send_at() + day(d) + SignedDuration::from_mins(1));
        assert_eq!(
            w.services.poll().poll_metrics(&id()).await.unwrap(),
            PollOutcome::NoDataYet { day: d as u32 }
        );
    }
    assert_eq!(record(&w).await.state, State::Scheduled);
    w.clock
        .set(send_at() + day(7) + SignedDuration::from_mins(1));
    assert_eq!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::Completed { day: 7 }
    );
    let c = record(&w).await;
    assert_eq!(c.state, State::Completed);
    let note = c.note.unwrap();
    assert!(
        note.contains("without figures") && note.contains("day 7"),
        "{note}"
    );
    assert!(note.len() <= crate::campaign::MAX_NOTE);
    assert!(w.services.store.snapshots(&id()).await.unwrap().is_empty());
    assert!(
        w.scheduler.0.lock().unwrap().is_empty(),
        "poll schedule gone"
    );
}

#[tokio::test]
async fn the_sweep_counts_the_campaigns_in_each_state() {
    let w = stalled_upload().await;
    for tag in ["other-a", "other-b"] {
        let c = crate::testkit::sample_campaign(tag);
        w.services
            .store
            .create_from_drop(&c.drop, &c)
            .await
            .unwrap();
    }
    let r = hourly(&w).await;
    assert_eq!(r.campaigns["received"], 2);
    assert_eq!(r.campaigns["uploading"], 1);
    let gauges: Vec<(String, f64)> = w
        .metrics
        .recorded()
        .into_iter()
        .filter(|m| m.name == crate::ports::metrics::name::CAMPAIGNS)
        .map(|m| (m.dimensions[0].1.clone(), m.value))
        .collect();
    assert_eq!(gauges.len(), 6, "one per live state: {gauges:?}");
    assert!(gauges.contains(&("received".into(), 2.0)));
    assert!(gauges.contains(&("uploading".into(), 1.0)));
    assert!(gauges.contains(&("collecting".into(), 0.0)));
}

#[tokio::test]
async fn a_restart_queues_unfinished_work_at_once_and_rebuilds_schedules() {
    let w = stalled_upload().await;
    // Three more: scheduled (polled on day 1 and 2), audience_ready, completed with its
    // clean-up pending.
    let mut collecting = crate::testkit::sample_campaign("polled");
    collecting.send_at = Some(send_at());
    w.services
        .store
        .create_from_drop(&collecting.drop, &collecting)
        .await
        .unwrap();
    let mut c = w.services.store.get(&collecting.id).await.unwrap().unwrap();
    c.state = State::Collecting;
    w.services.store.save(&c).await.unwrap();
    for d in 1..=2u32 {
        let snap = crate::campaign::MetricSnapshot {
            day: d,
            taken_at: send_at() + day(d as i32),
            counts: Default::default(),
            by_variant: Default::default(),
        };
        w.services.store.put_snapshot(&c.id, &snap).await.unwrap();
    }
    let ready = crate::testkit::sample_campaign("ready");
    w.services
        .store
        .create_from_drop(&ready.drop, &ready)
        .await
        .unwrap();
    let mut r = w.services.store.get(&ready.id).await.unwrap().unwrap();
    r.state = State::AudienceReady;
    w.services.store.save(&r).await.unwrap();
    let done = crate::testkit::sample_campaign("done");
    w.services
        .store
        .create_from_drop(&done.drop, &done)
        .await
        .unwrap();
    let mut d = w.services.store.get(&done.id).await.unwrap().unwrap();
    let due = send_at() + day(40);
    d.state = State::Completed;
    d.cleanup_due_at = Some(due);
    w.services.store.save(&d).await.unwrap();

    // Minutes after the stop: nothing is stalled by the hourly rules, but the process lost
    // its queue and its timers.
    w.clock.set(send_at() + day(2) + HOUR * 3);
    let report = w.services.sweep().sweep(SweepMode::Restart).await.unwrap();
    assert_eq!(
        (
            report.resumed,
            report.polls_restored,
            report.cleanups_restored
        ),
        (2, 1, 1)
    );
    let mut queued = take_queued(&w);
    queued.sort_by_key(|i| i.label());
    assert_eq!(
        queued,
        vec![
            continue_upload(),
            WorkItem::ScheduleSend {
                campaign_id: ready.id.clone()
            }
        ]
    );
    let schedules = w.scheduler.0.lock().unwrap().clone();
    let polls = &schedules[&PollSchedule::daily_after(&collecting.id, send_at(), 7).name];
    assert_eq!(
        polls.first_at,
        send_at() + day(3),
        "days 1 and 2 are not repeated"
    );
    let cleanup = &schedules[&PollSchedule::cleanup_at(&done.id, due).name];
    assert_eq!(cleanup.first_at, due);
    assert_eq!(record(&w).await.sweep, None, "a restart counts no resume");
    assert!(w.alerts.raised().is_empty());
}

#[tokio::test]
async fn a_lost_last_poll_runs_shortly_and_completes_the_campaign() {
    let w = world();
    upload_and_schedule(&w).await;
    for d in 1..=6 {
        w.clock
            .set(send_at() + day(d) + SignedDuration::from_mins(1));
        w.services.poll().poll_metrics(&id()).await.unwrap();
    }
    w.scheduler.0.lock().unwrap().clear();
    let now = send_at() + day(7) + HOUR * 3;
    w.clock.set(now);
    assert_eq!(hourly(&w).await.polls_restored, 1);
    let pending: Vec<PollSchedule> = w.scheduler.0.lock().unwrap().values().cloned().collect();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].is_once(), "{pending:?}");
    assert!(
        pending[0].first_at > now,
        "a one-off is never set in the past"
    );
    w.clock.set(pending[0].first_at);
    assert_eq!(
        w.services.poll().poll_metrics(&id()).await.unwrap(),
        PollOutcome::Completed { day: 7 }
    );
    assert_eq!(
        record(&w).await.note,
        None,
        "completed by its own last poll"
    );
}
