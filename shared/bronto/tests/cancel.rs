//! Cancelling a booked send against the Bronto simulator: `deleteDeliveries` before the start
//! removes the delivery (no send, no counters at its time), twice is harmless (219), a sent
//! delivery is refused and left alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_bronto::sim::{BrontoSim, BrontoSimConfig};
use espbridge_bronto::{BrontoConfig, BrontoCredentials, BrontoEsp, keys};
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, CannotCancel, Contact, Esp, EspError, EspIds, SendRequest,
};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_esp_kit::{BuildContext, SimView};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

/// The seeded `active` message in the Optimove folder.
const SUMMER: &str = "0bcc03eb00000000000000000000001c7d10";

fn send_at() -> Timestamp {
    "2026-06-15T09:30:00Z".parse().unwrap()
}

async fn rig() -> (BrontoSim, BrontoEsp, ManualClock) {
    let clock = ManualClock::new("2026-06-15T08:00:00Z".parse().unwrap());
    let sim = BrontoSim::start(BrontoSimConfig::default(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = BrontoConfig::new(AccountId::parse("br").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.from_email = "news@brand.example".into();
    config.from_name = "Brand".into();
    let esp = BrontoEsp::new(
        config,
        BrontoCredentials::new("sim-api-token"),
        &BuildContext::in_memory(Arc::new(clock.clone())),
    )
    .unwrap();
    (sim, esp, clock)
}

/// A campaign of 20 contacts booked for [`send_at`].
async fn booked(esp: &BrontoEsp, c: &CampaignId) -> EspIds {
    let ids = esp
        .create_audience(&AudienceRequest::new(c, None, send_at()))
        .await
        .unwrap();
    let batch = AudienceBatch {
        first_ordinal: 0,
        field_names: Arc::from(Vec::<String>::new()),
        contacts: (0..20)
            .map(|i| Contact {
                customer_id: format!("C-{i}"),
                email: Some(format!("c{i}@example.org")),
                fields: Vec::new(),
            })
            .collect(),
    };
    esp.upload_batch(&ids, &batch).await.unwrap();
    let options = serde_json::Value::Null;
    esp.schedule_send(&SendRequest {
        campaign_id: c,
        variant: None,
        template_id: SUMMER,
        send_at: send_at(),
        timezone: None,
        audience: &ids,
        options: &options,
        headers: None,
    })
    .await
    .unwrap()
}

/// The delivery operations the simulator saw, in order.
fn operations(sim: &BrontoSim) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter_map(|r| Some(r.body?.get("operation")?.as_str()?.to_owned()))
        .filter(|op| op.ends_with("Deliveries"))
        .collect()
}

#[tokio::test]
async fn a_deleted_delivery_sends_nothing_at_its_start() {
    let (sim, esp, clock) = rig().await;
    let c = CampaignId::parse("cmp-cancel").unwrap();
    let sent = booked(&esp, &c).await;
    let booked_id = sent.get(keys::DELIVERY_ID).unwrap().to_owned();
    assert_eq!(sim.deliveries()[0].id, booked_id);
    esp.cancel_send(&sent).await.unwrap();
    assert!(sim.deliveries().is_empty(), "the delivery is gone");
    assert!(
        operations(&sim).ends_with(&["readDeliveries".to_owned(), "deleteDeliveries".to_owned()]),
        "{:?}",
        operations(&sim)
    );
    assert_eq!(
        sim.requests().last().unwrap().body.clone().unwrap()["items"],
        1
    );
    // Twice: 219, taken as done.
    esp.cancel_send(&sent).await.unwrap();

    clock.set(send_at() + SignedDuration::from_hours(30));
    assert!(sim.sends().is_empty(), "no send at its start");
    assert_eq!(esp.fetch_metrics(&sent).await.unwrap(), None, "no counters");
}

#[tokio::test]
async fn a_sent_delivery_is_refused_and_left_alone() {
    let (sim, esp, clock) = rig().await;
    let c = CampaignId::parse("cmp-late").unwrap();
    let sent = booked(&esp, &c).await;
    clock.set(send_at() + SignedDuration::from_mins(1));
    match esp.cancel_send(&sent).await {
        Err(EspError::CannotCancel { why, detail, .. }) => {
            assert_eq!(why, CannotCancel::AlreadySent);
            assert!(detail.contains("sent"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !operations(&sim).contains(&"deleteDeliveries".to_owned()),
        "nothing deleted"
    );
    assert_eq!(sim.sends().len(), 1);
    assert!(esp.fetch_metrics(&sent).await.unwrap().is_some());
}
