//! The HTTP layer: one authenticated, paced, retried call returning the envelope's `data`.
//!
//! Retries live here, not in the callers, so every endpoint gets the same treatment: 429/7003
//! waits for the rate-limit reset, 5xx and transport failures back off exponentially with
//! jitter, and only what is still failing after `max_attempts` reaches the domain.

use crate::config::EmarsysCredentials;
use crate::pacer::Pacer;
use crate::wire::Envelope;
use crate::wsse;
use espbridge_core::Clock;
use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

const ESP: EspKind = EspKind::Emarsys;
/// First back-off step; doubles per attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// Longest wait for a rate-limit window to reset (a window is one minute).
const MAX_RESET_WAIT: Duration = Duration::from_secs(61);
/// `X-RateLimit-Reset` values below this are read as seconds from now, above as a Unix time
/// (the reference is uncertain which one Emarsys sends; 10^9 s is 2001, so both fit).
const EPOCH_THRESHOLD: f64 = 1.0e9;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Method {
    Get,
    Post,
}

/// Authenticated JSON client for one API user. Clones share the connection pool and the pacer.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: Url,
    credentials: Arc<EmarsysCredentials>,
    clock: Arc<dyn Clock>,
    pacer: Pacer,
    max_attempts: u32,
}

/// What one attempt came to.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Done(Value),
    Fail(EspError),
    RetryRateLimited,
    RetryTransient(String),
}

/// The rate-limit headers Emarsys sends on every response (names matched case-insensitively).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct RateHeaders {
    pub remaining: Option<u64>,
    pub reset: Option<f64>,
}

impl RateHeaders {
    pub(crate) fn from_headers(h: &HeaderMap) -> Self {
        let num = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|f| f.is_finite() && *f >= 0.0)
        };
        Self {
            remaining: num("x-ratelimit-remaining").map(|f| f as u64),
            reset: num("x-ratelimit-reset"),
        }
    }

    /// How long until the window resets, given the current Unix time.
    pub(crate) fn reset_wait(&self, now_epoch_secs: f64) -> Option<Duration> {
        let reset = self.reset?;
        let secs = if reset < EPOCH_THRESHOLD {
            reset
        } else {
            (reset - now_epoch_secs).max(0.0)
        };
        Some(Duration::from_secs_f64(secs).min(MAX_RESET_WAIT))
    }
}

/// Maps one HTTP answer to a verdict. The body is parsed as JSON whatever its Content-Type
/// (Emarsys labels JSON `text/html`), and a non-zero `replyCode` is an error even on HTTP 200.
pub(crate) fn classify(status: u16, body: &[u8]) -> Verdict {
    let envelope = serde_json::from_slice::<Envelope>(body);
    let code = envelope.as_ref().ok().map(|e| e.reply_code);
    let text = envelope
        .as_ref()
        .ok()
        .map(|e| e.reply_text.clone())
        .unwrap_or_default();
    if status == 429 || code == Some(7003) {
        return Verdict::RetryRateLimited;
    }
    if status == 401 {
        let detail = if text.is_empty() {
            "HTTP 401".to_owned()
        } else {
            text
        };
        return Verdict::Fail(EspError::Auth { esp: ESP, detail });
    }
    if (500..=599).contains(&status) && status != 501 || status == 408 {
        return Verdict::RetryTransient(match code {
            Some(c) => format!("HTTP {status}, code {c}: {text}"),
            None => format!("HTTP {status}"),
        });
    }
    let envelope = match envelope {
        Ok(e) => e,
        Err(err) if (200..300).contains(&status) => {
            return Verdict::Fail(EspError::Protocol {
                esp: ESP,
                detail: format!("response is not a JSON envelope: {err}"),
            });
        }
        Err(_) => {
            return Verdict::Fail(EspError::Api {
                esp: ESP,
                status,
                code: String::new(),
                text: "non-JSON error body".to_owned(),
                retryable: false,
            });
        }
    };
    if envelope.reply_code != 0 || !(200..300).contains(&status) {
        // 6096: the campaign is locked by an update in progress; 6028: a once-a-minute endpoint.
        let retryable = matches!(envelope.reply_code, 6096 | 6028);
        return Verdict::Fail(EspError::Api {
            esp: ESP,
            status,
            code: envelope.reply_code.to_string(),
            text: envelope.reply_text,
            retryable,
        });
    }
    Verdict::Done(envelope.data)
}

/// Exponential back-off with jitter: a random point in the upper half of the step, so retries
/// of many callers do not line up.
fn backoff(attempt: u32) -> Duration {
    let step = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(BACKOFF_CAP);
    let half = step / 2;
    let jitter_ms = rand::random_range(0..=half.as_millis().max(1) as u64);
    half + Duration::from_millis(jitter_ms)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "request timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_body() || e.is_decode() {
        "response body could not be read".to_owned()
    } else {
        "connection error".to_owned()
    }
}

impl Http {
    pub(crate) fn new(
        client: reqwest::Client,
        base: Url,
        credentials: EmarsysCredentials,
        clock: Arc<dyn Clock>,
        pacer: Pacer,
        max_attempts: u32,
    ) -> Self {
        Self {
            client,
            base,
            credentials: Arc::new(credentials),
            clock,
            pacer,
            max_attempts: max_attempts.max(1),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, EspError> {
        self.call(Method::Get, path, None).await
    }

    pub(crate) async fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<Value, EspError> {
        let bytes = serde_json::to_vec(body).map_err(|e| EspError::Invalid {
            esp: ESP,
            detail: format!("cannot encode the request body: {e}"),
        })?;
        self.call(Method::Post, path, Some(bytes)).await
    }

    /// `path` is relative to the base URL (no leading slash), e.g. `email/123/launch`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Value, EspError> {
        let url = self.base.join(path).map_err(|e| EspError::Invalid {
            esp: ESP,
            detail: format!("bad request path: {e}"),
        })?;
        let mut last_rate_limited = false;
        let mut last_detail = String::new();
        for attempt in 1..=self.max_attempts {
            self.pacer.acquire().await;
            let wait = match self.attempt(method, &url, body.as_deref()).await {
                (Verdict::Done(data), _) => return Ok(data),
                (Verdict::Fail(e), _) => return Err(e),
                (Verdict::RetryRateLimited, rate) => {
                    last_rate_limited = true;
                    let wait = rate
                        .reset_wait(self.now_epoch())
                        .unwrap_or_else(|| backoff(attempt).max(Duration::from_secs(1)));
                    // Everyone sharing this user waits, not only this call.
                    self.pacer.block_for(wait).await;
                    tracing::warn!(
                        path = url.path(),
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "emarsys rate limited; waiting for the reset"
                    );
                    Duration::ZERO
                }
                (Verdict::RetryTransient(detail), _) => {
                    last_rate_limited = false;
                    let wait = backoff(attempt);
                    tracing::warn!(path = url.path(), attempt, wait_ms = wait.as_millis() as u64, %detail, "emarsys transient failure; retrying");
                    last_detail = detail;
                    wait
                }
            };
            if attempt < self.max_attempts && !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        Err(if last_rate_limited {
            EspError::RateLimited {
                esp: ESP,
                attempts: self.max_attempts,
            }
        } else {
            EspError::Transient {
                esp: ESP,
                detail: format!("{last_detail} (after {} attempts)", self.max_attempts),
            }
        })
    }

    async fn attempt(
        &self,
        method: Method,
        url: &Url,
        body: Option<&[u8]>,
    ) -> (Verdict, RateHeaders) {
        let created = wsse::created(self.clock.now());
        let nonce = wsse::nonce();
        let header = wsse::header(
            &self.credentials.user,
            &self.credentials.secret,
            &nonce,
            &created,
        );
        let mut req = match method {
            Method::Get => self.client.get(url.clone()),
            Method::Post => self.client.post(url.clone()),
        }
        .header("X-WSSE", header)
        .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return (
                    Verdict::RetryTransient(describe(&e)),
                    RateHeaders::default(),
                );
            }
        };
        let status = resp.status().as_u16();
        let rate = RateHeaders::from_headers(resp.headers());
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return (Verdict::RetryTransient(describe(&e)), rate),
        };
        if rate.remaining == Some(0)
            && let Some(wait) = rate.reset_wait(self.now_epoch())
        {
            self.pacer.block_for(wait).await;
        }
        (classify(status, &bytes), rate)
    }

    fn now_epoch(&self) -> f64 {
        self.clock.now().as_millisecond() as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn api(e: Verdict) -> (u16, String, bool) {
        match e {
            Verdict::Fail(EspError::Api {
                status,
                code,
                retryable,
                ..
            }) => (status, code, retryable),
            other => panic!("expected an Api error, got {other:?}"),
        }
    }

    #[test]
    fn success_returns_data_even_with_string_reply_code() {
        let v = classify(
            200,
            br#"{"replyCode":"0","replyText":"OK","data":{"id":7}}"#,
        );
        assert_eq!(v, Verdict::Done(serde_json::json!({"id":7})));
    }

    #[test]
    fn non_zero_reply_code_on_http_200_is_an_error() {
        let v = classify(
            200,
            br#"{"replyCode":2004,"replyText":"Invalid key field id: 77","data":""}"#,
        );
        assert_eq!(api(v), (200, "2004".to_owned(), false));
    }

    #[test]
    fn unauthorized_maps_to_auth() {
        let body = std::fs::read(crate::tests_support::fixture(
            "error_401_unauthorized.response.json",
        ))
        .unwrap();
        match classify(401, &body) {
            Verdict::Fail(EspError::Auth { detail, .. }) => assert_eq!(detail, "Unauthorized"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(401, b"<html>no</html>"),
            Verdict::Fail(EspError::Auth { .. })
        ));
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        assert_eq!(classify(429, b""), Verdict::RetryRateLimited);
        assert_eq!(
            classify(
                200,
                br#"{"replyCode":7003,"replyText":"Too many requests","data":""}"#
            ),
            Verdict::RetryRateLimited
        );
        assert!(matches!(classify(503, b"oops"), Verdict::RetryTransient(_)));
        assert!(matches!(
            classify(500, br#"{"replyCode":1,"replyText":"db","data":""}"#),
            Verdict::RetryTransient(d) if d.contains("code 1")
        ));
    }

    #[test]
    fn client_errors_keep_status_code_and_text() {
        let v = classify(
            400,
            br#"{"replyCode":6023,"replyText":"Campaign name already taken","data":""}"#,
        );
        match v {
            Verdict::Fail(EspError::Api {
                status,
                code,
                text,
                retryable,
                ..
            }) => {
                assert_eq!(
                    (status, code.as_str(), text.as_str()),
                    (400, "6023", "Campaign name already taken")
                );
                assert!(!retryable);
            }
            other => panic!("{other:?}"),
        }
        let locked = classify(409, br#"{"replyCode":6096,"replyText":"locked","data":""}"#);
        assert!(api(locked).2, "6096 is retryable");
        assert_eq!(api(classify(404, b"not json")).0, 404);
        assert!(matches!(
            classify(200, b"<html></html>"),
            Verdict::Fail(EspError::Protocol { .. })
        ));
    }

    #[test]
    fn rate_headers_are_case_insensitive_and_reset_is_epoch_or_relative() {
        let mut h = HeaderMap::new();
        h.insert("X-Ratelimit-Remaining", HeaderValue::from_static("0"));
        h.insert("x-RATELIMIT-reset", HeaderValue::from_static("1764000030"));
        let r = RateHeaders::from_headers(&h);
        assert_eq!(r.remaining, Some(0));
        assert_eq!(r.reset_wait(1_764_000_000.0), Some(Duration::from_secs(30)));
        // Past reset: no wait.
        assert_eq!(r.reset_wait(1_764_000_100.0), Some(Duration::ZERO));
        let rel = RateHeaders {
            remaining: None,
            reset: Some(12.0),
        };
        assert_eq!(
            rel.reset_wait(1_764_000_000.0),
            Some(Duration::from_secs(12))
        );
        let far = RateHeaders {
            remaining: None,
            reset: Some(1_764_099_999.0),
        };
        assert_eq!(far.reset_wait(1_764_000_000.0), Some(MAX_RESET_WAIT));
        assert_eq!(RateHeaders::default().reset_wait(0.0), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..=10 {
            let step = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(BACKOFF_CAP);
            let d = backoff(attempt);
            assert!(
                d >= step / 2 && d <= step + Duration::from_millis(1),
                "{attempt}: {d:?}"
            );
        }
    }
}
