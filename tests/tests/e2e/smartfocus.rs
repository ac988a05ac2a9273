//! SmartFocus end to end: the same handlers and events as the Emarsys suite, with the SmartFocus
//! account and simulator (tagged members, segment, cloned message, posted campaign).

use crate::common::{first_template, poll_week_to_completed, prefix};
use espbridge_core::EspKind;
use espbridge_core::State;
use espbridge_smartfocus::keys;
use espbridge_tests::{Bad, Drop, Harness, HarnessOptions};
use std::collections::BTreeSet;

/// Audience rows of every scenario: enough for several batches when the file limit is small.
const ROWS: usize = 5_000;
/// An upload file limit giving about 2,000 rows per batch (rows are budgeted at 256 bytes and
/// the file is base64-encoded), so [`ROWS`] takes three batches.
const SMALL_UPLOAD_BYTES: u64 = 4_096 + 2_000 * 256 * 4 / 3 + 4;

fn options() -> HarnessOptions {
    HarnessOptions::esp(EspKind::Smartfocus)
}

/// A drop of [`ROWS`] valid rows with three bad ones, addressed to SmartFocus; returns the
/// drop, the message id used, the send time and the manifest's S3 event as a message body.
async fn sf_drop(
    h: &Harness,
    campaign_id: &str,
) -> anyhow::Result<(Drop, String, jiff::ZonedDateTime, String)> {
    let message_id = first_template(h, "smartfocus").await?;
    let send_at = h.send_at_tomorrow_9()?;
    let send_at_text = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let mut drop = Drop::default();
    drop.add_file(
        "audience.csv",
        &format!("{campaign_id}-"),
        ROWS,
        &[
            (3, Bad::EmptyCustomerId),
            (1_000, Bad::ColumnCount),
            (4_000, Bad::Duplicate),
        ],
    )?;
    let mut manifest = drop.manifest(campaign_id, &message_id, &send_at_text);
    manifest["esp"] = "smartfocus".into();
    let body = h
        .drop_campaign(&prefix(campaign_id), &drop, &manifest)
        .await?;
    Ok((drop, message_id, send_at, body))
}

/// Customer ids the simulator holds with the campaign's tag.
async fn tagged(h: &Harness, campaign_id: &str) -> anyhow::Result<BTreeSet<String>> {
    let c = h.campaign(campaign_id).await?;
    let tag = c
        .esp_ids
        .get(keys::TAG)
        .ok_or_else(|| anyhow::anyhow!("no tag in the record: {:?}", c.esp_ids))?;
    Ok(h.sf()?.members_with_tag(tag).into_iter().collect())
}

fn clones(h: &Harness) -> anyhow::Result<Vec<espbridge_smartfocus::sim::SimMessage>> {
    Ok(h.sf()?
        .messages()
        .into_iter()
        .filter(|m| m.cloned_from.is_some())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smartfocus_drop_becomes_a_completed_campaign() -> anyhow::Result<()> {
    let Some(h) = Harness::start("sf_happy_path", options()).await? else {
        return Ok(());
    };
    let sf = h.sf()?;

    // Templates: only optimove_ messages, shown without the prefix.
    let (status, v) = h.api_json("GET", "/templates", "esp=smartfocus").await?;
    assert_eq!(status, 200, "{v}");
    let listed: BTreeSet<(String, String)> = v["templates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["name"].as_str()?.to_owned(),
                t["display_name"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let want: BTreeSet<(String, String)> = sf
        .messages()
        .into_iter()
        .filter_map(|m| {
            let display = m.name.strip_prefix("optimove_")?.to_owned();
            Some((m.name, display))
        })
        .collect();
    assert_eq!(
        want.len(),
        3,
        "the simulator seeds three optimove_ messages"
    );
    assert_eq!(listed, want);

    let id = "sf-spring-sale";
    let (drop, message_id, send_at, body) = sf_drop(&h, id).await?;

    // upload-audience
    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::AudienceReady, "failure: {:?}", c.failure);
    assert_eq!(c.audience.rows, drop.data_rows);
    assert_eq!(c.audience.uploaded, drop.valid_ids.len() as u64);
    assert_eq!(c.audience.rejected, drop.rejects.len() as u64);
    assert_eq!(tagged(&h, id).await?, drop.valid_set());
    // The merge added the ids SmartFocus did not know (without e-mail); the segment's count
    // leaves them out, so they are counted as not in the ESP.
    let known: BTreeSet<String> = drop
        .valid_ids
        .iter()
        .filter(|id| sf.knows(id))
        .cloned()
        .collect();
    assert!(known.len() < drop.valid_ids.len(), "some ids are unknown");
    assert_eq!(
        c.audience.not_in_esp,
        (drop.valid_ids.len() - known.len()) as u64
    );

    // schedule-send from the message upload-audience queued.
    let (n, resp) = h.run_schedule_queue().await?;
    assert_eq!(n, 1);
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Scheduled, "failure: {:?}", c.failure);
    let copies = clones(&h)?;
    assert_eq!(copies.len(), 1);
    assert_eq!(
        copies[0].cloned_from.map(|m| m.to_string()),
        Some(message_id)
    );
    let segments = sf.segments();
    assert_eq!(segments.len(), 1);
    let campaigns = sf.campaigns();
    assert_eq!(campaigns.len(), 1);
    assert_eq!(campaigns[0].segment_id, segments[0].id);
    assert_eq!(campaigns[0].message_id, copies[0].id);
    assert_eq!(campaigns[0].send_at, send_at.timestamp());
    assert_eq!(campaigns[0].selected, known.len() as u64);
    assert_eq!(sf.post_count(), 1);

    // The metric schedule and seven daily polls.
    let snaps = poll_week_to_completed(&h, id, send_at.timestamp()).await?;
    assert!(snaps.iter().all(|s| s.counts.sent > 0), "{snaps:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smartfocus_repeated_events_change_nothing() -> anyhow::Result<()> {
    let Some(h) = Harness::start("sf_redelivery", options()).await? else {
        return Ok(());
    };
    let sf = h.sf()?;
    let id = "sf-repeat-me";
    let (drop, _, _, body) = sf_drop(&h, id).await?;

    let first = h.deliver_upload_body(&body).await?;
    assert!(first.batch_item_failures.is_empty(), "{first:?}");
    let uploads_after_first = sf.uploads().len();
    assert!(uploads_after_first >= 1);
    let second = h.deliver_upload_body(&body).await?;
    assert!(second.batch_item_failures.is_empty(), "{second:?}");
    assert_eq!(sf.uploads().len(), uploads_after_first, "no second upload");
    assert_eq!(h.campaign(id).await?.state, State::AudienceReady);

    // The schedule message, delivered twice.
    let msgs = h.receive(&h.schedule_queue_url).await?;
    assert!(!msgs.is_empty());
    for _ in 0..2 {
        let resp = h.deliver_schedule(&msgs).await?;
        assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    }
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Scheduled, "failure: {:?}", c.failure);
    assert_eq!(sf.uploads().len(), uploads_after_first);
    assert_eq!(sf.segments().len(), 1);
    assert_eq!(clones(&h)?.len(), 1);
    assert_eq!(sf.campaigns().len(), 1);
    assert_eq!(sf.post_count(), 1);
    assert_eq!(tagged(&h, id).await?, drop.valid_set());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smartfocus_expired_token_mid_upload_loses_nothing() -> anyhow::Result<()> {
    let opts = HarnessOptions {
        account: serde_json::json!({"max_upload_bytes": SMALL_UPLOAD_BYTES}),
        ..options()
    };
    let Some(mut h) = Harness::start("sf_expired_token", opts).await? else {
        return Ok(());
    };
    h.upload.settings.max_batches_per_run = Some(1);
    let id = "sf-expired-token";
    let (drop, _, _, body) = sf_drop(&h, id).await?;

    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Uploading, "failure: {:?}", c.failure);
    assert!(c.audience.uploaded > 0 && c.audience.uploaded < drop.valid_ids.len() as u64);

    let mut invocations = 1;
    while h.campaign(id).await?.state == State::Uploading {
        // Every session the last invocation opened is dead when the next one starts.
        let sessions_before = h.sf()?.sessions_opened();
        h.sf()?.expire_tokens();
        let msgs = h.receive(&h.upload_queue_url).await?;
        assert_eq!(msgs.len(), 1, "one continuation per stop");
        let resp = h.deliver_upload(&msgs).await?;
        assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
        h.ack(&h.upload_queue_url, &msgs, &resp).await?;
        assert!(
            h.sf()?.sessions_opened() > sessions_before,
            "a new session replaced the expired one"
        );
        invocations += 1;
        anyhow::ensure!(invocations <= 10, "the upload never finished");
    }
    assert_eq!(invocations, 3, "5,000 rows at about 2,000 rows per batch");
    // The expired token was really presented (and refused) before a new session was opened.
    let refused = h
        .sf()?
        .requests()
        .iter()
        .filter(|r| r.path.contains("batchmember") && r.status == 500)
        .count();
    assert!(refused >= 2, "one refusal per expiry, got {refused}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::AudienceReady, "failure: {:?}", c.failure);
    assert_eq!(c.audience.uploaded, drop.valid_ids.len() as u64);
    assert_eq!(tagged(&h, id).await?, drop.valid_set());
    assert!(
        h.sf()?.uploads().iter().all(|u| u.status == "DONE"),
        "{:?}",
        h.sf()?.uploads()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smartfocus_failed_import_fails_the_campaign_once() -> anyhow::Result<()> {
    let Some(h) = Harness::start("sf_failed_import", options()).await? else {
        return Ok(());
    };
    let id = "sf-failed-import";
    let (_, _, _, body) = sf_drop(&h, id).await?;
    h.sf()?.fail_next_import();

    let resp = h.deliver_upload_body(&body).await?;
    assert!(
        resp.batch_item_failures.is_empty(),
        "a final failure is not left for SQS to retry: {resp:?}"
    );
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Failed);
    let failure = c
        .failure
        .ok_or_else(|| anyhow::anyhow!("a failed campaign without a failure"))?;
    assert!(failure.reason.contains("FAILURE"), "{failure:?}");
    let uploads = h.sf()?.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!(uploads[0].status, "FAILURE");
    assert!(h.receive(&h.schedule_queue_url).await?.is_empty());
    assert!(h.receive(&h.upload_queue_url).await?.is_empty());
    assert_eq!(h.sf()?.post_count(), 0);
    Ok(())
}
