//! Test 3: an invocation killed mid-upload (batches checkpointed, the last one in flight) loses
//! no row and duplicates nobody when the original S3 event comes back.

use crate::common::{known_ids, standard_drop};
use espbridge_core::CampaignId;
use espbridge_core::State;
use espbridge_core::service::{Deadline, UploadObserver};
use espbridge_emarsys::sim::EmarsysSim;
use espbridge_sim::{Fault, FaultKind};
use espbridge_tests::events::{SqsRecord, sqs_event};
use espbridge_tests::{Harness, HarnessOptions};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// After the first checkpoint, makes the next `/add` hang (processed by the ESP, answer held)
/// so the invocation can be killed while that batch is in flight. Emarsys keeps four batches in
/// flight, so which batch that is depends on the pace; the batches after it may be done at the
/// ESP but are not counted (the checkpoint only covers contiguous batches).
struct HangNextBatch {
    sim: Arc<EmarsysSim>,
}

impl UploadObserver for HangNextBatch {
    fn validated(&self, _: &CampaignId, _: u64, _: u64) {}
    fn uploaded(&self, _: &CampaignId, uploaded: u64, _: u64) {
        if uploaded == 10_000 {
            self.sim.inject(Fault::on(
                FaultKind::Timeout(Duration::from_secs(15)),
                "/add",
                1,
            ));
        }
    }
}

fn add_calls(h: &Harness) -> anyhow::Result<usize> {
    Ok(h.emarsys()?
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/add"))
        .count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_upload_resumes_without_loss_or_duplicates() -> anyhow::Result<()> {
    let Some(h) = Harness::start("kill_midway", HarnessOptions::default()).await? else {
        return Ok(());
    };
    let id = "killed-upload";
    // Six batches: five of 10,000 and the last of 4,998 (two of the rows are rejected).
    let (drop, body) = standard_drop(&h, id, 55_000).await?;
    let valid = drop.valid_ids.len();

    let mut services = h.upload.clone();
    services.settings.observer = Some(Arc::new(HangNextBatch { sim: h.emarsys()? }));
    let record = SqsRecord {
        message_id: "first-delivery".into(),
        receipt_handle: "rh-1".into(),
        body: body.clone(),
        receive_count: 1,
    };
    let ev = sqs_event("arn:aws:sqs:us-east-1:123456789012:upload", &[record])?;
    let run = upload_audience::handle(&services, ev, Deadline::none());
    let hung_with_its_predecessors_checkpointed = async {
        // Every batch is at the ESP (one held), and the checkpoint has settled on the batches
        // before the held one.
        while add_calls(&h).unwrap_or(0) < 6 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut last = None;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = h.campaign(id).await.ok().map(|c| c.audience.uploaded);
            if now.is_some() && now == last {
                break;
            }
            last = now;
        }
    };
    tokio::select! {
        resp = run => anyhow::bail!("the upload was meant to hang in a batch, it ended: {resp:?}"),
        _ = tokio::time::timeout(Duration::from_secs(60), hung_with_its_predecessors_checkpointed) => {}
    }
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Uploading);
    let done = c.audience.uploaded;
    assert!(
        done >= 10_000 && done < valid as u64 && done % 10_000 == 0,
        "whole batches before the held one are checkpointed, the held one is not: {done}"
    );
    assert_eq!(add_calls(&h)?, 6);

    // The original event again (as SQS redelivers it after the visibility timeout).
    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::AudienceReady, "failure: {:?}", c.failure);
    assert_eq!(c.audience.uploaded, valid as u64);

    let lists = h.emarsys()?.contact_lists();
    assert_eq!(lists.len(), 1);
    let members: BTreeSet<String> = lists[0].members.iter().cloned().collect();
    assert_eq!(members.len(), lists[0].members.len(), "no member twice");
    assert_eq!(members, known_ids(&h, &drop)?, "no loss");
    let sent = h.ids_sent()?.len();
    assert_eq!(
        sent,
        valid + (valid - done as usize),
        "the batch in flight at the kill sent twice, nothing else"
    );
    Ok(())
}
