//! The three inline SVG charts: daily opens and clicks, rates with their
//! intervals, uplift against control (forest plot).

use super::fmt;
use super::svg::{self, Scale, colour, line, text};
use crate::report::{ControlReport, Rates, Report};
use crate::stats::Rate;
use std::fmt::Write;

const W: f64 = 1000.0;

/// Daily cumulative unique opens (solid) and clicks (dashed), one colour per
/// variant; one `<polyline>` per variant and series, one point per day.
pub fn daily(report: &Report) -> String {
    let h = 400.0;
    let (left, right, top, bottom) = (78.0, W - 28.0, 86.0, h - 52.0);
    let mut out = String::new();
    svg::open_chart(
        &mut out,
        "daily",
        W,
        h,
        "Daily unique opens and clicks per variant",
        "Cumulative unique opens (solid lines) and clicks (dashed lines) by day since the send.",
        svg::TINT_DAILY,
    );
    let names: Vec<&str> = report.variants.iter().map(|v| v.name.as_str()).collect();
    svg::legend(&mut out, &names, left, 32.0, right - 190.0);
    // Line-style key, top right.
    line(
        &mut out,
        (right - 170.0, 27.0),
        (right - 144.0, 27.0),
        svg::INK,
        2.5,
        "",
    );
    text(&mut out, right - 138.0, 32.0, "start", "legend", "opens");
    line(
        &mut out,
        (right - 84.0, 27.0),
        (right - 58.0, 27.0),
        svg::INK,
        2.5,
        r#"stroke-dasharray="6 4""#,
    );
    text(&mut out, right - 52.0, 32.0, "start", "legend", "clicks");

    let days = report
        .variants
        .iter()
        .flat_map(|v| v.stats.daily.iter().map(|d| d.day));
    let (dmin, dmax) = days.fold((u32::MAX, 0), |(lo, hi), d| (lo.min(d), hi.max(d)));
    let (dmin, dmax) = if dmin > dmax {
        (0, 1)
    } else {
        (dmin, dmax.max(dmin + 1))
    };
    let ymax = report
        .variants
        .iter()
        .flat_map(|v| v.stats.daily.iter().map(|d| d.opens.max(d.clicks)))
        .max()
        .unwrap_or(0) as f64;
    let yticks = svg::nice_ticks(0.0, ymax.max(1.0), 5);
    let y = Scale::new((0.0, *yticks.last().unwrap_or(&1.0)), (bottom, top));
    let x = Scale::new((dmin as f64, dmax as f64), (left + 10.0, right - 10.0));
    svg::y_grid(&mut out, &y, &yticks, left, right, fmt::tick);
    let span = dmax - dmin;
    let step = (span / 12 + 1).max(1);
    for d in (dmin..=dmax).step_by(step as usize) {
        let px = x.at(d as f64);
        line(
            &mut out,
            (px, bottom),
            (px, bottom + 5.0),
            svg::MUTED,
            1.0,
            "",
        );
        text(
            &mut out,
            px,
            bottom + 20.0,
            "middle",
            "tick",
            &d.to_string(),
        );
    }
    line(
        &mut out,
        (left, bottom),
        (right, bottom),
        svg::MUTED,
        1.0,
        "",
    );
    text(
        &mut out,
        (left + right) / 2.0,
        h - 10.0,
        "middle",
        "axis",
        "day since send",
    );
    let _ = write!(
        out,
        r#"<text class="axis" transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">unique people (cumulative)</text>"#,
        (top + bottom) / 2.0
    );
    for (i, v) in report.variants.iter().enumerate() {
        let series = &v.stats.daily;
        if series.is_empty() {
            continue;
        }
        for (name, dash, value) in [
            (
                "opens",
                "",
                (|d: &crate::DailyCounts| d.opens) as fn(&crate::DailyCounts) -> u64,
            ),
            ("clicks", r#" stroke-dasharray="6 4""#, |d| d.clicks),
        ] {
            let points: Vec<String> = series
                .iter()
                .map(|d| format!("{:.1},{:.1}", x.at(d.day as f64), y.at(value(d) as f64)))
                .collect();
            let _ = write!(
                out,
                r#"<polyline data-variant="{i}" data-series="{name}" points="{}" fill="none" stroke="{}" stroke-width="3" stroke-linejoin="round" stroke-linecap="round"{dash}/>"#,
                points.join(" "),
                colour(i)
            );
            for p in &points {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    out,
                    r#"<circle cx="{px}" cy="{py}" r="3.5" fill="{}"/>"#,
                    colour(i)
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// A rate panel: its title and how to read the rate from a group's rates.
type Panel = (&'static str, fn(&Rates) -> Option<Rate>);

/// The rates drawn per variant: open, click, unsubscribe, and conversion
/// when any variant has conversions data.
fn rate_panels(report: &Report) -> Vec<Panel> {
    let mut panels: Vec<Panel> = vec![
        ("Open rate", |r| r.open_rate),
        ("Click rate", |r| r.click_rate),
        ("Unsubscribe rate", |r| r.unsubscribe_rate),
    ];
    if report
        .variants
        .iter()
        .any(|v| v.stats.rates.conversion_rate.is_some())
    {
        panels.push(("Conversion rate", |r| r.conversion_rate));
    }
    panels
}

/// Small multiples, one panel per rate with its own scale: a bar per
/// variant with the Wilson 95% interval as a whisker.
pub fn rates(report: &Report) -> String {
    let h = 380.0;
    let (top, bottom) = (96.0, h - 40.0);
    let mut out = String::new();
    svg::open_chart(
        &mut out,
        "rates",
        W,
        h,
        "Rates per variant with 95% intervals",
        "Bars are the rates; whiskers are Wilson score 95% confidence intervals.",
        svg::TINT_RATES,
    );
    let names: Vec<&str> = report.variants.iter().map(|v| v.name.as_str()).collect();
    svg::legend(&mut out, &names, 78.0, 32.0, W - 28.0);
    let panels = rate_panels(report);
    let pw = (W - 40.0) / panels.len() as f64;
    for (pi, (title, get)) in panels.iter().enumerate() {
        let x0 = 20.0 + pi as f64 * pw + 58.0;
        let x1 = 20.0 + (pi + 1) as f64 * pw - 14.0;
        text(
            &mut out,
            (x0 + x1) / 2.0,
            top - 18.0,
            "middle",
            "panel",
            title,
        );
        let rates: Vec<Option<Rate>> = report
            .variants
            .iter()
            .map(|v| get(&v.stats.rates))
            .collect();
        let hi = rates
            .iter()
            .flatten()
            .map(|r| r.ci_high)
            .fold(0.0, f64::max);
        let ticks = svg::nice_ticks(0.0, hi.max(1e-4), 4);
        let y = Scale::new((0.0, *ticks.last().unwrap_or(&1.0)), (bottom, top));
        svg::y_grid(&mut out, &y, &ticks, x0, x1, fmt::pct);
        line(&mut out, (x0, bottom), (x1, bottom), svg::MUTED, 1.0, "");
        let slot = (x1 - x0) / rates.len().max(1) as f64;
        let bw = (slot * 0.62).min(56.0);
        for (i, r) in rates.iter().enumerate() {
            let cx = x0 + slot * (i as f64 + 0.5);
            let Some(r) = r else {
                text(&mut out, cx, bottom - 8.0, "middle", "tick", "n/a");
                continue;
            };
            let top_y = y.at(r.value);
            let _ = write!(
                out,
                r#"<rect data-variant="{i}" x="{:.1}" y="{top_y:.1}" width="{bw:.1}" height="{:.1}" rx="3" fill="{}"/>"#,
                cx - bw / 2.0,
                (bottom - top_y).max(0.0),
                colour(i)
            );
            let (lo, hi) = (y.at(r.ci_low), y.at(r.ci_high));
            line(&mut out, (cx, lo), (cx, hi), svg::INK, 1.6, "");
            line(&mut out, (cx - 7.0, lo), (cx + 7.0, lo), svg::INK, 1.6, "");
            line(&mut out, (cx - 7.0, hi), (cx + 7.0, hi), svg::INK, 1.6, "");
            text(
                &mut out,
                cx,
                hi - 6.0,
                "middle",
                "value",
                &fmt::pct(r.value),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One forest-plot row: the estimate, its interval and the zero line, on
/// its own symmetric scale around zero.
struct ForestRow {
    label: &'static str,
    estimate: Option<f64>,
    interval: Option<(f64, f64)>,
    show: fn(f64) -> String,
}

/// Uplift of the treated group against control: conversion rate (points)
/// and revenue per customer, each an estimate with its 95% interval and the
/// zero line; a note when there is no control group.
pub fn uplift(report: &Report) -> String {
    let h = 250.0;
    let mut out = String::new();
    svg::open_chart(
        &mut out,
        "uplift",
        W,
        h,
        "Uplift against the control group",
        "Treated minus control, with 95% confidence intervals; the dashed line is no effect.",
        svg::TINT_UPLIFT,
    );
    match &report.control {
        None => {
            text(
                &mut out,
                W / 2.0,
                h / 2.0,
                "middle",
                "note",
                "no control group",
            );
            text(
                &mut out,
                W / 2.0,
                h / 2.0 + 26.0,
                "middle",
                "tick",
                "This campaign held no customers out, so there is no uplift to measure.",
            );
        }
        Some(c) => forest(&mut out, c, h),
    }
    out.push_str("</svg>");
    out
}

fn forest(out: &mut String, c: &ControlReport, h: f64) {
    let interval = |lo: Option<f64>, hi: Option<f64>| lo.zip(hi);
    let rows = [
        ForestRow {
            label: "Conversion rate",
            estimate: c.uplift,
            interval: interval(c.ci_low, c.ci_high),
            show: fmt::pp,
        },
        ForestRow {
            label: "Revenue per customer",
            estimate: c.revenue_uplift,
            interval: interval(c.revenue_ci_low, c.revenue_ci_high),
            show: |v| format!("{v:+.2}"),
        },
    ];
    let summary = match (c.treated_rate, c.control_rate, c.p_value) {
        (Some(t), Some(k), Some(p)) => format!(
            "converted: treated {} of {} ({}) · control {} of {} ({}) · {}",
            fmt::count(c.treated_converters),
            fmt::count(c.treated_customers),
            fmt::pct(t),
            fmt::count(c.control_converters),
            fmt::count(c.control_customers),
            fmt::pct(k),
            fmt::p_value(p)
        ),
        _ => "a group has no customers: no comparison".to_string(),
    };
    text(out, 30.0, 38.0, "start", "legend", &summary);
    let (x0, x1) = (250.0, 760.0);
    let row_h = (h - 70.0) / rows.len() as f64;
    for (i, row) in rows.iter().enumerate() {
        let cy = 62.0 + row_h * (i as f64 + 0.5);
        text(out, 30.0, cy + 5.0, "start", "panel", row.label);
        let Some(est) = row.estimate else {
            text(
                out,
                (x0 + x1) / 2.0,
                cy + 5.0,
                "middle",
                "tick",
                "not available",
            );
            continue;
        };
        let (lo, hi) = row.interval.unwrap_or((est, est));
        // Symmetric about zero so the zero line sits in the middle.
        let reach = [lo, hi, est].iter().fold(0.0f64, |m, v| m.max(v.abs())) * 1.15;
        let reach = if reach > 0.0 { reach } else { 1.0 };
        let x = Scale::new((-reach, reach), (x0, x1));
        line(out, (x0, cy + 22.0), (x1, cy + 22.0), svg::GRID, 1.0, "");
        for t in [-reach / 1.15, reach / 1.15] {
            text(out, x.at(t), cy + 38.0, "middle", "tick", &(row.show)(t));
        }
        text(out, x.at(0.0), cy + 38.0, "middle", "tick", "0");
        line(
            out,
            (x.at(0.0), cy - 28.0),
            (x.at(0.0), cy + 24.0),
            svg::INK,
            1.4,
            r#"stroke-dasharray="4 4""#,
        );
        if row.interval.is_some() {
            line(
                out,
                (x.at(lo), cy),
                (x.at(hi), cy),
                svg::UPLIFT_COLOUR,
                4.0,
                r#"stroke-linecap="round""#,
            );
            for v in [lo, hi] {
                line(
                    out,
                    (x.at(v), cy - 9.0),
                    (x.at(v), cy + 9.0),
                    svg::UPLIFT_COLOUR,
                    3.0,
                    "",
                );
            }
        }
        let ex = x.at(est);
        let _ = write!(
            out,
            r#"<path data-estimate="{i}" d="M{ex:.1} {:.1} L{:.1} {cy:.1} L{ex:.1} {:.1} L{:.1} {cy:.1} Z" fill="{}"/>"#,
            cy - 11.0,
            ex + 11.0,
            cy + 11.0,
            ex - 11.0,
            svg::UPLIFT_COLOUR
        );
        let detail = match row.interval {
            Some((lo, hi)) => format!(
                "{}  [{} to {}]",
                (row.show)(est),
                (row.show)(lo),
                (row.show)(hi)
            ),
            None => format!("{}  (no interval: fewer than 2 customers)", (row.show)(est)),
        };
        text(out, x1 + 24.0, cy + 5.0, "start", "value", &detail);
    }
}
