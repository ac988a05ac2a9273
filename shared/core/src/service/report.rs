//! The campaign report: the record, its daily snapshots and its attributed conversions turned
//! into the analysis crate's input, then into the report (per-variant rates with intervals,
//! the A/B verdict, uplift against the control group) and its self-contained HTML page.
//!
//! What goes in:
//! - one series per variant from the snapshots' per-variant counts (a campaign without variants
//!   is one variant, `all`, from the totals);
//! - each variant's `assigned` = the customers handed to the ESP for it;
//! - conversions per group (`all` or the variant names, and `control`) when a conversions drop
//!   was attributed; the control group is compared only then;
//! - the A/B metric: the `metric` asked for, else the manifest's `ab_metric`, else click rate.

use super::api::ApiService;
use crate::campaign::{Campaign, GroupConversionTotals, MetricSnapshot};
use crate::ids::CampaignId;
use crate::ports::{MetricCounts, StoreError};
use espbridge_analysis::{
    DailyCounts, GroupConversions, Metric, Report, ReportInput, VariantInput, build_report,
};

/// Days after the send that conversions count for (the poll window).
pub const CONVERSION_WINDOW_DAYS: u32 = 7;

/// The name of the one series of a campaign without variants.
pub const SINGLE_VARIANT: &str = "all";

impl ApiService {
    /// The campaign's report, or `None` when there is no such campaign.
    pub async fn campaign_report(
        &self,
        id: &CampaignId,
        metric: Option<Metric>,
    ) -> Result<Option<Report>, StoreError> {
        let Some(c) = self.store.get(id).await? else {
            return Ok(None);
        };
        let snaps = self.store.snapshots(id).await?;
        Ok(Some(build_report(&report_input(&c, &snaps, metric))))
    }
}

/// The analysis input of a campaign.
pub fn report_input(c: &Campaign, snaps: &[MetricSnapshot], metric: Option<Metric>) -> ReportInput {
    let metric = metric
        .or_else(|| {
            c.manifest
                .get("ab_metric")
                .and_then(|m| m.as_str())
                .and_then(|m| Metric::parse(m).ok())
        })
        .unwrap_or_default();
    let conversions = |group: &str| {
        c.conversions
            .as_ref()
            .and_then(|s| s.groups.get(group))
            .map(group_conversions)
    };
    let variants = if c.variants.is_empty() {
        vec![VariantInput {
            name: SINGLE_VARIANT.to_owned(),
            template_id: c.template_id.clone(),
            assigned: c.audience.uploaded.saturating_sub(c.audience.held_out),
            daily: snaps.iter().map(|s| daily(s.day, &s.counts)).collect(),
            conversions: conversions(SINGLE_VARIANT),
        }]
    } else {
        c.variants
            .iter()
            .map(|v| VariantInput {
                name: v.name.clone(),
                template_id: v.template_id.clone(),
                assigned: v.assigned,
                daily: snaps
                    .iter()
                    .filter_map(|s| s.by_variant.get(&v.name).map(|m| daily(s.day, m)))
                    .collect(),
                conversions: conversions(&v.name),
            })
            .collect()
    };
    ReportInput {
        campaign_id: c.id.to_string(),
        esp: c.esp.map(|e| e.as_str().to_owned()).unwrap_or_default(),
        state: c.state.to_string(),
        send_at: c.send_at.map(|t| t.to_string()),
        metric,
        variants,
        control: c.control.as_ref().and_then(|_| conversions("control")),
        conversions_window_days: CONVERSION_WINDOW_DAYS,
    }
}

fn daily(day: u32, m: &MetricCounts) -> DailyCounts {
    DailyCounts {
        day,
        sent: m.sent,
        delivered: m.delivered,
        opens: m.opens,
        clicks: m.clicks,
        unsubscribes: m.unsubscribes,
    }
}

fn group_conversions(g: &GroupConversionTotals) -> GroupConversions {
    GroupConversions {
        customers: g.customers,
        converters: g.converters,
        revenue: g.revenue,
        revenue_sq: g.revenue_sq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{ControlState, ConversionStats, VariantState};
    use crate::testkit::sample_campaign;
    use std::collections::BTreeMap;

    fn counts(sent: u64, clicks: u64) -> MetricCounts {
        MetricCounts {
            sent,
            delivered: sent,
            opens: clicks * 4,
            clicks,
            unsubscribes: 1,
            bounces: 0,
            complaints: 0,
        }
    }

    fn snap(day: u32, by: &[(&str, u64, u64)]) -> MetricSnapshot {
        let mut total = MetricCounts::default();
        let mut by_variant = BTreeMap::new();
        for (name, sent, clicks) in by {
            total += counts(*sent, *clicks);
            by_variant.insert((*name).to_owned(), counts(*sent, *clicks));
        }
        MetricSnapshot {
            day,
            taken_at: "2026-11-26T09:00:00Z".parse().unwrap(),
            counts: total,
            by_variant,
        }
    }

    #[test]
    fn a_single_template_campaign_is_one_series_from_the_totals() {
        let mut c = sample_campaign("solo");
        c.audience.uploaded = 1000;
        c.audience.held_out = 100;
        let snaps = [snap(1, &[]), snap(2, &[])];
        let mut snaps = snaps.to_vec();
        snaps[0].counts = counts(880, 30);
        snaps[1].counts = counts(890, 40);
        let input = report_input(&c, &snaps, None);
        assert_eq!(input.variants.len(), 1);
        let v = &input.variants[0];
        assert_eq!((v.name.as_str(), v.assigned), (SINGLE_VARIANT, 900));
        assert_eq!(
            v.daily.iter().map(|d| d.clicks).collect::<Vec<_>>(),
            [30, 40]
        );
        assert_eq!(input.metric, Metric::ClickRate);
        assert!(input.control.is_none());
        let report = build_report(&input);
        assert!(report.ab_test.is_none(), "no A/B test with one series");
    }

    #[test]
    fn variants_conversions_and_the_control_group_reach_the_report() {
        let mut c = sample_campaign("ab");
        c.manifest["ab_metric"] = "open_rate".into();
        c.variants = ["A", "B"]
            .iter()
            .map(|n| VariantState {
                name: (*n).to_owned(),
                template_id: format!("t-{n}"),
                share: 0.5,
                assigned: 5000,
                not_in_esp: 0,
                esp_rejected: 0,
                esp_ids: Default::default(),
            })
            .collect();
        c.control = Some(ControlState {
            holdout_share: Some(0.1),
            file: None,
            file_ids: 0,
        });
        let group = |customers, converters, revenue| GroupConversionTotals {
            customers,
            converters,
            revenue,
            revenue_sq: revenue * 10.0,
        };
        c.conversions = Some(ConversionStats {
            window_days: 7,
            groups: [
                ("A".to_owned(), group(5000, 300, 6000.0)),
                ("B".to_owned(), group(5000, 350, 7000.0)),
                ("control".to_owned(), group(1100, 40, 700.0)),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        });
        let snaps = vec![
            snap(1, &[("A", 4900, 200), ("B", 4900, 260)]),
            snap(2, &[("A", 4900, 240), ("B", 4900, 300)]),
        ];
        let input = report_input(&c, &snaps, None);
        assert_eq!(input.metric, Metric::OpenRate, "the manifest's metric");
        assert_eq!(
            report_input(&c, &snaps, Some(Metric::ClickRate)).metric,
            Metric::ClickRate,
            "an explicit metric wins"
        );
        let names: Vec<&str> = input.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(input.variants[1].template_id, "t-B");
        assert_eq!(
            input.variants[1]
                .daily
                .iter()
                .map(|d| d.clicks)
                .collect::<Vec<_>>(),
            [260, 300]
        );
        assert_eq!(
            input.variants[0].conversions.as_ref().unwrap().converters,
            300
        );
        assert_eq!(input.control.as_ref().unwrap().customers, 1100);

        let json = serde_json::to_value(build_report(&input)).unwrap();
        assert_eq!(json["variants"][1]["name"], "B");
        assert_eq!(json["ab_test"]["metric"], "open_rate");
        assert!(
            json["ab_test"]["p_value"].is_number(),
            "{}",
            json["ab_test"]
        );
        for key in [
            "treated_rate",
            "control_rate",
            "uplift",
            "ci_low",
            "ci_high",
        ] {
            assert!(
                json["control"][key].is_number(),
                "{key}: {}",
                json["control"]
            );
        }
    }
}
