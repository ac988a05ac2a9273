//! The night report: every campaign of one run date at a glance (the JSON of
//! `GET /runs/{run_date}/report`, rendered by [`render_night_html`](crate::html::render_night_html)).
//!
//! The caller hands in one [`NightCampaign`] per campaign (its audience counts and its latest
//! metrics, if it was polled); [`build_night_report`] orders them (failures first, then
//! campaigns that need attention, then by send time and id) and adds the counts per state, the
//! night's totals and the rejected rows by reason. Only ids, counts and reasons go in: no
//! customer data can reach the page.

use crate::stats::{Rate, wilson};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The state names that sort first, in this order: failed, then partially scheduled (some
/// sends booked, one not: mail may go out).
const FIRST: [&str; 2] = ["failed", "partially_scheduled"];

/// Why a campaign failed, as its record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NightFailure {
    pub step: String,
    pub reason: String,
    pub at: String,
}

/// A campaign's audience: rows read, valid, rejected, handed to the ESP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NightAudience {
    pub rows: u64,
    pub valid: u64,
    pub rejected: u64,
    pub uploaded: u64,
    pub not_in_esp: u64,
    pub esp_rejected: u64,
}

/// The latest polled counts of a campaign and their rates (over delivered messages; `null`
/// when nothing was delivered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NightMetrics {
    /// Days after the send (1 to 7).
    pub day: u32,
    pub sent: u64,
    pub delivered: u64,
    pub opens: u64,
    pub clicks: u64,
    pub unsubscribes: u64,
    pub bounces: u64,
    pub open_rate: Option<Rate>,
    pub click_rate: Option<Rate>,
    pub unsubscribe_rate: Option<Rate>,
}

impl NightMetrics {
    /// The rates of the counts (`[sent, delivered, opens, clicks, unsubscribes, bounces]`).
    pub fn new(
        day: u32,
        [sent, delivered, opens, clicks, unsubscribes, bounces]: [u64; 6],
    ) -> Self {
        Self {
            day,
            sent,
            delivered,
            opens,
            clicks,
            unsubscribes,
            bounces,
            open_rate: wilson(opens, delivered),
            click_rate: wilson(clicks, delivered),
            unsubscribe_rate: wilson(unsubscribes, delivered),
        }
    }
}

/// One campaign of the night.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NightCampaign {
    pub campaign_id: String,
    pub esp: Option<String>,
    pub account: Option<String>,
    pub state: String,
    pub send_at: Option<String>,
    pub failure: Option<NightFailure>,
    pub audience: NightAudience,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// `null` until the first poll.
    pub metrics: Option<NightMetrics>,
}

/// The night's sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NightTotals {
    pub campaigns: u64,
    pub rows: u64,
    pub valid: u64,
    pub rejected: u64,
    pub uploaded: u64,
    pub sent: u64,
    pub delivered: u64,
    pub opens: u64,
    pub clicks: u64,
    pub unsubscribes: u64,
    pub open_rate: Option<Rate>,
    pub click_rate: Option<Rate>,
}

/// The whole night.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NightReport {
    pub run_date: String,
    /// Campaigns per state name (states with none left out).
    pub states: BTreeMap<String, u64>,
    pub totals: NightTotals,
    /// Rejected audience rows of every campaign, by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Failures first (see the module docs).
    pub campaigns: Vec<NightCampaign>,
    /// The night has more campaigns than the report holds; the listing has them all.
    pub truncated: bool,
}

/// Orders the campaigns and sums the night.
pub fn build_night_report(
    run_date: &str,
    mut campaigns: Vec<NightCampaign>,
    truncated: bool,
) -> NightReport {
    let rank = |c: &NightCampaign| {
        FIRST
            .iter()
            .position(|s| *s == c.state)
            .unwrap_or(FIRST.len())
    };
    campaigns.sort_by(|a, b| {
        // A campaign without a send time (refused before it had one) sorts last in its rank.
        (rank(a), a.send_at.is_none(), &a.send_at, &a.campaign_id).cmp(&(
            rank(b),
            b.send_at.is_none(),
            &b.send_at,
            &b.campaign_id,
        ))
    });
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let mut rejected_by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut t = NightTotals::default();
    for c in &campaigns {
        *states.entry(c.state.clone()).or_default() += 1;
        for (reason, n) in &c.rejected_by_reason {
            let sum = rejected_by_reason.entry(reason.clone()).or_default();
            *sum = sum.saturating_add(*n);
        }
        let a = &c.audience;
        t.campaigns += 1;
        t.rows = t.rows.saturating_add(a.rows);
        t.valid = t.valid.saturating_add(a.valid);
        t.rejected = t.rejected.saturating_add(a.rejected);
        t.uploaded = t.uploaded.saturating_add(a.uploaded);
        if let Some(m) = &c.metrics {
            t.sent = t.sent.saturating_add(m.sent);
            t.delivered = t.delivered.saturating_add(m.delivered);
            t.opens = t.opens.saturating_add(m.opens);
            t.clicks = t.clicks.saturating_add(m.clicks);
            t.unsubscribes = t.unsubscribes.saturating_add(m.unsubscribes);
        }
    }
    t.open_rate = wilson(t.opens, t.delivered);
    t.click_rate = wilson(t.clicks, t.delivered);
    NightReport {
        run_date: run_date.to_owned(),
        states,
        totals: t,
        rejected_by_reason,
        campaigns,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn campaign(id: &str, state: &str, send_at: Option<&str>) -> NightCampaign {
        NightCampaign {
            campaign_id: id.to_owned(),
            esp: Some("emarsys".to_owned()),
            account: Some("default".to_owned()),
            state: state.to_owned(),
            send_at: send_at.map(str::to_owned),
            failure: None,
            audience: NightAudience {
                rows: 100,
                valid: 90,
                rejected: 10,
                uploaded: 90,
                ..Default::default()
            },
            rejected_by_reason: [("bad_email".to_owned(), 6), ("duplicate".to_owned(), 4)]
                .into_iter()
                .collect(),
            metrics: None,
        }
    }

    #[test]
    fn failures_come_first_then_attention_then_send_time() {
        let at = |h: u32| Some(format!("2026-11-25T{h:02}:00:00Z"));
        let cs = vec![
            campaign("c-late", "scheduled", at(20).as_deref()),
            campaign("c-none", "failed", None),
            campaign("c-early", "completed", at(6).as_deref()),
            campaign("c-part", "partially_scheduled", at(9).as_deref()),
            campaign("c-fail", "failed", at(7).as_deref()),
            campaign("c-unsent", "received", None),
        ];
        let r = build_night_report("2026-11-24", cs, false);
        let ids: Vec<_> = r.campaigns.iter().map(|c| c.campaign_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "c-fail", "c-none", "c-part", "c-early", "c-late", "c-unsent"
            ]
        );
        assert_eq!(r.states["failed"], 2);
        assert_eq!(r.states.get("cancelled"), None);
        assert_eq!(r.totals.campaigns, 6);
        assert_eq!(r.totals.rejected, 60);
        assert_eq!(r.rejected_by_reason["bad_email"], 36);
    }

    #[test]
    fn totals_and_rates_sum_the_polled_campaigns() {
        let mut a = campaign("a", "collecting", None);
        a.metrics = Some(NightMetrics::new(2, [100, 90, 30, 9, 1, 10]));
        let mut b = campaign("b", "completed", None);
        b.metrics = Some(NightMetrics::new(7, [200, 110, 20, 1, 0, 90]));
        let r = build_night_report(
            "2026-11-24",
            vec![a, b, campaign("c", "uploading", None)],
            false,
        );
        assert_eq!(
            (r.totals.sent, r.totals.delivered, r.totals.opens),
            (300, 200, 50)
        );
        assert_eq!(r.totals.open_rate.unwrap().value, 0.25);
        assert_eq!(r.totals.click_rate.unwrap().value, 0.05);
        let m = r.campaigns[0].metrics.as_ref().unwrap();
        assert_eq!(m.click_rate.unwrap().value, 0.1);
        let empty = build_night_report("2026-11-24", Vec::new(), false);
        assert_eq!(empty.totals.open_rate, None, "no delivery, no rate");
    }
}
