//! Silverpop cannot cancel: the Engage XML API has no call that unschedules a `ScheduleMailing`.
//! The adapter says so without calling anything, and the mailing goes out as booked.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, CannotCancel, Contact, Esp, EspError, SendRequest,
};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_esp_kit::{BuildContext, SimView};
use espbridge_silverpop::sim::{SilverpopSim, SilverpopSimConfig};
use espbridge_silverpop::{SilverpopConfig, SilverpopCredentials, SilverpopEsp};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

fn send_at() -> Timestamp {
    "2026-06-15T09:30:00Z".parse().unwrap()
}

#[tokio::test]
async fn cancel_is_refused_as_unsupported_and_changes_nothing() {
    let clock = ManualClock::new("2026-06-15T08:00:00Z".parse().unwrap());
    let sim = SilverpopSim::start(SilverpopSimConfig::default(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = SilverpopConfig::new(AccountId::parse("sp").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.database_id = "2740754".into();
    let esp = SilverpopEsp::new(
        config,
        SilverpopCredentials::new("espbridge", "sim-password"),
        &BuildContext::in_memory(Arc::new(clock.clone())),
    )
    .unwrap();

    let c = CampaignId::parse("cmp-cancel").unwrap();
    let audience = esp
        .create_audience(&AudienceRequest::new(&c, None, send_at()))
        .await
        .unwrap();
    let batch = AudienceBatch {
        first_ordinal: 0,
        field_names: Arc::from(Vec::<String>::new()),
        contacts: (0..10)
            .map(|i| Contact {
                customer_id: format!("cust-{i:04}"),
                email: None,
                fields: Vec::new(),
            })
            .collect(),
    };
    esp.upload_batch(&audience, &batch).await.unwrap();
    let audience = esp.finish_audience(&c, None, &audience).await.unwrap().ids;
    let options = serde_json::Value::Null;
    let sent = esp
        .schedule_send(&SendRequest {
            campaign_id: &c,
            variant: None,
            template_id: "410233",
            send_at: send_at(),
            timezone: None,
            audience: &audience,
            options: &options,
            headers: None,
        })
        .await
        .unwrap();

    let calls = sim.requests().len();
    match esp.cancel_send(&sent).await {
        Err(EspError::CannotCancel { why, detail, .. }) => {
            assert_eq!(why, CannotCancel::Unsupported);
            assert!(detail.contains("no call that unschedules"), "{detail}");
            assert!(detail.contains("in Engage"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.requests().len(), calls, "nothing was called");

    clock.set(send_at() + SignedDuration::from_mins(1));
    assert_eq!(sim.sends().len(), 1, "the mailing goes out as booked");
}
