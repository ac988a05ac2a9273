//! A night of campaigns in every state, for the night report's tests.

/// A night of `n` campaigns in every state, `failed` of them failed (one with a reason that
/// tries to inject markup), for the night report's tests.
pub fn night(n: usize, failed: usize) -> espbridge_analysis::NightReport {
    use espbridge_analysis::{
        NightAudience, NightCampaign, NightFailure, NightMetrics, build_night_report,
    };
    const OTHERS: [&str; 8] = [
        "completed",
        "collecting",
        "scheduled",
        "partially_scheduled",
        "audience_ready",
        "uploading",
        "received",
        "cancelled",
    ];
    let campaigns = (0..n)
        .map(|i| {
            let state = if i < failed {
                "failed"
            } else {
                OTHERS[i % OTHERS.len()]
            };
            let polled = matches!(state, "completed" | "collecting" | "partially_scheduled");
            let rows = 10_000 + 311 * i as u64;
            NightCampaign {
                campaign_id: format!("night-{i:03}"),
                esp: Some(["emarsys", "bronto", "silverpop", "smartfocus"][i % 4].to_owned()),
                account: Some("default".to_owned()),
                state: state.to_owned(),
                send_at: Some(format!("2026-11-25T{:02}:30:00Z", 6 + i % 12)),
                failure: (state == "failed").then(|| NightFailure {
                    step: "upload".to_owned(),
                    reason: if i == 0 {
                        "<script>alert(1)</script> HTTP 400".to_owned()
                    } else {
                        "emarsys: HTTP 400 code 2008".to_owned()
                    },
                    at: "2026-11-25T02:10:00Z".to_owned(),
                }),
                audience: NightAudience {
                    rows,
                    valid: rows - 100,
                    rejected: 100,
                    uploaded: if polled { rows - 100 } else { 0 },
                    ..Default::default()
                },
                rejected_by_reason: [
                    ("invalid_email".to_owned(), 60),
                    ("duplicate".to_owned(), 40),
                ]
                .into_iter()
                .collect(),
                metrics: polled.then(|| {
                    let sent = rows - 100;
                    NightMetrics::new(3, [sent, sent - 50, sent / 4, sent / 20, 7, 50])
                }),
            }
        })
        .collect();
    build_night_report("2026-11-24", campaigns, false)
}
