//! The API's use cases, typed: sender headers per template (and that they go with the send).
//! Status codes and bodies are the router's, tested in `espbridge-api`.

use super::*;
use crate::ids::EspKind;
use crate::service::api::{ApiError, HeadersSource};

fn headers(from: &str, name: &str, reply: Option<&str>) -> SenderHeaders {
    SenderHeaders {
        from_email: from.into(),
        from_name: name.into(),
        reply_to: reply.map(str::to_owned),
    }
}

#[tokio::test]
async fn sender_headers_are_managed_per_template_and_go_with_the_send() {
    let w = bronto_world();
    let api = w.services.api();
    let v = api
        .sender_headers(EspKind::Bronto, None, "t1")
        .await
        .unwrap();
    assert_eq!(v.source, HeadersSource::AccountDefault);
    assert_eq!(v.headers.from_email, "news@brand.example");

    let bad = headers("not-an-address", " ", Some("x@"));
    match api
        .set_sender_headers(EspKind::Bronto, None, "t1", bad)
        .await
    {
        Err(ApiError::InvalidHeaders(fields)) => {
            let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(names, ["from_email", "reply_to", "from_name"]);
        }
        other => panic!("{other:?}"),
    }

    let good = headers(
        "sale@brand.example",
        "Brand Sale",
        Some("care@brand.example"),
    );
    let unknown = api
        .set_sender_headers(EspKind::Bronto, None, "unknown", good.clone())
        .await;
    assert!(
        matches!(unknown, Err(ApiError::Esp(EspError::NotFound { .. }))),
        "a template the ESP does not have: {unknown:?}"
    );
    let set = api
        .set_sender_headers(EspKind::Bronto, None, "t1", good)
        .await
        .unwrap();
    assert_eq!(set.source, HeadersSource::Template);
    let v = api
        .sender_headers(EspKind::Bronto, None, "t1")
        .await
        .unwrap();
    assert_eq!(v.source, HeadersSource::Template);
    assert_eq!(v.headers.reply_to.as_deref(), Some("care@brand.example"));

    upload_and_schedule(&w).await;
    let sent = w.esp.sent_headers.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].as_ref().unwrap().from_email, "sale@brand.example");

    // ESPs whose messages carry their own headers have none to manage.
    let e = world();
    assert!(matches!(
        e.services
            .api()
            .sender_headers(EspKind::Emarsys, None, "t1")
            .await,
        Err(ApiError::NoSenderHeaders(EspKind::Emarsys))
    ));
}

#[tokio::test]
async fn a_missing_campaign_and_an_unmatched_listing_are_typed() {
    let w = world();
    let api = w.services.api();
    let id = CampaignId::parse("nope").unwrap();
    assert!(matches!(
        api.campaign(&id).await,
        Err(ApiError::CampaignNotFound(_))
    ));
    let q = crate::service::api::TemplateQuery {
        esp: Some(EspKind::Silverpop),
        ..Default::default()
    };
    assert!(matches!(
        api.templates(&q).await,
        Err(ApiError::NoMatchingAccount)
    ));
}
