//! End-to-end against the Emarsys simulator (`espbridge_sim::emarsys`): the adapter's whole flow
//! over real HTTP, with the faults the simulator can inject.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::esp::object_name;
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, Contact, Esp, EspError, EspIds, SendRequest,
};
use espbridge_core::{AccountId, CampaignId, Clock, ManualClock};
use espbridge_emarsys::sim::{EmarsysSim, EmarsysSimConfig, SeedEmail};
use espbridge_emarsys::{EmarsysConfig, EmarsysCredentials, EmarsysEsp, SOURCE_READ_TTL, keys};
use espbridge_esp_kit::{BuildContext, SimView};
use espbridge_sim::{Fault, FaultKind};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::{Duration, Instant};

const START: &str = "2026-11-24T08:00:00Z";

/// A send time a day after the start.
fn later() -> Timestamp {
    START.parse::<Timestamp>().unwrap() + SignedDuration::from_hours(24)
}

struct Rig {
    sim: EmarsysSim,
    esp: EmarsysEsp,
    clock: ManualClock,
}

async fn rig_with(sim_config: EmarsysSimConfig, tweak: impl FnOnce(&mut EmarsysConfig)) -> Rig {
    let clock = ManualClock::new(START.parse().unwrap());
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let sim = EmarsysSim::start(sim_config, shared.clone()).await.unwrap();
    let mut config = EmarsysConfig::new(AccountId::parse("eu").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.template_prefix = "optimove_".into();
    config.http.request_timeout_secs = Some(espbridge_esp_kit::RequestTimeout::secs(2));
    tweak(&mut config);
    let creds = EmarsysCredentials::new("espbridge", "sim-secret");
    let esp = EmarsysEsp::new(config, creds, &BuildContext::in_memory(shared)).unwrap();
    Rig { sim, esp, clock }
}

async fn rig() -> Rig {
    rig_with(EmarsysSimConfig::default(), |_| {}).await
}

fn campaign(id: &str) -> CampaignId {
    CampaignId::parse(id).unwrap()
}

fn batch(first: u64, ids: impl Iterator<Item = String>) -> AudienceBatch {
    AudienceBatch {
        first_ordinal: first,
        field_names: Arc::from(Vec::<String>::new()),
        contacts: ids
            .map(|customer_id| Contact {
                customer_id,
                email: None,
                fields: vec![],
            })
            .collect(),
    }
}

async fn template_id(esp: &EmarsysEsp, name: &str) -> String {
    esp.list_templates()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("template {name} not listed"))
        .id
}

/// Audience of `n` ids in one list, ready to send.
async fn audience(r: &Rig, campaign_id: &CampaignId, n: usize) -> EspIds {
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(campaign_id, None, later()))
        .await
        .unwrap();
    let b = batch(0, (0..n).map(|i| format!("CUST{i:06}")));
    r.esp.upload_batch(&ids, &b).await.unwrap();
    ids
}

fn send_request<'a>(
    campaign_id: &'a CampaignId,
    template_id: &'a str,
    audience: &'a EspIds,
    options: &'a serde_json::Value,
) -> SendRequest<'a> {
    SendRequest {
        campaign_id,
        variant: None,
        template_id,
        send_at: "2026-11-25T08:30:00Z".parse::<Timestamp>().unwrap(),
        timezone: Some("Europe/Berlin"),
        audience,
        options,
        headers: None,
    }
}

#[tokio::test]
async fn templates_are_filtered_by_rules_and_prefix() {
    let r = rig().await;
    let mut got: Vec<(String, String, String)> = r
        .esp
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.display_name, t.kind.unwrap_or_default()))
        .collect();
    got.sort();
    let want = [
        ("optimove_cms_welcome", "cms_welcome", "cms"),
        ("optimove_spring_sale", "spring_sale", "html"),
        ("optimove_weekly_digest", "weekly_digest", "html"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(got, want);
    let req = &r.sim.requests()[0];
    assert_eq!(
        (req.method.as_str(), req.query.as_deref()),
        ("GET", Some("status=1"))
    );

    let id = template_id(&r.esp, "optimove_spring_sale").await;
    let preview = r.esp.preview(&id).await.unwrap();
    assert!(
        preview.body.contains("Spring sale: 20% off"),
        "{}",
        preview.body
    );
    assert_eq!(preview.subject.as_deref(), Some("Spring sale: 20% off"));
}

#[tokio::test]
async fn creating_an_audience_twice_finds_the_same_list() {
    let r = rig().await;
    let c = campaign("cmp-1");
    let first = r
        .esp
        .create_audience(&AudienceRequest::new(&c, Some("A"), later()))
        .await
        .unwrap();
    let second = r
        .esp
        .create_audience(&AudienceRequest::new(&c, Some("A"), later()))
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(first.get(keys::KEY_ID), Some("4980"));
    let lists = r.sim.contact_lists();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].name, "espbridge_cmp-1_A");
    assert_eq!(
        first.get(keys::CONTACT_LIST_ID),
        Some(lists[0].id.to_string().as_str())
    );
    assert!(r.sim.requests().iter().any(|q| q.reply_code == Some(3005)));
    // The field list is read once per adapter.
    let field_calls = r
        .sim
        .requests()
        .iter()
        .filter(|q| q.path.ends_with("/field"))
        .count();
    assert_eq!(field_calls, 1);
}

#[tokio::test]
async fn uploads_in_10k_chunks_and_counts_unknown_ids() {
    let r = rig().await;
    let c = campaign("cmp-upload");
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&c, None, later()))
        .await
        .unwrap();
    let total = 25_000usize;
    let all: Vec<String> = (0..total).map(|i| format!("CUST{i:06}")).collect();
    let (mut accepted, mut unknown, mut first_outcome) = (0, 0, None);
    for (n, chunk) in all.chunks(r.esp.max_batch()).enumerate() {
        let b = batch((n * r.esp.max_batch()) as u64, chunk.iter().cloned());
        let out = r.esp.upload_batch(&ids, &b).await.unwrap();
        assert!(out.row_errors.is_empty(), "{:?}", out.row_errors);
        accepted += out.accepted;
        unknown += out.not_in_esp;
        first_outcome.get_or_insert(out);
    }
    assert_eq!(accepted + unknown, total as u64);
    assert!(unknown > 0 && unknown < 1_000, "unknown {unknown}");
    let adds: Vec<_> = r
        .sim
        .requests()
        .into_iter()
        .filter(|q| q.path.ends_with("/add"))
        .collect();
    assert_eq!(adds.len(), 3);
    let sizes: Vec<usize> = adds
        .iter()
        .map(|q| {
            q.body.as_ref().unwrap()["external_ids"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [10_000, 10_000, 5_000]);
    assert_eq!(adds[0].body.as_ref().unwrap()["key_id"], "4980");
    assert_eq!(r.sim.contact_lists()[0].members.len() as u64, accepted);

    // The same batch again adds nobody twice.
    let again = r
        .esp
        .upload_batch(&ids, &batch(0, all[..10_000].iter().cloned()))
        .await
        .unwrap();
    assert_eq!(again.accepted, 0);
    assert_eq!(again.not_in_esp, first_outcome.unwrap().not_in_esp);
    assert_eq!(r.sim.contact_lists()[0].members.len() as u64, accepted);
}

#[tokio::test]
async fn schedule_send_twice_copies_and_launches_once() {
    let r = rig().await;
    let c = campaign("cmp-send");
    let tpl = template_id(&r.esp, "optimove_spring_sale").await;
    let aud = audience(&r, &c, 50).await;
    let opts = serde_json::Value::Null;
    let req = send_request(&c, &tpl, &aud, &opts);
    let first = r.esp.schedule_send(&req).await.unwrap();
    let second = r.esp.schedule_send(&req).await.unwrap();
    assert_eq!(first, second);
    // Booked as `2026-11-25 09:30` Europe/Berlin; kept as RFC 3339 with that zone's offset.
    assert_eq!(
        first.get(keys::LAUNCH_SCHEDULE),
        Some("2026-11-25T09:30:00+01:00")
    );
    let launch = r
        .sim
        .requests()
        .into_iter()
        .find(|q| q.path.ends_with("/launch"))
        .unwrap();
    assert_eq!(launch.body.unwrap()["schedule"], "2026-11-25 09:30");
    assert_eq!(first.get(keys::LAUNCH_TIMEZONE), Some("Europe/Berlin"));
    assert_eq!(r.sim.launch_count(), 1);
    let copies: Vec<_> = r
        .sim
        .emails()
        .into_iter()
        .filter(|e| e.copied_from.is_some())
        .collect();
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    assert_eq!(copy.name, "espbridge_cmp-send");
    assert_eq!(
        first.get(keys::EMAIL_ID),
        Some(copy.id.to_string().as_str())
    );
    assert_eq!(
        Some(copy.contactlist.to_string().as_str()),
        aud.get(keys::CONTACT_LIST_ID)
    );
    assert_eq!(
        copy.launches[0].send_at,
        "2026-11-25T08:30:00Z".parse::<Timestamp>().unwrap()
    );
    // An API-source template is attached with updatesource.
    assert!(
        r.sim
            .requests()
            .iter()
            .any(|q| q.path.ends_with("/updatesource"))
    );
}

#[tokio::test]
async fn contact_list_source_templates_are_attached_with_patch() {
    let r = rig().await;
    let c = campaign("cmp-patch");
    let tpl = template_id(&r.esp, "optimove_weekly_digest").await;
    let aud = audience(&r, &c, 10).await;
    let opts = serde_json::Value::Null;
    r.esp
        .schedule_send(&send_request(&c, &tpl, &aud, &opts))
        .await
        .unwrap();
    let paths: Vec<String> = r.sim.requests().into_iter().map(|q| q.path).collect();
    assert!(paths.iter().any(|p| p.ends_with("/patch")), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.ends_with("/updatesource")),
        "{paths:?}"
    );
    assert_eq!(r.sim.launch_count(), 1);
}

#[tokio::test]
async fn metrics_are_none_before_the_send_and_counted_after() {
    let r = rig().await;
    let c = campaign("cmp-metrics");
    let tpl = template_id(&r.esp, "optimove_spring_sale").await;
    let aud = audience(&r, &c, 2_000).await;
    let opts = serde_json::Value::Null;
    let sent = r
        .esp
        .schedule_send(&send_request(&c, &tpl, &aud, &opts))
        .await
        .unwrap();
    assert_eq!(r.esp.fetch_metrics(&sent).await.unwrap(), None);
    r.clock.advance(SignedDuration::from_hours(48));
    let m = r
        .esp
        .fetch_metrics(&sent)
        .await
        .unwrap()
        .expect("counts after the send");
    let planned = r.sim.contact_lists()[0].members.len() as u64;
    assert!(m.sent > 0 && m.sent <= planned, "{m:?} planned {planned}");
    assert_eq!(m.delivered + m.bounces, m.sent, "{m:?}");
    assert!(m.opens > 0 && m.opens <= m.delivered, "{m:?}");
    assert!(m.clicks <= m.opens, "{m:?}");
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried() {
    let r = rig().await;
    let c = campaign("cmp-faults");
    let tpl = template_id(&r.esp, "optimove_spring_sale").await;
    let aud = audience(&r, &c, 20).await;
    r.sim.inject(Fault::on(FaultKind::Status(503), "/copy", 2));
    r.sim
        .inject(Fault::on(FaultKind::DropConnection, "/launch", 1));
    let opts = serde_json::Value::Null;
    let sent = r
        .esp
        .schedule_send(&send_request(&c, &tpl, &aud, &opts))
        .await
        .unwrap();
    assert!(sent.get(keys::EMAIL_ID).is_some());
    assert_eq!(r.sim.launch_count(), 1);
    let copy_statuses: Vec<u16> = r
        .sim
        .requests()
        .into_iter()
        .filter(|q| q.path.ends_with("/copy"))
        .map(|q| q.status)
        .collect();
    assert_eq!(copy_statuses, [503, 503, 200]);
}

#[tokio::test]
async fn a_timed_out_copy_is_found_by_name_on_retry() {
    let r = rig_with(EmarsysSimConfig::default(), |c| {
        c.http.request_timeout_secs = Some(espbridge_esp_kit::RequestTimeout::secs(1))
    })
    .await;
    let c = campaign("cmp-timeout");
    let tpl = template_id(&r.esp, "optimove_spring_sale").await;
    let aud = audience(&r, &c, 20).await;
    // The simulator copies, then holds the answer past the client's timeout.
    r.sim.inject(Fault::on(
        FaultKind::Timeout(Duration::from_secs(3)),
        "/copy",
        1,
    ));
    let opts = serde_json::Value::Null;
    r.esp
        .schedule_send(&send_request(&c, &tpl, &aud, &opts))
        .await
        .unwrap();
    let copies = r
        .sim
        .emails()
        .into_iter()
        .filter(|e| e.copied_from.is_some())
        .count();
    assert_eq!(copies, 1);
    assert!(r.sim.requests().iter().any(|q| q.reply_code == Some(6023)));
    assert_eq!(r.sim.launch_count(), 1);
}

#[tokio::test]
async fn a_launch_whose_answer_was_lost_is_verified_not_repeated() {
    let r = rig_with(EmarsysSimConfig::default(), |c| {
        c.http.request_timeout_secs = Some(espbridge_esp_kit::RequestTimeout::secs(1))
    })
    .await;
    let c = campaign("cmp-launch-timeout");
    let tpl = template_id(&r.esp, "optimove_cms_welcome").await;
    let aud = audience(&r, &c, 20).await;
    // The simulator launches, then holds the answer: the retry meets 409 / 6003.
    r.sim.inject(Fault::on(
        FaultKind::Timeout(Duration::from_secs(3)),
        "/launch",
        1,
    ));
    let opts = serde_json::Value::Null;
    let sent = r
        .esp
        .schedule_send(&send_request(&c, &tpl, &aud, &opts))
        .await
        .unwrap();
    assert!(sent.get(keys::EMAIL_ID).is_some());
    assert_eq!(r.sim.launch_count(), 1);
    let launches: Vec<(u16, Option<i64>)> = r
        .sim
        .requests()
        .into_iter()
        .filter(|q| q.path.ends_with("/launch"))
        .map(|q| (q.status, q.reply_code))
        .collect();
    assert_eq!(launches, [(200, Some(0)), (409, Some(6003))]);
}

#[tokio::test]
async fn throttling_waits_for_the_reset_and_retries() {
    let r = rig().await;
    r.sim.inject(Fault::on(FaultKind::RateLimit, "/field", 1));
    let started = Instant::now();
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign("cmp-429"), None, later()))
        .await
        .unwrap();
    assert!(ids.get(keys::CONTACT_LIST_ID).is_some());
    let codes: Vec<(u16, Option<i64>)> = r
        .sim
        .requests()
        .into_iter()
        .filter(|q| q.path.ends_with("/field"))
        .map(|q| (q.status, q.reply_code))
        .collect();
    assert_eq!(codes, [(429, Some(7003)), (200, Some(0))]);
    // The retry came after the reset the simulator announced (whole epoch seconds, two ahead:
    // at least one second away), not straight away.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn persistent_server_errors_end_as_transient() {
    let r = rig_with(EmarsysSimConfig::default(), |c| {
        c.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(3))
    })
    .await;
    r.sim.inject(Fault::any(FaultKind::Status(503), 10));
    let err = r.esp.list_templates().await.unwrap_err();
    assert!(matches!(err, EspError::Transient { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(r.sim.requests().len(), 3);
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error() {
    let r = rig().await;
    let mut config = r.esp.config().clone();
    config.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(6));
    let bad = EmarsysEsp::new(
        config,
        EmarsysCredentials::new("espbridge", "wrong"),
        &BuildContext::in_memory(Arc::new(r.clock.clone())),
    )
    .unwrap();
    let err = bad.list_templates().await.unwrap_err();
    assert!(matches!(err, EspError::Auth { .. }), "{err:?}");
    assert!(!err.is_retryable());
    // Not retried.
    assert_eq!(r.sim.requests().len(), 1);
}

/// The simulator counts 600 a minute over one-second windows (10 a second): thirty calls fired
/// at once would meet 20 refusals unpaced; paced at 98% of the rate they meet none.
#[tokio::test]
async fn pacing_keeps_a_saturated_client_under_the_limit() {
    let sim_config = EmarsysSimConfig {
        rate_limit_per_minute: 600,
        rate_window: Duration::from_secs(1),
        ..EmarsysSimConfig::default()
    };
    let r = rig_with(sim_config, |c| c.rate_limit_per_minute = 600).await;
    let calls: Vec<_> = (0..30)
        .map(|_| {
            let esp = r.esp.clone();
            tokio::spawn(async move { esp.list_templates().await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(r.sim.requests().len(), 30);
    assert!(r.sim.requests().iter().all(|q| q.status != 429));
    assert_eq!(r.sim.limit_refusals(), 0);
}

/// Five instances of the adapter (five Lambda instances, say) uploading five campaigns of one
/// API user share its allowance through the account limits: the simulator refuses nothing,
/// though each instance alone would pace itself at the full rate.
#[tokio::test]
async fn five_instances_of_one_api_user_share_its_rate() {
    let sim_config = EmarsysSimConfig {
        rate_limit_per_minute: 600,
        rate_window: Duration::from_secs(1),
        ..EmarsysSimConfig::default()
    };
    let r = rig_with(sim_config, |c| c.rate_limit_per_minute = 600).await;
    let limits = BuildContext::in_memory(Arc::new(r.clock.clone())).limits;
    let workers: Vec<_> = (0..5)
        .map(|w| {
            let ctx = BuildContext {
                clock: Arc::new(r.clock.clone()),
                limits: Arc::clone(&limits),
            };
            let esp = EmarsysEsp::new(
                r.esp.config().clone(),
                EmarsysCredentials::new("espbridge", "sim-secret"),
                &ctx,
            )
            .unwrap();
            tokio::spawn(async move {
                let c = campaign(&format!("night-{w}"));
                let ids = esp
                    .create_audience(&AudienceRequest::new(&c, None, later()))
                    .await
                    .unwrap();
                for b in 0..6 {
                    let first = w * 10_000 + b * 100;
                    let batch = batch(
                        first as u64,
                        (first..first + 100).map(|i| format!("CUST{i:06}")),
                    );
                    esp.upload_batch(&ids, &batch).await.unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    assert!(
        r.sim.requests().len() >= 5 * 7,
        "{}",
        r.sim.requests().len()
    );
    assert_eq!(r.sim.limit_refusals(), 0);
    assert!(r.sim.requests().iter().all(|q| q.status != 429));
}

/// Two campaigns pending at once whose audiences overlap (2,000 each, 1,000 shared): each
/// launch goes, at its own send time, to its whole list (the known contacts of it).
#[tokio::test]
async fn overlapping_pending_campaigns_each_send_to_their_whole_audience() {
    let r = rig().await;
    let tpl = template_id(&r.esp, "optimove_spring_sale").await;
    let share = r.sim.config().unknown_id_share;
    let people = |range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| format!("CUST{i:06}")).collect()
    };
    let (a, b) = (campaign("night-a"), campaign("night-b"));
    let (a_ids, b_ids) = (people(0..2_000), people(1_000..3_000));
    let opts = serde_json::Value::Null;
    let mut booked = Vec::new();
    for (c, ids, hour) in [(&a, &a_ids, 9), (&b, &b_ids, 11)] {
        let aud = r
            .esp
            .create_audience(&AudienceRequest::new(c, None, later()))
            .await
            .unwrap();
        r.esp
            .upload_batch(&aud, &batch(0, ids.iter().cloned()))
            .await
            .unwrap();
        let mut req = send_request(c, &tpl, &aud, &opts);
        req.send_at = format!("2026-11-25T{hour:02}:00:00Z").parse().unwrap();
        r.esp.schedule_send(&req).await.unwrap();
        booked.push((object_name(c, None), ids.clone()));
    }
    assert!(r.sim.sends().is_empty(), "nothing is sent before its time");
    r.clock.set("2026-11-25T12:00:00Z".parse().unwrap());
    let sends = r.sim.sends();
    assert_eq!(sends.len(), 2);
    for (name, ids) in booked {
        let mut want: Vec<String> = ids
            .into_iter()
            .filter(|id| !espbridge_sim::in_share(id, share))
            .collect();
        want.sort();
        let sent = sends.iter().find(|s| s.name == name).unwrap();
        assert!(want.len() > 1_900, "{}", want.len());
        assert_eq!(sent.recipients, want, "{name}");
    }
}

/// An account on a smaller plan: the simulator allows 600 a minute and says so in
/// `X-RateLimit-Limit`, while the account is configured for ten times that. The client paces to
/// the announced limit from the first answer on: thirty calls in a row meet no refusal (at the
/// configured pace they would meet about twenty).
#[tokio::test]
async fn a_stricter_account_announces_its_limit_and_the_client_paces_to_it() {
    let sim_config = EmarsysSimConfig {
        rate_limit_per_minute: 600,
        rate_window: Duration::from_secs(1),
        ..EmarsysSimConfig::default()
    };
    let r = rig_with(sim_config, |c| c.rate_limit_per_minute = 6_000).await;
    assert!(r.esp.pace() > 5_000.0);
    for _ in 0..30 {
        r.esp.list_templates().await.unwrap();
    }
    assert_eq!(r.sim.limit_refusals(), 0);
    assert!(r.sim.requests().iter().all(|q| q.status != 429));
    assert_eq!(r.esp.pace(), 600.0 * 0.98);
}

/// Throttling spends none of the account's attempts: with one attempt allowed, two 429s in a
/// row are waited out (for the announced reset, at least a second each) and the call succeeds.
#[tokio::test]
async fn throttling_answers_are_waited_out_however_few_attempts_remain() {
    let r = rig_with(EmarsysSimConfig::default(), |c| {
        c.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(1))
    })
    .await;
    r.sim.inject(Fault::any(FaultKind::RateLimit, 2));
    let templates = tokio::time::timeout(Duration::from_secs(60), r.esp.list_templates())
        .await
        .expect("a throttled call does not hang")
        .unwrap();
    assert!(!templates.is_empty());
    let statuses: Vec<u16> = r.sim.requests().iter().map(|q| q.status).collect();
    assert_eq!(statuses[..3], [429, 429, 200]);
    assert!(statuses[2..].iter().all(|s| *s == 200), "{statuses:?}");
}

// ---- templates on either field set of `GET /email` -----------------------------------------

/// An In-Design e-mail of `content` (`html`, `template`, `block`) with this recipient source.
fn seed(name: &str, content: &str, source: &str, filter: u64, contactlist: u64) -> SeedEmail {
    SeedEmail {
        content_type: content.into(),
        source: source.into(),
        filter,
        contactlist,
        ..SeedEmail::in_design(name, name)
    }
}

/// A rig whose adapter and simulator share the account's zone.
async fn account_rig(emails: Vec<SeedEmail>, legacy: bool, zone: &str) -> Rig {
    let sim = EmarsysSimConfig {
        emails,
        legacy_email_fields: legacy,
        account_timezone: zone.into(),
        ..Default::default()
    };
    rig_with(sim, |c| c.timezone = zone.into()).await
}

/// (name, kind) of every template listed, sorted.
async fn listed(esp: &EmarsysEsp) -> Vec<(String, String)> {
    let mut got: Vec<_> = esp
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.kind.unwrap_or_default()))
        .collect();
    got.sort();
    got
}

fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Names of the e-mails whose detail (`GET email/{id}`) was read, in order.
fn detail_reads(sim: &EmarsysSim) -> Vec<String> {
    let names: std::collections::HashMap<String, String> = sim
        .emails()
        .into_iter()
        .map(|e| (e.id.to_string(), e.name))
        .collect();
    sim.requests()
        .into_iter()
        .filter(|q| q.method == "GET")
        .filter_map(|q| {
            let id = q.path.strip_prefix("/api/v2/email/")?;
            (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| names[id].clone())
        })
        .collect()
}

fn listing_calls(sim: &EmarsysSim) -> usize {
    sim.requests()
        .iter()
        .filter(|q| q.method == "GET" && q.query.as_deref() == Some("status=1"))
        .count()
}

#[tokio::test]
async fn older_accounts_list_their_in_design_templates() {
    // The account: three In-Design e-mails, two HTML (API source; a contact list) and
    // one CMS (sent to a segment), answered in the older field set.
    let emails = vec![
        seed("optimove_spring_sale", "html", "api", 0, 0),
        seed("optimove_weekly_digest", "html", "userlist", 0, 176_523_015),
        seed("optimove_cms_welcome", "template", "userlist", 22_222, 0),
    ];
    let r = account_rig(emails, true, "Europe/Berlin").await;
    let want = pairs(&[
        ("optimove_spring_sale", "html"),
        ("optimove_weekly_digest", "html"),
    ]);
    assert_eq!(listed(&r.esp).await, want);
    // The list answer decides the contact-list and the segment e-mail; only the one with
    // neither needs its detail, read once.
    assert_eq!(detail_reads(&r.sim), ["optimove_spring_sale"]);
    let list_answer = &r.sim.requests()[0];
    assert_eq!(list_answer.query.as_deref(), Some("status=1"));

    // More listings read no detail again ...
    for _ in 0..3 {
        assert_eq!(listed(&r.esp).await, want);
    }
    assert_eq!(detail_reads(&r.sim).len(), 1);
    assert_eq!(listing_calls(&r.sim), 4);
    assert_eq!(r.sim.requests().len(), 5);
    // ... and neither does a clone of the adapter (same account, same memory).
    assert_eq!(listed(&r.esp.clone()).await, want);
    assert_eq!(detail_reads(&r.sim).len(), 1);

    // Once the read is older than SOURCE_READ_TTL, the next listing reads it again, once.
    r.clock
        .advance(SOURCE_READ_TTL + SignedDuration::from_secs(1));
    assert_eq!(listed(&r.esp).await, want);
    assert_eq!(listed(&r.esp).await, want);
    assert_eq!(detail_reads(&r.sim).len(), 2);

    // The same account on the current field set lists the same, from the list alone.
    let emails = vec![
        seed("optimove_spring_sale", "html", "api", 0, 0),
        seed("optimove_weekly_digest", "html", "userlist", 0, 176_523_015),
        seed("optimove_cms_welcome", "template", "userlist", 22_222, 0),
    ];
    let current = account_rig(emails, false, "Europe/Berlin").await;
    assert_eq!(listed(&current.esp).await, want);
    assert!(detail_reads(&current.sim).is_empty());
}

#[tokio::test]
async fn both_field_sets_follow_the_same_rules_where_the_answer_can_tell() {
    let emails = || {
        let mut tested = seed("optimove_tested", "html", "api", 0, 0);
        tested.status = 2;
        vec![
            seed("optimove_html_api", "html", "api", 0, 0),
            seed("optimove_html_userlist", "html", "userlist", 0, 0),
            seed("optimove_html_list", "html", "userlist", 0, 55),
            seed("optimove_html_segment", "html", "userlist", 22_222, 0),
            seed("optimove_html_api_segment", "html", "api", 22_222, 0),
            seed("optimove_html_profile", "html", "profile", 0, 0),
            seed("optimove_cms_api", "template", "api", 0, 0),
            seed("optimove_cms_list", "template", "userlist", 0, 55),
            seed("optimove_block_api", "block", "api", 0, 0),
            tested,
            seed("newsletter_html_api", "html", "api", 0, 0),
        ]
    };
    let current = account_rig(emails(), false, "Europe/Berlin").await;
    assert_eq!(
        listed(&current.esp).await,
        pairs(&[
            ("optimove_cms_api", "cms"),
            ("optimove_html_api", "html"),
            ("optimove_html_list", "html"),
            ("optimove_html_userlist", "html"),
        ])
    );
    assert!(detail_reads(&current.sim).is_empty());

    let older = account_rig(emails(), true, "Europe/Berlin").await;
    // Without `content_type` every e-mail is HTML (the rule): the CMS and VCE e-mails with an
    // API or contact-list source are listed as `html`; the rest is as on the current set.
    assert_eq!(
        listed(&older.esp).await,
        pairs(&[
            ("optimove_block_api", "html"),
            ("optimove_cms_api", "html"),
            ("optimove_cms_list", "html"),
            ("optimove_html_api", "html"),
            ("optimove_html_list", "html"),
            ("optimove_html_userlist", "html"),
        ])
    );
    // Details are read only where the prefix and status allow a template and neither a
    // segment nor a contact list decides it.
    let mut read = detail_reads(&older.sim);
    read.sort();
    assert_eq!(
        read,
        [
            "optimove_block_api",
            "optimove_cms_api",
            "optimove_html_api",
            "optimove_html_profile",
            "optimove_html_userlist",
        ]
    );
}

#[tokio::test]
async fn created_is_rfc3339_with_the_account_zone_offset() {
    let at = |s: &str| Some(s.parse::<Timestamp>().unwrap());
    let dated = |name: &str, created: &str| SeedEmail {
        created: at(created),
        ..seed(name, "html", "api", 0, 0)
    };
    let emails = || {
        vec![
            dated("optimove_winter", "2026-11-26T10:31:21Z"),
            dated("optimove_summer", "2026-07-01T07:00:00Z"),
            dated("optimove_after_spring_change", "2026-03-29T01:15:00Z"),
            // 02:30 CEST and, an hour later, 02:30 CET: the same wall clock twice.
            dated("optimove_autumn_first", "2026-10-25T00:30:00Z"),
            dated("optimove_autumn_second", "2026-10-25T01:30:00Z"),
        ]
    };
    for legacy in [false, true] {
        let r = account_rig(emails(), legacy, "Europe/Berlin").await;
        let mut got: Vec<(String, String)> = r
            .esp
            .list_templates()
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.created.unwrap()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            pairs(&[
                ("optimove_after_spring_change", "2026-03-29T03:15:00+02:00"),
                ("optimove_autumn_first", "2026-10-25T02:30:00+02:00"),
                // Emarsys' wall clock cannot tell the second 02:30 from the first: read as
                // the earlier (the offset is the zone's; the instant is an hour early).
                ("optimove_autumn_second", "2026-10-25T02:30:00+02:00"),
                ("optimove_summer", "2026-07-01T09:00:00+02:00"),
                ("optimove_winter", "2026-11-26T11:31:21+01:00"),
            ]),
            "legacy {legacy}"
        );
        // What the simulator answered: the account's wall clock, no offset.
        let list = r.sim.requests()[0].clone();
        assert_eq!(list.reply_code, Some(0));
    }
    // Another zone, another offset; UTC is +00:00.
    for (zone, want) in [
        ("UTC", "2026-11-26T10:31:21+00:00"),
        ("America/New_York", "2026-11-26T05:31:21-05:00"),
        ("Asia/Kolkata", "2026-11-26T16:01:21+05:30"),
    ] {
        let r = account_rig(
            vec![dated("optimove_winter", "2026-11-26T10:31:21Z")],
            false,
            zone,
        )
        .await;
        let t = r.esp.list_templates().await.unwrap();
        assert_eq!(t[0].created.as_deref(), Some(want), "{zone}");
    }
}

/// 1,000 e-mails: a quarter with the prefix, a third launched, a fifth sent to a segment, a
/// third of the rest with a contact list, a tenth each CMS and VCE.
fn thousand() -> Vec<SeedEmail> {
    (0..1_000u64)
        .map(|i| {
            let prefix = if i % 4 == 0 {
                "optimove_"
            } else {
                "newsletter_"
            };
            let source = ["api", "userlist", "profile"][((i / 7) % 3) as usize];
            let content = match i % 10 {
                8 => "block",
                9 => "template",
                _ => "html",
            };
            let filter = if i % 5 == 1 { 22_222 } else { 0 };
            let list = if source == "userlist" && filter == 0 && i % 2 == 0 {
                300_000_000 + i
            } else {
                0
            };
            let mut e = seed(&format!("{prefix}{i:04}"), content, source, filter, list);
            e.status = if i % 3 == 0 { 3 } else { 1 };
            e
        })
        .collect()
}

/// Calls (from the simulator's request log) of a first and a second listing.
async fn listing_cost(emails: Vec<SeedEmail>, legacy: bool) -> (usize, usize, usize) {
    let sim = EmarsysSimConfig {
        emails,
        legacy_email_fields: legacy,
        rate_limit_per_minute: 1_000_000,
        ..Default::default()
    };
    let r = rig_with(sim, |c| {
        c.rate_limit_per_minute = 1_000_000;
        c.timezone = "Europe/Berlin".into();
    })
    .await;
    let first = r.esp.list_templates().await.unwrap();
    let first_calls = r.sim.requests().len();
    let second = r.esp.list_templates().await.unwrap();
    let second_calls = r.sim.requests().len() - first_calls;
    assert_eq!(first, second);
    (first_calls, second_calls, first.len())
}

#[tokio::test]
async fn one_listing_of_an_account_of_1000_emails_counted_in_calls() {
    let emails = thousand();
    let undecided = emails
        .iter()
        .filter(|e| {
            e.name.starts_with("optimove_") && e.status == 1 && e.filter == 0 && e.contactlist == 0
        })
        .count();
    let (calls, again, templates) = listing_cost(emails.clone(), false).await;
    eprintln!(
        "1,000 e-mails, current field set: {calls} call(s), then {again}; {templates} templates"
    );
    assert_eq!((calls, again), (1, 1));
    let (calls, again, legacy_templates) = listing_cost(emails, true).await;
    eprintln!(
        "1,000 e-mails, older field set: {calls} call(s) (1 list + {undecided} details), then \
         {again}; {legacy_templates} templates"
    );
    assert_eq!((calls, again), (1 + undecided, 1));
    assert!(legacy_templates >= templates);

    // The worst case: every one of the 1,000 In Design, prefixed, with neither segment nor
    // contact list in the list answer.
    let all: Vec<SeedEmail> = (0..1_000)
        .map(|i| seed(&format!("optimove_{i:04}"), "html", "api", 0, 0))
        .collect();
    let (calls, again, n) = listing_cost(all.clone(), true).await;
    eprintln!(
        "1,000 e-mails, older field set, worst case: {calls} calls, then {again}; {n} templates"
    );
    assert_eq!((calls, again, n), (1_001, 1, 1_000));
    assert_eq!(listing_cost(all, false).await, (1, 1, 1_000));
}
