//! Campaign analysis (issue 6): per-variant counts and rates with intervals,
//! the A/B winner, uplift against a control group, and the self-contained
//! HTML report.
//!
//! The crate is pure: no AWS, no HTTP, no dependency on `espbridge-core`.
//! The caller converts its records into a [`ReportInput`], calls
//! [`build_report`] (the JSON of `GET /campaigns/{id}/report`) and
//! [`render_html`] (the page of `GET /campaigns/{id}/report.html`). Neither
//! fails: degenerate inputs give `null` fields, never NaN or a panic.
//!
//! # Modules
//! - [`input`]: the input types ([`ReportInput`], [`VariantInput`],
//!   [`DailyCounts`], [`GroupConversions`], [`Metric`]).
//! - [`stats`]: the statistics as plain functions of counts.
//! - [`report`]: [`build_report`] and the [`Report`] types.
//! - [`html`]: [`render_html`], its inline SVG charts and text helpers.
//! - [`rules`]: the rules below in short, as printed on the page.
//! - [`night`]: the night report ([`build_night_report`], [`render_night_html`]): every
//!   campaign of a run date, failures first.
//!
//! # Rules
//! **Counts.** Daily counts are cumulative since the send and opens and
//! clicks are unique people, so a variant's sent, delivered, opens, clicks and
//! unsubscribes are those of its latest day. The daily series is sorted by
//! day (of two entries for one day, the later one in the input wins). The
//! total sums the variants; its daily series runs over every day any variant
//! reports, and a variant missing a day counts with its latest earlier day
//! (0 before its first). The total's conversions are the sum of the variants'
//! conversions when every variant has them, else `null`.
//!
//! **Rates.** Delivery rate = delivered / sent. Open, click and unsubscribe
//! rates are over delivered messages. Click-to-open rate = clicks / opens.
//! Conversion rate = converters / customers of the group (the variant's
//! assigned customers as counted in its conversions; `null` without
//! conversions data). Each rate carries its Wilson score 95% interval
//! (z = 1.959964); a rate whose denominator is 0 is `null`. Revenue per
//! customer = revenue / customers.
//!
//! **A/B test** (only with 2 or more variants; `ab_test` is `null` with one).
//! The metric is the report's [`Metric`], unique click rate by default, and
//! alpha is 0.05.
//! - Two variants: pooled two-proportion z-test, two-sided. `statistic` is
//!   the z of the better variant against the other (so it is not negative).
//!   The variant with the higher rate wins when p < 0.05.
//! - Three or more variants: Pearson chi-squared test of homogeneity on the
//!   k×2 table of successes and failures, without continuity correction,
//!   df = k − 1. A winner is named only when this omnibus p < 0.05 **and** the
//!   best variant beats the runner-up in a pooled two-proportion z-test at
//!   0.05 / (k − 1) (Bonferroni). A significant omnibus test without that
//!   gives no winner, and `note` says why.
//! - `pairwise` is always the best against the runner-up (z, p and the level
//!   it is held to). Ties in rate keep the input order.
//! - `verdict` is "`<name>` wins on `<metric>`" (metric in snake_case, e.g.
//!   `click_rate`) or "no significant winner".
//! - When any variant has a zero denominator for the metric (nothing
//!   delivered, no opens for click-to-open, no conversions data for the
//!   conversion rate), no test is run: `statistic`, `p_value` and `winner`
//!   are `null` and the verdict starts with "no test:" and names the variant.
//!
//! **Control group** (`control` is `null` without one). Treated = the sum of
//! the variants' conversions; control = the held-out customers, never sent.
//! - uplift = treated conversion rate − control conversion rate (absolute),
//!   with the 95% Wald interval of a difference of two independent
//!   proportions: diff ± 1.959964·sqrt(p1(1−p1)/n1 + p2(1−p2)/n2).
//! - relative uplift = uplift / control rate, `null` when the control rate
//!   is 0; p from a pooled two-proportion z-test, two-sided; significant when
//!   p < 0.05.
//! - revenue uplift = treated − control revenue per customer, with the 95%
//!   Welch interval (m1 − m2) ± 1.959964·sqrt(s1²/n1 + s2²/n2), where each
//!   s² = (Σx² − n·mean²)/(n − 1) comes from `revenue` and `revenue_sq`; the
//!   interval is `null` when a group has fewer than 2 customers.
//!
//! **Degenerate counts.** A pooled proportion of 0 or 1 (both groups all
//! failures or all successes) gives z = 0 and p = 1; a chi-squared table
//! with an empty column gives statistic 0 and p = 1. Counts above their
//! denominator (e.g. more opens than deliveries) are capped at it.
//!
//! # The HTML page
//! One self-contained page: inline CSS, inline SVG, no script and no URL of
//! any kind. Every user-supplied text (campaign id, variant names, template
//! ids) is escaped. Three charts, each an `<svg data-chart="…">` with a
//! `<title>`: `daily` (cumulative unique opens, solid, and clicks, dashed; one
//! `<polyline>` per variant and series with a point per day), `rates` (one
//! panel per rate, each on its own scale: open, click, unsubscribe and
//! conversion when present; bars with Wilson whiskers) and `uplift` (a
//! forest plot of the conversion-rate and revenue uplift with their
//! intervals and the zero line, or the note "no control group"). Then the
//! tables of counts and rates, the A/B verdict with its p-value and the
//! statement of these rules. Variant colours are the Okabe–Ito/Tol palette
//! ([`html::PALETTE`]), chosen to stay distinguishable with colour-vision
//! deficiencies; each chart has a distinct background tint, which the
//! Chromium test uses to find it in a screenshot.
//!
//! # UNCERTAIN choices (the issue is silent)
//! - Conversion rate uses `GroupConversions::customers` as the denominator,
//!   expected to equal the variant's `assigned`; `assigned` is reported but
//!   not used in any rate.
//! - The total's conversions, and hence `control`, need conversions data for
//!   every variant; with some missing, `control` is `null` rather than
//!   comparing a part of the treated group.
//! - More than 8 variants are still tested with chi-squared (the manifest
//!   is expected to cap at 8).
//! - The Welch interval uses the normal quantile 1.959964 as the issue
//!   states, not Student's t with Welch–Satterthwaite degrees of freedom.
//! - The HTML prints revenue with two decimals and no currency: the report
//!   does not know the currency.

pub mod html;
pub mod input;
pub mod night;
pub mod report;
pub mod rules;
pub mod stats;

pub use html::{render_html, render_night_html};
pub use input::{DailyCounts, GroupConversions, Metric, ReportInput, UnknownMetric, VariantInput};
pub use night::{
    NightAudience, NightCampaign, NightFailure, NightMetrics, NightReport, NightTotals,
    build_night_report,
};
pub use report::{
    ALPHA, AbTest, ControlReport, GroupStats, Pairwise, Rates, Report, VariantReport, build_report,
};
pub use stats::Rate;
