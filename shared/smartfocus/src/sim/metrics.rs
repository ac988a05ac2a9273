//! Simulated campaign snapshots: plausible, deterministic, cumulative counters.
//!
//! Rates come from a hash of the campaign id, so a campaign always reports the same curve.
//! Counters grow with time since the send date and never decrease: deliveries and bounces land
//! within hours, opens follow `rate * (1 - exp(-t / 1 day))`, clicks and unsubscribes ride on
//! the opens curve; after 7 days the curves are within a fraction of a percent of their limit.

use xxhash_rust::xxh3::xxh3_64_with_seed;

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// The counters of `getCampaignSnapshotReport`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub selected: u64,
    pub filtered: u64,
    pub delivered: u64,
    pub bounce: u64,
    pub hard_bounce: u64,
    pub soft_bounce: u64,
    pub unique_open: u64,
    pub unique_click: u64,
    pub unsubscribe: u64,
    pub complaint: u64,
    pub conversion: u64,
}

impl Snapshot {
    /// Counters of a campaign sent to `selected` members, `elapsed_secs` after its send date
    /// (all zero before it).
    pub fn at(campaign_id: u64, selected: u64, elapsed_secs: f64) -> Snapshot {
        if elapsed_secs < 0.0 {
            return Snapshot {
                selected,
                ..Snapshot::default()
            };
        }
        let t = elapsed_secs;
        let u = |salt: u64| unit(campaign_id, salt);
        let filtered = share(selected, 0.003 * u(1));
        let sent = selected - filtered;
        let delivery_curve = 1.0 - (-t / HOUR).exp();
        let bounces_total = share(sent, 0.01 + 0.02 * u(2));
        let hard_total = share(bounces_total, 0.4);
        let hard_bounce = share(hard_total, delivery_curve);
        let soft_bounce = share(bounces_total - hard_total, delivery_curve);
        let delivered = share(sent - bounces_total, delivery_curve);
        let open_curve = 1.0 - (-t / DAY).exp();
        let opens_total = share(sent - bounces_total, 0.15 + 0.20 * u(3));
        let unique_open = share(opens_total, open_curve);
        let unique_click = share(unique_open, 0.10 + 0.15 * u(4));
        Snapshot {
            selected,
            filtered,
            delivered,
            bounce: hard_bounce + soft_bounce,
            hard_bounce,
            soft_bounce,
            unique_open,
            unique_click,
            unsubscribe: share(opens_total, (0.005 + 0.01 * u(5)) * open_curve),
            complaint: share(opens_total, 0.001 * u(6) * open_curve),
            conversion: share(unique_click, 0.05 * u(7)),
        }
    }
}

/// A stable number in [0, 1) for (`id`, `salt`).
fn unit(id: u64, salt: u64) -> f64 {
    (xxh3_64_with_seed(&id.to_le_bytes(), salt) >> 11) as f64 / (1u64 << 53) as f64
}

/// `floor(n * rate)`, clamped to `0..=n`; monotonic in `rate`.
fn share(n: u64, rate: f64) -> u64 {
    ((n as f64) * rate.clamp(0.0, 1.0)).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_never_decrease_and_stay_consistent_over_seven_days() {
        let mut previous = Snapshot::at(42, 10_000, 0.0);
        for hour in 1..=(7 * 24) {
            let now = Snapshot::at(42, 10_000, f64::from(hour) * HOUR);
            assert!(now.delivered >= previous.delivered);
            assert!(now.unique_open >= previous.unique_open);
            assert!(now.unique_click >= previous.unique_click);
            assert!(now.unsubscribe >= previous.unsubscribe);
            assert!(now.bounce >= previous.bounce);
            assert!(now.unique_click <= now.unique_open);
            assert!(now.unique_open <= now.delivered);
            assert!(now.delivered + now.bounce + now.filtered <= now.selected);
            previous = now;
        }
        assert!(previous.unique_open > 1000, "{previous:?}");
    }

    #[test]
    fn nothing_before_the_send_and_same_campaign_same_curve() {
        let before = Snapshot::at(7, 500, -1.0);
        assert_eq!(before.delivered + before.unique_open, 0);
        assert_eq!(Snapshot::at(7, 500, DAY), Snapshot::at(7, 500, DAY));
        assert_ne!(Snapshot::at(7, 5000, DAY), Snapshot::at(8, 5000, DAY));
    }
}
