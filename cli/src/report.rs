//! The demo's report: `report.json` (the API's campaign document plus what the demo generated)
//! and a readable summary. Both show campaign ids and counts only, never a customer.
//!
//! An A/B campaign's entry also carries the analysis report's `variants`, `ab_test` and
//! `control` ([`with_analysis`]). UNCERTAIN: those names are the ones the campaign document uses
//! for the record's variant states and control-group settings; those are kept, renamed
//! `variant_states` and `control_group`, so nothing the entry had is lost.

use anyhow::{Context, Result};
use espbridge_analysis::Report;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Days of metrics a completed campaign has.
pub const EXPECTED_DAYS: usize = 7;

fn u(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .unwrap_or("-")
}

/// What is wrong with a campaign document for a finished demo: not completed, not seven daily
/// snapshots, or rows lost between the file and the ESP. Empty when all is well.
pub fn problems(doc: &Value) -> Vec<String> {
    let id = s(doc, &["campaign_id"]);
    let mut out = Vec::new();
    let state = s(doc, &["state"]);
    if state != "completed" {
        let why = doc
            .get("failure")
            .filter(|f| !f.is_null())
            .map(|f| format!(" ({}: {})", s(f, &["step"]), s(f, &["reason"])))
            .unwrap_or_default();
        out.push(format!(
            "campaign {id} ended in state {state}, not completed{why}"
        ));
    }
    let days = doc
        .get("daily_metrics")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if days != EXPECTED_DAYS {
        out.push(format!(
            "campaign {id} has {days} daily metric snapshots, expected {EXPECTED_DAYS}"
        ));
    }
    let (rows, uploaded, rejected) = (
        u(doc, &["audience", "rows"]),
        u(doc, &["audience", "uploaded"]),
        u(doc, &["audience", "rejected"]),
    );
    if uploaded + rejected != rows {
        out.push(format!(
            "campaign {id}: uploaded {uploaded} + rejected {rejected} != rows {rows}"
        ));
    }
    out
}

/// The campaign document with the analysis report's `variants`, `ab_test` and `control`.
pub fn with_analysis(mut doc: Value, report: &Report) -> Value {
    if let Some(o) = doc.as_object_mut() {
        for (from, to) in [("variants", "variant_states"), ("control", "control_group")] {
            if let Some(v) = o.remove(from) {
                o.insert(to.into(), v);
            }
        }
        o.insert("variants".into(), json!(report.variants));
        o.insert("ab_test".into(), json!(report.ab_test));
        o.insert("control".into(), json!(report.control));
    }
    doc
}

/// What is wrong with an A/B campaign's analysis: no A/B test, no control comparison, or
/// converters per group (variant name or `control`) other than `expected`.
pub fn analysis_problems(report: &Report, expected: &BTreeMap<String, u64>) -> Vec<String> {
    let id = &report.campaign_id;
    let mut out = Vec::new();
    if report.ab_test.is_none() {
        out.push(format!("campaign {id} has no A/B test"));
    }
    let mut got: BTreeMap<String, u64> = report
        .variants
        .iter()
        .map(|v| {
            let n = v.stats.conversions.as_ref().map_or(0, |c| c.converters);
            (v.name.clone(), n)
        })
        .collect();
    match &report.control {
        Some(c) => {
            got.insert("control".into(), c.control_converters);
        }
        None => out.push(format!("campaign {id} has no control-group comparison")),
    }
    for (group, want) in expected {
        let n = got.get(group).copied().unwrap_or(0);
        if n != *want {
            out.push(format!(
                "campaign {id}: {n} converters attributed to {group}, {want} converted inside the window"
            ));
        }
    }
    out
}

/// The report document.
pub fn document(campaigns: Vec<Value>, generated_at: jiff::Timestamp) -> Value {
    json!({ "generated_at": generated_at, "campaigns": campaigns })
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("serializing the report")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// `ts` shown in zone `tz` with its offset (as the manifest wrote it); as given when either is
/// unreadable.
fn local_time(ts: &str, tz: &str) -> String {
    let zoned = ts
        .parse::<jiff::Timestamp>()
        .ok()
        .zip(jiff::tz::TimeZone::get(tz).ok())
        .map(|(t, z)| t.to_zoned_datetime(z));
    match zoned {
        Some(z) => z.timestamp().display_with_offset(z.offset()).to_string(),
        None => ts.to_owned(),
    }
}

/// A readable summary of one campaign document.
pub fn summary(doc: &Value) -> String {
    let mut o = String::new();
    let a = doc.get("audience").cloned().unwrap_or(Value::Null);
    let _ = writeln!(
        o,
        "campaign {}  esp {} (account {})  state {}",
        s(doc, &["campaign_id"]),
        s(doc, &["esp"]),
        s(doc, &["account"]),
        s(doc, &["state"])
    );
    if let Some(f) = doc.get("failure").filter(|f| !f.is_null()) {
        let _ = writeln!(o, "  failed at {}: {}", s(f, &["step"]), s(f, &["reason"]));
    }
    let _ = writeln!(
        o,
        "  template {}  send at {} ({})",
        s(doc, &["template_id"]),
        local_time(s(doc, &["send_at"]), s(doc, &["timezone"])),
        s(doc, &["timezone"])
    );
    let _ = writeln!(
        o,
        "  audience: {} rows, {} valid, {} uploaded in {} batches, {} rejected, {} not in ESP",
        u(&a, &["rows"]),
        u(&a, &["valid"]),
        u(&a, &["uploaded"]),
        u(&a, &["batches"]),
        u(&a, &["rejected"]),
        u(&a, &["not_in_esp"])
    );
    if let Some(by) = a.get("rejected_by_reason").and_then(Value::as_object) {
        for (reason, n) in by {
            let _ = writeln!(o, "    rejected {reason:<22} {}", n.as_u64().unwrap_or(0));
        }
    }
    if let Some(k) = a.get("rejects_key").and_then(Value::as_str) {
        let _ = writeln!(o, "  rejects report: {k}");
    }
    let ids = |v: &Value| -> Option<String> {
        let ids = v.get("esp_ids")?.as_object()?;
        let ids: Vec<String> = ids
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
            .collect();
        (!ids.is_empty()).then(|| ids.join(", "))
    };
    if let Some(line) = ids(doc) {
        let _ = writeln!(o, "  ESP ids: {line}");
    }
    // An A/B campaign's ids are per variant.
    for v in doc
        .get("variant_states")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(line) = ids(v) {
            let _ = writeln!(o, "  ESP ids of variant {}: {line}", s(v, &["name"]));
        }
    }
    let days = doc
        .get("daily_metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !days.is_empty() {
        let _ = writeln!(
            o,
            "  {:>3}  {:>8}  {:>9}  {:>8}  {:>8}  {:>6}",
            "day", "sent", "delivered", "opens", "clicks", "unsubs"
        );
        for d in &days {
            let _ = writeln!(
                o,
                "  {:>3}  {:>8}  {:>9}  {:>8}  {:>8}  {:>6}",
                u(d, &["day"]),
                u(d, &["sent"]),
                u(d, &["delivered"]),
                u(d, &["opens"]),
                u(d, &["clicks"]),
                u(d, &["unsubscribes"])
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(state: &str, days: usize, rows: u64, uploaded: u64, rejected: u64) -> Value {
        json!({
            "campaign_id": "c1", "esp": "emarsys", "state": state,
            "audience": {"rows": rows, "uploaded": uploaded, "rejected": rejected,
                         "rejected_by_reason": {"empty_row": rejected}},
            "esp_ids": {"contact_list_id": "12"},
            "daily_metrics": (1..=days).map(|d| json!({"day": d, "sent": 10, "delivered": 9,
                "opens": d, "clicks": 1, "unsubscribes": 0})).collect::<Vec<_>>(),
        })
    }

    fn analysis(control: bool) -> Report {
        use espbridge_analysis::{
            DailyCounts, GroupConversions, Metric, ReportInput, VariantInput,
        };
        let conv = |customers, converters| GroupConversions {
            customers,
            converters,
            revenue: converters as f64 * 30.0,
            revenue_sq: converters as f64 * 900.0,
        };
        let variant = |name: &str, converters| VariantInput {
            name: name.to_owned(),
            template_id: format!("t-{name}"),
            assigned: 450,
            daily: vec![DailyCounts {
                day: 1,
                sent: 450,
                delivered: 440,
                opens: 100,
                clicks: 20,
                unsubscribes: 1,
            }],
            conversions: Some(conv(450, converters)),
        };
        espbridge_analysis::build_report(&ReportInput {
            campaign_id: "c1".into(),
            esp: "emarsys".into(),
            state: "completed".into(),
            send_at: None,
            metric: Metric::ClickRate,
            variants: vec![variant("A", 25), variant("B", 30)],
            control: control.then(|| conv(100, 4)),
            conversions_window_days: 7,
        })
    }

    #[test]
    fn the_analysis_joins_the_entry_and_the_record_parts_are_kept() {
        let mut d = doc("completed", 7, 100, 97, 3);
        d["variants"] = json!([{"name": "A", "share": 0.5}]);
        d["control"] = json!({"holdout_share": 0.1});
        let d = with_analysis(d, &analysis(true));
        assert_eq!(d["variants"][1]["name"], "B");
        assert_eq!(d["variants"][1]["template_id"], "t-B");
        assert_eq!(d["variants"][1]["assigned"], 450);
        assert!(d["variants"][0]["rates"]["click_rate"]["value"].is_number());
        assert!(d["ab_test"]["p_value"].is_number(), "{}", d["ab_test"]);
        assert_eq!(d["control"]["control_converters"], 4);
        assert_eq!(d["variant_states"][0]["share"], 0.5);
        assert_eq!(d["control_group"]["holdout_share"], 0.1);
        assert_eq!(d["campaign_id"], "c1", "the rest stays");
    }

    #[test]
    fn converters_must_match_what_was_generated() {
        let want: BTreeMap<String, u64> =
            [("A".into(), 25), ("B".into(), 30), ("control".into(), 4)].into();
        assert!(analysis_problems(&analysis(true), &want).is_empty());
        let mut off = want.clone();
        off.insert("B".into(), 31);
        let p = analysis_problems(&analysis(true), &off);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("30 converters attributed to B, 31"), "{p:?}");
        let p = analysis_problems(&analysis(false), &want);
        assert!(
            p.iter().any(|m| m.contains("no control-group comparison")),
            "{p:?}"
        );
    }

    #[test]
    fn a_finished_campaign_has_no_problems() {
        assert!(problems(&doc("completed", 7, 100, 97, 3)).is_empty());
    }

    #[test]
    fn each_problem_is_named() {
        let p = problems(&doc("scheduled", 2, 100, 90, 3));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("state scheduled"));
        assert!(p[1].contains("2 daily metric snapshots"));
        assert!(p[2].contains("!= rows 100"));
    }

    #[test]
    fn variant_ids_are_listed_per_variant() {
        let mut d = doc("completed", 7, 100, 97, 3);
        d["esp_ids"] = json!({});
        d["variant_states"] = json!([{"name": "A", "esp_ids": {"email_id": "81"}}]);
        let text = summary(&d);
        assert!(!text.contains("  ESP ids:"), "{text}");
        assert!(
            text.contains("  ESP ids of variant A: email_id=81"),
            "{text}"
        );
    }

    #[test]
    fn send_time_is_shown_in_the_campaign_zone() {
        assert_eq!(
            local_time("2026-11-25T08:00:00Z", "Europe/Berlin"),
            "2026-11-25T09:00:00+01:00"
        );
        assert_eq!(local_time("soon", "Europe/Berlin"), "soon");
    }

    #[test]
    fn summary_shows_counts_reasons_and_days() {
        let text = summary(&doc("completed", 7, 100, 97, 3));
        assert!(text.contains("100 rows"));
        assert!(text.contains("rejected empty_row"));
        assert!(text.contains("contact_list_id=12"));
        assert_eq!(
            text.lines()
                .filter(|l| l.trim_start().starts_with(char::is_numeric))
                .count(),
            7
        );
    }
}
