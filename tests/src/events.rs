//! Lambda event JSON in the shapes AWS delivers it, parsed into the handlers' event types.

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{Value, json};

/// One SQS message as the Lambda SQS integration hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsRecord {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
}

/// Form-URL-encodes an S3 key as S3 event notifications do (space as `+`, `/` kept).
pub fn form_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An S3 `ObjectCreated:Put` notification (event version 2.1) for `bucket`/`key`. `etag` is
/// given without quotes, as S3 sends it.
pub fn s3_put_notification(bucket: &str, key: &str, size: i64, etag: &str) -> Value {
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-11-24T02:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"},
            "responseElements": {
                "x-amz-request-id": "C3D13FE58DE4C810",
                "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "espbridge-manifest",
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                    "arn": format!("arn:aws:s3:::{bucket}")
                },
                "object": {
                    "key": form_encode_key(key),
                    "size": size,
                    "eTag": etag,
                    "sequencer": "0055AED6DCD90281E5"
                }
            }
        }]
    })
}

/// The SQS event Lambda delivers for `records` from the queue `queue_arn`.
pub fn sqs_event(queue_arn: &str, records: &[SqsRecord]) -> anyhow::Result<SqsEvent> {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "messageId": r.message_id,
                "receiptHandle": r.receipt_handle,
                "body": r.body,
                "attributes": {
                    "ApproximateReceiveCount": r.receive_count.to_string(),
                    "SentTimestamp": "1764000000000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1764000000001"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    Ok(serde_json::from_value(json!({ "Records": records }))?)
}

/// An API Gateway HTTP API (payload format 2.0) request on the `$default` stage.
pub fn http_request(
    method: &str,
    path: &str,
    query: &str,
) -> anyhow::Result<ApiGatewayV2httpRequest> {
    let v = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"accept": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "espbridge-tests"
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "24/Nov/2026:02:00:00 +0000",
            "timeEpoch": 1_795_485_600_000u64
        },
        "isBase64Encoded": false
    });
    Ok(serde_json::from_value(v)?)
}

/// [`http_request`] with a JSON body; `base64` encodes it as API Gateway does for bodies it
/// does not take for text.
pub fn http_request_with_body(
    method: &str,
    path: &str,
    query: &str,
    body: &str,
    base64: bool,
) -> anyhow::Result<ApiGatewayV2httpRequest> {
    use base64::Engine as _;
    let mut req = http_request(method, path, query)?;
    req.body = Some(if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body.to_owned()
    });
    req.is_base64_encoded = base64;
    req.headers.insert(
        "content-type",
        aws_lambda_events::http::HeaderValue::from_static("application/json"),
    );
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_form_encoded() {
        assert_eq!(
            form_encode_key("campaigns/a b/x+y.json"),
            "campaigns/a+b/x%2By.json"
        );
    }

    #[test]
    fn events_parse_into_the_handler_types() {
        let rec = SqsRecord {
            message_id: "m1".into(),
            receipt_handle: "r1".into(),
            body: "{}".into(),
            receive_count: 2,
        };
        let ev = sqs_event("arn:aws:sqs:us-east-1:123456789012:q", &[rec]).expect("sqs event");
        assert_eq!(ev.records.len(), 1);
        assert_eq!(ev.records[0].attributes["ApproximateReceiveCount"], "2");
        let req = http_request("GET", "/templates", "esp=emarsys").expect("http event");
        assert_eq!(req.raw_path.as_deref(), Some("/templates"));
        assert_eq!(req.request_context.http.method.as_str(), "GET");
    }
}
