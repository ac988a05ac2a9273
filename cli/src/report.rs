//! The demo's report: `report.json` (the API's campaign document plus what the demo generated)
//! and a readable summary. Both show campaign ids and counts only, never a customer.

use anyhow::{Context, Result};
use serde_json::{Value, json};
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
    if let Some(ids) = doc.get("esp_ids").and_then(Value::as_object) {
        let ids: Vec<String> = ids
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
            .collect();
        let _ = writeln!(o, "  ESP ids: {}", ids.join(", "));
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
