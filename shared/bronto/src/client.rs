//! The Bronto side of a call: `POST {base}v4` SOAP envelopes, one session per adapter (logged
//! in lazily and single-flight — the calls in flight wait, with a deadline, for the one login —
//! again on Fault 103 for as long as the account's sessions serve calls), and the account's address allowance (shared
//! by the whole deployment) in front of every
//! `addToList` attempt. Retries and back-off are the shared HTTP layer's.
//!
//! Bronto never says how many addresses a minute an account takes; it only refuses (Fault 101)
//! beyond it. The configured figure is therefore a ceiling: a refusal halves the pace, and calls
//! that go through raise it again by a twentieth every few calls ([`Aimd`]), so an account
//! stricter than configured slows the upload down instead of ending it.

use crate::config::{BrontoConfig, BrontoCredentials};
use crate::wire::{self, Element, Fault, Node, Response};
use espbridge_core::EspKind;
use espbridge_core::ports::AccountLimits;
use espbridge_core::ports::EspError;
use espbridge_esp_kit::limits::Change;
use espbridge_esp_kit::session::Renewals;
use espbridge_esp_kit::{
    AdapterError, EspHttp, ExposeSecret, Idempotency, Retryable, SessionSlot, Step,
    http::is_transient_status,
};
use espbridge_esp_kit::{Aimd, RateGate};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

const ESP: EspKind = EspKind::Bronto;
/// Share of the paced allowance the gate aims at, so a call arriving late stays inside it.
const TARGET_SHARE: f64 = 0.97;
/// `addToList` calls in a row that raise the learned pace by one step.
const RAISE_EVERY: u32 = 5;
/// Longest wait for another call's login.
const LOGIN_WAIT: Duration = Duration::from_secs(120);

/// Fault 103: the session is invalid or expired.
pub(crate) const SESSION_INVALID: u32 = 103;
/// Fault 116: end of a read's result set.
pub(crate) const END_OF_RESULTS: u32 = 116;
/// Fault 101: "unknown error", which Bronto also answers when an account is over its rate.
const RATE_OR_UNKNOWN: u32 = 101;

/// Faults worth another attempt (reference table B.4): 101 unknown error / rate limit, 108
/// maintenance, 113 error reading query results.
pub(crate) fn is_retryable_fault(code: Option<u32>) -> bool {
    matches!(code, Some(101 | 108 | 113))
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
    /// Send once (bar a refused session, or a request that never left): for writes that are
    /// not idempotent. Errors keep their retryability so the caller can look up before trying
    /// again.
    Once,
}

/// One call.
pub(crate) struct Call {
    pub op: &'static str,
    pub body: Node,
    pub retry: Retry,
    /// Addresses the call carries, for the address allowance (`addToList`); 0 = not paced.
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
}

pub(crate) struct Client {
    http: EspHttp,
    endpoint: Url,
    credentials: BrontoCredentials,
    session: SessionSlot<String>,
    addresses: RateGate,
    /// The address pace learned from refusals; the gate follows it.
    pace: Aimd,
}

impl Client {
    pub(crate) fn new(
        config: &BrontoConfig,
        credentials: BrontoCredentials,
        limits: Arc<dyn AccountLimits>,
    ) -> Result<Self, AdapterError> {
        let settings = config.http_settings()?;
        let http = EspHttp::new(ESP, &settings)?;
        let endpoint = settings
            .base_url
            .join("v4")
            .map_err(|e| AdapterError::Config {
                esp: ESP,
                field: "base_url",
                detail: e.to_string(),
            })?;
        let ceiling = config.address_pace(TARGET_SHARE);
        Ok(Self {
            http,
            endpoint,
            credentials,
            session: SessionSlot::new(ESP, LOGIN_WAIT),
            addresses: RateGate::new(
                ESP,
                limits,
                format!("bronto/{}/addresses", config.account),
                ceiling,
            ),
            pace: Aimd::new(ceiling, config.addresses_per_call() as f64, RAISE_EVERY),
        })
    }

    /// The address pace (per real minute) the client keeps now, and the refusals that taught it.
    pub(crate) fn address_pace(&self) -> (f64, u64) {
        (self.pace.current(), self.pace.refusals())
    }

    /// Moves the gate to what the last `addToList` taught.
    fn learn(&self, change: Change) {
        match change {
            Change::Lowered(p) => {
                self.addresses.set_per_minute(p);
                tracing::info!(
                    esp = "bronto",
                    addresses_per_minute = p as u64,
                    "address pace lowered after a refusal"
                );
            }
            Change::Raised(p) => {
                self.addresses.set_per_minute(p);
                tracing::debug!(
                    esp = "bronto",
                    addresses_per_minute = p as u64,
                    "address pace raised"
                );
            }
            Change::Same => {}
        }
    }

    /// Attempts per call the account allows.
    pub(crate) fn attempts(&self) -> u32 {
        self.http.attempts()
    }

    /// The wait before another attempt of a look-up-then-create step.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.http.backoff().transient(attempt)
    }

    /// One HTTP exchange, read into a step: an answer (Fault or not), or a failure that may
    /// be repeated.
    async fn exchange(&self, op: &str, body: &[u8]) -> Step<Exchange> {
        let req = self
            .http
            .request(reqwest::Method::POST, self.endpoint.clone())
            .header("Content-Type", "text/xml;charset=UTF-8")
            .header("SOAPAction", "\"\"")
            .body(body.to_vec());
        let ex = match self.http.send(req).await {
            Ok(ex) => ex,
            Err(e) => return e.into(),
        };
        match wire::parse_response(&ex.body, op) {
            Ok(Response::Ok(el)) => Step::Done(Exchange::Answer(el)),
            Ok(Response::Fault(f)) => Step::Done(Exchange::Fault(ex.status, f)),
            Err(_) if is_transient_status(ex.status) => Step::Retry(Retryable {
                wait: ex.retry_after(),
                throttled: ex.status == 429,
                ..Retryable::transient(format!("{op}: HTTP {}", ex.status))
            }),
            Err(e) => Step::Fail(protocol(format!("{op}: HTTP {}: {e}", ex.status))),
        }
    }

    /// The current session, logging in when there is none (one login at a time).
    async fn session(&self) -> Result<String, EspError> {
        self.session
            .get(jiff::Timestamp::now(), || async {
                let body = wire::envelope(
                    None,
                    wire::login(self.credentials.api_token.expose_secret()),
                )
                .map_err(|e| protocol(e.to_string()))?;
                let response = self
                    .http
                    .retry("login", Idempotency::Safe, |_| async {
                        match self.exchange("login", &body).await {
                            Step::Done(Exchange::Answer(r)) => Step::Done(r),
                            Step::Done(Exchange::Fault(_, f)) if is_retryable_fault(f.code) => {
                                Step::Retry(Retryable::transient(format!(
                                    "login: Fault {}",
                                    f.code.unwrap_or_default()
                                )))
                            }
                            Step::Done(Exchange::Fault(_, f)) => Step::Fail(EspError::Auth {
                                esp: ESP,
                                detail: format!(
                                    "login refused (Fault {})",
                                    f.code
                                        .map_or_else(|| "without code".into(), |c| c.to_string())
                                ),
                            }),
                            Step::Retry(r) => Step::Retry(r),
                            Step::Fail(e) => Step::Fail(e),
                        }
                    })
                    .await?;
                let session = wire::session_id(&response)
                    .ok_or_else(|| protocol("login answer has no session id".into()))?
                    .to_owned();
                tracing::debug!(esp = "bronto", "logged in");
                Ok(session)
            })
            .await
    }

    /// Sends `call`; on Fault 103 logs in again (single-flight) and repeats it, as long as the
    /// account's sessions serve calls ([`Renewals`]). Returns `<op>Response`.
    pub(crate) async fn call(&self, call: Call) -> Result<Element, EspError> {
        let idempotency = match call.retry {
            Retry::Transient => Idempotency::Safe,
            Retry::Once => Idempotency::Unsafe,
        };
        let _busy = self.session.enter();
        let renewals = std::sync::Mutex::new(self.session.renewals());
        // Fault 101 is read as throttling: waited out (and, on addToList, the pace lowered)
        // until the layer's patience ends it as `RateLimited`.
        self.http
            .retry(call.op, idempotency, |_| self.attempt(&call, &renewals))
            .await
    }

    /// One attempt; a refused session is renewed and the request repeated within it (the
    /// server refused it before acting, so it is not an attempt, and its addresses were not
    /// counted: the repeat spends no more of the allowance), as long as `renewals` allows.
    async fn attempt(
        &self,
        call: &Call,
        renewals: &std::sync::Mutex<Renewals<'_, String>>,
    ) -> Step<Element> {
        let mut paced = false;
        loop {
            let session = match self.session().await {
                Ok(s) => s,
                Err(e) => return Step::Fail(e),
            };
            let body = match wire::envelope(Some(&session), call.body.clone()) {
                Ok(b) => b,
                Err(e) => return Step::Fail(protocol(e.to_string())),
            };
            if call.addresses > 0
                && !paced
                && let Err(e) = self.addresses.acquire(call.addresses).await
            {
                return Step::Fail(e);
            }
            paced = true;
            let exchange = self.exchange(call.op, &body).await;
            if let Step::Done(Exchange::Answer(_)) = &exchange {
                self.session.served();
            } else if let Step::Done(Exchange::Fault(_, f)) = &exchange
                && f.code != Some(SESSION_INVALID)
            {
                self.session.served();
            }
            if call.addresses > 0 {
                match &exchange {
                    Step::Done(Exchange::Answer(_)) => self.learn(self.pace.succeeded()),
                    Step::Done(Exchange::Fault(_, f)) if f.code == Some(RATE_OR_UNKNOWN) => {
                        self.learn(self.pace.refused())
                    }
                    _ => {}
                }
            }
            match exchange {
                Step::Done(Exchange::Answer(r)) => return Step::Done(r),
                Step::Done(Exchange::Fault(_, f)) if f.code == Some(SESSION_INVALID) => {
                    self.session.forget(&session).await;
                    let mut r = renewals.lock().unwrap_or_else(|p| p.into_inner());
                    if !r.again() {
                        // Fresh sessions refused with nothing served: give up for now
                        // (retryable).
                        return Step::Fail(r.exhausted(call.op));
                    }
                    tracing::debug!(
                        esp = "bronto",
                        op = call.op,
                        renewals = r.count(),
                        "session invalid; logging in again"
                    );
                }
                Step::Done(Exchange::Fault(status, f)) if is_retryable_fault(f.code) => {
                    return Step::Retry(Retryable {
                        throttled: f.code == Some(RATE_OR_UNKNOWN),
                        ..Retryable::transient(format!(
                            "{}: Fault {} (HTTP {status})",
                            call.op,
                            f.code.unwrap_or_default()
                        ))
                    });
                }
                Step::Done(Exchange::Fault(status, f)) => {
                    return Step::Fail(fault_error(call.op, status, &f));
                }
                Step::Retry(r) => return Step::Retry(r),
                Step::Fail(e) => return Step::Fail(e),
            }
        }
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
}
