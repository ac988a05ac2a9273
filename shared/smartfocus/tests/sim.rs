//! End to end against the SmartFocus simulator: real HTTP, real XML, injected faults.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, Contact, Esp, EspError, EspIds, SendRequest,
};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_esp_kit::{BuildContext, MemoryLimits, SimSend, SimView};
use espbridge_sim::{Fault, FaultKind};
use espbridge_smartfocus::sim::{NameSearch, SeedMessage, SmartFocusSim, SmartFocusSimConfig};
use espbridge_smartfocus::{
    MessageListing, SmartFocusConfig, SmartFocusCredentials, SmartFocusEsp, keys, wire,
};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// A send time a day after the start.
fn later() -> Timestamp {
    start_time() + jiff::SignedDuration::from_hours(24)
}

/// Months before the machines' wall clock, so a lease judged on wall time would look expired:
/// tag fields must be judged on the injected clock.
fn start_time() -> Timestamp {
    "2026-06-10T08:00:00Z".parse().unwrap()
}

struct Rig {
    sim: SmartFocusSim,
    esp: Arc<SmartFocusEsp>,
    clock: ManualClock,
}

/// A client of the simulator's account built on `ctx` (one function instance).
fn client(
    sim: &SmartFocusSim,
    ctx: &BuildContext,
    tweak: impl FnOnce(&mut SmartFocusConfig),
) -> Arc<SmartFocusEsp> {
    let mut config = SmartFocusConfig::new(AccountId::parse("sf").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.timezone = "Europe/Paris".into();
    config.upload_poll_interval_ms = 5;
    config.upload_timeout_secs = 20;
    tweak(&mut config);
    let creds = SmartFocusCredentials::new("espbridge", "sim-password", "sim-key");
    Arc::new(SmartFocusEsp::new(config, creds, ctx).unwrap())
}

async fn rig_with(
    sim_config: SmartFocusSimConfig,
    tweak: impl FnOnce(&mut SmartFocusConfig),
) -> Rig {
    let clock = ManualClock::new(start_time());
    let sim = SmartFocusSim::start(sim_config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let esp = client(
        &sim,
        &BuildContext::in_memory(Arc::new(clock.clone())),
        tweak,
    );
    Rig { sim, esp, clock }
}

async fn rig() -> Rig {
    rig_with(poll_driven(), |_| {}).await
}

/// Uploads advance one state per status poll, independent of the clock.
fn poll_driven() -> SmartFocusSimConfig {
    SmartFocusSimConfig {
        upload_step_delay: None,
        upload_polls_per_step: 1,
        ..SmartFocusSimConfig::default()
    }
}

fn batch(first: u64, ids: &[&str]) -> AudienceBatch {
    AudienceBatch {
        first_ordinal: first,
        field_names: Arc::from(Vec::<String>::new()),
        contacts: ids
            .iter()
            .map(|id| Contact {
                customer_id: (*id).to_owned(),
                email: None,
                fields: Vec::new(),
            })
            .collect(),
    }
}

fn cid(s: &str) -> CampaignId {
    CampaignId::parse(s).unwrap()
}

#[tokio::test]
async fn templates_are_the_prefixed_messages() {
    let r = rig().await;
    let mut names: Vec<_> = r
        .esp
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.display_name))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("optimove_spring_sale".to_owned(), "spring_sale".to_owned()),
            ("optimove_weekly_digest".into(), "weekly_digest".into()),
            ("optimove_winback".into(), "winback".into()),
        ]
    );
    assert!(r.esp.claims_template_name("optimove_x"));
    assert!(!r.esp.claims_template_name("newsletter_april"));
    let t = r.esp.list_templates().await.unwrap().remove(0);
    let preview = r.esp.preview(&t.id).await.unwrap();
    assert_eq!(preview.content_type, "text/html");
    assert!(preview.body.contains("<h1>"), "{}", preview.body);
}

/// 1,000 messages, oldest first: 69 newsletters and an SMS named with the prefix, the 30
/// `optimove_t*` templates, then the 900 `espbridge_c*` clones of 900 campaigns, every one
/// newer than every template (the newest 500 messages are all clones).
fn thousand_messages() -> Vec<SeedMessage> {
    let mut messages = SeedMessage::series("newsletter_", 69);
    messages.push(SeedMessage::sms("optimove_sms_flash", "Flash sale"));
    messages.extend(SeedMessage::series("optimove_t", 30));
    messages.extend(SeedMessage::series("espbridge_c", 900));
    messages
}

fn thousand_account() -> SmartFocusSimConfig {
    SmartFocusSimConfig {
        messages: thousand_messages(),
        ..poll_driven()
    }
}

fn template_names(templates: &[espbridge_core::ports::Template]) -> Vec<String> {
    let mut names: Vec<String> = templates.iter().map(|t| t.name.clone()).collect();
    names.sort();
    names
}

fn thirty_templates() -> Vec<String> {
    let mut names: Vec<String> = (1..=30).map(|i| format!("optimove_t{i}")).collect();
    names.sort();
    names
}

/// The requests the simulator received since `from`, as `(method, path)` with the token cut.
fn calls_since(sim: &SmartFocusSim, from: usize) -> Vec<String> {
    sim.requests()[from..]
        .iter()
        .map(|q| {
            let mut parts: Vec<&str> = q.path.split('/').filter(|p| !p.is_empty()).collect();
            parts.truncate(5);
            format!("{} {}", q.method, parts.join("/"))
        })
        .collect()
}

/// Every template's `created` is the simulator's creation instant, written as RFC 3339 with
/// the offset `zone` has then.
fn assert_created_in(r: &Rig, templates: &[espbridge_core::ports::Template], zone: &str) {
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    let held = r.sim.messages();
    for t in templates {
        let created = t.created.as_deref().expect("created");
        let at: Timestamp = created.parse().unwrap();
        let m = held.iter().find(|m| m.id.to_string() == t.id).unwrap();
        assert_eq!(at, m.created_at, "{created}");
        assert_eq!(created, wire::rfc3339(m.created_at, &tz));
        let offset = &created[created.len() - 6..];
        assert!(
            offset.starts_with(['+', '-']) && &offset[3..4] == ":",
            "{created}"
        );
    }
}

#[tokio::test]
async fn a_thousand_message_account_lists_every_template_in_two_calls() {
    let r = rig_with(thousand_account(), |_| {}).await;
    let held = r.sim.messages();
    assert_eq!(held.len(), 1000);
    // What the issue saw: the newest 500 messages are all clones.
    assert!(
        held.iter()
            .rev()
            .take(500)
            .all(|m| m.name.starts_with("espbridge_c"))
    );

    let templates = r.esp.list_templates().await.unwrap();
    let calls = calls_since(&r.sim, 0);
    assert_eq!(template_names(&templates), thirty_templates());
    assert!(templates.iter().all(|t| t.kind.as_deref() == Some("email")));
    let t1 = templates.iter().find(|t| t.name == "optimove_t1").unwrap();
    assert_eq!(t1.display_name, "t1");
    assert_eq!(t1.subject.as_deref(), Some("optimove_t1 subject"));
    assert_created_in(&r, &templates, "Europe/Paris");
    // The bound: one connect/open and one summary page (30 templates, pages of 100), whatever
    // the number of clones; no call per message.
    eprintln!(
        "one listing of 1,000 messages: {} calls: {calls:?}",
        calls.len()
    );
    assert_eq!(
        calls,
        [
            "GET apiccmd/services/rest/connect/open",
            "POST apiccmd/services/CcmdService",
        ]
    );
    // The session is reused: the next listing is one call.
    let again = r.sim.requests().len();
    assert_eq!(r.esp.list_templates().await.unwrap().len(), 30);
    assert_eq!(calls_since(&r.sim, again).len(), 1);
    // A preview of a listed template works on its id.
    let preview = r.esp.preview(&t1.id).await.unwrap();
    assert!(
        preview.body.contains("optimove_t1 subject"),
        "{}",
        preview.body
    );
}

#[tokio::test]
async fn small_pages_are_followed_to_the_last_template() {
    // The server cuts the 100 asked for to 7: 30 templates are 5 pages.
    let r = rig_with(
        SmartFocusSimConfig {
            summary_max_page_size: 7,
            ..thousand_account()
        },
        |_| {},
    )
    .await;
    let templates = r.esp.list_templates().await.unwrap();
    assert_eq!(template_names(&templates), thirty_templates());
    let calls = calls_since(&r.sim, 0);
    assert_eq!(calls.len(), 1 + 5, "{calls:?}");
}

#[tokio::test]
async fn a_name_search_of_whole_names_only_still_lists_every_template() {
    // If the server's name search matched whole names, the prefix would find nothing: the
    // adapter then reads the whole e-mail list (999 messages, pages of 100) once.
    let r = rig_with(
        SmartFocusSimConfig {
            summary_name_search: NameSearch::Exact,
            ..thousand_account()
        },
        |_| {},
    )
    .await;
    let templates = r.esp.list_templates().await.unwrap();
    assert_eq!(template_names(&templates), thirty_templates());
    assert_created_in(&r, &templates, "Europe/Paris");
    let calls = calls_since(&r.sim, 0);
    assert_eq!(calls.len(), 1 + 1 + 10, "{calls:?}");
}

#[tokio::test]
async fn created_is_written_with_the_offset_of_the_configured_zone() {
    // The simulator writes Paris offsets; the account is configured in Tokyo.
    let r = rig_with(poll_driven(), |c| c.timezone = "Asia/Tokyo".into()).await;
    let templates = r.esp.list_templates().await.unwrap();
    assert_eq!(templates.len(), 3);
    for t in &templates {
        assert!(t.created.as_deref().unwrap().ends_with("+09:00"), "{t:?}");
    }
    assert_created_in(&r, &templates, "Asia/Tokyo");
}

#[tokio::test]
async fn listing_by_period_reads_every_message_past_the_newest_500() {
    // The REST-only listing: one getMessagesByPeriod for the whole history, one getMessage
    // per message (the cost the summary list avoids).
    let mut messages = SeedMessage::defaults();
    messages.extend(SeedMessage::series("espbridge_c", 600));
    let r = rig_with(
        SmartFocusSimConfig {
            messages,
            ..poll_driven()
        },
        |c| c.message_listing = MessageListing::ByPeriod,
    )
    .await;
    let templates = r.esp.list_templates().await.unwrap();
    assert_eq!(
        template_names(&templates),
        [
            "optimove_spring_sale",
            "optimove_weekly_digest",
            "optimove_winback"
        ]
    );
    assert_created_in(&r, &templates, "Europe/Paris");
    let calls = calls_since(&r.sim, 0);
    assert_eq!(calls.len(), 1 + 1 + 605);
    assert!(calls[1].contains("getMessagesByPeriod"), "{}", calls[1]);
}

#[tokio::test]
async fn without_the_soap_binding_the_listing_falls_back_to_period() {
    let r = rig().await;
    r.sim.inject(Fault::on(
        FaultKind::Status(404),
        "/services/CcmdService",
        1,
    ));
    let templates = r.esp.list_templates().await.unwrap();
    assert_eq!(templates.len(), 3);
    assert_created_in(&r, &templates, "Europe/Paris");
    let calls = calls_since(&r.sim, 0);
    // open, the refused summary page, the period, five messages.
    assert_eq!(calls.len(), 1 + 1 + 1 + 5, "{calls:?}");
}

#[tokio::test]
async fn a_soap_binding_refusing_rest_tokens_points_at_by_period() {
    let sim_config = || SmartFocusSimConfig {
        soap_accepts_rest_tokens: false,
        ..poll_driven()
    };
    let r = rig_with(sim_config(), |_| {}).await;
    let err = r.esp.list_templates().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("getMessageSummaryList") && text.contains("message_listing = \"by_period\""),
        "{text}"
    );
    let r = rig_with(sim_config(), |c| {
        c.message_listing = MessageListing::ByPeriod;
    })
    .await;
    assert_eq!(r.esp.list_templates().await.unwrap().len(), 3);
}

#[tokio::test]
async fn the_summary_list_renews_an_expired_session() {
    let r = rig().await;
    assert_eq!(r.esp.list_templates().await.unwrap().len(), 3);
    r.sim.expire_tokens();
    assert_eq!(r.esp.list_templates().await.unwrap().len(), 3);
    assert_eq!(r.sim.sessions_opened(), 2);
}

#[tokio::test]
async fn upload_reaches_done_and_tags_members() {
    let r = rig().await;
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&cid("c42"), None, later()))
        .await
        .unwrap();
    assert_eq!(audience.get(keys::TAG), Some("espbridge_c42"));
    assert_eq!(audience.get(keys::TAG_FIELD), Some("CAMPAIGN_TAG_1"));
    let out = r
        .esp
        .upload_batch(&audience, &batch(0, &["007", "c-2", "x y", "bad\tid"]))
        .await
        .unwrap();
    assert_eq!(out.accepted, 3);
    assert_eq!(out.row_errors.len(), 1);
    assert_eq!(out.row_errors[0].index, 3);
    assert_eq!(
        r.sim.members_with_tag("espbridge_c42"),
        ["007", "c-2", "x y"]
    );
    let uploads = r.sim.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].status, "DONE");
    assert_eq!(uploads[0].file_name, "espbridge_c42_0.csv");
    // Sending the same batch again adds nobody twice.
    r.esp
        .upload_batch(&audience, &batch(0, &["007", "c-2", "x y"]))
        .await
        .unwrap();
    assert_eq!(r.sim.members_with_tag("espbridge_c42").len(), 3);
}

#[tokio::test]
async fn expired_sessions_are_reopened_transparently() {
    // A two-call quota ends the batch session in the middle of every upload's polling.
    let r = rig_with(
        SmartFocusSimConfig {
            session_max_calls: Some(2),
            ..poll_driven()
        },
        |_| {},
    )
    .await;
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&cid("c7"), None, later()))
        .await
        .unwrap();
    r.esp
        .upload_batch(&audience, &batch(0, &["a1", "a2"]))
        .await
        .unwrap();
    r.sim.expire_tokens();
    r.clock.advance(SignedDuration::from_mins(61));
    r.esp
        .upload_batch(&audience, &batch(2, &["a3"]))
        .await
        .unwrap();
    assert_eq!(r.sim.members_with_tag("espbridge_c7"), ["a1", "a2", "a3"]);
    assert!(r.sim.sessions_opened() >= 3, "{}", r.sim.sessions_opened());
    assert!(r.sim.uploads().iter().all(|u| u.status == "DONE"));
}

#[tokio::test]
async fn failed_import_is_an_error_with_its_state() {
    let r = rig().await;
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&cid("c9"), None, later()))
        .await
        .unwrap();
    r.sim.fail_next_import();
    let err = r
        .esp
        .upload_batch(&audience, &batch(0, &["a1"]))
        .await
        .unwrap_err();
    match &err {
        EspError::Api {
            code, retryable, ..
        } => {
            assert_eq!(code, "FAILURE");
            assert!(!retryable);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(r.sim.members_with_tag("espbridge_c9").is_empty());
}

#[tokio::test]
async fn unknown_tag_field_ends_in_error_state() {
    let r = rig_with(poll_driven(), |c| c.tag_fields = vec!["NOT_A_FIELD".into()]).await;
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&cid("c10"), None, later()))
        .await
        .unwrap();
    let err = r
        .esp
        .upload_batch(&audience, &batch(0, &["a1"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EspError::Api { code, .. } if code == "ERROR"),
        "{err:?}"
    );
}

async fn upload_many(r: &Rig, n: u64) {
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&cid("many"), None, later()))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..n {
        let esp = r.esp.clone();
        let audience = audience.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("m{i}");
            esp.upload_batch(&audience, &batch(i, &[id.as_str()])).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().accepted, 1);
    }
    assert_eq!(r.sim.members_with_tag("espbridge_many").len() as u64, n);
}

#[tokio::test]
async fn own_pending_limit_keeps_the_server_from_refusing() {
    let r = rig_with(
        SmartFocusSimConfig {
            max_pending_uploads: 2,
            ..poll_driven()
        },
        |c| c.max_pending_uploads = 2,
    )
    .await;
    upload_many(&r, 6).await;
    let refused = r
        .sim
        .requests()
        .iter()
        .filter(|q| q.path.ends_with("/mergeUpload") && q.status != 200)
        .count();
    assert_eq!(refused, 0);
}

#[tokio::test]
async fn server_pending_limit_is_waited_out() {
    // Another process holds the other slots: the server says MAX_NB_UPLOADS and we wait.
    let r = rig_with(
        SmartFocusSimConfig {
            max_pending_uploads: 1,
            ..poll_driven()
        },
        |c| c.max_pending_uploads = 5,
    )
    .await;
    upload_many(&r, 4).await;
    let merges: Vec<_> = r
        .sim
        .requests()
        .into_iter()
        .filter(|q| q.path.ends_with("/mergeUpload"))
        .collect();
    assert!(merges.iter().any(|q| q.status == 500), "no refusal seen");
    assert_eq!(merges.iter().filter(|q| q.status == 200).count(), 4);
}

async fn ready_audience(r: &Rig, campaign: &CampaignId) -> EspIds {
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(campaign, None, later()))
        .await
        .unwrap();
    r.esp
        .upload_batch(&audience, &batch(0, &["k1", "k2", "k3"]))
        .await
        .unwrap();
    let finished = r
        .esp
        .finish_audience(campaign, None, &audience)
        .await
        .unwrap();
    let known = ["k1", "k2", "k3"]
        .iter()
        .filter(|id| r.sim.knows(id))
        .count() as u64;
    assert_eq!(finished.members, Some(known));
    let done = finished.ids;
    // A retry finds the segment instead of making a second one.
    let again = r
        .esp
        .finish_audience(campaign, None, &audience)
        .await
        .unwrap()
        .ids;
    assert_eq!(done.get(keys::SEGMENT), again.get(keys::SEGMENT));
    assert_eq!(r.sim.segments().len(), 1);
    let seg = &r.sim.segments()[0];
    assert_eq!(seg.name, "espbridge_c50");
    assert_eq!(seg.criteria[0].column, "CAMPAIGN_TAG_1");
    assert_eq!(seg.criteria[0].operator, "EQUALS");
    assert_eq!(seg.criteria[0].values, ["espbridge_c50"]);
    assert_eq!(seg.criteria[1].column, "EMAIL");
    assert_eq!(seg.criteria[1].operator, "IS_NOT_EMPTY");
    assert!(seg.criteria[1].values.is_empty());
    done
}

#[tokio::test]
async fn schedule_send_twice_makes_one_clone_one_campaign_one_post() {
    let r = rig().await;
    let campaign = cid("c50");
    let audience = ready_audience(&r, &campaign).await;
    let template = r.esp.list_templates().await.unwrap().remove(0);
    let send_at = start_time() + SignedDuration::from_hours(2);
    let options = serde_json::Value::Null;
    let req = SendRequest {
        campaign_id: &campaign,
        variant: None,
        template_id: &template.id,
        send_at,
        timezone: Some("America/New_York"),
        audience: &audience,
        options: &options,
        headers: None,
    };
    let first = r.esp.schedule_send(&req).await.unwrap();
    let second = r.esp.schedule_send(&req).await.unwrap();
    assert_eq!(first, second);
    // The send time handed out is RFC 3339 with the account zone's offset (Paris, summer).
    assert_eq!(first.get(keys::SEND_AT), Some("2026-06-10T12:00:00+02:00"));
    assert_eq!(
        first
            .get(keys::SEND_AT)
            .unwrap()
            .parse::<Timestamp>()
            .unwrap(),
        send_at
    );
    let clones: Vec<_> = r
        .sim
        .messages()
        .into_iter()
        .filter(|m| m.name == "espbridge_c50")
        .collect();
    assert_eq!(clones.len(), 1);
    assert_eq!(
        clones[0].cloned_from.map(|i| i.to_string()),
        Some(template.id)
    );
    let campaigns = r.sim.campaigns();
    assert_eq!(campaigns.len(), 1);
    assert_eq!(campaigns[0].send_at, send_at);
    assert_eq!(campaigns[0].status, "QUEUED");
    assert_eq!(r.sim.post_count(), 1);

    // Metrics: none before the send, counts after it.
    assert_eq!(r.esp.fetch_metrics(&first).await.unwrap(), None);
    r.clock.advance(SignedDuration::from_hours(26));
    let m = r.esp.fetch_metrics(&first).await.unwrap().unwrap();
    assert!(m.sent >= 2 && m.sent <= 3, "{m:?}");
    assert!(m.delivered > 0 && m.delivered <= m.sent, "{m:?}");
    assert!(m.opens <= m.delivered && m.clicks <= m.opens, "{m:?}");
}

#[tokio::test]
async fn lost_create_answer_is_found_on_retry_and_posted_once() {
    let r = rig_with(poll_driven(), |c| {
        c.http.request_timeout_secs = Some(espbridge_esp_kit::RequestTimeout::secs(1))
    })
    .await;
    let campaign = cid("c50");
    let audience = ready_audience(&r, &campaign).await;
    let template = r.esp.list_templates().await.unwrap().remove(0);
    let options = serde_json::Value::Null;
    let req = SendRequest {
        campaign_id: &campaign,
        variant: None,
        template_id: &template.id,
        send_at: start_time() + SignedDuration::from_hours(2),
        timezone: None,
        audience: &audience,
        options: &options,
        headers: None,
    };
    // The simulator creates the campaign but the answer arrives after the client gave up.
    r.sim.inject(Fault::on(
        FaultKind::Timeout(Duration::from_secs(3)),
        "/campaign/create/",
        1,
    ));
    let err = r.esp.schedule_send(&req).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(r.sim.campaigns().len(), 1);
    assert_eq!(r.sim.post_count(), 0);
    let ids = r.esp.schedule_send(&req).await.unwrap();
    assert_eq!(r.sim.campaigns().len(), 1);
    assert_eq!(r.sim.post_count(), 1);
    assert_eq!(
        ids.get(keys::CAMPAIGN),
        Some(r.sim.campaigns()[0].id.to_string().as_str())
    );
    assert_eq!(
        r.sim
            .messages()
            .iter()
            .filter(|m| m.name == "espbridge_c50")
            .count(),
        1
    );
}

#[tokio::test]
async fn transient_faults_are_retried_inside_a_call() {
    let r = rig().await;
    r.sim
        .inject(Fault::on(FaultKind::Status(503), "/getUploadStatus", 2));
    r.sim.inject(Fault::on(
        FaultKind::DropConnection,
        "/services/CcmdService",
        1,
    ));
    r.sim
        .inject(Fault::on(FaultKind::Status(502), "/connect/open", 1));
    assert_eq!(r.esp.list_templates().await.unwrap().len(), 3);
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&cid("c11"), None, later()))
        .await
        .unwrap();
    r.esp
        .upload_batch(&audience, &batch(0, &["z1"]))
        .await
        .unwrap();
    assert_eq!(r.sim.members_with_tag("espbridge_c11"), ["z1"]);
    let failed = r
        .sim
        .requests()
        .iter()
        .filter(|q| q.status >= 500 || q.status == 0)
        .count();
    assert_eq!(failed, 4);
}

#[tokio::test]
async fn closing_a_finished_job_does_not_break_concurrent_calls() {
    let r = rig().await;
    let campaign = cid("c50");
    let audience = ready_audience(&r, &campaign).await;
    let template = r.esp.list_templates().await.unwrap().remove(0);
    let options = serde_json::Value::Null;
    let req = SendRequest {
        campaign_id: &campaign,
        variant: None,
        template_id: &template.id,
        send_at: start_time() + SignedDuration::from_mins(10),
        timezone: None,
        audience: &audience,
        options: &options,
        headers: None,
    };
    let sent = r.esp.schedule_send(&req).await.unwrap();
    r.clock.advance(SignedDuration::from_hours(3));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let esp = r.esp.clone();
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                esp.fetch_metrics(&sent).await.map(|m| m.is_some())
            } else {
                esp.list_templates().await.map(|t| t.len() == 3)
            }
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap());
    }
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let clock = ManualClock::new(start_time());
    let sim = SmartFocusSim::start(poll_driven(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = SmartFocusConfig::new(AccountId::parse("sf").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    let creds = SmartFocusCredentials::new("espbridge", "wrong", "sim-key");
    let esp = SmartFocusEsp::new(config, creds, &BuildContext::in_memory(Arc::new(clock))).unwrap();
    let err = esp.list_templates().await.unwrap_err();
    assert!(matches!(err, EspError::Auth { .. }), "{err:?}");
}

// ----- tag fields, send-time audiences, unknown ids, shared limits -----

fn customers(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("cust-{i:05}")).collect()
}

fn batch_of(first: u64, ids: &[String]) -> AudienceBatch {
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    batch(first, &refs)
}

/// Uploads `ids` in batches of `size`, one after the other.
async fn upload_all(esp: &SmartFocusEsp, audience: &EspIds, ids: &[String], size: usize) {
    for (i, chunk) in ids.chunks(size).enumerate() {
        let out = esp
            .upload_batch(audience, &batch_of((i * size) as u64, chunk))
            .await
            .unwrap();
        assert_eq!(out.accepted, chunk.len() as u64);
    }
}

async fn create(r: &Rig, campaign: &str, send_at: Timestamp) -> Result<EspIds, EspError> {
    r.esp
        .create_audience(&AudienceRequest::new(&cid(campaign), None, send_at))
        .await
}

/// Clones the first template and posts a campaign on the finished audience.
async fn post(r: &Rig, campaign: &str, audience: &EspIds, send_at: Timestamp) -> EspIds {
    let template = r.esp.list_templates().await.unwrap().remove(0);
    let options = serde_json::Value::Null;
    let campaign = cid(campaign);
    r.esp
        .schedule_send(&SendRequest {
            campaign_id: &campaign,
            variant: None,
            template_id: &template.id,
            send_at,
            timezone: None,
            audience,
            options: &options,
            headers: None,
        })
        .await
        .unwrap()
}

fn send_named<'a>(sends: &'a [SimSend], name: &str) -> &'a SimSend {
    sends.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no send named {name} in {:?}",
            sends.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

#[tokio::test]
async fn overlapping_pending_campaigns_each_send_to_their_own_audience() {
    // The issue: A and B share 1,000 of their 2,000 customers, both are uploaded and posted
    // before either sends. With one tag field B overwrote A's tag on the shared customers.
    let r = rig().await;
    let (a_ids, b_ids) = (customers(0..2_000), customers(1_000..3_000));
    let known = |ids: &[String]| -> Vec<String> {
        let mut k: Vec<String> = ids.iter().filter(|id| r.sim.knows(id)).cloned().collect();
        k.sort();
        k
    };
    let (a_known, b_known) = (known(&a_ids), known(&b_ids));
    assert!(
        a_known.len() < 2_000 && b_known.len() < 2_000,
        "some ids are unknown"
    );
    let send_a = start_time() + SignedDuration::from_hours(2);
    let send_b = start_time() + SignedDuration::from_hours(3);

    let audience_a = create(&r, "camp-a", send_a).await.unwrap();
    upload_all(&r.esp, &audience_a, &a_ids, 500).await;
    let audience_b = create(&r, "camp-b", send_b).await.unwrap();
    upload_all(&r.esp, &audience_b, &b_ids, 500).await;
    assert_ne!(
        audience_a.get(keys::TAG_FIELD),
        audience_b.get(keys::TAG_FIELD)
    );

    let a = r
        .esp
        .finish_audience(&cid("camp-a"), None, &audience_a)
        .await
        .unwrap();
    let b = r
        .esp
        .finish_audience(&cid("camp-b"), None, &audience_b)
        .await
        .unwrap();
    assert_eq!(a.members, Some(a_known.len() as u64));
    assert_eq!(b.members, Some(b_known.len() as u64));
    post(&r, "camp-a", &a.ids, send_a).await;
    post(&r, "camp-b", &b.ids, send_b).await;
    assert!(r.sim.sends().is_empty(), "nothing is sent before its time");

    r.clock.set(send_a + SignedDuration::from_mins(1));
    let sends = r.sim.sends();
    assert_eq!(sends.len(), 1);
    let sent_a = send_named(&sends, "espbridge_camp-a");
    assert_eq!(sent_a.send_at, send_a);
    assert_eq!(sent_a.recipients, a_known);

    r.clock.set(send_b + SignedDuration::from_mins(1));
    let sends = r.sim.sends();
    assert_eq!(sends.len(), 2);
    assert_eq!(send_named(&sends, "espbridge_camp-a").recipients, a_known);
    assert_eq!(send_named(&sends, "espbridge_camp-b").recipients, b_known);
    // The snapshot's nbSelected follows the frozen audience.
    let selected: Vec<u64> = r.sim.campaigns().iter().map(|c| c.selected).collect();
    assert_eq!(selected, [a_known.len() as u64, b_known.len() as u64]);
}

#[tokio::test]
async fn a_pending_campaign_beyond_the_tag_fields_is_refused_until_one_frees() {
    let r = rig_with(poll_driven(), |c| {
        c.tag_fields = vec!["CAMPAIGN_TAG_1".into(), "CAMPAIGN_TAG_2".into()];
    })
    .await;
    let first_send = start_time() + SignedDuration::from_hours(1);
    let first = create(&r, "p1", first_send).await.unwrap();
    let second = create(&r, "p2", start_time() + SignedDuration::from_hours(2))
        .await
        .unwrap();
    let fields = [first.get(keys::TAG_FIELD), second.get(keys::TAG_FIELD)];
    assert_eq!(
        fields
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [Some("CAMPAIGN_TAG_1"), Some("CAMPAIGN_TAG_2")].into()
    );

    let requests_before = r.sim.requests().len();
    let third_send = start_time() + SignedDuration::from_hours(3);
    let err = create(&r, "p3", third_send).await.unwrap_err();
    match &err {
        EspError::Capacity { detail, .. } => {
            assert!(detail.contains("(tag_fields)"), "{detail}");
            assert!(
                detail.contains("all 2 tag fields of account sf"),
                "{detail}"
            );
            // The first field frees 120 minutes after the first send.
            assert!(detail.contains("until 2026-06-10T11:00:00Z"), "{detail}");
        }
        other => panic!("expected a capacity error, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(
        r.sim.requests().len(),
        requests_before,
        "nothing reached SmartFocus"
    );
    assert!(r.sim.uploads().is_empty());

    // Sent, but within the hold (the send may still be evaluating its segment): still full.
    r.clock.set(first_send + SignedDuration::from_mins(119));
    assert!(matches!(
        create(&r, "p3", third_send).await,
        Err(EspError::Capacity { .. })
    ));
    // Past the hold: the first campaign's field is free for the next one.
    r.clock.set(first_send + SignedDuration::from_mins(121));
    let third = create(&r, "p3", third_send).await.unwrap();
    assert_eq!(third.get(keys::TAG_FIELD), first.get(keys::TAG_FIELD));
    // The second campaign still holds its own.
    let again = create(&r, "p2", start_time() + SignedDuration::from_hours(2))
        .await
        .unwrap();
    assert_eq!(again.get(keys::TAG_FIELD), second.get(keys::TAG_FIELD));
}

#[tokio::test]
async fn a_retried_create_audience_gets_the_same_field() {
    let r = rig().await;
    let send = later();
    let first = create(&r, "c70", send).await.unwrap();
    let other = create(&r, "c71", send).await.unwrap();
    let retry = create(&r, "c70", send).await.unwrap();
    assert_eq!(retry, first);
    assert_ne!(other.get(keys::TAG_FIELD), first.get(keys::TAG_FIELD));
    // A variant is a campaign of its own: its own tag and field.
    let variant = r
        .esp
        .create_audience(&AudienceRequest::new(&cid("c70"), Some("B"), send))
        .await
        .unwrap();
    assert_eq!(variant.get(keys::TAG), Some("espbridge_c70_B"));
    let taken = [first.get(keys::TAG_FIELD), other.get(keys::TAG_FIELD)];
    assert!(
        !taken.contains(&variant.get(keys::TAG_FIELD)),
        "{variant:?}"
    );
}

#[tokio::test]
async fn ids_unknown_to_smartfocus_are_counted_and_not_sent_to() {
    let r = rig_with(
        SmartFocusSimConfig {
            unknown_id_share: 0.3,
            ..poll_driven()
        },
        |_| {},
    )
    .await;
    let ids = customers(0..200);
    let (known, unknown): (Vec<String>, Vec<String>) =
        ids.iter().cloned().partition(|id| r.sim.knows(id));
    assert!(!known.is_empty() && unknown.len() > 20, "{}", unknown.len());
    let send_at = start_time() + SignedDuration::from_hours(1);
    let audience = create(&r, "c80", send_at).await.unwrap();
    upload_all(&r.esp, &audience, &ids, 64).await;
    // The merge added every unknown id as a member, without e-mail.
    assert_eq!(r.sim.members_with_tag("espbridge_c80"), ids);
    assert_eq!(r.sim.members_without_email(), unknown);

    let finished = r
        .esp
        .finish_audience(&cid("c80"), None, &audience)
        .await
        .unwrap();
    assert_eq!(finished.members, Some(known.len() as u64));
    post(&r, "c80", &finished.ids, send_at).await;
    r.clock.set(send_at + SignedDuration::from_mins(5));
    let sends = r.sim.sends();
    let sent = send_named(&sends, "espbridge_c80");
    assert_eq!(sent.recipients, known);
    assert!(sent.recipients.iter().all(|id| !unknown.contains(id)));
}

#[tokio::test]
async fn a_count_path_the_server_lacks_leaves_members_uncounted() {
    let r = rig_with(poll_driven(), |c| {
        c.segment_count_path = "segmentationservice/{token}/segment/{id}/segmentationCount".into();
    })
    .await;
    let audience = create(&r, "c81", later()).await.unwrap();
    upload_all(&r.esp, &audience, &customers(0..10), 10).await;
    let finished = r
        .esp
        .finish_audience(&cid("c81"), None, &audience)
        .await
        .unwrap();
    assert_eq!(finished.members, None);
    assert!(finished.ids.get(keys::SEGMENT).is_some());
    assert!(
        r.sim
            .requests()
            .iter()
            .any(|q| q.path.ends_with("/segmentationCount") && q.status == 404)
    );
}

#[tokio::test]
async fn five_instances_uploading_at_once_stay_within_the_account_limits() {
    // Five campaigns of one account, each uploaded by its own function instance (its own
    // client) with three batches in flight; the instances share the deployment's limits.
    let clock = ManualClock::new(start_time());
    let sim = SmartFocusSim::start(
        SmartFocusSimConfig {
            max_pending_uploads: 5,
            ..poll_driven()
        },
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    sim.set_latency(Duration::from_millis(20));
    let ctx = BuildContext {
        clock: Arc::new(clock.clone()),
        limits: Arc::new(MemoryLimits::new()),
    };
    let mut tasks = Vec::new();
    for i in 0..5u32 {
        let esp = client(&sim, &ctx, |c| c.max_pending_uploads = 5);
        tasks.push(tokio::spawn(async move {
            let campaign = cid(&format!("par{i}"));
            let send_at = start_time() + SignedDuration::from_hours(i64::from(i) + 1);
            let audience = esp
                .create_audience(&AudienceRequest::new(&campaign, None, send_at))
                .await
                .unwrap();
            let ids = customers(i * 1_000..i * 1_000 + 150);
            let mut batches = Vec::new();
            for (n, chunk) in ids.chunks(50).enumerate() {
                let (esp, audience, batch) = (
                    esp.clone(),
                    audience.clone(),
                    batch_of(n as u64 * 50, chunk),
                );
                batches.push(tokio::spawn(async move {
                    esp.upload_batch(&audience, &batch).await
                }));
            }
            for b in batches {
                assert_eq!(b.await.unwrap().unwrap().accepted, 50);
            }
            audience
        }));
    }
    let mut fields = std::collections::BTreeSet::new();
    for t in tasks {
        let audience = t.await.unwrap();
        let tag = audience.get(keys::TAG).unwrap();
        assert_eq!(sim.members_with_tag(tag).len(), 150, "{tag}");
        fields.insert(audience.get(keys::TAG_FIELD).unwrap().to_owned());
    }
    assert_eq!(
        fields.len(),
        5,
        "each pending campaign has its own field: {fields:?}"
    );
    assert_eq!(sim.uploads().len(), 15);
    assert_eq!(sim.limit_refusals(), 0);
    assert!(
        sim.peak_in_flight() >= 5,
        "uploads overlapped: {}",
        sim.peak_in_flight()
    );
}

/// Uploads `ids` in batches of `size` with `workers` workers at once (as that many workers of
/// one account would), each taking every `workers`-th batch.
async fn upload_with_workers(
    esp: &Arc<SmartFocusEsp>,
    audience: &EspIds,
    ids: &[String],
    size: usize,
    workers: usize,
) {
    let batches: Vec<(u64, Vec<String>)> = ids
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| ((i * size) as u64, chunk.to_vec()))
        .collect();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let esp = Arc::clone(esp);
            let audience = audience.clone();
            let mine: Vec<_> = batches.iter().skip(w).step_by(workers).cloned().collect();
            tokio::spawn(async move {
                for (first, chunk) in mine {
                    let out = esp
                        .upload_batch(&audience, &batch_of(first, &chunk))
                        .await
                        .unwrap();
                    assert_eq!(out.accepted, chunk.len() as u64);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expiring_every_3_calls_with_10_in_flight_and_a_cap_of_4_complete() {
    // A manager quota of 3 calls per session, 4 sessions at most; ten uploads in flight.
    let r = rig_with(
        SmartFocusSimConfig {
            session_max_calls: Some(3),
            max_sessions: Some(4),
            max_pending_uploads: 10,
            ..poll_driven()
        },
        |c| {
            c.max_pending_uploads = 10;
            c.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(3));
        },
    )
    .await;
    r.sim.set_latency(Duration::from_millis(2));
    let ids = customers(0..3000);
    let send_at = later();
    let scenario = async {
        let audience = create(&r, "c90", send_at).await.unwrap();
        upload_with_workers(&r.esp, &audience, &ids, 100, 10).await;
        let finished = r
            .esp
            .finish_audience(&cid("c90"), None, &audience)
            .await
            .unwrap();
        post(&r, "c90", &finished.ids, send_at).await;
        finished
    };
    let finished = tokio::time::timeout(Duration::from_secs(300), scenario)
        .await
        .expect("the upload hung");
    assert_eq!(
        r.sim.members_with_tag("espbridge_c90"),
        ids,
        "the whole audience arrived"
    );
    let known = ids.iter().filter(|id| r.sim.knows(id)).count() as u64;
    assert_eq!(finished.members, Some(known));
    assert_eq!(r.sim.post_count(), 1);
    assert!(r.sim.uploads().iter().all(|u| u.status == "DONE"));
    let (opened, served) = (r.sim.sessions_opened(), r.sim.calls_served());
    // One session per three calls carried, plus one per call in flight and a little slack
    // (each service's token is opened on its own): never one per refused call.
    let bound = served / 3 + 10 + 10;
    assert!(
        opened <= bound,
        "{opened} sessions opened for {served} calls (bound {bound})"
    );
    assert!(
        r.sim.peak_sessions() <= 4,
        "{} sessions open at once",
        r.sim.peak_sessions()
    );
    assert_eq!(r.sim.limit_refusals(), 0, "no connect/open refused");
    assert!(r.sim.peak_in_flight() >= 5, "uploads ran concurrently");
    eprintln!(
        "smartfocus: {served} calls, {opened} sessions opened, peak {} open, peak {} in flight",
        r.sim.peak_sessions(),
        r.sim.peak_in_flight()
    );
}
