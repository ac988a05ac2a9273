//! schedule-send: SQS messages (`WorkItem::ScheduleSend`) in, [`ScheduleService`] calls out:
//! the ESP send and the metric schedule. Retryable failures come back through SQS partial batch
//! failures; one no retry can fix is logged and acknowledged.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use espbridge_core::ports::WorkItem;
use espbridge_core::service::{ScheduleService, chain};

/// Must match the queue's redrive `maxReceiveCount` (infra/template.yaml).
pub const MAX_RECEIVES: u32 = 5;

pub async fn handle(services: &ScheduleService, event: SqsEvent) -> SqsBatchResponse {
    let mut resp = SqsBatchResponse::default();
    for msg in event.records {
        let final_attempt = msg
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= MAX_RECEIVES);
        let item = serde_json::from_str::<WorkItem>(msg.body.as_deref().unwrap_or(""));
        let result = match item {
            Ok(WorkItem::ScheduleSend { campaign_id }) => services
                .schedule_send(&campaign_id, final_attempt)
                .await
                .map(|out| tracing::info!(outcome = ?out, "schedule-send handled")),
            Ok(other) => {
                tracing::error!(item = ?other, "unexpected work item on the schedule queue: ignored");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "unreadable message on the schedule queue: ignored");
                Ok(())
            }
        };
        match result {
            Ok(()) => {}
            Err(e) if e.is_retryable() => {
                tracing::warn!(message_id = ?msg.message_id, error = %chain(&e), "message will be retried");
                let mut f = BatchItemFailure::default();
                f.item_identifier = msg.message_id.clone().unwrap_or_default();
                resp.batch_item_failures.push(f);
            }
            Err(e) => {
                tracing::error!(message_id = ?msg.message_id, error = %chain(&e),
                    "message failed for good; acknowledged");
            }
        }
    }
    resp
}
