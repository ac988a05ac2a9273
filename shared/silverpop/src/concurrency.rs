//! How many requests this client lets be in flight, learned from Silverpop's refusals.
//!
//! Silverpop says "too many concurrent requests" (the simulator's Fault 10) but never how many
//! it takes: other tools of the org use the same ten, and an org may allow fewer. So the
//! configured `max_concurrent` is a ceiling, and the client keeps its own limit below it with
//! additive increase, multiplicative decrease ([`Aimd`]): a refusal halves the limit (at least
//! one request stays allowed); a run of answers while the limit was reached raises it by one.
//! One refusal per limit counts: the requests already in flight under the old limit that are
//! refused too change nothing more. The concurrency the client settled on is the limit that last
//! went through a whole run of answers (or the one a refusal left), and it is logged when it
//! changes and after each batch.
//!
//! Every wait for a permit has a deadline, which ends in a retryable error naming the limit.

use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use espbridge_esp_kit::Aimd;
use espbridge_esp_kit::limits::Change;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

const ESP: EspKind = EspKind::Silverpop;

/// Answers in a row, each sent while the limit was reached, that raise the limit by one.
pub(crate) const RAISE_EVERY: u32 = 10;

#[derive(Debug)]
struct State {
    in_flight: usize,
    /// Bumped by every decrease: a refusal of a request sent before it is already answered.
    epoch: u64,
    /// The limit that last went through a run of answers, or that a refusal left.
    settled: usize,
}

/// The client's in-flight limit and the requests holding it.
#[derive(Debug)]
pub(crate) struct Concurrency {
    aimd: Aimd,
    max: usize,
    state: Mutex<State>,
    freed: Notify,
    /// Longest wait for a permit.
    wait: Duration,
}

/// One request in flight under the limit; dropped when the answer is in.
pub(crate) struct Permit<'a> {
    owner: &'a Concurrency,
    epoch: u64,
    /// The limit was reached when it was taken: its answer says the limit holds.
    binding: bool,
}

impl Concurrency {
    pub(crate) fn new(max: usize, wait: Duration) -> Self {
        let max = max.max(1);
        Self {
            aimd: Aimd::new(max as f64, 1.0, RAISE_EVERY).with_step(1.0),
            max,
            state: Mutex::new(State {
                in_flight: 0,
                epoch: 0,
                settled: max,
            }),
            freed: Notify::new(),
            wait,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A few counters, consistent after every update: a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Requests allowed in flight now.
    pub(crate) fn limit(&self) -> usize {
        (self.aimd.current().floor() as usize).clamp(1, self.max)
    }

    /// The concurrency the client settled on (see the module docs).
    pub(crate) fn settled(&self) -> usize {
        self.state().settled.min(self.limit())
    }

    /// Concurrency refusals reported so far.
    pub(crate) fn refusals(&self) -> u64 {
        self.aimd.refusals()
    }

    /// A permit for one request, waiting for one at most the configured wait.
    pub(crate) async fn acquire(&self) -> Result<Permit<'_>, EspError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a permit freed in between is not missed.
            freed.as_mut().enable();
            {
                let mut s = self.state();
                let limit = self.limit();
                if s.in_flight < limit {
                    s.in_flight += 1;
                    return Ok(Permit {
                        owner: self,
                        epoch: s.epoch,
                        binding: s.in_flight >= limit,
                    });
                }
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(EspError::Transient {
                    esp: ESP,
                    detail: format!(
                        "waited {} s for one of this client's {} request permits",
                        self.wait.as_secs(),
                        self.limit()
                    ),
                });
            }
        }
    }
}

impl Permit<'_> {
    /// Silverpop refused the request for concurrency: the limit is halved, once per limit.
    pub(crate) fn refused(&self) {
        let c = self.owner;
        let mut s = c.state();
        if s.epoch != self.epoch {
            return;
        }
        s.epoch += 1;
        if let Change::Lowered(_) = c.aimd.refused() {
            let limit = c.limit();
            s.settled = limit;
            tracing::info!(
                esp = "silverpop",
                concurrency = limit,
                max_concurrent = c.max,
                "Silverpop refused a concurrent request; concurrency lowered"
            );
        }
    }

    /// The request was answered (not refused for concurrency).
    pub(crate) fn answered(&self) {
        if !self.binding {
            return;
        }
        let c = self.owner;
        let mut s = c.state();
        if s.epoch != self.epoch {
            return;
        }
        if let Change::Raised(_) = c.aimd.succeeded() {
            let limit = c.limit();
            // The limit before this raise went through a whole run.
            s.settled = limit - 1;
            drop(s);
            c.freed.notify_waiters();
            tracing::debug!(
                esp = "silverpop",
                concurrency = limit,
                "concurrency raised after a run of answers"
            );
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.owner.state().in_flight -= 1;
        self.owner.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_halve_once_per_limit_and_binding_answers_raise_by_one() {
        let c = Concurrency::new(10, Duration::from_secs(1));
        let permits: Vec<_> = futures::future::join_all((0..10).map(|_| c.acquire()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        // Every request in flight refused: one halving, not ten.
        for p in &permits {
            p.refused();
        }
        assert_eq!((c.limit(), c.settled(), c.refusals()), (5, 5, 1));
        drop(permits);
        // Answers while the limit is reached raise it by one per run.
        for _ in 0..RAISE_EVERY {
            let held: Vec<_> = futures::future::join_all((0..5).map(|_| c.acquire()))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            held.last().unwrap().answered();
        }
        assert_eq!((c.limit(), c.settled()), (6, 5));
        // Answers below the limit prove nothing.
        for _ in 0..100 {
            c.acquire().await.unwrap().answered();
        }
        assert_eq!(c.limit(), 6);
    }

    #[tokio::test]
    async fn a_permit_wait_ends_in_a_retryable_error_naming_the_limit() {
        let c = Concurrency::new(1, Duration::from_millis(30));
        let held = c.acquire().await.unwrap();
        let e = c.acquire().await.err().unwrap();
        assert!(
            e.is_retryable() && e.to_string().contains("1 request permits"),
            "{e}"
        );
        drop(held);
        assert!(c.acquire().await.is_ok());
        let p = c.acquire().await.unwrap();
        p.refused();
        assert_eq!(c.limit(), 1, "never below one");
    }
}
