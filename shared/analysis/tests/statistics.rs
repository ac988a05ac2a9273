//! Statistics and report rules against reference values.
//!
//! Every expected number below was computed independently with Python 3
//! (scipy 1.x, statsmodels 0.14) — never by this crate:
//! z-tests with `statsmodels.stats.proportion.proportions_ztest([x1,x2],[n1,n2])`
//! (pooled, two-sided), chi-squared with
//! `scipy.stats.chi2_contingency(table, correction=False)` on the k×2 table of
//! (successes, failures), Wilson intervals with
//! `statsmodels.stats.proportion.proportion_confint(x, n, alpha=0.05, method="wilson")`,
//! the Wald and Welch intervals with numpy and `scipy.stats.norm.ppf(0.975)`
//! (Welch from the raw per-customer revenues, variances with ddof=1).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_analysis::stats::{
    chi_squared_homogeneity, two_proportion_z, wald_difference, welch_difference, wilson,
};
use espbridge_analysis::{
    DailyCounts, GroupConversions, Metric, ReportInput, VariantInput, build_report,
};

fn close(actual: f64, expected: f64) {
    let tol = 1e-9 * expected.abs().max(1e-3);
    assert!(
        (actual - expected).abs() <= tol,
        "actual {actual} expected {expected}"
    );
}

#[test]
fn z_test_significant_pair() {
    // proportions_ztest([120, 90], [1000, 1000])
    let t = two_proportion_z(120, 1000, 90, 1000).unwrap();
    close(t.z, 2.1882658846227234);
    close(t.p_value, 0.028650240398448473);
}

#[test]
fn z_test_not_significant_pair() {
    // proportions_ztest([52, 48], [1000, 1000])
    let t = two_proportion_z(52, 1000, 48, 1000).unwrap();
    close(t.z, 0.4103913408340613);
    close(t.p_value, 0.6815188972977639);
    let reversed = two_proportion_z(48, 1000, 52, 1000).unwrap();
    close(reversed.z, -0.4103913408340613);
}

#[test]
fn z_test_degenerate_inputs() {
    assert!(two_proportion_z(1, 0, 1, 10).is_none());
    // Both groups all failures: identical, no evidence of a difference.
    let t = two_proportion_z(0, 10, 0, 20).unwrap();
    assert_eq!((t.z, t.p_value), (0.0, 1.0));
}

#[test]
fn chi_squared_three_variants() {
    // chi2_contingency([[100,900],[130,870],[90,910]], correction=False)
    let t = chi_squared_homogeneity(&[(100, 1000), (130, 1000), (90, 1000)]).unwrap();
    close(t.statistic, 9.095149253731343);
    close(t.p_value, 0.0105928649030583);
    assert_eq!(t.df, 2);
    // Unequal sizes: [[30,470],[45,755],[20,280]]
    let t = chi_squared_homogeneity(&[(30, 500), (45, 800), (20, 300)]).unwrap();
    close(t.statistic, 0.42897942530745464);
    close(t.p_value, 0.8069531130953013);
}

#[test]
fn chi_squared_four_variants() {
    // chi2_contingency([[100,900],[115,885],[95,905],[120,880]], correction=False)
    let t = chi_squared_homogeneity(&[(100, 1000), (115, 1000), (95, 1000), (120, 1000)]).unwrap();
    close(t.statistic, 4.4296788482834994);
    close(t.p_value, 0.2186491966273843);
    assert_eq!(t.df, 3);
}

#[test]
fn chi_squared_degenerate_inputs() {
    assert!(chi_squared_homogeneity(&[(1, 10)]).is_none());
    assert!(chi_squared_homogeneity(&[(1, 10), (0, 0), (2, 10)]).is_none());
    let t = chi_squared_homogeneity(&[(0, 10), (0, 20), (0, 5)]).unwrap();
    assert_eq!((t.statistic, t.p_value, t.df), (0.0, 1.0, 2));
}

#[test]
fn wilson_intervals() {
    // proportion_confint(x, n, alpha=0.05, method="wilson")
    let cases = [
        (30, 200, 0.10713593562241994, 0.2060557928416666),
        (0, 50, 0.0, 0.07134759913335874),
        (50, 50, 0.9286524008666412, 1.0),
        (1, 3, 0.06149194472039626, 0.7923403991979523),
    ];
    for (x, n, lo, hi) in cases {
        let r = wilson(x, n).unwrap();
        close(r.value, x as f64 / n as f64);
        close(r.ci_low, lo);
        close(r.ci_high, hi);
        assert_eq!((r.successes, r.trials), (x, n));
    }
    assert!(wilson(0, 0).is_none());
}

#[test]
fn wald_difference_interval() {
    // p1 = 600/10000, p2 = 50/1000; diff ± norm.ppf(0.975)*sqrt(p1q1/n1 + p2q2/n2)
    let d = wald_difference(600, 10000, 50, 1000).unwrap();
    close(d.diff, 0.009999999999999995);
    close(d.ci_low, -0.004287586280813355);
    close(d.ci_high, 0.024287586280813345);
    assert!(wald_difference(1, 0, 1, 1).is_none());
}

#[test]
fn welch_revenue_interval() {
    // a = [0]*7 + [10, 20, 50] (Σ 80, Σx² 3000); b = [0]*8 + [5, 15] (Σ 20, Σx² 250)
    // diff of means ± norm.ppf(0.975)*sqrt(var(a,ddof=1)/10 + var(b,ddof=1)/10)
    let (diff, ci) = welch_difference((10, 80.0, 3000.0), (10, 20.0, 250.0)).unwrap();
    close(diff, 6.0);
    let (lo, hi) = ci.unwrap();
    close(lo, -4.473537643447415);
    close(hi, 16.473537643447415);
    // n < 2: a difference but no interval.
    let (diff, ci) = welch_difference((1, 7.0, 49.0), (10, 20.0, 250.0)).unwrap();
    close(diff, 5.0);
    assert!(ci.is_none());
    assert!(welch_difference((0, 0.0, 0.0), (10, 20.0, 250.0)).is_none());
}

// ---- report rules ----

fn day(day: u32, delivered: u64, opens: u64, clicks: u64, unsubscribes: u64) -> DailyCounts {
    DailyCounts {
        day,
        sent: delivered + delivered / 50,
        delivered,
        opens,
        clicks,
        unsubscribes,
    }
}

/// A variant whose latest day has `clicks` of `delivered`.
fn variant(name: &str, delivered: u64, clicks: u64) -> VariantInput {
    VariantInput {
        name: name.to_string(),
        template_id: format!("tpl-{name}"),
        assigned: delivered + 20,
        daily: vec![
            day(1, delivered, clicks * 2, clicks / 2, 1),
            day(0, delivered, clicks, clicks / 4, 0),
            day(2, delivered, clicks * 3, clicks, 2),
        ],
        conversions: None,
    }
}

fn input(variants: Vec<VariantInput>, control: Option<GroupConversions>) -> ReportInput {
    ReportInput {
        campaign_id: "cmp-1".into(),
        esp: "bronto".into(),
        state: "sent".into(),
        send_at: Some("2026-11-20T09:00:00Z".into()),
        metric: Metric::ClickRate,
        variants,
        control,
        conversions_window_days: 7,
    }
}

#[test]
fn two_variants_significant_winner() {
    let r = build_report(&input(
        vec![variant("A", 1000, 90), variant("B", 1000, 120)],
        None,
    ));
    let ab = r.ab_test.unwrap();
    assert_eq!(ab.test, "two_proportion_z");
    // proportions_ztest([120, 90], [1000, 1000]): best (B) against runner-up
    close(ab.statistic.unwrap(), 2.1882658846227234);
    close(ab.p_value.unwrap(), 0.028650240398448473);
    assert!(ab.significant);
    assert_eq!(ab.winner.as_deref(), Some("B"));
    assert_eq!(ab.verdict, "B wins on click_rate");
    let pw = ab.pairwise.unwrap();
    assert_eq!((pw.best.as_str(), pw.runner_up.as_str()), ("B", "A"));
    assert_eq!(ab.df, None);
}

#[test]
fn two_variants_no_significant_winner() {
    let r = build_report(&input(
        vec![variant("A", 1000, 52), variant("B", 1000, 48)],
        None,
    ));
    let ab = r.ab_test.unwrap();
    close(ab.p_value.unwrap(), 0.6815188972977639);
    assert!(!ab.significant);
    assert_eq!(ab.winner, None);
    assert_eq!(ab.verdict, "no significant winner");
}

#[test]
fn three_variants_winner_beats_runner_up() {
    // chi2 p = 9.113345300809959e-07; B vs A: proportions_ztest([160,100]) p = 6.624739218326124e-05
    let r = build_report(&input(
        vec![
            variant("A", 1000, 100),
            variant("B", 1000, 160),
            variant("C", 1000, 90),
        ],
        None,
    ));
    let ab = r.ab_test.unwrap();
    assert_eq!(ab.test, "chi_squared");
    close(ab.statistic.unwrap(), 27.81671159029649);
    close(ab.p_value.unwrap(), 9.113345300809959e-07);
    assert_eq!(ab.df, Some(2));
    let pw = ab.pairwise.as_ref().unwrap();
    close(pw.z, 3.9893758112510813);
    close(pw.p_value, 6.624739218326124e-05);
    close(pw.alpha, 0.025);
    assert_eq!(ab.winner.as_deref(), Some("B"));
}

#[test]
fn three_variants_significant_omnibus_but_runner_up_not_beaten() {
    // chi2 p = 0.0105928649030583 < 0.05, but B (130) vs A (100):
    // proportions_ztest([130,100],[1000,1000]) p = 0.03548845046647471 > 0.05/2
    let r = build_report(&input(
        vec![
            variant("A", 1000, 100),
            variant("B", 1000, 130),
            variant("C", 1000, 90),
        ],
        None,
    ));
    let ab = r.ab_test.unwrap();
    close(ab.p_value.unwrap(), 0.0105928649030583);
    assert!(ab.significant);
    let pw = ab.pairwise.as_ref().unwrap();
    close(pw.p_value, 0.03548845046647471);
    assert_eq!(ab.winner, None);
    assert_eq!(ab.verdict, "no significant winner");
    assert!(ab.note.unwrap().contains("Bonferroni"));
}

#[test]
fn four_variants() {
    // chi2_contingency, 4×2, correction=False: statistic 25.359298830542297, p 1.298728176669884e-05;
    // best B (100) vs runner-up D (60): p = 0.0009775747711928398 < 0.05/3
    let r = build_report(&input(
        vec![
            variant("A", 1000, 50),
            variant("B", 1000, 100),
            variant("C", 1000, 55),
            variant("D", 1000, 60),
        ],
        None,
    ));
    let ab = r.ab_test.unwrap();
    close(ab.statistic.unwrap(), 25.359298830542297);
    close(ab.p_value.unwrap(), 1.298728176669884e-05);
    assert_eq!(ab.df, Some(3));
    assert_eq!(ab.pairwise.as_ref().unwrap().runner_up, "D");
    assert_eq!(ab.winner.as_deref(), Some("B"));
    // Not significant: 100, 115, 95, 120 of 1000 (p = 0.2186491966273843).
    let r = build_report(&input(
        vec![
            variant("A", 1000, 100),
            variant("B", 1000, 115),
            variant("C", 1000, 95),
            variant("D", 1000, 120),
        ],
        None,
    ));
    let ab = r.ab_test.unwrap();
    close(ab.p_value.unwrap(), 0.2186491966273843);
    assert_eq!((ab.winner, ab.significant), (None, false));
}

#[test]
fn zero_denominator_means_no_test() {
    let mut empty = variant("B", 0, 0);
    empty.daily.clear();
    let r = build_report(&input(vec![variant("A", 1000, 90), empty], None));
    let ab = r.ab_test.unwrap();
    assert_eq!(
        (ab.p_value, ab.winner.clone(), ab.statistic),
        (None, None, None)
    );
    assert!(ab.verdict.contains("no test"), "{}", ab.verdict);
    assert!(ab.verdict.contains("delivered"), "{}", ab.verdict);
    assert!(r.variants[1].stats.rates.click_rate.is_none());
    // Conversion metric without conversions data: no test either.
    let mut i = input(vec![variant("A", 1000, 90), variant("B", 1000, 120)], None);
    i.metric = Metric::ConversionRate;
    let ab = build_report(&i).ab_test.unwrap();
    assert_eq!(ab.p_value, None);
    assert!(ab.verdict.contains("conversions"), "{}", ab.verdict);
}

#[test]
fn one_variant_has_no_ab_test_and_no_control_means_null() {
    let r = build_report(&input(vec![variant("all", 1000, 90)], None));
    assert!(r.ab_test.is_none());
    assert!(r.control.is_none());
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["ab_test"].is_null());
    assert!(json["control"].is_null());
    assert!(json["variants"][0]["rates"]["conversion_rate"].is_null());
}

#[test]
fn counts_rates_and_total_from_latest_day() {
    let r = build_report(&input(
        vec![variant("A", 1000, 90), variant("B", 500, 40)],
        None,
    ));
    let a = &r.variants[0];
    // Daily input was out of order: the series is sorted and the counts are day 2's.
    assert_eq!(
        a.stats.daily.iter().map(|d| d.day).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(
        (a.stats.opens, a.stats.clicks, a.stats.unsubscribes),
        (270, 90, 2)
    );
    close(a.stats.rates.click_rate.unwrap().value, 0.09);
    close(
        a.stats.rates.click_to_open_rate.unwrap().value,
        90.0 / 270.0,
    );
    close(a.stats.rates.delivery_rate.unwrap().value, 1000.0 / 1020.0);
    assert_eq!(r.total.delivered, 1500);
    assert_eq!(r.total.clicks, 130);
    assert_eq!(r.total.assigned, 1540);
    assert_eq!(r.total.daily.len(), 3);
    assert_eq!(r.total.daily[1].opens, 180 + 80);
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "name",
        "template_id",
        "assigned",
        "sent",
        "delivered",
        "opens",
        "clicks",
        "unsubscribes",
        "rates",
        "revenue_per_customer",
        "daily",
    ] {
        assert!(json["variants"][0].get(key).is_some(), "missing {key}");
    }
    for key in ["value", "ci_low", "ci_high"] {
        assert!(json["total"]["rates"]["open_rate"].get(key).is_some());
    }
    let back: espbridge_analysis::Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn total_carries_forward_a_variant_missing_a_day() {
    let mut b = variant("B", 500, 40);
    b.daily.retain(|d| d.day != 1);
    let r = build_report(&input(vec![variant("A", 1000, 90), b], None));
    // Day 1: A's day 1 (180 opens) + B's day 0 (40 opens).
    assert_eq!(r.total.daily[1].opens, 180 + 40);
}

#[test]
fn control_uplift() {
    let conv = |customers, converters, revenue, revenue_sq| GroupConversions {
        customers,
        converters,
        revenue,
        revenue_sq,
    };
    let mut a = variant("A", 1000, 90);
    let mut b = variant("B", 1000, 120);
    // Treated: 6000 + 4000 customers, 600 converters; revenue as in welch_revenue_interval, scaled.
    a.conversions = Some(conv(6000, 350, 40.0, 1500.0));
    b.conversions = Some(conv(4000, 250, 40.0, 1500.0));
    let r = build_report(&input(vec![a, b], Some(conv(1000, 50, 20.0, 250.0))));
    let c = r.control.unwrap();
    assert_eq!((c.treated_customers, c.control_customers), (10000, 1000));
    // Wald: p1 = 600/10000, p2 = 50/1000 (see wald_difference_interval);
    // proportions_ztest([600, 50], [10000, 1000]) p = 0.20100186483939164.
    close(c.treated_rate.unwrap(), 0.06);
    close(c.control_rate.unwrap(), 0.05);
    close(c.uplift.unwrap(), 0.009999999999999995);
    close(c.ci_low.unwrap(), -0.004287586280813355);
    close(c.ci_high.unwrap(), 0.024287586280813345);
    close(c.relative_uplift.unwrap(), 0.2);
    close(c.p_value.unwrap(), 0.20100186483939164);
    assert!(!c.significant);
    close(c.treated_revenue_per_customer.unwrap(), 0.008);
    close(c.control_revenue_per_customer.unwrap(), 0.02);
    close(c.revenue_uplift.unwrap(), 0.008 - 0.02);
    assert!(c.revenue_ci_low.unwrap() < -0.012 && c.revenue_ci_high.unwrap() > -0.012);
    let rates = &r.variants[0].stats.rates;
    close(rates.conversion_rate.unwrap().value, 350.0 / 6000.0);
    close(r.total.revenue_per_customer.unwrap(), 0.008);
}

#[test]
fn control_with_zero_control_rate_has_no_relative_uplift() {
    let mut a = variant("all", 1000, 90);
    a.conversions = Some(GroupConversions {
        customers: 100,
        converters: 5,
        revenue: 50.0,
        revenue_sq: 500.0,
    });
    let zero = GroupConversions {
        customers: 1,
        converters: 0,
        revenue: 0.0,
        revenue_sq: 0.0,
    };
    let c = build_report(&input(vec![a], Some(zero))).control.unwrap();
    close(c.uplift.unwrap(), 0.05);
    assert_eq!(c.relative_uplift, None);
    // One control customer: no variance, so no revenue interval.
    assert_eq!((c.revenue_ci_low, c.revenue_ci_high), (None, None));
    close(c.revenue_uplift.unwrap(), 0.5);
}

#[test]
fn metric_names() {
    assert_eq!(Metric::parse("click_rate"), Ok(Metric::ClickRate));
    assert_eq!(
        Metric::parse(" Click-To-Open-Rate "),
        Ok(Metric::ClickToOpenRate)
    );
    assert!(Metric::parse("ctr").is_err());
    assert_eq!(Metric::default(), Metric::ClickRate);
    assert_eq!(
        serde_json::to_string(&Metric::UnsubscribeRate).unwrap(),
        "\"unsubscribe_rate\""
    );
    let i: ReportInput = serde_json::from_str(
        r#"{"campaign_id":"c","esp":"bronto","state":"sent","send_at":null,"variants":[],"control":null,"conversions_window_days":7}"#,
    )
    .unwrap();
    assert_eq!(i.metric, Metric::ClickRate);
}
