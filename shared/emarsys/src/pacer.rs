//! Request pacing for one API user.
//!
//! Emarsys counts requests per API user per minute and answers 429/7003 beyond the limit. Rather
//! than bursting and backing off, requests are spaced evenly at 98% of the limit: evenly spaced
//! requests can never put more than the limit into any 60-second window (fixed or sliding), and
//! 98% keeps a saturated upload above the 95% bar. The pacer also blocks everyone until the reset
//! when the server says the window is spent (`X-Ratelimit-Remaining: 0` or a 429).

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Share of the documented limit the pacer aims at.
const TARGET_SHARE: f64 = 0.98;

/// Shared by every clone of one adapter; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    interval: Duration,
    next: Arc<Mutex<Instant>>,
}

impl Pacer {
    pub(crate) fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        Self {
            interval: Duration::from_secs_f64(60.0 / (per_minute * TARGET_SHARE)),
            next: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Spacing between two requests.
    #[cfg(test)]
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this request's slot. Slots are handed out in order under the lock, the wait
    /// happens outside it, so concurrent callers queue without holding each other up.
    pub(crate) async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// No request before `now + wait` (the server's window is spent).
    pub(crate) async fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut next = self.next.lock().await;
        if *next < until {
            *next = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_at_98_percent_of_the_limit() {
        let p = Pacer::new(600);
        assert_eq!(p.interval().as_millis(), 102); // 60 s / 588
        let start = Instant::now();
        let mut n = 0u32;
        while Instant::now().duration_since(start) < Duration::from_secs(60) {
            p.acquire().await;
            if Instant::now().duration_since(start) < Duration::from_secs(60) {
                n += 1;
            }
        }
        assert!(n <= 600, "{n} requests in one minute");
        assert!(n >= 570, "only {n} requests in one minute (< 95%)");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_budget() {
        let p = Pacer::new(60); // ~1.02 s apart
        let start = Instant::now();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move {
                    p.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap().duration_since(start));
        }
        times.sort();
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(1000), "{times:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn block_for_delays_the_next_slot() {
        let p = Pacer::new(6000);
        p.acquire().await;
        let start = Instant::now();
        p.block_for(Duration::from_secs(5)).await;
        p.acquire().await;
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(5));
    }
}
