//! The statistical rules in plain words, as shown on the HTML page. The
//! crate docs (lib.rs) state the same rules for readers of the code.

/// (topic, rule) pairs.
pub const RULES: &[(&str, &str)] = &[
    (
        "Counts",
        "Counts are cumulative since the send; opens and clicks are unique people. A variant's counts are those of its latest day; the total sums the variants, day by day (a variant missing a day counts with its latest earlier day).",
    ),
    (
        "Rates",
        "Delivery rate = delivered / sent. Open, click and unsubscribe rates are over delivered messages; click-to-open = clicks / opens; conversion rate = converters / customers of the group. Each comes with its Wilson score 95% interval; a rate whose denominator is 0 is not shown.",
    ),
    (
        "A/B test, two variants",
        "Pooled two-proportion z-test, two-sided, at alpha = 0.05 on the chosen metric (unique click rate by default). The variant with the higher rate wins when p < 0.05; otherwise there is no significant winner.",
    ),
    (
        "A/B test, three or more variants",
        "Pearson chi-squared test of homogeneity on the table of successes and failures per variant (no continuity correction), df = k - 1. A winner is named only when this p < 0.05 and the best variant also beats the runner-up in a pooled z-test at 0.05 / (k - 1) (Bonferroni).",
    ),
    (
        "No test",
        "When a variant has a zero denominator for the metric (nothing delivered, no opens, or no conversions data) no test is run and no winner is named.",
    ),
    (
        "Control group",
        "Treated = all variants' customers; control = the held-out customers, never sent. Uplift = treated conversion rate - control conversion rate, with a 95% Wald interval for the difference of two independent proportions; relative uplift = uplift / control rate; p from a pooled two-proportion z-test.",
    ),
    (
        "Revenue",
        "Revenue per customer = revenue / customers of the group. Its uplift is the difference of means with a 95% Welch interval (normal quantile 1.96, sample variances); no interval when a group has fewer than 2 customers.",
    ),
];
