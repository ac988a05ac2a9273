//! Bronto end to end: the same handlers and events as the Emarsys suite, with the Bronto account
//! and simulator (a list per campaign filled by e-mail with paced `addToList` calls, a delivery
//! with the headers in force, `readDeliveries` metrics, and the list removed after a retention).

use crate::common::{first_template, listed_template_ids, prefix, upload_with};
use espbridge_bronto::keys;
use espbridge_bronto::sim::BrontoSimConfig;
use espbridge_core::EspKind;
use espbridge_core::{Clock, State};
use espbridge_tests::audience::email_of;
use espbridge_tests::{Bad, Drop, Harness, HarnessOptions};
use std::collections::BTreeSet;
use std::time::Duration;

fn options() -> HarnessOptions {
    HarnessOptions::esp(EspKind::Bronto)
}

/// A drop of `rows` valid rows with an e-mail column, plus two bad rows.
fn mail_drop(campaign_id: &str, rows: usize) -> anyhow::Result<Drop> {
    let mut drop = Drop {
        emails: true,
        ..Default::default()
    };
    drop.add_file(
        "audience.csv",
        &format!("{campaign_id}-"),
        rows,
        &[(3, Bad::EmptyCustomerId), (rows / 2, Bad::Duplicate)],
    )?;
    Ok(drop)
}

/// Puts `drop` with a Bronto manifest for `template_id`; returns the send time and the
/// manifest's S3 event as a message body.
async fn bronto_drop(
    h: &Harness,
    campaign_id: &str,
    drop: &Drop,
    template_id: &str,
) -> anyhow::Result<(jiff::ZonedDateTime, String)> {
    let send_at = h.send_at_tomorrow_9()?;
    let send_at_text = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let mut manifest = drop.manifest(campaign_id, template_id, &send_at_text);
    manifest["esp"] = "bronto".into();
    let body = h
        .drop_campaign(&prefix(campaign_id), drop, &manifest)
        .await?;
    Ok((send_at, body))
}

/// E-mails of the drop's valid rows that are Bronto contacts in the simulator.
fn known_emails(h: &Harness, drop: &Drop) -> anyhow::Result<BTreeSet<String>> {
    let br = h.br()?;
    Ok(drop
        .valid_ids
        .iter()
        .map(|id| email_of(id))
        .filter(|e| br.is_contact(e))
        .collect())
}

/// (addToList calls answered 200, addresses in them) from the simulator's log.
fn add_to_list_calls(h: &Harness) -> anyhow::Result<(usize, u64)> {
    let calls: Vec<u64> = h
        .br()?
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .filter_map(|r| r.body)
        .filter(|b| b["operation"] == "addToList")
        // `items` counts the contacts of the call.
        .map(|b| b["items"].as_u64().unwrap_or(0))
        .collect();
    Ok((calls.len(), calls.iter().sum()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bronto_drop_becomes_a_completed_campaign_and_its_list_is_removed_later()
-> anyhow::Result<()> {
    let Some(h) = Harness::start("br_happy", options()).await? else {
        return Ok(());
    };
    let br = h.br()?;
    let sim_config = br.config();

    // Templates: the messages of the Optimove folder only.
    let listed = listed_template_ids(&h, "bronto").await?;
    let in_folder: BTreeSet<String> = sim_config
        .folders
        .iter()
        .filter(|f| f.name == "Optimove")
        .flat_map(|f| f.messages.iter().map(|m| m.id.clone()))
        .collect();
    assert!(!in_folder.is_empty());
    assert_eq!(listed, in_folder, "only the Optimove folder's messages");
    let template = first_template(&h, "bronto").await?;
    let (status, v) = h
        .api_json("GET", &format!("/templates/bronto/{template}/preview"), "")
        .await?;
    assert_eq!(status, 200, "{v}");
    assert!(v["body"].as_str().is_some_and(|b| b.contains('<')), "{v}");

    // Headers: account defaults, then a validated per-template override (sent base64, as API
    // Gateway may pass a body).
    let path = format!("/templates/bronto/{template}/headers");
    let (status, v) = h.api_json("GET", &path, "").await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["source"], "account_default");
    let (status, v) = h
        .api_json_body(
            "PUT",
            &path,
            r#"{"from_email": "no-at-sign", "from_name": "Brand"}"#,
            false,
        )
        .await?;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["fields"][0]["field"], "from_email", "{v}");
    let good = r#"{"from_email": "offers@brand.example", "from_name": "Brand Offers", "reply_to": "care@brand.example"}"#;
    let (status, v) = h.api_json_body("PUT", &path, good, true).await?;
    assert_eq!(status, 200, "{v}");
    let (_, v) = h.api_json("GET", &path, "").await?;
    assert_eq!(v["source"], "template", "{v}");

    // Upload and schedule.
    let id = "br-happy";
    let drop = mail_drop(id, 12_000)?;
    let (send_at, body) = bronto_drop(&h, id, &drop, &template).await?;
    let runs = upload_with(&h, id, &body, |_| {}).await?;
    assert_eq!(runs, 1);
    let c = h.campaign(id).await?;
    assert_eq!(c.audience.valid, 12_000);
    assert_eq!(c.audience.uploaded, 12_000);
    assert_eq!(c.audience.rejected, 2);
    let known = known_emails(&h, &drop)?;
    let unknown = 12_000 - known.len() as u64;
    assert!(unknown > 0, "the simulator's share of unknown addresses");
    assert_eq!(
        c.audience.not_in_esp, unknown,
        "not in ESP = unknown addresses"
    );
    assert_eq!(c.audience.esp_rejected, 0);
    let list_id = c.esp_ids.get(keys::LIST_ID).unwrap_or_default().to_owned();
    let members: Vec<String> = br.list_members(&list_id);
    assert_eq!(members.len(), known.len(), "each known address once");
    assert_eq!(members.iter().cloned().collect::<BTreeSet<_>>(), known);
    let lists = br.lists();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].name, format!("espbridge_{id}"));
    let (calls, addresses) = add_to_list_calls(&h)?;
    assert_eq!((calls, addresses), (3, 12_000), "5,000 per call at most");

    let (n, resp) = h.run_schedule_queue().await?;
    assert_eq!(n, 1);
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Scheduled, "failure: {:?}", c.failure);
    let deliveries = br.deliveries();
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!(d.message_id, template);
    assert_eq!(d.start, send_at.timestamp());
    assert_eq!(d.kind, "triggered");
    assert_eq!(
        (
            d.from_email.as_str(),
            d.from_name.as_str(),
            d.reply_email.as_deref()
        ),
        (
            "offers@brand.example",
            "Brand Offers",
            Some("care@brand.example")
        ),
        "the template's override is in force"
    );
    assert_eq!(d.recipients.len(), 1);
    assert_eq!(d.recipients[0].id, list_id);
    assert_eq!(d.recipients[0].delivery_type, "selected");
    assert_eq!(c.esp_ids.get(keys::DELIVERY_ID), Some(d.id.as_str()));

    // A redelivered schedule message adds no second delivery.
    assert_eq!(
        h.schedule.schedule_send(&c.id, false).await?,
        espbridge_core::service::schedule::ScheduleOutcome::Skipped(c.id.clone(), State::Scheduled)
    );
    assert_eq!(br.deliveries().len(), 1);

    // Seven daily polls, then completed with the list kept for the retention.
    h.poll_seven_days(id, send_at.timestamp()).await?;
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Completed, "failure: {:?}", c.failure);
    let snaps = h.store().snapshots(&c.id).await?;
    assert_eq!(snaps.len(), 7);
    let day7 = snaps[6].counts;
    assert!(day7.sent > 0 && day7.delivered <= day7.sent, "{day7:?}");
    assert!(
        day7.opens >= snaps[0].counts.opens && day7.clicks > 0,
        "{day7:?}"
    );
    assert!(
        snaps
            .windows(2)
            .all(|w| w[0].counts.unsubscribes <= w[1].counts.unsubscribes),
        "{snaps:?}"
    );
    let due = c
        .cleanup_due_at
        .ok_or_else(|| anyhow::anyhow!("no clean-up date"))?;
    assert_eq!(
        due.duration_since(h.clock.now()).as_hours(),
        30 * 24,
        "the default retention is 30 days"
    );
    assert_eq!(br.lists().len(), 1, "the list stays during the retention");
    let cleanup = format!("espbridge-cleanup-{id}");
    let expression = h.schedule_expression(&cleanup).await;
    assert!(
        expression.as_deref().is_some_and(|e| e.starts_with("at(")),
        "a one-off clean-up schedule: {expression:?}"
    );

    // The one-off schedule fires at the due time: the list is deleted, and only it.
    let input = h.schedule_input(&cleanup).await?;
    h.clock.set(due);
    let out = poll_metrics::handle(&h.poll, input.clone()).await?;
    assert_eq!(out["campaign_id"], id, "{out}");
    assert!(br.lists().is_empty(), "{:?}", br.lists());
    let c = h.campaign(id).await?;
    assert_eq!(c.cleaned_up_at, Some(due));
    assert_eq!(h.schedule_expression(&cleanup).await, None, "deleted");
    // A late duplicate of the trigger changes nothing.
    poll_metrics::handle(&h.poll, input).await?;
    assert_eq!(h.campaign(id).await?.cleaned_up_at, Some(due));
    Ok(())
}

/// 200,000 contacts at 50,000 addresses per "minute" (a 400 ms minute on both sides: the
/// time-scale knob), ten 5,000-address batches per invocation: four invocations, every address
/// once, none refused by the simulator's rate limit, and a session expired mid-way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_contacts_are_paced_across_continuations() -> anyhow::Result<()> {
    let window = Duration::from_millis(400);
    let opts = HarnessOptions {
        account: serde_json::json!({
            "rate_window_ms": window.as_millis() as u64,
            "addresses_per_minute": 50_000,
        }),
        ..options()
    }
    .with_simulator(move |setup| async move {
        let config = BrontoSimConfig {
            rate_window: window,
            addresses_per_minute: Some(50_000),
            ..Default::default()
        };
        espbridge_bronto::sim::account(config, &setup).await
    });
    let Some(mut h) = Harness::start("br_paced", opts).await? else {
        return Ok(());
    };
    h.upload.settings.max_batches_per_run = Some(10);
    let template = first_template(&h, "bronto").await?;
    let id = "br-paced";
    let drop = mail_drop(id, 200_000)?;
    let (_, body) = bronto_drop(&h, id, &drop, &template).await?;
    let started = std::time::Instant::now();
    let runs = upload_with(&h, id, &body, |h| {
        // The idle expiry hits between invocations: the client logs in again.
        if let Ok(br) = h.br() {
            br.expire_sessions();
        }
    })
    .await?;
    let took = started.elapsed();
    assert_eq!(runs, 4, "40 batches of 5,000 at ten per invocation");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::AudienceReady, "failure: {:?}", c.failure);
    assert_eq!(c.audience.uploaded, 200_000);
    assert_eq!(c.audience.batches, 40);
    let br = h.br()?;
    let known = known_emails(&h, &drop)?;
    let list_id = c.esp_ids.get(keys::LIST_ID).unwrap_or_default().to_owned();
    let members = br.list_members(&list_id);
    assert_eq!(members.len(), known.len(), "no loss, no duplicate");
    assert_eq!(members.into_iter().collect::<BTreeSet<_>>(), known);
    assert_eq!(c.audience.not_in_esp, 200_000 - known.len() as u64);
    let (calls, addresses) = add_to_list_calls(&h)?;
    assert_eq!((calls, addresses), (40, 200_000), "no batch sent twice");
    assert_eq!(br.rate_refusals(), 0, "the pacer kept under the allowance");
    assert!(
        br.logins() >= 4,
        "a new session after each expiry: {}",
        br.logins()
    );
    // 200,000 addresses at 50,000 per window need at least three full windows after the first.
    assert!(took >= window * 3, "paced: {took:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bronto_drop_without_an_email_column_fails_before_anything_is_sent() -> anyhow::Result<()>
{
    let Some(h) = Harness::start("br_no_email", options()).await? else {
        return Ok(());
    };
    let template = first_template(&h, "bronto").await?;
    let id = "br-no-email";
    let mut drop = mail_drop(id, 100)?;
    drop.emails = false;
    let mut manifest = drop.manifest(id, &template, "2026-12-01T09:00:00+01:00");
    manifest["esp"] = "bronto".into();
    let body = h.drop_campaign(&prefix(id), &drop, &manifest).await?;
    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Failed);
    let reason = c.failure.map(|f| f.reason).unwrap_or_default();
    assert!(
        reason.contains("e-mail") || reason.contains("email"),
        "{reason}"
    );
    assert!(reason.contains("manifest.json"), "names the file: {reason}");
    let br = h.br()?;
    assert!(br.lists().is_empty() && br.deliveries().is_empty());
    assert!(
        h.exists(&format!("{}manifest.json", prefix(id))).await,
        "the rejected drop is kept"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_addresses_are_counted_per_row_and_a_lost_answer_sends_once() -> anyhow::Result<()>
{
    // A short client timeout, so an answer held by the simulator is lost quickly.
    let opts = HarnessOptions {
        account: serde_json::json!({"request_timeout_secs": 1}),
        ..options()
    };
    let Some(h) = Harness::start("br_refused", opts).await? else {
        return Ok(());
    };
    let template = first_template(&h, "bronto").await?;
    let id = "br-refused";
    // Valid for espbridge (RFC 5321 lengths), refused by Bronto: longer than its 100 characters.
    let long = format!("{}@{}.example.org", "l".repeat(30), "d".repeat(60));
    assert!(long.len() > 100);
    let mut drop = Drop {
        emails: true,
        ..Default::default()
    };
    let mut text = String::from("customer_id,email,first_name\n");
    for i in 0..50 {
        text.push_str(&format!(
            "{id}-{i},{},N{i}\n",
            email_of(&format!("{id}-{i}"))
        ));
        drop.valid_ids.push(format!("{id}-{i}"));
    }
    text.push_str(&format!("{id}-long,{long},Long\n"));
    drop.add_raw("audience.csv", &text);
    let (_, body) = bronto_drop(&h, id, &drop, &template).await?;
    upload_with(&h, id, &body, |_| {}).await?;
    let c = h.campaign(id).await?;
    assert_eq!(c.audience.uploaded, 51);
    assert_eq!(c.audience.esp_rejected, 1, "the long address, per row");
    let known = known_emails(&h, &drop)?;
    assert_eq!(c.audience.not_in_esp, 50 - known.len() as u64);

    // The first addDeliveries answer is lost after the simulator acted (held past the client's
    // timeout): the retry finds the delivery instead of adding a second.
    h.br()?.inject(espbridge_sim::Fault::on(
        espbridge_sim::FaultKind::Timeout(Duration::from_secs(3)),
        "addDeliveries",
        1,
    ));
    let (n, _) = h.run_schedule_queue().await?;
    assert_eq!(n, 1);
    let mut c = h.campaign(id).await?;
    for _ in 0..3 {
        if c.state == State::Scheduled {
            break;
        }
        h.schedule.schedule_send(&c.id, false).await.ok();
        c = h.campaign(id).await?;
    }
    assert_eq!(c.state, State::Scheduled, "failure: {:?}", c.failure);
    assert_eq!(h.br()?.deliveries().len(), 1);
    Ok(())
}
