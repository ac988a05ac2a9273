//! The one HTTP layer every ESP adapter calls through.
//!
//! What it owns, so no adapter repeats it:
//! - the client: a per-request timeout, **no redirects** (a redirect would carry credential
//!   headers to another host), response bodies read up to a cap;
//! - the retry loop: bounded attempts, exponential back-off with full jitter for transient
//!   failures, and for throttling a wait of at least one second that grows per attempt, or the
//!   server's own `Retry-After` / reset time when it is longer. Throttling answers do not spend
//!   the account's attempts: being told to slow down is no reason to give up, so a throttled
//!   call keeps waiting until a patience runs out (then [`EspError::RateLimited`], which the
//!   upload answers by continuing later, not by failing);
//! - transport errors described by kind (`timeout`, `connect`, …), never with the URL, which may
//!   hold a session id, nor with any header or body.
//!
//! What stays in each adapter: envelopes, authentication, sessions, pacing, and the reading of
//! an answer into a [`Step`] (done, failed, or worth another attempt).

use crate::settings::{BaseUrl, HttpSettings};
use bytes::{Bytes, BytesMut};
use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use reqwest::header::HeaderMap;
use std::future::Future;
use std::time::{Duration, SystemTime};
use url::Url;

/// One answer, read whole (up to the cap).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Exchange {
    /// The server's `Retry-After` (seconds, or an HTTP date), when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        let v = self
            .headers
            .get(reqwest::header::RETRY_AFTER)?
            .to_str()
            .ok()?;
        parse_retry_after(v, SystemTime::now())
    }
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`, relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp().as_second();
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs(at.saturating_sub(now).max(0) as u64))
}

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Transport failure, by kind only. `reached` is false when the request cannot have been
    /// acted on (the connection was never made), so even a non-idempotent call may be repeated.
    #[error("transport: {what}")]
    Transport { what: &'static str, reached: bool },
    /// The answer was longer than the account's `max_response_bytes`.
    #[error("response longer than {limit} bytes")]
    TooLarge { limit: usize },
}

impl SendError {
    pub fn reached(&self) -> bool {
        match self {
            SendError::Transport { reached, .. } => *reached,
            SendError::TooLarge { .. } => true,
        }
    }
}

/// A reqwest error's kind, without the URL or anything else it carries.
pub fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request"
    }
}

/// What one attempt of a call came to, as the adapter reads its ESP's answer.
#[derive(Debug)]
pub enum Step<T> {
    Done(T),
    Fail(EspError),
    Retry(Retryable),
}

/// A failure worth another attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Retryable {
    /// For logs and the final error: status, code, kind — never request data.
    pub detail: String,
    /// The server said "slow down" (HTTP 429, a rate-limit fault).
    pub throttled: bool,
    /// How long the server asked to wait (`Retry-After`, a reset time), if it said.
    pub wait: Option<Duration>,
    /// Whether the request may have been acted on.
    pub reached: bool,
}

impl Retryable {
    pub fn transient(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            throttled: false,
            wait: None,
            reached: true,
        }
    }
    pub fn throttled(detail: impl Into<String>, wait: Option<Duration>) -> Self {
        Self {
            detail: detail.into(),
            throttled: true,
            wait,
            reached: true,
        }
    }
    pub fn from_send(e: &SendError) -> Self {
        Self {
            detail: e.to_string(),
            throttled: false,
            wait: None,
            reached: e.reached(),
        }
    }
}

impl<T> From<SendError> for Step<T> {
    fn from(e: SendError) -> Self {
        match e {
            SendError::TooLarge { .. } => Step::Retry(Retryable::from_send(&e)),
            SendError::Transport { .. } => Step::Retry(Retryable::from_send(&e)),
        }
    }
}

/// Whether a call may be repeated after its request may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, and writes that are sets or keyed (adding to a list, an upsert).
    Safe,
    /// Creates whose answer may be lost: repeated only when the request cannot have arrived;
    /// otherwise the retryable error goes back to the caller, which looks up what the first
    /// attempt made before trying again.
    Unsafe,
}

/// Waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First transient step; doubles per attempt up to `cap`.
    pub base: Duration,
    pub cap: Duration,
    /// Shortest wait after a throttling answer; doubles per attempt up to `throttle_cap`.
    pub throttle_min: Duration,
    pub throttle_cap: Duration,
    /// Longest time one call spends waiting out throttling answers before it gives up with
    /// [`EspError::RateLimited`] (an upload then continues in a new invocation).
    pub throttle_patience: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(10),
            throttle_min: Duration::from_secs(1),
            throttle_cap: Duration::from_secs(60),
            throttle_patience: crate::settings::DEFAULT_THROTTLE_PATIENCE,
        }
    }
}

impl Backoff {
    fn step(first: Duration, cap: Duration, attempt: u32) -> Duration {
        first
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
            .min(cap)
    }

    /// Full jitter: anywhere in `[0, step]`, so many callers retrying at once spread out.
    pub fn transient(&self, attempt: u32) -> Duration {
        let step = Self::step(self.base, self.cap, attempt);
        Duration::from_millis(rand::random_range(0..=step.as_millis() as u64))
    }

    /// After a throttling answer: at least the server's wait, and never less than a step that
    /// starts at `throttle_min` and grows, jittered upward by up to half a step. A reset time
    /// already past (or none) therefore never means "try again at once".
    pub fn throttled(&self, attempt: u32, server: Option<Duration>) -> Duration {
        let step = Self::step(self.throttle_min, self.throttle_cap, attempt);
        let jitter = Duration::from_millis(rand::random_range(0..=step.as_millis() as u64 / 2));
        server.unwrap_or(Duration::ZERO).max(step + jitter)
    }
}

/// The HTTP client of one ESP account.
#[derive(Debug, Clone)]
pub struct EspHttp {
    esp: EspKind,
    client: reqwest::Client,
    base: BaseUrl,
    attempts: u32,
    max_response: usize,
    backoff: Backoff,
}

impl EspHttp {
    pub fn new(esp: EspKind, settings: &HttpSettings) -> Result<Self, crate::AdapterError> {
        let timeout = settings.timeout.duration();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| crate::AdapterError::HttpClient { esp, source })?;
        Ok(Self {
            esp,
            client,
            base: settings.base_url.clone(),
            attempts: settings.attempts.get(),
            max_response: settings.max_response.get(),
            backoff: Backoff {
                throttle_patience: settings.throttle_patience,
                ..Backoff::default()
            },
        })
    }

    /// Replaces the waits (tests that inject many failures keep them short).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn esp(&self) -> EspKind {
        self.esp
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// `path` (relative, no leading slash) below the account's base URL.
    pub fn url(&self, path: &str) -> Result<Url, EspError> {
        self.base.join(path).map_err(|e| EspError::Invalid {
            esp: self.esp,
            detail: format!("cannot build the request URL: {e}"),
        })
    }

    /// A request builder on the shared client (no redirects, the account's timeout).
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends once and reads the whole answer, up to the cap.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<Exchange, SendError> {
        let mut resp = req.send().await.map_err(|e| SendError::Transport {
            what: describe(&e),
            reached: !e.is_connect(),
        })?;
        let status = resp.status().as_u16();
        if status / 100 == 3 {
            // Never followed; read as an answer the adapter does not expect.
            tracing::warn!(esp = %self.esp, status, "ESP answered with a redirect; not followed");
        }
        let headers = std::mem::take(resp.headers_mut());
        let limit = self.max_response;
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(SendError::TooLarge { limit });
        }
        let mut body = BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(SendError::TooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(SendError::Transport {
                        what: describe(&e),
                        reached: true,
                    });
                }
            }
        }
        Ok(Exchange {
            status,
            headers,
            body: body.freeze(),
        })
    }

    /// Runs `attempt` until it is done, fails, or the account's attempts are spent. `what` names
    /// the call in logs (an operation name, never a URL).
    pub async fn retry<T, F, Fut>(
        &self,
        what: &str,
        idempotency: Idempotency,
        mut attempt: F,
    ) -> Result<T, EspError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Step<T>>,
    {
        // Attempts spent on failures, and throttling answers (which spend none) with the time
        // waited on them.
        let (mut n, mut throttles, mut waited) = (1, 0u32, Duration::ZERO);
        loop {
            let r = match attempt(n + throttles).await {
                Step::Done(v) => return Ok(v),
                Step::Fail(e) => return Err(e),
                Step::Retry(r) => r,
            };
            let may_repeat = idempotency == Idempotency::Safe || !r.reached;
            let wait = if r.throttled && may_repeat {
                throttles += 1;
                let wait = self.backoff.throttled(throttles, r.wait);
                if waited + wait > self.backoff.throttle_patience {
                    return Err(EspError::RateLimited {
                        esp: self.esp,
                        attempts: n + throttles - 1,
                        waited_secs: waited.as_secs(),
                    });
                }
                waited += wait;
                wait
            } else {
                if !may_repeat || n >= self.attempts {
                    return Err(self.give_up(what, n, &r, may_repeat));
                }
                n += 1;
                r.wait.unwrap_or_else(|| self.backoff.transient(n - 1))
            };
            tracing::warn!(esp = %self.esp, call = what, attempt = n + throttles - 1, wait_ms = wait.as_millis() as u64,
                throttled = r.throttled, detail = %r.detail, "ESP call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn give_up(&self, what: &str, attempts: u32, r: &Retryable, may_repeat: bool) -> EspError {
        if !may_repeat {
            EspError::Transient {
                esp: self.esp,
                detail: format!(
                    "{what}: {} (not repeated: the request may have arrived)",
                    r.detail
                ),
            }
        } else {
            EspError::Transient {
                esp: self.esp,
                detail: format!("{what}: {} (after {attempts} attempts)", r.detail),
            }
        }
    }
}

/// Statuses worth another attempt when the body says nothing more: 408, 429, and 5xx but 501.
pub fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || ((500..=599).contains(&status) && status != 501)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn client(attempts: u32) -> EspHttp {
        let settings = HttpSettings {
            base_url: BaseUrl::parse("http://127.0.0.1:9/api/").unwrap(),
            timeout: crate::settings::RequestTimeout::secs(5),
            attempts: crate::settings::Attempts::new(attempts),
            max_response: crate::settings::BodyLimit::DEFAULT,
            throttle_patience: Duration::from_secs(1),
        };
        EspHttp::new(EspKind::Emarsys, &settings)
            .unwrap()
            .with_backoff(Backoff {
                base: Duration::from_millis(1),
                cap: Duration::from_millis(2),
                throttle_min: Duration::from_millis(3),
                throttle_cap: Duration::from_millis(5),
                throttle_patience: Duration::from_millis(40),
            })
    }

    #[tokio::test]
    async fn retries_until_done_and_counts_attempts() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let out = client(4)
            .retry("x", Idempotency::Safe, move |n| {
                let c = Arc::clone(&c);
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    if n < 3 {
                        Step::Retry(Retryable::transient("HTTP 503"))
                    } else {
                        Step::Done(n)
                    }
                }
            })
            .await;
        assert_eq!(out, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn throttling_spends_no_attempts_and_ends_only_when_the_patience_is_spent() {
        // Two attempts allowed, yet five throttling answers in a row (at most 34.5 ms of
        // waits) are waited out.
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let out = client(2)
            .retry("x", Idempotency::Safe, move |n| {
                let c = Arc::clone(&c);
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    if n <= 5 {
                        Step::Retry(Retryable::throttled("HTTP 429", Some(Duration::ZERO)))
                    } else {
                        Step::Done(n)
                    }
                }
            })
            .await;
        assert_eq!(out, Ok(6));
        assert_eq!(calls.load(Ordering::SeqCst), 6);

        // Throttled for good: the patience (40 ms of waits of 3 to 7.5 ms) ends it, typed and
        // retryable, after more answers than the two attempts.
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let err = client(2)
            .retry("x", Idempotency::Safe, move |_| {
                let c = Arc::clone(&c);
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Step::<()>::Retry(Retryable::throttled("HTTP 429", None))
                }
            })
            .await
            .unwrap_err();
        let n = calls.load(Ordering::SeqCst);
        assert!(n > 2, "throttling spent the attempts: {n} calls");
        match err {
            EspError::RateLimited {
                esp,
                attempts,
                waited_secs,
            } => {
                assert_eq!(esp, EspKind::Emarsys);
                assert_eq!(attempts, n, "every throttled answer is counted");
                assert_eq!(waited_secs, 0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts_with_a_typed_error() {
        let transient = client(2)
            .retry("launch", Idempotency::Safe, |_| async {
                Step::<()>::Retry(Retryable::transient("HTTP 502"))
            })
            .await
            .unwrap_err();
        assert!(transient.is_retryable());
        assert!(
            transient
                .to_string()
                .contains("launch: HTTP 502 (after 2 attempts)")
        );
    }

    #[tokio::test]
    async fn an_unsafe_call_is_repeated_only_when_it_cannot_have_arrived() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let e = client(5)
            .retry("create", Idempotency::Unsafe, move |_| {
                let c = Arc::clone(&c);
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Step::<()>::Retry(Retryable::transient("timeout"))
                }
            })
            .await
            .unwrap_err();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a timeout may have arrived"
        );
        assert!(
            e.is_retryable() && e.to_string().contains("not repeated"),
            "{e}"
        );
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let out = client(5)
            .retry("create", Idempotency::Unsafe, move |n| {
                let c = Arc::clone(&c);
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    if n == 1 {
                        Step::Retry(Retryable::from_send(&SendError::Transport {
                            what: "connect",
                            reached: false,
                        }))
                    } else {
                        Step::Done(())
                    }
                }
            })
            .await;
        assert_eq!(out, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn transient_backoff_is_full_jitter_under_a_growing_cap() {
        let b = Backoff::default();
        for attempt in 1..=12 {
            let step = Backoff::step(b.base, b.cap, attempt);
            for _ in 0..50 {
                assert!(b.transient(attempt) <= step, "{attempt}");
            }
        }
        assert_eq!(Backoff::step(b.base, b.cap, 30), b.cap);
    }

    #[test]
    fn throttled_waits_are_never_zero_and_honour_the_server() {
        let b = Backoff::default();
        for attempt in 1..=8 {
            let step = Backoff::step(b.throttle_min, b.throttle_cap, attempt);
            for _ in 0..50 {
                let w = b.throttled(attempt, Some(Duration::ZERO));
                assert!(w >= step && w >= Duration::from_secs(1), "{attempt}: {w:?}");
                assert!(w <= step + step / 2, "{attempt}: {w:?}");
            }
        }
        assert_eq!(
            b.throttled(1, Some(Duration::from_secs(45))),
            Duration::from_secs(45)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(0))
        );
        let earlier = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_400);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", earlier),
            Some(Duration::from_secs(80))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [200, 400, 401, 404, 409, 501] {
            assert!(!is_transient_status(s), "{s}");
        }
    }
}
