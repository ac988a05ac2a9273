//! Metric polling on EventBridge Scheduler.
//!
//! One schedule per campaign: `rate(1 day)` from the first poll, ending a few minutes after the
//! last one (an end date equal to the last fire time could drop it), and deleted by the service
//! once it has run its course. poll-metrics also deletes it after the last snapshot, so the
//! deletion is idempotent.

use async_trait::async_trait;
use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::primitives::DateTime;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use espbridge_core::ids::CampaignId;
use espbridge_core::ports::scheduler::{PollSchedule, Scheduler, SchedulerError};
use jiff::{SignedDuration, Timestamp};

/// The expression of a daily schedule: one poll a day from `start_date`.
pub const SCHEDULE_EXPRESSION: &str = "rate(1 day)";

/// `rate(1 day)` for the daily polls; `at(...)` (UTC) for a one-off such as the clean-up.
pub fn schedule_expression(schedule: &PollSchedule) -> String {
    if schedule.is_once() {
        format!("at({})", schedule.first_at.strftime("%Y-%m-%dT%H:%M:%S"))
    } else {
        SCHEDULE_EXPRESSION.to_owned()
    }
}
/// Slack after the last poll so the end date cannot cut it off.
pub const END_SLACK: SignedDuration = SignedDuration::from_mins(5);
/// Retries of one delivery to the target; poll-metrics is idempotent per day.
const MAX_RETRY_ATTEMPTS: i32 = 10;
/// A poll older than this is dropped: the next day's poll catches up.
const MAX_EVENT_AGE_S: i32 = 6 * 3600;

/// [`Scheduler`] on EventBridge Scheduler. The target is the poll-metrics function, invoked with
/// [`schedule_input`] through `role_arn`.
#[derive(Debug, Clone)]
pub struct EventBridgeScheduler {
    client: Client,
    group: String,
    target_arn: String,
    role_arn: String,
}

impl EventBridgeScheduler {
    pub fn new(
        client: Client,
        group: impl Into<String>,
        target_arn: impl Into<String>,
        role_arn: impl Into<String>,
    ) -> Self {
        Self {
            client,
            group: group.into(),
            target_arn: target_arn.into(),
            role_arn: role_arn.into(),
        }
    }

    /// A scheduler that only deletes (the HTTP API's cancel): it has no target, so a create
    /// is refused before any call.
    pub fn deleting_only(client: Client, group: impl Into<String>) -> Self {
        Self::new(client, group, String::new(), String::new())
    }

    fn target(&self, campaign_id: &CampaignId) -> Result<Target, SchedulerError> {
        if self.target_arn.is_empty() {
            return Err(SchedulerError {
                name: format!("poll schedule of {campaign_id}"),
                source: crate::error::local(
                    "CreateSchedule",
                    "this scheduler only deletes (it has no target)".to_owned(),
                ),
            });
        }
        Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(schedule_input(campaign_id))
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(MAX_RETRY_ATTEMPTS)
                    .maximum_event_age_in_seconds(MAX_EVENT_AGE_S)
                    .build(),
            )
            .build()
            .map_err(|e| SchedulerError {
                name: format!("poll target of {campaign_id}"),
                source: crate::error::local("CreateSchedule", format!("schedule target: {e}")),
            })
    }
}

/// The payload the schedule delivers to poll-metrics (a `PollEvent` as JSON).
pub fn schedule_input(campaign_id: &CampaignId) -> String {
    serde_json::json!({ "campaign_id": campaign_id.as_str() }).to_string()
}

/// The schedule's end date: the last poll plus [`END_SLACK`].
pub fn end_date(schedule: &PollSchedule) -> Timestamp {
    schedule
        .last_at
        .saturating_add(END_SLACK)
        .unwrap_or(schedule.last_at)
}

fn to_datetime(t: Timestamp) -> DateTime {
    DateTime::from_nanos(t.as_nanosecond()).unwrap_or_else(|_| DateTime::from_secs(t.as_second()))
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    async fn create(&self, schedule: &PollSchedule) -> Result<(), SchedulerError> {
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| SchedulerError {
                name: schedule.name.clone(),
                source: crate::error::local("CreateSchedule", format!("flexible time window: {e}")),
            })?;
        let mut request = self
            .client
            .create_schedule()
            .name(&schedule.name)
            .group_name(&self.group)
            .schedule_expression(schedule_expression(schedule));
        if !schedule.is_once() {
            request = request
                .start_date(to_datetime(schedule.first_at))
                .end_date(to_datetime(end_date(schedule)));
        }
        let result = request
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(self.target(&schedule.campaign_id)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Created by an earlier attempt: the name is derived from the campaign id.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(SchedulerError {
                name: schedule.name.clone(),
                source: crate::error::from_sdk("CreateSchedule", e),
            }),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), SchedulerError> {
        match self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(SchedulerError {
                name: name.to_owned(),
                source: crate::error::from_sdk("DeleteSchedule", e),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ports::scheduler::PollEvent;

    #[test]
    fn input_is_a_poll_event() {
        let id = CampaignId::parse("spring-sale_1").unwrap();
        let ev: PollEvent = serde_json::from_str(&schedule_input(&id)).unwrap();
        assert_eq!(ev.campaign_id, id);
    }

    #[test]
    fn a_one_off_is_an_at_expression_in_utc() {
        let id = CampaignId::parse("c9").unwrap();
        let at: Timestamp = "2026-12-31T23:30:00+01:00".parse().unwrap();
        let once = PollSchedule::cleanup_at(&id, at);
        assert_eq!(schedule_expression(&once), "at(2026-12-31T22:30:00)");
        let daily = PollSchedule::daily_after(&id, at, 7);
        assert_eq!(schedule_expression(&daily), "rate(1 day)");
    }

    #[test]
    fn end_date_leaves_room_for_the_last_poll() {
        let id = CampaignId::parse("c1").unwrap();
        let send: Timestamp = "2026-11-25T08:30:00Z".parse().unwrap();
        let s = PollSchedule::daily_after(&id, send, 7);
        assert_eq!(
            end_date(&s),
            "2026-12-02T08:35:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn datetime_keeps_the_instant() {
        let t: Timestamp = "2026-11-26T08:30:00.25Z".parse().unwrap();
        let d = to_datetime(t);
        assert_eq!(d.secs(), t.as_second());
        assert_eq!(d.subsec_nanos(), 250_000_000);
    }
}
