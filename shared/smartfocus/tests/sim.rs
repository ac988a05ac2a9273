//! End to end against the SmartFocus simulator: real HTTP, real XML, injected faults.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, Contact, Esp, EspError, EspIds, SendRequest,
};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_esp_kit::BuildContext;
use espbridge_sim::{Fault, FaultKind};
use espbridge_smartfocus::sim::{SmartFocusSim, SmartFocusSimConfig};
use espbridge_smartfocus::{SmartFocusConfig, SmartFocusCredentials, SmartFocusEsp, keys};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// A send time a day after the start.
fn later() -> Timestamp {
    start_time() + jiff::SignedDuration::from_hours(24)
}

fn start_time() -> Timestamp {
    "2026-05-20T08:00:00Z".parse().unwrap()
}

struct Rig {
    sim: SmartFocusSim,
    esp: Arc<SmartFocusEsp>,
    clock: ManualClock,
}

async fn rig_with(
    sim_config: SmartFocusSimConfig,
    tweak: impl FnOnce(&mut SmartFocusConfig),
) -> Rig {
    let clock = ManualClock::new(start_time());
    let sim = SmartFocusSim::start(sim_config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = SmartFocusConfig::new(AccountId::parse("sf").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.timezone = "Europe/Paris".into();
    config.upload_poll_interval_ms = 5;
    config.upload_timeout_secs = 20;
    tweak(&mut config);
    let creds = SmartFocusCredentials::new("espbridge", "sim-password", "sim-key");
    let esp = SmartFocusEsp::new(
        config,
        creds,
        &BuildContext::in_memory(Arc::new(clock.clone())),
    )
    .unwrap();
    Rig {
        sim,
        esp: Arc::new(esp),
        clock,
    }
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

#[tokio::test]
async fn upload_reaches_done_and_tags_members() {
    let r = rig().await;
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&cid("c42"), None, later()))
        .await
        .unwrap();
    assert_eq!(audience.get(keys::TAG), Some("espbridge_c42"));
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
            calls_per_session: Some(2),
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
    let r = rig_with(poll_driven(), |c| c.tag_field = "NOT_A_FIELD".into()).await;
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
    let done = r
        .esp
        .finish_audience(campaign, None, &audience)
        .await
        .unwrap()
        .ids;
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
    assert_eq!(seg.criteria[0].column, "CAMPAIGN_TAG");
    assert_eq!(seg.criteria[0].values, ["espbridge_c50"]);
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
        "/message/getMessage/",
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
