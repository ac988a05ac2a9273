//! poll-metrics: invoked by the campaign's EventBridge Scheduler schedule with
//! `{"campaign_id": "..."}`. A retryable failure is returned as an error so the scheduler's
//! retry policy tries again; anything else is logged and answered.

use espbridge_core::ports::scheduler::PollEvent;
use espbridge_core::service::{ServiceError, Services};
use serde_json::{Value, json};

pub async fn handle(services: &Services, event: Value) -> Result<Value, ServiceError> {
    let ev: PollEvent = match serde_json::from_value(event) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "poll event without a valid campaign_id: ignored");
            return Ok(json!({"outcome": "ignored", "reason": e.to_string()}));
        }
    };
    match services.poll_metrics(&ev.campaign_id).await {
        Ok(out) => {
            tracing::info!(campaign_id = %ev.campaign_id, outcome = ?out, "poll handled");
            Ok(json!({"campaign_id": ev.campaign_id, "outcome": format!("{out:?}")}))
        }
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            tracing::error!(campaign_id = %ev.campaign_id, error = %e, "poll failed; tomorrow's poll tries again");
            Ok(json!({"campaign_id": ev.campaign_id, "outcome": "error", "reason": e.to_string()}))
        }
    }
}
