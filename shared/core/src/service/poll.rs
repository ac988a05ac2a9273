//! poll-metrics: once a day for seven days after the send, one snapshot per campaign-day.
//!
//! The day is derived from the clock and the send time (not from a counter), so a retried or
//! duplicated trigger writes the same day's snapshot, which the store keeps once.
//!
//! After the last day the campaign is `completed` and what it left at the ESP is cleaned up:
//! at once, or — for ESPs with a retention (`Esp::cleanup_after`, Bronto's lists) — by a one-off
//! schedule at the due time that invokes this same function. The due time is saved with the
//! completion, and every later trigger re-creates the one-off schedule until the clean-up is
//! done, so a crash between the two writes loses nothing.
//!
//! A campaign for which the ESP has no figures by the last day is completed all the same, with
//! a note saying so (waiting longer changes nothing: the ESP's figures are final by then).

use super::accounts::EspRegistry;
use super::common::{ServiceError, chain, load, record_run, run_record};
use super::schedule::POLL_DAYS;
use crate::campaign::{MetricSnapshot, State};
use crate::clock::Clock;
use crate::ids::CampaignId;
use crate::ports::scheduler::PollSchedule;
use crate::ports::{CampaignStore, MetricCounts, Scheduler, StoreError};
use jiff::SignedDuration;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A trigger may fire a little early or late; it still counts for the nearest day.
const SLACK: SignedDuration = SignedDuration::from_hours(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// Day `day` stored (or already stored).
    Stored {
        day: u32,
        new: bool,
    },
    /// The ESP has no figures yet.
    NoDataYet {
        day: u32,
    },
    /// Before the first day.
    TooEarly,
    Completed {
        day: u32,
    },
    /// The ESP objects of a completed campaign were removed.
    CleanedUp,
    Skipped(State),
}

/// The poll-metrics use case and the ports it needs: the campaign store, the ESP accounts, the
/// scheduler (to remove a finished schedule, to come back for a clean-up) and the clock.
#[derive(Clone)]
pub struct PollService {
    pub store: Arc<dyn CampaignStore>,
    pub esps: EspRegistry,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
}

impl PollService {
    pub async fn poll_metrics(&self, id: &CampaignId) -> Result<PollOutcome, ServiceError> {
        let started = self.clock.now();
        let mut c = load(self.store.as_ref(), id).await?;
        if c.state == State::Completed && c.cleaned_up_at.is_none() {
            return self.cleanup_completed(c).await;
        }
        if !matches!(
            c.state,
            State::Scheduled | State::Collecting | State::PartiallyScheduled
        ) {
            if c.state.is_terminal()
                && let Some(name) = &c.schedule_name
            {
                // A schedule that outlived its campaign stops here.
                self.scheduler.delete(name).await?;
            }
            return Ok(PollOutcome::Skipped(c.state));
        }
        let Some(send_at) = c.send_at else {
            return Ok(PollOutcome::Skipped(c.state));
        };
        let now = self.clock.now();
        let elapsed = now.duration_since(send_at) + SLACK;
        let day = elapsed.as_hours() / 24;
        if day < 1 {
            return Ok(PollOutcome::TooEarly);
        }
        let day = day.min(POLL_DAYS) as u32;
        let esp = self.esps.for_campaign(&c)?;
        let last = i64::from(day) >= POLL_DAYS;
        let fetched = fetch_counts(esp.as_ref(), &c).await?;
        let has_figures = fetched.is_some();
        let new = match fetched {
            Some((counts, by_variant)) => {
                let new = self
                    .store
                    .put_snapshot(
                        &c.id,
                        &MetricSnapshot {
                            day,
                            taken_at: now,
                            counts,
                            by_variant,
                        },
                    )
                    .await?;
                tracing::info!(campaign_id = %c.id, day, sent = counts.sent, delivered = counts.delivered,
                    opens = counts.opens, clicks = counts.clicks, unsubscribes = counts.unsubscribes, new, "metrics snapshot");
                new
            }
            None if !last => {
                tracing::info!(campaign_id = %c.id, day, "no figures at the ESP yet");
                self.poll_run(&c.id, started, "no_data", day).await;
                return Ok(PollOutcome::NoDataYet { day });
            }
            None => {
                // Waiting longer changes nothing: the ESP's figures are final by now.
                tracing::warn!(campaign_id = %c.id, day, "no figures from the ESP by the last poll; completing without them");
                let last_day = self
                    .store
                    .snapshots(&c.id)
                    .await?
                    .iter()
                    .map(|s| s.day)
                    .max();
                c.note = Some(no_figures_note(day, last_day));
                false
            }
        };
        let before = c.state;
        if c.state == State::Scheduled && has_figures {
            c.transition(State::Collecting, now)?;
        }
        if last {
            c.transition(State::Completed, now)?;
            c.cleanup_due_at = Some(
                esp.cleanup_after()
                    .and_then(|d| now.checked_add(d).ok())
                    .unwrap_or(now),
            );
        }
        if c.state != before {
            match self.store.save(&c).await {
                Ok(saved) => c = saved,
                // Another trigger for the same day got there first; its write stands.
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if last {
            if let Some(name) = &c.schedule_name {
                self.scheduler.delete(name).await?;
            }
            if c.state == State::Completed
                && let Err(e) = self.cleanup_completed(c.clone()).await
            {
                // The snapshot stands; a one-off schedule comes back for the clean-up.
                tracing::warn!(campaign_id = %c.id, error = %chain(&e), "clean-up left for later");
            }
            self.poll_run(&c.id, started, "completed", day).await;
            return Ok(PollOutcome::Completed { day });
        }
        self.poll_run(&c.id, started, "stored", day).await;
        Ok(PollOutcome::Stored { day, new })
    }

    /// Cleans up a completed campaign's ESP objects when due; before that, makes sure the
    /// one-off schedule that will come back for it exists.
    async fn cleanup_completed(
        &self,
        mut c: crate::campaign::Campaign,
    ) -> Result<PollOutcome, ServiceError> {
        let now = self.clock.now();
        let due = match c.cleanup_due_at {
            Some(due) => due,
            None => {
                // Completed by the sweep, which calls no ESP and so knows no retention: the
                // due time counts from the completion.
                let due = self
                    .esps
                    .for_campaign(&c)?
                    .cleanup_after()
                    .and_then(|d| c.updated_at.checked_add(d).ok())
                    .unwrap_or(now);
                c.cleanup_due_at = Some(due);
                c = self.store.save(&c).await?;
                // The sweep's one-off that fired may still exist under the name: replace it.
                let once = PollSchedule::cleanup_at(&c.id, due);
                self.scheduler.delete(&once.name).await?;
                due
            }
        };
        let once = PollSchedule::cleanup_at(&c.id, due);
        if now < due {
            self.scheduler.create(&once).await?;
            return Ok(PollOutcome::Skipped(c.state));
        }
        let esp = self.esps.for_campaign(&c)?;
        let mut result = Ok(());
        for ids in c.esp_id_sets() {
            if let Err(e) = esp.cleanup(ids).await {
                result = Err(e);
            }
        }
        if let Err(e) = result {
            // The one-off schedule (or the next trigger) comes back; retry an hour later.
            tracing::warn!(campaign_id = %c.id, error = %chain(&e), "ESP clean-up failed; will retry");
            let later = PollSchedule::cleanup_at(
                &c.id,
                now.checked_add(SignedDuration::from_hours(1))
                    .unwrap_or(now),
            );
            self.scheduler.delete(&once.name).await?;
            self.scheduler.create(&later).await?;
            return Err(e.into());
        }
        c.cleaned_up_at = Some(now);
        match self.store.save(&c).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.scheduler.delete(&once.name).await?;
        tracing::info!(campaign_id = %c.id, "ESP objects of the completed campaign removed");
        Ok(PollOutcome::CleanedUp)
    }

    async fn poll_run(&self, id: &CampaignId, started: jiff::Timestamp, outcome: &str, day: u32) {
        let run = run_record(
            "poll",
            started,
            self.clock.now(),
            outcome,
            None,
            Some(format!("day {day}")),
        );
        record_run(self.store.as_ref(), id, run).await;
    }
}

/// The note of a campaign completed at its last poll without figures from the ESP.
fn no_figures_note(day: u32, last_day: Option<u32>) -> String {
    match last_day {
        None => {
            format!("completed without figures: the ESP reported none by day {day} after the send")
        }
        Some(d) => {
            format!("the ESP reported no figures on day {day}; the last are those of day {d}")
        }
    }
}

/// The campaign's cumulative counts (the sum over its variants) and, with variants, each
/// variant's; `None` while the ESP has figures for none of them.
async fn fetch_counts(
    esp: &dyn crate::ports::Esp,
    c: &crate::campaign::Campaign,
) -> Result<Option<(MetricCounts, BTreeMap<String, MetricCounts>)>, crate::ports::EspError> {
    if c.variants.is_empty() {
        return Ok(esp
            .fetch_metrics(&c.esp_ids)
            .await?
            .map(|m| (m, BTreeMap::new())));
    }
    let mut total = MetricCounts::default();
    let mut by_variant = BTreeMap::new();
    let mut any = false;
    // A partially scheduled campaign has figures only for the sends that were booked.
    let partial = c.state == State::PartiallyScheduled;
    for v in c
        .variants
        .iter()
        .filter(|v| !partial || v.esp_ids.get(super::schedule::SENT_KEY).is_some())
    {
        let m = esp.fetch_metrics(&v.esp_ids).await?;
        any |= m.is_some();
        let m = m.unwrap_or_default();
        total += m;
        by_variant.insert(v.name.clone(), m);
    }
    Ok(any.then_some((total, by_variant)))
}
