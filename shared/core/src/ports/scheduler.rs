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

impl PollSchedule {
    /// Daily polls at send + 1 day ... send + `days` days.
    pub fn daily_after(campaign_id: &CampaignId, send_at: Timestamp, days: i64) -> Self {
        let day = jiff::SignedDuration::from_hours(24);
        Self {
            name: format!("espbridge-poll-{campaign_id}"),
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
            name: format!("espbridge-cleanup-{campaign_id}"),
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
