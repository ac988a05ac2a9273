//! `render_night_html`: the night report as one self-contained page, in the campaign report's
//! style (its CSS, KPI tiles, cards and tables) and under the same rules: no external resource,
//! every text escaped.
//!
//! One chart, `<svg data-chart="states">`: the night's campaigns as one bar split by state,
//! each state in its own colour ([`STATE_COLOURS`]) on the tint [`TINT_STATES`]. Failed
//! campaigns' rows are tinted [`TINT_FAILED`] in both tables, so a screenshot finds them (the
//! Chromium test does).

use super::fmt::{self, esc};
use super::svg;
use super::{CSS, card, kpi};
use crate::night::{NightCampaign, NightReport};
use crate::stats::Rate;
use std::fmt::Write;

/// Background of the state bar.
pub const TINT_STATES: &str = "#f4f6f0";
/// Background of a failed campaign's row.
pub const TINT_FAILED: &str = "#fde8e4";
/// Background of a partially scheduled campaign's row.
pub const TINT_ATTENTION: &str = "#fff4d6";
/// Each state's colour in the bar and on its badge (failures red, attention amber, the rest
/// the report palette's hues).
pub const STATE_COLOURS: [(&str, &str); 9] = [
    ("failed", "#C0392B"),
    ("partially_scheduled", "#E69F00"),
    ("received", "#9AA5B1"),
    ("uploading", "#56B4E9"),
    ("audience_ready", "#44AA99"),
    ("scheduled", "#0072B2"),
    ("collecting", "#882255"),
    ("completed", "#009E73"),
    ("cancelled", "#616E7C"),
];

const NIGHT_CSS: &str = r#"
main{max-width:1320px}
table.night th,table.night td{padding:7px 6px}
th.reason{text-align:left}
tr.failed td{background:#fde8e4}
tr.attention td{background:#fff4d6}
.badge{display:inline-block;border-radius:999px;padding:0 9px;color:#fff;font-size:12px;font-weight:600;white-space:nowrap}
td.reason{white-space:normal;text-align:left;overflow-wrap:anywhere;min-width:260px}
.note{color:#616e7c;font-size:13px}
"#;

fn colour(state: &str) -> &'static str {
    STATE_COLOURS
        .iter()
        .find(|(s, _)| *s == state)
        .map_or("#3e4c59", |(_, c)| c)
}

/// The row class of a campaign: failures and campaigns needing attention stand out.
fn row_class(c: &NightCampaign) -> &'static str {
    match c.state.as_str() {
        "failed" => "failed",
        "partially_scheduled" => "attention",
        _ => "",
    }
}

fn badge(state: &str) -> String {
    format!(
        r#"<span class="badge" style="background:{}">{}</span>"#,
        colour(state),
        esc(state)
    )
}

/// Renders the night as one self-contained HTML page.
pub fn render_night_html(r: &NightReport) -> String {
    let mut out = String::with_capacity(32 * 1024 + r.campaigns.len() * 600);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Night {} report</title><style>{CSS}{NIGHT_CSS}</style></head><body><main>"#,
        esc(&r.run_date)
    );
    header(&mut out, r);
    kpis(&mut out, r);
    card(&mut out, "Campaigns by state", &states_chart(r));
    let failures: Vec<&NightCampaign> = r
        .campaigns
        .iter()
        .filter(|c| c.failure.is_some() || !row_class(c).is_empty())
        .collect();
    if !failures.is_empty() {
        card(
            &mut out,
            "Failures and campaigns needing attention",
            &failures_table(&failures),
        );
    }
    card(&mut out, "Campaigns", &campaigns_table(r));
    if !r.rejected_by_reason.is_empty() {
        card(&mut out, "Rejected rows by reason", &rejects_table(r));
    }
    out.push_str("<footer>espbridge night report · self-contained page, no external resources</footer></main></body></html>\n");
    out
}

fn header(out: &mut String, r: &NightReport) {
    let _ = write!(
        out,
        r#"<header><div class="eyebrow">Night report</div><h1>{}</h1><div class="chips">"#,
        esc(&r.run_date)
    );
    let failed = r.states.get("failed").copied().unwrap_or(0);
    let attention = r.states.get("partially_scheduled").copied().unwrap_or(0);
    let chips = [
        ("Campaigns", fmt::count(r.totals.campaigns)),
        ("Failed", fmt::count(failed)),
        ("Partially scheduled", fmt::count(attention)),
    ];
    for (k, v) in chips {
        let _ = write!(out, r#"<span class="chip">{k}: <b>{}</b></span>"#, esc(&v));
    }
    if r.truncated {
        out.push_str(r#"<span class="chip"><b>More campaigns than this page holds: see GET /campaigns</b></span>"#);
    }
    out.push_str("</div></header>");
}

fn rate(x: Option<Rate>) -> String {
    x.map_or("–".to_string(), |x| fmt::pct(x.value))
}

fn kpis(out: &mut String, r: &NightReport) {
    let t = &r.totals;
    out.push_str(r#"<div class="kpis">"#);
    kpi(
        out,
        "Audience rows",
        &fmt::count(t.rows),
        &format!("{} valid", fmt::count(t.valid)),
    );
    kpi(
        out,
        "Rejected",
        &fmt::count(t.rejected),
        "rows refused by validation",
    );
    kpi(
        out,
        "Uploaded",
        &fmt::count(t.uploaded),
        "rows handed to the ESPs",
    );
    kpi(
        out,
        "Delivered",
        &fmt::count(t.delivered),
        &format!("of {} sent", fmt::count(t.sent)),
    );
    kpi(
        out,
        "Open rate",
        &rate(t.open_rate),
        &format!("{} unique opens", fmt::count(t.opens)),
    );
    kpi(
        out,
        "Click rate",
        &rate(t.click_rate),
        &format!("{} unique clicks", fmt::count(t.clicks)),
    );
    out.push_str("</div>");
}

/// One bar split by state, in [`STATE_COLOURS`] order, with a legend of the counts.
fn states_chart(r: &NightReport) -> String {
    let (w, h) = (1000.0, 130.0);
    let mut out = String::new();
    svg::open_chart(
        &mut out,
        "states",
        w,
        h,
        "Campaigns by state",
        "The night's campaigns as one bar, split by state",
        TINT_STATES,
    );
    let total = r.totals.campaigns;
    if total == 0 {
        svg::text(
            &mut out,
            w / 2.0,
            72.0,
            "middle",
            "note",
            "no campaigns this night",
        );
        out.push_str("</svg>");
        return out;
    }
    let (x0, x1, y) = (24.0, w - 24.0, 24.0);
    let mut x = x0;
    let (mut lx, mut ly) = (x0, 100.0);
    for (state, c) in STATE_COLOURS {
        let n = r.states.get(state).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        let width = (x1 - x0) * n as f64 / total as f64;
        let _ = write!(
            out,
            r#"<rect data-state="{state}" x="{x:.1}" y="{y}" width="{width:.1}" height="44" fill="{c}"><title>{state}: {n}</title></rect>"#
        );
        x += width;
        let label = format!("{state} {n}");
        let lw = 30.0 + 7.5 * label.len() as f64;
        if lx + lw > x1 && lx > x0 {
            lx = x0;
            ly += 20.0;
        }
        let _ = write!(
            out,
            r#"<rect x="{lx:.1}" y="{:.1}" width="14" height="14" rx="3" fill="{c}"/>"#,
            ly - 11.0
        );
        svg::text(&mut out, lx + 20.0, ly, "start", "legend", &label);
        lx += lw;
    }
    out.push_str("</svg>");
    out
}

fn esp_cell(c: &NightCampaign) -> String {
    match (&c.esp, &c.account) {
        (Some(e), Some(a)) => format!("{e} / {a}"),
        (Some(e), None) => e.clone(),
        _ => "–".to_string(),
    }
}

fn failures_table(cs: &[&NightCampaign]) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table><thead><tr><th>Campaign</th><th>ESP / account</th><th>State</th><th>Step</th><th class="reason">Reason</th></tr></thead><tbody>"#,
    );
    for c in cs {
        let (step, reason) = c
            .failure
            .as_ref()
            .map_or(("–", "–"), |f| (f.step.as_str(), f.reason.as_str()));
        let _ = write!(
            out,
            r#"<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="reason">{}</td></tr>"#,
            row_class(c),
            esc(&c.campaign_id),
            esc(&esp_cell(c)),
            badge(&c.state),
            esc(step),
            esc(reason)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

fn campaigns_table(r: &NightReport) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table class="night"><thead><tr><th>Campaign · ESP / account</th><th>State</th><th>Send at</th><th>Rows</th><th>Valid</th><th>Rejected</th><th>Uploaded</th><th>Sent</th><th>Delivered</th><th>Open</th><th>Click</th><th>Unsub.</th></tr></thead><tbody>"#,
    );
    for c in &r.campaigns {
        let a = &c.audience;
        let m = c.metrics.as_ref();
        let n = |f: fn(&crate::night::NightMetrics) -> u64| {
            m.map_or("–".to_string(), |m| fmt::count(f(m)))
        };
        let _ = write!(
            out,
            r#"<tr class="{}"><td>{}<span class="ci">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            row_class(c),
            esc(&c.campaign_id),
            esc(&esp_cell(c)),
            badge(&c.state),
            esc(&c.send_at.as_deref().map_or("–".to_string(), short_time)),
            fmt::count(a.rows),
            fmt::count(a.valid),
            fmt::count(a.rejected),
            fmt::count(a.uploaded),
            n(|m| m.sent),
            n(|m| m.delivered),
            rate(m.and_then(|m| m.open_rate)),
            rate(m.and_then(|m| m.click_rate)),
            rate(m.and_then(|m| m.unsubscribe_rate)),
        );
    }
    if r.campaigns.is_empty() {
        out.push_str(
            r#"<tr><td colspan="12" class="note">No campaign for this run date.</td></tr>"#,
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// `2026-11-25T06:30:00Z` as `2026-11-25 06:30Z`: the table stays within the page.
fn short_time(t: &str) -> String {
    match t.strip_suffix(":00Z") {
        Some(rest) if rest.len() == 16 => format!("{}Z", rest.replacen('T', " ", 1)),
        _ => t.to_owned(),
    }
}

fn rejects_table(r: &NightReport) -> String {
    let mut out =
        String::from(r#"<table><thead><tr><th>Reason</th><th>Rows</th></tr></thead><tbody>"#);
    for (reason, n) in &r.rejected_by_reason {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(reason),
            fmt::count(*n)
        );
    }
    out.push_str("</tbody></table>");
    out
}
