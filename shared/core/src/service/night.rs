//! The night at a glance: the campaign listing (filters and pages, `GET /campaigns`,
//! `espbridge campaigns`) and the night report of one run date (`GET /runs/{run_date}/report`).
//!
//! Both read the store's listing ([`CampaignStore::list`]), which reads indexes only. Neither
//! shows a customer: a campaign's summary carries ids, counts and its failure; rejected rows
//! appear as counts by reason.

use super::api::{ApiError, ApiService};
use crate::State;
use crate::campaign::{Campaign, Failure, MetricSnapshot};
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::listing::{CampaignFilter, Cursor, MAX_PAGE, Position, RunDate};
use crate::ports::{CampaignStore, StoreError};
use espbridge_analysis::{
    NightAudience, NightCampaign, NightFailure, NightMetrics, NightReport, build_night_report,
};
use jiff::Timestamp;
use serde::Serialize;
use std::sync::Arc;

/// The page size when none is asked for.
pub const DEFAULT_PAGE: usize = 50;
/// The most campaigns one night report holds (a night brings 20 to 200); beyond, the report
/// says it is truncated and the listing has the rest.
pub const NIGHT_REPORT_MAX: usize = 1000;
/// Metric reads of a night report run this many at a time.
const READS_AT_ONCE: usize = 8;

/// Which page of which campaigns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub filter: CampaignFilter,
    /// The `cursor` of the previous page, as given.
    pub cursor: Option<String>,
    /// 1 to [`MAX_PAGE`]; [`DEFAULT_PAGE`] when `None`.
    pub limit: Option<usize>,
}

/// A campaign's audience counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudienceCounts {
    pub rows: u64,
    pub valid: u64,
    pub rejected: u64,
    pub uploaded: u64,
    pub not_in_esp: u64,
    pub esp_rejected: u64,
}

/// One campaign of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignSummary {
    pub campaign_id: CampaignId,
    pub run_date: String,
    pub esp: Option<EspKind>,
    pub account: Option<AccountId>,
    pub state: State,
    pub template_id: String,
    pub send_at: Option<Timestamp>,
    pub audience: AudienceCounts,
    pub failure: Option<Failure>,
    /// Why a campaign ended as it did when that is worth saying (completed without figures).
    pub note: Option<String>,
    /// When the hourly sweep alerted that the campaign is stuck in its state.
    pub stuck_alerted_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

impl CampaignSummary {
    pub fn of(c: &Campaign) -> Self {
        let a = &c.audience;
        Self {
            campaign_id: c.id.clone(),
            run_date: c.run_date.clone(),
            esp: c.esp,
            account: c.account.clone(),
            state: c.state,
            template_id: c.template_id.clone(),
            send_at: c.send_at,
            audience: AudienceCounts {
                rows: a.rows,
                valid: a.valid,
                rejected: a.rejected,
                uploaded: a.uploaded,
                not_in_esp: a.not_in_esp,
                esp_rejected: a.esp_rejected,
            },
            failure: c.failure.clone(),
            note: c.note.clone(),
            stuck_alerted_at: c
                .sweep
                .as_ref()
                .filter(|m| m.state == c.state)
                .and_then(|m| m.alerted_at),
            updated_at: c.updated_at,
        }
    }
}

/// A page of the listing: `cursor` is `null` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignList {
    pub campaigns: Vec<CampaignSummary>,
    pub cursor: Option<Cursor>,
}

impl ApiService {
    /// [`list`] on this service's store.
    pub async fn list_campaigns(&self, req: &ListRequest) -> Result<CampaignList, ApiError> {
        list(self.store.as_ref(), req).await
    }

    /// [`night_report`] on this service's store.
    pub async fn night_report(&self, run_date: &RunDate) -> Result<NightReport, StoreError> {
        night_report(&self.store, run_date).await
    }
}

/// One page of the campaigns matching the request's filter, in listing order (state, then
/// id). A cursor that is malformed or belongs to other filters is refused.
pub async fn list(store: &dyn CampaignStore, req: &ListRequest) -> Result<CampaignList, ApiError> {
    let limit = req.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidLimit(limit));
    }
    let after = req
        .cursor
        .as_deref()
        .map(|c| Cursor::parse(&req.filter, c))
        .transpose()?;
    let page = store.list(&req.filter, after.as_ref(), limit).await?;
    Ok(CampaignList {
        campaigns: page.campaigns.iter().map(CampaignSummary::of).collect(),
        cursor: page.next.map(|p| Cursor::new(&req.filter, &p)),
    })
}

/// Every campaign of `run_date` (up to [`NIGHT_REPORT_MAX`]) with its latest metrics, failures
/// first.
pub async fn night_report(
    store: &Arc<dyn CampaignStore>,
    run_date: &RunDate,
) -> Result<NightReport, StoreError> {
    let (campaigns, truncated) = night_campaigns(store.as_ref(), run_date).await?;
    let mut rows = Vec::with_capacity(campaigns.len());
    for chunk in campaigns.chunks(READS_AT_ONCE) {
        let reads: Vec<_> = chunk
            .iter()
            .map(|c| {
                let store = Arc::clone(store);
                let (id, polled) = (c.id.clone(), was_sent(c));
                tokio::spawn(async move {
                    if polled {
                        store.snapshots(&id).await
                    } else {
                        Ok(Vec::new())
                    }
                })
            })
            .collect();
        for (c, read) in chunk.iter().zip(reads) {
            let snaps = read.await.map_err(|e| {
                StoreError::Backend(
                    crate::ports::BackendError::transient("snapshots", "the read task stopped")
                        .with_source(e),
                )
            })??;
            rows.push(night_campaign(c, &snaps));
        }
    }
    Ok(build_night_report(run_date.as_str(), rows, truncated))
}

/// The campaigns of a night, page by page, and whether there were more than the report holds.
async fn night_campaigns(
    store: &dyn CampaignStore,
    run_date: &RunDate,
) -> Result<(Vec<Campaign>, bool), StoreError> {
    let filter = CampaignFilter {
        run_date: Some(run_date.clone()),
        ..Default::default()
    };
    let mut out: Vec<Campaign> = Vec::new();
    let mut after: Option<Position> = None;
    // Each page moves forward or ends the listing; the bound stops a store that did neither.
    for _ in 0..NIGHT_REPORT_MAX {
        let page = store.list(&filter, after.as_ref(), MAX_PAGE).await?;
        out.extend(page.campaigns);
        if out.len() >= NIGHT_REPORT_MAX {
            let more = out.len() > NIGHT_REPORT_MAX || page.next.is_some();
            out.truncate(NIGHT_REPORT_MAX);
            return Ok((out, more));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok((out, false)),
        }
    }
    Ok((out, true))
}

/// Whether the campaign may have metrics: it got as far as booking a send.
fn was_sent(c: &Campaign) -> bool {
    !matches!(
        c.state,
        State::Received | State::Uploading | State::AudienceReady
    )
}

fn night_campaign(c: &Campaign, snaps: &[MetricSnapshot]) -> NightCampaign {
    let a = &c.audience;
    NightCampaign {
        campaign_id: c.id.to_string(),
        esp: c.esp.map(|e| e.as_str().to_owned()),
        account: c.account.as_ref().map(|a| a.to_string()),
        state: c.state.to_string(),
        send_at: c.send_at.map(|t| t.to_string()),
        failure: c.failure.as_ref().map(|f| NightFailure {
            step: f.step.clone(),
            reason: f.reason.clone(),
            at: f.at.to_string(),
        }),
        audience: NightAudience {
            rows: a.rows,
            valid: a.valid,
            rejected: a.rejected,
            uploaded: a.uploaded,
            not_in_esp: a.not_in_esp,
            esp_rejected: a.esp_rejected,
        },
        rejected_by_reason: a.rejected_by_reason.clone(),
        metrics: snaps.iter().max_by_key(|s| s.day).map(|s| {
            let m = &s.counts;
            NightMetrics::new(
                s.day,
                [
                    m.sent,
                    m.delivered,
                    m.opens,
                    m.clicks,
                    m.unsubscribes,
                    m.bounces,
                ],
            )
        }),
    }
}
