//! A realistic campaign for the HTML tests: `k` variants over `days` days,
//! optionally with conversions and a control group.

use espbridge_analysis::{DailyCounts, GroupConversions, Metric, ReportInput, VariantInput};

pub fn sample(names: &[&str], days: u32, with_control: bool) -> ReportInput {
    let variants = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let delivered = 4800 + 37 * i as u64;
            let open_share = 0.22 + 0.03 * i as f64;
            let click_share = 0.045 + 0.012 * i as f64;
            let daily = (0..days)
                .map(|d| {
                    // Saturating growth: most opens come in the first days.
                    let f = 1.0 - 0.55f64.powi(d as i32 + 1);
                    DailyCounts {
                        day: d,
                        sent: 4900 + 37 * i as u64,
                        delivered,
                        opens: (delivered as f64 * open_share * f) as u64,
                        clicks: (delivered as f64 * click_share * f) as u64,
                        unsubscribes: (delivered as f64 * 0.002 * f) as u64,
                    }
                })
                .collect();
            VariantInput {
                name: name.to_string(),
                template_id: format!("tpl-{i}"),
                assigned: 5000,
                daily,
                conversions: with_control.then(|| GroupConversions {
                    customers: 5000,
                    converters: 260 + 40 * i as u64,
                    revenue: 9100.0 + 900.0 * i as f64,
                    revenue_sq: 480_000.0 + 40_000.0 * i as f64,
                }),
            }
        })
        .collect();
    ReportInput {
        campaign_id: "spring-sale-2026".into(),
        esp: "bronto".into(),
        state: "sent".into(),
        send_at: Some("2026-11-17T09:00:00Z".into()),
        metric: Metric::ClickRate,
        variants,
        control: with_control.then_some(GroupConversions {
            customers: 1000,
            converters: 41,
            revenue: 1350.0,
            revenue_sq: 70_000.0,
        }),
        conversions_window_days: 7,
    }
}
