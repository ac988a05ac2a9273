//! A store whose record writes run a hook first: slow writes, writes that fail, writes watched
//! while other work goes on (the upload's pipelining tests and benchmarks).

use crate::campaign::{Campaign, MetricSnapshot, RunRecord, State};
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::esp::SenderHeaders;
use crate::ports::listing::{CampaignFilter, CampaignPage, Position};
use crate::ports::source::ObjectRef;
use crate::ports::store::{CampaignStore, Created, StoreError};
use async_trait::async_trait;
use std::future::Future;
use std::pin::Pin;

/// What runs before each [`CampaignStore::save`]: an error fails the save without writing.
pub type SaveHook = Box<
    dyn Fn(&Campaign) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>> + Send + Sync,
>;

/// `inner`, with `hook` run ahead of every save; every other call goes straight to `inner`.
pub struct HookedStore<S> {
    pub inner: S,
    pub hook: SaveHook,
}

impl<S> HookedStore<S> {
    pub fn new(inner: S, hook: SaveHook) -> Self {
        Self { inner, hook }
    }

    /// Every save takes `delay` more (a remote conditional write's round trip).
    pub fn slow(inner: S, delay: std::time::Duration) -> Self {
        Self::new(
            inner,
            Box::new(move |_| {
                Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    Ok(())
                })
            }),
        )
    }
}

#[async_trait]
impl<S: CampaignStore> CampaignStore for HookedStore<S> {
    async fn create_from_drop(
        &self,
        drop: &ObjectRef,
        campaign: &Campaign,
    ) -> Result<Created, StoreError> {
        self.inner.create_from_drop(drop, campaign).await
    }
    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, StoreError> {
        self.inner.get(id).await
    }
    async fn save(&self, next: &Campaign) -> Result<Campaign, StoreError> {
        (self.hook)(next).await?;
        self.inner.save(next).await
    }
    async fn add_run(&self, id: &CampaignId, run: &RunRecord) -> Result<(), StoreError> {
        self.inner.add_run(id, run).await
    }
    async fn runs(&self, id: &CampaignId) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.runs(id).await
    }
    async fn put_snapshot(
        &self,
        id: &CampaignId,
        snapshot: &MetricSnapshot,
    ) -> Result<bool, StoreError> {
        self.inner.put_snapshot(id, snapshot).await
    }
    async fn snapshots(&self, id: &CampaignId) -> Result<Vec<MetricSnapshot>, StoreError> {
        self.inner.snapshots(id).await
    }
    async fn list_by_state(&self, state: State, limit: usize) -> Result<Vec<Campaign>, StoreError> {
        self.inner.list_by_state(state, limit).await
    }
    async fn list(
        &self,
        filter: &CampaignFilter,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<CampaignPage, StoreError> {
        self.inner.list(filter, after, limit).await
    }
    async fn template_headers(
        &self,
        esp: EspKind,
        account: &AccountId,
        template_id: &str,
    ) -> Result<Option<SenderHeaders>, StoreError> {
        self.inner.template_headers(esp, account, template_id).await
    }
    async fn put_template_headers(
        &self,
        esp: EspKind,
        account: &AccountId,
        template_id: &str,
        headers: &SenderHeaders,
    ) -> Result<(), StoreError> {
        self.inner
            .put_template_headers(esp, account, template_id, headers)
            .await
    }
}
