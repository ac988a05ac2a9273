//! The adapter against the Silverpop simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::esp::object_name;
use espbridge_core::ports::{AudienceBatch, AudienceRequest, Contact, Esp, EspIds, SendRequest};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_esp_kit::BuildContext;
use espbridge_silverpop::sim::{SilverpopSim, SilverpopSimConfig};
use espbridge_silverpop::{
    AudienceMode, SilverpopConfig, SilverpopCredentials, SilverpopEsp, keys,
};
use espbridge_sim::{Fault, FaultKind};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

const TABLE: i64 = 348449;

struct Rig {
    sim: SilverpopSim,
    esp: Arc<SilverpopEsp>,
    clock: ManualClock,
}

async fn rig(tweak: impl FnOnce(&mut SilverpopConfig)) -> Rig {
    let clock = ManualClock::new("2026-06-15T08:00:00Z".parse().unwrap());
    let sim = SilverpopSim::start(SilverpopSimConfig::default(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = SilverpopConfig::new(AccountId::parse("sp").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.database_id = "2740754".into();
    config.relational_table_id = Some(TABLE.to_string());
    config.query_folder_id = Some("77120".into());
    config.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(2));
    tweak(&mut config);
    let creds = SilverpopCredentials::new("espbridge", "sim-password");
    let esp = SilverpopEsp::new(
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

fn send_at() -> Timestamp {
    "2026-06-15T09:30:00Z".parse().unwrap()
}

async fn schedule(r: &Rig, campaign: &CampaignId, audience: &EspIds) -> EspIds {
    let options = serde_json::Value::Null;
    let req = SendRequest {
        campaign_id: campaign,
        variant: None,
        template_id: "410233",
        send_at: send_at(),
        timezone: None,
        audience,
        options: &options,
        headers: None,
    };
    r.esp.schedule_send(&req).await.unwrap()
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
    let b = batch(0, &[], &[("C-1", &[]), ("C-2", &[]), ("C-3", &[])]);
    let out = r.esp.upload_batch(&ids, &b).await.unwrap();
    assert_eq!(out.accepted, 3);
    // The same batch again adds nobody twice.
    r.esp.upload_batch(&ids, &b).await.unwrap();
    let mut tagged = r.sim.recipients_with_tag("881");
    tagged.sort();
    assert_eq!(tagged, ["C-1", "C-2", "C-3"]);
    assert_eq!(r.sim.recipients().len(), 3);

    let ids = r
        .esp
        .finish_audience(&campaign, None, &ids)
        .await
        .unwrap()
        .ids;
    let queries = r.sim.queries();
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].name, object_name(&campaign, None));
    assert_eq!(queries[0].folder_id, 77120);
    assert_eq!(
        ids.get(keys::QUERY_ID),
        Some(queries[0].id.to_string().as_str())
    );

    let sent = schedule(&r, &campaign, &ids).await;
    let again = schedule(&r, &campaign, &ids).await;
    assert_eq!(r.sim.schedule_count(), 1);
    assert_eq!(sent.get(keys::MAILING_ID), again.get(keys::MAILING_ID));
    let m = &r.sim.mailings()[0];
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
}

#[tokio::test]
async fn relational_mode_per_manifest_with_rows_rejected_per_row() {
    // Two rows per call: the rejected third row is reported at its batch index, not the call's.
    let r = rig(|c| c.rows_per_call = 2).await;
    let campaign = CampaignId::parse("42").unwrap();
    let mode = r
        .esp
        .mode_from_options(&serde_json::json!({"mode": "relational_table"}))
        .unwrap();
    assert_eq!(mode, AudienceMode::RelationalTable);
    let ids = r
        .esp
        .create_audience_in_mode(&campaign, None, mode)
        .await
        .unwrap();
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

    let ids = r
        .esp
        .finish_audience(&campaign, None, &ids)
        .await
        .unwrap()
        .ids;
    let sent = schedule(&r, &campaign, &ids).await;
    assert_eq!(r.sim.mailings()[0].audience, 2);
    r.clock.advance(SignedDuration::from_hours(48));
    assert!(r.esp.fetch_metrics(&sent).await.unwrap().is_some());
}

#[tokio::test]
async fn session_expiry_mid_upload_logs_in_again() {
    let r = rig(|_| {}).await;
    let campaign = CampaignId::parse("7").unwrap();
    let ids = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign, None, send_at()))
        .await
        .unwrap();
    r.esp
        .upload_batch(&ids, &batch(0, &[], &[("C-1", &[])]))
        .await
        .unwrap();
    let logins = r.sim.logins();
    r.sim.expire_sessions();
    let out = r
        .esp
        .upload_batch(&ids, &batch(1, &[], &[("C-2", &[]), ("C-3", &[])]))
        .await
        .unwrap();
    assert_eq!(out.accepted, 2);
    assert_eq!(r.sim.logins(), logins + 1);
    assert_eq!(r.sim.recipients_with_tag("7").len(), 3);
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
    let refused = r
        .sim
        .requests()
        .iter()
        .filter(|q| q.reply_code == Some(10))
        .count();
    assert_eq!(refused, 0);
}

#[tokio::test]
async fn bad_password_is_an_auth_error() {
    let clock = ManualClock::new("2026-06-15T08:00:00Z".parse().unwrap());
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
