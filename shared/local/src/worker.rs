//! The local queue's consumers: what SQS and the Lambda service do in AWS. Each worker takes
//! one item at a time; a retryable error is retried a few times with a short back-off, the
//! last attempt being `final_attempt` so the campaign fails cleanly instead of waiting for a
//! redelivery that never comes locally.

use espbridge_core::ports::WorkItem;
use espbridge_core::service::{Deadline, Services};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const WORK_ATTEMPTS: u32 = 4;
const WORK_BACKOFF: Duration = Duration::from_millis(200);

/// Workers of the local queue by default: the upload function's reserved concurrency in the
/// SAM template, so a local night meets the ESP accounts' limits as a deployed one does.
pub const DEFAULT_WORKERS: usize = 5;

/// `workers` long-lived workers sharing the queue, each running one item at a time until the
/// queue closes. The account limits they meet are the stack's one in-memory set, as all Lambda
/// instances meet the one DynamoDB set.
pub async fn run_workers(services: Services, rx: UnboundedReceiver<WorkItem>, workers: usize) {
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let (services, rx) = (services.clone(), Arc::clone(&rx));
            tokio::spawn(async move {
                loop {
                    // The lock is held only while waiting for the next item.
                    let Some(item) = rx.lock().await.recv().await else {
                        return;
                    };
                    process(&services, &item).await;
                }
            })
        })
        .collect();
    for t in tasks {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "a local worker stopped");
        }
    }
}

/// Runs one work item as the SQS consumer would: a retryable error is retried a few times with a
/// short back-off, and the last attempt is `final_attempt` so the campaign fails cleanly instead
/// of waiting for a redelivery that never comes locally.
pub async fn process(services: &Services, item: &WorkItem) {
    for attempt in 1..=WORK_ATTEMPTS {
        let last = attempt == WORK_ATTEMPTS;
        let result = match item {
            WorkItem::ContinueUpload { campaign_id } => services
                .upload()
                .continue_upload(campaign_id, Deadline::none(), last)
                .await
                .map(|o| format!("{o:?}")),
            WorkItem::ScheduleSend { campaign_id } => services
                .schedule()
                .schedule_send(campaign_id, last)
                .await
                .map(|o| format!("{o:?}")),
        };
        let campaign_id = match item {
            WorkItem::ContinueUpload { campaign_id } | WorkItem::ScheduleSend { campaign_id } => {
                campaign_id
            }
        };
        match result {
            Ok(outcome) => {
                tracing::debug!(%campaign_id, outcome, "work item done");
                return;
            }
            Err(e) if e.is_retryable() && !last => {
                tracing::warn!(%campaign_id, attempt, error = %e, "work item failed; retrying");
                tokio::time::sleep(WORK_BACKOFF * attempt).await;
            }
            Err(e) => {
                tracing::error!(%campaign_id, attempt, error = %e, "work item failed");
                return;
            }
        }
    }
}
