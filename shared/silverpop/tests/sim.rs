//! The adapter against the Silverpop simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::esp::object_name;
use espbridge_core::ports::limits::AccountLimits;
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, BatchOutcome, Contact, Esp, EspIds, SendRequest,
};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_esp_kit::{BuildContext, MemoryLimits, SimView};
use espbridge_silverpop::sim::{SeedTemplate, SilverpopSim, SilverpopSimConfig};
use espbridge_silverpop::{
    AudienceMode, SilverpopConfig, SilverpopCredentials, SilverpopEsp, keys,
};
use espbridge_sim::{Fault, FaultKind};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;

const TABLE: i64 = 348449;
/// A regression of the run's slots (a login waiting for a slot the run holds) shows up as a
/// minute-long stall: fail instead.
const STEP_LIMIT: Duration = Duration::from_secs(20);

struct Rig {
    sim: SilverpopSim,
    esp: Arc<SilverpopEsp>,
    clock: ManualClock,
}

fn start() -> Timestamp {
    "2026-06-15T08:00:00Z".parse().unwrap()
}

/// The adapter's account settings for `sim` (quick job polls, two attempts).
fn esp_config(sim: &SilverpopSim) -> SilverpopConfig {
    let mut config = SilverpopConfig::new(AccountId::parse("sp").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.database_id = "2740754".into();
    config.relational_table_id = Some(TABLE.to_string());
    config.query_folder_id = Some("77120".into());
    config.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(2));
    config.job_poll_interval_ms = 5;
    config
}

fn build(config: SilverpopConfig, ctx: &BuildContext) -> Arc<SilverpopEsp> {
    let creds = SilverpopCredentials::new("espbridge", "sim-password");
    Arc::new(SilverpopEsp::new(config, creds, ctx).unwrap())
}

async fn rig_with(sim_config: SilverpopSimConfig, tweak: impl FnOnce(&mut SilverpopConfig)) -> Rig {
    let clock = ManualClock::new(start());
    let sim = SilverpopSim::start(sim_config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = esp_config(&sim);
    tweak(&mut config);
    let esp = build(config, &BuildContext::in_memory(Arc::new(clock.clone())));
    Rig { sim, esp, clock }
}

async fn rig(tweak: impl FnOnce(&mut SilverpopConfig)) -> Rig {
    rig_with(SilverpopSimConfig::default(), tweak).await
}

fn batch(first: u64, fields: &[&str], rows: &[(&str, &[&str])]) -> AudienceBatch {
    AudienceBatch {
        first_ordinal: first,
        field_names: fields.iter().map(|f| f.to_string()).collect(),
        contacts: rows
            .iter()
            .map(|(id, vals)| Contact {
                customer_id: id.to_string(),
                email: None,
                fields: vals.iter().map(|v| v.to_string()).collect(),
            })
            .collect(),
    }
}

/// Customer ids `cust-<from>` … `cust-<to - 1>`.
fn customers(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("cust-{i:04}")).collect()
}

/// Uploads `ids` in batches of `per_batch` (no personalization fields); the summed outcome.
async fn upload_all(
    esp: &SilverpopEsp,
    audience: &EspIds,
    ids: &[String],
    per_batch: usize,
) -> BatchOutcome {
    let mut total = BatchOutcome::default();
    for (n, chunk) in ids.chunks(per_batch).enumerate() {
        let b = AudienceBatch {
            first_ordinal: (n * per_batch) as u64,
            field_names: Arc::from(Vec::<String>::new()),
            contacts: chunk
                .iter()
                .map(|id| Contact {
                    customer_id: id.clone(),
                    email: None,
                    fields: Vec::new(),
                })
                .collect(),
        };
        let out = tokio::time::timeout(STEP_LIMIT, esp.upload_batch(audience, &b))
            .await
            .expect("a batch stalled")
            .unwrap();
        total.accepted += out.accepted;
        total.not_in_esp += out.not_in_esp;
        total.row_errors.extend(out.row_errors);
    }
    total
}

/// The ids of `ids` the simulator's database has, sorted.
fn known(sim: &SilverpopSim, ids: &[String]) -> Vec<String> {
    let mut k: Vec<String> = ids.iter().filter(|id| sim.knows(id)).cloned().collect();
    k.sort();
    k
}

fn send_at() -> Timestamp {
    "2026-06-15T09:30:00Z".parse().unwrap()
}

async fn schedule_at(
    esp: &SilverpopEsp,
    campaign: &CampaignId,
    audience: &EspIds,
    at: Timestamp,
) -> EspIds {
    let options = serde_json::Value::Null;
    let req = SendRequest {
        campaign_id: campaign,
        variant: None,
        template_id: "410233",
        send_at: at,
        timezone: None,
        audience,
        options: &options,
        headers: None,
    };
    esp.schedule_send(&req).await.unwrap()
}

async fn schedule(r: &Rig, campaign: &CampaignId, audience: &EspIds) -> EspIds {
    schedule_at(&r.esp, campaign, audience, send_at()).await
}

/// Request bodies the simulator received that carry `operation`.
fn calls(sim: &SilverpopSim, operation: &str) -> usize {
    let tag = format!("<{operation}>");
    sim.requests()
        .iter()
        .filter(|q| {
            q.body
                .as_ref()
                .and_then(|b| b.as_str())
                .is_some_and(|b| b.contains(&tag))
        })
        .count()
}

fn relational() -> serde_json::Value {
    serde_json::json!({"mode": "relational_table"})
}

#[tokio::test]
async fn templates_are_shared_only_and_preview_works() {
    let r = rig(|_| {}).await;
    let t = r.esp.list_templates().await.unwrap();
    let ids: Vec<_> = t.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["410233", "410234"]);
    assert_eq!(t[0].subject.as_deref(), Some("Summer is here"));
    let p = r.esp.preview("410233").await.unwrap();
    assert_eq!(p.content_type, "text/html");
    assert!(p.body.contains("Summer is here"), "{}", p.body);
    assert!(r.esp.preview("999").await.is_err());
}

/// An org in New York with a template changed in summer time and one in winter time: the
/// simulator answers their LAST_MODIFIED as the org's wall time, and the adapter gives each
/// as RFC 3339 with New York's offset on that date, the same instant as seeded.
#[tokio::test]
async fn template_times_are_rfc3339_with_the_org_zone_offset() {
    let summer: Timestamp = "2024-05-28T19:12:42Z".parse().unwrap();
    let winter: Timestamp = "2024-01-15T14:05:00Z".parse().unwrap();
    let sim_config = SilverpopSimConfig {
        org_timezone: "America/New_York".into(),
        templates: vec![
            SeedTemplate::new(410233, "Summer", "Summer is here", true).modified_at(summer),
            SeedTemplate::new(410234, "Winter", "Winter sale", true).modified_at(winter),
        ],
        ..Default::default()
    };
    let r = rig_with(sim_config, |c| c.timezone = "America/New_York".into()).await;
    let created: Vec<String> = r
        .esp
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.created.unwrap())
        .collect();
    assert_eq!(
        created,
        ["2024-05-28T15:12:00-04:00", "2024-01-15T09:05:00-05:00"]
    );
    // The same instants (LAST_MODIFIED has minutes only).
    let back: Vec<Timestamp> = created.iter().map(|c| c.parse().unwrap()).collect();
    assert_eq!(back[0], summer - SignedDuration::from_secs(42));
    assert_eq!(back[1], winter);

    // The send time the campaign's ids keep is in the same zone's offset, and still found.
    let campaign = CampaignId::parse("882").unwrap();
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign, None, send_at()))
        .await
        .unwrap();
    let sent = schedule(&r, &campaign, &ids).await;
    assert_eq!(sent.get(keys::SEND_AT), Some("2026-06-15T05:30:00-04:00"));
    r.clock.advance(SignedDuration::from_hours(30));
    assert!(r.esp.fetch_metrics(&sent).await.unwrap().is_some());
    // A record written before (UTC `Z`) is still read.
    let mut old = sent.clone();
    old.0.insert(keys::SEND_AT.into(), send_at().to_string());
    assert!(r.esp.fetch_metrics(&old).await.unwrap().is_some());
}

/// What one template listing costs on an org of 1,000 templates (900 shared, 100 private),
/// from the simulator's request log.
#[tokio::test]
async fn a_listing_of_1000_templates_costs_2_calls() {
    let sim_config = SilverpopSimConfig {
        templates: (0..1000)
            .map(|i| SeedTemplate::new(500_000 + i, &format!("Template {i:04}"), "Hi", i % 10 != 0))
            .collect(),
        ..Default::default()
    };
    let r = rig_with(sim_config, |_| {}).await;
    let templates = r.esp.list_templates().await.unwrap();
    assert_eq!(templates.len(), 900);
    assert!(
        templates
            .iter()
            .all(|t| t.created.as_deref() == Some("2024-05-28T15:12:00+00:00"))
    );
    let cold = r.sim.requests().len();
    assert_eq!(
        (
            calls(&r.sim, "Login"),
            calls(&r.sim, "GetMailingTemplates"),
            cold
        ),
        (1, 1, 2),
        "a fresh client: Login and one GetMailingTemplates (no paging)"
    );
    assert_eq!(r.esp.list_templates().await.unwrap().len(), 900);
    let warm = r.sim.requests().len() - cold;
    assert_eq!(warm, 1, "with a live session: no Login");
    println!(
        "silverpop: one listing of 1,000 templates = {cold} calls (Login, GetMailingTemplates); \
         {warm} with a live session"
    );
}

#[tokio::test]
async fn lists_mode_end_to_end_and_schedule_is_idempotent() {
    let r = rig(|_| {}).await;
    let campaign = CampaignId::parse("881").unwrap();
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign, None, send_at()))
        .await
        .unwrap();
    assert_eq!(ids.get(keys::MODE), Some("lists"));
    let list = r.sim.contact_list(&object_name(&campaign, None)).unwrap();
    assert_eq!(
        ids.get(keys::CONTACT_LIST_ID),
        Some(list.id.to_string().as_str())
    );
    assert_eq!(list.folder_path.as_deref(), Some("espbridge"));
    assert_eq!(list.database_id, 2740754);

    let b = batch(0, &[], &[("C-1", &[]), ("C-2", &[]), ("C-3", &[])]);
    let out = tokio::time::timeout(STEP_LIMIT, r.esp.upload_batch(&ids, &b))
        .await
        .expect("the batch stalled")
        .unwrap();
    assert_eq!(out.accepted, 3);
    // The same batch again adds nobody twice.
    let again = r.esp.upload_batch(&ids, &b).await.unwrap();
    assert_eq!(again.accepted, 3);
    assert_eq!(r.sim.contact_lists()[0].members, ["C-1", "C-2", "C-3"]);
    assert!(r.sim.recipients().is_empty(), "no profile field written");
    assert_eq!(calls(&r.sim, "AddRecipient"), 0);

    let done = r.esp.finish_audience(&campaign, None, &ids).await.unwrap();
    assert_eq!(done.members, None, "the batches counted the unknown ids");
    assert!(r.sim.queries().is_empty(), "no query in Lists mode");

    let sent = schedule(&r, &campaign, &done.ids).await;
    let again = schedule(&r, &campaign, &done.ids).await;
    assert_eq!(r.sim.schedule_count(), 1);
    assert_eq!(sent.get(keys::MAILING_ID), again.get(keys::MAILING_ID));
    let m = &r.sim.mailings()[0];
    assert_eq!(m.list_id, list.id, "the mailing goes to the contact list");
    assert_eq!(m.scheduled_at, send_at());
    assert_eq!(m.folder_path.as_deref(), Some("Optimove"));
    assert_eq!(m.audience, 3);

    assert_eq!(r.esp.fetch_metrics(&sent).await.unwrap(), None);
    r.clock.advance(SignedDuration::from_hours(30));
    let metrics = r
        .esp
        .fetch_metrics(&sent)
        .await
        .unwrap()
        .expect("metrics after the send");
    assert!(metrics.sent > 0 && metrics.sent <= 3, "{metrics:?}");
    assert_eq!(metrics.delivered, metrics.sent - metrics.bounces);
    let sends = r.sim.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].recipients, ["C-1", "C-2", "C-3"]);
}

/// Two pending campaigns of 200 ids sharing 100, uploaded and scheduled before either sends:
/// each send goes to its own known ids (a shared tag field gave the earlier one only the ids
/// the later one did not overwrite).
async fn overlapping_campaigns_send_to_their_own_ids(options: serde_json::Value) {
    let r = rig(|_| {}).await;
    let a = CampaignId::parse("501").unwrap();
    let b = CampaignId::parse("502").unwrap();
    let ids_a = customers(0, 200);
    let ids_b = customers(100, 300);
    let at_a: Timestamp = "2026-06-15T09:30:00Z".parse().unwrap();
    let at_b: Timestamp = "2026-06-15T11:00:00Z".parse().unwrap();
    let mut finished = Vec::new();
    for (campaign, ids, at) in [(&a, &ids_a, at_a), (&b, &ids_b, at_b)] {
        let req = AudienceRequest::new(campaign, None, at).with_options(&options);
        let audience = r.esp.create_audience(&req).await.unwrap();
        let out = upload_all(&r.esp, &audience, ids, 64).await;
        assert!(out.row_errors.is_empty(), "{:?}", out.row_errors);
        let done = r
            .esp
            .finish_audience(campaign, None, &audience)
            .await
            .unwrap();
        let known_ids = known(&r.sim, ids).len() as u64;
        match done.members {
            // Lists mode: the batches counted the unknown ids.
            None => assert_eq!((out.accepted, out.not_in_esp), (known_ids, 200 - known_ids)),
            // Relational Tables mode: every row went in; the query counts the known ones.
            Some(members) => {
                assert_eq!((out.accepted, members), (200, known_ids));
            }
        }
        finished.push((campaign, done.ids, at));
    }
    for (campaign, audience, at) in &finished {
        schedule_at(&r.esp, campaign, audience, *at).await;
    }
    let (want_a, want_b) = (known(&r.sim, &ids_a), known(&r.sim, &ids_b));
    let shared = want_a.iter().filter(|id| want_b.contains(id)).count();
    assert!(shared > 90, "the campaigns overlap ({shared})");

    assert!(r.sim.sends().is_empty(), "nothing sent before its time");
    r.clock.set(at_a + SignedDuration::from_mins(1));
    let sends = r.sim.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].name, object_name(&a, None));
    assert_eq!(sends[0].send_at, at_a);
    assert_eq!(sends[0].recipients, want_a);

    r.clock.set(at_b + SignedDuration::from_mins(1));
    let sends = r.sim.sends();
    assert_eq!(sends.len(), 2);
    let send_b = sends
        .iter()
        .find(|s| s.name == object_name(&b, None))
        .unwrap();
    assert_eq!(send_b.send_at, at_b);
    assert_eq!(send_b.recipients, want_b);
    let send_a = sends
        .iter()
        .find(|s| s.name == object_name(&a, None))
        .unwrap();
    assert_eq!(send_a.recipients, want_a, "a sent audience stays as it was");
    assert!(r.sim.created_contacts().is_empty());
}

#[tokio::test]
async fn lists_mode_overlapping_campaigns_each_send_to_their_own_ids() {
    overlapping_campaigns_send_to_their_own_ids(serde_json::Value::Null).await;
}

#[tokio::test]
async fn relational_mode_overlapping_campaigns_each_send_to_their_own_ids() {
    overlapping_campaigns_send_to_their_own_ids(relational()).await;
}

#[tokio::test]
async fn unknown_ids_are_counted_as_not_in_esp_and_never_created() {
    let sim_config = SilverpopSimConfig {
        unknown_id_share: 0.3,
        ..SilverpopSimConfig::default()
    };
    let r = rig_with(sim_config, |_| {}).await;
    let ids = customers(0, 100);
    let want = known(&r.sim, &ids);
    let unknown = (ids.len() - want.len()) as u64;
    assert!(unknown >= 10, "a useful share is unknown ({unknown})");

    // Lists mode: each refused AddContactToContactList is counted in the batch outcome.
    let lists = CampaignId::parse("601").unwrap();
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&lists, None, send_at()))
        .await
        .unwrap();
    let out = upload_all(&r.esp, &audience, &ids, 40).await;
    assert_eq!(out.not_in_esp, unknown);
    assert_eq!(out.accepted, want.len() as u64);
    assert!(out.row_errors.is_empty(), "{:?}", out.row_errors);
    assert_eq!(r.sim.contact_list("espbridge_601").unwrap().members, want);

    // Relational Tables mode: every row is taken; the query's size tells the known ones.
    let rt = CampaignId::parse("602").unwrap();
    let options = relational();
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&rt, None, send_at()).with_options(&options))
        .await
        .unwrap();
    let out = upload_all(&r.esp, &audience, &ids, 40).await;
    assert_eq!((out.accepted, out.not_in_esp), (100, 0));
    let done = r.esp.finish_audience(&rt, None, &audience).await.unwrap();
    assert_eq!(done.members, Some(want.len() as u64));
    assert_eq!(calls(&r.sim, "CalculateQuery"), 1);
    assert!(calls(&r.sim, "GetJobStatus") >= 3, "polled until COMPLETE");

    // The database gained no contact.
    assert!(r.sim.created_contacts().is_empty());
    assert!(r.sim.recipients().is_empty());
    assert_eq!(calls(&r.sim, "AddRecipient"), 0);
    assert!(
        ids.iter()
            .filter(|id| !want.contains(id))
            .all(|id| !r.sim.knows(id))
    );
}

#[tokio::test]
async fn a_retried_create_audience_finds_its_contact_list() {
    let r = rig(|c| c.contact_list_folder = "espbridge/lists".into()).await;
    let campaign = CampaignId::parse("9").unwrap();
    let req = AudienceRequest::new(&campaign, None, send_at());
    let first = r.esp.create_audience(&req).await.unwrap();
    let again = r.esp.create_audience(&req).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(calls(&r.sim, "CreateContactList"), 1);
    assert_eq!(calls(&r.sim, "GetLists"), 2);
    // A variant is a campaign of its own.
    let variant = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign, Some("B"), send_at()))
        .await
        .unwrap();
    assert_ne!(
        variant.get(keys::CONTACT_LIST_ID),
        first.get(keys::CONTACT_LIST_ID)
    );
    let names: Vec<_> = r.sim.contact_lists().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["espbridge_9", "espbridge_9_B"]);
    assert_eq!(
        r.sim.contact_lists()[0].folder_path.as_deref(),
        Some("espbridge/lists")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_instances_of_one_org_stay_within_its_request_and_session_limits() {
    let clock = ManualClock::new(start());
    let sim_config = SilverpopSimConfig {
        max_sessions: 3,
        ..SilverpopSimConfig::default()
    };
    let sim = Arc::new(
        SilverpopSim::start(sim_config, Arc::new(clock.clone()))
            .await
            .unwrap(),
    );
    sim.set_latency(Duration::from_millis(20));
    // One org's limits, as the deployment's limit table holds them for every instance.
    let limits: Arc<dyn AccountLimits> = Arc::new(MemoryLimits::new());
    let ctx = BuildContext {
        clock: Arc::new(clock.clone()),
        limits,
    };
    let tasks: Vec<_> = (0..5)
        .map(|n| {
            let mut config = esp_config(&sim);
            config.max_sessions = 3;
            let esp = build(config, &ctx);
            let sim = Arc::clone(&sim);
            tokio::spawn(async move {
                let campaign = CampaignId::parse(&format!("70{n}")).unwrap();
                let ids = customers(n * 100, n * 100 + 120);
                let at = send_at() + SignedDuration::from_mins(n as i64);
                let audience = esp
                    .create_audience(&AudienceRequest::new(&campaign, None, at))
                    .await
                    .unwrap();
                let out = upload_all(&esp, &audience, &ids, 30).await;
                assert!(out.row_errors.is_empty(), "{:?}", out.row_errors);
                let done = esp
                    .finish_audience(&campaign, None, &audience)
                    .await
                    .unwrap();
                schedule_at(&esp, &campaign, &done.ids, at).await;
                (campaign, known(&sim, &ids), out)
            })
        })
        .collect();
    for t in tasks {
        let (campaign, want, out) = t.await.unwrap();
        assert_eq!(out.accepted, want.len() as u64);
        let list = sim.contact_list(&object_name(&campaign, None)).unwrap();
        assert_eq!(list.members, want);
    }
    assert_eq!(sim.schedule_count(), 5);
    assert_eq!(sim.limit_refusals(), 0, "no request or login refused");
    let peak = sim.peak_in_flight();
    assert!(peak <= 10, "{peak} requests in flight at once");
    assert!(peak >= 5, "the instances ran concurrently (peak {peak})");
    assert!(
        sim.peak_sessions() <= 3,
        "{} sessions live at once",
        sim.peak_sessions()
    );
    assert!(sim.logins() >= 5, "sessions went round the instances");
}

#[tokio::test]
async fn relational_mode_per_manifest_with_rows_rejected_per_row() {
    // Two rows per call: the rejected third row is reported at its batch index, not the call's.
    let r = rig(|c| c.rows_per_call = 2).await;
    let campaign = CampaignId::parse("42").unwrap();
    let mode = r.esp.mode_from_options(&relational()).unwrap();
    assert_eq!(mode, AudienceMode::RelationalTable);
    let ids = r
        .esp
        .create_audience_in_mode(&campaign, None, mode)
        .await
        .unwrap();
    assert!(r.sim.contact_lists().is_empty(), "no contact list");
    let tricky = r#"<b>Tom & "Jerry"</b> it's"#;
    let b = batch(
        0,
        &["SendDate", "Channel"],
        &[
            ("C-1", &["06/15/2026", tricky]),
            ("C-2", &["06/16/2026", "email"]),
            ("C-3", &["not-a-date", "email"]),
        ],
    );
    let out = r.esp.upload_batch(&ids, &b).await.unwrap();
    assert_eq!(out.accepted, 2);
    assert_eq!(out.row_errors.len(), 1);
    assert_eq!(out.row_errors[0].index, 2);
    assert_eq!(out.row_errors[0].code, "permanent");
    assert!(
        out.row_errors[0].reason.contains("Date"),
        "{:?}",
        out.row_errors
    );
    let rows = r.sim.table_rows(TABLE);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["ActionID"], "42");
    assert_eq!(rows[0]["CustomerID"], "C-1");
    assert_eq!(rows[0]["Channel"], tricky);

    let done = r.esp.finish_audience(&campaign, None, &ids).await.unwrap();
    assert_eq!(done.members, Some(2));
    let query = &r.sim.queries()[0];
    assert_eq!(
        done.ids.get(keys::QUERY_ID),
        Some(query.id.to_string().as_str())
    );
    assert_eq!(query.calculated_size, Some(2));
    let sent = schedule(&r, &campaign, &done.ids).await;
    assert_eq!(r.sim.mailings()[0].list_id, query.id);
    assert_eq!(r.sim.mailings()[0].audience, 2);
    r.clock.advance(SignedDuration::from_hours(48));
    assert!(r.esp.fetch_metrics(&sent).await.unwrap().is_some());
}

#[tokio::test]
async fn a_query_size_calculation_that_never_completes_times_out_as_retryable() {
    let r = rig(|c| {
        c.job_timeout_secs = 1;
        c.job_poll_interval_ms = 600;
    })
    .await;
    let campaign = CampaignId::parse("43").unwrap();
    let options = relational();
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign, None, send_at()).with_options(&options))
        .await
        .unwrap();
    r.esp
        .upload_batch(&ids, &batch(0, &[], &[("C-1", &[])]))
        .await
        .unwrap();
    // Two polls within a second: WAITING, RUNNING; the third would have said COMPLETE.
    let err = r
        .esp
        .finish_audience(&campaign, None, &ids)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(calls(&r.sim, "GetJobStatus"), 2);
    assert_eq!(calls(&r.sim, "GetListMetaData"), 0);
}

#[tokio::test]
async fn session_expiry_mid_batch_logs_in_again_once() {
    let r = rig(|_| {}).await;
    r.sim.set_latency(Duration::from_millis(10));
    let campaign = CampaignId::parse("7").unwrap();
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign, None, send_at()))
        .await
        .unwrap();
    let logins = r.sim.logins();
    let ids_in = customers(0, 60);
    // Sessions end once a few contacts are in: the rest of the batch needs a new one.
    let sim = &r.sim;
    let expire = async {
        while calls(sim, "AddContactToContactList") < 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        sim.expire_sessions();
    };
    let (out, ()) = tokio::join!(upload_all(&r.esp, &ids, &ids_in, 60), expire);
    assert_eq!(out.accepted + out.not_in_esp, 60);
    assert!(out.row_errors.is_empty(), "{:?}", out.row_errors);
    // One login for the batch, one after the expiry (shared by every call that met it).
    assert_eq!(r.sim.logins(), logins + 2);
    assert_eq!(
        r.sim.contact_list("espbridge_7").unwrap().members,
        known(&r.sim, &ids_in)
    );
}

#[tokio::test]
async fn thirty_concurrent_calls_stay_within_the_limit() {
    let r = rig(|c| c.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(1))).await;
    // Every answer is held 100 ms, so unbounded calls would overlap far beyond 10.
    r.sim.inject(Fault::any(
        FaultKind::Timeout(std::time::Duration::from_millis(100)),
        40,
    ));
    let calls: Vec<_> = (0..30)
        .map(|_| {
            let esp = r.esp.clone();
            tokio::spawn(async move { esp.list_templates().await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().len(), 2);
    }
    assert_eq!(r.sim.limit_refusals(), 0);
    assert!(r.sim.peak_in_flight() <= 10);
}

#[tokio::test]
async fn bad_password_is_an_auth_error() {
    let clock = ManualClock::new(start());
    let sim = SilverpopSim::start(SilverpopSimConfig::default(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = SilverpopConfig::new(AccountId::parse("sp").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(1));
    let creds = SilverpopCredentials::new("espbridge", "wrong");
    let esp = SilverpopEsp::new(config, creds, &BuildContext::in_memory(Arc::new(clock))).unwrap();
    let err = esp.list_templates().await.unwrap_err();
    assert!(
        matches!(err, espbridge_core::ports::EspError::Auth { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_login_refused_for_concurrency_is_waited_out_not_an_auth_failure() {
    let r = rig(|c| c.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(1))).await;
    r.sim.inject(Fault::any(FaultKind::RateLimit, 1));
    // The refusal spends no attempt: the Login goes again under a lower limit.
    assert_eq!(r.esp.list_templates().await.unwrap().len(), 2);
    assert_eq!(r.sim.logins(), 1);
    assert_eq!(r.esp.concurrency(), 5, "the refusal halved the concurrency");
}

// ----- stricter orgs: short sessions, a small session cap, a lower concurrency limit -----

/// Bounds a whole strict-org scenario: a hang fails the test instead of blocking it.
const SCENARIO_LIMIT: Duration = Duration::from_secs(300);

/// An org whose sessions end after 3 calls and that allows 4 sessions at once.
fn strict_org() -> SilverpopSimConfig {
    SilverpopSimConfig {
        session_max_calls: Some(3),
        max_sessions: 4,
        ..SilverpopSimConfig::default()
    }
}

/// Calls the org's sessions carried: every request but Login and Logout that was not refused
/// for its session (Fault 145) or for concurrency (Fault 10).
fn session_calls(sim: &SilverpopSim) -> usize {
    sim.requests()
        .iter()
        .filter(|q| !matches!(q.reply_code, Some(145 | 10)))
        .filter(|q| {
            q.body
                .as_ref()
                .and_then(|b| b.as_str())
                .is_some_and(|b| !b.contains("<Login>") && !b.contains("<Logout"))
        })
        .count()
}

/// Logins are bounded by the calls the sessions carried (3 each), plus one per step that
/// logged its session out before it was used up, one per call in flight (each may meet a
/// used-up session) and a little slack — never one per refused call; the org's session cap was
/// never exceeded.
fn assert_sessions_bounded(sim: &SilverpopSim, steps: usize, in_flight: usize, cap: usize) {
    let (logins, calls) = (sim.logins(), session_calls(sim));
    let bound = calls / 3 + steps + in_flight + 5;
    assert!(
        logins <= bound,
        "{logins} logins for {calls} calls (bound {bound})"
    );
    assert!(
        sim.peak_sessions() <= cap,
        "{} sessions live at once (cap {cap})",
        sim.peak_sessions()
    );
    eprintln!(
        "silverpop: {calls} calls, {logins} logins, peak {} sessions, peak {} in flight",
        sim.peak_sessions(),
        sim.peak_in_flight()
    );
}

/// Uploads `ids` as `per_batch` batches, one after the other, with no limit per batch (the
/// caller bounds the whole scenario).
async fn upload_each(
    esp: &SilverpopEsp,
    audience: &EspIds,
    ids: &[String],
    per_batch: usize,
) -> BatchOutcome {
    let mut total = BatchOutcome::default();
    for (n, chunk) in ids.chunks(per_batch).enumerate() {
        let contacts = chunk
            .iter()
            .map(|id| Contact {
                customer_id: id.clone(),
                email: None,
                fields: Vec::new(),
            })
            .collect();
        let b = AudienceBatch {
            first_ordinal: (n * per_batch) as u64,
            field_names: Arc::from(Vec::<String>::new()),
            contacts,
        };
        let out = esp.upload_batch(audience, &b).await.unwrap();
        total.accepted += out.accepted;
        total.not_in_esp += out.not_in_esp;
        total.row_errors.extend(out.row_errors);
    }
    total
}

/// Uploads `ids` as `per_batch` batches, `workers` of them at once (as that many workers of
/// one account would), through one adapter.
async fn upload_concurrently(
    esp: &Arc<SilverpopEsp>,
    audience: &EspIds,
    ids: &[String],
    per_batch: usize,
    workers: usize,
) -> BatchOutcome {
    use futures::stream::{self, StreamExt};
    let batches: Vec<AudienceBatch> = ids
        .chunks(per_batch)
        .enumerate()
        .map(|(n, chunk)| AudienceBatch {
            first_ordinal: (n * per_batch) as u64,
            field_names: Arc::from(Vec::<String>::new()),
            contacts: chunk
                .iter()
                .map(|id| Contact {
                    customer_id: id.clone(),
                    email: None,
                    fields: Vec::new(),
                })
                .collect(),
        })
        .collect();
    let outcomes: Vec<_> = stream::iter(batches.iter())
        .map(|b| esp.upload_batch(audience, b))
        .buffer_unordered(workers)
        .collect()
        .await;
    let mut total = BatchOutcome::default();
    for out in outcomes {
        let out = out.unwrap();
        total.accepted += out.accepted;
        total.not_in_esp += out.not_in_esp;
        total.row_errors.extend(out.row_errors);
    }
    total
}

/// A strict-org rig: the simulator as `sim_config`, the adapter with 10 requests in flight
/// and the org's 4 sessions, three attempts a call, 20 relational rows a call.
async fn strict_rig(sim_config: SilverpopSimConfig) -> Rig {
    let r = rig_with(sim_config, |c| {
        c.max_concurrent = 10;
        c.max_sessions = 4;
        c.rows_per_call = 20;
        c.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(3));
    })
    .await;
    r.sim.set_latency(Duration::from_millis(2));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_mode_sessions_expiring_every_3_calls_with_10_in_flight_and_a_cap_of_4_complete() {
    let r = strict_rig(strict_org()).await;
    let campaign = CampaignId::parse("801").unwrap();
    let ids = customers(0, 3000);
    let scenario = async {
        let audience = r
            .esp
            .create_audience(&AudienceRequest::new(&campaign, None, send_at()))
            .await
            .unwrap();
        let out = upload_concurrently(&r.esp, &audience, &ids, 1000, 1).await;
        let done = r
            .esp
            .finish_audience(&campaign, None, &audience)
            .await
            .unwrap();
        schedule(&r, &campaign, &done.ids).await;
        out
    };
    let out = tokio::time::timeout(SCENARIO_LIMIT, scenario)
        .await
        .expect("the upload hung");
    let want = known(&r.sim, &ids);
    assert!(out.row_errors.is_empty(), "{:?}", out.row_errors);
    assert_eq!(out.accepted, want.len() as u64);
    assert_eq!(out.accepted + out.not_in_esp, 3000);
    assert_eq!(
        r.sim
            .contact_list(&object_name(&campaign, None))
            .unwrap()
            .members,
        want,
        "the whole audience arrived"
    );
    assert_eq!(r.sim.schedule_count(), 1);
    assert!(r.sim.peak_in_flight() >= 5, "calls ran concurrently");
    // Steps: create, three batches, finish, schedule.
    assert_sessions_bounded(&r.sim, 6, 10, 4);
    eprintln!(
        "silverpop lists: settled on {} in flight",
        r.esp.concurrency()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relational_mode_sessions_expiring_every_3_calls_with_10_in_flight_and_a_cap_of_4_complete()
{
    let r = strict_rig(strict_org()).await;
    let campaign = CampaignId::parse("802").unwrap();
    let ids = customers(0, 3000);
    let options = relational();
    let scenario = async {
        let audience = r
            .esp
            .create_audience(
                &AudienceRequest::new(&campaign, None, send_at()).with_options(&options),
            )
            .await
            .unwrap();
        // Ten workers' batches at once, 20 rows a call: ten calls in flight.
        let out = upload_concurrently(&r.esp, &audience, &ids, 100, 10).await;
        let done = r
            .esp
            .finish_audience(&campaign, None, &audience)
            .await
            .unwrap();
        schedule(&r, &campaign, &done.ids).await;
        (out, done)
    };
    let (out, done) = tokio::time::timeout(SCENARIO_LIMIT, scenario)
        .await
        .expect("the upload hung");
    assert!(out.row_errors.is_empty(), "{:?}", out.row_errors);
    assert_eq!(out.accepted, 3000);
    let rows = r.sim.table_rows(TABLE);
    let mut arrived: Vec<String> = rows
        .iter()
        .filter(|row| row["ActionID"] == "802")
        .map(|row| row["CustomerID"].clone())
        .collect();
    arrived.sort();
    assert_eq!(arrived, ids, "the whole audience arrived");
    assert_eq!(done.members, Some(known(&r.sim, &ids).len() as u64));
    assert_eq!(r.sim.schedule_count(), 1);
    assert!(r.sim.peak_in_flight() >= 5, "calls ran concurrently");
    // Steps: create, thirty batches, finish, schedule.
    assert_sessions_bounded(&r.sim, 33, 10, 4);
    eprintln!(
        "silverpop relational: settled on {} in flight",
        r.esp.concurrency()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_modes_at_once_on_a_strict_org_complete() {
    let r = strict_rig(strict_org()).await;
    let (lists, rt) = (
        CampaignId::parse("811").unwrap(),
        CampaignId::parse("812").unwrap(),
    );
    let ids = customers(0, 2000);
    let options = relational();
    let lists_upload = async {
        let audience = r
            .esp
            .create_audience(&AudienceRequest::new(&lists, None, send_at()))
            .await
            .unwrap();
        upload_concurrently(&r.esp, &audience, &ids, 500, 2).await
    };
    let rt_upload = async {
        let audience = r
            .esp
            .create_audience(&AudienceRequest::new(&rt, None, send_at()).with_options(&options))
            .await
            .unwrap();
        let out = upload_concurrently(&r.esp, &audience, &ids, 100, 4).await;
        r.esp.finish_audience(&rt, None, &audience).await.unwrap();
        out
    };
    let (a, b) = tokio::time::timeout(SCENARIO_LIMIT, async {
        tokio::join!(lists_upload, rt_upload)
    })
    .await
    .expect("the uploads hung");
    assert_eq!(a.accepted, known(&r.sim, &ids).len() as u64);
    assert_eq!(b.accepted, 2000);
    assert_eq!(
        r.sim
            .contact_list(&object_name(&lists, None))
            .unwrap()
            .members,
        known(&r.sim, &ids)
    );
    // Steps: two creates, 4 + 20 batches, finish.
    assert_sessions_bounded(&r.sim, 27, 10, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_allowing_fewer_requests_than_configured_settles_the_client_below_it() {
    let sim_config = SilverpopSimConfig {
        max_concurrent: 3,
        ..SilverpopSimConfig::default()
    };
    let r = strict_rig(sim_config).await;
    r.sim.set_latency(Duration::from_millis(5));
    let campaign = CampaignId::parse("803").unwrap();
    let ids = customers(0, 2000);
    let scenario = async {
        let audience = r
            .esp
            .create_audience(&AudienceRequest::new(&campaign, None, send_at()))
            .await
            .unwrap();
        upload_concurrently(&r.esp, &audience, &ids, 1000, 1).await
    };
    let out = tokio::time::timeout(SCENARIO_LIMIT, scenario)
        .await
        .expect("the upload hung");
    assert!(out.row_errors.is_empty(), "{:?}", out.row_errors);
    assert_eq!(
        r.sim
            .contact_list(&object_name(&campaign, None))
            .unwrap()
            .members,
        known(&r.sim, &ids),
        "the whole audience arrived"
    );
    let settled = r.esp.concurrency();
    assert!(settled <= 3, "settled on {settled} in flight");
    assert!(
        r.sim.limit_refusals() > 0,
        "the org refused the client's 10"
    );
    eprintln!(
        "silverpop sim 3 / client 10: settled on {settled}, {} refusals",
        r.sim.limit_refusals()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_instances_of_a_strict_org_share_its_4_sessions_and_complete() {
    let clock = ManualClock::new(start());
    let sim = Arc::new(
        SilverpopSim::start(strict_org(), Arc::new(clock.clone()))
            .await
            .unwrap(),
    );
    sim.set_latency(Duration::from_millis(2));
    // One org's limits, as the deployment's limit table holds them for every instance.
    let limits: Arc<dyn AccountLimits> = Arc::new(MemoryLimits::new());
    let ctx = BuildContext {
        clock: Arc::new(clock.clone()),
        limits,
    };
    let tasks: Vec<_> = (0..5)
        .map(|n| {
            let mut config = esp_config(&sim);
            config.max_sessions = 4;
            config.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(3));
            let esp = build(config, &ctx);
            let sim = Arc::clone(&sim);
            tokio::spawn(async move {
                let campaign = CampaignId::parse(&format!("82{n}")).unwrap();
                let ids = customers(n * 1000, n * 1000 + 400);
                let audience = esp
                    .create_audience(&AudienceRequest::new(&campaign, None, send_at()))
                    .await
                    .unwrap();
                let out = upload_each(&esp, &audience, &ids, 100).await;
                (campaign, known(&sim, &ids), out)
            })
        })
        .collect();
    let all = tokio::time::timeout(SCENARIO_LIMIT, futures::future::join_all(tasks))
        .await
        .expect("the uploads hung");
    for t in all {
        let (campaign, want, out) = t.unwrap();
        assert!(out.row_errors.is_empty(), "{:?}", out.row_errors);
        assert_eq!(out.accepted, want.len() as u64);
        let list = sim.contact_list(&object_name(&campaign, None)).unwrap();
        assert_eq!(list.members, want, "the whole audience arrived");
    }
    assert_eq!(sim.limit_refusals(), 0, "no request or login refused");
    assert!(sim.peak_in_flight() <= 10);
    // Steps: five creates, 5 × 4 batches.
    assert_sessions_bounded(&sim, 25, 10, 4);
}

/// Single calls (each logging in when it finds no session) while a batch holds every request
/// slot of the org and its sessions end every 3 calls: a single call's Login used to wait for
/// a request slot while holding the session, and the batch's calls waited for the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_calls_during_a_batch_holding_every_slot_on_a_strict_org_complete() {
    let r = strict_rig(strict_org()).await;
    r.sim.set_latency(Duration::from_millis(5));
    let campaign = CampaignId::parse("804").unwrap();
    let ids = customers(0, 3000);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let lists = async {
        let audience = r
            .esp
            .create_audience(&AudienceRequest::new(&campaign, None, send_at()))
            .await
            .unwrap();
        let out = upload_concurrently(&r.esp, &audience, &ids, 1000, 1).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    };
    let single_calls = || async {
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            assert_eq!(r.esp.list_templates().await.unwrap().len(), 2);
            n += 1;
        }
        n
    };
    let (out, n) = tokio::time::timeout(SCENARIO_LIMIT, async {
        tokio::join!(lists, async {
            let (a, b, c) = tokio::join!(single_calls(), single_calls(), single_calls());
            a + b + c
        })
    })
    .await
    .expect("the calls hung");
    assert_eq!(out.accepted + out.not_in_esp, 3000);
    assert_eq!(
        r.sim
            .contact_list(&object_name(&campaign, None))
            .unwrap()
            .members,
        known(&r.sim, &ids),
        "the whole audience arrived"
    );
    assert!(n >= 3, "the single calls went through ({n})");
    // Steps that log out: create and three batches; three single calls in flight besides.
    assert_sessions_bounded(&r.sim, 4, 13, 4);
    eprintln!(
        "silverpop single calls beside a batch: {n} calls, {} logins",
        r.sim.logins()
    );
}
