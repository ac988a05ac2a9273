//! `build_report`: counts, rates, the A/B test and the control comparison.

use serde::{Deserialize, Serialize};

use crate::input::{DailyCounts, GroupConversions, Metric, ReportInput, VariantInput};
use crate::stats::{self, Rate};

/// Significance level of every test in the report.
pub const ALPHA: f64 = 0.05;

/// The rates of one group, each with its Wilson 95% interval; `null` when
/// the denominator is 0 (and `conversion_rate` without conversions data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// delivered / sent
    pub delivery_rate: Option<Rate>,
    /// opens / delivered
    pub open_rate: Option<Rate>,
    /// clicks / delivered
    pub click_rate: Option<Rate>,
    /// clicks / opens
    pub click_to_open_rate: Option<Rate>,
    /// unsubscribes / delivered
    pub unsubscribe_rate: Option<Rate>,
    /// converters / customers of the group
    pub conversion_rate: Option<Rate>,
}

impl Rates {
    /// The rate an A/B metric compares.
    pub fn get(&self, metric: Metric) -> Option<&Rate> {
        match metric {
            Metric::OpenRate => self.open_rate.as_ref(),
            Metric::ClickRate => self.click_rate.as_ref(),
            Metric::ClickToOpenRate => self.click_to_open_rate.as_ref(),
            Metric::UnsubscribeRate => self.unsubscribe_rate.as_ref(),
            Metric::ConversionRate => self.conversion_rate.as_ref(),
        }
    }
}

/// Counts (at the latest day), rates and the daily series of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    pub assigned: u64,
    pub sent: u64,
    pub delivered: u64,
    pub opens: u64,
    pub clicks: u64,
    pub unsubscribes: u64,
    pub rates: Rates,
    pub conversions: Option<GroupConversions>,
    /// revenue / customers; `null` without conversions data or customers.
    pub revenue_per_customer: Option<f64>,
    /// Cumulative counts per day, sorted by day.
    pub daily: Vec<DailyCounts>,
}

/// One variant of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantReport {
    pub name: String,
    pub template_id: String,
    #[serde(flatten)]
    pub stats: GroupStats,
}

/// Best against runner-up on the A/B metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pairwise {
    pub best: String,
    pub runner_up: String,
    pub z: f64,
    pub p_value: f64,
    /// The level this comparison is held to: α, or α/(k−1) for k ≥ 3.
    pub alpha: f64,
}

/// The A/B test on the report's metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbTest {
    pub metric: Metric,
    /// "two_proportion_z" (2 variants) or "chi_squared" (3 or more).
    pub test: String,
    /// z of best against runner-up (2 variants) or the chi-squared statistic.
    pub statistic: Option<f64>,
    /// Degrees of freedom (chi-squared only).
    pub df: Option<u32>,
    pub p_value: Option<f64>,
    pub alpha: f64,
    /// p_value < alpha (the omnibus test for 3 or more variants).
    pub significant: bool,
    pub winner: Option<String>,
    pub verdict: String,
    pub pairwise: Option<Pairwise>,
    /// Why there is no winner despite a significant omnibus test, or why
    /// no test was run.
    pub note: Option<String>,
}

/// Treated (all variants) against the held-out control group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlReport {
    pub treated_customers: u64,
    pub control_customers: u64,
    pub treated_converters: u64,
    pub control_converters: u64,
    pub treated_rate: Option<f64>,
    pub control_rate: Option<f64>,
    /// treated_rate − control_rate (absolute).
    pub uplift: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// uplift / control_rate; `null` when control_rate is 0.
    pub relative_uplift: Option<f64>,
    pub p_value: Option<f64>,
    pub significant: bool,
    pub treated_revenue_per_customer: Option<f64>,
    pub control_revenue_per_customer: Option<f64>,
    pub revenue_uplift: Option<f64>,
    pub revenue_ci_low: Option<f64>,
    pub revenue_ci_high: Option<f64>,
}

/// The whole campaign report (the JSON of `GET /campaigns/{id}/report`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub campaign_id: String,
    pub esp: String,
    pub state: String,
    pub send_at: Option<String>,
    pub metric: Metric,
    pub conversions_window_days: u32,
    pub variants: Vec<VariantReport>,
    pub total: GroupStats,
    pub ab_test: Option<AbTest>,
    pub control: Option<ControlReport>,
}

/// Builds the report; never fails (degenerate inputs give `null`s).
pub fn build_report(input: &ReportInput) -> Report {
    let variants: Vec<VariantReport> = input.variants.iter().map(variant_report).collect();
    let total = total_stats(&input.variants);
    let ab_test = ab_test(input.metric, &variants);
    let control = input
        .control
        .as_ref()
        .and_then(|c| control_report(total.conversions.as_ref()?, c));
    Report {
        campaign_id: input.campaign_id.clone(),
        esp: input.esp.clone(),
        state: input.state.clone(),
        send_at: input.send_at.clone(),
        metric: input.metric,
        conversions_window_days: input.conversions_window_days,
        variants,
        total,
        ab_test,
        control,
    }
}

/// Sorted by day; of two entries for one day the later in the input wins.
fn sorted_daily(daily: &[DailyCounts]) -> Vec<DailyCounts> {
    let mut out: Vec<DailyCounts> = Vec::with_capacity(daily.len());
    let mut sorted = daily.to_vec();
    sorted.sort_by_key(|d| d.day); // stable: input order kept within a day
    for d in sorted {
        match out.last_mut() {
            Some(last) if last.day == d.day => *last = d,
            _ => out.push(d),
        }
    }
    out
}

fn group_stats(
    assigned: u64,
    daily: Vec<DailyCounts>,
    conversions: Option<GroupConversions>,
) -> GroupStats {
    let latest = daily.last().cloned().unwrap_or(DailyCounts::zero(0));
    let rates = Rates {
        delivery_rate: stats::wilson(latest.delivered, latest.sent),
        open_rate: stats::wilson(latest.opens, latest.delivered),
        click_rate: stats::wilson(latest.clicks, latest.delivered),
        click_to_open_rate: stats::wilson(latest.clicks, latest.opens),
        unsubscribe_rate: stats::wilson(latest.unsubscribes, latest.delivered),
        conversion_rate: conversions
            .as_ref()
            .and_then(|c| stats::wilson(c.converters, c.customers)),
    };
    let revenue_per_customer = conversions
        .as_ref()
        .filter(|c| c.customers > 0)
        .map(|c| c.revenue / c.customers as f64);
    GroupStats {
        assigned,
        sent: latest.sent,
        delivered: latest.delivered,
        opens: latest.opens,
        clicks: latest.clicks,
        unsubscribes: latest.unsubscribes,
        rates,
        conversions,
        revenue_per_customer,
        daily,
    }
}

fn variant_report(v: &VariantInput) -> VariantReport {
    VariantReport {
        name: v.name.clone(),
        template_id: v.template_id.clone(),
        stats: group_stats(v.assigned, sorted_daily(&v.daily), v.conversions.clone()),
    }
}

/// Sums the variants. The daily series runs over the union of their days; a
/// variant without an entry for a day counts with its latest earlier entry
/// (the counts are cumulative), or 0 before its first. Conversions are summed
/// only when every variant has them.
fn total_stats(variants: &[VariantInput]) -> GroupStats {
    let series: Vec<Vec<DailyCounts>> = variants.iter().map(|v| sorted_daily(&v.daily)).collect();
    let mut days: Vec<u32> = series.iter().flatten().map(|d| d.day).collect();
    days.sort_unstable();
    days.dedup();
    let daily = days
        .iter()
        .map(|&day| {
            let mut sum = DailyCounts::zero(day);
            for s in &series {
                if let Some(d) = s.iter().rev().find(|d| d.day <= day) {
                    sum.sent += d.sent;
                    sum.delivered += d.delivered;
                    sum.opens += d.opens;
                    sum.clicks += d.clicks;
                    sum.unsubscribes += d.unsubscribes;
                }
            }
            sum
        })
        .collect();
    let conversions = variants
        .iter()
        .map(|v| v.conversions.as_ref())
        .try_fold(None::<GroupConversions>, |acc, c| {
            let c = c?;
            Some(Some(match acc {
                None => c.clone(),
                Some(a) => GroupConversions {
                    customers: a.customers + c.customers,
                    converters: a.converters + c.converters,
                    revenue: a.revenue + c.revenue,
                    revenue_sq: a.revenue_sq + c.revenue_sq,
                },
            }))
        })
        .flatten();
    let assigned = variants.iter().map(|v| v.assigned).sum();
    group_stats(assigned, daily, conversions)
}

/// What a metric's rate is divided by, for the "no test" verdict.
fn denominator(metric: Metric) -> &'static str {
    match metric {
        Metric::OpenRate | Metric::ClickRate | Metric::UnsubscribeRate => "delivered messages",
        Metric::ClickToOpenRate => "opens",
        Metric::ConversionRate => "customers with conversions data",
    }
}

fn no_test(metric: Metric, test: &str, verdict: String) -> AbTest {
    AbTest {
        metric,
        test: test.to_string(),
        statistic: None,
        df: None,
        p_value: None,
        alpha: ALPHA,
        significant: false,
        winner: None,
        verdict,
        pairwise: None,
        note: None,
    }
}

/// The A/B test; `None` with fewer than 2 variants.
fn ab_test(metric: Metric, variants: &[VariantReport]) -> Option<AbTest> {
    let k = variants.len();
    if k < 2 {
        return None;
    }
    let test = if k == 2 {
        "two_proportion_z"
    } else {
        "chi_squared"
    };
    let mut rates: Vec<(&VariantReport, Rate)> = Vec::with_capacity(k);
    for v in variants {
        match v.stats.rates.get(metric) {
            Some(r) => rates.push((v, *r)),
            None => {
                let verdict = format!(
                    "no test: variant {:?} has no {} (zero denominator for {})",
                    v.name,
                    denominator(metric),
                    metric
                );
                return Some(no_test(metric, test, verdict));
            }
        }
    }
    // Highest rate first; ties keep the input order.
    let mut ranked = rates.clone();
    ranked.sort_by(|a, b| b.1.value.total_cmp(&a.1.value));
    let (best, runner) = (&ranked[0], &ranked[1]);
    let pair = stats::two_proportion_z(
        best.1.successes,
        best.1.trials,
        runner.1.successes,
        runner.1.trials,
    )?;
    let pair_alpha = ALPHA / (k - 1) as f64;
    let pairwise = Pairwise {
        best: best.0.name.clone(),
        runner_up: runner.0.name.clone(),
        z: pair.z,
        p_value: pair.p_value,
        alpha: pair_alpha,
    };
    let (statistic, df, p_value) = if k == 2 {
        (pair.z, None, pair.p_value)
    } else {
        let table: Vec<(u64, u64)> = rates.iter().map(|(_, r)| (r.successes, r.trials)).collect();
        let chi = stats::chi_squared_homogeneity(&table)?;
        (chi.statistic, Some(chi.df), chi.p_value)
    };
    let significant = p_value < ALPHA;
    let beats_runner = pair.p_value < pair_alpha && best.1.value > runner.1.value;
    let winner = (significant && beats_runner).then(|| best.0.name.clone());
    let verdict = match &winner {
        Some(w) => format!("{w} wins on {metric}"),
        None => "no significant winner".to_string(),
    };
    let note = (significant && winner.is_none()).then(|| {
        format!(
            "the variants differ (p = {p_value:.4}) but {:?} does not beat {:?} at the Bonferroni level {pair_alpha:.4} (p = {:.4})",
            best.0.name, runner.0.name, pair.p_value
        )
    });
    Some(AbTest {
        metric,
        test: test.to_string(),
        statistic: Some(statistic),
        df,
        p_value: Some(p_value),
        alpha: ALPHA,
        significant,
        winner,
        verdict,
        pairwise: Some(pairwise),
        note,
    })
}

fn control_report(treated: &GroupConversions, control: &GroupConversions) -> Option<ControlReport> {
    let rate = |c: &GroupConversions| {
        (c.customers > 0).then(|| c.converters.min(c.customers) as f64 / c.customers as f64)
    };
    let (treated_rate, control_rate) = (rate(treated), rate(control));
    let diff = stats::wald_difference(
        treated.converters,
        treated.customers,
        control.converters,
        control.customers,
    );
    let z = stats::two_proportion_z(
        treated.converters,
        treated.customers,
        control.converters,
        control.customers,
    );
    let uplift = diff.map(|d| d.diff);
    let relative_uplift = match (uplift, control_rate) {
        (Some(u), Some(c)) if c > 0.0 => Some(u / c),
        _ => None,
    };
    let welch = stats::welch_difference(
        (treated.customers, treated.revenue, treated.revenue_sq),
        (control.customers, control.revenue, control.revenue_sq),
    );
    let per_customer =
        |c: &GroupConversions| (c.customers > 0).then(|| c.revenue / c.customers as f64);
    Some(ControlReport {
        treated_customers: treated.customers,
        control_customers: control.customers,
        treated_converters: treated.converters,
        control_converters: control.converters,
        treated_rate,
        control_rate,
        uplift,
        ci_low: diff.map(|d| d.ci_low),
        ci_high: diff.map(|d| d.ci_high),
        relative_uplift,
        p_value: z.map(|z| z.p_value),
        significant: z.is_some_and(|z| z.p_value < ALPHA),
        treated_revenue_per_customer: per_customer(treated),
        control_revenue_per_customer: per_customer(control),
        revenue_uplift: welch.map(|w| w.0),
        revenue_ci_low: welch.and_then(|w| w.1).map(|i| i.0),
        revenue_ci_high: welch.and_then(|w| w.1).map(|i| i.1),
    })
}
