//! A pace learned from refusals, for ESPs that say "too much" but never "how much" (Bronto's
//! addresses a minute, Silverpop's concurrent requests): additive increase, multiplicative
//! decrease, as TCP finds a link's capacity. A refusal halves the pace at once; a run of
//! successes raises it by a small step, never above the configured figure. The pace oscillates
//! just under what the account takes, and the refusals it costs are few and spaced out.

use std::sync::Mutex;

/// One adaptive figure (a rate or a concurrency), shared by the calls of one adapter.
#[derive(Debug)]
pub struct Aimd {
    /// What the configuration allows: the pace never rises above it.
    ceiling: f64,
    floor: f64,
    /// Added after every `every` successes in a row.
    step: f64,
    every: u32,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    current: f64,
    successes: u32,
    refusals: u64,
}

/// What a report changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    Same,
    Lowered(f64),
    Raised(f64),
}

impl Aimd {
    /// Starts at `ceiling`; raised by `ceiling / 20` every `every` successes.
    pub fn new(ceiling: f64, floor: f64, every: u32) -> Self {
        let ceiling = ceiling.max(floor);
        Self {
            ceiling,
            floor,
            step: (ceiling / 20.0).max(f64::MIN_POSITIVE),
            every: every.max(1),
            state: Mutex::new(State {
                current: ceiling,
                successes: 0,
                refusals: 0,
            }),
        }
    }

    /// A fixed step instead of a twentieth of the ceiling (a concurrency rises by one).
    pub fn with_step(mut self, step: f64) -> Self {
        self.step = step.max(f64::MIN_POSITIVE);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few numbers, always consistent: a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn current(&self) -> f64 {
        self.state().current
    }

    pub fn ceiling(&self) -> f64 {
        self.ceiling
    }

    /// Refusals reported so far.
    pub fn refusals(&self) -> u64 {
        self.state().refusals
    }

    /// The ESP refused for the pace: halve it (not below the floor).
    pub fn refused(&self) -> Change {
        let mut s = self.state();
        s.refusals += 1;
        s.successes = 0;
        let lowered = (s.current / 2.0).max(self.floor);
        if lowered < s.current {
            s.current = lowered;
            Change::Lowered(lowered)
        } else {
            Change::Same
        }
    }

    /// A call went through at the current pace: after `every` in a row, one step up.
    pub fn succeeded(&self) -> Change {
        let mut s = self.state();
        if s.current >= self.ceiling {
            return Change::Same;
        }
        s.successes += 1;
        if s.successes < self.every {
            return Change::Same;
        }
        s.successes = 0;
        s.current = (s.current + self.step).min(self.ceiling);
        Change::Raised(s.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_halves_and_successes_climb_back_slowly_to_the_ceiling() {
        let a = Aimd::new(1000.0, 10.0, 3);
        assert_eq!(a.refused(), Change::Lowered(500.0));
        assert_eq!(a.refused(), Change::Lowered(250.0));
        assert_eq!(a.succeeded(), Change::Same);
        assert_eq!(a.succeeded(), Change::Same);
        assert_eq!(a.succeeded(), Change::Raised(300.0));
        for _ in 0..100 {
            a.succeeded();
        }
        assert_eq!(a.current(), 1000.0, "never above the configuration");
        assert_eq!(a.refusals(), 2);
    }

    #[test]
    fn never_below_the_floor() {
        let a = Aimd::new(8.0, 1.0, 1).with_step(1.0);
        for _ in 0..10 {
            a.refused();
        }
        assert_eq!(a.current(), 1.0);
        assert_eq!(a.refused(), Change::Same);
        assert_eq!(a.succeeded(), Change::Raised(2.0));
    }
}
