//! Test 4: an upload longer than one invocation continues through its own queue messages.

use crate::common::{known_ids, standard_drop};
use espbridge_core::State;
use espbridge_core::ports::WorkItem;
use espbridge_tests::{Harness, HarnessOptions};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuations_carry_the_upload_to_the_end() -> anyhow::Result<()> {
    let Some(mut h) = Harness::start("continuation", HarnessOptions::default()).await? else {
        return Ok(());
    };
    h.upload.settings.max_batches_per_run = Some(1);
    let id = "continued-upload";
    let (drop, body) = standard_drop(&h, id, 28_500).await?;

    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Uploading);
    assert_eq!(c.audience.uploaded, 10_000);
    assert_eq!(c.audience.batches, 1);

    let mut invocations = 1;
    while h.campaign(id).await?.state == State::Uploading {
        let msgs = h.receive(&h.upload_queue_url).await?;
        assert_eq!(msgs.len(), 1, "one continuation per stop");
        match serde_json::from_str::<WorkItem>(&msgs[0].body)? {
            WorkItem::ContinueUpload { campaign_id } => assert_eq!(campaign_id.as_str(), id),
            other => anyhow::bail!("unexpected work item {other:?}"),
        }
        let resp = h.deliver_upload(&msgs).await?;
        assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
        h.ack(&h.upload_queue_url, &msgs, &resp).await?;
        invocations += 1;
        anyhow::ensure!(invocations <= 10, "the upload never finished");
    }
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::AudienceReady, "failure: {:?}", c.failure);
    assert_eq!(
        invocations, 3,
        "28,500 rows at one 10,000-row batch per invocation"
    );
    assert_eq!(c.audience.uploaded, drop.valid_ids.len() as u64);
    assert!(h.receive(&h.upload_queue_url).await?.is_empty());

    let runs = h.store().runs(&c.id).await?;
    let outcomes: Vec<&str> = runs
        .iter()
        .filter(|r| r.step == "upload")
        .map(|r| r.outcome.as_str())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "continued").count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "done").count(),
        1,
        "{outcomes:?}"
    );

    let scheduled = h.receive(&h.schedule_queue_url).await?;
    assert_eq!(scheduled.len(), 1);
    assert!(matches!(
        serde_json::from_str::<WorkItem>(&scheduled[0].body)?,
        WorkItem::ScheduleSend { campaign_id } if campaign_id.as_str() == id
    ));
    let members: BTreeSet<String> = h.emarsys()?.contact_lists()[0]
        .members
        .iter()
        .cloned()
        .collect();
    assert_eq!(members, known_ids(&h, &drop)?);
    Ok(())
}
