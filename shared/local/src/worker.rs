//! The local queue's consumers: what the Lambda service's SQS event source and the functions'
//! handlers do in AWS. Each worker takes one message at a time and runs its step; a step that
//! ends with a retryable error sends its message back to the queue for a later receive
//! ([`LocalQueue::retry_later`]) rather than retrying in place, so the worker moves on to the
//! next message and the campaign resumes, or on the last allowed receive fails with its
//! reason, exactly as in AWS.

use crate::queue::{Delivery, Inbox, LocalQueue, Message};
use async_trait::async_trait;
use espbridge_core::ports::WorkItem;
use espbridge_core::service::{Deadline, ServiceError, Services, chain};
use std::sync::Arc;

/// Workers of the local queue by default: the upload function's reserved concurrency in the
/// SAM template, so a local night meets the ESP accounts' limits as a deployed one does.
pub const DEFAULT_WORKERS: usize = 5;

/// Runs the step a message names: the functions' handlers, in process.
#[async_trait]
pub trait Consumer: Send + Sync {
    /// `final_attempt` on the message's last allowed receive: the step then fails its campaign
    /// on a retryable error instead of leaving it for a receive that will not come.
    async fn consume(&self, message: &Message, final_attempt: bool) -> Result<(), ServiceError>;
}

/// What upload-audience (objects, continuations) and schedule-send do with their messages.
#[async_trait]
impl Consumer for Services {
    async fn consume(&self, message: &Message, final_attempt: bool) -> Result<(), ServiceError> {
        match message {
            Message::Object(object) => {
                let out = self
                    .upload()
                    .handle_object(object, Deadline::none(), final_attempt)
                    .await?;
                tracing::info!(key = %object.key, outcome = ?out, "object handled");
            }
            Message::Work(WorkItem::ContinueUpload { campaign_id }) => {
                let out = self
                    .upload()
                    .continue_upload(campaign_id, Deadline::none(), final_attempt)
                    .await?;
                tracing::info!(%campaign_id, outcome = ?out, "continuation handled");
            }
            Message::Work(WorkItem::ScheduleSend { campaign_id }) => {
                let out = self
                    .schedule()
                    .schedule_send(campaign_id, final_attempt)
                    .await?;
                tracing::info!(%campaign_id, outcome = ?out, "schedule-send handled");
            }
        }
        Ok(())
    }
}

/// `workers` long-lived workers sharing the inbox, each running one message at a time. The
/// account limits they meet are the stack's one in-memory set, as all Lambda instances meet
/// the one DynamoDB set. They run until aborted (or every sender of the queue is gone).
pub async fn run_workers<C: Consumer + 'static>(
    consumer: Arc<C>,
    queue: LocalQueue,
    inbox: Inbox,
    workers: usize,
) {
    let inbox = Arc::new(tokio::sync::Mutex::new(inbox));
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let (consumer, queue, inbox) =
                (Arc::clone(&consumer), queue.clone(), Arc::clone(&inbox));
            tokio::spawn(async move {
                loop {
                    // The lock is held only while waiting for the next message.
                    let Some(delivery) = inbox.lock().await.recv().await else {
                        return;
                    };
                    process(consumer.as_ref(), &queue, delivery).await;
                }
            })
        })
        .collect();
    drop(queue);
    for t in tasks {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "a local worker stopped");
        }
    }
}

/// Runs one receive of a message as the SQS consumer does (`sqs_batch` in AWS): done on
/// success; back to the queue after its back-off on a retryable error (dropped after the last
/// allowed receive, as SQS dead-letters it); dropped on any other error, which the step has
/// already recorded in the campaign. Logs name the message (kind and campaign id, or the
/// object's key), the receive count and the error's whole chain; never a file's content.
pub async fn process<C: Consumer + ?Sized>(consumer: &C, queue: &LocalQueue, delivery: Delivery) {
    let message = delivery.message.label();
    let receive_count = delivery.receive_count;
    match consumer
        .consume(&delivery.message, delivery.is_final())
        .await
    {
        Ok(()) => queue.done(delivery),
        Err(e) if e.is_retryable() => match queue.retry_later(delivery) {
            Some(after) => tracing::warn!(%message, receive_count, retry_in = ?after,
                error = %chain(&e), "step interrupted; the message will be redelivered"),
            None => tracing::error!(%message, receive_count, error = %chain(&e),
                "step interrupted on the last allowed receive; message dropped (SQS would dead-letter it)"),
        },
        Err(e) => {
            tracing::error!(%message, receive_count, error = %chain(&e),
                "step failed for good; message dropped");
            queue.done(delivery);
        }
    }
}
