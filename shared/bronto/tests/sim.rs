//! The adapter against the Bronto simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_bronto::sim::{BrontoSim, BrontoSimConfig, SeedMessage};
use espbridge_bronto::wire::{self, ReadObject, Response};
use espbridge_bronto::{BrontoConfig, BrontoCredentials, BrontoEsp, keys};
use espbridge_core::ports::esp::object_name;
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, Contact, Esp, EspError, EspIds, SendRequest, SenderHeaders,
};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_esp_kit::{BuildContext, SimView};
use espbridge_sim::{Fault, FaultKind};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;

const SUMMER: &str = "0bcc03eb00000000000000000000001c7d10";
const WINBACK: &str = "0bcc03eb00000000000000000000001c7d11";
const OTHER_FOLDER_MESSAGE: &str = "0bcc03eb00000000000000000000001c7d20";

struct Rig {
    sim: BrontoSim,
    esp: Arc<BrontoEsp>,
    clock: ManualClock,
}

async fn rig(
    sim_tweak: impl FnOnce(&mut BrontoSimConfig),
    tweak: impl FnOnce(&mut BrontoConfig),
) -> Rig {
    let clock = ManualClock::new("2026-06-15T08:00:00Z".parse().unwrap());
    let mut sim_config = BrontoSimConfig::default();
    sim_tweak(&mut sim_config);
    let sim = BrontoSim::start(sim_config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = BrontoConfig::new(AccountId::parse("br").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.from_email = "news@brand.example".into();
    config.from_name = "Brand".into();
    config.reply_to = Some("reply@brand.example".into());
    config.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(3));
    config.http.request_timeout_secs = Some(espbridge_esp_kit::RequestTimeout::secs(5));
    tweak(&mut config);
    let credentials = BrontoCredentials::new("sim-api-token");
    let esp = BrontoEsp::new(
        config,
        credentials,
        &BuildContext::in_memory(Arc::new(clock.clone())),
    )
    .unwrap();
    Rig {
        sim,
        esp: Arc::new(esp),
        clock,
    }
}

async fn default_rig() -> Rig {
    rig(|_| {}, |_| {}).await
}

fn campaign(id: &str) -> CampaignId {
    CampaignId::parse(id).unwrap()
}

fn emails(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("c{i}@example.org"))
        .collect()
}

fn batch(first: u64, emails: &[Option<String>]) -> AudienceBatch {
    AudienceBatch {
        first_ordinal: first,
        field_names: Arc::from(Vec::<String>::new()),
        contacts: emails
            .iter()
            .enumerate()
            .map(|(i, e)| Contact {
                customer_id: format!("C-{}", first as usize + i),
                email: e.clone(),
                fields: Vec::new(),
            })
            .collect(),
    }
}

fn known(emails: Vec<String>) -> AudienceBatch {
    batch(0, &emails.into_iter().map(Some).collect::<Vec<_>>())
}

fn send_at() -> Timestamp {
    "2026-06-15T09:30:00Z".parse().unwrap()
}

fn request<'a>(
    campaign: &'a CampaignId,
    audience: &'a EspIds,
    headers: Option<&'a SenderHeaders>,
    options: &'a serde_json::Value,
) -> SendRequest<'a> {
    SendRequest {
        campaign_id: campaign,
        variant: None,
        template_id: SUMMER,
        send_at: send_at(),
        timezone: None,
        audience,
        options,
        headers,
    }
}

/// A campaign's list with `n` known contacts on it.
async fn audience(r: &Rig, c: &CampaignId, n: usize) -> EspIds {
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(c, None, send_at()))
        .await
        .unwrap();
    let outcome = r
        .esp
        .upload_batch(&ids, &known(emails(0, n)))
        .await
        .unwrap();
    assert_eq!(outcome.accepted + outcome.not_in_esp, n as u64);
    ids
}

async fn schedule(r: &Rig, c: &CampaignId, ids: &EspIds) -> EspIds {
    let options = serde_json::Value::Null;
    r.esp
        .schedule_send(&request(c, ids, None, &options))
        .await
        .unwrap()
}

/// Operations the simulator saw, in order.
fn operations(sim: &BrontoSim) -> Vec<(String, Option<i64>)> {
    sim.requests()
        .into_iter()
        .map(|r| {
            let op = r
                .body
                .as_ref()
                .and_then(|b| b.get("operation"))
                .and_then(|o| o.as_str())
                .unwrap_or_default()
                .to_owned();
            (op, r.reply_code)
        })
        .collect()
}

fn count_op(sim: &BrontoSim, op: &str) -> usize {
    operations(sim).iter().filter(|(o, _)| o == op).count()
}

#[tokio::test]
async fn templates_come_only_from_the_folder() {
    let r = default_rig().await;
    let mut t = r.esp.list_templates().await.unwrap();
    t.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<&str> = t.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, [SUMMER, WINBACK]);
    assert_eq!(t[0].display_name, "Summer promo");
    assert_eq!(t[0].kind.as_deref(), Some("message"));
    assert!(!ids.contains(&OTHER_FOLDER_MESSAGE));

    let r = rig(|_| {}, |c| c.message_folder = "Nope".into()).await;
    assert!(r.esp.list_templates().await.unwrap().is_empty());
}

#[tokio::test]
async fn drafts_and_deleted_messages_of_the_folder_are_not_templates() {
    const DRAFT: &str = "0bcc03eb00000000000000000000001c7d12";
    const DELETED: &str = "0bcc03eb00000000000000000000001c7d13";
    let r = rig(
        |c| {
            c.folders[0].messages.extend([
                SeedMessage::new(DRAFT, "Autumn draft", "Soon").with_status("tmp"),
                SeedMessage::new(DELETED, "Old promo", "Gone").with_status("delete"),
            ])
        },
        |_| {},
    )
    .await;
    // The folder holds all four, and the simulator answers them with their statuses...
    let folder = r.sim.config().folders[0].id.clone();
    let read = raw_call(
        &r.sim,
        "readMessages",
        wire::read_messages(
            vec![wire::id_criterion("messageFolderId", &folder)],
            false,
            1,
        ),
    )
    .await;
    let statuses: Vec<Option<String>> = wire::Message::list(&read)
        .into_iter()
        .map(|m| m.status)
        .collect();
    assert_eq!(
        statuses,
        ["active", "active", "tmp", "delete"].map(|s| Some(s.to_owned()))
    );
    // ...but only the active ones are templates.
    let mut ids: Vec<String> = r
        .esp
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    ids.sort();
    assert_eq!(ids, [SUMMER, WINBACK]);
}

/// What one template listing costs on an account whose folder holds 1,000 messages (980
/// active, 10 drafts, 10 deleted), from the simulator's request log.
#[tokio::test]
async fn a_listing_of_1000_messages_costs_4_calls() {
    let r = rig(
        |c| {
            c.folders[0].messages = (0..1000)
                .map(|i| {
                    let m = SeedMessage::new(
                        &format!("0bcc03eb{:028x}", 0x10000 + i),
                        &format!("Message {i:04}"),
                        "Hello",
                    );
                    match i % 100 {
                        0 => m.with_status("tmp"),
                        1 => m.with_status("delete"),
                        _ => m,
                    }
                })
                .collect();
        },
        |_| {},
    )
    .await;
    let templates = r.esp.list_templates().await.unwrap();
    assert_eq!(templates.len(), 980);
    assert!(templates.iter().all(|t| t.created.is_none()));
    let cold: Vec<String> = operations(&r.sim).into_iter().map(|(op, _)| op).collect();
    assert_eq!(
        cold,
        [
            "login",
            "readMessageFolders",
            "readMessages",
            "readMessages"
        ],
        "a fresh client: login, the folder, one page of 1,000 and the empty page that ends paging"
    );
    assert_eq!(r.esp.list_templates().await.unwrap().len(), 980);
    let warm = operations(&r.sim).len() - cold.len();
    assert_eq!(warm, 3, "with a live session: no login");
    println!(
        "bronto: one listing of 1,000 messages = {} calls ({cold:?}); {warm} with a live session",
        cold.len()
    );
}

#[tokio::test]
async fn preview_gives_html_and_subject() {
    let r = default_rig().await;
    let p = r.esp.preview(SUMMER).await.unwrap();
    assert_eq!(p.template_id, SUMMER);
    assert_eq!(p.content_type, "text/html");
    assert!(!p.body.is_empty());
    assert_eq!(p.subject.as_deref(), Some("Summer is here"));
    let missing = r.esp.preview("0bcc03eb0000000000000000000000ffffff").await;
    assert!(
        matches!(missing, Err(EspError::NotFound { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn create_audience_twice_makes_one_list() {
    let r = default_rig().await;
    let c = campaign("881");
    let a = r
        .esp
        .create_audience(&AudienceRequest::new(&c, Some("A"), send_at()))
        .await
        .unwrap();
    let b = r
        .esp
        .create_audience(&AudienceRequest::new(&c, Some("A"), send_at()))
        .await
        .unwrap();
    assert_eq!(a, b);
    let name = object_name(&c, Some("A"));
    assert_eq!(a.get(keys::LIST_NAME), Some(name.as_str()));
    let lists: Vec<_> = r
        .sim
        .lists()
        .into_iter()
        .filter(|l| l.name == name)
        .collect();
    assert_eq!(lists.len(), 1);
    assert_eq!(a.get(keys::LIST_ID), Some(lists[0].id.as_str()));
    assert_eq!(lists[0].label, "espbridge 881 A");
    // Another variant is another list.
    let other = r
        .esp
        .create_audience(&AudienceRequest::new(&c, Some("B"), send_at()))
        .await
        .unwrap();
    assert_ne!(other.get(keys::LIST_ID), a.get(keys::LIST_ID));
}

#[tokio::test]
async fn upload_counts_unknown_invalid_and_missing_addresses_and_a_resent_batch() {
    let r = rig(|s| s.unknown_email_share = 0.3, |_| {}).await;
    let c = campaign("882");
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&c, None, send_at()))
        .await
        .unwrap();
    let list_id = ids.get(keys::LIST_ID).unwrap().to_owned();
    let valid = emails(0, 200);
    let unknown = valid.iter().filter(|e| !r.sim.is_contact(e)).count() as u64;
    assert!(
        unknown > 20,
        "the share leaves some addresses out: {unknown}"
    );
    let mut rows: Vec<Option<String>> = valid.iter().cloned().map(Some).collect();
    rows.push(Some("not-an-address".into()));
    rows.push(None);
    let b = batch(0, &rows);
    let first = r.esp.upload_batch(&ids, &b).await.unwrap();
    assert_eq!(first.not_in_esp, unknown);
    assert_eq!(first.accepted, 200 - unknown);
    let codes: Vec<(usize, &str)> = first
        .row_errors
        .iter()
        .map(|e| (e.index, e.code.as_str()))
        .collect();
    assert_eq!(codes, [(200, "303"), (201, "no_email")]);
    assert!(
        first
            .row_errors
            .iter()
            .all(|e| !e.reason.contains("not-an-address"))
    );
    assert_eq!(r.sim.list_members(&list_id).len() as u64, first.accepted);

    // The same batch again (a redelivered work item): nobody twice, the same counts.
    let second = r.esp.upload_batch(&ids, &b).await.unwrap();
    assert_eq!(second, first);
    assert_eq!(r.sim.list_members(&list_id).len() as u64, first.accepted);
}

#[tokio::test]
async fn an_expired_session_is_renewed_mid_upload_without_loss() {
    let r = rig(|s| s.unknown_email_share = 0.0, |_| {}).await;
    let c = campaign("883");
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&c, None, send_at()))
        .await
        .unwrap();
    let a = r
        .esp
        .upload_batch(&ids, &known(emails(0, 300)))
        .await
        .unwrap();
    assert_eq!(r.sim.logins(), 1);
    r.sim.expire_sessions();
    let b = r
        .esp
        .upload_batch(&ids, &known(emails(300, 300)))
        .await
        .unwrap();
    // Idle expiry on the simulator's clock, too.
    r.clock.advance(SignedDuration::from_mins(21));
    let c2 = r
        .esp
        .upload_batch(&ids, &known(emails(600, 300)))
        .await
        .unwrap();
    assert_eq!(r.sim.logins(), 3);
    assert_eq!(a.accepted + b.accepted + c2.accepted, 900);
    let members = r.sim.list_members(ids.get(keys::LIST_ID).unwrap());
    assert_eq!(members.len(), 900);
    let refused = operations(&r.sim)
        .iter()
        .filter(|(_, code)| *code == Some(103))
        .count();
    assert_eq!(refused, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pacer_keeps_add_to_list_under_the_limit() {
    let window = Duration::from_millis(300);
    let r = rig(
        |s| {
            s.unknown_email_share = 0.0;
            s.addresses_per_minute = Some(1000);
            s.rate_window = window;
        },
        |c| {
            c.addresses_per_minute = 1000;
            c.rate_window_ms = 300;
            c.batch_size = 1000;
        },
    )
    .await;
    let c = campaign("884");
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&c, None, send_at()))
        .await
        .unwrap();
    let batches: Vec<AudienceBatch> = (0..5).map(|i| known(emails(i * 1000, 1000))).collect();
    let (a, b, c3, d, e) = tokio::join!(
        r.esp.upload_batch(&ids, &batches[0]),
        r.esp.upload_batch(&ids, &batches[1]),
        r.esp.upload_batch(&ids, &batches[2]),
        r.esp.upload_batch(&ids, &batches[3]),
        r.esp.upload_batch(&ids, &batches[4]),
    );
    let accepted: u64 = [a, b, c3, d, e]
        .into_iter()
        .map(|o| o.unwrap().accepted)
        .sum();
    // 5,000 addresses against 1,000 a window: unpaced, four calls would be refused.
    assert_eq!(accepted, 5000);
    assert_eq!(r.sim.rate_refusals(), 0);
    assert!(
        operations(&r.sim)
            .iter()
            .all(|(_, code)| *code != Some(101)),
        "the simulator refused a call"
    );
    // Calls of a tenth of the allowance.
    assert_eq!(count_op(&r.sim, "addToList"), 50);
}

/// Five instances of the adapter (five Lambda instances) uploading five campaigns of one
/// account share its address allowance through the account limits: no call is refused, though
/// each instance alone would use the whole allowance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_instances_of_one_account_share_its_allowance() {
    let r = rig(
        |s| {
            s.unknown_email_share = 0.0;
            s.addresses_per_minute = Some(1000);
            s.rate_window = Duration::from_millis(300);
        },
        |c| {
            c.addresses_per_minute = 1000;
            c.rate_window_ms = 300;
            c.batch_size = 500;
        },
    )
    .await;
    let limits = BuildContext::in_memory(Arc::new(r.clock.clone())).limits;
    let workers: Vec<_> = (0..5)
        .map(|w| {
            let ctx = BuildContext {
                clock: Arc::new(r.clock.clone()),
                limits: Arc::clone(&limits),
            };
            let esp = BrontoEsp::new(
                r.esp.config().clone(),
                BrontoCredentials::new("sim-api-token"),
                &ctx,
            )
            .unwrap();
            tokio::spawn(async move {
                let c = campaign(&format!("night-{w}"));
                let ids = esp
                    .create_audience(&AudienceRequest::new(&c, None, send_at()))
                    .await
                    .unwrap();
                let mut accepted = 0;
                for b in 0..3 {
                    let batch = known(emails(w * 10_000 + b * 500, 500));
                    accepted += esp.upload_batch(&ids, &batch).await.unwrap().accepted;
                }
                accepted
            })
        })
        .collect();
    let mut accepted = 0;
    for w in workers {
        accepted += w.await.unwrap();
    }
    assert_eq!(accepted, 7_500);
    assert_eq!(r.sim.rate_refusals(), 0);
    assert_eq!(r.sim.limit_refusals(), 0);
}

/// Two campaigns pending at once whose audiences overlap (2,000 addresses each, 1,000 shared):
/// each delivery goes, at its own start, to its whole list (the account's contacts on it).
#[tokio::test]
async fn overlapping_pending_campaigns_each_send_to_their_whole_audience() {
    let r = default_rig().await;
    let share = r.sim.config().unknown_email_share;
    let (a, b) = (campaign("night-a"), campaign("night-b"));
    let (a_emails, b_emails) = (emails(0, 2_000), emails(1_000, 2_000));
    let options = serde_json::Value::Null;
    let mut booked = Vec::new();
    for (c, list, hour) in [(&a, &a_emails, 9), (&b, &b_emails, 11)] {
        let ids = r
            .esp
            .create_audience(&AudienceRequest::new(c, None, send_at()))
            .await
            .unwrap();
        r.esp
            .upload_batch(&ids, &known(list.clone()))
            .await
            .unwrap();
        let mut req = request(c, &ids, None, &options);
        req.send_at = format!("2026-06-15T{hour:02}:00:00Z").parse().unwrap();
        r.esp.schedule_send(&req).await.unwrap();
        booked.push((object_name(c, None), list.clone()));
    }
    assert!(r.sim.sends().is_empty(), "nothing is sent before its time");
    r.clock.set("2026-06-15T12:00:00Z".parse().unwrap());
    let sends = r.sim.sends();
    assert_eq!(sends.len(), 2);
    for (name, list) in booked {
        let mut want: Vec<String> = list
            .into_iter()
            .filter(|e| !espbridge_sim::in_share(e, share))
            .collect();
        want.sort();
        assert!(want.len() > 1_900, "{}", want.len());
        let sent = sends.iter().find(|s| s.name == name).unwrap();
        assert_eq!(sent.recipients, want, "{name}");
    }
}

#[tokio::test]
async fn a_batch_larger_than_the_allowance_is_split_to_fit() {
    let r = rig(
        |s| {
            s.unknown_email_share = 0.0;
            s.addresses_per_minute = Some(500);
            s.rate_window = Duration::from_millis(200);
        },
        |c| {
            c.addresses_per_minute = 500;
            c.rate_window_ms = 200;
        },
    )
    .await;
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign("893"), None, send_at()))
        .await
        .unwrap();
    let o = r
        .esp
        .upload_batch(&ids, &known(emails(0, 1200)))
        .await
        .unwrap();
    assert_eq!(o.accepted, 1200);
    // Calls of a tenth of the allowance (50 addresses), paced one call short of it.
    assert_eq!(count_op(&r.sim, "addToList"), 24);
    assert_eq!(r.sim.rate_refusals(), 0);
}

/// Fault 101 (Bronto's answer when an account is over its rate) is throttling: waited out
/// without spending attempts, and the address pace halved; when it persists beyond the call's
/// patience the call ends as `RateLimited` (retryable: the upload continues later).
#[tokio::test]
async fn fault_101_is_waited_out_and_reported_when_it_persists() {
    let r = rig(
        |s| s.unknown_email_share = 0.0,
        |c| {
            c.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(1));
            c.http.throttle_patience_secs = Some(4);
        },
    )
    .await;
    let c = campaign("885");
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&c, None, send_at()))
        .await
        .unwrap();
    let (configured, _) = r.esp.address_pace();
    r.sim
        .inject(Fault::on(FaultKind::RateLimit, "addToList", 1));
    let o = r
        .esp
        .upload_batch(&ids, &known(emails(0, 10)))
        .await
        .unwrap();
    assert_eq!(o.accepted, 10);
    let calls: Vec<_> = operations(&r.sim)
        .into_iter()
        .filter(|(op, _)| op == "addToList")
        .map(|(_, code)| code)
        .collect();
    assert_eq!(
        calls,
        [Some(101), None],
        "one attempt allowed, yet waited out"
    );
    let (lowered, refusals) = r.esp.address_pace();
    assert_eq!(refusals, 1);
    assert_eq!(lowered, configured / 2.0);

    r.sim
        .inject(Fault::on(FaultKind::RateLimit, "addToList", 100));
    let err = r
        .esp
        .upload_batch(&ids, &known(emails(10, 10)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EspError::RateLimited { attempts, .. } if attempts >= 2),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn schedule_send_twice_makes_one_delivery_with_the_default_headers() {
    let r = default_rig().await;
    let c = campaign("886");
    let ids = audience(&r, &c, 50).await;
    let first = schedule(&r, &c, &ids).await;
    let second = schedule(&r, &c, &ids).await;
    assert_eq!(first, second);
    let deliveries = r.sim.deliveries();
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!(first.get(keys::DELIVERY_ID), Some(d.id.as_str()));
    assert_eq!(first.get(keys::MESSAGE_ID), Some(SUMMER));
    assert_eq!(first.get(keys::LIST_ID), ids.get(keys::LIST_ID));
    assert_eq!(d.start, send_at());
    assert_eq!(d.kind, "triggered");
    assert_eq!(d.from_email, "news@brand.example");
    assert_eq!(d.from_name, "Brand");
    assert_eq!(d.reply_email.as_deref(), Some("reply@brand.example"));
    assert_eq!(d.recipients.len(), 1);
    assert_eq!(d.recipients[0].kind, "list");
    assert_eq!(Some(d.recipients[0].id.as_str()), ids.get(keys::LIST_ID));
    assert_eq!(d.recipients[0].delivery_type, "selected");
    assert_eq!(count_op(&r.sim, "addDeliveries"), 1);
}

/// Schedules once with `fault` on the first addDeliveries; the outcome must be one delivery
/// after `add_calls` addDeliveries.
async fn one_delivery_despite(fault: FaultKind, campaign_id: &str, add_calls: usize) {
    let r = rig(
        |_| {},
        |c| c.http.request_timeout_secs = Some(espbridge_esp_kit::RequestTimeout::secs(1)),
    )
    .await;
    let c = campaign(campaign_id);
    let ids = audience(&r, &c, 20).await;
    r.sim.inject(Fault::on(fault, "addDeliveries", 1));
    let sent = schedule(&r, &c, &ids).await;
    let deliveries = r.sim.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(sent.get(keys::DELIVERY_ID), Some(deliveries[0].id.as_str()));
    assert_eq!(count_op(&r.sim, "addDeliveries"), add_calls);
}

#[tokio::test]
async fn a_dropped_connection_on_add_deliveries_still_makes_one_delivery() {
    // Dropped before the server acted: the lookup finds nothing, the second call makes it.
    one_delivery_despite(FaultKind::DropConnection, "887", 2).await;
}

#[tokio::test]
async fn a_timed_out_add_deliveries_is_looked_up_not_repeated() {
    // The server acted but the answer came too late: the lookup finds the delivery.
    one_delivery_despite(FaultKind::Timeout(Duration::from_secs(3)), "888", 1).await;
}

#[tokio::test]
async fn template_headers_override_the_defaults_and_bad_ones_are_refused() {
    let r = default_rig().await;
    let c = campaign("889");
    let ids = audience(&r, &c, 5).await;
    let options = serde_json::Value::Null;
    let custom = SenderHeaders {
        from_email: "promo@brand.example".into(),
        from_name: "Brand Promotions".into(),
        reply_to: None,
    };
    r.esp
        .schedule_send(&request(&c, &ids, Some(&custom), &options))
        .await
        .unwrap();
    let d = &r.sim.deliveries()[0];
    assert_eq!(d.from_email, "promo@brand.example");
    assert_eq!(d.from_name, "Brand Promotions");
    assert_eq!(d.reply_email, None);

    let bad = SenderHeaders {
        from_email: "promo".into(),
        from_name: "Brand".into(),
        reply_to: Some("also bad".into()),
    };
    let c2 = campaign("890");
    let ids2 = audience(&r, &c2, 5).await;
    let err = r
        .esp
        .schedule_send(&request(&c2, &ids2, Some(&bad), &options))
        .await
        .unwrap_err();
    match &err {
        EspError::Invalid { detail, .. } => {
            assert!(
                detail.contains("from_email") && detail.contains("reply_to"),
                "{detail}"
            );
            assert!(!detail.contains("also bad"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.sim.deliveries().len(), 1);
}

#[tokio::test]
async fn metrics_are_none_before_the_start_then_grow() {
    let r = rig(|s| s.unknown_email_share = 0.0, |_| {}).await;
    let c = campaign("891");
    let ids = audience(&r, &c, 400).await;
    let sent = schedule(&r, &c, &ids).await;
    assert_eq!(r.esp.fetch_metrics(&sent).await.unwrap(), None);
    r.clock.set(send_at() + SignedDuration::from_hours(6));
    let early = r.esp.fetch_metrics(&sent).await.unwrap().unwrap();
    assert_eq!(early.sent, 400);
    r.clock.set(send_at() + SignedDuration::from_hours(24 * 7));
    let late = r.esp.fetch_metrics(&sent).await.unwrap().unwrap();
    assert_eq!(late.sent, 400);
    assert!(
        late.delivered >= early.delivered && late.delivered > 350,
        "{late:?}"
    );
    assert!(late.opens > early.opens, "{early:?} {late:?}");
    assert!(late.clicks >= early.clicks && late.clicks > 0);
    assert!(late.unsubscribes >= late.complaints);
    assert!(late.bounces > 0 && late.bounces + late.delivered <= late.sent);
}

/// Calls the simulator directly with a session of its own (for objects espbridge did not make).
async fn raw_call(sim: &BrontoSim, op: &str, body: wire::Node) -> wire::Element {
    let http = reqwest::Client::new();
    let url = format!("{}v4", sim.base_url());
    let post = |bytes: Vec<u8>| http.post(&url).body(bytes).send();
    let login = post(wire::envelope(None, wire::login("sim-api-token")).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let Response::Ok(l) = wire::parse_response(&login, "login").unwrap() else {
        panic!("login refused")
    };
    let session = wire::session_id(&l).unwrap().to_owned();
    let answer = post(wire::envelope(Some(&session), body).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    match wire::parse_response(&answer, op).unwrap() {
        Response::Ok(r) => r,
        Response::Fault(f) => panic!("{f:?}"),
    }
}

#[tokio::test]
async fn cleanup_deletes_our_list_once_the_send_is_out_and_only_ours() {
    let r = default_rig().await;
    let c = campaign("892");
    let ids = audience(&r, &c, 10).await;
    let sent = schedule(&r, &c, &ids).await;
    let list_id = ids.get(keys::LIST_ID).unwrap().to_owned();
    // Still used by the delivery ahead: retryable.
    let early = r.esp.cleanup(&sent).await.unwrap_err();
    assert!(early.is_retryable(), "{early:?}");
    assert!(r.sim.lists().iter().any(|l| l.id == list_id));

    r.clock.set(send_at() + SignedDuration::from_hours(1));
    r.esp.cleanup(&sent).await.unwrap();
    assert!(!r.sim.lists().iter().any(|l| l.id == list_id));
    r.esp.cleanup(&sent).await.unwrap();

    let made = raw_call(
        &r.sim,
        "addLists",
        wire::add_lists("newsletter", "Newsletter"),
    )
    .await;
    let foreign = wire::write_results(&made)[0].id.clone().unwrap();
    let err = r
        .esp
        .cleanup(&EspIds::default().with(keys::LIST_ID, foreign.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, EspError::Invalid { .. }), "{err:?}");
    assert!(r.sim.lists().iter().any(|l| l.id == foreign));
}

#[tokio::test]
async fn retention_and_port_flags() {
    let r = rig(|_| {}, |c| c.list_retention_days = 30).await;
    assert_eq!(
        r.esp.cleanup_after(),
        Some(SignedDuration::from_hours(24 * 30))
    );
    assert!(r.esp.needs_email());
    assert_eq!(r.esp.max_batch(), 5000);
    assert_eq!(
        r.esp.default_headers().unwrap().reply_to.as_deref(),
        Some("reply@brand.example")
    );
    let r = rig(|_| {}, |c| c.list_retention_days = 0).await;
    assert_eq!(r.esp.cleanup_after(), None);
}

#[tokio::test]
async fn a_wrong_token_is_an_auth_error() {
    let sim = BrontoSim::start(
        BrontoSimConfig::default(),
        Arc::new(ManualClock::new("2026-06-15T08:00:00Z".parse().unwrap())),
    )
    .await
    .unwrap();
    let mut config = BrontoConfig::new(AccountId::parse("br").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.from_email = "news@brand.example".into();
    config.from_name = "Brand".into();
    let esp = BrontoEsp::new(
        config,
        BrontoCredentials::new("wrong"),
        &BuildContext::in_memory(Arc::new(espbridge_core::SystemClock)),
    )
    .unwrap();
    let err = esp.list_templates().await.unwrap_err();
    assert!(matches!(err, EspError::Auth { .. }), "{err:?}");
    assert!(!err.to_string().contains("wrong"));
}

/// An account that takes a fifth of the configured addresses a minute (200 per 200 ms window
/// against 1,000 configured): Bronto only refuses (Fault 101), so the client halves its pace
/// on each refusal and climbs back slowly; the upload completes with every address, and the
/// pace it settled on is below the configured one.
#[tokio::test]
async fn an_account_stricter_than_configured_slows_the_upload_down_instead_of_ending_it() {
    let r = rig(
        |s| {
            s.unknown_email_share = 0.0;
            s.addresses_per_minute = Some(200);
            s.rate_window = Duration::from_millis(200);
        },
        |c| {
            c.addresses_per_minute = 1_000;
            c.rate_window_ms = 200;
            c.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(2));
        },
    )
    .await;
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign("894"), None, send_at()))
        .await
        .unwrap();
    let (configured, _) = r.esp.address_pace();
    let o = tokio::time::timeout(
        Duration::from_secs(120),
        r.esp.upload_batch(&ids, &known(emails(0, 3_000))),
    )
    .await
    .expect("a throttled upload does not hang")
    .unwrap();
    assert_eq!(o.accepted, 3_000);
    let (settled, refusals) = r.esp.address_pace();
    assert!(
        refusals >= 1,
        "the account refused nothing: the test is void"
    );
    assert_eq!(refusals as usize, r.sim.rate_refusals());
    assert!(settled < configured, "{settled} vs {configured}");
    // Every address arrived once: refused calls applied nothing.
    assert_eq!(count_op(&r.sim, "addToList") - refusals as usize, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expiring_every_3_calls_with_10_in_flight_and_a_cap_of_4_complete() {
    // Sessions end after three calls; ten workers' batches in flight at once. Bronto documents
    // no session cap (several sessions per token are allowed), so the cap of 4 is asserted on
    // what the simulator saw live at once.
    let r = rig(
        |s| {
            s.session_max_calls = Some(3);
            s.addresses_per_minute = None;
            s.unknown_email_share = 0.0;
        },
        |c| c.addresses_per_minute = 1_000_000,
    )
    .await;
    r.sim.set_latency(Duration::from_millis(2));
    let c = campaign("890");
    let all = emails(0, 3000);
    let scenario = async {
        let ids = r
            .esp
            .create_audience(&AudienceRequest::new(&c, None, send_at()))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..10)
            .map(|w| {
                let esp = Arc::clone(&r.esp);
                let ids = ids.clone();
                let mine: Vec<(usize, Vec<String>)> = all
                    .chunks(30)
                    .enumerate()
                    .skip(w)
                    .step_by(10)
                    .map(|(i, chunk)| (i * 30, chunk.to_vec()))
                    .collect();
                tokio::spawn(async move {
                    let mut accepted = 0;
                    for (first, chunk) in mine {
                        let b = batch(
                            first as u64,
                            &chunk.into_iter().map(Some).collect::<Vec<_>>(),
                        );
                        accepted += esp.upload_batch(&ids, &b).await.unwrap().accepted;
                    }
                    accepted
                })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            accepted += t.await.unwrap();
        }
        schedule(&r, &c, &ids).await;
        (ids, accepted)
    };
    let (ids, accepted) = tokio::time::timeout(Duration::from_secs(300), scenario)
        .await
        .expect("the upload hung");
    assert_eq!(accepted, 3000);
    let mut members = r.sim.list_members(ids.get(keys::LIST_ID).unwrap());
    members.sort();
    let mut want = all.clone();
    want.sort();
    assert_eq!(members, want, "the whole audience arrived");
    assert_eq!(r.sim.deliveries().len(), 1);
    let (logins, served) = (r.sim.logins(), r.sim.calls_served());
    // One login per three calls carried, plus one per call in flight and a little slack:
    // never one per refused call.
    let bound = served / 3 + 10 + 5;
    assert!(
        logins <= bound,
        "{logins} logins for {served} calls (bound {bound})"
    );
    assert!(
        r.sim.peak_sessions() <= 4,
        "{} sessions live at once",
        r.sim.peak_sessions()
    );
    assert!(r.sim.peak_in_flight() >= 5, "calls ran concurrently");
    eprintln!(
        "bronto: {served} calls, {logins} logins, peak {} sessions, peak {} in flight",
        r.sim.peak_sessions(),
        r.sim.peak_in_flight()
    );
}
