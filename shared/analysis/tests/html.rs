//! Structure of the HTML page: three charts, one line per variant and
//! series with a point per day, no external URL, escaping of user text.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use espbridge_analysis::{build_report, render_html};

/// The opening tags `<tag ...>` of the given name.
fn tags<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag} ");
    html.match_indices(&open)
        .map(|(i, _)| {
            let rest = &html[i..];
            &rest[..rest.find('>').map_or(rest.len(), |e| e + 1)]
        })
        .collect()
}

/// The SVG element carrying `data-chart="kind"`, start to `</svg>`.
fn chart<'a>(html: &'a str, kind: &str) -> &'a str {
    let marker = format!(r#"data-chart="{kind}""#);
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {kind} chart"));
    let start = html[..at].rfind("<svg").unwrap();
    let end = start + html[start..].find("</svg>").unwrap();
    &html[start..end]
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(r#" {name}=""#);
    let i = tag.find(&key)? + key.len();
    Some(&tag[i..i + tag[i..].find('"')?])
}

#[test]
fn three_charts_with_titles() {
    let html = render_html(&build_report(&common::sample(&["A", "B", "C"], 7, true)));
    let svgs = tags(&html, "svg");
    assert_eq!(svgs.len(), 3);
    let kinds: Vec<_> = svgs.iter().filter_map(|t| attr(t, "data-chart")).collect();
    assert_eq!(kinds, ["daily", "rates", "uplift"]);
    for kind in kinds {
        assert!(chart(&html, kind).contains("<title"), "{kind} has no title");
    }
}

#[test]
fn daily_chart_has_a_line_per_variant_and_series_with_a_point_per_day() {
    let names = ["A", "B", "C", "D"];
    let html = render_html(&build_report(&common::sample(&names, 9, false)));
    let daily = chart(&html, "daily");
    let lines = tags(daily, "polyline");
    assert_eq!(lines.len(), names.len() * 2);
    for i in 0..names.len() {
        for series in ["opens", "clicks"] {
            let line = lines
                .iter()
                .find(|l| {
                    attr(l, "data-variant") == Some(&i.to_string())
                        && attr(l, "data-series") == Some(series)
                })
                .unwrap_or_else(|| panic!("no {series} line for variant {i}"));
            assert_eq!(attr(line, "points").unwrap().split_whitespace().count(), 9);
            assert_eq!(
                attr(line, "stroke"),
                Some(espbridge_analysis::html::PALETTE[i])
            );
        }
    }
}

#[test]
fn rates_chart_has_a_bar_per_variant_and_rate() {
    let bars = |with_control| {
        let html = render_html(&build_report(&common::sample(&["A", "B"], 3, with_control)));
        tags(chart(&html, "rates"), "rect")
            .into_iter()
            .filter(|r| attr(r, "data-variant").is_some())
            .count()
    };
    // Open, click, unsubscribe (and conversion with conversions data): 2 bars each.
    assert_eq!(bars(true), 8);
    assert_eq!(bars(false), 6);
}

#[test]
fn uplift_chart_or_a_note() {
    let with = render_html(&build_report(&common::sample(&["A", "B"], 3, true)));
    let uplift = chart(&with, "uplift");
    assert_eq!(uplift.matches("data-estimate=").count(), 2);
    assert!(!uplift.contains("no control group"));
    let without = render_html(&build_report(&common::sample(&["A", "B"], 3, false)));
    assert!(chart(&without, "uplift").contains("no control group"));
}

#[test]
fn no_external_urls() {
    for control in [true, false] {
        let html = render_html(&build_report(&common::sample(&["A", "B", "C"], 5, control)));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("<img"));
        assert!(!html.contains("url("));
    }
}

#[test]
fn user_text_is_escaped() {
    let hostile = "<script>alert(1)</script>";
    let mut input = common::sample(&[hostile, "B\" onmouseover=\"x"], 4, true);
    input.campaign_id = "<img src=x onerror=alert(2)>".into();
    input.variants[1].template_id = "</td><script>".into();
    let html = render_html(&build_report(&input));
    assert!(!html.contains("<script"), "unescaped script tag");
    assert!(!html.contains("<img"));
    assert!(!html.contains("\" onmouseover"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
}

#[test]
fn verdict_and_rules_are_stated() {
    let report = build_report(&common::sample(&["A", "B"], 5, true));
    let ab = report.ab_test.clone().unwrap();
    let html = render_html(&report);
    assert!(html.contains(&ab.verdict));
    let p = espbridge_analysis::html::fmt::p_value(ab.p_value.unwrap());
    assert!(html.contains(&p));
    for (topic, _) in espbridge_analysis::rules::RULES {
        assert!(html.contains(topic));
    }
    let single = render_html(&build_report(&common::sample(&["all"], 5, false)));
    assert!(single.contains("one variant"));
}

#[test]
fn degenerate_reports_still_render_three_charts() {
    let mut empty = common::sample(&[], 0, false);
    empty.variants.clear();
    let mut no_days = common::sample(&["A", "B"], 0, true);
    no_days.variants[1].conversions = None;
    let long: Vec<String> = (0..8)
        .map(|i| format!("variant number {i} with a very long descriptive name"))
        .collect();
    let names: Vec<&str> = long.iter().map(String::as_str).collect();
    for input in [empty, no_days, common::sample(&names, 30, true)] {
        let html = render_html(&build_report(&input));
        assert_eq!(tags(&html, "svg").len(), 3);
        for bad in ["NaN", "inf\"", "inf,", "inf "] {
            assert!(!html.contains(bad), "non-finite number drawn: {bad}");
        }
    }
}
