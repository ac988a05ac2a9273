//! Step-to-step work on SQS: one queue per consumer, so each Lambda's event source mapping
//! sees only its own messages.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use espbridge_core::ports::queue::{QueueError, WorkItem, WorkQueue};

/// [`WorkQueue`] on SQS: [`WorkItem::ContinueUpload`] goes to the upload queue,
/// [`WorkItem::ScheduleSend`] to the schedule queue. The body is the item's JSON.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    upload_queue_url: String,
    schedule_queue_url: String,
}

impl SqsQueue {
    pub fn new(
        client: Client,
        upload_queue_url: impl Into<String>,
        schedule_queue_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            upload_queue_url: upload_queue_url.into(),
            schedule_queue_url: schedule_queue_url.into(),
        }
    }

    /// The queue that carries `item`.
    pub fn queue_url(&self, item: &WorkItem) -> &str {
        match item {
            WorkItem::ContinueUpload { .. } => &self.upload_queue_url,
            WorkItem::ScheduleSend { .. } => &self.schedule_queue_url,
        }
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError> {
        let body = serde_json::to_string(item).map_err(|e| QueueError {
            item: item.label(),
            source: crate::error::local("SendMessage", format!("cannot serialize: {e}")),
        })?;
        self.client
            .send_message()
            .queue_url(self.queue_url(item))
            .message_body(&body)
            .send()
            .await
            .map_err(|e| QueueError {
                item: item.label(),
                source: crate::error::from_sdk("SendMessage", e),
            })?;
        Ok(())
    }
}
