//! poll-metrics: once a day for seven days after the send, one snapshot per campaign-day.
//!
//! The day is derived from the clock and the send time (not from a counter), so a retried or
//! duplicated trigger writes the same day's snapshot, which the store keeps once.

use super::context::{ServiceError, Services};
use super::schedule::POLL_DAYS;
use crate::campaign::{MetricSnapshot, RunRecord, State};
use crate::ids::CampaignId;
use crate::ports::StoreError;
use jiff::SignedDuration;

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
    Skipped(State),
}

impl Services {
    pub async fn poll_metrics(&self, id: &CampaignId) -> Result<PollOutcome, ServiceError> {
        let started = self.clock.now();
        let mut c = self.load(id).await?;
        if !matches!(c.state, State::Scheduled | State::Collecting) {
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
        let counts = esp.fetch_metrics(&c.esp_ids).await?;
        let Some(counts) = counts else {
            tracing::info!(campaign_id = %c.id, day, "no figures at the ESP yet");
            self.poll_run(&c.id, started, "no_data", day).await;
            return Ok(PollOutcome::NoDataYet { day });
        };
        let new = self
            .store
            .put_snapshot(
                &c.id,
                &MetricSnapshot {
                    day,
                    taken_at: now,
                    counts,
                },
            )
            .await?;
        tracing::info!(campaign_id = %c.id, day, sent = counts.sent, delivered = counts.delivered,
            opens = counts.opens, clicks = counts.clicks, unsubscribes = counts.unsubscribes, new, "metrics snapshot");
        let before = c.state;
        if c.state == State::Scheduled {
            c.transition(State::Collecting, now)
                .map_err(|e| ServiceError::Config(e.to_string()))?;
        }
        let last = i64::from(day) >= POLL_DAYS;
        if last {
            c.transition(State::Completed, now)
                .map_err(|e| ServiceError::Config(e.to_string()))?;
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
            if let Err(e) = esp.cleanup(&c.esp_ids).await {
                tracing::warn!(campaign_id = %c.id, error = %e, "ESP clean-up failed; left for later");
            }
            self.poll_run(&c.id, started, "completed", day).await;
            return Ok(PollOutcome::Completed { day });
        }
        self.poll_run(&c.id, started, "stored", day).await;
        Ok(PollOutcome::Stored { day, new })
    }

    async fn poll_run(&self, id: &CampaignId, started: jiff::Timestamp, outcome: &str, day: u32) {
        let run = RunRecord {
            step: "poll".into(),
            started_at: started,
            finished_at: self.clock.now(),
            outcome: outcome.into(),
            rows_uploaded: 0,
            batches: 0,
            detail: Some(format!("day {day}")),
        };
        self.record_run(id, run).await;
    }
}
