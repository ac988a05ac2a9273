//! The [`Esp`] implementation: templates, the campaign's audience (a contact list in Lists mode;
//! relational rows and a query, counted, in Relational Tables mode), the scheduled mailing and
//! its aggregate tracking.

use crate::bulk::Bulk;
use crate::client::Client;
use crate::config::{AudienceMode, SilverpopConfig, SilverpopCredentials};
use crate::wire::{
    self, AggregateTracking, Criteria, Fault, JobStatus, ListRow, MailingTemplate, PreviewResult,
    RowFailure, SentMailing,
};
use async_trait::async_trait;
use espbridge_core::ports::esp::{CannotCancel, object_name};
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, BatchJob, BatchOutcome, Esp, EspError, EspIds,
    FinishedAudience, MetricCounts, Preview, RowError, SendRequest, Template,
};
use espbridge_core::{AccountId, CampaignId, Clock, EspKind};
use espbridge_esp_kit::{AdapterError, BuildContext};
use futures::stream::{self, StreamExt};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;

const ESP: EspKind = EspKind::Silverpop;

/// Keys of the [`EspIds`] this adapter returns.
pub mod keys {
    /// `lists` or `relational_table`.
    pub const MODE: &str = "silverpop_mode";
    /// The campaign's ActionID (Relational Tables mode).
    pub const TAG: &str = "silverpop_tag";
    /// The campaign's contact list (Lists mode).
    pub const CONTACT_LIST_ID: &str = "silverpop_contact_list_id";
    pub const TABLE_ID: &str = "silverpop_table_id";
    /// The campaign's query (Relational Tables mode).
    pub const QUERY_ID: &str = "silverpop_query_id";
    pub const MAILING_ID: &str = "silverpop_mailing_id";
    pub const MAILING_NAME: &str = "silverpop_mailing_name";
    /// The send time, RFC 3339 with the offset of the account's zone (records written before
    /// carry UTC `Z`; both are read), used to bound GetSentMailingsForOrg.
    pub const SEND_AT: &str = "silverpop_send_at";
}

/// Column of the relational table holding the campaign's ActionID.
pub const ACTION_ID_COLUMN: &str = "ActionID";

/// The import speed `upload_pace` assumes (what `espbridge check` estimates with): Silverpop
/// publishes none (UNCERTAIN); the simulator's default.
pub const ASSUMED_IMPORT_ROWS_PER_SEC: f64 = 5_000.0;

/// One Engage account.
pub struct SilverpopEsp {
    config: SilverpopConfig,
    tz: TimeZone,
    client: Client,
    clock: Arc<dyn Clock>,
    /// The bulk import, when the account has `sftp` settings.
    bulk: Option<Bulk>,
}

fn invalid(detail: impl Into<String>) -> EspError {
    EspError::Invalid {
        esp: ESP,
        detail: detail.into(),
    }
}

fn protocol(detail: impl Into<String>) -> EspError {
    EspError::Protocol {
        esp: ESP,
        detail: detail.into(),
    }
}

/// The ActionID / tag of a campaign (variant): the campaign id, `_variant` appended.
pub fn action_id(campaign_id: &CampaignId, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("{campaign_id}_{v}"),
        None => campaign_id.to_string(),
    }
}

impl SilverpopEsp {
    pub fn new(
        config: SilverpopConfig,
        credentials: SilverpopCredentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError> {
        let clock = Arc::clone(&ctx.clock);
        config.validate()?;
        let tz = TimeZone::get(&config.timezone).map_err(|e| AdapterError::Config {
            esp: ESP,
            field: "timezone",
            detail: e.to_string(),
        })?;
        let bulk = Bulk::new(&config, &credentials)?;
        let client = Client::new(&config, credentials, Arc::clone(&ctx.limits))?;
        Ok(Self {
            config,
            tz,
            client,
            clock,
            bulk,
        })
    }

    /// The number of requests in flight this adapter settled on: `max_concurrent`, or less
    /// after Silverpop refused concurrent requests (see the crate docs).
    pub fn concurrency(&self) -> usize {
        self.client.settled_concurrency()
    }

    /// Logins this adapter made so far.
    pub fn logins(&self) -> u64 {
        self.client.logins()
    }

    /// Whether the account has the bulk import (`sftp` settings).
    pub fn has_bulk_import(&self) -> bool {
        self.bulk.is_some()
    }

    /// The mode a manifest asks for in `esp_options.silverpop.mode`, or the account default.
    pub fn mode_from_options(&self, options: &serde_json::Value) -> Result<AudienceMode, EspError> {
        match options.get("mode") {
            None | Some(serde_json::Value::Null) => Ok(self.config.mode),
            Some(serde_json::Value::String(s)) => AudienceMode::parse(s)
                .ok_or_else(|| invalid(format!("esp_options.silverpop.mode {s:?} is unknown"))),
            Some(_) => Err(invalid("esp_options.silverpop.mode must be a string")),
        }
    }

    /// [`Esp::create_audience`] in a chosen mode (the manifest's, or the account's). Lists mode
    /// finds (a retry) or creates the campaign's contact list; Relational Tables mode makes
    /// nothing yet (the query is built once the rows are in).
    pub async fn create_audience_in_mode(
        &self,
        campaign_id: &CampaignId,
        variant: Option<&str>,
        mode: AudienceMode,
    ) -> Result<EspIds, EspError> {
        let ids = EspIds::default().with(keys::MODE, mode.as_str());
        match mode {
            AudienceMode::Lists => {
                if self.config.database_id.is_empty() {
                    return Err(invalid("account has no database_id"));
                }
                let name = object_name(campaign_id, variant);
                let found = self.find_contact_list(&name).await;
                let list_id = match found {
                    Ok(Some(id)) => {
                        tracing::info!(esp = "silverpop", campaign = %campaign_id, "contact list found");
                        Ok(id)
                    }
                    Ok(None) => self.create_contact_list(&name).await,
                    Err(e) => Err(e),
                };
                self.client.logout_if_idle().await;
                Ok(ids.with(keys::CONTACT_LIST_ID, list_id?))
            }
            AudienceMode::RelationalTable => {
                let table = self
                    .config
                    .relational_table_id
                    .as_deref()
                    .ok_or_else(|| invalid("account has no relational_table_id"))?;
                Ok(ids
                    .with(keys::TAG, action_id(campaign_id, variant))
                    .with(keys::TABLE_ID, table))
            }
        }
    }

    fn mode_of(ids: &EspIds) -> Result<AudienceMode, EspError> {
        let m = ids.require(ESP, keys::MODE)?;
        AudienceMode::parse(m).ok_or_else(|| invalid(format!("unknown audience mode {m:?}")))
    }

    /// The shared contact list named `name`, if GetLists (LIST_TYPE 18) shows one.
    async fn find_contact_list(&self, name: &str) -> Result<Option<String>, EspError> {
        let r = self
            .client
            .call("GetLists", wire::get_contact_lists())
            .await?;
        Ok(ListRow::list(&r)
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.id))
    }

    async fn create_contact_list(&self, name: &str) -> Result<String, EspError> {
        let op = wire::create_contact_list(
            &self.config.database_id,
            name,
            &self.config.contact_list_folder,
        );
        let r = self.client.call("CreateContactList", op).await?;
        let id = r
            .child_text("CONTACT_LIST_ID")
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| protocol("CreateContactList answer has no CONTACT_LIST_ID"))?;
        tracing::info!(esp = "silverpop", "contact list created");
        Ok(id.trim().to_owned())
    }

    /// Lists mode: adds each contact to the campaign's contact list (AddContactToContactList by
    /// the customer-id key field: one call per contact, all the API offers), as many at once as
    /// the request slots held for the batch allow. A contact the database does not have is
    /// counted as not in the ESP (nothing is created); another refusal is a row error.
    async fn upload_lists(
        &self,
        list_id: &str,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError> {
        let key = self.config.customer_id_field.as_str();
        let client = &self.client;
        let run = client.hold_slots(self.config.max_concurrent).await?;
        let held = &run;
        let ops: Vec<_> = batch
            .contacts
            .iter()
            .map(|c| wire::add_contact_to_contact_list(list_id, key, &c.customer_id))
            .collect();
        let calls = ops.into_iter().enumerate().map(|(index, op)| async move {
            (
                index,
                client.call_held(held, "AddContactToContactList", op).await,
            )
        });
        let mut results = stream::iter(calls).buffer_unordered(held.width());
        let mut outcome = BatchOutcome::default();
        let mut failed = None;
        while let Some((index, r)) = results.next().await {
            match r {
                Ok(Ok(_)) => outcome.accepted += 1,
                Ok(Err(f)) if contact_not_found(&self.config.contact_not_found_errorids, &f) => {
                    outcome.not_in_esp += 1
                }
                Ok(Err(f)) => {
                    let code = f
                        .errorid
                        .map_or_else(|| "none".to_owned(), |id| id.to_string());
                    outcome.row_errors.push(RowError {
                        index,
                        code,
                        reason: redact(&f.text, batch.contacts.get(index)),
                    });
                }
                // The first call that could not be made ends the batch (the calls still in
                // flight are dropped; the batch is sent again whole, and a list adds nobody
                // twice): the rest would only meet the same wait.
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(results);
        run.release().await;
        if let Some(e) = failed {
            return Err(e);
        }
        outcome.row_errors.sort_by_key(|r| r.index);
        tracing::info!(
            esp = "silverpop",
            contacts = batch.contacts.len(),
            not_in_esp = outcome.not_in_esp,
            rejected = outcome.row_errors.len(),
            concurrency = client.settled_concurrency(),
            concurrency_refusals = client.concurrency_refusals(),
            logins = client.logins(),
            "contacts added to the contact list"
        );
        Ok(outcome)
    }

    /// How many contacts the query selects now: CalculateQuery, GetJobStatus until the job is
    /// COMPLETE, then the query's SIZE from GetListMetaData. `None` when Silverpop refuses the
    /// calculation (it allows one per query every 12 hours, so a retried step may be refused):
    /// the unknown ids then go uncounted rather than the campaign failing.
    async fn query_size(&self, query_id: &str) -> Result<Option<u64>, EspError> {
        let job = match self
            .client
            .call("CalculateQuery", wire::calculate_query(query_id))
            .await
        {
            Ok(r) => r
                .child_text("JOB_ID")
                .map(|j| j.trim().to_owned())
                .filter(|j| !j.is_empty())
                .ok_or_else(|| protocol("CalculateQuery answer has no JOB_ID"))?,
            Err(EspError::Api {
                code,
                retryable: false,
                ..
            }) => {
                tracing::warn!(esp = "silverpop", errorid = %code, "CalculateQuery refused; ids unknown to the database go uncounted");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let interval = Duration::from_millis(self.config.job_poll_interval_ms);
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.config.job_timeout_secs);
        loop {
            let r = self
                .client
                .call("GetJobStatus", wire::get_job_status(&job))
                .await?;
            match JobStatus::from_result(&r) {
                Some(JobStatus::Complete) => break,
                Some(s @ (JobStatus::Error | JobStatus::Canceled)) => {
                    return Err(EspError::Transient {
                        esp: ESP,
                        detail: format!("the query's size calculation ended {s:?}"),
                    });
                }
                // WAITING, RUNNING, or a status the reference does not list.
                _ => {}
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err(EspError::Transient {
                    esp: ESP,
                    detail: format!(
                        "the query's size calculation still runs after {} s",
                        self.config.job_timeout_secs
                    ),
                });
            }
            tokio::time::sleep(interval).await;
        }
        let r = self
            .client
            .call("GetListMetaData", wire::get_list_meta_data(query_id))
            .await?;
        wire::list_size(&r)
            .map(Some)
            .ok_or_else(|| protocol("GetListMetaData answer has no SIZE"))
    }

    /// Relational Tables mode: rows of (ActionID, customer id, fields) in calls of
    /// `rows_per_call`; FAILURES are matched back to rows by customer id.
    async fn upload_relational(
        &self,
        table_id: &str,
        action: &str,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError> {
        let mut outcome = BatchOutcome::default();
        let key = self.config.customer_id_field.as_str();
        for (chunk_no, chunk) in batch.contacts.chunks(self.config.rows_per_call).enumerate() {
            let offset = chunk_no * self.config.rows_per_call;
            let rows = chunk
                .iter()
                .map(|c| {
                    let mut cols: Vec<(&str, &str)> =
                        vec![(ACTION_ID_COLUMN, action), (key, c.customer_id.as_str())];
                    cols.extend(
                        batch
                            .field_names
                            .iter()
                            .map(String::as_str)
                            .zip(c.fields.iter().map(String::as_str)),
                    );
                    wire::relational_row(&cols)
                })
                .collect();
            let result = self
                .client
                .call(
                    "InsertUpdateRelationalTable",
                    wire::insert_update_relational_table(table_id, rows),
                )
                .await?;
            let failures = RowFailure::list(&result);
            let mut taken = vec![false; chunk.len()];
            for f in &failures {
                let pos = f.column(key).and_then(|id| {
                    chunk
                        .iter()
                        .enumerate()
                        .position(|(i, c)| !taken[i] && c.customer_id == id)
                });
                // A failure naming no row of ours still counts against the batch.
                let i = pos.or_else(|| taken.iter().position(|t| !t)).unwrap_or(0);
                if let Some(t) = taken.get_mut(i) {
                    *t = true;
                }
                outcome.row_errors.push(RowError {
                    index: offset + i,
                    code: f.failure_type.clone(),
                    reason: f.description.clone(),
                });
            }
            let failed = failures.len().min(chunk.len());
            outcome.accepted += (chunk.len() - failed) as u64;
        }
        tracing::info!(
            esp = "silverpop",
            rows = batch.contacts.len(),
            rejected = outcome.row_errors.len(),
            concurrency = self.client.settled_concurrency(),
            concurrency_refusals = self.client.concurrency_refusals(),
            logins = self.client.logins(),
            "relational rows written"
        );
        Ok(outcome)
    }

    /// Relational Tables mode's [`Esp::finish_audience`]: the query, then its size.
    async fn finish_query(
        &self,
        campaign_id: &CampaignId,
        variant: Option<&str>,
        audience: &EspIds,
    ) -> Result<FinishedAudience, EspError> {
        let name = object_name(campaign_id, variant);
        let tag = audience.require(ESP, keys::TAG)?;
        let table_id = audience.require(ESP, keys::TABLE_ID)?;
        let query_id = match self.find_query(&name).await? {
            Some(id) => id,
            None => {
                let criteria = Criteria::Relational {
                    table_id,
                    column: ACTION_ID_COLUMN,
                    value: tag,
                };
                let op = wire::create_query(
                    &name,
                    &self.config.database_id,
                    self.config.query_folder_id.as_deref(),
                    criteria,
                );
                let r = self.client.call("CreateQuery", op).await?;
                r.child_text("ListId")
                    .ok_or_else(|| protocol("CreateQuery answer has no ListId"))?
                    .to_owned()
            }
        };
        let members = self.query_size(&query_id).await?;
        tracing::info!(esp = "silverpop", campaign = %campaign_id, ?members, "audience query ready");
        let mut ids = audience.clone();
        ids.merge(&EspIds::default().with(keys::QUERY_ID, query_id));
        Ok(FinishedAudience { ids, members })
    }

    fn local(&self, t: Timestamp, tz: &TimeZone, fmt: &str) -> String {
        tz.to_datetime(t).strftime(fmt).to_string()
    }

    /// Mailings scheduled or sent within a day of `at`.
    async fn mailings_around(&self, at: Timestamp) -> Result<Vec<SentMailing>, EspError> {
        let day = SignedDuration::from_hours(24);
        let start = at.saturating_sub(day).unwrap_or(at);
        let end = at.saturating_add(day).unwrap_or(at);
        let fmt = "%m/%d/%Y %H:%M:%S";
        let op = wire::get_sent_mailings_for_org(
            &self.local(start, &self.tz, fmt),
            &self.local(end, &self.tz, fmt),
        );
        let r = self.client.call("GetSentMailingsForOrg", op).await?;
        Ok(SentMailing::list(&r))
    }

    /// The query named `name`, if GetLists shows one. A GetLists refused as an invalid request
    /// (errorid 51: servers or simulators without it) counts as "none".
    async fn find_query(&self, name: &str) -> Result<Option<String>, EspError> {
        let r = match self
            .client
            .call(
                "GetLists",
                wire::get_queries(self.config.query_folder_id.as_deref()),
            )
            .await
        {
            Ok(r) => r,
            Err(EspError::Api { code, .. }) if code == "51" => {
                tracing::warn!(esp = "silverpop", "GetLists refused; creating the query");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(ListRow::list(&r)
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.id))
    }
}

#[async_trait]
impl Esp for SilverpopEsp {
    fn kind(&self) -> EspKind {
        ESP
    }
    fn account(&self) -> &AccountId {
        &self.config.account
    }
    /// `bulk_batch_size` with the bulk import (a batch under `bulk_import_threshold`, the
    /// audience's remainder, goes by the per-call route), else `batch_size`.
    fn max_batch(&self) -> usize {
        match self.bulk {
            Some(_) => self.config.bulk_batch_size,
            None => self.config.batch_size,
        }
    }
    /// An audience under `bulk_import_threshold` goes by the call in `batch_size` batches (each
    /// checkpointed), a larger one by the job.
    fn max_batch_for(&self, valid_rows: u64) -> usize {
        if valid_rows < self.config.bulk_import_threshold as u64 {
            self.config.batch_size
        } else {
            self.max_batch()
        }
    }
    /// With the bulk import: one job per `bulk_batch_size` rows, one at a time, each taken as
    /// its rows at [`ASSUMED_IMPORT_ROWS_PER_SEC`] plus 10 s (transfers and calls).
    /// Without, Lists mode: one `AddContactToContactList` per contact, `max_concurrent` in
    /// flight, each taken as 0.3 s; Relational Tables mode: `rows_per_call` rows a call, one
    /// at a time, each taken as 1 s. Silverpop publishes no rate.
    fn upload_pace(&self, options: &serde_json::Value) -> espbridge_core::ports::esp::UploadPace {
        let mode = self.mode_from_options(options).unwrap_or(self.config.mode);
        let batch = self.config.bulk_batch_size;
        let (rows_per_call, concurrency, call_secs) = match (mode, &self.bulk) {
            (_, Some(_)) => (batch, 1, batch as f64 / ASSUMED_IMPORT_ROWS_PER_SEC + 10.0),
            (AudienceMode::Lists, None) => (1, self.config.max_concurrent, 0.3),
            (AudienceMode::RelationalTable, None) => (self.config.rows_per_call, 1, 1.0),
        };
        espbridge_core::ports::esp::UploadPace {
            rows_per_call: rows_per_call.max(1) as u64,
            calls_per_minute: None,
            rows_per_minute: None,
            concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
            call_secs,
        }
    }
    /// One option: `mode` (`lists` or `relational_table`).
    fn check_options(&self, options: &serde_json::Value) -> Result<(), String> {
        if let Some(key) = options
            .as_object()
            .and_then(|m| m.keys().find(|k| k.as_str() != "mode"))
        {
            return Err(format!(
                "unknown option {:?} (silverpop reads only \"mode\")",
                espbridge_core::text::bounded(key, 64)
            ));
        }
        self.mode_from_options(options)
            .map(|_| ())
            .map_err(|e| match e {
                EspError::Invalid { detail, .. } => espbridge_core::text::bounded(&detail, 160),
                other => other.to_string(),
            })
    }
    /// Relational Tables mode stores the fields as table columns; a contact list holds ids.
    fn carries_fields(&self, options: &serde_json::Value) -> bool {
        matches!(
            self.mode_from_options(options),
            Ok(AudienceMode::RelationalTable)
        )
    }

    async fn list_templates(&self) -> Result<Vec<Template>, EspError> {
        let r = self
            .client
            .call("GetMailingTemplates", wire::get_mailing_templates())
            .await?;
        let mut unreadable = 0;
        let templates: Vec<Template> = MailingTemplate::list(&r)
            .into_iter()
            .filter(MailingTemplate::is_shared)
            .map(|t| {
                // The org's local time, as RFC 3339 with the account zone's offset.
                let created = t.last_modified_in(&self.tz);
                unreadable += usize::from(created.is_none() && t.last_modified.is_some());
                Template {
                    esp: ESP,
                    account: self.config.account.clone(),
                    id: t.mailing_id,
                    display_name: t.name.clone(),
                    name: t.name,
                    subject: t.subject,
                    kind: None,
                    created,
                }
            })
            .collect();
        if unreadable > 0 {
            tracing::warn!(
                esp = "silverpop",
                templates = unreadable,
                "LAST_MODIFIED not in the MM/dd/yy hh:mm a format; created left out"
            );
        }
        Ok(templates)
    }

    async fn preview(&self, template_id: &str) -> Result<Preview, EspError> {
        let r = self
            .client
            .call("PreviewMailing", wire::preview_mailing(template_id))
            .await?;
        let p = PreviewResult::from_result(&r);
        let (content_type, body) = match (p.html, p.text) {
            (Some(h), _) => ("text/html", h),
            (None, Some(t)) => ("text/plain", t),
            (None, None) => return Err(protocol("PreviewMailing returned no body")),
        };
        Ok(Preview {
            template_id: template_id.to_owned(),
            content_type: content_type.to_owned(),
            body,
            subject: None,
        })
    }

    /// The manifest's `esp_options.silverpop.mode` chooses Lists or Relational Tables mode
    /// (else the account's `mode`); the choice is kept in the returned ids for every later call.
    async fn create_audience(&self, req: &AudienceRequest<'_>) -> Result<EspIds, EspError> {
        let mode = self.mode_from_options(req.options)?;
        self.create_audience_in_mode(req.campaign_id, req.variant, mode)
            .await
    }

    /// A batch of at least `bulk_import_threshold` rows on an account with `sftp` goes as an
    /// import job (see [`crate::bulk`]); any other by [`Esp::upload_batch`].
    async fn start_batch_job(
        &self,
        audience: &EspIds,
        batch: &AudienceBatch,
    ) -> Result<Option<BatchJob>, EspError> {
        let Some(bulk) = self.bulk.as_ref().filter(|b| b.takes(batch)) else {
            return Ok(None);
        };
        let mode = Self::mode_of(audience)?;
        let job = bulk
            .start(&self.client, &self.config, mode, audience, batch)
            .await;
        self.client.logout_if_idle().await;
        job.map(Some)
    }

    /// Follows the import job until it ends and reads its error file (see [`crate::bulk`]).
    async fn finish_batch_job(
        &self,
        audience: &EspIds,
        job: &BatchJob,
    ) -> Result<BatchOutcome, EspError> {
        let mode = Self::mode_of(audience)?;
        let bulk = self.bulk.as_ref().ok_or_else(|| {
            invalid(format!(
                "import job {} is pending but the account has no sftp settings (its error \
                 file is read through SFTP)",
                espbridge_core::text::bounded(&job.reference, 32)
            ))
        })?;
        let outcome = bulk.finish(&self.client, &self.config, mode, job).await;
        self.client.logout_if_idle().await;
        outcome
    }

    async fn upload_batch(
        &self,
        audience: &EspIds,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError> {
        let outcome = match Self::mode_of(audience)? {
            AudienceMode::Lists => {
                let list = audience.require(ESP, keys::CONTACT_LIST_ID)?;
                self.upload_lists(list, batch).await
            }
            AudienceMode::RelationalTable => {
                let tag = audience.require(ESP, keys::TAG)?;
                let table = audience.require(ESP, keys::TABLE_ID)?;
                self.upload_relational(table, tag, batch).await
            }
        };
        // The session goes back to the org's pool between batches (20 per org, shared by
        // every instance).
        self.client.logout_if_idle().await;
        outcome
    }

    /// Lists mode: the contact list is the audience; nothing to build, and the batches counted
    /// the unknown ids. Relational Tables mode: finds or creates the query selecting the
    /// campaign's ActionID, then counts it (rows whose customer id matches no contact never
    /// join the query, so `members` lets the upload count them as not in the ESP).
    async fn finish_audience(
        &self,
        campaign_id: &CampaignId,
        variant: Option<&str>,
        audience: &EspIds,
    ) -> Result<FinishedAudience, EspError> {
        if Self::mode_of(audience)? == AudienceMode::Lists {
            audience.require(ESP, keys::CONTACT_LIST_ID)?;
            return Ok(FinishedAudience {
                ids: audience.clone(),
                members: None,
            });
        }
        let result = self.finish_query(campaign_id, variant, audience).await;
        self.client.logout_if_idle().await;
        result
    }

    async fn schedule_send(&self, req: &SendRequest<'_>) -> Result<EspIds, EspError> {
        let list_id = match Self::mode_of(req.audience)? {
            // An audience finished before contact lists (a query over a tag field) still sends
            // to its query.
            AudienceMode::Lists => req
                .audience
                .get(keys::CONTACT_LIST_ID)
                .or_else(|| req.audience.get(keys::QUERY_ID))
                .ok_or_else(|| {
                    invalid(format!("campaign record has no {}", keys::CONTACT_LIST_ID))
                })?,
            AudienceMode::RelationalTable => req.audience.require(ESP, keys::QUERY_ID)?,
        };
        let name = object_name(req.campaign_id, req.variant);
        let tz = match req.timezone {
            Some(z) => TimeZone::get(z).map_err(|_| invalid(format!("unknown zone {z:?}")))?,
            None => self.tz.clone(),
        };
        let scheduled = self.local(req.send_at, &tz, "%m/%d/%Y %I:%M:%S %p");
        let mut attempt = 0;
        let mailing_id = loop {
            attempt += 1;
            // A retry (here or by the caller) first finds what an earlier attempt scheduled.
            let existing = self
                .mailings_around(req.send_at)
                .await?
                .into_iter()
                .find(|m| m.name == name);
            if let Some(m) = existing {
                tracing::info!(esp = "silverpop", campaign = %req.campaign_id, "mailing already scheduled");
                break m.mailing_id;
            }
            let op = wire::schedule_mailing(
                req.template_id,
                list_id,
                &name,
                &self.config.mailing_folder,
                &scheduled,
            );
            match self.client.call_once("ScheduleMailing", op).await {
                Ok(r) => {
                    break r
                        .child_text("MAILING_ID")
                        .ok_or_else(|| protocol("ScheduleMailing answer has no MAILING_ID"))?
                        .to_owned();
                }
                Err(e) if e.is_retryable() && attempt < self.client.attempts() => {
                    tokio::time::sleep(self.client.backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        tracing::info!(esp = "silverpop", campaign = %req.campaign_id, "mailing scheduled");
        self.client.logout_if_idle().await;
        let mut ids = req.audience.clone();
        ids.merge(
            &EspIds::default()
                .with(keys::MAILING_ID, mailing_id)
                .with(keys::MAILING_NAME, name)
                .with(
                    keys::SEND_AT,
                    wire::rfc3339(&req.send_at.to_zoned_datetime(self.tz.clone())),
                ),
        );
        Ok(ids)
    }

    /// The Engage XML API cannot unschedule a mailing: `ScheduleMailing` has no counterpart
    /// (none of the documented mailing operations, nor the vendor's Java client's commands,
    /// cancels or deletes a scheduled mailing; `DeleteJob` is for data jobs). Nothing is called;
    /// the marketer cancels it in Engage (Mailings, Scheduled), which the detail names.
    async fn cancel_send(&self, sent: &EspIds) -> Result<(), EspError> {
        let mailing = sent
            .get(keys::MAILING_ID)
            .map(|id| format!("mailing {}", espbridge_core::text::bounded(id, 24)))
            .unwrap_or_else(|| "the mailing".to_owned());
        Err(EspError::CannotCancel {
            esp: ESP,
            why: CannotCancel::Unsupported,
            detail: format!(
                "the Engage XML API has no call that unschedules a ScheduleMailing; cancel {mailing} in Engage (Mailings, Scheduled)"
            ),
        })
    }

    async fn fetch_metrics(&self, sent: &EspIds) -> Result<Option<MetricCounts>, EspError> {
        let mailing_id = sent.require(ESP, keys::MAILING_ID)?;
        let send_at: Timestamp = sent
            .require(ESP, keys::SEND_AT)?
            .parse()
            .map_err(|_| invalid("campaign record has a bad send time"))?;
        if self.clock.now() < send_at {
            return Ok(None);
        }
        let report = self
            .mailings_around(send_at)
            .await?
            .into_iter()
            .find(|m| m.mailing_id == mailing_id && m.sent_ts.is_some())
            .and_then(|m| m.report_id);
        let Some(report_id) = report else {
            self.client.logout_if_idle().await;
            return Ok(None);
        };
        let r = self
            .client
            .call(
                "GetAggregateTrackingForMailing",
                wire::get_aggregate_tracking(mailing_id, &report_id),
            )
            .await?;
        self.client.logout_if_idle().await;
        Ok(AggregateTracking::from_result(&r).map(metrics))
    }
}

/// Whether a refused AddContactToContactList means "no such contact in the database": one of
/// the account's `contact_not_found_errorids`, or a FaultString saying "not found" / "does not
/// exist" that names no list (an unknown contact list is the list's fault, not the contact's).
pub(crate) fn contact_not_found(errorids: &[u32], f: &Fault) -> bool {
    if f.errorid.is_some_and(|id| errorids.contains(&id)) {
        return true;
    }
    let text = f.text.to_ascii_lowercase();
    (text.contains("not found") || text.contains("does not exist")) && !text.contains("list")
}

/// A refusal's text without the contact's customer id (a server may echo the key it was given;
/// customer ids stay out of stored errors).
fn redact(text: &str, contact: Option<&espbridge_core::ports::Contact>) -> String {
    match contact {
        Some(c) if !c.customer_id.is_empty() => text.replace(c.customer_id.as_str(), "<id>"),
        _ => text.to_owned(),
    }
}

/// delivered = sent − bounces (Silverpop has no delivered counter); opens and clicks unique.
pub fn metrics(a: AggregateTracking) -> MetricCounts {
    let bounces = a.bounce_hard.saturating_add(a.bounce_soft);
    MetricCounts {
        sent: a.sent,
        delivered: a.sent.saturating_sub(bounces),
        opens: a.unique_open,
        clicks: a.unique_click,
        unsubscribes: a.unsubscribes,
        bounces,
        complaints: a.abuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ports::Contact;

    fn fault(errorid: Option<u32>, text: &str) -> Fault {
        Fault {
            errorid,
            class: Some("SP.Recipients".into()),
            text: text.into(),
        }
    }

    #[test]
    fn a_missing_contact_is_told_by_errorid_or_by_its_fault_string() {
        let ids = [129, 500];
        assert!(contact_not_found(&ids, &fault(Some(129), "whatever")));
        assert!(contact_not_found(&ids, &fault(Some(500), "")));
        assert!(contact_not_found(
            &ids,
            &fault(Some(7), "Contact Not Found.")
        ));
        assert!(contact_not_found(
            &ids,
            &fault(None, "The recipient does not exist")
        ));
        // An unknown list, or another refusal, is not a missing contact.
        assert!(!contact_not_found(
            &ids,
            &fault(Some(51), "Contact list 5 not found")
        ));
        assert!(!contact_not_found(
            &ids,
            &fault(Some(51), "List does not exist")
        ));
        assert!(!contact_not_found(
            &ids,
            &fault(Some(51), "Invalid XML Request")
        ));
        assert!(!contact_not_found(
            &[],
            &fault(Some(129), "Duplicate match")
        ));
    }

    #[test]
    fn row_errors_leave_the_customer_id_out() {
        let c = Contact {
            customer_id: "C-77".into(),
            email: None,
            fields: Vec::new(),
        };
        assert_eq!(
            redact("Contact C-77 is ambiguous (C-77)", Some(&c)),
            "Contact <id> is ambiguous (<id>)"
        );
        assert_eq!(redact("Refused", None), "Refused");
    }
}
