//! upload-audience: SQS messages in (S3 notifications of `manifest.json`, and this function's
//! own continuation messages), domain calls out. Retryable failures are reported as SQS partial
//! batch failures so only those messages come back; the last allowed receive fails the campaign
//! instead of leaving it to the dead-letter queue silently.

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use espbridge_core::ports::{ObjectRef, WorkItem};
use espbridge_core::service::{Deadline, ServiceError, Services};

/// Must match the queue's redrive `maxReceiveCount` (infra/template.yaml).
pub const MAX_RECEIVES: u32 = 5;

pub async fn handle(services: &Services, event: SqsEvent, deadline: Deadline) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for msg in event.records {
        if let Err(e) = handle_message(services, &msg, deadline).await {
            tracing::warn!(message_id = ?msg.message_id, error = %e, "message will be retried");
            let mut f = BatchItemFailure::default();
            f.item_identifier = msg.message_id.clone().unwrap_or_default();
            failures.push(f);
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

async fn handle_message(
    services: &Services,
    msg: &SqsMessage,
    deadline: Deadline,
) -> Result<(), ServiceError> {
    let body = msg.body.as_deref().unwrap_or("");
    let receives: u32 = msg
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let final_attempt = receives >= MAX_RECEIVES;
    if let Ok(item) = serde_json::from_str::<WorkItem>(body) {
        return match item {
            WorkItem::ContinueUpload { campaign_id } => {
                let out = services
                    .continue_upload(&campaign_id, deadline, final_attempt)
                    .await?;
                tracing::info!(outcome = ?out, "continuation handled");
                Ok(())
            }
            WorkItem::ScheduleSend { campaign_id } => {
                tracing::error!(%campaign_id, "schedule-send message on the upload queue: ignored");
                Ok(())
            }
        };
    }
    let Ok(s3) = serde_json::from_str::<S3Event>(body) else {
        // Not ours (e.g. the s3:TestEvent S3 sends when the notification is configured).
        tracing::info!(message_id = ?msg.message_id, "message is neither an S3 event nor a work item; dropped");
        return Ok(());
    };
    for rec in s3.records {
        let (Some(bucket), Some(key)) = (rec.s3.bucket.name.clone(), rec.s3.object.key.as_deref())
        else {
            continue;
        };
        let drop = ObjectRef {
            bucket,
            key: decode_key(key),
            etag: rec.s3.object.e_tag.clone().unwrap_or_default(),
        };
        let out = services.handle_drop(&drop, deadline).await?;
        tracing::info!(outcome = ?out, "drop handled");
    }
    Ok(())
}

/// S3 notifications carry keys form-encoded (`+` for space, `%xx`).
pub fn decode_key(key: &str) -> String {
    let plus = key.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_decoded() {
        assert_eq!(
            super::decode_key("campaigns/2026-11-24/a%2Bb+c/manifest.json"),
            "campaigns/2026-11-24/a+b c/manifest.json"
        );
    }
}
