//! Work handed from one step to the next (SQS in AWS, an in-process queue locally).

use crate::ids::CampaignId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A message between steps. Delivery is at least once: every consumer is idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkItem {
    /// Resume an upload that stopped near the end of its invocation's time.
    ContinueUpload { campaign_id: CampaignId },
    /// The audience is at the ESP: clone, attach and schedule.
    ScheduleSend { campaign_id: CampaignId },
}

#[derive(Debug, thiserror::Error)]
#[error("could not enqueue {item}: {detail}")]
pub struct QueueError {
    pub item: String,
    pub detail: String,
}

#[async_trait]
pub trait WorkQueue: Send + Sync {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError>;
}
