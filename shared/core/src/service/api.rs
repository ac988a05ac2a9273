//! What the HTTP API answers, as typed use cases: the templates a marketer may choose, a
//! preview, sender headers (for ESPs that take them per send: Bronto), a campaign's document,
//! and cancelling or retrying a campaign ([`cancel`](super::cancel), [`retry`](super::retry)).
//! Paths, query strings, bodies and status codes are the router's (`espbridge-api`); nothing
//! here knows HTTP.

use super::accounts::{AccountChoiceError, EspRegistry};
use super::cancel::{CancelService, Cancelled, ControlError};
use super::common::chain;
use super::retry::{Retried, RetryService};
use crate::clock::Clock;
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::{
    CampaignStore, Esp, EspError, Preview, Scheduler, SenderHeaders, StoreError, Template,
    WorkQueue,
};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The API's use cases and the ports they need: the campaign store and the ESP accounts; for
/// cancel and retry also the work queues (a retry queues its step), the scheduler (a cancel
/// deletes the poll schedule) and the clock.
#[derive(Clone)]
pub struct ApiService {
    pub store: Arc<dyn CampaignStore>,
    pub esps: EspRegistry,
    pub queue: Arc<dyn WorkQueue>,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
}

/// Which templates to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateQuery {
    pub esp: Option<EspKind>,
    pub account: Option<AccountId>,
    /// Keeps templates whose display name or full name starts with it.
    pub prefix: Option<String>,
}

/// An account whose listing failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountFailure {
    pub esp: EspKind,
    pub account: AccountId,
    pub error: String,
}

/// The templates of every matching account, and the accounts that could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateList {
    pub templates: Vec<Template>,
    pub errors: Vec<AccountFailure>,
}

/// Whose sender headers a send of a template goes out with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadersSource {
    Template,
    AccountDefault,
}

/// The sender headers of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeadersView {
    pub esp: EspKind,
    pub account: AccountId,
    pub template_id: String,
    pub headers: SenderHeaders,
    pub source: HeadersSource,
}

/// Why the API could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no configured account matches esp/account")]
    NoMatchingAccount,
    #[error(transparent)]
    Account(#[from] AccountChoiceError),
    #[error("every account failed")]
    AllAccountsFailed(Vec<AccountFailure>),
    #[error(transparent)]
    Esp(#[from] EspError),
    #[error("{0} keeps sender headers in the message; there are none to manage here")]
    NoSenderHeaders(EspKind),
    /// Each problem named by its field.
    #[error("{}", .0.iter().map(|(f, p)| format!("{f}: {p}")).collect::<Vec<_>>().join("; "))]
    InvalidHeaders(Vec<(String, String)>),
    #[error("no campaign {0}")]
    CampaignNotFound(CampaignId),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listing's cursor that this API did not make for these filters.
    #[error(transparent)]
    Cursor(#[from] crate::ports::CursorError),
    #[error("limit: {0} is not within 1 to {max}", max = crate::ports::listing::MAX_PAGE)]
    InvalidLimit(usize),
    /// A cancel or retry the campaign does not allow now, or one that could not finish.
    #[error(transparent)]
    Control(ControlError),
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(id) => ApiError::CampaignNotFound(id),
            e => ApiError::Control(e),
        }
    }
}

impl ApiService {
    /// The cancel use case on this service's ports.
    pub fn cancel_service(&self) -> CancelService {
        CancelService {
            store: Arc::clone(&self.store),
            esps: self.esps.clone(),
            scheduler: Arc::clone(&self.scheduler),
            clock: Arc::clone(&self.clock),
        }
    }

    /// The retry use case on this service's ports.
    pub fn retry_service(&self) -> RetryService {
        RetryService {
            store: Arc::clone(&self.store),
            queue: Arc::clone(&self.queue),
            esps: self.esps.clone(),
            clock: Arc::clone(&self.clock),
        }
    }

    /// Cancels the campaign before its send time (see [`cancel`](super::cancel)).
    pub async fn cancel(&self, id: &CampaignId) -> Result<Cancelled, ApiError> {
        Ok(self.cancel_service().cancel(id).await?)
    }

    /// Resumes a failed campaign at its failed step (see [`retry`](super::retry)).
    pub async fn retry(&self, id: &CampaignId) -> Result<Retried, ApiError> {
        Ok(self.retry_service().retry(id).await?)
    }

    /// The templates of every account matching `q`, after each ESP's visibility rules, sorted by
    /// ESP, account and display name. An account that cannot be listed is reported beside the
    /// others' templates; only when all fail is it an error.
    pub async fn templates(&self, q: &TemplateQuery) -> Result<TemplateList, ApiError> {
        let accounts: Vec<Arc<dyn Esp>> = self
            .esps
            .all()
            .iter()
            .filter(|a| q.esp.is_none_or(|k| a.kind() == k))
            .filter(|a| q.account.as_ref().is_none_or(|x| a.account() == x))
            .cloned()
            .collect();
        if accounts.is_empty() {
            return Err(ApiError::NoMatchingAccount);
        }
        let prefix = q.prefix.as_deref().unwrap_or("");
        let results = join_all(accounts.iter().map(|a| {
            let a = Arc::clone(a);
            async move { (a.kind(), a.account().clone(), a.list_templates().await) }
        }))
        .await;
        let mut templates: Vec<Template> = Vec::new();
        let mut errors = Vec::new();
        for (esp, account, r) in results {
            match r {
                Ok(t) => {
                    templates.extend(t.into_iter().filter(|t| {
                        t.display_name.starts_with(prefix) || t.name.starts_with(prefix)
                    }))
                }
                Err(e) => {
                    let error = chain(&e);
                    tracing::warn!(%esp, %account, error = %error, "listing templates failed");
                    errors.push(AccountFailure {
                        esp,
                        account,
                        error,
                    });
                }
            }
        }
        if templates.is_empty() && !errors.is_empty() && errors.len() == accounts.len() {
            return Err(ApiError::AllAccountsFailed(errors));
        }
        templates.sort_by(|a, b| {
            (a.esp, &a.account, &a.display_name).cmp(&(b.esp, &b.account, &b.display_name))
        });
        Ok(TemplateList { templates, errors })
    }

    /// The account a template route addresses: the named one, or the ESP's only one.
    fn template_account(
        &self,
        esp: EspKind,
        account: Option<&AccountId>,
    ) -> Result<Arc<dyn Esp>, ApiError> {
        Ok(self.esps.choose(esp, account, None)?)
    }

    pub async fn preview(
        &self,
        esp: EspKind,
        account: Option<&AccountId>,
        template_id: &str,
    ) -> Result<Preview, ApiError> {
        let client = self.template_account(esp, account)?;
        Ok(client.preview(template_id).await?)
    }

    /// The headers a send of this template goes out with: its override, or the account's
    /// defaults.
    pub async fn sender_headers(
        &self,
        esp: EspKind,
        account: Option<&AccountId>,
        template_id: &str,
    ) -> Result<HeadersView, ApiError> {
        let client = self.template_account(esp, account)?;
        let defaults = client
            .default_headers()
            .ok_or(ApiError::NoSenderHeaders(client.kind()))?;
        let stored = self
            .store
            .template_headers(client.kind(), client.account(), template_id)
            .await?;
        let (headers, source) = match stored {
            Some(h) => (h, HeadersSource::Template),
            None => (defaults, HeadersSource::AccountDefault),
        };
        Ok(view(client.as_ref(), template_id, headers, source))
    }

    /// Validates and stores a template's override; the template must exist at the ESP.
    pub async fn set_sender_headers(
        &self,
        esp: EspKind,
        account: Option<&AccountId>,
        template_id: &str,
        headers: SenderHeaders,
    ) -> Result<HeadersView, ApiError> {
        let client = self.template_account(esp, account)?;
        if client.default_headers().is_none() {
            return Err(ApiError::NoSenderHeaders(client.kind()));
        }
        headers.validate().map_err(ApiError::InvalidHeaders)?;
        client.preview(template_id).await?;
        self.store
            .put_template_headers(client.kind(), client.account(), template_id, &headers)
            .await?;
        Ok(view(
            client.as_ref(),
            template_id,
            headers,
            HeadersSource::Template,
        ))
    }

    /// The campaign as the API and the demo report show it: the record, its run history, the
    /// rejected-row counts and the daily metrics.
    pub async fn campaign(&self, id: &CampaignId) -> Result<Value, ApiError> {
        self.campaign_document(id)
            .await?
            .ok_or_else(|| ApiError::CampaignNotFound(id.clone()))
    }

    /// [`campaign`](Self::campaign), `None` when there is no such campaign.
    pub async fn campaign_document(&self, id: &CampaignId) -> Result<Option<Value>, StoreError> {
        let Some(c) = self.store.get(id).await? else {
            return Ok(None);
        };
        let runs = self.store.runs(id).await?;
        let snaps = self.store.snapshots(id).await?;
        let a = &c.audience;
        Ok(Some(json!({
            "campaign_id": c.id,
            "esp": c.esp,
            "account": c.account,
            "state": c.state,
            "failure": c.failure,
            "template_id": c.template_id,
            "send_at": c.send_at,
            "timezone": c.timezone,
            "drop": c.drop,
            "audience": {
                "rows": a.rows,
                "valid": a.valid,
                "uploaded": a.uploaded,
                "rejected": a.rejected,
                "rejected_by_reason": a.rejected_by_reason,
                "reject_samples": a.reject_samples,
                "rejects_key": a.rejects_key,
                "not_in_esp": a.not_in_esp,
                "esp_rejected": a.esp_rejected,
                "batches": a.batches,
                "held_out": a.held_out,
            },
            "esp_ids": c.esp_ids,
            "variants": c.variants,
            "control": c.control,
            "conversions": c.conversions,
            "schedule_name": c.schedule_name,
            "cleanup_due_at": c.cleanup_due_at,
            "cleaned_up_at": c.cleaned_up_at,
            "note": c.note,
            "sweep": c.sweep,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "version": c.version,
            "runs": runs,
            "daily_metrics": snaps.iter().map(|s| json!({
                "day": s.day,
                "taken_at": s.taken_at,
                "sent": s.counts.sent,
                "delivered": s.counts.delivered,
                "opens": s.counts.opens,
                "clicks": s.counts.clicks,
                "unsubscribes": s.counts.unsubscribes,
                "bounces": s.counts.bounces,
                "complaints": s.counts.complaints,
                "by_variant": s.by_variant,
            })).collect::<Vec<_>>(),
        })))
    }
}

fn view(
    client: &dyn Esp,
    template_id: &str,
    headers: SenderHeaders,
    source: HeadersSource,
) -> HeadersView {
    HeadersView {
        esp: client.kind(),
        account: client.account().clone(),
        template_id: template_id.to_owned(),
        headers,
        source,
    }
}

/// Runs the futures concurrently (one per account; a handful at most).
async fn join_all<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}
