//! upload-audience: SQS messages in (S3 notifications of `manifest.json` and of conversions
//! files, and this function's own continuation messages), [`UploadService`] calls out. An S3
//! key goes to [`UploadService::handle_object`], which sends conversions files
//! ([`ConversionsPath`](espbridge_core::conversions::ConversionsPath)) to the conversions
//! attribution and everything else to the drop handling (which ignores what is not a manifest).
//! Retryable failures are reported as SQS partial batch failures so only those messages come
//! back; the last allowed receive fails the campaign instead of leaving it to the dead-letter
//! queue silently. A failure no retry can fix (access denied, a record that cannot be read) is
//! logged and the message acknowledged: redelivering it for hours would change nothing.

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use espbridge_core::ports::{ObjectRef, WorkItem};
use espbridge_core::service::{Deadline, ServiceError, UploadService, chain};

/// Must match the queue's redrive `maxReceiveCount` (infra/template.yaml).
pub const MAX_RECEIVES: u32 = 5;

pub async fn handle(
    services: &UploadService,
    event: SqsEvent,
    deadline: Deadline,
) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for msg in event.records {
        match handle_message(services, &msg, deadline).await {
            Ok(()) => {}
            Err(e) if e.is_retryable() => {
                tracing::warn!(message_id = ?msg.message_id, error = %chain(&e), "message will be retried");
                let mut f = BatchItemFailure::default();
                f.item_identifier = msg.message_id.clone().unwrap_or_default();
                failures.push(f);
            }
            Err(e) => {
                tracing::error!(message_id = ?msg.message_id, error = %chain(&e),
                    "message failed for good; acknowledged");
            }
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

async fn handle_message(
    services: &UploadService,
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
        let out = services.handle_object(&drop, deadline).await?;
        tracing::info!(outcome = ?out, "object handled");
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
    use super::*;
    use espbridge_core::campaign::State;
    use espbridge_core::ports::CampaignStore;
    use espbridge_core::ports::WorkQueue;
    use espbridge_core::service::{EspRegistry, UploadSettings};
    use espbridge_core::testkit::{MemSource, sample_campaign};
    use espbridge_core::{CampaignId, ManualClock};
    use espbridge_local::{LocalQueue, SqliteStore};
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn keys_are_decoded() {
        assert_eq!(
            super::decode_key("campaigns/2026-11-24/a%2Bb+c/manifest.json"),
            "campaigns/2026-11-24/a+b c/manifest.json"
        );
    }

    /// One SQS message whose body is an S3 `ObjectCreated:Put` notification for `key`.
    fn s3_message(bucket: &str, key: &str, etag: &str) -> SqsEvent {
        let s3 = json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventTime": "2026-11-30T00:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"},
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": key, "size": 1, "eTag": etag}
            }
        }]});
        serde_json::from_value(json!({"Records": [{
            "messageId": "m1",
            "body": s3.to_string(),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs"
        }]}))
        .unwrap()
    }

    #[tokio::test]
    async fn a_conversions_key_reaches_the_attribution() {
        let src = MemSource::default();
        let prefix = "campaigns/2026-11-24/c1/";
        src.put(&format!("{prefix}a.csv"), "customer_id\nC1\nC2\nC3\n");
        src.put(
            &format!("{prefix}week 1 conversions.csv"),
            "customer_id,amount,timestamp\nC2,9.5,2026-11-26T00:00:00Z\n",
        );
        let mut c = sample_campaign("c1");
        c.state = State::Scheduled;
        c.manifest = json!({
            "schema_version": "1", "campaign_id": "c1", "esp": "emarsys", "template_id": "t1",
            "send_at": "2026-11-25T08:30:00Z",
            "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id"}}
        });
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        store.create_from_drop(&c.drop, &c).await.unwrap();
        let (queue, _rx) = LocalQueue::new();
        let queue: Arc<dyn WorkQueue> = Arc::new(queue);
        let services = UploadService {
            store: store.clone(),
            source: Arc::new(src),
            queue,
            esps: EspRegistry::new(Vec::new()),
            clock: Arc::new(ManualClock::new("2026-11-30T00:00:00Z".parse().unwrap())),
            settings: UploadSettings::default(),
        };
        // S3 form-encodes the key: the space arrives as `+`.
        let event = s3_message(
            "drops",
            "campaigns/2026-11-24/c1/week+1+conversions.csv",
            "abc",
        );
        let resp = handle(&services, event, Deadline::none()).await;
        assert!(resp.batch_item_failures.is_empty());
        let stored = store
            .get(&CampaignId::parse("c1").unwrap())
            .await
            .unwrap()
            .unwrap();
        let conv = stored.conversions.expect("conversions attributed");
        assert_eq!(conv.rows_in_window, 1);
        assert_eq!(conv.groups["all"].customers, 3);
        assert_eq!(conv.groups["all"].converters, 1);
        assert_eq!(conv.groups["all"].revenue, 9.5);
        assert!(conv.sources[0].starts_with("campaigns/2026-11-24/c1/week 1 conversions.csv#"));
    }
}
