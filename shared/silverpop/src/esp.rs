//! The [`Esp`] implementation: templates, audience (Lists or Relational Tables mode), the query,
//! the scheduled mailing and its aggregate tracking.

use crate::client::Client;
use crate::config::{AudienceMode, SilverpopConfig, SilverpopCredentials};
use crate::wire::{
    self, AggregateTracking, Criteria, ListRow, MailingTemplate, PreviewResult, RowFailure,
    SentMailing,
};
use async_trait::async_trait;
use espbridge_core::ports::esp::object_name;
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, BatchOutcome, Esp, EspError, EspIds, FinishedAudience,
    MetricCounts, Preview, RowError, SendRequest, Template,
};
use espbridge_core::{AccountId, CampaignId, Clock, EspKind};
use espbridge_esp_kit::{AdapterError, BuildContext};
use futures::stream::{self, StreamExt};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

const ESP: EspKind = EspKind::Silverpop;

/// Keys of the [`EspIds`] this adapter returns.
pub mod keys {
    /// `lists` or `relational_table`.
    pub const MODE: &str = "silverpop_mode";
    /// The campaign tag (Lists mode) or ActionID (Relational Tables mode).
    pub const TAG: &str = "silverpop_tag";
    pub const TABLE_ID: &str = "silverpop_table_id";
    pub const QUERY_ID: &str = "silverpop_query_id";
    pub const MAILING_ID: &str = "silverpop_mailing_id";
    pub const MAILING_NAME: &str = "silverpop_mailing_name";
    /// RFC 3339 send time, used to bound GetSentMailingsForOrg.
    pub const SEND_AT: &str = "silverpop_send_at";
}

/// Column of the relational table holding the campaign's ActionID.
pub const ACTION_ID_COLUMN: &str = "ActionID";

/// One Engage account.
pub struct SilverpopEsp {
    config: SilverpopConfig,
    tz: TimeZone,
    client: Client,
    clock: Arc<dyn Clock>,
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
        let client = Client::new(&config, credentials, Arc::clone(&ctx.limits))?;
        Ok(Self {
            config,
            tz,
            client,
            clock,
        })
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

    /// [`Esp::create_audience`] in a chosen mode (the manifest's, or the account's).
    pub async fn create_audience_in_mode(
        &self,
        campaign_id: &CampaignId,
        variant: Option<&str>,
        mode: AudienceMode,
    ) -> Result<EspIds, EspError> {
        let ids = EspIds::default()
            .with(keys::MODE, mode.as_str())
            .with(keys::TAG, action_id(campaign_id, variant));
        match mode {
            AudienceMode::Lists => {
                if self.config.database_id.is_empty() {
                    return Err(invalid("account has no database_id"));
                }
                Ok(ids)
            }
            AudienceMode::RelationalTable => {
                let table = self
                    .config
                    .relational_table_id
                    .as_deref()
                    .ok_or_else(|| invalid("account has no relational_table_id"))?;
                Ok(ids.with(keys::TABLE_ID, table))
            }
        }
    }

    fn mode_of(ids: &EspIds) -> Result<AudienceMode, EspError> {
        let m = ids.require(ESP, keys::MODE)?;
        AudienceMode::parse(m).ok_or_else(|| invalid(format!("unknown audience mode {m:?}")))
    }

    /// Lists mode: writes the tag to each recipient (AddRecipient, update if found), at most
    /// `max_concurrent` at once; a refused contact is a row error.
    async fn upload_lists(
        &self,
        tag: &str,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError> {
        let ops: Vec<_> = batch
            .contacts
            .iter()
            .map(|c| {
                wire::add_recipient(
                    &self.config.database_id,
                    &self.config.customer_id_field,
                    &c.customer_id,
                    &[(self.config.tag_field.as_str(), tag)],
                )
            })
            .collect();
        let client = &self.client;
        let held = client.hold_slots(self.config.max_concurrent).await?;
        let held = &held;
        let calls = ops.into_iter().enumerate().map(|(index, op)| async move {
            (index, client.call_held(held, "AddRecipient", op).await)
        });
        let results: Vec<_> = stream::iter(calls)
            .buffer_unordered(held.width())
            .collect()
            .await;
        let mut outcome = BatchOutcome::default();
        for (index, r) in results {
            match r {
                Ok(_) => outcome.accepted += 1,
                Err(e) if e.is_retryable() || matches!(e, EspError::Auth { .. }) => return Err(e),
                Err(EspError::Api { code, text, .. }) => outcome.row_errors.push(RowError {
                    index,
                    code,
                    reason: text,
                }),
                Err(e) => return Err(e),
            }
        }
        outcome.row_errors.sort_by_key(|r| r.index);
        Ok(outcome)
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
            "relational rows written"
        );
        Ok(outcome)
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
    fn max_batch(&self) -> usize {
        self.config.batch_size
    }

    async fn list_templates(&self) -> Result<Vec<Template>, EspError> {
        let r = self
            .client
            .call("GetMailingTemplates", wire::get_mailing_templates())
            .await?;
        Ok(MailingTemplate::list(&r)
            .into_iter()
            .filter(MailingTemplate::is_shared)
            .map(|t| Template {
                esp: ESP,
                account: self.config.account.clone(),
                id: t.mailing_id,
                display_name: t.name.clone(),
                name: t.name,
                subject: t.subject,
                kind: None,
                created: t.last_modified,
            })
            .collect())
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

    async fn upload_batch(
        &self,
        audience: &EspIds,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError> {
        let tag = audience.require(ESP, keys::TAG)?;
        match Self::mode_of(audience)? {
            AudienceMode::Lists => self.upload_lists(tag, batch).await,
            AudienceMode::RelationalTable => {
                let table = audience.require(ESP, keys::TABLE_ID)?;
                self.upload_relational(table, tag, batch).await
            }
        }
    }

    async fn finish_audience(
        &self,
        campaign_id: &CampaignId,
        variant: Option<&str>,
        audience: &EspIds,
    ) -> Result<FinishedAudience, EspError> {
        let name = object_name(campaign_id, variant);
        let tag = audience.require(ESP, keys::TAG)?;
        let query_id = match self.find_query(&name).await? {
            Some(id) => id,
            None => {
                let criteria = match Self::mode_of(audience)? {
                    AudienceMode::Lists => Criteria::Profile {
                        column: &self.config.tag_field,
                        value: tag,
                    },
                    AudienceMode::RelationalTable => Criteria::Relational {
                        table_id: audience.require(ESP, keys::TABLE_ID)?,
                        column: ACTION_ID_COLUMN,
                        value: tag,
                    },
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
        tracing::info!(esp = "silverpop", campaign = %campaign_id, "audience query ready");
        let mut ids = audience.clone();
        ids.merge(&EspIds::default().with(keys::QUERY_ID, query_id));
        Ok(FinishedAudience { ids, members: None })
    }

    async fn schedule_send(&self, req: &SendRequest<'_>) -> Result<EspIds, EspError> {
        let query_id = req.audience.require(ESP, keys::QUERY_ID)?;
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
                query_id,
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
                .with(keys::SEND_AT, req.send_at.to_string()),
        );
        Ok(ids)
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
