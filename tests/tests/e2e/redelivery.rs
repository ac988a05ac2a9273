//! Test 2: S3 events are delivered at least once; a repeat must not repeat any work.

use crate::common::{known_ids, standard_drop};
use espbridge_core::State;
use espbridge_tests::{Harness, HarnessOptions};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_s3_event_changes_nothing() -> anyhow::Result<()> {
    let Some(h) = Harness::start("redelivery", HarnessOptions::default()).await? else {
        return Ok(());
    };
    let id = "repeat-me";
    let (drop, body) = standard_drop(&h, id, 12_000).await?;

    // Two deliveries before any schedule-send.
    let first = h.deliver_upload_body(&body).await?;
    assert!(first.batch_item_failures.is_empty(), "{first:?}");
    let sent_after_first = h.ids_sent()?.len();
    let second = h.deliver_upload_body(&body).await?;
    assert!(second.batch_item_failures.is_empty(), "{second:?}");
    assert_eq!(
        h.ids_sent()?.len(),
        sent_after_first,
        "the repeat uploaded nothing"
    );
    assert_eq!(h.campaign(id).await?.state, State::AudienceReady);

    let (_, resp) = h.run_schedule_queue().await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    assert_eq!(h.campaign(id).await?.state, State::Scheduled);

    // And once more after the send is scheduled.
    let third = h.deliver_upload_body(&body).await?;
    assert!(third.batch_item_failures.is_empty(), "{third:?}");
    let (_, resp) = h.run_schedule_queue().await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");

    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Scheduled);
    let records = h.store().list_by_state(State::Scheduled, 10).await?;
    assert_eq!(records.len(), 1);
    for s in [
        State::Received,
        State::Uploading,
        State::AudienceReady,
        State::Failed,
    ] {
        assert!(h.store().list_by_state(s, 10).await?.is_empty(), "{s}");
    }
    let lists = h.emarsys()?.contact_lists();
    assert_eq!(lists.len(), 1);
    let members: BTreeSet<String> = lists[0].members.iter().cloned().collect();
    assert_eq!(members, known_ids(&h, &drop)?);
    assert_eq!(h.ids_sent()?.len(), sent_after_first);
    let copies = h
        .emarsys()?
        .emails()
        .into_iter()
        .filter(|e| e.copied_from.is_some())
        .count();
    assert_eq!(copies, 1);
    assert_eq!(h.emarsys()?.launch_count(), 1);
    Ok(())
}
