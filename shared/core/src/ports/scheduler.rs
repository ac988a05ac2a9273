//! Timers (EventBridge Scheduler in AWS, an in-process timer locally).

use crate::ids::CampaignId;
use crate::ports::backend::BackendError;
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// "Invoke poll-metrics for this campaign once a day from `first_at` to `last_at`, then delete
/// yourself." `first_at == last_at` is a one-off (the clean-up after a retention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollSchedule {
    pub name: String,
    pub campaign_id: CampaignId,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
}

/// Longest schedule name EventBridge Scheduler takes.
pub const MAX_NAME_LEN: usize = 64;

/// A schedule's name: `<kind>-<campaign id>`, or, when that would pass 64 characters, the id
/// cut short and followed by 8 hex digits of its hash, so every valid campaign id (1 to 64 of
/// `[A-Za-z0-9_-]`) gives a distinct name of 1 to 64 of `[0-9a-zA-Z-_.]`, as Scheduler requires.
pub fn schedule_name(kind: &str, campaign_id: &CampaignId) -> String {
    let full = format!("{kind}-{campaign_id}");
    if full.len() <= MAX_NAME_LEN {
        return full;
    }
    let hash = xxhash_rust::xxh3::xxh3_64(campaign_id.as_str().as_bytes());
    let suffix = format!("-{:08x}", hash as u32);
    let room = MAX_NAME_LEN - kind.len() - 1 - suffix.len();
    // Campaign ids are ASCII, so any byte index is a character boundary.
    format!("{kind}-{}{suffix}", &campaign_id.as_str()[..room])
}

impl PollSchedule {
    /// Daily polls at send + 1 day ... send + `days` days.
    pub fn daily_after(campaign_id: &CampaignId, send_at: Timestamp, days: i64) -> Self {
        let day = jiff::SignedDuration::from_hours(24);
        Self {
            name: schedule_name("espbridge-poll", campaign_id),
            campaign_id: campaign_id.clone(),
            first_at: send_at.saturating_add(day).unwrap_or(send_at),
            last_at: send_at.saturating_add(day * days as i32).unwrap_or(send_at),
        }
    }
}

impl PollSchedule {
    /// One invocation at `at`, e.g. the ESP clean-up a retention after completion.
    pub fn cleanup_at(campaign_id: &CampaignId, at: Timestamp) -> Self {
        Self {
            name: schedule_name("espbridge-cleanup", campaign_id),
            campaign_id: campaign_id.clone(),
            first_at: at,
            last_at: at,
        }
    }
    pub fn is_once(&self) -> bool {
        self.first_at == self.last_at
    }
}

/// The payload a schedule delivers to poll-metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollEvent {
    pub campaign_id: CampaignId,
}

/// Why a schedule could not be created or deleted.
#[derive(Debug, thiserror::Error)]
#[error("schedule {name}")]
pub struct SchedulerError {
    pub name: String,
    #[source]
    pub source: BackendError,
}

impl SchedulerError {
    pub fn is_retryable(&self) -> bool {
        self.source.retryable
    }
}

#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Creates the schedule; one that already exists under the name counts as created.
    async fn create(&self, schedule: &PollSchedule) -> Result<(), SchedulerError>;
    /// Deletes it; a missing schedule counts as deleted.
    async fn delete(&self, name: &str) -> Result<(), SchedulerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_scheduler_for_every_valid_campaign_id() {
        let short = CampaignId::parse("spring-sale").unwrap();
        assert_eq!(
            schedule_name("espbridge-poll", &short),
            "espbridge-poll-spring-sale"
        );
        let long_a = CampaignId::parse(&"a".repeat(64)).unwrap();
        let mut b = "a".repeat(63);
        b.push('b');
        let long_b = CampaignId::parse(&b).unwrap();
        for kind in ["espbridge-poll", "espbridge-cleanup"] {
            let (na, nb) = (schedule_name(kind, &long_a), schedule_name(kind, &long_b));
            assert!(
                na.len() <= MAX_NAME_LEN && nb.len() <= MAX_NAME_LEN,
                "{na} {nb}"
            );
            assert_ne!(na, nb, "ids differing in their last character");
            assert!(na.starts_with(kind));
            assert!(
                na.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            );
            assert_eq!(na, schedule_name(kind, &long_a), "deterministic");
        }
        // The longest id that still fits whole keeps its plain name.
        let fits = CampaignId::parse(&"c".repeat(MAX_NAME_LEN - "espbridge-poll-".len())).unwrap();
        assert_eq!(
            schedule_name("espbridge-poll", &fits),
            format!("espbridge-poll-{fits}")
        );
    }
}
