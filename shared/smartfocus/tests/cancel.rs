//! Cancelling a booked send against the SmartFocus simulator: SOAP `unpostCampaign` before the
//! send date puts the campaign back to `EDITABLE` (no send, no counts at its date), twice is
//! harmless, after the send it is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, CannotCancel, Contact, Esp, EspError, EspIds, SendRequest,
};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_esp_kit::{BuildContext, SimView};
use espbridge_smartfocus::sim::{SmartFocusSim, SmartFocusSimConfig};
use espbridge_smartfocus::{SmartFocusConfig, SmartFocusCredentials, SmartFocusEsp};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

fn start_time() -> Timestamp {
    "2026-06-10T08:00:00Z".parse().unwrap()
}

fn send_at() -> Timestamp {
    start_time() + SignedDuration::from_hours(2)
}

async fn rig() -> (SmartFocusSim, SmartFocusEsp, ManualClock) {
    let clock = ManualClock::new(start_time());
    let sim_config = SmartFocusSimConfig {
        upload_step_delay: None,
        upload_polls_per_step: 1,
        ..SmartFocusSimConfig::default()
    };
    let sim = SmartFocusSim::start(sim_config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = SmartFocusConfig::new(AccountId::parse("sf").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.timezone = "Europe/Paris".into();
    config.upload_poll_interval_ms = 5;
    let creds = SmartFocusCredentials::new("espbridge", "sim-password", "sim-key");
    let esp = SmartFocusEsp::new(
        config,
        creds,
        &BuildContext::in_memory(Arc::new(clock.clone())),
    )
    .unwrap();
    (sim, esp, clock)
}

/// A campaign of three customers, posted for [`send_at`].
async fn booked(esp: &SmartFocusEsp, c: &CampaignId) -> EspIds {
    let audience = esp
        .create_audience(&AudienceRequest::new(c, None, send_at()))
        .await
        .unwrap();
    let batch = AudienceBatch {
        first_ordinal: 0,
        field_names: Arc::from(Vec::<String>::new()),
        contacts: ["k1", "k2", "k3"]
            .iter()
            .map(|id| Contact {
                customer_id: (*id).to_owned(),
                email: None,
                fields: Vec::new(),
            })
            .collect(),
    };
    esp.upload_batch(&audience, &batch).await.unwrap();
    let audience = esp.finish_audience(c, None, &audience).await.unwrap().ids;
    let template = esp.list_templates().await.unwrap().remove(0);
    let options = serde_json::Value::Null;
    esp.schedule_send(&SendRequest {
        campaign_id: c,
        variant: None,
        template_id: &template.id,
        send_at: send_at(),
        timezone: None,
        audience: &audience,
        options: &options,
        headers: None,
    })
    .await
    .unwrap()
}

fn status(sim: &SmartFocusSim) -> String {
    sim.campaigns()[0].status.clone()
}

#[tokio::test]
async fn an_unposted_campaign_sends_nothing_at_its_date() {
    let (sim, esp, clock) = rig().await;
    let c = CampaignId::parse("cmp-cancel").unwrap();
    let sent = booked(&esp, &c).await;
    assert_eq!(status(&sim), "QUEUED");
    let soap_calls = |sim: &SmartFocusSim| {
        sim.requests()
            .into_iter()
            .filter(|q| q.path.ends_with("/CcmdService"))
            .count()
    };
    let before = soap_calls(&sim);
    esp.cancel_send(&sent).await.unwrap();
    assert_eq!(status(&sim), "EDITABLE");
    assert_eq!(sim.unpost_count(), 1);
    assert_eq!(
        soap_calls(&sim),
        before + 1,
        "one SOAP call: unpostCampaign"
    );

    // Twice: the campaign reads EDITABLE and is left alone.
    esp.cancel_send(&sent).await.unwrap();
    assert_eq!(sim.unpost_count(), 1);

    clock.set(send_at() + SignedDuration::from_hours(30));
    assert!(sim.sends().is_empty(), "no send at its date");
    assert_eq!(esp.fetch_metrics(&sent).await.unwrap(), None, "no counts");
}

#[tokio::test]
async fn after_the_send_date_it_is_refused() {
    let (sim, esp, clock) = rig().await;
    let c = CampaignId::parse("cmp-late").unwrap();
    let sent = booked(&esp, &c).await;
    clock.set(send_at() + SignedDuration::from_mins(1));
    match esp.cancel_send(&sent).await {
        Err(EspError::CannotCancel { why, detail, .. }) => {
            assert_eq!(why, CannotCancel::AlreadySent);
            assert!(detail.contains("RUNNING"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.unpost_count(), 0);
    assert_eq!(sim.sends().len(), 1, "the send stands");
}
