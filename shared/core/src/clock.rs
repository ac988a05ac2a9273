//! Time as a port. Production uses the system clock; local runs and tests use [`ManualClock`],
//! which the demo fast-forwards through the seven days of metric polling in seconds.

use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }
    pub fn set(&self, t: Timestamp) {
        *self.lock() = t;
    }
    pub fn advance(&self, d: SignedDuration) {
        let mut g = self.lock();
        *g = g.saturating_add(d).unwrap_or(*g);
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A poisoned lock still holds a valid timestamp.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_and_advances() {
        let start: Timestamp = "2026-11-24T00:00:00Z".parse().unwrap();
        let c = ManualClock::new(start);
        let c2 = c.clone();
        c.advance(SignedDuration::from_hours(24));
        assert_eq!(
            c2.now(),
            "2026-11-25T00:00:00Z".parse::<Timestamp>().unwrap()
        );
    }
}
