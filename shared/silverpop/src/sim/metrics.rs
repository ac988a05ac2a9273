//! Deterministic aggregate tracking: counters that grow over the 7 days after the send.
//!
//! Rates vary per mailing (seeded by its id) so different mailings differ, but the same mailing
//! at the same instant always gives the same numbers, and every counter is non-decreasing in time.

use jiff::Timestamp;
use xxhash_rust::xxh3::xxh3_64;

/// Cumulative counters of one mailing at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    pub sent: u64,
    pub suppressed: u64,
    pub bounce_hard: u64,
    pub bounce_soft: u64,
    pub unique_open: u64,
    pub gross_open: u64,
    pub unique_click: u64,
    pub gross_click: u64,
    pub abuse: u64,
    pub unsubscribes: u64,
}

/// How long engagement keeps growing after the send.
const WINDOW_HOURS: f64 = 7.0 * 24.0;

/// Rate in `[low, high)` drawn from the mailing id and a salt.
fn rate(mailing_id: i64, salt: &str, low: f64, high: f64) -> f64 {
    let h = xxh3_64(format!("{mailing_id}/{salt}").as_bytes());
    low + (high - low) * ((h % 10_000) as f64 / 10_000.0)
}

/// Fraction of final engagement reached `hours` after the send: fast at first, 1 after 7 days.
fn progress(hours: f64) -> f64 {
    let x = (hours / WINDOW_HOURS).clamp(0.0, 1.0);
    1.0 - (1.0 - x).powi(3)
}

fn part(total: u64, fraction: f64) -> u64 {
    (total as f64 * fraction).floor() as u64
}

/// Counters for a mailing of `audience` contacts sent at `sent_at`, seen at `now`.
pub(crate) fn metrics_at(
    mailing_id: i64,
    audience: usize,
    sent_at: Timestamp,
    now: Timestamp,
) -> Metrics {
    if now < sent_at {
        return Metrics::default();
    }
    let audience = audience as u64;
    let suppressed = part(audience, rate(mailing_id, "supp", 0.0, 0.02));
    let sent = audience - suppressed;
    let hours = now.duration_since(sent_at).as_secs_f64() / 3600.0;
    // Bounces arrive within the first day; engagement over the week.
    let bounce_progress = progress(hours * 7.0);
    let p = progress(hours);
    let bounce_hard = part(
        part(sent, rate(mailing_id, "hard", 0.002, 0.01)),
        bounce_progress,
    );
    let bounce_soft = part(
        part(sent, rate(mailing_id, "soft", 0.005, 0.03)),
        bounce_progress,
    );
    let delivered = sent - bounce_hard - bounce_soft;
    let final_opens = part(sent, rate(mailing_id, "open", 0.15, 0.35));
    let unique_open = part(final_opens, p).min(delivered);
    let gross_open = unique_open + part(unique_open, rate(mailing_id, "reopen", 0.3, 0.9));
    let unique_click = part(part(final_opens, rate(mailing_id, "click", 0.08, 0.2)), p);
    let gross_click = unique_click + part(unique_click, rate(mailing_id, "reclick", 0.1, 0.5));
    let unsubscribes = part(part(sent, rate(mailing_id, "unsub", 0.002, 0.008)), p);
    let abuse = part(part(sent, rate(mailing_id, "abuse", 0.0, 0.001)), p);
    Metrics {
        sent,
        suppressed,
        bounce_hard,
        bounce_soft,
        unique_open,
        gross_open,
        unique_click,
        gross_click,
        abuse,
        unsubscribes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    #[test]
    fn counters_are_zero_before_the_send_and_never_decrease_after() {
        let sent_at: Timestamp = "2024-06-15T09:30:00Z".parse().unwrap();
        assert_eq!(
            metrics_at(7, 1000, sent_at, sent_at - SignedDuration::from_secs(1)),
            Metrics::default()
        );
        let mut last = Metrics::default();
        for hour in 0..200 {
            let m = metrics_at(7, 1000, sent_at, sent_at + SignedDuration::from_hours(hour));
            assert!(m.sent >= last.sent && m.unique_open >= last.unique_open);
            assert!(m.unique_click >= last.unique_click && m.unsubscribes >= last.unsubscribes);
            assert!(m.bounce_hard >= last.bounce_hard && m.bounce_soft >= last.bounce_soft);
            last = m;
        }
        assert!(last.unique_open > 100 && last.unique_click > 0);
        let day1 = metrics_at(7, 1000, sent_at, sent_at + SignedDuration::from_hours(24));
        assert!(day1.unique_open < last.unique_open);
        assert_eq!(
            metrics_at(7, 1000, sent_at, sent_at + SignedDuration::from_hours(24)),
            day1
        );
    }
}
