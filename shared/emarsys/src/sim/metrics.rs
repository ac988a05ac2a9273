//! Simulated response summaries: plausible, deterministic, cumulative counters.
//!
//! Every rate is drawn from a hash of the e-mail id, so one campaign always reports the same
//! curve. Counters only grow with time since the send: bounces arrive within hours, opens follow
//! `rate * (1 - exp(-t / 1 day))`, clicks and unsubscribes ride on the opens curve.

use serde_json::{Value, json};
use xxhash_rust::xxh3::xxh3_64_with_seed;

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// Counters of one or more launches, as in `GET /email/{id}/responsesummary`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub planned: u64,
    pub sent: u64,
    pub soft_bounces: u64,
    pub hard_bounces: u64,
    pub block_bounces: u64,
    pub opened: u64,
    pub unsubscribe: u64,
    pub total_clicks: u64,
    pub unique_clicks: u64,
    pub complained: u64,
}

impl Summary {
    /// Counters of a launch to `planned` contacts, `elapsed_secs` after its send time.
    pub fn at(email_id: u64, planned: u64, elapsed_secs: f64) -> Summary {
        let t = elapsed_secs.max(0.0);
        let u = |salt: u64| unit(email_id, salt);
        let sent = planned - share(planned, 0.002 * u(1));
        let bounced = share(sent, 0.01 + 0.02 * u(2));
        let hard = share(bounced, 0.4);
        let block = share(bounced, 0.1);
        let soft = bounced - hard - block;
        let bounce_curve = 1.0 - (-t / (2.0 * HOUR)).exp();
        let open_curve = 1.0 - (-t / DAY).exp();
        let delivered = sent - bounced;
        let opened = share(delivered, (0.15 + 0.20 * u(3)) * open_curve);
        let unique_clicks = share(opened, 0.10 + 0.15 * u(4));
        Summary {
            planned,
            sent,
            soft_bounces: share(soft, bounce_curve),
            hard_bounces: share(hard, bounce_curve),
            block_bounces: share(block, bounce_curve),
            opened,
            unsubscribe: share(delivered, (0.001 + 0.004 * u(5)) * open_curve),
            total_clicks: share(unique_clicks, 1.2 + 0.8 * u(6)),
            unique_clicks,
            complained: share(delivered, 0.0003 * u(7) * open_curve),
        }
    }

    pub fn add(&mut self, other: &Summary) {
        self.planned += other.planned;
        self.sent += other.sent;
        self.soft_bounces += other.soft_bounces;
        self.hard_bounces += other.hard_bounces;
        self.block_bounces += other.block_bounces;
        self.opened += other.opened;
        self.unsubscribe += other.unsubscribe;
        self.total_clicks += other.total_clicks;
        self.unique_clicks += other.unique_clicks;
        self.complained += other.complained;
    }

    /// The wire form: every counter as a numeric string.
    pub fn to_json(self) -> Value {
        json!({
            "sent": self.sent.to_string(),
            "planned": self.planned.to_string(),
            "soft_bounces": self.soft_bounces.to_string(),
            "hard_bounces": self.hard_bounces.to_string(),
            "block_bounces": self.block_bounces.to_string(),
            "opened": self.opened.to_string(),
            "unsubscribe": self.unsubscribe.to_string(),
            "total_clicks": self.total_clicks.to_string(),
            "unique_clicks": self.unique_clicks.to_string(),
            "complained": self.complained.to_string(),
        })
    }
}

/// A stable number in `[0, 1]` from the e-mail id and a salt.
fn unit(email_id: u64, salt: u64) -> f64 {
    xxh3_64_with_seed(&salt.to_le_bytes(), email_id) as f64 / u64::MAX as f64
}

/// `floor(n * rate)`, never more than `n`.
fn share(n: u64, rate: f64) -> u64 {
    ((n as f64 * rate).floor() as u64).min(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_plausible_after_a_week() {
        for email_id in [1, 81_001, 99_999_999] {
            let s = Summary::at(email_id, 100_000, 7.0 * DAY);
            let delivered = s.sent - s.soft_bounces - s.hard_bounces - s.block_bounces;
            assert!(s.sent <= s.planned && s.sent >= 99_700, "{s:?}");
            let bounce_rate = (s.sent - delivered) as f64 / s.sent as f64;
            assert!((0.009..=0.031).contains(&bounce_rate), "{bounce_rate}");
            let open_rate = s.opened as f64 / delivered as f64;
            assert!((0.14..=0.36).contains(&open_rate), "{open_rate}");
            assert!(s.unique_clicks >= s.opened / 11 && s.unique_clicks <= s.opened / 4);
            assert!(s.total_clicks >= s.unique_clicks);
            assert!(s.unsubscribe >= delivered / 1100 && s.unsubscribe <= delivered / 190);
        }
    }

    #[test]
    fn counters_never_decrease_and_opens_grow_fastest_on_day_one() {
        let mut previous = Summary::at(42, 5_000, 0.0);
        assert_eq!(previous.opened, 0);
        for hour in 1..=(7 * 24) {
            let s = Summary::at(42, 5_000, f64::from(hour) * HOUR);
            for (now, before) in [
                (s.opened, previous.opened),
                (s.unique_clicks, previous.unique_clicks),
                (s.total_clicks, previous.total_clicks),
                (s.unsubscribe, previous.unsubscribe),
                (s.hard_bounces, previous.hard_bounces),
                (s.soft_bounces, previous.soft_bounces),
            ] {
                assert!(now >= before, "hour {hour}: {s:?} < {previous:?}");
            }
            previous = s;
        }
        let day1 = Summary::at(42, 5_000, DAY).opened;
        let day2 = Summary::at(42, 5_000, 2.0 * DAY).opened;
        assert!(
            day1 > 0 && day1 > (day2 - day1) * 2,
            "day1 {day1}, day2 {day2}"
        );
    }

    #[test]
    fn counters_are_deterministic_per_email_and_differ_between_emails() {
        assert_eq!(Summary::at(7, 10_000, DAY), Summary::at(7, 10_000, DAY));
        assert_ne!(Summary::at(7, 10_000, DAY), Summary::at(8, 10_000, DAY));
    }
}
