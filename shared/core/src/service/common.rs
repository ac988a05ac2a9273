//! What the use cases share: the invocation deadline, the error type, and the campaign-record
//! chores (load, run history, failing a campaign) every step does the same way.

use crate::audience::read::AudienceError;
use crate::campaign::{Campaign, RunRecord, State, TransitionError};
use crate::clock::Clock;
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::manifest::Manifest;
use crate::ports::metrics::name;
use crate::ports::{
    Alert, AlertKind, Alerts, CampaignStore, EspError, Measurement, Metrics, QueueError,
    SchedulerError, SourceError, StoreError,
};
use std::time::{Duration, Instant};

/// When the current invocation must have stopped.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    pub fn none() -> Self {
        Self(None)
    }
    pub fn at(at: Instant) -> Self {
        Self(Some(at))
    }
    pub fn remaining(&self) -> Duration {
        match self.0 {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        }
    }
}

/// Why a use case did not finish. Retryable errors leave the campaign as it was, to be resumed
/// by the redelivered event; the others have already failed the campaign (or could not, which
/// the caller logs). Every variant keeps its cause as the error source; [`chain`] renders the
/// whole of it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Esp(#[from] EspError),
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Boxed: the largest error, and the rarest on the hot path.
    #[error(transparent)]
    Audience(Box<AudienceError>),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The campaign names an ESP account this deployment does not configure.
    #[error("{esp} account {account} is not configured")]
    AccountMissing { esp: EspKind, account: AccountId },
    /// A record without an ESP account (one whose manifest was refused).
    #[error("campaign {0} has no ESP account")]
    NoAccount(CampaignId),
    #[error("campaign {0} has no send time")]
    NoSendTime(CampaignId),
    /// The manifest stored with the campaign no longer reads as one.
    #[error("campaign {campaign_id}: the stored manifest is unreadable")]
    StoredManifest {
        campaign_id: CampaignId,
        #[source]
        source: serde_json::Error,
    },
    /// The files gave a different number of valid rows in a later pass.
    #[error(
        "audience files changed between passes: {validated} valid rows validated, {uploaded} uploaded"
    )]
    AudienceChanged { validated: u64, uploaded: u64 },
    /// The rejects report could not be written or read back.
    #[error("rejects report {key}: {problem}")]
    Report {
        key: String,
        problem: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// Other invocations kept changing the record; the message comes back.
    #[error("campaign {0}: the record kept changing")]
    Contended(CampaignId),
    /// Another invocation holds the campaign's send claim; the message comes back after it.
    #[error("campaign {0}: another invocation is booking its sends")]
    Claimed(CampaignId),
    /// The send time passed before the send could be booked.
    #[error("the send time {send_at} passed before the send could be booked; nothing was booked")]
    SendTimePassed { send_at: jiff::Timestamp },
    /// The campaign's template is not one the account lists as eligible (`GET /templates`).
    #[error(
        "template {template_id:?} is not among the {esp} account's eligible templates (see GET /templates)"
    )]
    TemplateNotListed { esp: EspKind, template_id: String },
    /// The ESP throttled the upload so long that the rest of the audience can no longer reach
    /// it before the send time (less the time schedule-send needs).
    #[error(
        "the send time {send_at} can no longer be met: {uploaded} of {valid} valid rows uploaded"
    )]
    SendTimeMissed {
        send_at: jiff::Timestamp,
        uploaded: u64,
        valid: u64,
        #[source]
        source: EspError,
    },
}

impl From<AudienceError> for ServiceError {
    fn from(e: AudienceError) -> Self {
        ServiceError::Audience(Box::new(e))
    }
}

impl ServiceError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ServiceError::Store(e) => e.is_retryable() || matches!(e, StoreError::Conflict { .. }),
            ServiceError::Esp(e) => e.is_retryable(),
            ServiceError::Source(e) => e.is_retryable(),
            ServiceError::Audience(e) => e.is_retryable(),
            ServiceError::Queue(e) => e.is_retryable(),
            ServiceError::Scheduler(e) => e.is_retryable(),
            // A local disk that is full or busy may be free on the next delivery.
            ServiceError::Report { source, .. } => source.is_some(),
            ServiceError::Contended(_) | ServiceError::Claimed(_) => true,
            ServiceError::Transition(_)
            | ServiceError::AccountMissing { .. }
            | ServiceError::NoAccount(_)
            | ServiceError::NoSendTime(_)
            | ServiceError::StoredManifest { .. }
            | ServiceError::AudienceChanged { .. }
            | ServiceError::SendTimeMissed { .. }
            | ServiceError::TemplateNotListed { .. }
            | ServiceError::SendTimePassed { .. } => false,
        }
    }

    /// The whole cause, e.g. `could not enqueue schedule_send c1: SendMessage: AccessDenied…`.
    pub fn reason(&self) -> String {
        chain(self)
    }
}

/// An error and its sources, joined by `: `; a source whose text the message already holds is
/// not repeated. At most [`MAX_REASON`](crate::text::MAX_REASON) bytes, whatever the input put
/// into an error (it goes to logs and records).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next
        && out.len() <= crate::text::MAX_REASON
    {
        let text = s.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    crate::text::reason(&out)
}

/// The campaign, or `NotFound`.
pub(crate) async fn load(
    store: &dyn CampaignStore,
    id: &CampaignId,
) -> Result<Campaign, ServiceError> {
    Ok(store
        .get(id)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.clone()))?)
}

/// The manifest stored with the campaign.
pub(crate) fn stored_manifest(c: &Campaign) -> Result<Manifest, ServiceError> {
    serde_json::from_value(c.manifest.clone()).map_err(|source| ServiceError::StoredManifest {
        campaign_id: c.id.clone(),
        source,
    })
}

/// Appends to the run history. The history is a report, not a control path: losing one entry
/// is logged, not fatal.
pub(crate) async fn record_run(store: &dyn CampaignStore, id: &CampaignId, run: RunRecord) {
    if let Err(e) = store.add_run(id, &run).await {
        tracing::warn!(campaign_id = %id, error = %chain(&e), "could not record the run");
    }
}

/// Marks the campaign failed, re-reading it on a conflict so the reason is never lost; then
/// alerts and counts the failure.
pub(crate) async fn fail_campaign(
    store: &dyn CampaignStore,
    clock: &dyn Clock,
    alerts: &dyn Alerts,
    metrics: &dyn Metrics,
    id: &CampaignId,
    step: &str,
    reason: &str,
) -> Result<(), ServiceError> {
    for _ in 0..5 {
        let Some(mut c) = store.get(id).await? else {
            return Ok(());
        };
        if c.state.is_terminal() {
            return Ok(());
        }
        c.fail(step, reason, clock.now());
        match store.save(&c).await {
            Ok(saved) => {
                let reason = c.failure.as_ref().map_or("", |f| f.reason.as_str());
                tracing::warn!(campaign_id = %id, step, reason, "campaign failed");
                campaign_failed(alerts, metrics, &saved).await;
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Contended(id.clone()))
}

/// Alerts and counts a campaign that has just been saved `failed` (its failure says the step
/// and the reason).
pub(crate) async fn campaign_failed(alerts: &dyn Alerts, metrics: &dyn Metrics, c: &Campaign) {
    let (State::Failed, Some(f)) = (c.state, &c.failure) else {
        return;
    };
    metrics.record(&[Measurement::count(name::CAMPAIGNS_FAILED, 1).with("step", f.step.as_str())]);
    raise(
        alerts,
        &Alert::about(AlertKind::Failed, c, f.reason.as_str(), f.at),
    )
    .await;
}

/// Raises an alert, best effort: the campaign's state is saved already, so an alert that cannot
/// be raised is logged (with the same `alert=<kind>` field as the log channel) and the step goes
/// on; the hourly sweep finds the campaign again.
pub async fn raise(alerts: &dyn Alerts, alert: &Alert) {
    if let Err(e) = alerts.raise(alert).await {
        tracing::error!(alert = alert.kind.as_str(), campaign_id = %alert.campaign_id,
            error = %chain(&e), "{} (the alert could not be raised)", alert.subject());
    }
}

/// The measurement, counted under the campaign's ESP and account (when it has them).
pub(crate) fn per_account(m: Measurement, c: &Campaign) -> Measurement {
    let m = match c.esp {
        Some(esp) => m.with("esp", esp.as_str()),
        None => m,
    };
    match &c.account {
        Some(account) => m.with("account", account.as_str()),
        None => m,
    }
}

/// A run-history entry.
pub(crate) fn run_record(
    step: &str,
    started: jiff::Timestamp,
    finished: jiff::Timestamp,
    outcome: &str,
    c: Option<&Campaign>,
    detail: Option<String>,
) -> RunRecord {
    RunRecord {
        step: step.into(),
        started_at: started,
        finished_at: finished,
        outcome: outcome.into(),
        rows_uploaded: c.map_or(0, |c| c.audience.uploaded),
        batches: c.map_or(0, |c| c.audience.batches),
        detail: detail.map(|d| crate::text::reason(&d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::BackendError;

    #[test]
    fn the_chain_names_every_cause_once() {
        let e = ServiceError::Queue(QueueError {
            item: "schedule_send c1".into(),
            source: BackendError {
                operation: "SendMessage",
                code: Some("AccessDenied".into()),
                detail: "AccessDenied: not authorized".into(),
                retryable: false,
                source: None,
            },
        });
        assert_eq!(
            e.reason(),
            "could not enqueue schedule_send c1: SendMessage: AccessDenied: not authorized"
        );
        assert!(!e.is_retryable());
        let throttled = ServiceError::Store(StoreError::Backend(BackendError {
            operation: "PutItem",
            code: Some("ThrottlingException".into()),
            detail: "ThrottlingException: slow down".into(),
            retryable: true,
            source: None,
        }));
        assert!(throttled.is_retryable());
        assert_eq!(
            throttled.reason(),
            "campaign store: PutItem: ThrottlingException: slow down"
        );
    }
}
