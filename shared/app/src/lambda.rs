//! Small translations every function needs from the Lambda runtime.

use espbridge_core::service::Deadline;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The invocation's deadline (epoch milliseconds in the context) as a monotonic instant.
pub fn deadline(ctx: &lambda_runtime::Context) -> Deadline {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = ctx.deadline.saturating_sub(now_ms);
    Deadline::at(Instant::now() + Duration::from_millis(left))
}
