//! Work handed from one step to the next (SQS in AWS, an in-process queue locally).

use crate::ids::CampaignId;
use crate::ports::backend::BackendError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The receive on which a message is delivered for the last time: the step then runs as its
/// final attempt (a retryable error fails the campaign with its reason instead of leaving the
/// message to the dead-letter queue with the campaign stuck). In AWS it must equal the queues'
/// redrive `maxReceiveCount` (infra/template.yaml; the test below checks it); the local queue
/// redelivers up to the same count.
pub const MAX_RECEIVES: u32 = 5;

/// Whether the `receive_count`th receive of a message is its last allowed one.
pub fn is_final_receive(receive_count: u32) -> bool {
    receive_count >= MAX_RECEIVES
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every redrive policy of the SAM template gives up after [`MAX_RECEIVES`] receives.
    #[test]
    fn max_receives_matches_the_templates_redrive_policies() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
        let template = std::fs::read_to_string(path).unwrap();
        let counts: Vec<u32> = template
            .lines()
            .filter_map(|l| l.trim().strip_prefix("maxReceiveCount:"))
            .map(|n| n.split('#').next().unwrap().trim().parse().unwrap())
            .collect();
        assert!(!counts.is_empty(), "the template has redrive policies");
        assert!(counts.iter().all(|&n| n == MAX_RECEIVES), "{counts:?}");
    }

    #[test]
    fn only_the_last_allowed_receive_is_final() {
        assert!(!is_final_receive(1));
        assert!(!is_final_receive(MAX_RECEIVES - 1));
        assert!(is_final_receive(MAX_RECEIVES));
    }
}
