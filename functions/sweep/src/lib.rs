//! sweep: invoked hourly by its EventBridge Scheduler schedule (the payload is not read);
//! [`SweepService`] finds the stuck campaigns, resumes what can be resumed and alerts on the
//! rest. A retryable failure (a page of the store that could not be read) is returned as an
//! error so the schedule's retry policy tries again; the next hour's run does in any case.

use espbridge_core::service::{ServiceError, SweepMode, SweepService, chain};
use serde_json::{Value, json};

pub async fn handle(sweep: &SweepService) -> Result<Value, ServiceError> {
    match sweep.sweep(SweepMode::Hourly).await {
        Ok(report) => Ok(json!({"outcome": "swept", "report": report})),
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            let reason = chain(&e);
            tracing::error!(error = %reason, "sweep failed; the next hour's run tries again");
            Ok(json!({"outcome": "error", "reason": reason}))
        }
    }
}
