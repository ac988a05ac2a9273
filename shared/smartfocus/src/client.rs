//! The SmartFocus side of a call: per-service session tokens and the reading of an answer.
//!
//! A token belongs to one service (`apiccmd`, `apibatchmember`). It is opened on first use
//! (single-flight: calls in flight wait, with a deadline, for the one `connect/open`), reused for
//! 55 minutes (the server's limit is 60), and re-opened when a call answers with a session error
//! (expired, call quota reached, unknown token); that call is then repeated with the new token,
//! and again as long as the account's sessions serve calls (a manager's quota of a few calls per
//! session costs a `connect/open` per used-up session, not the call), but not after a few fresh
//! tokens in a row that served nothing ([`Renewals`]).
//! Retries of transport failures and transient `failed` statuses are the shared HTTP layer's,
//! and happen only for calls that are safe to repeat: a create whose answer was lost is left to
//! the caller, which looks the object up by its deterministic name.

use crate::config::SmartFocusCredentials;
use crate::wire::{Answer, Element, Failure};
use espbridge_core::Clock;
use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use espbridge_esp_kit::session::Renewals;
use espbridge_esp_kit::{EspHttp, ExposeSecret, Idempotency, Retryable, SessionSlot, Step};
use jiff::SignedDuration;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

const ESP: EspKind = EspKind::Smartfocus;
/// Re-open a token this long after it was opened (server lifetime: 60 minutes).
const TOKEN_TTL: SignedDuration = SignedDuration::from_mins(55);
/// Longest wait for another call's `connect/open`.
const LOGIN_WAIT: Duration = Duration::from_secs(120);

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

    /// The service's SOAP binding (`/{svc}/services/{Name}Service`, reference B.1).
    fn soap_endpoint(self) -> &'static str {
        match self {
            Service::Ccmd => "CcmdService",
            Service::Batch => "BatchMemberService",
        }
    }
}

/// What one call sends: a REST request, or a SOAP envelope posted to the service's SOAP
/// binding. Both carry the service's session token, so both are repeated in a new session
/// when the token is refused.
#[derive(Clone, Copy)]
enum Call<'a> {
    Rest {
        method: Method,
        path: &'a (dyn Fn(&str) -> String + Sync),
        body: Option<&'a Body>,
    },
    Soap {
        /// For logs.
        operation: &'a str,
        /// The envelope for a token.
        envelope: &'a (dyn Fn(&str) -> Vec<u8> + Sync),
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Put,
}

impl Method {
    fn http(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Put => reqwest::Method::PUT,
        }
    }
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

/// Client for one account: the shared HTTP layer and one session per service.
pub(crate) struct Http {
    http: EspHttp,
    credentials: SmartFocusCredentials,
    clock: Arc<dyn Clock>,
    ccmd: SessionSlot<String>,
    batch: SessionSlot<String>,
}

impl Http {
    pub(crate) fn new(
        http: EspHttp,
        credentials: SmartFocusCredentials,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let slot = || SessionSlot::new(ESP, LOGIN_WAIT).with_max_age(TOKEN_TTL);
        Self {
            http,
            credentials,
            clock,
            ccmd: slot(),
            batch: slot(),
        }
    }

    fn slot(&self, service: Service) -> &SessionSlot<String> {
        match service {
            Service::Ccmd => &self.ccmd,
            Service::Batch => &self.batch,
        }
    }

    fn url(&self, service: Service, rest_path: &str) -> Result<Url, EspError> {
        self.http
            .url(&format!("{}/services/rest/{rest_path}", service.root()))
    }

    /// The service's token, opening a session when there is none or it is near its lifetime.
    async fn token(&self, service: Service) -> Result<String, EspError> {
        self.slot(service)
            .get(self.clock.now(), || self.open(service))
            .await
    }

    async fn open(&self, service: Service) -> Result<String, EspError> {
        let mut url = self.url(service, "connect/open")?;
        url.query_pairs_mut()
            .append_pair("login", &self.credentials.login)
            .append_pair("password", self.credentials.password.expose_secret())
            .append_pair("key", self.credentials.key.expose_secret());
        let payload = self
            .http
            .retry("connect/open", Idempotency::Safe, |_| async {
                let ex = match self
                    .http
                    .send(self.http.request(reqwest::Method::GET, url.clone()))
                    .await
                {
                    Ok(ex) => ex,
                    Err(e) => return e.into(),
                };
                match classify(ex.status, &ex.body) {
                    Verdict::Done(payload) => Step::Done(payload),
                    // The API answers a refused login with a failed envelope on HTTP 500; "no
                    // available connection" is the server's own capacity, worth another try.
                    Verdict::Fail(EspError::Api {
                        text,
                        code,
                        status: 500,
                        retryable: false,
                        ..
                    }) if !text.contains("No available connection") => Step::Fail(EspError::Auth {
                        esp: ESP,
                        detail: if code.is_empty() {
                            text
                        } else {
                            format!("{code}: {text}")
                        },
                    }),
                    Verdict::Fail(
                        e @ EspError::Api {
                            retryable: false,
                            status,
                            ..
                        },
                    ) if status != 500 => Step::Fail(e),
                    Verdict::Fail(e @ EspError::Api { .. }) => {
                        Step::Retry(Retryable::transient(e.to_string()))
                    }
                    Verdict::Fail(e) => Step::Fail(e),
                    Verdict::SessionLost => Step::Fail(EspError::Auth {
                        esp: ESP,
                        detail: "connect/open refused".to_owned(),
                    }),
                    Verdict::Retry(detail) => Step::Retry(Retryable::transient(detail)),
                }
            })
            .await?;
        let token = crate::wire::scalar(&payload).unwrap_or_default().trim();
        if token.is_empty() {
            return Err(EspError::Protocol {
                esp: ESP,
                detail: "connect/open returned no token".to_owned(),
            });
        }
        tracing::debug!(service = service.root(), "smartfocus session opened");
        Ok(token.to_owned())
    }

    /// Closes the service's session when one is open and no other call is using it (the vendor
    /// asks for open → calls → close per job). Failures only matter to the server.
    pub(crate) async fn close(&self, service: Service) {
        let Some(token) = self.slot(service).take_if_idle().await else {
            return;
        };
        let Ok(url) = self.url(service, &format!("connect/close/{}", enc(&token))) else {
            return;
        };
        match self
            .http
            .send(self.http.request(reqwest::Method::GET, url))
            .await
        {
            Ok(ex) => tracing::debug!(
                service = service.root(),
                status = ex.status,
                "smartfocus session closed"
            ),
            Err(e) => {
                tracing::debug!(service = service.root(), error = %e, "smartfocus close failed")
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
        let what = format!("{}/{}", service.root(), call_name(&path("TOKEN")));
        self.run(service, repeat, Call::Rest { method, path, body }, &what)
            .await
    }

    /// One SOAP operation of the service, with the session token the REST `connect/open`
    /// gave (`envelope` builds the document from it). Answers (and faults) are read like the
    /// REST ones: a session fault re-opens the session and repeats the call.
    pub(crate) async fn soap(
        &self,
        service: Service,
        operation: &str,
        envelope: &(dyn Fn(&str) -> Vec<u8> + Sync),
    ) -> Result<Element, EspError> {
        let what = format!("{}/soap/{operation}", service.root());
        self.run(
            service,
            Repeat::Safe,
            Call::Soap {
                operation,
                envelope,
            },
            &what,
        )
        .await
    }

    async fn run(
        &self,
        service: Service,
        repeat: Repeat,
        call: Call<'_>,
        what: &str,
    ) -> Result<Element, EspError> {
        let slot = self.slot(service);
        let _busy = slot.enter();
        let renewals = std::sync::Mutex::new(slot.renewals());
        let idempotency = match repeat {
            Repeat::Safe => Idempotency::Safe,
            Repeat::Once => Idempotency::Unsafe,
        };
        self.http
            .retry(what, idempotency, |_| {
                self.attempt(service, call, &renewals, what)
            })
            .await
    }

    /// The request of one attempt with `token`.
    fn request(
        &self,
        service: Service,
        call: Call<'_>,
        token: &str,
    ) -> Result<reqwest::RequestBuilder, EspError> {
        match call {
            Call::Rest { method, path, body } => {
                let url = self.url(service, &path(&enc(token)))?;
                let mut req = self.http.request(method.http(), url);
                if let Some(b) = body {
                    req = req
                        .header(reqwest::header::CONTENT_TYPE, b.content_type.as_str())
                        .body(b.bytes.clone());
                }
                Ok(req)
            }
            Call::Soap {
                operation,
                envelope,
            } => {
                let url = self.http.url(&format!(
                    "{}/services/{}",
                    service.root(),
                    service.soap_endpoint()
                ))?;
                tracing::trace!(operation, "smartfocus soap call");
                Ok(self
                    .http
                    .request(reqwest::Method::POST, url)
                    .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                    .header("SOAPAction", "\"\"")
                    .body(envelope(token)))
            }
        }
    }

    /// One attempt; a lost session is re-opened and the request repeated within it (the server
    /// refused it before acting), for as long as `renewals` allows.
    async fn attempt(
        &self,
        service: Service,
        call: Call<'_>,
        renewals: &std::sync::Mutex<Renewals<'_, String>>,
        what: &str,
    ) -> Step<Element> {
        let slot = self.slot(service);
        loop {
            let token = match self.token(service).await {
                Ok(t) => t,
                Err(e) => return Step::Fail(e),
            };
            let req = match self.request(service, call, &token) {
                Ok(r) => r,
                Err(e) => return Step::Fail(e),
            };
            let ex = match self.http.send(req).await {
                Ok(ex) => ex,
                Err(e) => return e.into(),
            };
            let verdict = classify(ex.status, &ex.body);
            if verdict != Verdict::SessionLost {
                slot.served();
            }
            match verdict {
                Verdict::Done(payload) => return Step::Done(payload),
                Verdict::SessionLost => {
                    slot.forget(&token).await;
                    let mut r = renewals.lock().unwrap_or_else(|p| p.into_inner());
                    if !r.again() {
                        return Step::Fail(r.exhausted(what));
                    }
                    tracing::debug!(
                        service = service.root(),
                        renewals = r.count(),
                        "smartfocus session lost; re-opening"
                    );
                }
                // Too many pending uploads is the caller's to wait out (it knows the deadline).
                Verdict::Fail(
                    e @ EspError::Api {
                        retryable: true, ..
                    },
                ) if !matches!(&e, EspError::Api { code, .. } if code == "MAX_NB_UPLOADS") => {
                    return Step::Retry(Retryable::transient(e.to_string()));
                }
                Verdict::Fail(e) => return Step::Fail(e),
                Verdict::Retry(detail) => {
                    return Step::Retry(Retryable {
                        wait: ex.retry_after(),
                        throttled: ex.status == 429,
                        ..Retryable::transient(detail)
                    });
                }
            }
        }
    }
}

/// A call's name for logs: its REST path up to the token (no ids, names or dates).
fn call_name(path_with_placeholder: &str) -> String {
    path_with_placeholder
        .split("/TOKEN")
        .next()
        .unwrap_or(path_with_placeholder)
        .to_owned()
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
