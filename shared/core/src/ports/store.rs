//! The campaign store (DynamoDB single table in AWS, SQLite locally).

use crate::campaign::{Campaign, MetricSnapshot, RunRecord, State};
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::backend::BackendError;
use crate::ports::esp::SenderHeaders;
use crate::ports::listing::{CampaignFilter, CampaignPage, Position};
use crate::ports::source::ObjectRef;
use async_trait::async_trait;

/// Result of recording a drop.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// First sight of this drop: the campaign was created.
    New(Campaign),
    /// The drop was seen before (a re-delivered event): its campaign as it stands.
    Existing(Campaign),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record changed since it was read: another invocation got there first.
    #[error("campaign {campaign_id}: version conflict (expected {expected})")]
    Conflict {
        campaign_id: CampaignId,
        expected: u64,
    },
    /// A different drop already created this campaign id.
    #[error("campaign {campaign_id} already exists from another drop ({existing_key})")]
    CampaignExists {
        campaign_id: CampaignId,
        existing_key: String,
    },
    #[error("campaign {0} not found")]
    NotFound(CampaignId),
    /// The store's backend failed the call (it says whether a retry may help).
    #[error("campaign store: {0}")]
    Backend(#[from] BackendError),
    #[error("campaign store returned a record it cannot read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Only a backend failure it calls transient; a conflict is the caller's to re-read.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Backend(e) if e.retryable)
    }
}

#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Records the drop and creates its campaign in one atomic write, keyed on the drop's
    /// (bucket, key, etag). A drop seen before returns [`Created::Existing`]; a campaign id
    /// already created by another drop is [`StoreError::CampaignExists`].
    async fn create_from_drop(
        &self,
        drop: &ObjectRef,
        campaign: &Campaign,
    ) -> Result<Created, StoreError>;

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, StoreError>;

    /// Writes `next` if the stored version is still `next.version`; returns the record as
    /// stored, with its version bumped by one.
    async fn save(&self, next: &Campaign) -> Result<Campaign, StoreError>;

    async fn add_run(&self, id: &CampaignId, run: &RunRecord) -> Result<(), StoreError>;
    /// Run history, oldest first.
    async fn runs(&self, id: &CampaignId) -> Result<Vec<RunRecord>, StoreError>;

    /// Stores the day's snapshot once; returns false when that day was already stored.
    async fn put_snapshot(
        &self,
        id: &CampaignId,
        snapshot: &MetricSnapshot,
    ) -> Result<bool, StoreError>;
    /// Snapshots, by day.
    async fn snapshots(&self, id: &CampaignId) -> Result<Vec<MetricSnapshot>, StoreError>;

    /// Campaigns in `state`, up to `limit`.
    async fn list_by_state(&self, state: State, limit: usize) -> Result<Vec<Campaign>, StoreError>;

    /// A page of the campaigns matching `filter`, in listing order (state name, then id),
    /// starting after `after`: at most `limit` (taken as 1 to
    /// [`MAX_PAGE`](crate::ports::listing::MAX_PAGE)) and read from indexes, never a scan of
    /// the store. See [`listing`](crate::ports::listing).
    async fn list(
        &self,
        filter: &CampaignFilter,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<CampaignPage, StoreError>;

    /// A template's sender-header override (Bronto keeps none in the message itself).
    async fn template_headers(
        &self,
        esp: EspKind,
        account: &AccountId,
        template_id: &str,
    ) -> Result<Option<SenderHeaders>, StoreError>;
    /// Sets (replaces) a template's sender-header override.
    async fn put_template_headers(
        &self,
        esp: EspKind,
        account: &AccountId,
        template_id: &str,
        headers: &SenderHeaders,
    ) -> Result<(), StoreError>;
}
