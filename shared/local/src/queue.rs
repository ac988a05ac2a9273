//! [`WorkQueue`] as an in-process channel: local mode's stand-in for SQS. The server owns the
//! receiver and hands each item to the step it names.

use async_trait::async_trait;
use espbridge_core::ports::BackendError;
use espbridge_core::ports::queue::{QueueError, WorkItem, WorkQueue};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// The sending side. Cloning shares the channel.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    tx: UnboundedSender<WorkItem>,
}

impl LocalQueue {
    /// A queue and the receiver its items arrive on. Unbounded because enqueueing must not wait
    /// on the consumer, as with SQS; the number of items is bounded by the number of campaigns.
    pub fn new() -> (LocalQueue, UnboundedReceiver<WorkItem>) {
        let (tx, rx) = unbounded_channel();
        (LocalQueue { tx }, rx)
    }
}

#[async_trait]
impl WorkQueue for LocalQueue {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError> {
        self.tx.send(item.clone()).map_err(|_| QueueError {
            item: item.label(),
            source: BackendError::permanent("enqueue", "the local queue's consumer has stopped"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ids::CampaignId;

    #[tokio::test]
    async fn items_arrive_in_order() {
        let (q, mut rx) = LocalQueue::new();
        let a = CampaignId::parse("a").unwrap();
        let b = CampaignId::parse("b").unwrap();
        let items = [
            WorkItem::ContinueUpload {
                campaign_id: a.clone(),
            },
            WorkItem::ScheduleSend { campaign_id: b },
            WorkItem::ScheduleSend { campaign_id: a },
        ];
        let q2 = q.clone();
        q.enqueue(&items[0]).await.unwrap();
        q2.enqueue(&items[1]).await.unwrap();
        q.enqueue(&items[2]).await.unwrap();
        for expected in &items {
            assert_eq!(rx.recv().await.as_ref(), Some(expected));
        }
        assert!(rx.try_recv().is_err(), "nothing else was queued");
    }

    #[tokio::test]
    async fn enqueue_fails_once_the_receiver_is_gone() {
        let (q, rx) = LocalQueue::new();
        drop(rx);
        let item = WorkItem::ScheduleSend {
            campaign_id: CampaignId::parse("c7").unwrap(),
        };
        let err = q.enqueue(&item).await.unwrap_err();
        assert_eq!(err.item, "schedule_send c7");
        assert!(!err.is_retryable(), "a stopped consumer does not come back");
    }
}
