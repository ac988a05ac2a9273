//! The HTTP layer: per-service session tokens, one call returning the success payload.
//!
//! A token belongs to one service (`apiccmd`, `apibatchmember`). It is opened on first use,
//! reused for 55 minutes (the server's limit is 60), and re-opened when a call answers with a
//! session error (expired, call quota reached, unknown token); that call is then repeated once.
//! Transport failures and transient `failed` statuses are retried with back-off, but only for
//! calls that are safe to repeat: a create whose answer was lost is left to the caller, which
//! looks the object up by its deterministic name.

use crate::config::SmartFocusCredentials;
use crate::wire::{Answer, Element, Failure};
use espbridge_core::Clock;
use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use url::Url;

const ESP: EspKind = EspKind::Smartfocus;
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// Re-open a token this long after it was opened (server lifetime: 60 minutes).
const TOKEN_TTL: SignedDuration = SignedDuration::from_mins(55);

/// Campaign Commander's independent web services, each with its own session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Ccmd,
    Batch,
}

impl Service {
    fn root(self) -> &'static str {
        match self {
            Service::Ccmd => "apiccmd",
            Service::Batch => "apibatchmember",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Put,
}

/// Whether a call may be repeated after its request may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    Safe,
    Once,
}

/// A request body and its content type.
pub(crate) struct Body {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    opened: Timestamp,
}

/// What one answer came to.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Done(Element),
    SessionLost,
    Fail(EspError),
    Retry(String),
}

/// Percent-encodes one path value (everything but RFC 3986 unreserved characters), so `/`,
/// `:`, `+` and spaces in names and dates survive the path.
pub(crate) fn enc(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Failure texts and codes that mean "this token is no longer usable".
pub(crate) fn is_session_failure(f: &Failure) -> bool {
    let d = f.description.to_ascii_lowercase();
    let s = f.status.to_ascii_uppercase();
    d.contains("session has expired")
        || d.contains("maximum number of connection allowed per session")
        || d.contains("no available connection for the specified token")
        || d.contains("invalid token")
        || d.contains("token is not valid")
        || s.contains("SESSION")
        || s.contains("TOKEN")
}

/// Statuses of server-side hiccups worth another try.
pub(crate) fn is_transient_status(status: &str) -> bool {
    matches!(
        status,
        "GET_MANAGER_FAILED"
            | "GET_CLIENT_FAILED"
            | "GET_STATUS_FAILED"
            | "CREATE_JOB_FAILED"
            | "MAX_NB_UPLOADS"
            | "INTERNAL_ERROR"
    )
}

pub(crate) fn failure_error(http: u16, f: Failure) -> EspError {
    let retryable = is_transient_status(&f.status);
    let text = if f.fields.is_empty() || f.fields.len() > 64 {
        f.description
    } else {
        // `fields` names the offending parameter (e.g. an upload id), never member data here.
        format!("{} (fields: {})", f.description, f.fields)
    };
    EspError::Api {
        esp: ESP,
        status: http,
        code: f.status,
        text,
        retryable,
    }
}

/// Maps one HTTP answer to a verdict; both the HTTP status and `responseStatus` count.
pub(crate) fn classify(status: u16, body: &[u8]) -> Verdict {
    match Answer::from_xml(body) {
        Ok(Answer::Success(payload)) if (200..300).contains(&status) => Verdict::Done(payload),
        Ok(Answer::Success(_)) => Verdict::Retry(format!("HTTP {status} with a success envelope")),
        Ok(Answer::Failed(f)) if is_session_failure(&f) => Verdict::SessionLost,
        // The API answers every error with 500; other 5xx and 429 come from proxies and overload.
        Ok(Answer::Failed(f)) if status == 429 || (status > 500 && status <= 599) => {
            Verdict::Retry(format!("HTTP {status}: {}", f.status))
        }
        Ok(Answer::Failed(f)) => Verdict::Fail(failure_error(status, f)),
        Err(_) if status == 429 || status == 408 || (500..=599).contains(&status) => {
            Verdict::Retry(format!("HTTP {status}"))
        }
        Err(_) if status == 401 || status == 403 => Verdict::Fail(EspError::Auth {
            esp: ESP,
            detail: format!("HTTP {status}"),
        }),
        Err(e) if (200..300).contains(&status) => Verdict::Fail(EspError::Protocol {
            esp: ESP,
            detail: e.to_string(),
        }),
        Err(_) => Verdict::Fail(EspError::Api {
            esp: ESP,
            status,
            code: format!("HTTP_{status}"),
            text: "no XML envelope in the answer".to_owned(),
            retryable: false,
        }),
    }
}

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
    } else {
        "connection error".to_owned()
    }
}

/// Client for one account: shared connection pool and one session per service.
pub(crate) struct Http {
    client: reqwest::Client,
    base: Url,
    credentials: SmartFocusCredentials,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
    ccmd: Mutex<Option<Token>>,
    batch: Mutex<Option<Token>>,
    /// Calls under way per service ([ccmd, batch]); a session is closed only when idle.
    in_flight: [AtomicUsize; 2],
}

/// Counts a call as under way until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Http {
    pub(crate) fn new(
        client: reqwest::Client,
        base: Url,
        credentials: SmartFocusCredentials,
        clock: Arc<dyn Clock>,
        max_attempts: u32,
    ) -> Self {
        Self {
            client,
            base,
            credentials,
            clock,
            max_attempts: max_attempts.max(1),
            ccmd: Mutex::new(None),
            batch: Mutex::new(None),
            in_flight: [AtomicUsize::new(0), AtomicUsize::new(0)],
        }
    }

    fn slot(&self, service: Service) -> &Mutex<Option<Token>> {
        match service {
            Service::Ccmd => &self.ccmd,
            Service::Batch => &self.batch,
        }
    }

    fn in_flight(&self, service: Service) -> &AtomicUsize {
        match service {
            Service::Ccmd => &self.in_flight[0],
            Service::Batch => &self.in_flight[1],
        }
    }

    fn url(&self, service: Service, rest_path: &str) -> Result<Url, EspError> {
        self.base
            .join(&format!("{}/services/rest/{rest_path}", service.root()))
            .map_err(|e| EspError::Invalid {
                esp: ESP,
                detail: format!("cannot build the request URL: {e}"),
            })
    }

    /// The service's token, opening a session when there is none or it is near its lifetime.
    async fn token(&self, service: Service) -> Result<String, EspError> {
        let mut slot = self.slot(service).lock().await;
        let now = self.clock.now();
        if let Some(t) = slot.as_ref()
            && now.duration_since(t.opened) < TOKEN_TTL
        {
            return Ok(t.value.clone());
        }
        let value = self.open(service).await?;
        *slot = Some(Token {
            value: value.clone(),
            opened: now,
        });
        Ok(value)
    }

    /// Forgets `token` unless another call already replaced it.
    async fn forget(&self, service: Service, token: &str) {
        let mut slot = self.slot(service).lock().await;
        if slot.as_ref().is_some_and(|t| t.value == token) {
            *slot = None;
        }
    }

    async fn open(&self, service: Service) -> Result<String, EspError> {
        let mut url = self.url(service, "connect/open")?;
        url.query_pairs_mut()
            .append_pair("login", &self.credentials.login)
            .append_pair("password", &self.credentials.password)
            .append_pair("key", &self.credentials.key);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = self.client.get(url.clone()).send().await;
            let verdict = match res {
                Err(e) => Verdict::Retry(describe(&e)),
                Ok(r) => {
                    let status = r.status().as_u16();
                    match r.bytes().await {
                        Ok(b) => classify(status, &b),
                        Err(e) => Verdict::Retry(describe(&e)),
                    }
                }
            };
            match verdict {
                Verdict::Done(payload) => {
                    let token = crate::wire::scalar(&payload).unwrap_or_default().trim();
                    if token.is_empty() {
                        return Err(EspError::Protocol {
                            esp: ESP,
                            detail: "connect/open returned no token".to_owned(),
                        });
                    }
                    tracing::debug!(service = service.root(), "smartfocus session opened");
                    return Ok(token.to_owned());
                }
                Verdict::Fail(EspError::Api {
                    text,
                    code,
                    status: 500,
                    retryable: false,
                    ..
                }) if !text.contains("No available connection") => {
                    return Err(EspError::Auth {
                        esp: ESP,
                        detail: if code.is_empty() {
                            text
                        } else {
                            format!("{code}: {text}")
                        },
                    });
                }
                Verdict::Fail(
                    e @ EspError::Api {
                        retryable: false,
                        status,
                        ..
                    },
                ) if status != 500 => {
                    return Err(e);
                }
                Verdict::Fail(EspError::Api { text, code, .. }) if attempt >= self.max_attempts => {
                    return Err(EspError::Transient {
                        esp: ESP,
                        detail: format!("connect/open: {code}: {text}"),
                    });
                }
                Verdict::Fail(EspError::Api { .. }) | Verdict::SessionLost | Verdict::Retry(_)
                    if attempt < self.max_attempts =>
                {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Verdict::Fail(e) => return Err(e),
                Verdict::SessionLost => {
                    return Err(EspError::Auth {
                        esp: ESP,
                        detail: "connect/open refused".to_owned(),
                    });
                }
                Verdict::Retry(detail) => return Err(EspError::Transient { esp: ESP, detail }),
            }
        }
    }

    /// Closes the service's session when one is open and no other call is using it (the vendor
    /// asks for open → calls → close per job). Failures only matter to the server.
    pub(crate) async fn close(&self, service: Service) {
        let token = {
            let mut slot = self.slot(service).lock().await;
            if self.in_flight(service).load(Ordering::SeqCst) > 0 {
                return;
            }
            slot.take()
        };
        let Some(token) = token else { return };
        let Ok(url) = self.url(service, &format!("connect/close/{}", enc(&token.value))) else {
            return;
        };
        match self.client.get(url).send().await {
            Ok(r) => tracing::debug!(
                service = service.root(),
                status = r.status().as_u16(),
                "smartfocus session closed"
            ),
            Err(e) => {
                tracing::debug!(service = service.root(), error = %describe(&e), "smartfocus close failed")
            }
        }
    }

    /// One call. `path` builds the REST path (under `{service}/services/rest/`) from the token;
    /// every value in it must go through [`enc`].
    pub(crate) async fn call(
        &self,
        service: Service,
        method: Method,
        repeat: Repeat,
        path: &(dyn Fn(&str) -> String + Sync),
        body: Option<&Body>,
    ) -> Result<Element, EspError> {
        let _busy = InFlight::enter(self.in_flight(service));
        let mut attempt = 0u32;
        let mut reopened = false;
        loop {
            attempt += 1;
            let token = self.token(service).await?;
            let url = self.url(service, &path(&enc(&token)))?;
            let mut req = match method {
                Method::Get => self.client.get(url),
                Method::Put => self.client.put(url),
            };
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, b.content_type.as_str())
                    .body(b.bytes.clone());
            }
            let (verdict, reached) = match req.send().await {
                Err(e) => (Verdict::Retry(describe(&e)), !e.is_connect()),
                Ok(r) => {
                    let status = r.status().as_u16();
                    match r.bytes().await {
                        Ok(b) => (classify(status, &b), true),
                        Err(e) => (Verdict::Retry(describe(&e)), true),
                    }
                }
            };
            let may_repeat = repeat == Repeat::Safe || !reached;
            match verdict {
                Verdict::Done(payload) => return Ok(payload),
                Verdict::SessionLost if !reopened => {
                    tracing::debug!(
                        service = service.root(),
                        "smartfocus session lost; re-opening"
                    );
                    self.forget(service, &token).await;
                    reopened = true;
                    attempt -= 1;
                }
                Verdict::SessionLost => {
                    // Another call may have closed the fresh session; a later retry will do.
                    return Err(EspError::Transient {
                        esp: ESP,
                        detail: "session lost twice in one call".to_owned(),
                    });
                }
                Verdict::Fail(EspError::Api {
                    retryable: true,
                    ref code,
                    ..
                }) if code != "MAX_NB_UPLOADS" && may_repeat && attempt < self.max_attempts => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Verdict::Fail(e) => return Err(e),
                Verdict::Retry(_) if may_repeat && attempt < self.max_attempts => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Verdict::Retry(detail) => return Err(EspError::Transient { esp: ESP, detail }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED: &str = r#"<?xml version="1.0" encoding="utf-8"?><response responseStatus="failed"><description>No flatUpload found!</description><fields>12345</fields><status>GET_FLATUPLOAD_FAILED</status></response>"#;

    #[test]
    fn enc_escapes_path_breakers() {
        assert_eq!(enc("2024-05-20T09:30:00"), "2024-05-20T09%3A30%3A00");
        assert_eq!(enc("a b/c+d"), "a%20b%2Fc%2Bd");
        assert_eq!(enc("é"), "%C3%A9");
        assert_eq!(enc("espbridge_c-42_A"), "espbridge_c-42_A");
    }

    #[test]
    fn failed_envelope_is_a_typed_api_error() {
        match classify(500, FAILED.as_bytes()) {
            Verdict::Fail(EspError::Api {
                status,
                code,
                text,
                retryable,
                ..
            }) => {
                assert_eq!(status, 500);
                assert_eq!(code, "GET_FLATUPLOAD_FAILED");
                assert!(text.contains("No flatUpload found!"), "{text}");
                assert!(!retryable);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn transient_status_is_retryable() {
        let body = FAILED.replace("GET_FLATUPLOAD_FAILED", "GET_STATUS_FAILED");
        match classify(500, body.as_bytes()) {
            Verdict::Fail(e) => assert!(e.is_retryable()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn session_errors_are_recognised() {
        for text in [
            "Your session has expired",
            "The maximum number of connection allowed per session has been reached",
        ] {
            let body = format!(
                r#"<response responseStatus="failed"><description>{text}</description><fields>token</fields><status>CHECK_SESSION_FAILED</status></response>"#
            );
            assert_eq!(
                classify(500, body.as_bytes()),
                Verdict::SessionLost,
                "{text}"
            );
        }
    }

    #[test]
    fn http_statuses_without_envelope() {
        assert!(matches!(classify(503, b"oops"), Verdict::Retry(_)));
        assert!(matches!(classify(429, b""), Verdict::Retry(_)));
        let proxied = FAILED.replace("GET_FLATUPLOAD_FAILED", "HTTP_503");
        assert!(matches!(
            classify(503, proxied.as_bytes()),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            classify(401, b""),
            Verdict::Fail(EspError::Auth { .. })
        ));
        assert!(matches!(
            classify(404, b"not found"),
            Verdict::Fail(EspError::Api { status: 404, .. })
        ));
        assert!(matches!(
            classify(200, b"not xml <"),
            Verdict::Fail(EspError::Protocol { .. })
        ));
        let ok = r#"<response responseStatus="success"><result xsi:type="xs:long">7</result></response>"#;
        match classify(200, ok.as_bytes()) {
            Verdict::Done(p) => assert_eq!(crate::wire::scalar(&p), Some("7")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
