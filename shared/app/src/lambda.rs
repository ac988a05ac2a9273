//! What every function needs from the Lambda runtime: its deadline, and the SQS batch protocol
//! (partial batch failures, the last allowed receive).

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use espbridge_core::ports::ObjectRef;
use espbridge_core::ports::queue::is_final_receive;
use espbridge_core::service::{Deadline, ServiceError, chain};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The queues' redrive `maxReceiveCount` (infra/template.yaml); defined in the core, where the
/// local queue uses the same limit, and checked against the template there.
pub use espbridge_core::ports::queue::MAX_RECEIVES;

/// The invocation's deadline (epoch milliseconds in the context) as a monotonic instant.
pub fn deadline(ctx: &lambda_runtime::Context) -> Deadline {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = ctx.deadline.saturating_sub(now_ms);
    Deadline::at(Instant::now() + Duration::from_millis(left))
}

/// One message of a batch: its body, and whether this is its last allowed receive (the step
/// then fails the campaign rather than leave the message to the dead-letter queue silently).
pub struct Message {
    pub body: String,
    pub final_attempt: bool,
}

impl Message {
    fn of(msg: &SqsMessage) -> Self {
        let receives: u32 = msg
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Self {
            body: msg.body.clone().unwrap_or_default(),
            final_attempt: is_final_receive(receives),
        }
    }
}

/// Runs `handle` on each message. A retryable error makes the message a partial batch failure,
/// so only it comes back (after the visibility timeout); any other error is logged and the
/// message acknowledged: redelivering it for hours would change nothing.
pub async fn sqs_batch<F, Fut>(event: &SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(Message) -> Fut,
    Fut: Future<Output = Result<(), ServiceError>>,
{
    let mut resp = SqsBatchResponse::default();
    for msg in &event.records {
        match handle(Message::of(msg)).await {
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

/// The objects an S3 notification (an SQS message body) names, keys decoded; `None` when the
/// body is not an S3 event.
pub fn s3_objects(body: &str) -> Option<Vec<ObjectRef>> {
    let event: S3Event = serde_json::from_str(body).ok()?;
    Some(
        event
            .records
            .into_iter()
            .filter_map(|rec| {
                let bucket = rec.s3.bucket.name?;
                let key = decode_key(rec.s3.object.key.as_deref()?);
                Some(ObjectRef {
                    bucket,
                    key,
                    etag: rec.s3.object.e_tag.unwrap_or_default(),
                })
            })
            .collect(),
    )
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

    #[test]
    fn keys_are_decoded() {
        assert_eq!(
            decode_key("campaigns/2026-11-24/a%2Bb+c/manifest.json"),
            "campaigns/2026-11-24/a+b c/manifest.json"
        );
    }

    #[test]
    fn s3_events_name_their_objects_and_other_bodies_none() {
        let body = serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "eventTime": "2026-11-30T00:00:00.000Z",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0",
                "bucket": {"name": "drops", "arn": "arn:aws:s3:::drops"},
                "object": {"key": "campaigns/2026-11-24/c1/manifest.json", "size": 1, "eTag": "e1"}}
        }]})
        .to_string();
        let objects = s3_objects(&body).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key, "campaigns/2026-11-24/c1/manifest.json");
        assert_eq!(objects[0].etag, "e1");
        assert_eq!(s3_objects(r#"{"Records": []}"#), Some(vec![]));
        assert_eq!(s3_objects("not json"), None);
    }
}
