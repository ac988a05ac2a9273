//! Shared steps of the scenarios.

use espbridge_core::State;
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
pub fn known_ids(h: &Harness, drop: &Drop) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let share = h.emarsys()?.config().unknown_id_share;
    Ok(drop
        .valid_ids
        .iter()
        .filter(|id| espbridge_tests::audience::sim_knows(id, share))
        .cloned()
        .collect())
}

/// The id of the first template `GET /templates?esp=ESP` lists.
pub async fn first_template(h: &Harness, esp: &str) -> anyhow::Result<String> {
    let (status, v) = h
        .api_json("GET", "/templates", &format!("esp={esp}"))
        .await?;
    anyhow::ensure!(status == 200, "GET /templates answered {status}: {v}");
    v["templates"]
        .as_array()
        .and_then(|ts| ts.first())
        .and_then(|t| t["id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("no {esp} template listed: {v}"))
}

/// Runs upload-audience on the drop's event, then each continuation it queues (calling
/// `between` before each), until the audience is ready; returns the number of invocations.
pub async fn upload_with(
    h: &Harness,
    id: &str,
    body: &str,
    between: impl Fn(&Harness),
) -> anyhow::Result<usize> {
    let resp = h.deliver_upload_body(body).await?;
    anyhow::ensure!(resp.batch_item_failures.is_empty(), "{resp:?}");
    for runs in 1..100 {
        let c = h.campaign(id).await?;
        if c.state == State::AudienceReady {
            return Ok(runs);
        }
        let msgs = h.receive(&h.upload_queue_url).await?;
        anyhow::ensure!(
            !msgs.is_empty(),
            "not ready and nothing queued: {:?} {:?}",
            c.state,
            c.failure
        );
        between(h);
        let resp = h.deliver_upload(&msgs).await?;
        anyhow::ensure!(resp.batch_item_failures.is_empty(), "{resp:?}");
        h.ack(&h.upload_queue_url, &msgs, &resp).await?;
    }
    anyhow::bail!("upload never finished")
}

/// The ids `GET /templates?esp=ESP` lists.
pub async fn listed_template_ids(
    h: &Harness,
    esp: &str,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let (status, v) = h
        .api_json("GET", "/templates", &format!("esp={esp}"))
        .await?;
    anyhow::ensure!(status == 200, "GET /templates answered {status}: {v}");
    Ok(v["templates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect())
}

/// Polls the seven days after `send_at` and checks what every ESP's campaign shows then:
/// `completed`, one snapshot per day 1..=7, unsubscribes that never decrease and are not all 0,
/// and the poll schedule gone. Returns the snapshots for ESP-specific checks.
pub async fn poll_week_to_completed(
    h: &Harness,
    id: &str,
    send_at: jiff::Timestamp,
) -> anyhow::Result<Vec<espbridge_core::campaign::MetricSnapshot>> {
    let schedule_name = h.poll_seven_days(id, send_at).await?;
    let c = h.campaign(id).await?;
    anyhow::ensure!(
        c.state == State::Completed,
        "{:?}: {:?}",
        c.state,
        c.failure
    );
    let snaps = h.store().snapshots(&c.id).await?;
    let days: Vec<u32> = snaps.iter().map(|s| s.day).collect();
    anyhow::ensure!(days == (1..=7).collect::<Vec<u32>>(), "days {days:?}");
    let unsubs: Vec<u64> = snaps.iter().map(|s| s.counts.unsubscribes).collect();
    anyhow::ensure!(
        unsubs.windows(2).all(|w| w[0] <= w[1]) && unsubs[6] > 0,
        "unsubscribes {unsubs:?}"
    );
    anyhow::ensure!(
        h.schedule_expression(&schedule_name).await.is_none(),
        "the schedule {schedule_name} is deleted after day 7"
    );
    Ok(snaps)
}
