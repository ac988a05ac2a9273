//! The address pacer of `addToList`: at most `limit` addresses in any sliding window, counted
//! across every caller of one adapter instance.
//!
//! A call is admitted when the addresses of calls completed within the last window, plus those
//! of calls in flight, plus its own fit the limit. In-flight calls count in full (the server
//! counts them on receipt) and are recorded at their completion time, which is never earlier
//! than the server saw them, so the client's window always covers the server's. A call larger
//! than the whole limit goes alone. Time is tokio's, so paused-clock tests can drive it.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct State {
    in_flight: u64,
    /// (completion time, addresses), oldest first.
    done: VecDeque<(Instant, u64)>,
}

impl State {
    fn prune(&mut self, now: Instant, window: Duration) {
        while self
            .done
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= window)
        {
            self.done.pop_front();
        }
    }
    fn used(&self) -> u64 {
        self.in_flight + self.done.iter().map(|(_, n)| n).sum::<u64>()
    }
}

#[derive(Debug)]
pub(crate) struct Pacer {
    limit: u64,
    window: Duration,
    state: Mutex<State>,
    changed: Notify,
}

/// An admitted call; dropping it records the call as completed now.
pub(crate) struct Permit<'a> {
    pacer: &'a Pacer,
    n: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.pacer.lock();
        s.in_flight = s.in_flight.saturating_sub(self.n);
        s.done.push_back((Instant::now(), self.n));
        drop(s);
        self.pacer.changed.notify_waiters();
    }
}

impl Pacer {
    pub(crate) fn new(limit: u64, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent under a panic elsewhere: every update is one statement.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `n` addresses may be sent.
    pub(crate) async fn admit(&self, n: u64) -> Permit<'_> {
        loop {
            // Registered before the check so a completion in between is not missed.
            let changed = self.changed.notified();
            let wake_at = {
                let mut s = self.lock();
                let now = Instant::now();
                s.prune(now, self.window);
                let used = s.used();
                if used == 0 || used + n <= self.limit {
                    s.in_flight += n;
                    return Permit { pacer: self, n };
                }
                // The earliest moment enough completed calls leave the window; `None` when
                // the calls in flight alone leave no room (wait for one to finish).
                let mut left = used;
                s.done.iter().find_map(|(t, k)| {
                    left -= k;
                    (left + n <= self.limit || left == 0).then_some(*t + self.window)
                })
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn calls_wait_for_the_window_to_slide() {
        let p = Pacer::new(1000, Duration::from_millis(300));
        let t0 = Instant::now();
        drop(p.admit(600).await);
        drop(p.admit(400).await);
        assert_eq!(t0.elapsed(), Duration::ZERO);
        drop(p.admit(1).await);
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t0.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_calls_count_until_they_complete() {
        let p = Arc::new(Pacer::new(1000, Duration::from_millis(300)));
        let first = p.admit(800).await;
        let p2 = p.clone();
        let waiter = tokio::spawn(async move {
            let t = Instant::now();
            drop(p2.admit(300).await);
            t.elapsed()
        });
        tokio::time::sleep(Duration::from_millis(1000)).await;
        // Recorded at completion: the window runs from here, not from admission.
        drop(first);
        let waited = waiter.await.unwrap();
        assert!(waited >= Duration::from_millis(1300), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_oversized_call_goes_alone() {
        let p = Pacer::new(100, Duration::from_millis(300));
        let t0 = Instant::now();
        drop(p.admit(500).await);
        assert_eq!(t0.elapsed(), Duration::ZERO);
        drop(p.admit(500).await);
        assert!(t0.elapsed() >= Duration::from_millis(300));
    }
}
