//! schedule-send: SQS messages (`WorkItem::ScheduleSend`) in, [`ScheduleService`] calls out:
//! the ESP send and the metric schedule. The SQS batch protocol is [`sqs_batch`]'s.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use espbridge_app::lambda::{Message, sqs_batch};
use espbridge_core::ports::WorkItem;
use espbridge_core::service::{ScheduleService, ServiceError};

pub async fn handle(schedule: &ScheduleService, event: SqsEvent) -> SqsBatchResponse {
    sqs_batch(&event, |msg| handle_message(schedule, msg)).await
}

async fn handle_message(schedule: &ScheduleService, msg: Message) -> Result<(), ServiceError> {
    match serde_json::from_str::<WorkItem>(&msg.body) {
        Ok(WorkItem::ScheduleSend { campaign_id }) => {
            let out = schedule
                .schedule_send(&campaign_id, msg.final_attempt)
                .await?;
            tracing::info!(outcome = ?out, "schedule-send handled");
        }
        Ok(other) => {
            tracing::error!(item = %other.label(), "not a schedule-queue item: ignored");
        }
        Err(e) => {
            tracing::error!(error = %e, "unreadable message on the schedule queue: ignored");
        }
    }
    Ok(())
}
