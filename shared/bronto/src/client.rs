//! The SOAP transport: `POST {base}v4`, one session per adapter (logged in lazily, again on
//! Fault 103), retries of transient failures with exponential back-off, and the address pacer
//! in front of every `addToList` attempt.

use crate::config::{BrontoConfig, BrontoCredentials};
use crate::pacer::Pacer;
use crate::wire::{self, Element, Fault, Node, Response};
use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use std::time::Duration;
use tokio::sync::Mutex;
use url::Url;

const ESP: EspKind = EspKind::Bronto;

/// Fault 103: the session is invalid or expired.
pub(crate) const SESSION_INVALID: u32 = 103;
/// Fault 116: end of a read's result set.
pub(crate) const END_OF_RESULTS: u32 = 116;

/// Faults worth another attempt (reference table B.4): 101 unknown error / rate limit, 108
/// maintenance, 113 error reading query results.
pub(crate) fn is_retryable_fault(code: Option<u32>) -> bool {
    matches!(code, Some(101 | 108 | 113))
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(6)))
}

/// Maps a Fault to the port's error.
pub(crate) fn fault_error(op: &str, status: u16, f: &Fault) -> EspError {
    let code = f.code.map_or_else(|| "fault".to_owned(), |c| c.to_string());
    match f.code {
        Some(102 | 104 | 109 | 111) => EspError::Auth {
            esp: ESP,
            detail: format!("{op}: Fault {code}"),
        },
        Some(SESSION_INVALID) => EspError::Transient {
            esp: ESP,
            detail: format!("{op}: session refused twice in a row"),
        },
        _ => EspError::Api {
            esp: ESP,
            status,
            code,
            text: format!("{op}: {}", f.text),
            retryable: is_retryable_fault(f.code),
        },
    }
}

fn protocol(detail: String) -> EspError {
    EspError::Protocol { esp: ESP, detail }
}

/// How a call treats failures that may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Repeat transport errors, bare 5xx and retryable Faults up to `max_attempts`.
    Transient,
    /// Send once (bar a refused session): for writes that are not idempotent. Errors keep
    /// their retryability so the caller can look up before trying again.
    Once,
}

/// One call.
pub(crate) struct Call {
    pub op: &'static str,
    pub body: Node,
    pub retry: Retry,
    /// Addresses the call carries, for the pacer (`addToList`); 0 = not paced.
    pub addresses: u64,
}

impl Call {
    pub(crate) fn new(op: &'static str, body: Node) -> Self {
        Self {
            op,
            body,
            retry: Retry::Transient,
            addresses: 0,
        }
    }
}

/// One outcome of one HTTP exchange.
enum Exchange {
    Answer(Element),
    Fault(u16, Fault),
    /// The request may or may not have been acted on (transport error, bare 5xx).
    Ambiguous(EspError),
}

pub(crate) struct Client {
    http: reqwest::Client,
    endpoint: Url,
    credentials: BrontoCredentials,
    max_attempts: u32,
    session: Mutex<Option<String>>,
    pacer: Pacer,
}

impl Client {
    pub(crate) fn new(
        config: &BrontoConfig,
        credentials: BrontoCredentials,
    ) -> Result<Self, crate::BrontoError> {
        let bad_url = |detail: String| crate::BrontoError::Config {
            field: "base_url",
            detail,
        };
        let mut base = Url::parse(&config.base_url).map_err(|e| bad_url(e.to_string()))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let endpoint = base.join("v4").map_err(|e| bad_url(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .build()?;
        Ok(Self {
            http,
            endpoint,
            credentials,
            max_attempts: config.max_attempts,
            session: Mutex::new(None),
            pacer: Pacer::new(u64::from(config.addresses_per_minute), config.rate_window()),
        })
    }

    async fn exchange(&self, op: &str, body: Vec<u8>) -> Exchange {
        let ambiguous =
            |detail: String| Exchange::Ambiguous(EspError::Transient { esp: ESP, detail });
        let resp = match self
            .http
            .post(self.endpoint.clone())
            .header("Content-Type", "text/xml;charset=UTF-8")
            .header("SOAPAction", "\"\"")
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return ambiguous(format!("{op}: transport: {}", error_kind(&e))),
        };
        let status = resp.status().as_u16();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return ambiguous(format!("{op}: reading body: {}", error_kind(&e))),
        };
        match wire::parse_response(&bytes, op) {
            Ok(Response::Ok(el)) => Exchange::Answer(el),
            Ok(Response::Fault(f)) => Exchange::Fault(status, f),
            Err(_) if status >= 500 || status == 429 => ambiguous(format!("{op}: HTTP {status}")),
            Err(e) => Exchange::Ambiguous(protocol(format!("{op}: HTTP {status}: {e}"))),
        }
    }

    /// The current session, logging in when there is none (one login at a time).
    async fn session(&self) -> Result<String, EspError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let body = wire::envelope(None, wire::login(&self.credentials.api_token))
            .map_err(|e| protocol(e.to_string()))?;
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            match self.exchange("login", body.clone()).await {
                Exchange::Answer(r) => break r,
                Exchange::Fault(_, f)
                    if is_retryable_fault(f.code) && attempt < self.max_attempts => {}
                Exchange::Fault(_, f) => {
                    return Err(EspError::Auth {
                        esp: ESP,
                        detail: format!(
                            "login refused (Fault {})",
                            f.code
                                .map_or_else(|| "without code".into(), |c| c.to_string())
                        ),
                    });
                }
                Exchange::Ambiguous(e) if !e.is_retryable() || attempt >= self.max_attempts => {
                    return Err(e);
                }
                Exchange::Ambiguous(_) => {}
            }
            tokio::time::sleep(backoff(attempt)).await;
        };
        let session = wire::session_id(&response)
            .ok_or_else(|| protocol("login answer has no session id".into()))?
            .to_owned();
        tracing::debug!(esp = "bronto", "logged in");
        *slot = Some(session.clone());
        Ok(session)
    }

    /// Forgets `stale` unless another call already replaced it.
    async fn forget(&self, stale: &str) {
        let mut slot = self.session.lock().await;
        if slot.as_deref() == Some(stale) {
            *slot = None;
        }
    }

    /// Sends `call`; on Fault 103 logs in again and repeats once. Returns `<op>Response`.
    pub(crate) async fn call(&self, call: Call) -> Result<Element, EspError> {
        let max_attempts = match call.retry {
            Retry::Transient => self.max_attempts,
            Retry::Once => 1,
        };
        let mut attempt = 0;
        let mut relogged = false;
        loop {
            attempt += 1;
            let session = self.session().await?;
            let body = wire::envelope(Some(&session), call.body.clone())
                .map_err(|e| protocol(e.to_string()))?;
            let exchange = {
                let _permit = match call.addresses {
                    0 => None,
                    n => Some(self.pacer.admit(n).await),
                };
                self.exchange(call.op, body).await
            };
            let error = match exchange {
                Exchange::Answer(r) => return Ok(r),
                Exchange::Fault(status, f) if f.code == Some(SESSION_INVALID) => {
                    self.forget(&session).await;
                    if relogged {
                        // Refused again right after a login: give up for now (retryable).
                        return Err(fault_error(call.op, status, &f));
                    }
                    tracing::info!(
                        esp = "bronto",
                        op = call.op,
                        "session invalid; logging in again"
                    );
                    relogged = true;
                    // The server refused the call before acting: this is not an attempt.
                    attempt -= 1;
                    continue;
                }
                Exchange::Fault(status, f) => fault_error(call.op, status, &f),
                Exchange::Ambiguous(e) => e,
            };
            if !error.is_retryable() || attempt >= max_attempts {
                if let EspError::Api { code, .. } = &error
                    && code == "101"
                    && max_attempts > 1
                {
                    return Err(EspError::RateLimited {
                        esp: ESP,
                        attempts: attempt,
                    });
                }
                return Err(error);
            }
            tracing::info!(esp = "bronto", op = call.op, attempt, error = %error, "retrying");
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

/// A reqwest error's kind, without the URL or anything else it carries.
fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(code: Option<u32>) -> Fault {
        Fault {
            code,
            fault_code: "soap:Server".into(),
            text: "x".into(),
        }
    }

    #[test]
    fn faults_map_to_typed_errors() {
        for (code, retryable) in [
            (101, true),
            (108, true),
            (113, true),
            (105, false),
            (106, false),
            (107, false),
        ] {
            match fault_error("addToList", 500, &fault(Some(code))) {
                EspError::Api {
                    code: c,
                    retryable: r,
                    status,
                    ..
                } => {
                    assert_eq!(c, code.to_string());
                    assert_eq!(r, retryable, "{code}");
                    assert_eq!(status, 500);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            fault_error("login", 500, &fault(Some(102))),
            EspError::Auth { .. }
        ));
        assert!(fault_error("x", 500, &fault(Some(103))).is_retryable());
        assert!(!fault_error("x", 500, &fault(None)).is_retryable());
    }

    #[test]
    fn backoff_grows() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert!(backoff(30) <= Duration::from_secs(16));
    }
}
