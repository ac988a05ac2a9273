#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use crate::common::{emulator, unique};
use aws_sdk_sqs::types::QueueAttributeName;
use espbridge_aws::SnsAlerts;
use espbridge_core::campaign::State;
use espbridge_core::ports::{Alert, AlertKind, Alerts};
use espbridge_core::{AccountId, CampaignId, EspKind};

fn alert(id: &str) -> Alert {
    Alert {
        kind: AlertKind::Failed,
        campaign_id: CampaignId::parse(id).unwrap(),
        run_date: "2026-11-24".into(),
        esp: Some(EspKind::Emarsys),
        account: Some(AccountId::parse("eu").unwrap()),
        state: State::Failed,
        reason: "upload: emarsys: HTTP 503 (after 4 attempts) \u{2014} r\u{e9}essayer".into(),
        at: "2026-11-24T02:10:00Z".parse().unwrap(),
    }
}

/// A topic with an SQS queue subscribed (moto delivers SNS to SQS), as the e-mail
/// subscription would receive it: the SNS envelope with `Subject` and `Message`.
#[tokio::test]
async fn an_alert_reaches_the_topics_subscribers_as_json_with_a_subject() {
    let Some(conf) = emulator("an_alert_reaches_the_topics_subscribers").await else {
        return;
    };
    let sns = aws_sdk_sns::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let topic = sns
        .create_topic()
        .name(unique("alarms"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let queue = sqs
        .create_queue()
        .queue_name(unique("inbox"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();

    // The longest campaign id pushes the subject past SNS's limit.
    let long_id = format!("spring-sale-{}", "x".repeat(52));
    let mut sent = alert(&long_id);
    sent.kind = AlertKind::MailMayGoOut;
    sent.state = State::PartiallyScheduled;
    SnsAlerts::new(sns.clone(), &topic)
        .raise(&sent)
        .await
        .expect("published");

    let out = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let messages = out.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let envelope: serde_json::Value =
        serde_json::from_str(messages[0].body().unwrap()).expect("an SNS envelope");
    assert_eq!(envelope["TopicArn"], topic.as_str());
    let subject = envelope["Subject"].as_str().expect("a subject");
    assert_eq!(subject.len(), espbridge_aws::alerts::MAX_SUBJECT);
    assert!(
        subject.starts_with("espbridge: campaign spring-sale-xxx"),
        "{subject}"
    );
    assert!(subject.ends_with("..."), "{subject}");
    let message: serde_json::Value =
        serde_json::from_str(envelope["Message"].as_str().unwrap()).expect("JSON message");
    assert_eq!(message["kind"], "mail_may_go_out");
    assert_eq!(message["campaign_id"], long_id.as_str());
    assert_eq!(message["run_date"], "2026-11-24");
    assert_eq!(message["esp"], "emarsys");
    assert_eq!(message["account"], "eu");
    assert_eq!(message["state"], "partially_scheduled");
    assert_eq!(
        message["reason"],
        sent.reason.as_str(),
        "the message keeps it whole"
    );
    assert_eq!(message["at"], "2026-11-24T02:10:00Z");
}

#[tokio::test]
async fn a_missing_topic_is_an_error_with_the_services_code() {
    let Some(conf) = emulator("a_missing_topic_is_an_error").await else {
        return;
    };
    let sns = aws_sdk_sns::Client::new(&conf);
    let arn = format!("arn:aws:sns:us-east-1:123456789012:{}", unique("gone"));
    let e = SnsAlerts::new(sns, arn)
        .raise(&alert("c1"))
        .await
        .unwrap_err();
    assert_eq!(e.operation, "Publish");
    assert_eq!(e.code.as_deref(), Some("NotFound"), "{e}");
    assert!(!e.retryable);
}
