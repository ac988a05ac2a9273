//! Structure of the night report's page: the state bar, failures first in both tables, every
//! text escaped, no external resource; and its JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod night_sample;

use espbridge_analysis::html::STATE_COLOURS;
use espbridge_analysis::{build_night_report, render_night_html};

#[test]
fn the_state_bar_has_a_segment_per_state_sized_by_its_count() {
    let night = night_sample::night(40, 3);
    let html = render_night_html(&night);
    let at = html.find(r#"data-chart="states""#).expect("the state bar");
    let bar = &html[at..at + html[at..].find("</svg>").unwrap()];
    let segments: Vec<(&str, f64)> = bar
        .match_indices("data-state=\"")
        .map(|(i, m)| {
            let rest = &bar[i + m.len()..];
            let state = &rest[..rest.find('"').unwrap()];
            let w = rest.find("width=\"").unwrap() + 7;
            let width: f64 = rest[w..w + rest[w..].find('"').unwrap()].parse().unwrap();
            (state, width)
        })
        .collect();
    assert_eq!(segments.len(), night.states.len());
    assert_eq!(segments[0].0, "failed", "failures lead the bar");
    let total: f64 = segments.iter().map(|(_, w)| w).sum();
    for (state, width) in &segments {
        let share = night.states[*state] as f64 / 40.0;
        assert!(
            (width / total - share).abs() < 0.01,
            "{state}: {width} of {total}"
        );
        let colour = STATE_COLOURS.iter().find(|(s, _)| s == state).unwrap().1;
        assert!(bar.contains(&format!(r#"fill="{colour}""#)), "{state}");
    }
}

#[test]
fn failures_come_first_with_their_reasons_escaped() {
    let html = render_night_html(&night_sample::night(20, 2));
    let rows: Vec<&str> = html
        .match_indices("<tr class=\"")
        .map(|(i, _)| &html[i..])
        .collect();
    let classes: Vec<&str> = rows
        .iter()
        .map(|r| &r[11..11 + r[11..].find('"').unwrap()])
        .collect();
    // The failures table (failed, then partially scheduled), then every campaign in the same
    // order, the rest plain.
    let attention = night_sample::night(20, 2).states["partially_scheduled"] as usize;
    assert!(attention > 0);
    let mut want = Vec::new();
    for _ in 0..2 {
        want.extend(["failed"; 2]);
        want.extend(vec!["attention"; attention]);
    }
    want.extend(vec![""; 20 - 2 - attention]);
    assert_eq!(classes, want);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; HTTP 400"));
    assert!(!html.contains("<script"), "no script of any origin");
    assert!(html.contains("emarsys: HTTP 400 code 2008"));
    for needle in ["http://", "https://", "src=", "url(", "@import"] {
        assert!(!html.contains(needle), "external resource: {needle}");
    }
}

#[test]
fn an_empty_night_says_so() {
    let html = render_night_html(&build_night_report("2026-11-24", Vec::new(), false));
    assert!(html.contains("no campaigns this night"));
    assert!(html.contains("No campaign for this run date."));
    let truncated = render_night_html(&build_night_report("2026-11-24", Vec::new(), true));
    assert!(truncated.contains("More campaigns than this page holds"));
}

#[test]
fn the_json_has_counts_totals_and_latest_rates() {
    let night = night_sample::night(16, 2);
    let v = serde_json::to_value(&night).unwrap();
    assert_eq!(v["run_date"], "2026-11-24");
    assert_eq!(v["states"]["failed"], 2);
    assert_eq!(v["totals"]["campaigns"], 16);
    assert_eq!(v["rejected_by_reason"]["duplicate"], 16 * 40);
    assert_eq!(v["campaigns"][0]["state"], "failed");
    assert_eq!(v["campaigns"][0]["failure"]["step"], "upload");
    let polled = v["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["state"] == "completed")
        .unwrap();
    assert_eq!(polled["metrics"]["day"], 3);
    assert!(polled["metrics"]["open_rate"]["value"].as_f64().unwrap() > 0.2);
    assert!(polled["metrics"]["open_rate"]["ci_low"].is_number());
}
