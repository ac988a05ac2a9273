//! Deterministic delivery counters: 0 before the start, then growing monotonically over 7 days.
//!
//! Final rates are drawn per delivery id (so deliveries differ) inside plausible ranges: ~98%
//! delivered, 20–30% unique opens, 3–6% unique clicks, ~0.3% unsubscribes. Bounces and
//! deliveries settle within the first day, engagement over the week. Every counter is
//! `floor(final × progress(t))` with a non-decreasing progress, hence monotonic in time.

use jiff::Timestamp;
use xxhash_rust::xxh3::xxh3_64;

/// Cumulative counters of one delivery at one instant (deliveryObject names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounters {
    pub num_sends: u64,
    pub num_deliveries: u64,
    pub num_hard_bounces: u64,
    pub num_soft_bounces: u64,
    pub uniq_opens: u64,
    pub num_opens: u64,
    pub uniq_clicks: u64,
    pub num_clicks: u64,
    pub num_unsubscribes_by_prefs: u64,
    pub num_unsubscribes_by_complaint: u64,
}

impl DeliveryCounters {
    pub fn num_bounces(&self) -> u64 {
        self.num_hard_bounces + self.num_soft_bounces
    }

    /// The `deliveryObject` counter elements in WSDL order, from `numSends` to
    /// `numContactLossBounces` (rates and social counters are left out). Bounce causes are not
    /// modelled: hard bounces count as bad e-mails, soft ones as unreachable destinations.
    pub fn wire_fields(&self) -> Vec<(&'static str, String)> {
        let avg = |total: u64, unique: u64| match unique {
            0 => "0.0".to_owned(),
            _ => format!("{:.2}", total as f64 / unique as f64),
        };
        let unsubscribes = self.num_unsubscribes_by_prefs + self.num_unsubscribes_by_complaint;
        let n = |name: &'static str, value: u64| (name, value.to_string());
        vec![
            n("numSends", self.num_sends),
            n("numDeliveries", self.num_deliveries),
            n("numHardBadEmail", self.num_hard_bounces),
            n("numHardDestUnreach", 0),
            n("numHardMessageContent", 0),
            n("numHardBounces", self.num_hard_bounces),
            n("numSoftBadEmail", 0),
            n("numSoftDestUnreach", self.num_soft_bounces),
            n("numSoftMessageContent", 0),
            n("numSoftBounces", self.num_soft_bounces),
            n("numOtherBounces", 0),
            n("numBounces", self.num_bounces()),
            n("uniqOpens", self.uniq_opens),
            n("numOpens", self.num_opens),
            ("avgOpens", avg(self.num_opens, self.uniq_opens)),
            n("uniqClicks", self.uniq_clicks),
            n("numClicks", self.num_clicks),
            ("avgClicks", avg(self.num_clicks, self.uniq_clicks)),
            n("uniqConversions", 0),
            n("numConversions", 0),
            ("avgConversions", "0.0".to_owned()),
            ("revenue", "0.0".to_owned()),
            n("numSurveyResponses", 0),
            n("numFriendForwards", 0),
            n("numContactUpdates", 0),
            n("numUnsubscribesByPrefs", self.num_unsubscribes_by_prefs),
            n(
                "numUnsubscribesByComplaint",
                self.num_unsubscribes_by_complaint,
            ),
            n("numContactLoss", self.num_hard_bounces + unsubscribes),
            n("numContactLossBounces", self.num_hard_bounces),
        ]
    }
}

const WEEK_HOURS: f64 = 7.0 * 24.0;

/// A fraction in `[low, high)` fixed by the delivery id and a salt.
fn draw(delivery_id: &str, salt: &str, low: f64, high: f64) -> f64 {
    let h = xxh3_64(format!("{delivery_id}/{salt}").as_bytes());
    low + (high - low) * ((h % 10_000) as f64 / 10_000.0)
}

/// Share of the final value reached after `hours` of a `span`-hour curve (ease-out cubic).
fn progress(hours: f64, span: f64) -> f64 {
    let x = (hours / span).clamp(0.0, 1.0);
    1.0 - (1.0 - x).powi(3)
}

fn share(total: u64, fraction: f64) -> u64 {
    (total as f64 * fraction).floor() as u64
}

/// Counters of a delivery to `audience` contacts that started at `start`, seen at `now`.
pub fn counters_at(
    delivery_id: &str,
    audience: usize,
    start: Timestamp,
    now: Timestamp,
) -> DeliveryCounters {
    if now < start {
        return DeliveryCounters::default();
    }
    let sends = audience as u64;
    let hours = now.duration_since(start).as_secs_f64() / 3600.0;
    let settled = progress(hours, 24.0);
    let engaged = progress(hours, WEEK_HOURS);
    let bounces = share(sends, draw(delivery_id, "bounce", 0.012, 0.028));
    let hard = share(bounces, draw(delivery_id, "hard", 0.3, 0.6));
    let uniq_opens = share(sends, draw(delivery_id, "open", 0.2, 0.3));
    let uniq_clicks = share(sends, draw(delivery_id, "click", 0.03, 0.06));
    let unsubscribes = share(sends, draw(delivery_id, "unsub", 0.002, 0.004));
    let complaints = share(unsubscribes, draw(delivery_id, "complaint", 0.05, 0.15));
    let uniq_opens_now = share(uniq_opens, engaged);
    let uniq_clicks_now = share(uniq_clicks, engaged);
    DeliveryCounters {
        num_sends: sends,
        num_deliveries: share(sends - bounces, settled),
        num_hard_bounces: share(hard, settled),
        num_soft_bounces: share(bounces - hard, settled),
        uniq_opens: uniq_opens_now,
        num_opens: uniq_opens_now + share(uniq_opens_now, draw(delivery_id, "reopen", 0.3, 0.9)),
        uniq_clicks: uniq_clicks_now,
        num_clicks: uniq_clicks_now
            + share(uniq_clicks_now, draw(delivery_id, "reclick", 0.1, 0.5)),
        num_unsubscribes_by_prefs: share(unsubscribes - complaints, engaged),
        num_unsubscribes_by_complaint: share(complaints, engaged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    #[test]
    fn zero_before_start_then_monotonic_and_plausible() {
        let start: Timestamp = "2024-06-15T09:30:00Z".parse().unwrap();
        let before = counters_at("d1", 10_000, start, start - SignedDuration::from_secs(1));
        assert_eq!(before, DeliveryCounters::default());
        let mut last = DeliveryCounters::default();
        for hour in 0..=(7 * 24 + 5) {
            let c = counters_at(
                "d1",
                10_000,
                start,
                start + SignedDuration::from_hours(hour),
            );
            for (now, then) in [
                (c.num_sends, last.num_sends),
                (c.num_deliveries, last.num_deliveries),
                (c.num_bounces(), last.num_bounces()),
                (c.uniq_opens, last.uniq_opens),
                (c.num_opens, last.num_opens),
                (c.uniq_clicks, last.uniq_clicks),
                (c.num_clicks, last.num_clicks),
                (c.num_unsubscribes_by_prefs, last.num_unsubscribes_by_prefs),
            ] {
                assert!(now >= then, "hour {hour}: {c:?} after {last:?}");
            }
            last = c;
        }
        assert!((9_700..=9_890).contains(&last.num_deliveries), "{last:?}");
        assert!((2_000..3_000).contains(&last.uniq_opens), "{last:?}");
        assert!((300..600).contains(&last.uniq_clicks), "{last:?}");
        assert_eq!(last.num_deliveries + last.num_bounces(), last.num_sends);
    }

    #[test]
    fn wire_fields_follow_the_wsdl_order() {
        let wsdl = include_str!("bronto-v4.wsdl");
        let object = &wsdl[wsdl
            .find("<xs:complexType name=\"deliveryObject\">")
            .unwrap()..];
        let object = &object[..object.find("</xs:complexType>").unwrap()];
        let positions: Vec<usize> = DeliveryCounters::default()
            .wire_fields()
            .iter()
            .map(|(name, _)| object.find(&format!("name=\"{name}\"")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }
}
