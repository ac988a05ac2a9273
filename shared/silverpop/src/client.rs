//! The XML API transport: raw `text/xml` POSTs to `/XMLAPI;jsessionid=…`, one legacy session per
//! account (logged in lazily, again on errorid 145), a semaphore shared by every request of the
//! account (Silverpop rejects the 11th concurrent one), and retries of transient failures.

use crate::config::{SilverpopConfig, SilverpopCredentials};
use crate::wire::{self, Answer, Fault, LoginResult};
use crate::xml::{Element, Node, envelope};
use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};
use url::Url;

const ESP: EspKind = EspKind::Silverpop;

/// Maps a Fault to the port's error.
pub(crate) fn fault_error(op: &str, f: &Fault) -> EspError {
    let code = f
        .errorid
        .map_or_else(|| "none".to_owned(), |id| id.to_string());
    if f.is_session_lost() {
        return EspError::Transient {
            esp: ESP,
            detail: format!("{op}: session lost twice in a row"),
        };
    }
    EspError::Api {
        esp: ESP,
        status: 200,
        code,
        text: format!("{op}: {}", f.text),
        retryable: is_retryable_fault(f),
    }
}

/// errorid 50 ("Server Error") and 10 (too many concurrent requests, as the simulator answers;
/// the real id is undocumented) are worth another attempt.
pub(crate) fn is_retryable_fault(f: &Fault) -> bool {
    matches!(f.errorid, Some(50) | Some(10))
}

fn protocol(detail: String) -> EspError {
    EspError::Protocol { esp: ESP, detail }
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1u64 << attempt.min(6)))
}

/// One outcome of one HTTP exchange.
enum Exchange {
    Answer(Answer),
    /// Worth another attempt (transport error, 5xx, 429).
    Retry(EspError),
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    credentials: SilverpopCredentials,
    max_attempts: u32,
    permits: Arc<Semaphore>,
    session: Mutex<Option<String>>,
    in_flight: AtomicUsize,
}

/// Counts calls in flight so a session is logged out only when idle.
struct InFlight<'a>(&'a AtomicUsize);
impl<'a> InFlight<'a> {
    fn enter(c: &'a AtomicUsize) -> Self {
        c.fetch_add(1, Ordering::SeqCst);
        Self(c)
    }
}
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Client {
    pub(crate) fn new(
        config: &SilverpopConfig,
        credentials: SilverpopCredentials,
    ) -> Result<Self, crate::SilverpopError> {
        let mut base = Url::parse(&config.base_url).map_err(|e| crate::SilverpopError::Config {
            field: "base_url",
            detail: e.to_string(),
        })?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .build()?;
        Ok(Self {
            http,
            base,
            credentials,
            max_attempts: config.max_attempts,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            session: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn url(&self, session: Option<&str>) -> Result<Url, EspError> {
        let path = match session {
            Some(s) => format!("XMLAPI;jsessionid={s}"),
            None => "XMLAPI".to_owned(),
        };
        self.base
            .join(&path)
            .map_err(|e| protocol(format!("bad API URL: {e}")))
    }

    /// One POST under a permit of the account's semaphore.
    async fn exchange(&self, url: Url, body: Vec<u8>) -> Result<Exchange, EspError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| protocol("request semaphore closed".into()))?;
        let resp = match self
            .http
            .post(url)
            .header("Content-Type", "text/xml;charset=UTF-8")
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Ok(Exchange::Retry(EspError::Transient {
                    esp: ESP,
                    detail: format!("transport: {}", without_url(&e)),
                }));
            }
        };
        let status = resp.status().as_u16();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Ok(Exchange::Retry(EspError::Transient {
                    esp: ESP,
                    detail: format!("reading body: {}", without_url(&e)),
                }));
            }
        };
        // A Fault in any 2xx (or error) body is the answer; bare 5xx/429 are retried.
        match wire::read_answer(&bytes) {
            Ok(a) => Ok(Exchange::Answer(a)),
            Err(_) if status == 429 => Ok(Exchange::Retry(EspError::RateLimited {
                esp: ESP,
                attempts: self.max_attempts,
            })),
            Err(_) if status >= 500 => Ok(Exchange::Retry(EspError::Transient {
                esp: ESP,
                detail: format!("HTTP {status}"),
            })),
            Err(e) if (200..300).contains(&status) => Err(protocol(e.to_string())),
            Err(_) if status == 401 || status == 403 => Err(EspError::Auth {
                esp: ESP,
                detail: format!("HTTP {status}"),
            }),
            Err(_) => Err(EspError::Api {
                esp: ESP,
                status,
                code: "http".into(),
                text: "no XML envelope".into(),
                retryable: false,
            }),
        }
    }

    /// Sends with retries of transient failures; returns the answer.
    /// Faults are retried only when `retry_faults` (never for Login: a refused password stays
    /// refused). `resend` false sends once: for calls that are not idempotent.
    async fn send(
        &self,
        session: Option<&str>,
        op: &Node,
        retry_faults: bool,
    ) -> Result<Answer, EspError> {
        self.send_with(session, op, retry_faults, self.max_attempts)
            .await
    }

    async fn send_with(
        &self,
        session: Option<&str>,
        op: &Node,
        retry_faults: bool,
        max_attempts: u32,
    ) -> Result<Answer, EspError> {
        let body = envelope(op.clone()).map_err(|e| protocol(e.to_string()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.exchange(self.url(session)?, body.clone()).await? {
                Exchange::Answer(Answer::Failed(f))
                    if retry_faults && is_retryable_fault(&f) && attempt < max_attempts =>
                {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Exchange::Answer(a) => return Ok(a),
                Exchange::Retry(e) if attempt >= max_attempts => return Err(e),
                Exchange::Retry(_) => tokio::time::sleep(backoff(attempt)).await,
            }
        }
    }

    /// The current session, logging in when there is none.
    async fn session(&self) -> Result<String, EspError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let op = wire::login(&self.credentials.username, &self.credentials.password);
        let result = match self.send(None, &op, false).await? {
            Answer::Success(r) => r,
            Answer::Failed(f) => {
                return Err(EspError::Auth {
                    esp: ESP,
                    detail: format!(
                        "Login refused (errorid {})",
                        f.errorid.map_or_else(|| "none".into(), |i| i.to_string())
                    ),
                });
            }
        };
        let login = LoginResult::from_result(&result)
            .ok_or_else(|| protocol("Login answer has no SESSIONID".into()))?;
        if !login
            .session_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(protocol("SESSIONID has unexpected characters".into()));
        }
        tracing::debug!(esp = "silverpop", "logged in");
        *slot = Some(login.session_id.clone());
        Ok(login.session_id)
    }

    /// Forgets `stale` unless another call already replaced it.
    async fn forget(&self, stale: &str) {
        let mut slot = self.session.lock().await;
        if slot.as_deref() == Some(stale) {
            *slot = None;
        }
    }

    /// Calls `op`; on errorid 145 logs in again and retries once. Returns `RESULT`.
    pub(crate) async fn call(&self, op_name: &str, op: Node) -> Result<Element, EspError> {
        self.call_with(op_name, op, self.max_attempts).await
    }

    /// Like [`Client::call`] but sends once (bar a refused session): for ScheduleMailing, where
    /// a resend after a lost answer would create a second mailing. Errors stay retryable so the
    /// caller can look up what the first attempt made before trying again.
    pub(crate) async fn call_once(&self, op_name: &str, op: Node) -> Result<Element, EspError> {
        self.call_with(op_name, op, 1).await
    }

    async fn call_with(
        &self,
        op_name: &str,
        op: Node,
        max_attempts: u32,
    ) -> Result<Element, EspError> {
        let _guard = InFlight::enter(&self.in_flight);
        let mut relogged = false;
        loop {
            let session = self.session().await?;
            let retry_faults = max_attempts > 1;
            match self
                .send_with(Some(&session), &op, retry_faults, max_attempts)
                .await?
            {
                Answer::Success(r) => return Ok(r),
                Answer::Failed(f) if f.is_session_lost() && !relogged => {
                    tracing::info!(
                        esp = "silverpop",
                        op = op_name,
                        "session lost; logging in again"
                    );
                    self.forget(&session).await;
                    relogged = true;
                }
                Answer::Failed(f) => return Err(fault_error(op_name, &f)),
            }
        }
    }

    /// Logs the session out when no call is using it (sessions count against the org's 20).
    pub(crate) async fn logout_if_idle(&self) {
        if self.in_flight.load(Ordering::SeqCst) != 0 {
            return;
        }
        let Some(session) = self.session.lock().await.take() else {
            return;
        };
        if let Err(e) = self.send(Some(&session), &wire::logout(), false).await {
            tracing::debug!(esp = "silverpop", error = %e, "logout failed (session will lapse)");
        }
    }
}

/// A reqwest error's text without the URL (it carries the session id).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_map_to_typed_errors() {
        let f = Fault {
            errorid: Some(51),
            class: Some("SP.API".into()),
            text: "Invalid XML Request".into(),
        };
        match fault_error("GetLists", &f) {
            EspError::Api {
                code, retryable, ..
            } => {
                assert_eq!(code, "51");
                assert!(!retryable);
            }
            other => panic!("{other:?}"),
        }
        let f50 = Fault {
            errorid: Some(50),
            ..f.clone()
        };
        assert!(fault_error("Login", &f50).is_retryable());
        let f145 = Fault {
            errorid: Some(145),
            ..f
        };
        assert!(matches!(
            fault_error("GetLists", &f145),
            EspError::Transient { .. }
        ));
    }
}
