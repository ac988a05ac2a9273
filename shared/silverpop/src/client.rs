//! The Silverpop side of a call: raw `text/xml` POSTs to `/XMLAPI;jsessionid=…`, one legacy
//! session per client (logged in lazily, again on errorid 145, single-flight), and the reading
//! of an answer. Silverpop's org-wide limits are held for the whole deployment: every request
//! holds one of the org's `max_concurrent` request slots (Silverpop rejects the 11th concurrent
//! one), every live session one of its `max_sessions` session slots (20 per org). A run of calls
//! (an upload batch; a single call is a run of one) holds request slots for all its calls
//! ([`Client::hold_slots`]), so the slots are leased per run, not per call, and renewed while the
//! run goes on. Retries and back-off are the shared HTTP layer's.
//!
//! No wait is open-ended, and no wait can close a circle:
//! - a run takes its session slot first (waiting for one), then its request slots (waiting for
//!   the first), and logs in only through its own request slots: no login waits for a request
//!   slot, and a login inside a run never waits for a session slot (it takes a free one or fails
//!   retryably), so whoever holds the session (the single-flight login) always finishes;
//! - every wait — for the session another call is logging in, for a slot of the org, for one of
//!   the run's slots or of this client's in-flight permits ([`Concurrency`]) — has a deadline
//!   that ends in a retryable error naming what was waited for;
//! - a session refused (Fault 145) is renewed and the call repeated for as long as the org's
//!   sessions serve calls ([`espbridge_esp_kit::session::Renewals`]): an org whose sessions end
//!   after a few calls costs logins, one per used-up session, not failed calls.
//! - a request refused for concurrency (Fault 10) lowers this client's in-flight limit and is
//!   sent again once a permit under the lower limit is free; it spends no attempt.

use crate::concurrency::Concurrency;
use crate::config::{SilverpopConfig, SilverpopCredentials};
use crate::wire::{self, Answer, Fault, LoginResult};
use crate::xml::{Element, Node, envelope};
use espbridge_core::EspKind;
use espbridge_core::ports::AccountLimits;
use espbridge_core::ports::EspError;
use espbridge_core::ports::limits::epoch_millis_now;
use espbridge_esp_kit::session::InFlight;
use espbridge_esp_kit::{
    AdapterError, EspHttp, ExposeSecret, Idempotency, Retryable, SessionSlot, SlotGuard, SlotPool,
    Step, http::is_transient_status,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, Semaphore};
use url::Url;

const ESP: EspKind = EspKind::Silverpop;
/// Longest wait for another call's Login.
const LOGIN_WAIT: Duration = Duration::from_secs(120);
/// Longest wait for a free request or session slot of the org.
const SLOT_WAIT: Duration = Duration::from_secs(120);
/// Longest wait for one of a run's request slots or of this client's in-flight permits.
const PERMIT_WAIT: Duration = Duration::from_secs(180);
/// How long one request waits out concurrency refusals before they go to the HTTP layer's
/// throttling waits.
const REFUSAL_PATIENCE: Duration = Duration::from_secs(120);
/// A session slot's lease, renewed while the session is used.
const SESSION_LEASE: Duration = Duration::from_secs(30 * 60);

/// Maps a Fault to the port's error.
pub(crate) fn fault_error(op: &str, f: &Fault) -> EspError {
    let code = f
        .errorid
        .map_or_else(|| "none".to_owned(), |id| id.to_string());
    if f.is_session_lost() {
        return EspError::Transient {
            esp: ESP,
            detail: format!("{op}: session lost"),
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

/// Login refused because the org's sessions are all in use (the simulator's id; the real one is
/// undocumented).
const SESSIONS_EXHAUSTED: u32 = 146;

/// Too many concurrent requests for the org (the simulator's id; the real one is undocumented).
const TOO_MANY_REQUESTS: u32 = 10;

/// errorid 50 ("Server Error") and 10 (too many concurrent requests) are worth another attempt.
pub(crate) fn is_retryable_fault(f: &Fault) -> bool {
    matches!(f.errorid, Some(50) | Some(TOO_MANY_REQUESTS))
}

fn protocol(detail: String) -> EspError {
    EspError::Protocol { esp: ESP, detail }
}

fn transient(detail: String) -> EspError {
    EspError::Transient { esp: ESP, detail }
}

type Lease = Option<(SlotGuard, tokio::time::Instant)>;

pub(crate) struct Client {
    http: EspHttp,
    credentials: SilverpopCredentials,
    /// The org's concurrent-request slots.
    requests: SlotPool,
    /// How long a request slot stays held without renewal.
    request_lease: Duration,
    /// The org's session slots; `session_lease` is this client's, while it has a session.
    sessions: SlotPool,
    session_lease: Mutex<Lease>,
    session: SessionSlot<String>,
    /// This client's in-flight limit, learned from the org's refusals.
    concurrency: Concurrency,
}

/// Request slots held for a run of calls: the calls of the run share them. The run counts as
/// using the session until it is dropped, so the session is not logged out under it.
pub(crate) struct Held<'a> {
    _busy: Option<InFlight<'a>>,
    slots: Mutex<Vec<SlotGuard>>,
    width: usize,
    local: Semaphore,
    /// When the slots' leases were last extended.
    renewed: std::sync::Mutex<tokio::time::Instant>,
    renew_every: Duration,
}

impl Held<'_> {
    /// How many calls of the run may be in flight at once.
    pub(crate) fn width(&self) -> usize {
        self.width.max(1)
    }

    /// Frees the run's slots now (dropped, they are freed in the background).
    pub(crate) async fn release(self) {
        for slot in self.slots.into_inner() {
            slot.release().await;
        }
    }

    /// Extends the slots' leases once a third of a lease has passed, so a long run keeps them
    /// (one call of the run does it; the others go on). A slot lost meanwhile (its lease ran out
    /// and another instance took it) ends the run: going on could exceed the org's limit.
    async fn keep_alive(&self) -> Result<(), EspError> {
        let due = |at: &tokio::time::Instant| at.elapsed() >= self.renew_every;
        if !due(&self.renewed.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        let Ok(mut slots) = self.slots.try_lock() else {
            return Ok(());
        };
        if !due(&self.renewed.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        for slot in slots.iter_mut() {
            if !slot.renew().await? {
                return Err(transient(
                    "a request slot's lease ran out during the batch".into(),
                ));
            }
        }
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
        Ok(())
    }
}

impl Client {
    pub(crate) fn new(
        config: &SilverpopConfig,
        credentials: SilverpopCredentials,
        limits: Arc<dyn AccountLimits>,
    ) -> Result<Self, AdapterError> {
        let settings = config.http_settings()?;
        // A request slot outlives its request only when the holder dies mid-call.
        let request_lease = settings.timeout.duration() + Duration::from_secs(5);
        Ok(Self {
            http: EspHttp::new(ESP, &settings)?,
            credentials,
            request_lease,
            requests: SlotPool::new(
                ESP,
                Arc::clone(&limits),
                format!("silverpop/{}/requests", config.account),
                u32::try_from(config.max_concurrent).unwrap_or(u32::MAX),
                request_lease,
            ),
            sessions: SlotPool::new(
                ESP,
                limits,
                format!("silverpop/{}/sessions", config.account),
                config.max_sessions,
                SESSION_LEASE,
            ),
            session_lease: Mutex::new(None),
            session: SessionSlot::new(ESP, LOGIN_WAIT),
            concurrency: Concurrency::new(config.max_concurrent, PERMIT_WAIT),
        })
    }

    /// The concurrency this client settled on (its in-flight limit, learned from refusals).
    pub(crate) fn settled_concurrency(&self) -> usize {
        self.concurrency.settled()
    }

    /// Concurrency refusals this client met so far.
    pub(crate) fn concurrency_refusals(&self) -> u64 {
        self.concurrency.refusals()
    }

    /// Logins this client made so far.
    pub(crate) fn logins(&self) -> u64 {
        self.session.logins()
    }

    fn held<'a>(&'a self, busy: Option<InFlight<'a>>, slots: Vec<SlotGuard>) -> Held<'a> {
        let n = slots.len();
        Held {
            _busy: busy,
            slots: Mutex::new(slots),
            width: n,
            local: Semaphore::new(n.max(1)),
            renewed: std::sync::Mutex::new(tokio::time::Instant::now()),
            renew_every: self.request_lease / 3,
        }
    }

    /// Up to `want` of the org's request slots for a run of calls (no more than this client's
    /// in-flight limit allows, plus one to grow into): at least one (waiting for it if the org
    /// is busy), then as many more as are free now. The session slot comes first (waiting for
    /// one when this client has none), so no request slot is held while waiting for a session
    /// slot; the run's logins go through the run's own request slots.
    pub(crate) async fn hold_slots(&self, want: usize) -> Result<Held<'_>, EspError> {
        let busy = self.session.enter();
        self.ensure_session_lease().await?;
        let want = want.min(self.concurrency.limit() + 1).max(1);
        let first = self
            .requests
            .acquire(&self.requests.fresh_owner(), SLOT_WAIT)
            .await?;
        let mut slots = vec![first];
        let until =
            epoch_millis_now() + i64::try_from(self.request_lease.as_millis()).unwrap_or(i64::MAX);
        while slots.len() < want {
            match self
                .requests
                .try_acquire(&self.requests.fresh_owner(), until)
                .await?
            {
                Some(s) => slots.push(s),
                None => break,
            }
        }
        Ok(self.held(Some(busy), slots))
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

    /// One POST under one of the run's request slots and one of this client's in-flight
    /// permits, read into a step: an answer (Success or Fault), or a retryable transport / HTTP
    /// failure. A refusal for concurrency lowers the in-flight limit and the request goes again
    /// under the lower one (for up to [`REFUSAL_PATIENCE`]; then it is the caller's throttling).
    async fn exchange(&self, url: &Url, body: &[u8], held: &Held<'_>) -> Step<Answer> {
        let started = tokio::time::Instant::now();
        let mut refusals = 0;
        loop {
            let Ok(Ok(_slot)) = tokio::time::timeout(PERMIT_WAIT, held.local.acquire()).await
            else {
                return Step::Fail(transient(format!(
                    "waited {} s for one of the batch's {} request slots",
                    PERMIT_WAIT.as_secs(),
                    held.width()
                )));
            };
            let permit = match self.concurrency.acquire().await {
                Ok(p) => p,
                Err(e) => return Step::Fail(e),
            };
            let step = self.post(url.clone(), body).await;
            match &step {
                Step::Done(Answer::Failed(f)) if f.errorid == Some(TOO_MANY_REQUESTS) => {
                    permit.refused();
                    refusals += 1;
                    if started.elapsed() >= REFUSAL_PATIENCE {
                        return step;
                    }
                }
                Step::Done(_) => {
                    permit.answered();
                    return step;
                }
                _ => return step,
            }
            drop((permit, _slot));
            // The requests in flight under the old limit drain meanwhile.
            tokio::time::sleep(self.http.backoff().transient(refusals.min(4))).await;
        }
    }

    /// The POST itself, read into a step.
    async fn post(&self, url: Url, body: &[u8]) -> Step<Answer> {
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
        held: &Held<'_>,
    ) -> Result<Answer, EspError> {
        let body = envelope(op.clone()).map_err(|e| protocol(e.to_string()))?;
        let url = self.url(session)?;
        self.http
            .retry(op_name, idempotency, |_| async {
                match self.exchange(&url, &body, held).await {
                    Step::Done(Answer::Failed(f)) if retry_faults && is_retryable_fault(&f) => {
                        Step::Retry(Retryable {
                            throttled: f.errorid == Some(TOO_MANY_REQUESTS),
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

    /// The current session, logging in when there is none (one login at a time). The login
    /// goes through the run's own request slots and never waits for a session slot.
    async fn session(&self, held: &Held<'_>) -> Result<String, EspError> {
        self.session
            .get(jiff::Timestamp::now(), || async {
                // A session counts against the org's cap from its Login on.
                if !self.try_session_lease().await? {
                    return Err(transient(format!(
                        "Login not sent: all {} session slots of the org are in use",
                        self.sessions.max()
                    )));
                }
                let op = wire::login(
                    self.credentials.username.expose_secret(),
                    self.credentials.password.expose_secret(),
                );
                // A refused password stays refused: Faults are not retried here.
                let result = match self
                    .send("Login", None, &op, false, Idempotency::Safe, held)
                    .await?
                {
                    Answer::Success(r) => r,
                    // Sessions of other tools (or of a crashed instance, until they lapse)
                    // fill the org's cap: worth another try later, not an auth failure.
                    Answer::Failed(f) if f.errorid == Some(SESSIONS_EXHAUSTED) => {
                        self.drop_session_lease().await;
                        return Err(transient(
                            "Login refused: the org's sessions are all in use".into(),
                        ));
                    }
                    // Too many concurrent requests (other tools of the org): not the password.
                    Answer::Failed(f) if f.errorid == Some(TOO_MANY_REQUESTS) => {
                        return Err(transient(
                            "Login refused: too many concurrent requests".into(),
                        ));
                    }
                    Answer::Failed(f) => {
                        self.drop_session_lease().await;
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

    /// This client's session-slot record, waiting for it at most [`SLOT_WAIT`] (it is only
    /// ever held briefly).
    async fn lease(&self) -> Result<MutexGuard<'_, Lease>, EspError> {
        tokio::time::timeout(SLOT_WAIT, self.session_lease.lock())
            .await
            .map_err(|_| {
                transient(format!(
                    "waited {} s for this client's session slot record",
                    SLOT_WAIT.as_secs()
                ))
            })
    }

    /// Holds one of the org's session slots for this client's session, renewing it once half
    /// of its lease has passed, without waiting: false when the org's slots are all held.
    async fn try_session_lease(&self) -> Result<bool, EspError> {
        let mut lease = self.lease().await?;
        if let Some((guard, since)) = lease.as_mut() {
            if since.elapsed() <= SESSION_LEASE / 2 {
                return Ok(true);
            }
            if guard.renew().await? {
                *since = tokio::time::Instant::now();
                return Ok(true);
            }
            // Lost (it ran out): take a slot again.
            *lease = None;
        }
        let until =
            epoch_millis_now() + i64::try_from(SESSION_LEASE.as_millis()).unwrap_or(i64::MAX);
        match self
            .sessions
            .try_acquire(&self.sessions.fresh_owner(), until)
            .await?
        {
            Some(guard) => {
                *lease = Some((guard, tokio::time::Instant::now()));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Holds one of the org's session slots for this client, waiting up to [`SLOT_WAIT`] for
    /// one to free (the record is not held while waiting).
    async fn ensure_session_lease(&self) -> Result<(), EspError> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            if self.try_session_lease().await? {
                return Ok(());
            }
            if started.elapsed() >= SLOT_WAIT {
                return Err(transient(format!(
                    "all {} session slots of the org stayed busy for {} s",
                    self.sessions.max(),
                    SLOT_WAIT.as_secs()
                )));
            }
            // Jittered, so instances waiting for one slot do not ask in step.
            let jitter = self.http.backoff().transient(1).min(pause);
            tokio::time::sleep(pause + jitter).await;
            pause = (pause * 3 / 2).min(Duration::from_millis(500));
        }
    }

    /// Frees this client's session slot (after a logout or a refused login).
    async fn drop_session_lease(&self) {
        let taken = match self.lease().await {
            Ok(mut lease) => lease.take(),
            Err(e) => {
                tracing::debug!(esp = "silverpop", error = %e, "session slot left to its lease");
                None
            }
        };
        if let Some((guard, _)) = taken {
            guard.release().await;
        }
    }

    /// Calls `op` (a run of one call); a refused session is renewed and the call repeated.
    /// Returns `RESULT`.
    pub(crate) async fn call(&self, op_name: &str, op: Node) -> Result<Element, EspError> {
        self.call_with(op_name, op, Idempotency::Safe).await
    }

    /// [`Client::call`] under the request slots of a run ([`Client::hold_slots`]), with the
    /// Fault of a refused call handed back as it came (`Ok(Err(fault))`) for the caller to
    /// classify; session losses, retryable Faults and transport failures are handled as by
    /// [`Client::call`].
    pub(crate) async fn call_held(
        &self,
        held: &Held<'_>,
        op_name: &str,
        op: Node,
    ) -> Result<Result<Element, Fault>, EspError> {
        self.call_answer(op_name, op, Idempotency::Safe, held).await
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
        let run = self.hold_slots(1).await?;
        let answer = self.call_answer(op_name, op, idempotency, &run).await;
        run.release().await;
        answer?.map_err(|f| fault_error(op_name, &f))
    }

    async fn call_answer(
        &self,
        op_name: &str,
        op: Node,
        idempotency: Idempotency,
        held: &Held<'_>,
    ) -> Result<Result<Element, Fault>, EspError> {
        let retry_faults = idempotency == Idempotency::Safe;
        let mut renewals = self.session.renewals();
        loop {
            held.keep_alive().await?;
            let session = self.session(held).await?;
            let answer = self
                .send(
                    op_name,
                    Some(&session),
                    &op,
                    retry_faults,
                    idempotency,
                    held,
                )
                .await?;
            match answer {
                // Refused before it was acted on: another session, the same request.
                Answer::Failed(f) if f.is_session_lost() => {
                    self.session.forget(&session).await;
                    if !renewals.again() {
                        return Err(renewals.exhausted(op_name));
                    }
                    tracing::debug!(
                        esp = "silverpop",
                        op = op_name,
                        renewals = renewals.count(),
                        "session lost; logging in again"
                    );
                }
                Answer::Success(r) => {
                    self.session.served();
                    return Ok(Ok(r));
                }
                Answer::Failed(f) => {
                    self.session.served();
                    return Ok(Err(f));
                }
            }
        }
    }

    /// Logs the session out when no call is using it (sessions count against the org's 20),
    /// and frees this client's session slot when idle (a session Silverpop ended, or a refused
    /// login, leaves the slot held otherwise).
    pub(crate) async fn logout_if_idle(&self) {
        if let Some(session) = self.session.take_if_idle().await {
            match self
                .requests
                .acquire(&self.requests.fresh_owner(), SLOT_WAIT)
                .await
            {
                Ok(slot) => {
                    let run = self.held(None, vec![slot]);
                    if let Err(e) = self
                        .send(
                            "Logout",
                            Some(&session),
                            &wire::logout(),
                            false,
                            Idempotency::Safe,
                            &run,
                        )
                        .await
                    {
                        tracing::debug!(esp = "silverpop", error = %e, "logout failed (session will lapse)");
                    }
                    run.release().await;
                }
                Err(e) => {
                    tracing::debug!(esp = "silverpop", error = %e, "logout not sent (session will lapse)")
                }
            }
        }
        if self.session.is_idle() {
            self.drop_session_lease().await;
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
