//! The sweep: finds campaigns that stayed in a state longer than the state allows, resumes what
//! can be resumed and alerts on the rest. In AWS it runs hourly (the sweep function); locally
//! `espbridge serve` runs it hourly too, and once at start in [`SweepMode::Restart`], where the
//! same rules rebuild what lived only in the stopped process (its queue's messages, its
//! scheduler's timers).
//!
//! | state | stuck when | the sweep |
//! |---|---|---|
//! | `received`, `uploading` | no progress (`updated_at`) for an hour | queues the upload's continuation, which resumes from its checkpoints; at most [`MAX_RESUMES`] times without progress, an hour apart, then alerts |
//! | `audience_ready` | no progress for an hour, or the send time passed, and no live send claim | queues schedule-send, which books the send, books it at once or fails the campaign with the reason, as the account's send policy says; alerts instead when a send is booked already and the rest is past its time and grace (booking it now would send late) |
//! | `partially_scheduled` | the send time passed | within the grace: queues schedule-send for the rest; after it: alerts |
//! | `scheduled`, `collecting`, `partially_scheduled` | a daily poll is two hours late | recreates the poll schedule from the day after the last snapshot (creating is idempotent: an existing schedule stands) |
//! | the same | 8 days after the send | completes it with the figures it has and a note; alerts when it has none |
//!
//! A stuck campaign is alerted once in a state (the record keeps the sweep's marks), not every
//! hour. The sweep never calls an ESP and never books anything itself: everything it resumes
//! goes through the step that owns it, whose claims and checkpoints keep a send from going
//! out twice. It reads the states page by page, at most [`MAX_PER_STATE`] campaigns each, and
//! records how many campaigns each state holds (the `Campaigns` metric, by `state`).

use super::accounts::EspRegistry;
use super::common::{ServiceError, chain, raise, record_run, run_record};
use super::schedule::{POLL_DAYS, booked};
use crate::campaign::{Campaign, State, SweepMark};
use crate::clock::Clock;
use crate::ports::listing::{CampaignFilter, MAX_PAGE, Position};
use crate::ports::metrics::name;
use crate::ports::scheduler::PollSchedule;
use crate::ports::{
    Alert, AlertKind, Alerts, CampaignStore, Measurement, Metrics, Scheduler, StoreError, WorkItem,
    WorkQueue,
};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// No progress for this long is a stall (no invocation runs longer than 15 minutes).
pub const STALL: SignedDuration = SignedDuration::from_hours(1);
/// Resumes of one campaign in one state without progress in between, before the sweep alerts.
pub const MAX_RESUMES: u32 = 3;
/// Days after the send when a polled campaign is completed whatever its polls did.
pub const COMPLETE_AFTER_DAYS: i64 = POLL_DAYS + 1;
/// A daily poll this late (after its day's send time) counts as lost.
const POLL_LATE: SignedDuration = SignedDuration::from_hours(2);
/// How far ahead a one-off the sweep creates runs (a clean-up, a last poll): a one-off cannot
/// be set in the past.
const ONE_OFF_LEAD: SignedDuration = SignedDuration::from_mins(5);
/// Campaigns read per state in one sweep.
pub const MAX_PER_STATE: usize = 10_000;

const DAY: SignedDuration = SignedDuration::from_hours(24);

/// The states a sweep reads, every live one.
const SWEPT: [State; 6] = [
    State::Received,
    State::Uploading,
    State::AudienceReady,
    State::PartiallyScheduled,
    State::Scheduled,
    State::Collecting,
];

/// Why the sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepMode {
    /// The hourly run: acts on what is stuck by the rules above.
    Hourly,
    /// A restart of the local server, whose queue and scheduler were in its memory: every
    /// unfinished upload and booking is queued again at once (not counted as a resume), every
    /// poll schedule and pending clean-up is recreated; the alerting rules stay as they are.
    Restart,
}

/// What one sweep did. Counts only: the campaigns it acted on are in the log and in their run
/// histories (step `sweep`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Campaigns read per state.
    pub campaigns: BTreeMap<&'static str, u64>,
    /// Work items queued (upload continuations, schedule-send).
    pub resumed: u64,
    /// Poll schedules recreated.
    pub polls_restored: u64,
    /// Clean-up schedules recreated (at a restart).
    pub cleanups_restored: u64,
    /// Campaigns completed eight days after the send.
    pub completed: u64,
    pub alerted: u64,
    /// Campaigns it could not act on (the store, queue or scheduler failed); tried again next
    /// hour.
    pub errors: u64,
    /// States holding more campaigns than one sweep reads.
    pub truncated: Vec<&'static str>,
}

/// The sweep use case and the ports it needs: the campaign store, the work queue, the
/// scheduler of the polls, alerts, metrics, the clock, and the accounts' send policies (only
/// those: it calls no ESP, so it holds no ESP credentials).
#[derive(Clone)]
pub struct SweepService {
    pub store: Arc<dyn CampaignStore>,
    pub queue: Arc<dyn WorkQueue>,
    pub scheduler: Arc<dyn Scheduler>,
    pub alerts: Arc<dyn Alerts>,
    pub metrics: Arc<dyn Metrics>,
    pub policies: EspRegistry,
    pub clock: Arc<dyn Clock>,
}

impl SweepService {
    pub async fn sweep(&self, mode: SweepMode) -> Result<SweepReport, ServiceError> {
        let mut report = SweepReport::default();
        for state in SWEPT {
            let seen = self
                .each_in(state, |c| self.sweep_one(c, mode), &mut report)
                .await?;
            report.campaigns.insert(state.as_str(), seen);
        }
        if mode == SweepMode::Restart {
            let seen = self
                .each_in(State::Completed, |c| self.restore_cleanup(c), &mut report)
                .await?;
            report.campaigns.insert(State::Completed.as_str(), seen);
        }
        let gauges: Vec<Measurement> = SWEPT
            .iter()
            .map(|s| {
                let n = report.campaigns.get(s.as_str()).copied().unwrap_or(0);
                Measurement::count(name::CAMPAIGNS, n).with("state", s.as_str())
            })
            .collect();
        self.metrics.record(&gauges);
        tracing::info!(mode = ?mode, campaigns = ?report.campaigns, resumed = report.resumed,
            polls_restored = report.polls_restored, cleanups_restored = report.cleanups_restored,
            completed = report.completed, alerted = report.alerted, errors = report.errors, "sweep done");
        Ok(report)
    }

    /// Runs `act` on every campaign in `state`, page by page (at most [`MAX_PER_STATE`]);
    /// returns how many it read. A campaign `act` fails on is logged and counted, and the sweep
    /// goes on; only a page that cannot be read ends it.
    async fn each_in<'a, F, Fut>(
        &'a self,
        state: State,
        act: F,
        report: &mut SweepReport,
    ) -> Result<u64, ServiceError>
    where
        F: Fn(Campaign) -> Fut,
        Fut: std::future::Future<Output = Result<Act, ServiceError>> + 'a,
    {
        let filter = CampaignFilter {
            state: Some(state),
            ..Default::default()
        };
        let mut after: Option<Position> = None;
        let mut seen = 0u64;
        loop {
            let page = self.store.list(&filter, after.as_ref(), MAX_PAGE).await?;
            for c in page.campaigns {
                // A page may list a campaign that just moved on (an index read lags).
                if c.state != state {
                    continue;
                }
                seen += 1;
                let id = c.id.clone();
                match act(c).await {
                    Ok(a) => report.count(a),
                    Err(e) => {
                        report.errors += 1;
                        tracing::warn!(campaign_id = %id, state = %state, error = %chain(&e),
                            "the sweep could not act on the campaign; next sweep tries again");
                    }
                }
            }
            after = page.next;
            if after.is_none() {
                return Ok(seen);
            }
            if seen >= MAX_PER_STATE as u64 {
                tracing::warn!(state = %state, seen, "more campaigns in the state than one sweep reads");
                report.truncated.push(state.as_str());
                return Ok(seen);
            }
        }
    }

    async fn sweep_one(&self, c: Campaign, mode: SweepMode) -> Result<Act, ServiceError> {
        match c.state {
            State::Received | State::Uploading => self.stalled_upload(c, mode).await,
            State::AudienceReady => self.unbooked(c, mode).await,
            State::Scheduled | State::Collecting => self.polled(c, mode).await,
            State::PartiallyScheduled => match self.polled(c.clone(), mode).await? {
                Act::Nothing => self.unbooked(c, mode).await,
                done => Ok(done),
            },
            State::Completed | State::Failed | State::Cancelled => Ok(Act::Nothing),
        }
    }

    /// `received`/`uploading` without progress for an hour: the upload's continuation.
    async fn stalled_upload(&self, c: Campaign, mode: SweepMode) -> Result<Act, ServiceError> {
        let now = self.clock.now();
        if mode == SweepMode::Hourly && !idle_for(&c, now, STALL) {
            return Ok(Act::Nothing);
        }
        let reason = format!("no progress in {} since {}", c.state, c.updated_at);
        let item = WorkItem::ContinueUpload {
            campaign_id: c.id.clone(),
        };
        self.resume(c, item, mode, reason).await
    }

    /// `audience_ready` (stalled, or past its send time) and `partially_scheduled` (past its
    /// send time): schedule-send again, unless what is left could only be booked late.
    async fn unbooked(&self, c: Campaign, mode: SweepMode) -> Result<Act, ServiceError> {
        let now = self.clock.now();
        let Some(send_at) = c.send_at else {
            return Ok(Act::Nothing);
        };
        let claimed = c.send_claim.as_ref().is_some_and(|cl| cl.until > now);
        let passed = send_at <= now;
        let due = match c.state {
            // A restart lost the message whatever the claim says (its owner was this process).
            State::AudienceReady if mode == SweepMode::Restart => true,
            State::AudienceReady => !claimed && (passed || idle_for(&c, now, STALL)),
            State::PartiallyScheduled => !claimed && passed,
            _ => false,
        };
        if !due {
            return Ok(Act::Nothing);
        }
        let policy = match (c.esp, &c.account) {
            (Some(esp), Some(account)) => self.policies.policy(esp, account),
            _ => Default::default(),
        };
        let grace = SignedDuration::try_from(policy.grace).unwrap_or_default();
        let late = send_at.checked_add(grace).map_or(true, |t| t < now);
        let booked = booked(&c);
        if booked > 0 && late {
            // schedule-send would book the rest at its stale time: never, and never `failed`
            // either (mail may go out for what was booked).
            let reason = format!(
                "{booked} of its sends booked; the rest could not be booked before the send time \
                 {send_at} and its grace passed: mail may go out for what was booked"
            );
            return self.alert_stuck(c, reason).await;
        }
        // schedule-send decides by the account's send policy: book, book at once, or fail the
        // campaign with the reason.
        let reason = format!("{} and not booked; send time {send_at}", c.state);
        let item = WorkItem::ScheduleSend {
            campaign_id: c.id.clone(),
        };
        self.resume(c, item, mode, reason).await
    }

    /// A polled campaign: completed eight days after the send, else its poll schedule
    /// recreated when a poll is late (at a restart: always).
    async fn polled(&self, c: Campaign, mode: SweepMode) -> Result<Act, ServiceError> {
        let now = self.clock.now();
        let Some(send_at) = c.send_at else {
            return Ok(Act::Nothing);
        };
        if send_at
            .checked_add(DAY * COMPLETE_AFTER_DAYS as i32)
            .is_ok_and(|t| t <= now)
        {
            return self.complete_overdue(c, send_at).await;
        }
        // The polls that should have run by now (each counted two hours after its time).
        let expected = (now.duration_since(send_at) - POLL_LATE).as_hours() / 24;
        let expected = expected.clamp(0, POLL_DAYS) as u32;
        if mode == SweepMode::Hourly && expected == 0 {
            return Ok(Act::Nothing);
        }
        let last_day = self.last_snapshot_day(&c).await?;
        if mode == SweepMode::Hourly && last_day >= expected {
            return Ok(Act::Nothing);
        }
        let mut schedule = remaining_polls(&c, send_at, last_day);
        if schedule.is_once() && schedule.first_at < now {
            // Only the last day's poll is left, and its time has passed: it runs shortly.
            let at = now.checked_add(ONE_OFF_LEAD).unwrap_or(now);
            (schedule.first_at, schedule.last_at) = (at, at);
        }
        self.scheduler.create(&schedule).await?;
        if mode == SweepMode::Hourly {
            tracing::warn!(campaign_id = %c.id, last_day, expected, "a daily poll is late: poll schedule recreated");
            self.history(
                &c,
                "polls_restored",
                format!("polls from day {}", last_day + 1),
            )
            .await;
        }
        Ok(Act::PollsRestored)
    }

    /// Eight days after the send: completed with the figures it has, and a note; the clean-up
    /// scheduled (poll-metrics works out the ESP's retention). Alerts when it has no figures.
    async fn complete_overdue(&self, c: Campaign, send_at: Timestamp) -> Result<Act, ServiceError> {
        let now = self.clock.now();
        let last_day = self.last_snapshot_day(&c).await?;
        // Before the completion is saved: a one-off that fires on a campaign still polled
        // runs its last poll, which completes it as well.
        let at = now.checked_add(ONE_OFF_LEAD).unwrap_or(now);
        self.scheduler
            .create(&PollSchedule::cleanup_at(&c.id, at))
            .await?;
        let days = now.duration_since(send_at).as_hours() / 24;
        let note = if last_day == 0 {
            format!(
                "completed by the sweep {days} days after the send without figures from the ESP"
            )
        } else {
            format!(
                "completed by the sweep {days} days after the send with the figures of day {last_day}: the later polls did not run"
            )
        };
        let mut next = c;
        next.transition(State::Completed, now)?;
        next.note = Some(crate::text::bounded(&note, crate::campaign::MAX_NOTE));
        next.send_claim = None;
        let saved = match self.store.save(&next).await {
            Ok(saved) => saved,
            Err(StoreError::Conflict { .. }) => return Ok(Act::Nothing),
            Err(e) => return Err(e.into()),
        };
        tracing::warn!(campaign_id = %saved.id, last_day, "campaign completed by the sweep: {note}");
        self.history(&saved, "completed", note.clone()).await;
        if last_day == 0 {
            raise(
                self.alerts.as_ref(),
                &Alert::about(AlertKind::Stuck, &saved, note, now),
            )
            .await;
            return Ok(Act::CompletedAndAlerted);
        }
        Ok(Act::Completed)
    }

    /// At a restart: a completed campaign's clean-up that has not run gets its one-off again.
    async fn restore_cleanup(&self, c: Campaign) -> Result<Act, ServiceError> {
        if c.cleaned_up_at.is_some() {
            return Ok(Act::Nothing);
        }
        let now = self.clock.now();
        let at = c
            .cleanup_due_at
            .unwrap_or_else(|| now.checked_add(ONE_OFF_LEAD).unwrap_or(now));
        self.scheduler
            .create(&PollSchedule::cleanup_at(&c.id, at))
            .await?;
        Ok(Act::CleanupRestored)
    }

    /// Queues `item` for a stuck campaign: at a restart always; hourly at most
    /// [`MAX_RESUMES`] times without progress, an hour apart, then alerts instead.
    async fn resume(
        &self,
        c: Campaign,
        item: WorkItem,
        mode: SweepMode,
        reason: String,
    ) -> Result<Act, ServiceError> {
        let now = self.clock.now();
        if mode == SweepMode::Restart {
            self.queue.enqueue(&item).await?;
            tracing::info!(campaign_id = %c.id, item = %item.label(), "resumed after a restart");
            return Ok(Act::Resumed);
        }
        let mut mark = current_mark(&c);
        if mark
            .resumed_at
            .is_some_and(|at| now.duration_since(at) < STALL)
        {
            // The last resume is under an hour old: give it its time.
            return Ok(Act::Nothing);
        }
        if mark.resumes >= MAX_RESUMES {
            let reason = format!(
                "{reason}; {} resumes by the sweep did not help",
                mark.resumes
            );
            return self.alert_stuck(c, reason).await;
        }
        mark.resumes += 1;
        mark.resumed_at = Some(now);
        let mut next = c;
        next.sweep = Some(mark);
        // The mark is written first, conditionally: of two sweeps, one resumes.
        let saved = match self.store.save(&next).await {
            Ok(saved) => saved,
            Err(StoreError::Conflict { .. }) => return Ok(Act::Nothing),
            Err(e) => return Err(e.into()),
        };
        self.queue.enqueue(&item).await?;
        let resumes = saved.sweep.as_ref().map_or(0, |m| m.resumes);
        tracing::warn!(campaign_id = %saved.id, item = %item.label(), resumes, %reason, "stuck campaign resumed");
        self.history(
            &saved,
            "resumed",
            format!("{reason}; queued {}", item.label()),
        )
        .await;
        Ok(Act::Resumed)
    }

    /// Alerts that the campaign is stuck, once in its state.
    async fn alert_stuck(&self, c: Campaign, reason: String) -> Result<Act, ServiceError> {
        let mut mark = current_mark(&c);
        if mark.alerted_at.is_some() {
            return Ok(Act::Nothing);
        }
        let now = self.clock.now();
        let reason = crate::text::reason(&reason);
        let alert = Alert::about(AlertKind::Stuck, &c, reason.as_str(), now);
        // Raised before it is recorded: a failed raise is tried again next hour.
        if let Err(e) = self.alerts.raise(&alert).await {
            tracing::error!(alert = alert.kind.as_str(), campaign_id = %c.id, error = %chain(&e),
                "{} (the alert could not be raised; next sweep tries again)", alert.subject());
            return Ok(Act::AlertFailed);
        }
        mark.alerted_at = Some(now);
        let mut next = c;
        next.sweep = Some(mark);
        match self.store.save(&next).await {
            Ok(saved) => self.history(&saved, "alerted", reason).await,
            // Moved on meanwhile: the alert stands, the next state starts afresh.
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Act::Alerted)
    }

    async fn last_snapshot_day(&self, c: &Campaign) -> Result<u32, ServiceError> {
        if c.state == State::Scheduled {
            // Its first snapshot makes it `collecting`.
            return Ok(0);
        }
        let snapshots = self.store.snapshots(&c.id).await?;
        Ok(snapshots.iter().map(|s| s.day).max().unwrap_or(0))
    }

    async fn history(&self, c: &Campaign, outcome: &str, detail: String) {
        let now = self.clock.now();
        let run = run_record("sweep", now, now, outcome, None, Some(detail));
        record_run(self.store.as_ref(), &c.id, run).await;
    }
}

/// What the sweep did to one campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Nothing,
    Resumed,
    PollsRestored,
    CleanupRestored,
    Completed,
    CompletedAndAlerted,
    Alerted,
    /// The alert could not be raised.
    AlertFailed,
}

impl SweepReport {
    fn count(&mut self, act: Act) {
        match act {
            Act::Nothing => {}
            Act::Resumed => self.resumed += 1,
            Act::PollsRestored => self.polls_restored += 1,
            Act::CleanupRestored => self.cleanups_restored += 1,
            Act::Completed => self.completed += 1,
            Act::CompletedAndAlerted => {
                self.completed += 1;
                self.alerted += 1;
            }
            Act::Alerted => self.alerted += 1,
            Act::AlertFailed => self.errors += 1,
        }
    }
}

/// The campaign's daily polls still to come: from the day after `last_day` (the last snapshot;
/// 0 for none) to the last polling day. Past the last day, that one day again (a poll on it
/// completes the campaign).
pub fn remaining_polls(c: &Campaign, send_at: Timestamp, last_day: u32) -> PollSchedule {
    let full = PollSchedule::daily_after(&c.id, send_at, POLL_DAYS);
    let next_day = i64::from(last_day).saturating_add(1).min(POLL_DAYS) as i32;
    PollSchedule {
        first_at: send_at.checked_add(DAY * next_day).unwrap_or(full.first_at),
        ..full
    }
}

/// Whether the record has not changed for `d`.
fn idle_for(c: &Campaign, now: Timestamp, d: SignedDuration) -> bool {
    now.duration_since(c.updated_at) >= d
}

/// The sweep's marks for the campaign's current state. Progress since the marks were made
/// (a newer `updated_at`) starts the resumes afresh; an alert holds for the whole state.
fn current_mark(c: &Campaign) -> SweepMark {
    match &c.sweep {
        Some(m) if m.state == c.state && m.progress_at == c.updated_at => m.clone(),
        Some(m) if m.state == c.state => SweepMark {
            state: c.state,
            progress_at: c.updated_at,
            resumes: 0,
            resumed_at: None,
            alerted_at: m.alerted_at,
        },
        _ => SweepMark {
            state: c.state,
            progress_at: c.updated_at,
            resumes: 0,
            resumed_at: None,
            alerted_at: None,
        },
    }
}
