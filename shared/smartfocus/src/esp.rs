//! [`SmartFocusEsp`]: the `Esp` port over Campaign Commander's REST services.

use crate::client::{Body, Http, Method, Repeat, Service, enc};
use crate::config::{MessageListing, SendDateFormat, SmartFocusConfig, SmartFocusCredentials};
use crate::wire::{
    self, Element, MessageInfo, MessageSummary, NamedObject, Snapshot, SummaryPage, SummaryQuery,
    UploadState, UploadStatus,
};
use async_trait::async_trait;
use espbridge_core::ports::esp::{CannotCancel, object_name};
use espbridge_core::ports::limits::AccountLimits;
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, BatchOutcome, Esp, EspError, EspIds, FinishedAudience,
    MetricCounts, Preview, RowError, SendRequest, Template,
};
use espbridge_core::{AccountId, CampaignId, Clock, EspKind};
use espbridge_esp_kit::AdapterError;
use espbridge_esp_kit::{BuildContext, EspHttp, SlotPool};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const ESP: EspKind = EspKind::Smartfocus;
/// Bytes one row may take in the upload file (id, tab, tag, newline), used to size batches.
const ROW_BUDGET: u64 = 256;
/// Upper bound of a batch whatever the file limit allows: one upload's polling stays short.
const BATCH_CAP: u64 = 500_000;
/// Most recent segments/campaigns read back when looking one up by name on a retry.
const NAME_SCAN: usize = 50;
/// Longest customer id accepted in a row (keeps rows within [`ROW_BUDGET`]).
const MAX_ID_LEN: usize = 160;
/// Start of the period the `by_period` listing asks for (older than any Campaign Commander
/// account).
const HISTORY_BEGIN: &str = "2000-01-01 00:00:00";

/// Keys of the ids this adapter stores in the campaign record.
pub mod keys {
    /// The campaign tag written to the tag field of every uploaded member.
    pub const TAG: &str = "tag";
    /// The member field (one of `tag_fields`) reserved for the campaign: uploads write the tag
    /// into it and the segment selects on it.
    pub const TAG_FIELD: &str = "tag_field";
    pub const SEGMENT: &str = "segment_id";
    pub const MESSAGE: &str = "message_id";
    pub const CAMPAIGN: &str = "campaign_id";
    /// RFC 3339 send time, with the offset of the account's zone; metrics are not asked for
    /// before it.
    pub const SEND_AT: &str = "send_at";
}

/// One SmartFocus account.
pub struct SmartFocusEsp {
    config: SmartFocusConfig,
    /// `config.timezone`: the zone of the dates the API reads and returns.
    zone: TimeZone,
    http: Http,
    clock: Arc<dyn Clock>,
    /// The account's pending uploads (SmartFocus allows 5), held for the whole deployment.
    pending: SlotPool,
    /// The account's tag fields: slot `i` is `tag_fields[i]`, held by a campaign's object name
    /// until its send time plus `tag_hold_after_send_mins`, for the whole deployment.
    tags: SlotPool,
    /// The limits behind `tags`, read for the capacity error.
    limits: Arc<dyn AccountLimits>,
    tags_key: String,
}

impl std::fmt::Debug for SmartFocusEsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartFocusEsp")
            .field("account", &self.config.account)
            .finish_non_exhaustive()
    }
}

fn api(detail: impl Into<String>) -> EspError {
    EspError::Protocol {
        esp: ESP,
        detail: detail.into(),
    }
}

fn xml_body(xml: String) -> Body {
    Body {
        content_type: "text/xml; charset=utf-8".to_owned(),
        bytes: xml.into_bytes(),
    }
}

impl SmartFocusEsp {
    pub fn new(
        config: SmartFocusConfig,
        credentials: SmartFocusCredentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError> {
        config.validate()?;
        let zone = TimeZone::get(&config.timezone).map_err(|e| AdapterError::Config {
            esp: ESP,
            field: "timezone",
            detail: e.to_string(),
        })?;
        let clock = Arc::clone(&ctx.clock);
        let http = Http::new(
            EspHttp::new(ESP, &config.http_settings()?)?,
            credentials,
            clock.clone(),
        );
        let pending = SlotPool::new(
            ESP,
            Arc::clone(&ctx.limits),
            format!("smartfocus/{}/uploads", config.account),
            u32::try_from(config.max_pending_uploads).unwrap_or(u32::MAX),
            Duration::from_secs(config.upload_timeout_secs),
        );
        let tags_key = format!("smartfocus/{}/tag-fields", config.account);
        let tags = SlotPool::new(
            ESP,
            Arc::clone(&ctx.limits),
            tags_key.clone(),
            u32::try_from(config.tag_fields.len()).unwrap_or(u32::MAX),
            Duration::from_secs(config.tag_hold_after_send_mins.saturating_mul(60)),
        );
        Ok(Self {
            config,
            zone,
            http,
            clock,
            pending,
            tags,
            limits: Arc::clone(&ctx.limits),
            tags_key,
        })
    }

    /// Reserves a tag field for `owner` (the campaign's object name) until `send_at` plus the
    /// hold, judged on the injected clock; a retry for the same owner gets its field back.
    async fn reserve_tag_field(&self, owner: &str, send_at: Timestamp) -> Result<String, EspError> {
        let now = self.clock.now().as_millisecond();
        let hold = i64::try_from(self.config.tag_hold_after_send_mins)
            .unwrap_or(i64::MAX)
            .saturating_mul(60_000);
        // A send time already past is evaluated about now: hold from now then.
        let until = send_at.as_millisecond().max(now).saturating_add(hold);
        let Some(guard) = self.tags.try_acquire_at(owner, until, now).await? else {
            return Err(self.no_tag_field(now).await);
        };
        let slot = guard.keep();
        let index = usize::try_from(slot.index).unwrap_or(usize::MAX);
        let field = self
            .config
            .tag_fields
            .get(index)
            .ok_or_else(|| EspError::Invalid {
                esp: ESP,
                detail: format!(
                    "tag field slot {} has no entry in tag_fields (the list was shortened while \
                 campaigns were pending)",
                    slot.index
                ),
            })?;
        tracing::info!(tag = owner, field = %field, "smartfocus tag field reserved");
        Ok(field.clone())
    }

    /// The capacity error when every tag field is reserved, with the earliest time one frees.
    async fn no_tag_field(&self, now: i64) -> EspError {
        let n = self.config.tag_fields.len();
        let account = &self.config.account;
        let earliest = match self.limits.holders(&self.tags_key, now).await {
            Ok(holders) => holders
                .iter()
                .map(|s| s.until)
                .min()
                .and_then(|ms| Timestamp::from_millisecond(ms).ok()),
            Err(e) => {
                tracing::debug!(error = %e, "smartfocus tag field holders unavailable");
                None
            }
        };
        let until = earliest.map(|t| format!(" until {t}")).unwrap_or_default();
        tracing::warn!(fields = n, "smartfocus account has no free tag field");
        EspError::Capacity {
            esp: ESP,
            detail: format!(
                "all {n} tag fields of account {account} (tag_fields) are reserved by pending \
                 campaigns{until}; add text fields to the member table and list them in tag_fields"
            ),
        }
    }

    /// How many members the segment selects now; `None` when the count path answers 404 (its
    /// REST spelling is uncertain).
    async fn segment_count(&self, segment_id: &str) -> Result<Option<u64>, EspError> {
        let id = enc(segment_id);
        let template = self.config.segment_count_path.trim_matches('/').to_owned();
        let res = self
            .ccmd_get(&|t| template.replace("{token}", t).replace("{id}", &id))
            .await;
        match res {
            Ok(p) => {
                let text = wire::scalar(&p).map(str::trim).unwrap_or_default();
                let n = text
                    .parse::<u64>()
                    .ok()
                    .or_else(|| {
                        text.parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite() && *f >= 0.0)
                            .map(|f| f as u64)
                    })
                    .ok_or_else(|| api("segment count returned no number"))?;
                Ok(Some(n))
            }
            Err(EspError::Api { status: 404, .. }) => {
                tracing::warn!(
                    path = %template,
                    "smartfocus segment count not found at segment_count_path; ids unknown to \
                     SmartFocus are not counted as not_in_esp"
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn ccmd(
        &self,
        method: Method,
        repeat: Repeat,
        path: &(dyn Fn(&str) -> String + Sync),
        body: Option<&Body>,
    ) -> Result<Element, EspError> {
        self.http
            .call(Service::Ccmd, method, repeat, path, body)
            .await
    }

    async fn ccmd_get(&self, path: &(dyn Fn(&str) -> String + Sync)) -> Result<Element, EspError> {
        self.ccmd(Method::Get, Repeat::Safe, path, None).await
    }

    async fn get_message(&self, id: &str) -> Result<Option<MessageInfo>, EspError> {
        let id = enc(id);
        let p = self
            .ccmd_get(&|t| format!("message/getMessage/{t}/{id}"))
            .await?;
        Ok(MessageInfo::from_payload(&p))
    }

    fn scalar_id(payload: &Element, what: &str) -> Result<String, EspError> {
        wire::scalar(payload)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| api(format!("{what} returned no id")))
    }

    /// Ids of messages whose `name` field equals `name`. The REST spelling of this call is
    /// uncertain: the plural (SOAP) form is tried first, the singular on HTTP 404.
    async fn messages_named(&self, name: &str) -> Result<Vec<String>, EspError> {
        let n = enc(name);
        let limit = self.config.list_limit;
        let plural = self
            .ccmd_get(&|t| format!("message/getEmailMessagesByField/{t}/name/{n}/{limit}"))
            .await;
        let payload = match plural {
            Err(EspError::Api { status: 404, .. }) => {
                self.ccmd_get(&|t| format!("message/getEmailMessageByField/{t}/name/{n}/{limit}"))
                    .await?
            }
            other => other?,
        };
        let mut out = Vec::new();
        for id in wire::id_list(&payload) {
            if let Some(m) = self.get_message(&id).await?
                && m.name == name
            {
                out.push(m.id);
            }
        }
        Ok(out)
    }

    /// The segment named `name` among the account's most recent ones.
    async fn find_segment(&self, name: &str) -> Result<Option<String>, EspError> {
        let limit = self.config.list_limit;
        let list = self
            .ccmd_get(&|t| format!("segmentationservice/{t}/segment/list/1/items/{limit}"))
            .await?;
        let mut ids = wire::id_list(&list);
        ids.sort_by_key(|i| std::cmp::Reverse(i.parse::<u64>().unwrap_or(0)));
        for id in ids.into_iter().take(NAME_SCAN) {
            let e = enc(&id);
            let p = self
                .ccmd_get(&|t| format!("segmentationservice/{t}/segment/{e}"))
                .await?;
            if NamedObject::from_payload(&p).is_some_and(|s| s.name == name) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// The campaign named `name` among the account's most recent ones.
    /// The campaign's status (upper case), as `getCampaign` reports it.
    async fn campaign_status(&self, campaign: &str) -> Result<String, EspError> {
        let cid = enc(campaign);
        let p = self
            .ccmd_get(&|t| format!("campaign/getCampaign/{t}/{cid}"))
            .await?;
        Ok(NamedObject::from_payload(&p)
            .and_then(|c| c.status)
            .unwrap_or_default()
            .to_ascii_uppercase())
    }

    /// Unposts the campaign unless it is editable already; refuses one that went out.
    async fn unpost(&self, campaign: &str) -> Result<(), EspError> {
        let refuse = |status: &str| EspError::CannotCancel {
            esp: ESP,
            why: CannotCancel::AlreadySent,
            detail: format!(
                "campaign {} is {}: only a queued campaign can be unposted",
                espbridge_core::text::bounded(campaign, 40),
                espbridge_core::text::bounded(status, 40)
            ),
        };
        match self.campaign_status(campaign).await?.as_str() {
            "EDITABLE" => {
                tracing::info!("smartfocus campaign not posted (unposted before)");
                return Ok(());
            }
            "QUEUED" | "PAUSED" => {}
            other => return Err(refuse(other)),
        }
        let answer = self
            .http
            .soap(Service::Ccmd, "unpostCampaign", &|t| {
                wire::unpost_campaign_request(t, campaign)
            })
            .await;
        match answer {
            Ok(p) if wire::scalar(&p).map(str::trim) == Some("true") => {
                tracing::info!("smartfocus campaign unposted: it will not send");
                Ok(())
            }
            // Refused, or an answer lost and the call repeated: the status tells.
            other => match self.campaign_status(campaign).await?.as_str() {
                "EDITABLE" => Ok(()),
                status @ ("QUEUED" | "PAUSED") => Err(other.err().unwrap_or(EspError::Api {
                    esp: ESP,
                    status: 200,
                    code: "UNPOST_REFUSED".to_owned(),
                    text: format!("unpostCampaign did not return true; the campaign is {status}"),
                    retryable: true,
                })),
                status => Err(refuse(status)),
            },
        }
    }

    async fn find_campaign(&self, name: &str) -> Result<Option<NamedObject>, EspError> {
        let limit = self.config.list_limit;
        let list = self
            .ccmd_get(&|t| format!("campaign/last/{t}/{limit}"))
            .await?;
        let mut ids = wire::id_list(&list);
        ids.sort_by_key(|i| std::cmp::Reverse(i.parse::<u64>().unwrap_or(0)));
        for id in ids.into_iter().take(NAME_SCAN) {
            let e = enc(&id);
            let p = self
                .ccmd_get(&|t| format!("campaign/getCampaign/{t}/{e}"))
                .await?;
            if let Some(c) = NamedObject::from_payload(&p)
                && c.name == name
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    fn send_date(&self, req: &SendRequest<'_>) -> String {
        // `campaign/create` has no zone parameter and reads `sendDate` in the account's zone, so
        // the instant is written in that zone whatever zone the marketer chose.
        let local = self.zone.to_datetime(req.send_at);
        let pattern = match self.config.send_date_format {
            SendDateFormat::IsoLocal => "%Y-%m-%dT%H:%M:%S",
            SendDateFormat::SpaceLocal => "%Y-%m-%d %H:%M:%S",
        };
        local.strftime(pattern).to_string()
    }

    /// A date the API returned, as RFC 3339 with the account zone's offset (`None` when it
    /// cannot be read).
    fn api_date(&self, raw: Option<&str>) -> Option<String> {
        let raw = raw?;
        let out = wire::rfc3339_in(raw, &self.zone);
        if out.is_none() {
            tracing::debug!(
                raw = %espbridge_core::text::bounded(raw, 40),
                "smartfocus date not readable"
            );
        }
        out
    }

    /// The template for a message named with the prefix, of type e-mail (or of no type).
    fn template(
        &self,
        id: String,
        name: String,
        kind: Option<String>,
        subject: Option<String>,
        created: Option<&str>,
    ) -> Option<Template> {
        let display = name.strip_prefix(&self.config.message_prefix)?.to_owned();
        if kind
            .as_deref()
            .is_some_and(|k| !k.trim().eq_ignore_ascii_case("email"))
        {
            return None;
        }
        Some(Template {
            esp: ESP,
            account: self.config.account.clone(),
            id,
            display_name: display,
            name,
            subject,
            kind: kind.map(|k| k.trim().to_ascii_lowercase()),
            created: self.api_date(created),
        })
    }

    /// Every summary `getMessageSummaryList` gives for `name` (and type `email`), page after
    /// page. Pages are followed while the server says there is a next one and each brings new
    /// ids, so a server that ignores `page` or caps `pageSize` is still read once and whole; if
    /// pages 1.. gave fewer than `nbTotalItems`, page 0 is read once (the reference does not
    /// say whether pages count from 0 or 1).
    async fn summaries(&self, name: Option<&str>) -> Result<Vec<MessageSummary>, EspError> {
        let page_size = self.config.summary_page_size;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut total = None;
        let mut page = 1u32;
        loop {
            let fetched = self.summary_page(page, page_size, name).await?;
            total = fetched.total.or(total);
            let before = out.len();
            for item in fetched.items {
                if seen.insert(item.id.clone()) {
                    out.push(item);
                }
            }
            let fresh = out.len() > before;
            let more =
                fetched.next_page.unwrap_or(true) && total.is_none_or(|t| (out.len() as u64) < t);
            if !fresh || !more {
                break;
            }
            page = page.saturating_add(1);
        }
        if total.is_some_and(|t| (out.len() as u64) < t) {
            // A server counting from 1 may refuse page 0, or the total may have shrunk while
            // paging (messages deleted): what pages 1.. gave stands then.
            match self.summary_page(0, page_size, name).await {
                Ok(first) => {
                    for item in first.items {
                        if seen.insert(item.id.clone()) {
                            out.push(item);
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "smartfocus summary page 0 not read"),
            }
        }
        Ok(out)
    }

    async fn summary_page(
        &self,
        page: u32,
        page_size: u32,
        name: Option<&str>,
    ) -> Result<SummaryPage, EspError> {
        let query = SummaryQuery {
            page,
            page_size,
            name,
            message_type: Some("email"),
        };
        let payload = self
            .http
            .soap(Service::Ccmd, "getMessageSummaryList", &|t| {
                wire::message_summary_request(t, &query)
            })
            .await?;
        SummaryPage::from_payload(&payload)
            .ok_or_else(|| api("getMessageSummaryList returned no summary list"))
    }

    /// The templates from the summary list: a search by the prefix, and, when it finds no
    /// prefixed message, the whole e-mail list (in case the server's name search matches whole
    /// names only). A prefixed summary without a creation date is completed by `getMessage`
    /// (at most one call per template; never for other messages).
    async fn templates_from_summaries(&self) -> Result<Vec<Template>, EspError> {
        let prefix = self.config.message_prefix.as_str();
        let mut found = self.summaries(Some(prefix)).await?;
        let listed = found.len();
        found.retain(|m| m.name.starts_with(prefix));
        if found.is_empty() {
            tracing::debug!(
                listed,
                "smartfocus name search found no prefixed message; reading the whole list"
            );
            found = self.summaries(None).await?;
            found.retain(|m| m.name.starts_with(prefix));
        }
        let mut out = Vec::with_capacity(found.len());
        for m in found {
            let mut created = m.created.clone();
            if created.is_none()
                && let Some(full) = self.get_message(&m.id).await?
            {
                created = full.created;
            }
            out.extend(self.template(m.id, m.name, m.kind, m.subject, created.as_deref()));
        }
        Ok(out)
    }

    /// The templates from REST only: every message id of the account's history
    /// (`getMessagesByPeriod`, one call), then `getMessage` for each id.
    async fn templates_by_period(&self) -> Result<Vec<Template>, EspError> {
        let tomorrow = self
            .clock
            .now()
            .checked_add(jiff::SignedDuration::from_hours(24))
            .unwrap_or_else(|_| self.clock.now());
        let end = self
            .zone
            .to_datetime(tomorrow)
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        let (begin, end) = (enc(HISTORY_BEGIN), enc(&end));
        let list = self
            .ccmd_get(&|t| format!("message/getMessagesByPeriod/{t}/{begin}/{end}"))
            .await?;
        let ids = wire::id_list(&list);
        let mut out = Vec::new();
        for id in &ids {
            let Some(m) = self.get_message(id).await? else {
                continue;
            };
            out.extend(self.template(m.id, m.name, m.kind, m.subject, m.created.as_deref()));
        }
        tracing::info!(messages = ids.len(), "smartfocus messages read one by one");
        Ok(out)
    }

    /// Builds the tab-separated file of `id<TAB>tag` rows; ids that cannot be written are
    /// reported as row errors instead.
    fn batch_file(&self, tag: &str, batch: &AudienceBatch) -> (Vec<u8>, u64, Vec<RowError>) {
        let mut file = Vec::with_capacity(batch.contacts.len() * 32);
        let mut rows = 0u64;
        let mut errors = Vec::new();
        for (index, c) in batch.contacts.iter().enumerate() {
            let id = c.customer_id.trim();
            let bad = if id.is_empty() {
                Some("empty customer id")
            } else if id.len() > MAX_ID_LEN {
                Some("customer id longer than 160 bytes")
            } else if id.contains(['\t', '\r', '\n', '"']) {
                Some("customer id holds a tab, quote or line break")
            } else {
                None
            };
            if let Some(reason) = bad {
                errors.push(RowError {
                    index,
                    code: "INVALID_ID".to_owned(),
                    reason: reason.to_owned(),
                });
                continue;
            }
            file.extend_from_slice(id.as_bytes());
            file.push(b'\t');
            file.extend_from_slice(tag.as_bytes());
            file.push(b'\n');
            rows += 1;
        }
        (file, rows, errors)
    }

    /// Starts the merge upload, waiting while the account is at its pending-upload limit.
    async fn start_upload(&self, body: &Body) -> Result<String, EspError> {
        let started = std::time::Instant::now();
        loop {
            let res = self
                .http
                .call(
                    Service::Batch,
                    Method::Put,
                    Repeat::Once,
                    &|t| format!("batchmemberservice/{t}/batchmember/mergeUpload"),
                    Some(body),
                )
                .await;
            match res {
                Ok(p) => return Self::scalar_id(&p, "mergeUpload"),
                Err(EspError::Api { code, .. })
                    if code == "MAX_NB_UPLOADS" && started.elapsed() < self.upload_timeout() =>
                {
                    tracing::debug!("smartfocus account at its pending-upload limit; waiting");
                    tokio::time::sleep(self.poll_interval()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.config.upload_poll_interval_ms.max(1))
    }
    fn upload_timeout(&self) -> Duration {
        Duration::from_secs(self.config.upload_timeout_secs)
    }

    /// Follows `getUploadStatus` until a final state.
    async fn await_upload(&self, upload_id: &str) -> Result<bool, EspError> {
        let started = std::time::Instant::now();
        let id = enc(upload_id);
        loop {
            let p = self
                .http
                .call(
                    Service::Batch,
                    Method::Get,
                    Repeat::Safe,
                    &|t| format!("batchmemberservice/{t}/batchmember/{id}/getUploadStatus"),
                    None,
                )
                .await?;
            let status = UploadStatus::from_payload(&p)
                .ok_or_else(|| api("getUploadStatus returned no status"))?;
            match status.state() {
                UploadState::Done { with_errors } => return Ok(with_errors),
                UploadState::Failed(state) => {
                    return Err(EspError::Api {
                        esp: ESP,
                        status: 200,
                        code: state.clone(),
                        text: format!(
                            "upload {upload_id} ended in {state}: {}",
                            status.details.as_deref().unwrap_or("no details")
                        ),
                        retryable: false,
                    });
                }
                UploadState::Pending(_) if started.elapsed() < self.upload_timeout() => {
                    tokio::time::sleep(self.poll_interval()).await;
                }
                UploadState::Pending(state) => {
                    return Err(EspError::Transient {
                        esp: ESP,
                        detail: format!("upload {upload_id} still {state} after the timeout"),
                    });
                }
            }
        }
    }
}

#[async_trait]
impl Esp for SmartFocusEsp {
    fn kind(&self) -> EspKind {
        ESP
    }
    fn account(&self) -> &AccountId {
        &self.config.account
    }
    /// As many rows as fit the upload file limit once base64-encoded, capped at 500 000.
    fn max_batch(&self) -> usize {
        let raw = self.config.max_upload_bytes.saturating_sub(4096) / 4 * 3;
        (raw / ROW_BUDGET).clamp(1, BATCH_CAP) as usize
    }
    /// One merge upload per batch, followed to DONE before the next (a campaign's batches go
    /// in turn; the account's `max_pending_uploads` are shared by the night). SmartFocus
    /// publishes no import speed: an upload is taken as one poll interval plus a minute.
    fn upload_pace(
        &self,
        _options: &espbridge_core::ports::esp::EspOptions,
    ) -> espbridge_core::ports::esp::UploadPace {
        espbridge_core::ports::esp::UploadPace {
            rows_per_call: self.max_batch() as u64,
            calls_per_minute: None,
            rows_per_minute: None,
            concurrency: 1,
            call_secs: 60.0 + self.config.upload_poll_interval_ms as f64 / 1000.0,
        }
    }
    fn claims_template_name(&self, name: &str) -> bool {
        name.starts_with(&self.config.message_prefix)
    }

    /// Every e-mail message named with the prefix, whatever the number of other messages and
    /// clones: see the crate docs ("Listing templates") for the calls and their cost.
    async fn list_templates(&self) -> Result<Vec<Template>, EspError> {
        let templates = match self.config.message_listing {
            MessageListing::Summary => match self.templates_from_summaries().await {
                Err(EspError::Api { status: 404, .. }) => {
                    tracing::warn!(
                        "smartfocus SOAP binding not found (HTTP 404); listing templates by \
                         period, one call per message (set message_listing = \"by_period\" \
                         to skip the attempt)"
                    );
                    self.templates_by_period().await?
                }
                Err(EspError::Transient { esp, detail }) if detail.contains("session refused") => {
                    return Err(EspError::Transient {
                        esp,
                        detail: format!(
                            "{detail}; if this account's SOAP binding refuses the REST session \
                             token, set message_listing = \"by_period\""
                        ),
                    });
                }
                other => other?,
            },
            MessageListing::ByPeriod => self.templates_by_period().await?,
        };
        tracing::info!(templates = templates.len(), "smartfocus templates listed");
        Ok(templates)
    }

    async fn preview(&self, template_id: &str) -> Result<Preview, EspError> {
        let id = enc(template_id);
        let p = self
            .ccmd_get(&|t| format!("message/getEmailMessagePreview/{t}/{id}/HTML"))
            .await?;
        let body = wire::scalar(&p)
            .ok_or_else(|| api("getEmailMessagePreview returned no content"))?
            .to_owned();
        Ok(Preview {
            template_id: template_id.to_owned(),
            content_type: "text/html".to_owned(),
            body,
            subject: None,
        })
    }

    /// Reserves one of the account's tag fields for the campaign until its send time has
    /// passed (before anything is uploaded); the audience is then the members carrying the
    /// campaign tag in that field. No free field is [`EspError::Capacity`].
    async fn create_audience(&self, req: &AudienceRequest<'_>) -> Result<EspIds, EspError> {
        let tag = object_name(req.campaign_id, req.variant);
        let field = self.reserve_tag_field(&tag, req.send_at).await?;
        Ok(EspIds::default()
            .with(keys::TAG, tag)
            .with(keys::TAG_FIELD, field))
    }

    async fn upload_batch(
        &self,
        audience: &EspIds,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError> {
        let tag = audience.require(ESP, keys::TAG)?;
        let tag_field = audience.require(ESP, keys::TAG_FIELD)?;
        let (file, rows, row_errors) = self.batch_file(tag, batch);
        if rows == 0 {
            return Ok(BatchOutcome {
                accepted: 0,
                not_in_esp: 0,
                row_errors,
            });
        }
        if wire::encoded_len(file.len()) as u64 > self.config.max_upload_bytes {
            return Err(EspError::Invalid {
                esp: ESP,
                detail: format!(
                    "batch of {} contacts exceeds the upload size limit",
                    batch.contacts.len()
                ),
            });
        }
        let file_name = format!("{tag}_{}.csv", batch.first_ordinal);
        let config = wire::merge_upload_xml(&file_name, &self.config.customer_id_field, tag_field);
        let boundary = format!("espbridge-{:016x}", rand::random::<u64>());
        let body = Body {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            bytes: wire::multipart_body(&boundary, "mergeUpload", &config, &file_name, &file),
        };
        let slot = self
            .pending
            .acquire(&self.pending.fresh_owner(), self.upload_timeout())
            .await?;
        let upload_id = self.start_upload(&body).await?;
        let with_errors = self.await_upload(&upload_id).await;
        slot.release().await;
        let with_errors = with_errors?;
        tracing::info!(
            tag,
            first = batch.first_ordinal,
            rows,
            with_errors,
            "smartfocus batch uploaded"
        );
        Ok(BatchOutcome {
            accepted: rows,
            not_in_esp: 0,
            row_errors,
        })
    }

    /// Creates (or finds) the segment `<tag field> EQUALS <tag>` and `<email field>
    /// IS_NOT_EMPTY` under the campaign's object name, and counts it: the members a merge
    /// created for ids SmartFocus did not know have no e-mail, so the count is the known ids.
    async fn finish_audience(
        &self,
        campaign_id: &CampaignId,
        variant: Option<&str>,
        audience: &EspIds,
    ) -> Result<FinishedAudience, EspError> {
        self.http.close(Service::Batch).await;
        let tag = audience.require(ESP, keys::TAG)?.to_owned();
        let tag_field = audience.require(ESP, keys::TAG_FIELD)?.to_owned();
        let name = object_name(campaign_id, variant);
        let segment_id = match audience.get(keys::SEGMENT) {
            Some(id) => id.to_owned(),
            None => match self.find_segment(&name).await? {
                Some(id) => id,
                None => {
                    let body = xml_body(wire::segment_xml(&name, "espbridge campaign audience"));
                    let p = self
                        .ccmd(
                            Method::Put,
                            Repeat::Once,
                            &|t| format!("segmentationservice/{t}/segment"),
                            Some(&body),
                        )
                        .await?;
                    Self::scalar_id(&p, "segment create")?
                }
            },
        };
        // Criteria are AND-ed: adding the same ones again on a retry selects the same members.
        let sid = enc(&segment_id);
        for criterion in [
            wire::string_criterion_xml(&tag_field, &tag),
            wire::not_empty_criterion_xml(&self.config.email_field),
        ] {
            let body = xml_body(criterion);
            self.ccmd(
                Method::Put,
                Repeat::Safe,
                &|t| format!("segmentationservice/{t}/segment/{sid}/criteria/addStringDemographic"),
                Some(&body),
            )
            .await?;
        }
        let members = self.segment_count(&segment_id).await?;
        tracing::info!(campaign = %campaign_id, members, "smartfocus segment ready");
        let mut ids = audience.clone();
        ids.merge(&EspIds::default().with(keys::SEGMENT, segment_id));
        Ok(FinishedAudience { ids, members })
    }

    async fn schedule_send(&self, req: &SendRequest<'_>) -> Result<EspIds, EspError> {
        let segment = req.audience.require(ESP, keys::SEGMENT)?.to_owned();
        let name = object_name(req.campaign_id, req.variant);
        let send_date = self.send_date(req);

        let message_id = match self.messages_named(&name).await?.into_iter().next() {
            Some(id) => id,
            None => {
                let (tid, n) = (enc(req.template_id), enc(&name));
                let p = self
                    .ccmd(
                        Method::Get,
                        Repeat::Once,
                        &|t| format!("message/cloneMessage/{t}/{tid}/{n}"),
                        None,
                    )
                    .await?;
                Self::scalar_id(&p, "cloneMessage")?
            }
        };

        let (campaign_id, status) = match self.find_campaign(&name).await? {
            Some(c) => (c.id, c.status),
            None => {
                let path = format!(
                    "{}/{}/{}/{}/{}/false/true/true",
                    enc(&name),
                    enc("espbridge campaign"),
                    enc(&send_date),
                    enc(&message_id),
                    enc(&segment),
                );
                let p = self
                    .ccmd(
                        Method::Get,
                        Repeat::Once,
                        &|t| format!("campaign/create/{t}/{path}"),
                        None,
                    )
                    .await?;
                (Self::scalar_id(&p, "campaign create")?, None)
            }
        };
        let editable = status
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("editable"));
        if editable {
            let cid = enc(&campaign_id);
            let p = self
                .ccmd(
                    Method::Get,
                    Repeat::Safe,
                    &|t| format!("campaign/post/{t}/{cid}"),
                    None,
                )
                .await?;
            if wire::scalar(&p).map(str::trim) != Some("true") {
                return Err(EspError::Api {
                    esp: ESP,
                    status: 200,
                    code: "POST_REFUSED".to_owned(),
                    text: "campaign/post did not return true".to_owned(),
                    retryable: false,
                });
            }
        }
        self.http.close(Service::Ccmd).await;
        tracing::info!(campaign = %req.campaign_id, "smartfocus campaign posted");
        let mut ids = req.audience.clone();
        ids.merge(
            &EspIds::default()
                .with(keys::MESSAGE, message_id)
                .with(keys::CAMPAIGN, campaign_id)
                .with(keys::SEND_AT, wire::rfc3339(req.send_at, &self.zone)),
        );
        Ok(ids)
    }

    /// `unpostCampaign` (SOAP, reference B.6): a `QUEUED` campaign goes back to `EDITABLE` and
    /// does not send. The campaign's status is read first: `EDITABLE` was unposted before
    /// (`Ok`); `RUNNING`, `COMPLETED` and the other after-send states went out and are refused.
    async fn cancel_send(&self, sent: &EspIds) -> Result<(), EspError> {
        let campaign = sent.require(ESP, keys::CAMPAIGN)?.to_owned();
        let result = self.unpost(&campaign).await;
        self.http.close(Service::Ccmd).await;
        result
    }

    async fn fetch_metrics(&self, sent: &EspIds) -> Result<Option<MetricCounts>, EspError> {
        let campaign = sent.require(ESP, keys::CAMPAIGN)?;
        if let Some(at) = sent.get(keys::SEND_AT)
            && let Ok(at) = at.parse::<jiff::Timestamp>()
            && self.clock.now() < at
        {
            return Ok(None);
        }
        let (cid, path) = (
            enc(campaign),
            self.config.snapshot_path.trim_matches('/').to_owned(),
        );
        let res = self.ccmd_get(&|t| format!("{path}/{t}/{cid}")).await;
        let counts = match res {
            Ok(p) => Snapshot::from_payload(&p).map(|s| s.counts()),
            Err(EspError::Api { status: 404, .. }) if path != "campaign/getCampaignSnapshot" => {
                let p = self
                    .ccmd_get(&|t| format!("campaign/getCampaignSnapshot/{t}/{cid}"))
                    .await?;
                Snapshot::from_payload(&p).map(|s| s.counts())
            }
            Err(e) => return Err(e),
        };
        self.http.close(Service::Ccmd).await;
        // Before the send only nbSelected is set: nothing delivered or bounced means no counts yet.
        Ok(counts.filter(|c| c.delivered > 0 || c.bounces > 0))
    }
}
