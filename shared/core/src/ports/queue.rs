//! Work handed from one step to the next (SQS in AWS, an in-process queue locally).

use crate::ids::CampaignId;
use crate::ports::backend::BackendError;
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

/// Why a work item could not be handed on.
#[derive(Debug, thiserror::Error)]
#[error("could not enqueue {item}")]
pub struct QueueError {
    /// The item, e.g. `schedule_send c-42`.
    pub item: String,
    #[source]
    pub source: BackendError,
}

impl QueueError {
    pub fn is_retryable(&self) -> bool {
        self.source.retryable
    }
}

impl WorkItem {
    /// A short label for logs and errors: the kind and the campaign id.
    pub fn label(&self) -> String {
        match self {
            WorkItem::ContinueUpload { campaign_id } => format!("continue_upload {campaign_id}"),
            WorkItem::ScheduleSend { campaign_id } => format!("schedule_send {campaign_id}"),
        }
    }

    pub fn campaign_id(&self) -> &CampaignId {
        match self {
            WorkItem::ContinueUpload { campaign_id } | WorkItem::ScheduleSend { campaign_id } => {
                campaign_id
            }
        }
    }
}

#[async_trait]
pub trait WorkQueue: Send + Sync {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError>;
}
