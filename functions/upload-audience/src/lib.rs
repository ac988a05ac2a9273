//! upload-audience: SQS messages in (S3 notifications of `manifest.json` and of conversions
//! files, and this function's own continuation messages), [`UploadService`] calls out. An S3
//! key goes to [`UploadService::handle_object`], which sends conversions files
//! ([`ConversionsPath`](espbridge_core::conversions::ConversionsPath)) to the conversions
//! attribution and everything else to the drop handling (which ignores what is not a manifest).
//! The SQS batch protocol (partial batch failures, the last allowed receive, failures no retry
//! can fix acknowledged) is [`sqs_batch`]'s.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use espbridge_app::lambda::{Message, s3_objects, sqs_batch};
use espbridge_core::ports::WorkItem;
use espbridge_core::service::{Deadline, ServiceError, UploadService};

pub async fn handle(
    upload: &UploadService,
    event: SqsEvent,
    deadline: Deadline,
) -> SqsBatchResponse {
    sqs_batch(&event, |msg| handle_message(upload, msg, deadline)).await
}

async fn handle_message(
    upload: &UploadService,
    msg: Message,
    deadline: Deadline,
) -> Result<(), ServiceError> {
    if let Ok(item) = serde_json::from_str::<WorkItem>(&msg.body) {
        let WorkItem::ContinueUpload { campaign_id } = item else {
            tracing::error!(item = %item.label(), "not an upload-queue item: ignored");
            return Ok(());
        };
        let out = upload
            .continue_upload(&campaign_id, deadline, msg.final_attempt)
            .await?;
        tracing::info!(outcome = ?out, "continuation handled");
        return Ok(());
    }
    // Anything else that is not an S3 event is not ours (e.g. the s3:TestEvent S3 sends when
    // the notification is configured).
    for object in s3_objects(&msg.body).unwrap_or_default() {
        let out = upload
            .handle_object(&object, deadline, msg.final_attempt)
            .await?;
        tracing::info!(outcome = ?out, "object handled");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_app::lambda::MAX_RECEIVES;
    use espbridge_core::campaign::State;
    use espbridge_core::ports::CampaignStore;
    use espbridge_core::ports::WorkQueue;
    use espbridge_core::service::{EspRegistry, UploadSettings};
    use espbridge_core::testkit::{FakeEsp, MemSource, sample_campaign};
    use espbridge_core::{AccountId, CampaignId, ManualClock};
    use espbridge_local::{LocalQueue, SqliteStore};
    use serde_json::json;
    use std::sync::Arc;

    /// One SQS message whose body is an S3 `ObjectCreated:Put` notification for `key`, on its
    /// `receive`th receive.
    fn s3_message(bucket: &str, key: &str, etag: &str, receive: u32) -> SqsEvent {
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
            "attributes": {"ApproximateReceiveCount": receive.to_string()},
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
            alerts: Arc::new(espbridge_core::ports::LogAlerts),
            metrics: Arc::new(espbridge_core::ports::LogMetrics),
            settings: UploadSettings::default(),
        };
        // S3 form-encodes the key: the space arrives as `+`.
        let event = s3_message(
            "drops",
            "campaigns/2026-11-24/c1/week+1+conversions.csv",
            "abc",
            1,
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

    #[tokio::test]
    async fn a_drop_interrupted_on_its_last_receive_fails_its_campaign_instead_of_dead_lettering() {
        let src = MemSource::default();
        let prefix = "campaigns/2026-11-24/c2/";
        src.put(&format!("{prefix}a.csv"), "customer_id\nC1\nC2\nC3\n");
        let manifest = json!({
            "schema_version": "1", "campaign_id": "c2", "esp": "emarsys", "template_id": "t1",
            "send_at": "2026-11-25T08:30:00Z",
            "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id"}}
        });
        src.put(&format!("{prefix}manifest.json"), manifest.to_string());
        // Every upload call meets a 503.
        let esp = Arc::new(FakeEsp {
            account: Some(AccountId::parse("default").unwrap()),
            fail_next_uploads: u32::MAX.into(),
            ..Default::default()
        });
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let (queue, _rx) = LocalQueue::new();
        let upload = UploadService {
            store: store.clone(),
            source: Arc::new(src),
            queue: Arc::new(queue),
            esps: EspRegistry::new(vec![esp]),
            clock: Arc::new(ManualClock::new("2026-11-24T02:00:00Z".parse().unwrap())),
            alerts: Arc::new(espbridge_core::ports::LogAlerts),
            metrics: Arc::new(espbridge_core::ports::LogMetrics),
            settings: UploadSettings::default(),
        };
        let key = format!("{prefix}manifest.json");
        let id = CampaignId::parse("c2").unwrap();

        // An earlier receive: the message comes back (a partial batch failure), the campaign
        // waits for it.
        let resp = handle(
            &upload,
            s3_message("drops", &key, "e1", 1),
            Deadline::none(),
        )
        .await;
        assert_eq!(resp.batch_item_failures.len(), 1);
        let c = store.get(&id).await.unwrap().unwrap();
        assert_eq!(c.state, State::Uploading);

        // The last receive the redrive policy allows: the campaign fails with the cause and the
        // message is acknowledged.
        let last = s3_message("drops", &key, "e1", MAX_RECEIVES);
        let resp = handle(&upload, last, Deadline::none()).await;
        assert!(resp.batch_item_failures.is_empty());
        let c = store.get(&id).await.unwrap().unwrap();
        assert_eq!(c.state, State::Failed);
        let failure = c.failure.unwrap();
        assert_eq!(failure.step, "upload");
        assert!(failure.reason.contains("HTTP 503"), "{}", failure.reason);
    }
}
