//! End-to-end against the Emarsys simulator (`espbridge_sim::emarsys`): the adapter's whole flow
//! over real HTTP, with the faults the simulator can inject.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::esp::object_name;
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, Contact, Esp, EspError, EspIds, SendRequest,
};
use espbridge_core::{AccountId, CampaignId, Clock, ManualClock};
use espbridge_emarsys::sim::{EmarsysSim, EmarsysSimConfig};
use espbridge_emarsys::{EmarsysConfig, EmarsysCredentials, EmarsysEsp, keys};
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
    assert_eq!(first.get(keys::LAUNCH_SCHEDULE), Some("2026-11-25 09:30"));
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
