//! The hourly sweep: a campaign whose continuation message was lost is queued again on the
//! real upload queue, once, and its upload finishes from the checkpoint.

use crate::common::{known_ids, standard_drop};
use aws_lambda_events::event::sqs::SqsBatchResponse;
use espbridge_core::State;
use espbridge_core::ports::WorkItem;
use espbridge_tests::{Harness, HarnessOptions};
use jiff::SignedDuration;
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_left_uploading_for_two_hours_is_queued_again_once() -> anyhow::Result<()> {
    let Some(mut h) = Harness::start("sweep", HarnessOptions::default()).await? else {
        return Ok(());
    };
    h.upload.settings.max_batches_per_run = Some(1);
    let id = "swept-upload";
    let (drop, body) = standard_drop(&h, id, 15_000).await?;
    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    assert_eq!(h.campaign(id).await?.state, State::Uploading);

    // The continuation is lost (deleted unread, as a message past its retention would be).
    let lost = h.receive(&h.upload_queue_url).await?;
    assert_eq!(lost.len(), 1);
    h.ack(&h.upload_queue_url, &lost, &SqsBatchResponse::default())
        .await?;

    h.clock.advance(SignedDuration::from_mins(30));
    let out = h.run_sweep().await?;
    assert_eq!(out["report"]["resumed"], 0, "{out}");
    assert_eq!(out["report"]["campaigns"]["uploading"], 1, "{out}");

    h.clock.advance(SignedDuration::from_mins(90));
    let out = h.run_sweep().await?;
    assert_eq!(out["report"]["resumed"], 1, "{out}");
    let again = h.run_sweep().await?;
    assert_eq!(again["report"]["resumed"], 0, "once in the hour: {again}");
    let msgs = h.receive(&h.upload_queue_url).await?;
    assert_eq!(msgs.len(), 1, "one continuation queued");
    assert!(matches!(
        serde_json::from_str::<WorkItem>(&msgs[0].body)?,
        WorkItem::ContinueUpload { campaign_id } if campaign_id.as_str() == id
    ));
    let c = h.campaign(id).await?;
    assert_eq!(c.sweep.as_ref().map(|m| m.resumes), Some(1));

    // The resumed upload goes on from its checkpoint to the end.
    let resp = h.deliver_upload(&msgs).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    h.ack(&h.upload_queue_url, &msgs, &resp).await?;
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::AudienceReady, "failure: {:?}", c.failure);
    assert_eq!(c.audience.uploaded, drop.valid_ids.len() as u64);
    let members: BTreeSet<String> = h.emarsys()?.contact_lists()[0]
        .members
        .iter()
        .cloned()
        .collect();
    assert_eq!(members, known_ids(&h, &drop)?);
    assert_eq!(h.receive(&h.schedule_queue_url).await?.len(), 1);
    let runs = h.store().runs(&c.id).await?;
    assert!(
        runs.iter()
            .any(|r| r.step == "sweep" && r.outcome == "resumed"),
        "{runs:?}"
    );
    assert!(h.alerts().await?.is_empty(), "nothing to alert");
    Ok(())
}
