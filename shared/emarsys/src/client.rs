//! The Emarsys side of a call: WSSE on every attempt, the account's rate gate in front of it, and
//! the reading of an answer (`replyCode` envelope, rate-limit headers). Retries, back-off and
//! transport errors are the shared HTTP layer's ([`espbridge_esp_kit::EspHttp`]).

use crate::config::EmarsysCredentials;
use crate::wire::Envelope;
use crate::wsse;
use espbridge_core::Clock;
use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use espbridge_esp_kit::{EspHttp, ExposeSecret, Idempotency, RateGate, Retryable, Step};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const ESP: EspKind = EspKind::Emarsys;
/// Longest wait for a rate-limit window to reset (a window is one minute).
const MAX_RESET_WAIT: Duration = Duration::from_secs(61);
/// `X-RateLimit-Reset` values below this are read as seconds from now, above as a Unix time
/// (the reference is uncertain which one Emarsys sends; 10^9 s is 2001, so both fit).
const EPOCH_THRESHOLD: f64 = 1.0e9;

/// Authenticated JSON client for one API user. Clones share the connection pool; every
/// instance of the deployment shares the rate gate.
#[derive(Clone)]
pub(crate) struct Http {
    http: EspHttp,
    credentials: Arc<EmarsysCredentials>,
    clock: Arc<dyn Clock>,
    gate: RateGate,
}

/// What one answer came to.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Done(Value),
    Fail(EspError),
    RetryRateLimited,
    RetryTransient(String),
}

/// Share of the request limit the gate aims at.
pub(crate) const TARGET_SHARE: f64 = 0.98;

/// The rate-limit headers Emarsys sends on every response (names matched case-insensitively).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct RateHeaders {
    /// Requests a minute the API user may make.
    pub limit: Option<u64>,
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
            limit: num("x-ratelimit-limit").map(|f| f as u64),
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
        .map(|e| espbridge_core::text::reason(&e.reply_text))
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
                detail: espbridge_core::text::reason(&format!(
                    "response is not a JSON envelope: {err}"
                )),
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
            text: espbridge_core::text::reason(&envelope.reply_text),
            retryable,
        });
    }
    Verdict::Done(envelope.data)
}

impl Http {
    pub(crate) fn new(
        http: EspHttp,
        credentials: EmarsysCredentials,
        clock: Arc<dyn Clock>,
        gate: RateGate,
    ) -> Self {
        Self {
            http,
            credentials: Arc::new(credentials),
            clock,
            gate,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, EspError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<Value, EspError> {
        let bytes = serde_json::to_vec(body).map_err(|e| EspError::Invalid {
            esp: ESP,
            detail: format!("cannot encode the request body: {e}"),
        })?;
        self.call(reqwest::Method::POST, path, Some(bytes)).await
    }

    /// `path` is relative to the base URL (no leading slash), e.g. `email/123/launch`. Every
    /// Emarsys write is safe to repeat: copies and lists are found by name, a second launch is
    /// recognised (409/6003), list additions are sets.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Value, EspError> {
        let url = self.http.url(path)?;
        // The call's name in logs: the path without ids or query.
        let what = url.path().to_owned();
        self.http
            .retry(&what, Idempotency::Safe, |_| {
                self.attempt(method.clone(), url.clone(), body.as_deref())
            })
            .await
    }

    async fn attempt(
        &self,
        method: reqwest::Method,
        url: url::Url,
        body: Option<&[u8]>,
    ) -> Step<Value> {
        if let Err(e) = self.gate.acquire(1).await {
            return Step::Fail(e);
        }
        let created = wsse::created(self.clock.now());
        let nonce = wsse::nonce();
        let header = wsse::header(
            &self.credentials.user,
            self.credentials.secret.expose_secret(),
            &nonce,
            &created,
        );
        let mut req = self
            .http
            .request(method, url)
            .header("X-WSSE", header)
            .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        let ex = match self.http.send(req).await {
            Ok(ex) => ex,
            Err(e) => return e.into(),
        };
        let rate = RateHeaders::from_headers(&ex.headers);
        if let Some(limit) = rate.limit {
            self.follow_reported(limit);
        }
        if rate.remaining == Some(0)
            && let Some(wait) = rate.reset_wait(self.now_epoch())
            && let Err(e) = self.gate.hold_for(wait).await
        {
            return Step::Fail(e);
        }
        match classify(ex.status, &ex.body) {
            Verdict::Done(data) => Step::Done(data),
            Verdict::Fail(e) => Step::Fail(e),
            Verdict::RetryRateLimited => {
                // Everyone sharing this user waits, not only this call; a reset already past
                // (or none) still waits the layer's minimum throttle back-off.
                let wait = rate.reset_wait(self.now_epoch());
                if let Some(w) = wait
                    && let Err(e) = self.gate.hold_for(w).await
                {
                    return Step::Fail(e);
                }
                Step::Retry(Retryable::throttled(
                    format!("HTTP {}: rate limit", ex.status),
                    wait.or_else(|| ex.retry_after()),
                ))
            }
            Verdict::RetryTransient(detail) => Step::Retry(Retryable {
                wait: ex.retry_after(),
                ..Retryable::transient(detail)
            }),
        }
    }

    /// An account on a smaller plan announces a lower limit than configured: pace to the
    /// announced one (a looser one changes nothing: the configuration is the ceiling).
    fn follow_reported(&self, limit: u64) {
        let pace = limit.max(1) as f64 * TARGET_SHARE;
        if pace < self.gate.per_minute() {
            self.gate.set_per_minute(pace);
            tracing::info!(
                esp = "emarsys",
                reported_limit = limit,
                requests_per_minute = pace,
                "pacing to the limit the ESP reports"
            );
        }
    }

    /// The pace (requests a minute) this client keeps now.
    pub(crate) fn pace(&self) -> f64 {
        self.gate.per_minute()
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
        h.insert("X-RateLimit-Limit", HeaderValue::from_static("12"));
        let r = RateHeaders::from_headers(&h);
        assert_eq!(r.remaining, Some(0));
        assert_eq!(r.limit, Some(12));
        assert_eq!(r.reset_wait(1_764_000_000.0), Some(Duration::from_secs(30)));
        // Past reset: no wait.
        assert_eq!(r.reset_wait(1_764_000_100.0), Some(Duration::ZERO));
        let rel = RateHeaders {
            limit: None,
            remaining: None,
            reset: Some(12.0),
        };
        assert_eq!(
            rel.reset_wait(1_764_000_000.0),
            Some(Duration::from_secs(12))
        );
        let far = RateHeaders {
            limit: None,
            remaining: None,
            reset: Some(1_764_099_999.0),
        };
        assert_eq!(far.reset_wait(1_764_000_000.0), Some(MAX_RESET_WAIT));
        assert_eq!(RateHeaders::default().reset_wait(0.0), None);
    }
}
