//! Shared steps of the scenarios.

use espbridge_tests::{Bad, Drop, Harness};

/// A standard drop of `rows` valid rows (one file, two bad rows) for `campaign_id`, written to
/// the harness bucket; returns the drop and the manifest's S3 event as a message body.
pub async fn standard_drop(
    h: &Harness,
    campaign_id: &str,
    rows: usize,
) -> anyhow::Result<(Drop, String)> {
    let template_id = h.pick_template().await?;
    let send_at = h.send_at_tomorrow_9()?;
    let send_at = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let mut drop = Drop::default();
    drop.add_file(
        "audience.csv",
        &format!("{campaign_id}-"),
        rows,
        &[(5, Bad::EmptyCustomerId), (rows / 2, Bad::Duplicate)],
    )?;
    let manifest = drop.manifest(campaign_id, &template_id, &send_at);
    let body = h
        .drop_campaign(&prefix(campaign_id), &drop, &manifest)
        .await?;
    Ok((drop, body))
}

pub fn prefix(campaign_id: &str) -> String {
    format!("campaigns/2026-11-24/{campaign_id}/")
}

/// Ids of `drop` the simulator knows (the members a complete upload leaves in its list).
pub fn known_ids(h: &Harness, drop: &Drop) -> std::collections::BTreeSet<String> {
    drop.valid_ids
        .iter()
        .filter(|id| espbridge_tests::audience::sim_knows(id, h.sim_config.unknown_id_share))
        .cloned()
        .collect()
}
