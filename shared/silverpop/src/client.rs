//! The Silverpop side of a call: raw `text/xml` POSTs to `/XMLAPI;jsessionid=…`, one legacy
//! session per account (logged in lazily, again on errorid 145, single-flight), a semaphore
//! shared by every request of the account (Silverpop rejects the 11th concurrent one), and the
//! reading of an answer. Retries and back-off are the shared HTTP layer's.

use crate::config::{SilverpopConfig, SilverpopCredentials};
use crate::wire::{self, Answer, Fault, LoginResult};
use crate::xml::{Element, Node, envelope};
use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use espbridge_esp_kit::{
    AdapterError, EspHttp, ExposeSecret, Idempotency, Retryable, SessionSlot, Step,
    http::is_transient_status,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

const ESP: EspKind = EspKind::Silverpop;
/// Longest wait for another call's Login.
const LOGIN_WAIT: Duration = Duration::from_secs(120);

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

pub(crate) struct Client {
    http: EspHttp,
    credentials: SilverpopCredentials,
    permits: Arc<Semaphore>,
    session: SessionSlot<String>,
}

impl Client {
    pub(crate) fn new(
        config: &SilverpopConfig,
        credentials: SilverpopCredentials,
    ) -> Result<Self, AdapterError> {
        Ok(Self {
            http: EspHttp::new(ESP, &config.http_settings()?)?,
            credentials,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            session: SessionSlot::new(ESP, LOGIN_WAIT),
        })
    }

    /// Attempts per call the account allows.
    pub(crate) fn attempts(&self) -> u32 {
        self.http.attempts()
    }

    /// The wait before another attempt of a look-up-then-create step.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.http.backoff().transient(attempt)
    }

    fn url(&self, session: Option<&str>) -> Result<Url, EspError> {
        match session {
            Some(s) => self.http.url(&format!("XMLAPI;jsessionid={s}")),
            None => self.http.url("XMLAPI"),
        }
    }

    /// One POST under a permit of the account's semaphore, read into a step: an answer
    /// (Success or Fault), or a retryable transport / HTTP failure.
    async fn exchange(&self, url: Url, body: &[u8]) -> Step<Answer> {
        let _permit = match self.permits.acquire().await {
            Ok(p) => p,
            Err(_) => return Step::Fail(protocol("request semaphore closed".into())),
        };
        let req = self
            .http
            .request(reqwest::Method::POST, url)
            .header("Content-Type", "text/xml;charset=UTF-8")
            .body(body.to_vec());
        let ex = match self.http.send(req).await {
            Ok(ex) => ex,
            Err(e) => return e.into(),
        };
        // A Fault in any 2xx (or error) body is the answer; bare 5xx/429 are retried.
        match wire::read_answer(&ex.body) {
            Ok(a) => Step::Done(a),
            Err(_) if ex.status == 429 => Step::Retry(Retryable::throttled(
                "HTTP 429".to_owned(),
                ex.retry_after(),
            )),
            Err(_) if is_transient_status(ex.status) => Step::Retry(Retryable {
                wait: ex.retry_after(),
                ..Retryable::transient(format!("HTTP {}", ex.status))
            }),
            Err(e) if (200..300).contains(&ex.status) => Step::Fail(protocol(e.to_string())),
            Err(_) if ex.status == 401 || ex.status == 403 => Step::Fail(EspError::Auth {
                esp: ESP,
                detail: format!("HTTP {}", ex.status),
            }),
            Err(_) => Step::Fail(EspError::Api {
                esp: ESP,
                status: ex.status,
                code: "http".into(),
                text: "no XML envelope".into(),
                retryable: false,
            }),
        }
    }

    /// Sends `op` with retries of transient failures (and of retryable Faults when
    /// `retry_faults`); returns the answer, Fault or not.
    async fn send(
        &self,
        op_name: &str,
        session: Option<&str>,
        op: &Node,
        retry_faults: bool,
        idempotency: Idempotency,
    ) -> Result<Answer, EspError> {
        let body = envelope(op.clone()).map_err(|e| protocol(e.to_string()))?;
        let url = self.url(session)?;
        self.http
            .retry(op_name, idempotency, |_| async {
                match self.exchange(url.clone(), &body).await {
                    Step::Done(Answer::Failed(f)) if retry_faults && is_retryable_fault(&f) => {
                        Step::Retry(Retryable {
                            throttled: f.errorid == Some(10),
                            ..Retryable::transient(format!(
                                "Fault errorid {}",
                                f.errorid.unwrap_or_default()
                            ))
                        })
                    }
                    other => other,
                }
            })
            .await
    }

    /// The current session, logging in when there is none (one login at a time).
    async fn session(&self) -> Result<String, EspError> {
        self.session
            .get(jiff::Timestamp::now(), || async {
                let op = wire::login(
                    self.credentials.username.expose_secret(),
                    self.credentials.password.expose_secret(),
                );
                // A refused password stays refused: Faults are not retried here.
                let result = match self
                    .send("Login", None, &op, false, Idempotency::Safe)
                    .await?
                {
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
                Ok(login.session_id)
            })
            .await
    }

    /// Calls `op`; on errorid 145 logs in again and retries once. Returns `RESULT`.
    pub(crate) async fn call(&self, op_name: &str, op: Node) -> Result<Element, EspError> {
        self.call_with(op_name, op, Idempotency::Safe).await
    }

    /// Like [`Client::call`] but sends once (bar a refused session or a request that never
    /// left): for ScheduleMailing, where a resend after a lost answer would create a second
    /// mailing. Errors stay retryable so the caller can look up what the first attempt made
    /// before trying again.
    pub(crate) async fn call_once(&self, op_name: &str, op: Node) -> Result<Element, EspError> {
        self.call_with(op_name, op, Idempotency::Unsafe).await
    }

    async fn call_with(
        &self,
        op_name: &str,
        op: Node,
        idempotency: Idempotency,
    ) -> Result<Element, EspError> {
        let _guard = self.session.enter();
        let retry_faults = idempotency == Idempotency::Safe;
        let mut relogged = false;
        loop {
            let session = self.session().await?;
            match self
                .send(op_name, Some(&session), &op, retry_faults, idempotency)
                .await?
            {
                Answer::Success(r) => return Ok(r),
                Answer::Failed(f) if f.is_session_lost() && !relogged => {
                    tracing::info!(
                        esp = "silverpop",
                        op = op_name,
                        "session lost; logging in again"
                    );
                    self.session.forget(&session).await;
                    relogged = true;
                }
                Answer::Failed(f) => return Err(fault_error(op_name, &f)),
            }
        }
    }

    /// Logs the session out when no call is using it (sessions count against the org's 20).
    pub(crate) async fn logout_if_idle(&self) {
        let Some(session) = self.session.take_if_idle().await else {
            return;
        };
        if let Err(e) = self
            .send(
                "Logout",
                Some(&session),
                &wire::logout(),
                false,
                Idempotency::Safe,
            )
            .await
        {
            tracing::debug!(esp = "silverpop", error = %e, "logout failed (session will lapse)");
        }
    }
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
