//! `render_html`: the self-contained report page.
//!
//! No external resource of any kind (no scripts, fonts, images or style
//! sheets by URL): inline CSS and inline SVG charts drawn here. Every piece of
//! report text (campaign id, variant names, template ids) is escaped.

mod charts;
pub mod fmt;
mod night;
mod svg;

pub use night::{STATE_COLOURS, TINT_ATTENTION, TINT_FAILED, TINT_STATES, render_night_html};

pub use svg::{PALETTE, TINT_DAILY, TINT_RATES, TINT_UPLIFT, UPLIFT_COLOUR};

use crate::report::{AbTest, ControlReport, GroupStats, Report};
use crate::rules::RULES;
use crate::stats::Rate;
use fmt::esc;
use std::fmt::Write;

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;background:#eef1f5;color:#1f2933;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-font-smoothing:antialiased}
main{max-width:1080px;margin:0 auto;padding:32px 24px 48px}
header{margin-bottom:20px}
.eyebrow{text-transform:uppercase;letter-spacing:.08em;font-size:12px;color:#616e7c;font-weight:600}
h1{font-size:30px;margin:2px 0 10px;font-weight:700;overflow-wrap:anywhere}
h2{font-size:18px;margin:0 0 12px;font-weight:650}
.chips{display:flex;flex-wrap:wrap;gap:8px}
.chip{background:#fff;border:1px solid #d9dee5;border-radius:999px;padding:2px 12px;font-size:13px;color:#3e4c59}
.chip b{font-weight:600;color:#1f2933}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:20px 0}
.kpi{background:#fff;border-radius:12px;padding:14px 16px;box-shadow:0 1px 2px rgba(31,41,51,.08)}
.kpi .label{font-size:12px;color:#616e7c;text-transform:uppercase;letter-spacing:.05em}
.kpi .value{font-size:26px;font-weight:700;font-variant-numeric:tabular-nums}
.kpi .sub{font-size:12px;color:#616e7c}
.card{background:#fff;border-radius:14px;padding:20px 22px;margin:16px 0;box-shadow:0 1px 3px rgba(31,41,51,.1)}
.verdict{display:flex;gap:16px;align-items:center;border-left:6px solid #9aa5b1}
.verdict.win{border-left-color:#009E73}
.verdict .big{font-size:22px;font-weight:700}
.verdict .detail{color:#3e4c59;font-size:14px}
svg.chart{width:100%;height:auto;display:block}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#1f2933}
svg .tick{font-size:12px;fill:#616e7c}
svg .axis{font-size:13px;fill:#3e4c59}
svg .legend{font-size:14px}
svg .panel{font-size:14px;font-weight:650}
svg .value{font-size:12px;font-weight:600}
svg .note{font-size:22px;font-weight:650;fill:#616e7c}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:14px}
th,td{padding:7px 9px;text-align:right;border-bottom:1px solid #e4e7eb;white-space:nowrap}
th{white-space:normal;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#616e7c;font-weight:600}
th:first-child,td:first-child{text-align:left;white-space:normal;min-width:140px;overflow-wrap:anywhere}
tr.total td{font-weight:700;border-top:2px solid #cbd2d9}
.ci{display:block;color:#7b8794;font-size:12px}
.swatch{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:7px;vertical-align:baseline}
.scroll{overflow-x:auto}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(400px,1fr));gap:0 16px}
.pair .card{margin:16px 0 0}
table.kv td{white-space:normal}
dl.rules{display:grid;grid-template-columns:210px 1fr;gap:8px 18px;margin:0;font-size:14px}
dl.rules dt{font-weight:650}
dl.rules dd{margin:0;color:#3e4c59}
footer{color:#7b8794;font-size:12px;text-align:center;margin-top:24px}
"#;

/// Renders the report as one self-contained HTML page.
pub fn render_html(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Campaign {} report</title><style>{CSS}</style></head><body><main>"#,
        esc(&report.campaign_id)
    );
    header(&mut out, report);
    kpis(&mut out, report);
    verdict(&mut out, report.ab_test.as_ref());
    card(&mut out, "Daily opens and clicks", &charts::daily(report));
    card(&mut out, "Rates per variant", &charts::rates(report));
    card(&mut out, "Uplift against control", &charts::uplift(report));
    card(&mut out, "Counts", &counts_table(report));
    card(&mut out, "Rates with 95% intervals", &rates_table(report));
    // The two detail tables side by side when the page is wide enough.
    out.push_str(r#"<div class="pair">"#);
    if let Some(ab) = &report.ab_test {
        card(&mut out, "A/B test", &ab_table(ab));
    }
    if let Some(c) = &report.control {
        card(&mut out, "Treated against control", &control_table(c));
    }
    out.push_str("</div>");
    card(&mut out, "How these numbers are computed", &rules());
    out.push_str("<footer>espbridge campaign report · self-contained page, no external resources</footer></main></body></html>\n");
    out
}

fn card(out: &mut String, title: &str, body: &str) {
    let _ = write!(
        out,
        r#"<section class="card"><h2>{}</h2>{body}</section>"#,
        esc(title)
    );
}

fn header(out: &mut String, r: &Report) {
    let _ = write!(
        out,
        r#"<header><div class="eyebrow">Campaign report</div><h1>{}</h1><div class="chips">"#,
        esc(&r.campaign_id)
    );
    let chips = [
        ("ESP", r.esp.clone()),
        ("State", r.state.clone()),
        (
            "Sent at",
            r.send_at.clone().unwrap_or_else(|| "not sent".into()),
        ),
        ("A/B metric", r.metric.label().to_string()),
        (
            "Conversion window",
            format!("{} days", r.conversions_window_days),
        ),
    ];
    for (k, v) in chips {
        let _ = write!(out, r#"<span class="chip">{k}: <b>{}</b></span>"#, esc(&v));
    }
    out.push_str("</div></header>");
}

fn kpi(out: &mut String, label: &str, value: &str, sub: &str) {
    let _ = write!(
        out,
        r#"<div class="kpi"><div class="label">{}</div><div class="value">{}</div><div class="sub">{}</div></div>"#,
        esc(label),
        esc(value),
        esc(sub)
    );
}

fn kpis(out: &mut String, r: &Report) {
    let t = &r.total;
    out.push_str(r#"<div class="kpis">"#);
    let rate = |x: Option<Rate>| x.map_or("–".to_string(), |x| fmt::pct(x.value));
    let cards = [
        (
            "Delivered",
            fmt::count(t.delivered),
            format!("of {} sent", fmt::count(t.sent)),
        ),
        (
            "Open rate",
            rate(t.rates.open_rate),
            format!("{} unique opens", fmt::count(t.opens)),
        ),
        (
            "Click rate",
            rate(t.rates.click_rate),
            format!("{} unique clicks", fmt::count(t.clicks)),
        ),
        (
            "Unsubscribes",
            rate(t.rates.unsubscribe_rate),
            format!("{} people", fmt::count(t.unsubscribes)),
        ),
    ];
    for (label, value, sub) in &cards {
        kpi(out, label, value, sub);
    }
    if let Some(c) = &r.control {
        let value = c.uplift.map_or("–".to_string(), fmt::pp);
        kpi(out, "Conversion uplift", &value, "treated vs control");
    }
    out.push_str("</div>");
}

fn verdict(out: &mut String, ab: Option<&AbTest>) {
    let Some(ab) = ab else {
        let _ = write!(
            out,
            r#"<section class="card verdict"><div><div class="big">Single variant</div><div class="detail">No A/B test: this campaign has one variant.</div></div></section>"#
        );
        return;
    };
    let class = if ab.winner.is_some() {
        "verdict win"
    } else {
        "verdict"
    };
    let p = ab.p_value.map_or("no p-value".to_string(), fmt::p_value);
    let test = if ab.test == "chi_squared" {
        "chi-squared test"
    } else {
        "two-proportion z-test"
    };
    let _ = write!(
        out,
        r#"<section class="card {class}"><div><div class="big">{}</div><div class="detail">{} · {} on the {} · alpha {}{}</div></div></section>"#,
        esc(&ab.verdict),
        esc(&p),
        test,
        ab.metric.label(),
        ab.alpha,
        ab.note
            .as_deref()
            .map_or(String::new(), |n| format!(" · {}", esc(n)))
    );
}

fn name_cell(i: usize, name: &str) -> String {
    format!(
        r#"<span class="swatch" style="background:{}"></span>{}"#,
        svg::colour(i),
        esc(name)
    )
}

fn counts_row(out: &mut String, first: &str, template: &str, s: &GroupStats, class: &str) {
    let conv = s
        .conversions
        .as_ref()
        .map_or("–".to_string(), |c| fmt::count(c.converters));
    let rpc = s.revenue_per_customer.map_or("–".to_string(), fmt::amount);
    let _ = write!(
        out,
        r#"<tr class="{class}"><td>{first}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{conv}</td><td>{rpc}</td></tr>"#,
        esc(template),
        fmt::count(s.assigned),
        fmt::count(s.sent),
        fmt::count(s.delivered),
        fmt::count(s.opens),
        fmt::count(s.clicks),
        fmt::count(s.unsubscribes),
    );
}

fn counts_table(r: &Report) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table><thead><tr><th>Variant</th><th>Template</th><th>Assigned</th><th>Sent</th><th>Delivered</th><th>Opens</th><th>Clicks</th><th>Unsubscribes</th><th>Converters</th><th>Revenue / customer</th></tr></thead><tbody>"#,
    );
    for (i, v) in r.variants.iter().enumerate() {
        counts_row(
            &mut out,
            &name_cell(i, &v.name),
            &v.template_id,
            &v.stats,
            "",
        );
    }
    if r.variants.len() > 1 {
        counts_row(&mut out, "Total", "", &r.total, "total");
    }
    out.push_str("</tbody></table></div>");
    out
}

fn rate_cell(r: Option<Rate>) -> String {
    match r {
        Some(r) => format!(
            r#"<td>{} <span class="ci">{}–{}</span></td>"#,
            fmt::pct(r.value),
            fmt::pct(r.ci_low),
            fmt::pct(r.ci_high)
        ),
        None => "<td>–</td>".to_string(),
    }
}

fn rates_row(out: &mut String, first: &str, s: &GroupStats, class: &str) {
    let r = &s.rates;
    let _ = write!(out, r#"<tr class="{class}"><td>{first}</td>"#);
    for rate in [
        r.delivery_rate,
        r.open_rate,
        r.click_rate,
        r.click_to_open_rate,
        r.unsubscribe_rate,
        r.conversion_rate,
    ] {
        out.push_str(&rate_cell(rate));
    }
    out.push_str("</tr>");
}

fn rates_table(r: &Report) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table><thead><tr><th>Variant</th><th>Delivery</th><th>Open</th><th>Click</th><th>Click-to-open</th><th>Unsubscribe</th><th>Conversion</th></tr></thead><tbody>"#,
    );
    for (i, v) in r.variants.iter().enumerate() {
        rates_row(&mut out, &name_cell(i, &v.name), &v.stats, "");
    }
    if r.variants.len() > 1 {
        rates_row(&mut out, "Total", &r.total, "total");
    }
    out.push_str("</tbody></table></div>");
    out
}

fn kv_table(rows: &[(&str, String)]) -> String {
    let mut out = String::from(r#"<table class="kv"><tbody>"#);
    for (k, v) in rows {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
    }
    out.push_str("</tbody></table>");
    out
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("–".to_string(), f)
}

fn ab_table(ab: &AbTest) -> String {
    let mut rows = vec![
        ("Metric", ab.metric.label().to_string()),
        ("Test", ab.test.clone()),
        ("Statistic", opt(ab.statistic, |s| format!("{s:.4}"))),
        (
            "Degrees of freedom",
            ab.df.map_or("–".to_string(), |d| d.to_string()),
        ),
        ("p-value", opt(ab.p_value, fmt::p_number)),
        ("Alpha", ab.alpha.to_string()),
        (
            "Significant",
            if ab.significant { "yes" } else { "no" }.to_string(),
        ),
        (
            "Winner",
            ab.winner.clone().unwrap_or_else(|| "none".to_string()),
        ),
        ("Verdict", ab.verdict.clone()),
    ];
    if let Some(pw) = &ab.pairwise {
        rows.push((
            "Best against runner-up",
            format!(
                "{} vs {}: z = {:.4}, {} (level {:.4})",
                pw.best,
                pw.runner_up,
                pw.z,
                fmt::p_value(pw.p_value),
                pw.alpha
            ),
        ));
    }
    if let Some(n) = &ab.note {
        rows.push(("Note", n.clone()));
    }
    kv_table(&rows)
}

fn control_table(c: &ControlReport) -> String {
    let interval = |lo: Option<f64>, hi: Option<f64>, f: fn(f64) -> String| match lo.zip(hi) {
        Some((lo, hi)) => format!("{} to {}", f(lo), f(hi)),
        None => "–".to_string(),
    };
    let signed: fn(f64) -> String = |v| format!("{v:+.2}");
    kv_table(&[
        ("Treated customers", fmt::count(c.treated_customers)),
        ("Control customers", fmt::count(c.control_customers)),
        ("Treated conversion rate", opt(c.treated_rate, fmt::pct)),
        ("Control conversion rate", opt(c.control_rate, fmt::pct)),
        ("Uplift", opt(c.uplift, fmt::pp)),
        (
            "95% interval (Wald)",
            interval(c.ci_low, c.ci_high, fmt::pp),
        ),
        (
            "Relative uplift",
            opt(c.relative_uplift, |v| format!("{:+.1}%", v * 100.0)),
        ),
        ("p-value", opt(c.p_value, fmt::p_number)),
        (
            "Significant",
            if c.significant { "yes" } else { "no" }.to_string(),
        ),
        (
            "Treated revenue / customer",
            opt(c.treated_revenue_per_customer, fmt::amount),
        ),
        (
            "Control revenue / customer",
            opt(c.control_revenue_per_customer, fmt::amount),
        ),
        ("Revenue uplift / customer", opt(c.revenue_uplift, signed)),
        (
            "95% interval (Welch)",
            interval(c.revenue_ci_low, c.revenue_ci_high, signed),
        ),
    ])
}

fn rules() -> String {
    let mut out = String::from(r#"<dl class="rules">"#);
    for (topic, rule) in RULES {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(topic), esc(rule));
    }
    out.push_str("</dl>");
    out
}
