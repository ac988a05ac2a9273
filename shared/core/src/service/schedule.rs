//! schedule-send: clone the template, attach the audience, schedule the send at the ESP, and
//! set up the daily metric polls. Every step is idempotent at the ESP (deterministic names,
//! "already launched" recognised), so a retry after a crash never sends twice.

use super::context::{ServiceError, Services};
use crate::campaign::{RunRecord, State};
use crate::ids::CampaignId;
use crate::ports::StoreError;
use crate::ports::esp::SendRequest;
use crate::ports::scheduler::PollSchedule;

/// Days of metric polling after the send.
pub const POLL_DAYS: i64 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleOutcome {
    Scheduled(CampaignId),
    Skipped(CampaignId, State),
    Failed(CampaignId),
}

impl Services {
    pub async fn schedule_send(
        &self,
        id: &CampaignId,
        final_attempt: bool,
    ) -> Result<ScheduleOutcome, ServiceError> {
        let started = self.clock.now();
        let mut c = self.load(id).await?;
        if c.state != State::AudienceReady {
            return Ok(ScheduleOutcome::Skipped(c.id, c.state));
        }
        let result: Result<(), ServiceError> = async {
            let esp = self.esps.for_campaign(&c)?;
            let send_at = c
                .send_at
                .ok_or_else(|| ServiceError::Config("campaign has no send time".into()))?;
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
            c.transition(State::Scheduled, self.clock.now())
                .map_err(|e| ServiceError::Config(e.to_string()))?;
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
                tracing::warn!(campaign_id = %c.id, error = %e, "schedule-send interrupted; will retry");
                self.record(&c.id, started, "retry", Some(e.to_string()))
                    .await;
                return Err(e);
            }
            Err(e) => {
                let reason = e.to_string();
                self.fail_campaign(&c.id, "schedule", &reason).await?;
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
        let run = RunRecord {
            step: "schedule".into(),
            started_at: started,
            finished_at: self.clock.now(),
            outcome: outcome.into(),
            rows_uploaded: 0,
            batches: 0,
            detail,
        };
        self.record_run(id, run).await;
    }
}
