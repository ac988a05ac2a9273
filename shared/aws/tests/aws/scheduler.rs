#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use crate::common::{emulator, unique};
use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode};
use espbridge_aws::{EventBridgeScheduler, schedule_input};
use espbridge_core::CampaignId;
use espbridge_core::ports::scheduler::{PollEvent, PollSchedule, Scheduler};
use jiff::Timestamp;

const TARGET: &str = "arn:aws:lambda:us-east-1:123456789012:function:poll-metrics";
const ROLE: &str = "arn:aws:iam::123456789012:role/espbridge-scheduler";

#[tokio::test]
async fn create_is_idempotent_and_describes_the_daily_poll() {
    let Some(conf) = emulator("create_is_idempotent_and_describes_the_daily_poll").await else {
        return;
    };
    let client = aws_sdk_scheduler::Client::new(&conf);
    let group = unique("polls");
    client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("create group");
    let scheduler = EventBridgeScheduler::new(client.clone(), &group, TARGET, ROLE);

    let id = CampaignId::parse(&unique("camp")).expect("id");
    let send_at: Timestamp = "2030-01-10T08:30:00Z".parse().expect("ts");
    let schedule = PollSchedule::daily_after(&id, send_at, 7);
    scheduler.create(&schedule).await.expect("create");
    scheduler
        .create(&schedule)
        .await
        .expect("creating it again is not an error");

    let got = client
        .get_schedule()
        .name(&schedule.name)
        .group_name(&group)
        .send()
        .await
        .expect("get schedule");
    assert_eq!(got.schedule_expression(), Some("rate(1 day)"));
    assert_eq!(
        got.start_date().map(|d| d.secs()),
        Some(
            "2030-01-11T08:30:00Z"
                .parse::<Timestamp>()
                .expect("ts")
                .as_second()
        )
    );
    assert_eq!(
        got.end_date().map(|d| d.secs()),
        Some(
            "2030-01-17T08:35:00Z"
                .parse::<Timestamp>()
                .expect("ts")
                .as_second()
        )
    );
    assert_eq!(
        got.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
    assert_eq!(
        got.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
    let target = got.target().expect("target");
    assert_eq!(target.arn(), TARGET);
    assert_eq!(target.role_arn(), ROLE);
    let input = target.input().expect("input");
    assert_eq!(input, schedule_input(&id));
    let event: PollEvent = serde_json::from_str(input).expect("PollEvent");
    assert_eq!(event.campaign_id, id);
    let retry = target.retry_policy().expect("retry policy");
    assert!(retry.maximum_retry_attempts().is_some_and(|n| n > 0));
}

#[tokio::test]
async fn delete_is_idempotent() {
    let Some(conf) = emulator("delete_is_idempotent").await else {
        return;
    };
    let client = aws_sdk_scheduler::Client::new(&conf);
    let group = unique("polls-del");
    client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("create group");
    let scheduler = EventBridgeScheduler::new(client.clone(), &group, TARGET, ROLE);
    let id = CampaignId::parse(&unique("del")).expect("id");
    let schedule = PollSchedule::daily_after(&id, "2030-01-10T08:30:00Z".parse().expect("ts"), 7);
    scheduler.create(&schedule).await.expect("create");

    scheduler.delete(&schedule.name).await.expect("delete");
    let gone = client
        .get_schedule()
        .name(&schedule.name)
        .group_name(&group)
        .send()
        .await;
    assert!(
        gone.as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "schedule still there after delete: {gone:?}"
    );
    scheduler
        .delete(&schedule.name)
        .await
        .expect("deleting a missing schedule is not an error");
}

/// Campaign ids may be 64 characters; the poll and clean-up schedules of such an id are
/// created, read back and deleted under names Scheduler accepts, distinct for two ids that
/// share their first 60 characters.
#[tokio::test]
async fn a_64_character_campaign_id_gets_valid_distinct_schedule_names() {
    let Some(conf) = emulator("a_64_character_campaign_id_gets_valid_schedule_names").await else {
        return;
    };
    let client = aws_sdk_scheduler::Client::new(&conf);
    let group = unique("polls-long");
    client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("create group");
    let scheduler = EventBridgeScheduler::new(client.clone(), &group, TARGET, ROLE);
    let stem = unique("long");
    let pad = |last: char| {
        let mut s = format!("{stem}{}", "x".repeat(64 - stem.len() - 1));
        s.push(last);
        CampaignId::parse(&s).expect("a 64-character id is valid")
    };
    let (a, b) = (pad('a'), pad('b'));
    let send_at: Timestamp = "2030-01-10T08:30:00Z".parse().expect("ts");
    let mut names = std::collections::BTreeSet::new();
    for id in [&a, &b] {
        for schedule in [
            PollSchedule::daily_after(id, send_at, 7),
            PollSchedule::cleanup_at(id, send_at),
        ] {
            assert!(schedule.name.len() <= 64, "{}", schedule.name);
            assert!(
                schedule
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{}",
                schedule.name
            );
            scheduler.create(&schedule).await.expect("create");
            let got = client
                .get_schedule()
                .name(&schedule.name)
                .group_name(&group)
                .send()
                .await
                .expect("get schedule");
            let event: PollEvent =
                serde_json::from_str(got.target().and_then(|t| t.input()).expect("input"))
                    .expect("PollEvent");
            assert_eq!(&event.campaign_id, id, "the payload keeps the whole id");
            names.insert(schedule.name.clone());
        }
    }
    assert_eq!(names.len(), 4, "{names:?}");
    for name in &names {
        scheduler.delete(name).await.expect("delete");
    }
}
