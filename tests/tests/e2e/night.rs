//! A night's guarantees end to end, on every ESP: one schedule message delivered twice at once
//! books one send; a variant refused after another was booked leaves a campaign that says mail
//! may go out (`partially_scheduled`), never a plain `failed` one.

use crate::common::{first_template, prefix, upload_with};
use espbridge_core::{EspKind, State};
use espbridge_tests::{Bad, Drop, Harness, HarnessOptions};

/// A drop of `rows` rows (e-mails too, for Bronto) for `esp`'s first listed template; returns
/// the send time and the manifest's S3 event.
async fn drop_for(
    h: &Harness,
    esp: EspKind,
    id: &str,
    rows: usize,
) -> anyhow::Result<(jiff::Timestamp, String)> {
    let template = first_template(h, esp.as_str()).await?;
    let send_at = h.send_at_tomorrow_9()?;
    let send_text = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let mut drop = Drop {
        emails: esp == EspKind::Bronto,
        ..Default::default()
    };
    drop.add_file(
        "audience.csv",
        &format!("{id}-"),
        rows,
        &[(3, Bad::Duplicate)],
    )?;
    let mut manifest = drop.manifest(id, &template, &send_text);
    manifest["esp"] = esp.as_str().into();
    let body = h.drop_campaign(&prefix(id), &drop, &manifest).await?;
    Ok((send_at.timestamp(), body))
}

/// Two schedule-send instances receive the same message at once: one books the send, the other
/// finds the claim and leaves the message for a redelivery, which then finds the campaign
/// scheduled. At the send time the ESP sends the campaign once.
async fn racing_deliveries_book_one_send(esp: EspKind) -> anyhow::Result<()> {
    let test = format!("racing_schedule_{esp}");
    let Some(h) = Harness::start(&test, HarnessOptions::esp(esp)).await? else {
        return Ok(());
    };
    let id = format!("race-{esp}");
    let (send_at, body) = drop_for(&h, esp, &id, 300).await?;
    upload_with(&h, &id, &body, |_| {}).await?;
    let msgs = h.receive(&h.schedule_queue_url).await?;
    anyhow::ensure!(msgs.len() == 1, "{msgs:?}");
    let other = h.schedule_instance().await?;
    let (a, b) = tokio::join!(
        h.deliver_schedule(&msgs),
        h.deliver_schedule_to(&other, &msgs)
    );
    let (a, b) = (a?, b?);
    let failures = a.batch_item_failures.len() + b.batch_item_failures.len();
    anyhow::ensure!(failures <= 1, "{a:?} {b:?}");
    let c = h.campaign(&id).await?;
    anyhow::ensure!(
        c.state == State::Scheduled,
        "{:?}: {:?}",
        c.state,
        c.failure
    );
    anyhow::ensure!(
        c.send_claim.is_none(),
        "the claim is released: {:?}",
        c.send_claim
    );
    if failures == 1 {
        // The redelivery of the claimed message changes nothing.
        let again = h.deliver_schedule(&msgs).await?;
        anyhow::ensure!(again.batch_item_failures.is_empty(), "{again:?}");
        anyhow::ensure!(h.campaign(&id).await?.state == State::Scheduled);
    }
    let view = h.sim_view();
    anyhow::ensure!(view.sends().is_empty(), "nothing is sent before its time");
    h.clock.set(send_at + jiff::SignedDuration::from_hours(1));
    let sends = view.sends();
    let name = format!("espbridge_{id}");
    anyhow::ensure!(
        sends.len() == 1 && sends[0].name == name,
        "{esp}: one send of {name}, got {:?}",
        sends.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    anyhow::ensure!(!sends[0].recipients.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedule_deliveries_send_once_on_emarsys() -> anyhow::Result<()> {
    racing_deliveries_book_one_send(EspKind::Emarsys).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedule_deliveries_send_once_on_smartfocus() -> anyhow::Result<()> {
    racing_deliveries_book_one_send(EspKind::Smartfocus).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedule_deliveries_send_once_on_silverpop() -> anyhow::Result<()> {
    racing_deliveries_book_one_send(EspKind::Silverpop).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedule_deliveries_send_once_on_bronto() -> anyhow::Result<()> {
    racing_deliveries_book_one_send(EspKind::Bronto).await
}

/// Variant A's send is booked, then the ESP refuses variant B's template: the campaign becomes
/// `partially_scheduled` with the reason (the API shows it), A's metrics are still collected,
/// and a redelivery never turns it into `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_variant_after_a_booked_one_leaves_a_partially_scheduled_campaign()
-> anyhow::Result<()> {
    let Some(h) = Harness::start("partial_send", HarnessOptions::default()).await? else {
        return Ok(());
    };
    let id = "ab-partial";
    let template = h.pick_template().await?;
    // Variant B's e-mail exists when the drop is checked, and is deleted at the ESP before the
    // send is booked: Emarsys then refuses to copy it.
    let (_, listed) = h.api_json("GET", "/templates", "esp=emarsys").await?;
    let other = listed["templates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_str())
        .find(|t| *t != template)
        .ok_or_else(|| anyhow::anyhow!("a second template: {listed}"))?
        .to_owned();
    let mut drop = Drop::default();
    drop.add_file("audience.csv", "p-", 2_000, &[])?;
    let send_at = h.send_at_tomorrow_9()?;
    let send_text = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let mut manifest = drop.manifest(id, &template, &send_text);
    manifest["variants"] = serde_json::json!([
        {"name": "A", "template_id": template, "share": 0.5},
        {"name": "B", "template_id": other, "share": 0.5}
    ]);
    let body = h.drop_campaign(&prefix(id), &drop, &manifest).await?;
    upload_with(&h, id, &body, |_| {}).await?;
    assert!(
        h.emarsys()?.delete_email(other.parse()?),
        "B's e-mail deleted"
    );

    let msgs = h.receive(&h.schedule_queue_url).await?;
    let resp = h.deliver_schedule(&msgs).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::PartiallyScheduled, "{:?}", c.failure);
    let failure = c.failure.clone().expect("the reason is recorded");
    assert_eq!(failure.step, "schedule");
    assert!(
        failure.reason.contains("1 of 2 sends booked"),
        "{}",
        failure.reason
    );
    assert_eq!(h.emarsys()?.launch_count(), 1);
    let (status, v) = h.api_json("GET", &format!("/campaigns/{id}"), "").await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "partially_scheduled", "{v}");
    // The alert topic's subscribers hear that mail may go out, with the reason.
    let alerts = h.alerts().await?;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (subject, alert) = &alerts[0];
    assert!(subject.contains("ab-partial is partly booked"), "{subject}");
    assert_eq!(alert["kind"], "mail_may_go_out");
    assert_eq!(alert["state"], "partially_scheduled");
    assert_eq!(alert["reason"], failure.reason.as_str());

    // Redelivered: B is refused again; the campaign stays as it is, A is not booked twice,
    // and nobody is alerted twice.
    let resp = h.deliver_schedule(&msgs).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    assert_eq!(h.campaign(id).await?.state, State::PartiallyScheduled);
    assert_eq!(h.emarsys()?.launch_count(), 1);
    assert!(h.alerts().await?.is_empty());

    // At the send time only A goes out, and its metrics are collected.
    h.clock
        .set(send_at.timestamp() + jiff::SignedDuration::from_hours(25));
    let sends = h.sim_view().sends();
    let names: Vec<&str> = sends.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["espbridge_ab-partial_A"]);
    h.poll.poll_metrics(&c.id).await?;
    let snaps = h.store().snapshots(&c.id).await?;
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert!(snaps[0].counts.sent > 0, "{snaps:?}");
    assert_ne!(h.campaign(id).await?.state, State::Failed);
    Ok(())
}
