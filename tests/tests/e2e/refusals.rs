//! Tests 5 and 6: drops that cannot be sent fail their campaign cleanly, once, with a reason.

use crate::common::prefix;
use espbridge_core::State;
use espbridge_tests::{Drop, Harness, HarnessOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_breaking_the_schema_fails_the_campaign() -> anyhow::Result<()> {
    let Some(h) = Harness::start("bad_manifest", HarnessOptions::default()).await? else {
        return Ok(());
    };
    let id = "bad-manifest";
    let mut drop = Drop::default();
    drop.add_file("audience.csv", "c-", 100, &[])?;
    let mut manifest = drop.manifest(id, "1001", "tomorrow at nine");
    manifest["esp"] = "mailchimp".into();
    let body = h.drop_campaign(&prefix(id), &drop, &manifest).await?;

    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "not retried: {resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Failed);
    let reason = c.failure.map(|f| f.reason).unwrap_or_default();
    assert!(reason.contains("/send_at"), "{reason}");
    assert!(reason.contains("/esp"), "{reason}");
    let alerts = h.alerts().await?;
    assert_eq!(alerts.len(), 1, "alerted once: {alerts:?}");
    let (subject, alert) = &alerts[0];
    assert_eq!(
        subject,
        "espbridge: campaign bad-manifest failed (2026-11-24)"
    );
    assert_eq!(alert["kind"], "failed");
    assert_eq!(alert["campaign_id"], id);
    assert_eq!(alert["reason"], reason.as_str());
    assert!(h.exists(&format!("{}audience.csv", prefix(id))).await);
    assert!(h.exists(&format!("{}manifest.json", prefix(id))).await);
    assert!(
        !h.emarsys()?
            .requests()
            .iter()
            .any(|r| r.path.contains("contactlist")),
        "no ESP call"
    );
    assert!(h.emarsys()?.contact_lists().is_empty());
    assert!(h.receive(&h.schedule_queue_url).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audience_without_the_id_column_fails_the_campaign() -> anyhow::Result<()> {
    let Some(h) = Harness::start("bad_header", HarnessOptions::default()).await? else {
        return Ok(());
    };
    let id = "bad-header";
    let template = h.pick_template().await?;
    let mut drop = Drop::default();
    drop.add_raw("members.csv", "id,first_name\nc1,Ann\nc2,Bob\n");
    let send_at = h.send_at_tomorrow_9()?;
    let send_text = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let manifest = drop.manifest(id, &template, &send_text);
    let body = h.drop_campaign(&prefix(id), &drop, &manifest).await?;

    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "not retried: {resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Failed);
    let reason = c.failure.map(|f| f.reason).unwrap_or_default();
    assert!(reason.contains("members.csv"), "{reason}");
    assert!(reason.contains("line 1"), "{reason}");
    assert!(
        h.emarsys()?
            .contact_lists()
            .iter()
            .all(|l| l.members.is_empty())
    );
    assert!(h.receive(&h.schedule_queue_url).await?.is_empty());
    Ok(())
}
