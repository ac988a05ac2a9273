#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use crate::common::{emulator, unique};
use espbridge_aws::SqsQueue;
use espbridge_core::CampaignId;
use espbridge_core::ports::queue::{WorkItem, WorkQueue};

async fn create_queue(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("queue url")
        .to_owned()
}

async fn receive_all(client: &aws_sdk_sqs::Client, url: &str) -> Vec<WorkItem> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    out.messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().expect("body")).expect("a WorkItem"))
        .collect()
}

#[tokio::test]
async fn items_go_to_their_own_queue_as_json() {
    let Some(conf) = emulator("items_go_to_their_own_queue_as_json").await else {
        return;
    };
    let client = aws_sdk_sqs::Client::new(&conf);
    let upload = create_queue(&client, &unique("upload")).await;
    let schedule = create_queue(&client, &unique("schedule")).await;
    let queue = SqsQueue::new(client.clone(), &upload, &schedule);

    let id = CampaignId::parse("spring-sale").expect("id");
    let cont = WorkItem::ContinueUpload {
        campaign_id: id.clone(),
    };
    let send = WorkItem::ScheduleSend { campaign_id: id };
    queue.enqueue(&cont).await.expect("enqueue continue");
    queue.enqueue(&send).await.expect("enqueue schedule");

    assert_eq!(receive_all(&client, &upload).await, [cont]);
    assert_eq!(receive_all(&client, &schedule).await, [send]);
}

#[tokio::test]
async fn missing_queue_is_an_error_naming_the_item() {
    let Some(conf) = emulator("missing_queue_is_an_error").await else {
        return;
    };
    let client = aws_sdk_sqs::Client::new(&conf);
    let endpoint = conf.endpoint_url().unwrap_or("http://127.0.0.1").to_owned();
    let missing = format!("{endpoint}/123456789012/{}", unique("gone"));
    let queue = SqsQueue::new(client, &missing, &missing);
    let item = WorkItem::ScheduleSend {
        campaign_id: CampaignId::parse("c-err").expect("id"),
    };
    let err = queue.enqueue(&item).await.expect_err("no such queue");
    assert_eq!(err.item, "schedule_send c-err");
    assert_eq!(err.source.operation, "SendMessage");
    assert!(
        err.source.code.is_some(),
        "the service's error code: {err:?}"
    );
    assert!(
        !err.is_retryable(),
        "a queue that does not exist stays missing"
    );
}
