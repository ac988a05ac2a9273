//! Cancelling a booked send against the Emarsys simulator: `POST /email/{id}/stop` before the
//! send time unschedules it (no send, no counts at its time), twice is harmless, after the send
//! it is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, CannotCancel, Contact, Esp, EspError, EspIds, SendRequest,
};
use espbridge_core::{AccountId, CampaignId, Clock, ManualClock};
use espbridge_emarsys::sim::{EmarsysSim, EmarsysSimConfig};
use espbridge_emarsys::{EmarsysConfig, EmarsysCredentials, EmarsysEsp};
use espbridge_esp_kit::{BuildContext, SimView};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

const START: &str = "2026-11-24T08:00:00Z";
const SEND_AT: &str = "2026-11-25T08:30:00Z";

struct Rig {
    sim: EmarsysSim,
    esp: EmarsysEsp,
    clock: ManualClock,
}

async fn rig() -> Rig {
    let clock = ManualClock::new(START.parse().unwrap());
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let sim = EmarsysSim::start(EmarsysSimConfig::default(), shared.clone())
        .await
        .unwrap();
    let mut config = EmarsysConfig::new(AccountId::parse("eu").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.template_prefix = "optimove_".into();
    let creds = EmarsysCredentials::new("espbridge", "sim-secret");
    let esp = EmarsysEsp::new(config, creds, &BuildContext::in_memory(shared)).unwrap();
    Rig { sim, esp, clock }
}

/// A campaign of 30 customers booked for [`SEND_AT`].
async fn booked(r: &Rig, id: &CampaignId) -> EspIds {
    let tpl = r
        .esp
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "optimove_spring_sale")
        .unwrap()
        .id;
    let send_at: Timestamp = SEND_AT.parse().unwrap();
    let aud = r
        .esp
        .create_audience(&AudienceRequest::new(id, None, send_at))
        .await
        .unwrap();
    let batch = AudienceBatch {
        first_ordinal: 0,
        field_names: Arc::from(Vec::<String>::new()),
        contacts: (0..30)
            .map(|i| Contact {
                customer_id: format!("CUST{i:06}"),
                email: None,
                fields: vec![],
            })
            .collect(),
    };
    r.esp.upload_batch(&aud, &batch).await.unwrap();
    let opts = serde_json::Value::Null;
    r.esp
        .schedule_send(&SendRequest {
            campaign_id: id,
            variant: None,
            template_id: &tpl,
            send_at,
            timezone: Some("Europe/Berlin"),
            audience: &aud,
            options: &opts,
            headers: None,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stopped_launch_sends_nothing_at_its_time() {
    let r = rig().await;
    let id = CampaignId::parse("cmp-cancel").unwrap();
    let sent = booked(&r, &id).await;
    r.esp.cancel_send(&sent).await.unwrap();
    let stop = r
        .sim
        .requests()
        .into_iter()
        .find(|q| q.path.ends_with("/stop"))
        .expect("a stop call");
    assert_eq!(stop.method, "POST");
    assert!(
        stop.path
            .ends_with(&format!("/email/{}/stop", sent.get("email_id").unwrap()))
    );
    let email = r
        .sim
        .emails()
        .into_iter()
        .find(|e| e.name == "espbridge_cmp-cancel")
        .unwrap();
    assert_eq!((email.status, email.api_status), (1, 0), "back in design");

    // Twice: Emarsys answers 6003, the e-mail is read and found in design.
    r.esp.cancel_send(&sent).await.unwrap();

    r.clock.advance(SignedDuration::from_hours(48));
    assert!(r.sim.sends().is_empty(), "no send at its time");
    assert_eq!(r.esp.fetch_metrics(&sent).await.unwrap(), None, "no counts");
}

#[tokio::test]
async fn after_the_send_it_is_refused() {
    let r = rig().await;
    let id = CampaignId::parse("cmp-late").unwrap();
    let sent = booked(&r, &id).await;
    r.clock
        .set(SEND_AT.parse::<Timestamp>().unwrap() + SignedDuration::from_mins(1));
    match r.esp.cancel_send(&sent).await {
        Err(EspError::CannotCancel { why, detail, .. }) => {
            assert_eq!(why, CannotCancel::AlreadySent);
            assert!(detail.contains("launched"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.sim.sends().len(), 1, "the send stands");
    assert!(r.esp.fetch_metrics(&sent).await.unwrap().is_some());
}
