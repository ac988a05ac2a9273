//! What the services share: the ports, the ESP accounts, settings, and the error type.

use crate::audience::read::AudienceError;
use crate::campaign::{Campaign, RunRecord};
use crate::clock::Clock;
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::{
    AudienceSource, CampaignStore, Esp, EspError, QueueError, Scheduler, SchedulerError,
    SourceError, StoreError, WorkQueue,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The configured ESP accounts.
#[derive(Clone, Default)]
pub struct EspRegistry {
    accounts: Vec<Arc<dyn Esp>>,
}

impl EspRegistry {
    pub fn new(accounts: Vec<Arc<dyn Esp>>) -> Self {
        Self { accounts }
    }
    pub fn all(&self) -> &[Arc<dyn Esp>] {
        &self.accounts
    }
    pub fn of(&self, esp: EspKind) -> impl Iterator<Item = &Arc<dyn Esp>> {
        self.accounts.iter().filter(move |a| a.kind() == esp)
    }
    pub fn get(&self, esp: EspKind, account: &AccountId) -> Option<Arc<dyn Esp>> {
        self.of(esp).find(|a| a.account() == account).cloned()
    }
    /// The account a manifest means: the named one; else the one whose template-name rule claims
    /// `template_name`; else the ESP's only account.
    pub fn choose(
        &self,
        esp: EspKind,
        account: Option<&AccountId>,
        template_name: Option<&str>,
    ) -> Result<Arc<dyn Esp>, String> {
        if let Some(a) = account {
            return self
                .get(esp, a)
                .ok_or_else(|| format!("no {esp} account named {a:?} is configured"));
        }
        if let Some(name) = template_name {
            let claimed: Vec<_> = self
                .of(esp)
                .filter(|a| a.claims_template_name(name))
                .collect();
            if let [one] = claimed.as_slice() {
                return Ok(Arc::clone(one));
            }
        }
        let all: Vec<_> = self.of(esp).collect();
        match all.as_slice() {
            [one] => Ok(Arc::clone(one)),
            [] => Err(format!("no {esp} account is configured")),
            _ => Err(format!(
                "{} {esp} accounts are configured: name one in \"account\" (or give a \"template_name\" whose prefix chooses it)",
                all.len()
            )),
        }
    }
    /// The ESP account of a campaign.
    pub fn for_campaign(&self, c: &Campaign) -> Result<Arc<dyn Esp>, ServiceError> {
        match (c.esp, &c.account) {
            (Some(esp), Some(account)) => self.get(esp, account).ok_or_else(|| {
                ServiceError::Config(format!("{esp} account {account} is not configured"))
            }),
            _ => Err(ServiceError::Config(format!(
                "campaign {} has no ESP account",
                c.id
            ))),
        }
    }
}

/// Tuning of the upload loop.
#[derive(Clone)]
pub struct UploadSettings {
    /// Stop and enqueue a continuation when less than this much invocation time is left.
    pub stop_margin: Duration,
    /// Stop after this many batches in one invocation (tests and demos of continuation).
    pub max_batches_per_run: Option<u64>,
    /// Rejected rows kept in the record as samples (all are in the rejects report).
    pub reject_samples: usize,
    pub observer: Option<Arc<dyn UploadObserver>>,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            stop_margin: Duration::from_secs(90),
            max_batches_per_run: None,
            reject_samples: 50,
            observer: None,
        }
    }
}

/// Progress of an upload (the CLI's progress bar).
pub trait UploadObserver: Send + Sync {
    fn validated(&self, campaign: &CampaignId, rows: u64, valid: u64);
    fn uploaded(&self, campaign: &CampaignId, uploaded: u64, valid: u64);
}

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

/// Everything a service call needs.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn CampaignStore>,
    pub source: Arc<dyn AudienceSource>,
    pub queue: Arc<dyn WorkQueue>,
    pub scheduler: Arc<dyn Scheduler>,
    pub esps: EspRegistry,
    pub clock: Arc<dyn Clock>,
    pub upload: UploadSettings,
}

impl Services {
    /// The campaign, or `NotFound`.
    pub(crate) async fn load(&self, id: &CampaignId) -> Result<Campaign, ServiceError> {
        Ok(self
            .store
            .get(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?)
    }

    pub(crate) async fn record_run(&self, id: &CampaignId, run: RunRecord) {
        // The run history is a report, not a control path: losing one entry is logged, not fatal.
        if let Err(e) = self.store.add_run(id, &run).await {
            tracing::warn!(campaign_id = %id, error = %e, "could not record the run");
        }
    }
}

/// Why a service call did not finish. Retryable errors leave the campaign as it was, to be
/// resumed by the redelivered event; the others have already failed the campaign.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Esp(#[from] EspError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Audience(#[from] AudienceError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("writing the rejects report: {0}")]
    Report(String),
}

impl ServiceError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ServiceError::Store(e) => e.is_retryable() || matches!(e, StoreError::Conflict { .. }),
            ServiceError::Esp(e) => e.is_retryable(),
            ServiceError::Source(e) => e.is_retryable(),
            ServiceError::Audience(e) => e.is_retryable(),
            ServiceError::Queue(_) | ServiceError::Scheduler(_) | ServiceError::Report(_) => true,
            ServiceError::Config(_) => false,
        }
    }
}
