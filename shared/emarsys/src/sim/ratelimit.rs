//! Per-API-user request budget over a fixed window (a minute, as Emarsys counts; tests may
//! shorten it) on the monotonic clock.
//!
//! Real time, not the injected business clock: a test that fast-forwards days must not refill
//! the budget, and a client's pacing is measured in real seconds.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Emarsys's window.
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

/// Where a user stands in the current window, for the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateStatus {
    /// Requests a minute, as Emarsys announces its limit (whatever the window counted over).
    pub limit: u32,
    pub remaining: u32,
    /// Time until the window resets.
    pub reset_in: Duration,
    /// The request that produced this status is over the limit.
    pub exceeded: bool,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    used: u32,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_minute: u32,
    /// Requests a window.
    limit: u32,
    window: Duration,
    windows: HashMap<String, Window>,
}

impl RateLimiter {
    /// `per_minute` requests a minute, counted over windows of `window` (the same rate: a
    /// window of a second allows a sixtieth of it).
    pub fn new(per_minute: u32, window: Duration) -> Self {
        let share = window.as_secs_f64() / MINUTE.as_secs_f64();
        Self {
            per_minute,
            limit: ((f64::from(per_minute) * share).round() as u32).max(1),
            window,
            windows: HashMap::new(),
        }
    }

    /// Counts one request of `user`.
    pub fn hit(&mut self, user: &str, now: Instant) -> RateStatus {
        self.status(user, now, true)
    }

    /// The user's status without counting a request.
    pub fn peek(&mut self, user: &str, now: Instant) -> RateStatus {
        self.status(user, now, false)
    }

    fn status(&mut self, user: &str, now: Instant, count: bool) -> RateStatus {
        let window = self.windows.entry(user.to_owned()).or_insert(Window {
            start: now,
            used: 0,
        });
        if now.duration_since(window.start) >= self.window {
            *window = Window {
                start: now,
                used: 0,
            };
        }
        let exceeded = count && window.used >= self.limit;
        if count && !exceeded {
            window.used += 1;
        }
        RateStatus {
            limit: self.per_minute,
            remaining: self.limit.saturating_sub(window.used),
            reset_in: self.window.saturating_sub(now.duration_since(window.start)),
            exceeded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_per_user_and_refills_after_a_minute() {
        let mut limiter = RateLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        assert_eq!(limiter.hit("a", t0).remaining, 1);
        assert!(!limiter.hit("a", t0).exceeded);
        let over = limiter.hit("a", t0 + Duration::from_secs(10));
        assert!(over.exceeded);
        assert_eq!(over.remaining, 0);
        assert_eq!(over.reset_in, Duration::from_secs(50));
        assert!(!limiter.hit("b", t0).exceeded);
        assert!(!limiter.hit("a", t0 + MINUTE).exceeded);
    }

    #[test]
    fn a_shorter_window_keeps_the_rate() {
        let mut limiter = RateLimiter::new(600, Duration::from_secs(1));
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(!limiter.hit("a", t0).exceeded);
        }
        assert!(limiter.hit("a", t0).exceeded);
        assert!(!limiter.hit("a", t0 + Duration::from_secs(1)).exceeded);
    }
}
