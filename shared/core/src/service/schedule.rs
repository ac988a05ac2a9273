//! schedule-send: clone the template, attach the audience, schedule the send at the ESP, and
//! set up the daily metric polls. Every step is idempotent at the ESP (deterministic names,
//! "already launched" recognised), so a retry after a crash never sends twice.

use super::accounts::EspRegistry;
use super::common::{ServiceError, chain, fail_campaign, load, record_run, run_record};
use crate::campaign::State;
use crate::clock::Clock;
use crate::ids::CampaignId;
use crate::ports::esp::SendRequest;
use crate::ports::scheduler::PollSchedule;
use crate::ports::{CampaignStore, Scheduler, StoreError};
use std::sync::Arc;

/// Days of metric polling after the send.
pub const POLL_DAYS: i64 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleOutcome {
    Scheduled(CampaignId),
    Skipped(CampaignId, State),
    Failed(CampaignId),
}

/// The schedule-send use case and the ports it needs: the campaign store, the ESP accounts, the
/// scheduler of the metric polls and the clock.
#[derive(Clone)]
pub struct ScheduleService {
    pub store: Arc<dyn CampaignStore>,
    pub esps: EspRegistry,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
}

impl ScheduleService {
    pub async fn schedule_send(
        &self,
        id: &CampaignId,
        final_attempt: bool,
    ) -> Result<ScheduleOutcome, ServiceError> {
        let started = self.clock.now();
        let mut c = load(self.store.as_ref(), id).await?;
        if c.state != State::AudienceReady {
            return Ok(ScheduleOutcome::Skipped(c.id, c.state));
        }
        let result: Result<(), ServiceError> = async {
            let esp = self.esps.for_campaign(&c)?;
            let send_at = c
                .send_at
                .ok_or_else(|| ServiceError::NoSendTime(c.id.clone()))?;
            let options = c
                .manifest
                .get("esp_options")
                .and_then(|o| o.get(esp.kind().as_str()))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            // One send per variant (or the campaign's one), each idempotent at the ESP: a retry
            // after a partial failure finds the sends already made.
            let sends: Vec<(Option<String>, String)> = if c.variants.is_empty() {
                vec![(None, c.template_id.clone())]
            } else {
                c.variants
                    .iter()
                    .map(|v| (Some(v.name.clone()), v.template_id.clone()))
                    .collect()
            };
            for (i, (variant, template_id)) in sends.iter().enumerate() {
                // Per-send headers (Bronto): the template's stored override, else the adapter
                // falls back to the account's defaults.
                let headers = match esp.default_headers() {
                    Some(_) => {
                        self.store
                            .template_headers(esp.kind(), esp.account(), template_id)
                            .await?
                    }
                    None => None,
                };
                let audience = match variant {
                    Some(_) => c.variants[i].esp_ids.clone(),
                    None => c.esp_ids.clone(),
                };
                let ids = esp
                    .schedule_send(&SendRequest {
                        campaign_id: &c.id,
                        variant: variant.as_deref(),
                        template_id,
                        send_at,
                        timezone: c.timezone.as_deref(),
                        audience: &audience,
                        options: &options,
                        headers: headers.as_ref(),
                    })
                    .await?;
                match variant {
                    Some(_) => c.variants[i].esp_ids.merge(&ids),
                    None => c.esp_ids.merge(&ids),
                }
            }
            let schedule = PollSchedule::daily_after(&c.id, send_at, POLL_DAYS);
            self.scheduler.create(&schedule).await?;
            c.schedule_name = Some(schedule.name);
            c.transition(State::Scheduled, self.clock.now())?;
            c = self.store.save(&c).await?;
            Ok(())
        }
        .await;
        let (outcome, label, detail) = match result {
            Ok(()) => {
                tracing::info!(campaign_id = %c.id, "send scheduled at the ESP; metric polling scheduled");
                (ScheduleOutcome::Scheduled(c.id.clone()), "done", None)
            }
            Err(ServiceError::Store(StoreError::Conflict { .. })) => (
                ScheduleOutcome::Skipped(c.id.clone(), c.state),
                "skipped",
                None,
            ),
            Err(e) if e.is_retryable() && !final_attempt => {
                let reason = chain(&e);
                tracing::warn!(campaign_id = %c.id, error = %reason, "schedule-send interrupted; will retry");
                self.record(&c.id, started, "retry", Some(reason)).await;
                return Err(e);
            }
            Err(e) => {
                let reason = chain(&e);
                fail_campaign(
                    self.store.as_ref(),
                    self.clock.as_ref(),
                    &c.id,
                    "schedule",
                    &reason,
                )
                .await?;
                (
                    ScheduleOutcome::Failed(c.id.clone()),
                    "failed",
                    Some(reason),
                )
            }
        };
        self.record(&c.id, started, label, detail).await;
        Ok(outcome)
    }

    async fn record(
        &self,
        id: &CampaignId,
        started: jiff::Timestamp,
        outcome: &str,
        detail: Option<String>,
    ) {
        let run = run_record("schedule", started, self.clock.now(), outcome, None, detail);
        record_run(self.store.as_ref(), id, run).await;
    }
}
