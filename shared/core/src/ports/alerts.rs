//! Alerts for the people running a night (an SNS topic in AWS, the log locally): every
//! campaign failure, every campaign whose mail may have gone out without all of it being
//! booked, every campaign stuck in a state longer than that state allows.
//!
//! An alert carries the campaign's identity, state and reason, never a cell of a customer file:
//! reasons are built by the services, which already keep rows out of them.

use crate::campaign::{Campaign, State};
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::backend::BackendError;
use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;

/// What happened to the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The campaign ended `failed`.
    Failed,
    /// Some of its sends are booked and another is not (`partially_scheduled`): mail may go
    /// out.
    MailMayGoOut,
    /// In its state longer than the state allows, and not resumable.
    Stuck,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Failed => "failed",
            AlertKind::MailMayGoOut => "mail_may_go_out",
            AlertKind::Stuck => "stuck",
        }
    }
}

/// One alert: which campaign, in which state, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub campaign_id: CampaignId,
    pub run_date: String,
    pub esp: Option<EspKind>,
    pub account: Option<AccountId>,
    pub state: State,
    pub reason: String,
    pub at: Timestamp,
}

impl Alert {
    /// An alert about `c` as it stands (its state, ESP and account), for `reason`.
    pub fn about(kind: AlertKind, c: &Campaign, reason: impl Into<String>, at: Timestamp) -> Self {
        Self {
            kind,
            campaign_id: c.id.clone(),
            run_date: c.run_date.clone(),
            esp: c.esp,
            account: c.account.clone(),
            state: c.state,
            reason: reason.into(),
            at,
        }
    }

    /// A one-line subject: `espbridge: campaign <id> failed (2026-11-24, emarsys/default)`.
    pub fn subject(&self) -> String {
        let what = match self.kind {
            AlertKind::Failed => "failed",
            AlertKind::MailMayGoOut => "is partly booked: mail may go out",
            AlertKind::Stuck => "is stuck",
        };
        let place = match (self.esp, &self.account) {
            (Some(esp), Some(acc)) => format!(", {esp}/{acc}"),
            (Some(esp), None) => format!(", {esp}"),
            _ => String::new(),
        };
        format!(
            "espbridge: campaign {} {what} ({}{place})",
            self.campaign_id, self.run_date
        )
    }
}

/// Where alerts go. Raising is best effort for the caller's step: a campaign's state is already
/// saved when its alert is raised. A lost `stuck` alert is raised again by the next hourly
/// sweep; a lost `failed` or `mail_may_go_out` one is still counted by the metric its alarm
/// watches (`FailedCampaigns`, `PartiallyScheduledCampaigns`).
#[async_trait]
pub trait Alerts: Send + Sync {
    async fn raise(&self, alert: &Alert) -> Result<(), BackendError>;
}

/// Alerts as warning log lines with `alert=<kind>`: the local mode's channel, and what a log
/// metric filter can count.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogAlerts;

#[async_trait]
impl Alerts for LogAlerts {
    async fn raise(&self, alert: &Alert) -> Result<(), BackendError> {
        tracing::warn!(
            alert = alert.kind.as_str(),
            campaign_id = %alert.campaign_id,
            run_date = %alert.run_date,
            state = %alert.state,
            reason = %alert.reason,
            "{}",
            alert.subject()
        );
        Ok(())
    }
}
