//! Conversions attribution: a conversions file arrives in the drop bucket; the campaigns it
//! concerns get their per-group conversion totals recomputed.
//!
//! The file layout and row rules are in [`crate::conversions`] (the contract). Here:
//!
//! 1. Which campaigns: a by-campaign file concerns its campaign; a by-date file every campaign in
//!    `scheduled`, `collecting` or `completed` whose send time falls in the date window. Only
//!    campaigns in those states are attributed. A by-campaign file whose campaign does not exist
//!    or has not been scheduled yet is logged and acknowledged, and recorded nowhere: drop it
//!    again (a new version) once the campaign is scheduled.
//! 2. Per campaign, the sources are every conversions file recorded before (`key#etag` in
//!    [`ConversionStats::sources`]) plus the new one. A source whose key and tag are already
//!    recorded is a redelivery: nothing changes. A new tag for a recorded key replaces it (the
//!    file was overwritten). ALL sources are re-read into one map, customer-id hash
//!    ([`Assigner::control_key`]) → summed amount of the rows inside the window, so a customer
//!    converting twice, or in two files, is one converter with the summed revenue. A customer
//!    with rows in the window is a converter even when their amounts sum to 0.
//! 3. The campaign's valid audience rows are re-read (the pinned file versions, skipping the
//!    lines its rejects report lists) and each is assigned with the upload's own rule
//!    (the upload's [`Assigner`]): the group is the variant's name (`all` without variants) or
//!    `control` for the held-out. No id is stored: the groups are recomputed every time.
//!    Control-group FILE ids that are not in the audience are control customers too.
//! 4. Per group: customers, converters, revenue and the sum of squared per-customer revenue,
//!    saved in [`ConversionStats`] with a conditional write, recomputed on a version conflict.
//!
//! Bad rows are counted, with up to [`REJECT_SAMPLES`] samples (file key, line, reason). A file
//! whose header lacks a required column contributes nothing and is recorded as one rejected
//! entry at line 1 naming the file and the column. Logs carry counts and campaign ids only.
//!
//! UNCERTAIN: recorded sources are re-read at their current version (not pinned to the
//! recorded tag), and the tag actually read is what gets recorded; a recorded source that no
//! longer exists is dropped from the sources with a sample saying so. Sources are read from the
//! bucket the event names (the drop bucket), recorded ones from the campaign's drop bucket.

use super::common::{ServiceError, chain, load, stored_manifest};
use super::drop_files::DropFiles;
use crate::audience::assign::{Assigner, Group};
use crate::audience::read::{Event, Flow};
use crate::audience::scan::{CsvScanner, Step};
use crate::campaign::{Campaign, ConversionStats, GroupConversionTotals, RejectSample, State};
use crate::clock::Clock;
use crate::conversions::{
    CONVERSIONS_WINDOW_DAYS, ConversionsHeader, ConversionsPath, in_window, parse_row,
    sent_in_date_window,
};
use crate::ids::CampaignId;
use crate::manifest::DropPath;
use crate::ports::{
    AudienceSource, BackendError, CampaignStore, ObjectRef, SourceError, StoreError,
};
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Rejected rows kept in the record as samples.
pub const REJECT_SAMPLES: usize = 20;
/// States whose campaigns receive conversions.
pub const ATTRIBUTED_STATES: [State; 3] = [State::Scheduled, State::Collecting, State::Completed];
/// Group key of the held-out customers.
pub const CONTROL_GROUP: &str = "control";
/// Group key of a campaign without variants.
pub const ALL_GROUP: &str = "all";
/// Most campaigns listed per state when matching a by-date file.
const LIST_LIMIT: usize = 10_000;
/// Conditional-write attempts before giving up on a busy record.
const SAVE_ATTEMPTS: usize = 5;
const READ_CHUNK: usize = 256 * 1024;

/// What became of a conversions file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversionOutcome {
    /// These campaigns' totals were recomputed; `unchanged` had the file already (redelivery);
    /// `failed` could not be recomputed for a reason a retry would not fix (their audience or
    /// control-group file is gone or changed, say), logged with the campaign id.
    Attributed {
        updated: Vec<CampaignId>,
        unchanged: Vec<CampaignId>,
        failed: Vec<CampaignId>,
    },
    /// Not attributed anywhere, and why.
    Ignored(String),
}

/// The conversions attribution and the ports it needs: the campaign store, the drop bucket and
/// the clock (no ESP: conversions come from the segmentation engine).
#[derive(Clone)]
pub struct ConversionsService {
    pub store: Arc<dyn CampaignStore>,
    pub source: Arc<dyn AudienceSource>,
    pub clock: Arc<dyn Clock>,
}

impl ConversionsService {
    /// Attributes a conversions file to the campaigns it concerns.
    pub async fn attribute_conversions(
        &self,
        obj: &ObjectRef,
    ) -> Result<ConversionOutcome, ServiceError> {
        let Some(path) = ConversionsPath::parse(&obj.key) else {
            return Ok(ConversionOutcome::Ignored(format!(
                "{}: not a conversions file",
                obj.key
            )));
        };
        let ids = match self.concerned_campaigns(&path).await? {
            Ok(ids) => ids,
            Err(why) => {
                tracing::warn!(key = %obj.key, reason = %why, "conversions file not attributed");
                return Ok(ConversionOutcome::Ignored(why));
            }
        };
        let mut updated = Vec::new();
        let mut unchanged = Vec::new();
        let mut failed = Vec::new();
        for id in ids {
            match self.attribute_to(&id, obj).await {
                Ok(true) => updated.push(id),
                Ok(false) => unchanged.push(id),
                // A retry (the redelivered event) would fail the same way: acknowledge.
                Err(e) if !e.is_retryable() => {
                    tracing::error!(campaign_id = %id, key = %obj.key, error = %chain(&e), "conversions not attributed");
                    failed.push(id);
                }
                Err(e) => return Err(e),
            }
        }
        tracing::info!(key = %obj.key, updated = updated.len(), unchanged = unchanged.len(),
            failed = failed.len(), "conversions file attributed");
        Ok(ConversionOutcome::Attributed {
            updated,
            unchanged,
            failed,
        })
    }

    /// The campaigns a file concerns, or why there are none.
    async fn concerned_campaigns(
        &self,
        path: &ConversionsPath,
    ) -> Result<Result<Vec<CampaignId>, String>, ServiceError> {
        match path {
            ConversionsPath::ByCampaign {
                run_date,
                campaign_id,
            } => {
                let Some(c) = self.store.get(campaign_id).await? else {
                    return Ok(Err(format!("campaign {campaign_id} does not exist")));
                };
                if &c.run_date != run_date {
                    return Ok(Err(format!(
                        "campaign {campaign_id} is of run date {}, not {run_date}",
                        c.run_date
                    )));
                }
                if !ATTRIBUTED_STATES.contains(&c.state) {
                    return Ok(Err(format!(
                        "campaign {campaign_id} is {}, not scheduled yet",
                        c.state
                    )));
                }
                Ok(Ok(vec![c.id]))
            }
            ConversionsPath::ByDate { date } => {
                let mut ids = Vec::new();
                for state in ATTRIBUTED_STATES {
                    for c in self.store.list_by_state(state, LIST_LIMIT).await? {
                        if c.send_at.is_some_and(|t| sent_in_date_window(t, *date)) {
                            ids.push(c.id);
                        }
                    }
                }
                if ids.is_empty() {
                    return Ok(Err(format!("no campaign was sent in the window of {date}")));
                }
                ids.sort();
                Ok(Ok(ids))
            }
        }
    }

    /// Recomputes one campaign's totals with `obj` among its sources; false when `obj` was
    /// already recorded. Retries on a version conflict with the record re-read.
    async fn attribute_to(&self, id: &CampaignId, obj: &ObjectRef) -> Result<bool, ServiceError> {
        let source = source_entry(&obj.key, &obj.etag);
        for _ in 0..SAVE_ATTEMPTS {
            let mut c = load(self.store.as_ref(), id).await?;
            let recorded = c
                .conversions
                .as_ref()
                .map(|s| s.sources.clone())
                .unwrap_or_default();
            if recorded.contains(&source) {
                tracing::info!(campaign_id = %id, "conversions file already attributed");
                return Ok(false);
            }
            let mut keys: Vec<String> = recorded
                .iter()
                .filter_map(|s| s.rsplit_once('#').map(|(k, _)| k.to_owned()))
                .filter(|k| k != &obj.key)
                .collect();
            keys.push(obj.key.clone());
            let stats = self.conversion_stats(&c, &obj.bucket, &keys).await?;
            tracing::info!(campaign_id = %id, rows = stats.rows, in_window = stats.rows_in_window,
                rejected = stats.rejected, sources = stats.sources.len(), "conversions computed");
            c.conversions = Some(stats);
            c.updated_at = self.clock.now();
            match self.store.save(&c).await {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Contended(id.clone()))
    }

    /// Reads every source, then the audience, into the campaign's totals.
    async fn conversion_stats(
        &self,
        c: &Campaign,
        bucket: &str,
        keys: &[String],
    ) -> Result<ConversionStats, ServiceError> {
        let send_at = c
            .send_at
            .ok_or_else(|| ServiceError::NoSendTime(c.id.clone()))?;
        let mut read = SourceRead::new(send_at);
        let mut sources = Vec::new();
        for key in keys {
            match self.read_source(bucket, key, &mut read).await {
                Ok(etag) => sources.push(source_entry(key, &etag)),
                Err(ServiceError::Source(SourceError::NotFound { .. })) => {
                    tracing::warn!(campaign_id = %c.id, key = %key, "conversions file no longer exists; left out");
                    read.reject(key, 1, "file no longer exists; left out".into());
                }
                Err(e) => return Err(e),
            }
        }
        let groups = self.group_totals(c, &read.by_customer).await?;
        Ok(ConversionStats {
            sources,
            window_days: CONVERSIONS_WINDOW_DAYS,
            rows: read.rows,
            rows_in_window: read.rows_in_window,
            rejected: read.rejected,
            reject_samples: read.samples,
            groups,
            computed_at: Some(self.clock.now()),
        })
    }

    /// Streams one conversions file into `read`; returns the version read. A header lacking a
    /// required column is recorded as a rejected entry at line 1, not an error.
    async fn read_source(
        &self,
        bucket: &str,
        key: &str,
        read: &mut SourceRead,
    ) -> Result<String, ServiceError> {
        let (stream, etag) = self.source.open(bucket, key, None).await?;
        let mut stream = crate::audience::read::decoded(
            key,
            stream,
            &crate::audience::read::AudienceLimits::default(),
        );
        let mut scanner = CsvScanner::new();
        let mut header: Option<ConversionsHeader> = None;
        let mut buf = vec![0u8; READ_CHUNK];
        let io = |e: std::io::Error| {
            ServiceError::Source(SourceError::backend(key, BackendError::io("read", e)))
        };
        loop {
            loop {
                match scanner.next_step() {
                    Step::NeedMore => break,
                    Step::End => {
                        if header.is_none() {
                            read.unreadable(key, "empty file (no header row)".into());
                        }
                        return Ok(etag);
                    }
                    Step::Bad { line, reason } => {
                        if header.is_none() {
                            read.unreadable(key, format!("unreadable header: {}", reason.as_str()));
                            return Ok(etag);
                        }
                        read.rows += 1;
                        read.reject(key, line, reason.as_str().to_owned());
                    }
                    Step::Record(rec) => {
                        let Some(h) = &header else {
                            let names: Vec<&str> =
                                (0..rec.len()).filter_map(|i| rec.field(i)).collect();
                            match ConversionsHeader::new(&names) {
                                Ok(h) => header = Some(h),
                                Err(e) => {
                                    read.unreadable(key, e.to_string());
                                    return Ok(etag);
                                }
                            }
                            continue;
                        };
                        read.rows += 1;
                        match parse_row(&rec, h) {
                            Ok(row) => read.add(row.customer_id, row.amount, row.at),
                            Err(e) => read.reject(key, rec.line, e.to_string()),
                        }
                    }
                }
            }
            let n = stream.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                scanner.finish();
            } else {
                scanner.push(&buf[..n]);
            }
        }
    }

    /// Scans the campaign's valid audience rows and totals each group's conversions.
    async fn group_totals(
        &self,
        c: &Campaign,
        by_customer: &HashMap<u64, f64>,
    ) -> Result<BTreeMap<String, GroupConversionTotals>, ServiceError> {
        let m = stored_manifest(c)?;
        // The record was made from this key, so it parses; the manifest's own folder otherwise.
        let prefix = DropPath::parse(&c.drop.key)
            .ok()
            .flatten()
            .map(|p| p.prefix)
            .unwrap_or_else(|| super::drop_files::drop_prefix(&c.drop.key));
        let names: Vec<String> = if c.variants.is_empty() {
            vec![ALL_GROUP.to_owned()]
        } else {
            c.variants.iter().map(|v| v.name.clone()).collect()
        };
        let mut groups: BTreeMap<String, GroupConversionTotals> = names
            .iter()
            .map(|n| (n.clone(), GroupConversionTotals::default()))
            .collect();
        if c.control.is_some() {
            groups.insert(CONTROL_GROUP.to_owned(), Default::default());
        }
        // The drop passed validation with the deployment's limits; the defaults are at least as
        // wide for every file that did.
        let files = DropFiles {
            source: self.source.as_ref(),
            limits: crate::audience::read::AudienceLimits::default(),
        };
        let assigner = files.assigner(c, &m).await?;
        let control_file = m.control_group.as_ref().and_then(|g| g.file.as_deref());
        let mut control_ids = match control_file {
            Some(file) => {
                files
                    .control_ids(c, file, &m.audience.columns.customer_id)
                    .await?
            }
            None => HashSet::new(),
        };
        let mut scan = files.valid_rows(c, &m, &prefix).await?;
        scan.run(&mut |ev| {
            if let Event::Row(r) = ev {
                let hash = Assigner::control_key(r.customer_id);
                // What is left afterwards are the file's ids outside the audience.
                control_ids.remove(&hash);
                let name = match assigner.assign(r.customer_id) {
                    Group::Holdout => CONTROL_GROUP,
                    Group::Variant(i) => names.get(i).map(String::as_str).unwrap_or(ALL_GROUP),
                };
                count(
                    groups.entry(name.to_owned()).or_default(),
                    by_customer.get(&hash),
                );
            }
            Flow::Continue
        })
        .await?;
        if !control_ids.is_empty() {
            let control = groups.entry(CONTROL_GROUP.to_owned()).or_default();
            for hash in &control_ids {
                count(control, by_customer.get(hash));
            }
        }
        Ok(groups)
    }
}

/// A recorded source, `key#etag`. S3 quotes the ETag it returns on reads but not the one in
/// its event notifications, so the quotes are dropped for both to compare equal.
fn source_entry(key: &str, etag: &str) -> String {
    format!("{key}#{}", etag.trim_matches('"'))
}

/// Adds one customer, with their summed conversions if any, to a group.
fn count(g: &mut GroupConversionTotals, revenue: Option<&f64>) {
    g.customers += 1;
    if let Some(r) = revenue {
        g.converters += 1;
        g.revenue += r;
        g.revenue_sq += r * r;
    }
}

/// The sources read so far for one campaign.
struct SourceRead {
    send_at: Timestamp,
    by_customer: HashMap<u64, f64>,
    rows: u64,
    rows_in_window: u64,
    rejected: u64,
    samples: Vec<RejectSample>,
}

impl SourceRead {
    fn new(send_at: Timestamp) -> Self {
        Self {
            send_at,
            by_customer: HashMap::new(),
            rows: 0,
            rows_in_window: 0,
            rejected: 0,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, customer_id: &str, amount: f64, at: Timestamp) {
        if in_window(self.send_at, at) {
            self.rows_in_window += 1;
            *self
                .by_customer
                .entry(Assigner::control_key(customer_id))
                .or_default() += amount;
        }
    }

    fn reject(&mut self, file: &str, line: u64, reason: String) {
        self.rejected += 1;
        if self.samples.len() < REJECT_SAMPLES {
            self.samples.push(RejectSample {
                file: file.to_owned(),
                line,
                reason,
            });
        }
    }

    /// A file that cannot be read at all: one rejected entry at line 1, and a log line.
    fn unreadable(&mut self, file: &str, reason: String) {
        tracing::warn!(key = %file, reason = %reason, "conversions file unreadable");
        self.reject(file, 1, reason);
    }
}
