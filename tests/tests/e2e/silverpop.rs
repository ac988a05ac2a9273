//! Silverpop end to end: the same handlers and events as the Emarsys suite, with the Silverpop
//! account and simulator (a contact list per campaign, or relational rows and a query; a
//! scheduled mailing).

use crate::common::{
    first_template, listed_template_ids, poll_week_to_completed, prefix, upload_with,
};
use espbridge_core::EspKind;
use espbridge_core::State;
use espbridge_silverpop::keys;
use espbridge_silverpop::sim::{SilverpopSimConfig, TableColumn};
use espbridge_tests::{Bad, Drop, Harness, HarnessOptions};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Lists mode makes one AddContactToContactList call per contact, so the drops stay small.
const ROWS: usize = 1_500;

fn options() -> HarnessOptions {
    HarnessOptions::esp(EspKind::Silverpop)
}

/// Puts `drop` with a Silverpop manifest (plus `esp_options`, when given) and returns the send
/// time and the manifest's S3 event as a message body.
async fn sp_drop(
    h: &Harness,
    campaign_id: &str,
    drop: &Drop,
    esp_options: Option<serde_json::Value>,
) -> anyhow::Result<(jiff::ZonedDateTime, String)> {
    let template_id = first_template(h, "silverpop").await?;
    let send_at = h.send_at_tomorrow_9()?;
    let send_at_text = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let mut manifest = drop.manifest(campaign_id, &template_id, &send_at_text);
    manifest["esp"] = "silverpop".into();
    if let Some(o) = esp_options {
        manifest["esp_options"] = o;
    }
    let body = h
        .drop_campaign(&prefix(campaign_id), drop, &manifest)
        .await?;
    Ok((send_at, body))
}

/// A generated drop of [`ROWS`] valid rows and three bad ones.
fn lists_drop(campaign_id: &str) -> anyhow::Result<Drop> {
    let mut drop = Drop::default();
    drop.add_file(
        "audience.csv",
        &format!("{campaign_id}-"),
        ROWS,
        &[
            (3, Bad::EmptyCustomerId),
            (700, Bad::ColumnCount),
            (1_200, Bad::Duplicate),
        ],
    )?;
    Ok(drop)
}

fn relational() -> serde_json::Value {
    serde_json::json!({"silverpop": {"mode": "relational_table"}})
}

/// Customer ids on the campaign's contact list in the simulator.
fn on_list(h: &Harness, campaign_id: &str) -> anyhow::Result<BTreeSet<String>> {
    let list = h
        .sp()?
        .contact_list(&format!("espbridge_{campaign_id}"))
        .ok_or_else(|| anyhow::anyhow!("no contact list for {campaign_id}"))?;
    Ok(list.members.into_iter().collect())
}

/// The drop's valid ids the simulated database holds (the others are counted, not created).
fn known(h: &Harness, drop: &Drop) -> anyhow::Result<BTreeSet<String>> {
    let sp = h.sp()?;
    Ok(drop
        .valid_ids
        .iter()
        .filter(|id| sp.knows(id))
        .cloned()
        .collect())
}

async fn upload(h: &Harness, id: &str, body: &str) -> anyhow::Result<usize> {
    upload_with(h, id, body, |_| {}).await
}

/// schedule-send from the queued message, then seven daily polls; asserts the completion.
async fn schedule_and_poll(
    h: &Harness,
    id: &str,
    send_at: &jiff::ZonedDateTime,
) -> anyhow::Result<()> {
    let (n, resp) = h.run_schedule_queue().await?;
    assert_eq!(n, 1);
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Scheduled, "failure: {:?}", c.failure);
    let sp = h.sp()?;
    assert_eq!(sp.schedule_count(), 1);
    let mailings = sp.mailings();
    assert_eq!(mailings.len(), 1);
    assert_eq!(mailings[0].scheduled_at, send_at.timestamp());
    assert_eq!(mailings[0].folder_path.as_deref(), Some("Optimove"));
    // Lists mode sends to the campaign's contact list, Relational Tables mode to its query.
    let target = match c.esp_ids.get(keys::CONTACT_LIST_ID) {
        Some(list) => list.to_owned(),
        None => {
            let queries = sp.queries();
            assert_eq!(queries.len(), 1);
            queries[0].id.to_string()
        }
    };
    assert_eq!(mailings[0].list_id.to_string(), target);

    poll_week_to_completed(h, id, send_at.timestamp()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silverpop_lists_drop_becomes_a_completed_campaign() -> anyhow::Result<()> {
    let Some(h) = Harness::start("sp_lists", options()).await? else {
        return Ok(());
    };
    let sp = h.sp()?;
    let sp_config = sp.config();

    // Templates: only the Shared ones.
    let listed = listed_template_ids(&h, "silverpop").await?;
    let shared: BTreeSet<String> = sp_config
        .templates
        .iter()
        .filter(|t| t.shared)
        .map(|t| t.id.to_string())
        .collect();
    assert!(
        shared.len() < sp_config.templates.len(),
        "a private one too"
    );
    assert_eq!(listed, shared);

    let id = "sp-spring-sale";
    let drop = lists_drop(id)?;
    let (send_at, body) = sp_drop(&h, id, &drop, None).await?;
    upload(&h, id, &body).await?;
    let c = h.campaign(id).await?;
    assert_eq!(c.audience.rows, drop.data_rows);
    assert_eq!(c.audience.uploaded, drop.valid_ids.len() as u64);
    assert_eq!(c.audience.rejected, drop.rejects.len() as u64);
    let known = known(&h, &drop)?;
    assert!(known.len() < drop.valid_ids.len(), "some ids are unknown");
    assert_eq!(on_list(&h, id)?, known);
    assert_eq!(
        c.audience.not_in_esp,
        (drop.valid_ids.len() - known.len()) as u64
    );
    assert!(sp.created_contacts().is_empty(), "no contact created");
    assert!(sp.queries().is_empty(), "Lists mode needs no query");

    schedule_and_poll(&h, id, &send_at).await?;
    // At the send time the mailing goes to the known customers of the campaign.
    let sends = h.sim_view().sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(
        sends[0].recipients.iter().cloned().collect::<BTreeSet<_>>(),
        known
    );
    Ok(())
}

/// CSV text of one field, quoted when it holds a comma, quote or line break.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// A drop of `rows` valid rows with the given extra columns (name, value of row `i`).
fn custom_drop(
    campaign_id: &str,
    rows: usize,
    columns: &[&str],
    value: impl Fn(usize, &str) -> String,
) -> Drop {
    let mut text = format!("customer_id,{}\n", columns.join(","));
    let mut drop = Drop::default();
    for i in 0..rows {
        let id = format!("{campaign_id}-{i}");
        let vals: Vec<String> = columns.iter().map(|c| csv_field(&value(i, c))).collect();
        text.push_str(&format!("{id},{}\n", vals.join(",")));
        drop.valid_ids.push(id);
        drop.data_rows += 1;
    }
    drop.add_raw("audience.csv", &text);
    drop.fields = columns.iter().map(|c| (*c).to_owned()).collect();
    drop
}

/// Names with every XML special character; row `i` gets one of them.
const TRICKY: &[&str] = &[
    "Ann & \"Bo\" <x>",
    "O'Brien > all",
    "<![CDATA[x]]>",
    "a&amp;b",
    "plain",
];

fn tricky_name(i: usize) -> String {
    format!("{} {i}", TRICKY[i % TRICKY.len()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silverpop_relational_rows_round_trip_xml_specials() -> anyhow::Result<()> {
    let Some(h) = Harness::start("sp_relational", options()).await? else {
        return Ok(());
    };
    let id = "sp-relational";
    let drop = custom_drop(id, 450, &["first_name"], |i, _| tricky_name(i));
    let (send_at, body) = sp_drop(&h, id, &drop, Some(relational())).await?;
    upload(&h, id, &body).await?;
    let c = h.campaign(id).await?;
    assert_eq!(c.audience.uploaded, 450);
    assert_eq!(c.audience.esp_rejected, 0);
    assert_eq!(c.esp_ids.get(keys::MODE), Some("relational_table"));

    let sp = h.sp()?;
    let table_id = h.sp()?.config().relational_table.id;
    let rows: BTreeSet<(String, String, String)> = sp
        .table_rows(table_id)
        .into_iter()
        .map(|r| {
            let get = |k: &str| r.get(k).cloned().unwrap_or_default();
            (get("ActionID"), get("CustomerID"), get("first_name"))
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = (0..450)
        .map(|i| (id.to_owned(), format!("{id}-{i}"), tricky_name(i)))
        .collect();
    assert_eq!(rows, want);
    assert!(sp.contact_lists().is_empty(), "no Lists-mode list");
    assert!(sp.created_contacts().is_empty(), "rows create no contact");

    schedule_and_poll(&h, id, &send_at).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silverpop_rows_the_table_refuses_are_counted() -> anyhow::Result<()> {
    // A numeric column: the table refuses rows whose value is not a number.
    let opts = options().with_simulator(|setup| async move {
        let mut config = SilverpopSimConfig::default().with_table_fields(&["first_name"]);
        config
            .relational_table
            .columns
            .push(TableColumn::new("points", "NUMERIC", false));
        espbridge_silverpop::sim::account(config, &setup).await
    });
    let Some(h) = Harness::start("sp_refused_rows", opts).await? else {
        return Ok(());
    };
    let id = "sp-refused";
    let bad = [17usize, 333];
    let drop = custom_drop(id, 400, &["first_name", "points"], |i, c| match c {
        "points" if bad.contains(&i) => "lots".into(),
        "points" => i.to_string(),
        _ => format!("Name{i}"),
    });
    let template_id = first_template(&h, "silverpop").await?;
    let send_at = h.send_at_tomorrow_9()?;
    let send_at_text = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let mut manifest = drop.manifest(id, &template_id, &send_at_text);
    manifest["esp"] = "silverpop".into();
    manifest["esp_options"] = relational();
    manifest["audience"]["columns"]["fields"] = serde_json::json!(["first_name", "points"]);
    let body = h.drop_campaign(&prefix(id), &drop, &manifest).await?;
    upload(&h, id, &body).await?;

    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::AudienceReady, "failure: {:?}", c.failure);
    assert_eq!(c.audience.esp_rejected, bad.len() as u64);
    assert_eq!(c.audience.rejected, 0, "the drop itself is valid");
    assert_eq!(
        c.audience.uploaded, 400,
        "every valid row was handed to the ESP"
    );
    let table_id = h.sp()?.config().relational_table.id;
    let stored: BTreeSet<String> = h
        .sp()?
        .table_rows(table_id)
        .into_iter()
        .filter_map(|r| r.get("CustomerID").cloned())
        .collect();
    let want: BTreeSet<String> = (0..400)
        .filter(|i| !bad.contains(i))
        .map(|i| format!("{id}-{i}"))
        .collect();
    assert_eq!(stored, want, "every accepted row, none lost");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silverpop_session_expiry_mid_upload_loses_nothing() -> anyhow::Result<()> {
    let Some(mut h) = Harness::start("sp_session_expiry", options()).await? else {
        return Ok(());
    };
    h.upload.settings.max_batches_per_run = Some(1);
    let id = "sp-expiry";
    let drop = lists_drop(id)?;
    let (send_at, body) = sp_drop(&h, id, &drop, None).await?;
    // Logins counted at the last expiry: the next invocation must log in again.
    let at_expiry = AtomicUsize::new(0);
    let runs = upload_with(&h, id, &body, |h| {
        if let Ok(sp) = h.sp() {
            at_expiry.store(sp.logins(), Ordering::SeqCst);
            sp.expire_sessions();
        }
    })
    .await?;
    assert!(
        runs >= 2,
        "1,500 rows at 1,000 per batch, one batch per run"
    );
    let c = h.campaign(id).await?;
    assert_eq!(c.audience.uploaded, drop.valid_ids.len() as u64);
    assert!(
        h.sp()?.logins() > at_expiry.load(Ordering::SeqCst),
        "a new login after expiry"
    );
    assert_eq!(on_list(&h, id)?, known(&h, &drop)?);
    schedule_and_poll(&h, id, &send_at).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silverpop_repeated_events_change_nothing() -> anyhow::Result<()> {
    let Some(h) = Harness::start("sp_redelivery", options()).await? else {
        return Ok(());
    };
    let sp = h.sp()?;
    let id = "sp-repeat-me";
    let drop = lists_drop(id)?;
    let (_, body) = sp_drop(&h, id, &drop, None).await?;
    upload(&h, id, &body).await?;
    let second = h.deliver_upload_body(&body).await?;
    assert!(second.batch_item_failures.is_empty(), "{second:?}");
    assert_eq!(h.campaign(id).await?.state, State::AudienceReady);

    let msgs = h.receive(&h.schedule_queue_url).await?;
    assert!(!msgs.is_empty());
    for _ in 0..2 {
        let resp = h.deliver_schedule(&msgs).await?;
        assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    }
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Scheduled, "failure: {:?}", c.failure);
    assert_eq!(sp.contact_lists().len(), 1);
    assert_eq!(sp.mailings().len(), 1);
    assert_eq!(sp.schedule_count(), 1);
    assert_eq!(on_list(&h, id)?, known(&h, &drop)?);
    Ok(())
}
