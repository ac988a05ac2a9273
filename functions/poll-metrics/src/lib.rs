//! poll-metrics: invoked by the campaign's EventBridge Scheduler schedule with
//! `{"campaign_id": "..."}`; [`PollService`] calls out. A retryable failure is returned as an error so the scheduler's
//! retry policy tries again; anything else is logged and answered.

use espbridge_core::ports::scheduler::PollEvent;
use espbridge_core::service::{PollService, ServiceError, chain};
use serde_json::{Value, json};

pub async fn handle(services: &PollService, event: Value) -> Result<Value, ServiceError> {
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
            let reason = chain(&e);
            tracing::error!(campaign_id = %ev.campaign_id, error = %reason, "poll failed; tomorrow's poll tries again");
            Ok(json!({"campaign_id": ev.campaign_id, "outcome": "error", "reason": reason}))
        }
    }
}
