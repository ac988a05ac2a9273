//! Test 7: an ESP outage during schedule-send is retried through SQS and sends exactly once.

use crate::common::standard_drop;
use espbridge_core::State;
use espbridge_sim::{Fault, FaultKind};
use espbridge_tests::{Harness, HarnessOptions};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_send_survives_an_esp_outage() -> anyhow::Result<()> {
    let opts = HarnessOptions {
        max_attempts: 3,
        ..Default::default()
    };
    let Some(h) = Harness::start("outage", opts).await? else {
        return Ok(());
    };
    let id = "outage-send";
    let (_, body) = standard_drop(&h, id, 500).await?;
    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");

    // Every attempt of the client's call fails.
    h.emarsys()?
        .inject(Fault::on(FaultKind::Status(503), "/copy", 3));
    let msgs = h.receive(&h.schedule_queue_url).await?;
    assert_eq!(msgs.len(), 1);
    let resp = h.deliver_schedule(&msgs).await?;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec![msgs[0].message_id.as_str()]);
    h.ack(&h.schedule_queue_url, &msgs, &resp).await?;
    assert_eq!(h.campaign(id).await?.state, State::AudienceReady);
    assert_eq!(h.emarsys()?.launch_count(), 0);
    let sim = h.emarsys()?;
    let copy_calls = || {
        sim.requests()
            .iter()
            .filter(|r| r.path.ends_with("/copy"))
            .map(|r| r.status)
            .collect::<Vec<u16>>()
    };
    assert_eq!(copy_calls(), vec![503, 503, 503]);

    // The fault is spent; SQS redelivers the same message after its visibility timeout.
    let mut again = Vec::new();
    for _ in 0..50 {
        again = h.receive(&h.schedule_queue_url).await?;
        if !again.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, msgs[0].message_id);
    assert_eq!(again[0].receive_count, 2);
    let resp = h.deliver_schedule(&again).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    h.ack(&h.schedule_queue_url, &again, &resp).await?;

    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Scheduled, "failure: {:?}", c.failure);
    let copies = h
        .emarsys()?
        .emails()
        .into_iter()
        .filter(|e| e.copied_from.is_some())
        .count();
    assert_eq!(copies, 1);
    assert_eq!(h.emarsys()?.launch_count(), 1);
    assert_eq!(copy_calls().iter().filter(|s| **s == 200).count(), 1);
    let runs = h.store().runs(&c.id).await?;
    assert!(
        runs.iter()
            .any(|r| r.step == "schedule" && r.outcome == "retry")
    );
    assert!(
        runs.iter()
            .any(|r| r.step == "schedule" && r.outcome == "done")
    );
    Ok(())
}
