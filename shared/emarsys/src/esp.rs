//! [`EmarsysEsp`]: the `Esp` port over Emarsys Suite API v2.
//!
//! # Which e-mails are templates
//!
//! The marketer's rule (README, "What the marketer sets up in Emarsys"): e-mails In Design whose
//! name starts with the account's prefix; HTML e-mails whose recipients come from the API or a
//! contact list, CMS e-mails whose recipients come from the API. `GET /email?status=1` answers
//! one of two field sets (reference `docs/esp/emarsys-smartfocus.md` A.5.1): the current one,
//! with `filter`, `source`, `content_type` and `deleted`, and the older one some accounts
//! still answer, with `segment` in place of `filter` and none of the other three (E4
//! `emails.json`; fixture `email_list.legacy_fields.response.json`). Eligibility is decided
//! from what the answer holds, each rule from the reference:
//!
//! 1. **Status and name**: `status` 1 ("In design", A.6; also asked for with `?status=1`), not
//!    deleted (a non-empty `deleted`, A.5.1; absent counts as not deleted: deleted e-mails are
//!    listed only with `showdeleted=1`, E1 `email_list.rst`), the name starts with the prefix.
//! 2. **Kind**: `content_type` `html` is HTML, `template` is CMS, `block` (VCE) is never a
//!    template. **An absent (or empty) `content_type` means an HTML e-mail**: the field is one
//!    of the newer ones (A.5.1, "newer: … `content_type`"; E2 only) and the older field set
//!    has none, so such e-mails come from before CMS/VCE content types were reported.
//! 3. **A non-empty, non-zero `segment` or `filter` means a segment as recipient source**, and
//!    such an e-mail is never a template: both name the segment (filter) the e-mail is sent to
//!    (E1 `email_list.rst` "filter = the filter identifier"; A.5.1 "Older accounts return
//!    `segment` instead of `filter`"), and an e-mail has either a contact list or a filter,
//!    never both (E1 `email_data.rst`, 10001 "You must select either a contact list or a
//!    filter"; `updatesource`, A.5.6: exactly one of `filterId` / `contactlistId` is non-zero).
//!    `0` is "none", as for `contactlist` (A.5.4 "contactlist (0 = none)").
//! 4. **Recipient source**: `source` `api` ("Using the API") or `userlist` (a list; with no
//!    segment, per rule 3, a contact list) as the answer says (A.5.1 "`source`
//!    (`userlist|profile|api`)"); `profile` or anything else is not a template. Without a
//!    `source`, a non-zero `contactlist` means a contact list as source (same E1/A.5.6 rule).
//! 5. **Where the source cannot be read from the list answer** (no `source`, no segment, no
//!    contact list, and the kind still allows a template), **the e-mail's detail is read once**
//!    (`GET /email/{id}`, whose documented fields include `source`: E1 `email_data.rst`, A.5.2)
//!    and rules 2–4 are applied to the list answer completed by the detail's fields. The detail
//!    read is remembered per adapter (clones share it) for [`SOURCE_READ_TTL`], so repeated
//!    listings do not repeat it (a segment or contact list set meanwhile shows in the list
//!    answer and decides without it); the reads of one listing run [`DETAIL_READS_IN_FLIGHT`]
//!    at a time under the account's rate gate. An e-mail whose detail has no readable source
//!    either is left out (logged with its id); so is one whose detail answers 6004 (deleted
//!    meanwhile).
//!
//! What the older field set cannot tell: without `content_type`, a CMS or VCE e-mail reads as
//! HTML (rule 2), so such an e-mail with an API or contact-list source is listed, as `html`.
//!
//! # Times
//!
//! Emarsys answers `created` as the account's wall clock without an offset (A.8); a template's
//! `created` is handed on as RFC 3339 with the offset of the account's `timezone` at that
//! moment ([`schedule::account_time`]); unreadable is `None`. The launch schedule kept in the
//! campaign's ids is RFC 3339 too, with the offset of the launch's zone.

use crate::client::{Http, TARGET_SHARE};
use crate::config::{EmarsysConfig, EmarsysCredentials};
use crate::schedule;
use crate::wire::{self, Email};
use async_trait::async_trait;
use espbridge_core::Clock;
use espbridge_core::ports::esp::{CannotCancel, object_name};
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, BatchOutcome, Esp, EspError, EspIds, MetricCounts, Preview,
    RowError, SendRequest, Template,
};
use espbridge_core::{AccountId, EspKind};
use espbridge_esp_kit::AdapterError;
use espbridge_esp_kit::{BuildContext, EspHttp, ExposeSecret, RateGate};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::OnceCell;

const ESP: EspKind = EspKind::Emarsys;
/// Emarsys takes at most 10 000 external ids per contact-list call (3002 beyond).
pub const MAX_BATCH: usize = 10_000;
/// "No contact found with the external id".
const CODE_NO_CONTACT: &str = "2008";
/// How long a recipient source read from an e-mail's detail is trusted: a marketer who changes
/// an e-mail's source between "Using the API" and another without a list or segment sees the
/// listing follow within this time.
pub const SOURCE_READ_TTL: SignedDuration = SignedDuration::from_mins(10);
/// Detail reads one listing keeps in flight (the rate gate paces them all the same).
pub const DETAIL_READS_IN_FLIGHT: usize = 4;

/// Keys of the [`EspIds`] this adapter returns.
pub mod keys {
    pub const CONTACT_LIST_ID: &str = "contact_list_id";
    pub const KEY_ID: &str = "key_id";
    pub const EMAIL_ID: &str = "email_id";
    /// The booked minute, RFC 3339 with the offset of the launch's zone
    /// (`2026-11-25T09:30:00+01:00`); Emarsys was sent its wall clock (`2026-11-25 09:30`).
    pub const LAUNCH_SCHEDULE: &str = "launch_schedule";
    pub const LAUNCH_TIMEZONE: &str = "launch_timezone";
}

/// One Emarsys account. Cheap to clone; clones share the HTTP pool, the rate gate (so together they
/// stay under the account's rate limit) and the cached ExternalID field id.
#[derive(Clone)]
pub struct EmarsysEsp {
    config: Arc<EmarsysConfig>,
    /// The account's zone (`config.timezone`), checked when built.
    zone: TimeZone,
    clock: Arc<dyn Clock>,
    http: Http,
    key_id: Arc<OnceCell<String>>,
    /// What e-mail details told about recipient sources the list answer left out (rule 5).
    details: Arc<Mutex<HashMap<String, DetailRead>>>,
}

/// One e-mail detail read for the template rules. Only e-mails with neither a segment nor a
/// contact list in the list answer are read, so a change to either in the list decides the
/// e-mail without the detail; what the list cannot show (the source) is trusted for
/// [`SOURCE_READ_TTL`].
#[derive(Debug, Clone)]
struct DetailRead {
    at: Timestamp,
    /// The detail, without its HTML and text; `None` when Emarsys no longer knew the e-mail
    /// (6004).
    email: Option<Email>,
}

impl DetailRead {
    fn still_holds(&self, now: Timestamp) -> bool {
        now >= self.at && now.duration_since(self.at) < SOURCE_READ_TTL
    }
}

/// Where an e-mail's recipients come from, as far as one answer tells (rules 3 and 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recipients {
    Api,
    ContactList,
    Segment,
    Other,
    Unknown,
}

pub(crate) fn recipients(e: &Email) -> Recipients {
    if e.segment_id().is_some() {
        return Recipients::Segment;
    }
    match e.source() {
        Some("api") => Recipients::Api,
        Some("userlist") => Recipients::ContactList,
        Some(_) => Recipients::Other,
        None if e.contactlist.is_some() => Recipients::ContactList,
        None => Recipients::Unknown,
    }
}

/// What the template rules make of one e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// A template, of this kind (`html` or `cms`).
    Take(&'static str),
    Skip,
    /// The recipient source decides and this answer does not hold it (rule 5).
    ReadDetail,
}

/// Rules 1 to 4 (module docs) on one e-mail as one answer shows it.
pub(crate) fn pick(e: &Email, prefix: &str) -> Pick {
    if e.is_deleted() || e.status.is_some_and(|s| s != 1) || !e.name.starts_with(prefix) {
        return Pick::Skip;
    }
    let kind = match e.content_type() {
        None | Some("html") => "html",
        Some("template") => "cms",
        Some(_) => return Pick::Skip,
    };
    match (kind, recipients(e)) {
        ("html", Recipients::Api | Recipients::ContactList) => Pick::Take("html"),
        ("cms", Recipients::Api) => Pick::Take("cms"),
        (_, Recipients::Unknown) => Pick::ReadDetail,
        _ => Pick::Skip,
    }
}

/// The list answer's e-mail with what it left out taken from the detail.
pub(crate) fn completed(listed: &Email, detail: &Email) -> Email {
    let fill = |a: &Option<String>, b: &Option<String>| {
        a.clone()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| b.clone())
    };
    Email {
        source: fill(&listed.source, &detail.source),
        content_type: fill(&listed.content_type, &detail.content_type),
        contactlist: fill(&listed.contactlist, &detail.contactlist),
        filter: fill(&listed.filter, &detail.filter),
        segment: fill(&listed.segment, &detail.segment),
        ..listed.clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The cache is only ever replaced whole-entry: a panicked holder leaves it usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for EmarsysEsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmarsysEsp")
            .field("account", &self.config.account)
            .field("base_url", &self.config.http.base_url)
            .finish_non_exhaustive()
    }
}

impl EmarsysEsp {
    /// Checks the configuration (URL, zone, limits) and builds the HTTP client; makes no call.
    pub fn new(
        config: EmarsysConfig,
        credentials: EmarsysCredentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError> {
        let zone = schedule::zone(&config.timezone).map_err(|e| AdapterError::Config {
            esp: ESP,
            field: "timezone",
            detail: e.to_string(),
        })?;
        if config.rate_limit_per_minute == 0 {
            return Err(AdapterError::Config {
                esp: ESP,
                field: "rate_limit_per_minute",
                detail: "must be at least 1".to_owned(),
            });
        }
        if credentials.user.is_empty() || credentials.secret.expose_secret().is_empty() {
            return Err(AdapterError::Config {
                esp: ESP,
                field: "credentials",
                detail: "user and secret must not be empty".to_owned(),
            });
        }
        let http = EspHttp::new(ESP, &config.http_settings()?)?;
        // The limit is per API user; an account is one API user. Spaced evenly at 98% of it,
        // requests can never put more than the limit into any 60-second window, fixed or
        // sliding, and a saturated upload stays above 95% of it.
        let gate = RateGate::new(
            ESP,
            Arc::clone(&ctx.limits),
            format!("emarsys/{}/requests", config.account),
            f64::from(config.rate_limit_per_minute) * TARGET_SHARE,
        );
        let http = Http::new(http, credentials, Arc::clone(&ctx.clock), gate);
        Ok(Self {
            config: Arc::new(config),
            zone,
            clock: Arc::clone(&ctx.clock),
            http,
            key_id: Arc::new(OnceCell::new()),
            details: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The pace (requests a minute) the adapter keeps now: the configured limit's, or the
    /// lower one the ESP announced in `X-RateLimit-Limit`.
    pub fn pace(&self) -> f64 {
        self.http.pace()
    }

    pub fn config(&self) -> &EmarsysConfig {
        &self.config
    }

    /// The numeric id of the ExternalID field, looked up once per adapter with `GET /field`.
    pub async fn external_id_field_id(&self) -> Result<String, EspError> {
        self.key_id
            .get_or_try_init(|| async {
                let fields: Vec<wire::Field> = parse(self.http.get("field").await?, "field list")?;
                let wanted = &self.config.external_id_field;
                let found = fields
                    .iter()
                    .find(|f| &f.name == wanted)
                    .or_else(|| fields.iter().find(|f| f.name.eq_ignore_ascii_case(wanted)));
                match found {
                    Some(f) => {
                        tracing::debug!(account = %self.config.account, field_id = %f.id, "emarsys external id field resolved");
                        Ok(f.id.clone())
                    }
                    None => Err(EspError::NotFound {
                        esp: ESP,
                        what: format!("contact field {wanted:?}"),
                    }),
                }
            })
            .await
            .cloned()
    }

    async fn get_email(&self, id: &str) -> Result<Email, EspError> {
        fetch_email(&self.http, id).await
    }

    /// Rule 5: the e-mails the list answer could not decide, with what their detail adds (from
    /// the detail reads remembered, or read now, [`DETAIL_READS_IN_FLIGHT`] at a time).
    async fn complete_from_details(
        &self,
        undecided: &[&Email],
    ) -> Result<HashMap<String, Option<Email>>, EspError> {
        let now = self.clock.now();
        let mut known = HashMap::new();
        let mut to_read = Vec::new();
        {
            let cache = lock(&self.details);
            for e in undecided {
                match cache.get(&e.id).filter(|d| d.still_holds(now)) {
                    Some(d) => {
                        known.insert(e.id.clone(), d.email.clone());
                    }
                    None => to_read.push(*e),
                }
            }
        }
        if to_read.is_empty() {
            return Ok(known);
        }
        tracing::debug!(account = %self.config.account, reads = to_read.len(), "emarsys reading e-mail details for their recipient source");
        let mut pending = to_read.iter().map(|e| e.id.clone());
        let mut running = tokio::task::JoinSet::new();
        let mut read = HashMap::new();
        loop {
            while running.len() < DETAIL_READS_IN_FLIGHT {
                let Some(id) = pending.next() else { break };
                let http = self.http.clone();
                running.spawn(async move {
                    let result = fetch_email(&http, &id).await;
                    (id, result)
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (id, result) = joined.map_err(|e| EspError::Transient {
                esp: ESP,
                detail: format!("an e-mail detail read stopped: {e}"),
            })?;
            let detail = match result {
                Ok(d) => Some(Email {
                    html_source: None,
                    text_source: None,
                    ..d
                }),
                // Deleted since the list answer.
                Err(e) if api_code(&e) == Some("6004") => None,
                Err(e) => return Err(e),
            };
            read.insert(id, detail);
        }
        let at = self.clock.now();
        let mut cache = lock(&self.details);
        for e in to_read {
            let email = read.remove(&e.id).flatten();
            cache.insert(
                e.id.clone(),
                DetailRead {
                    at,
                    email: email.clone(),
                },
            );
            known.insert(e.id.clone(), email);
        }
        Ok(known)
    }

    async fn find_list_by_name(&self, name: &str) -> Result<Option<String>, EspError> {
        let lists: Vec<wire::ContactList> =
            parse(self.http.get("contactlist").await?, "contact lists")?;
        Ok(lists.into_iter().find(|l| l.name == name).map(|l| l.id))
    }

    async fn find_email_by_name(&self, name: &str) -> Result<Option<String>, EspError> {
        let emails: Vec<Email> = parse(self.http.get("email/").await?, "e-mail list")?;
        Ok(emails
            .into_iter()
            .find(|e| e.name == name && !e.is_deleted())
            .map(|e| e.id))
    }

    /// Copies the template under the campaign's name, or finds the copy an earlier attempt made.
    async fn copy_template(&self, template_id: &str, name: &str) -> Result<String, EspError> {
        let body = wire::CopyEmail {
            name: name.to_owned(),
        };
        match self
            .http
            .post(&format!("email/{template_id}/copy"), &body)
            .await
        {
            Ok(data) => {
                let copied: wire::EmailCopied = parse(data, "copy result")?;
                Ok(copied.campaign_id)
            }
            Err(e) if api_code(&e) == Some("6023") => self
                .find_email_by_name(name)
                .await?
                .ok_or_else(|| EspError::Protocol {
                    esp: ESP,
                    detail: "copy name is taken but no e-mail has it".to_owned(),
                }),
            Err(e) => Err(e),
        }
    }

    /// Points the copy at the list: `updatesource` for "Using the API" sources, `patch`
    /// otherwise; each falls back to the other when the account refuses it.
    async fn attach_list(&self, email: &Email, list_id: &str) -> Result<(), EspError> {
        let via_source = email.source.as_deref() == Some("api");
        let first = self.attach_once(&email.id, list_id, via_source).await;
        match first {
            Err(e) if matches!(api_code(&e), Some("6041" | "6037" | "6004")) => {
                // 6004 is also "source not set to Using the API" on updatesource; on patch it
                // means a wrong id, which the fallback then reports again.
                tracing::info!(email_id = %email.id, code = api_code(&e).unwrap_or(""), "emarsys attach fallback");
                self.attach_once(&email.id, list_id, !via_source).await
            }
            other => other,
        }
    }

    async fn attach_once(
        &self,
        email_id: &str,
        list_id: &str,
        via_source: bool,
    ) -> Result<(), EspError> {
        if via_source {
            let body = wire::UpdateSource {
                email_id: None,
                filter_id: "0".into(),
                contactlist_id: list_id.into(),
                exclude_filter_id: None,
                exclude_contactlist_id: None,
            };
            self.http
                .post(&format!("email/{email_id}/updatesource"), &body)
                .await?;
        } else {
            let body = wire::PatchEmail {
                contactlist: Some(list_id.into()),
                ..Default::default()
            };
            self.http
                .post(&format!("email/{email_id}/patch"), &body)
                .await?;
        }
        Ok(())
    }

    /// After a 409/6003 on launch: is the e-mail really launched or scheduled?
    async fn verify_launched(&self, email_id: &str) -> Result<(), EspError> {
        let email = self.get_email(email_id).await?;
        launch_state(&email)
    }
}

/// `GET /email/{id}`: one object (current spec) or a one-element array (legacy docs).
async fn fetch_email(http: &Http, id: &str) -> Result<Email, EspError> {
    let data = http.get(&format!("email/{id}")).await?;
    let one = wire::one_or_first(data).ok_or_else(|| EspError::Protocol {
        esp: ESP,
        detail: format!("e-mail {id}: data is neither an object nor a one-element array"),
    })?;
    parse(one, "e-mail")
}

/// `Ok` when the e-mail is launching or launched/scheduled (api_status 1 or 2).
fn launch_state(email: &Email) -> Result<(), EspError> {
    match email.api_status {
        Some(1 | 2) => Ok(()),
        Some(s @ (10 | -10)) => Err(EspError::Api {
            esp: ESP,
            status: 200,
            code: format!("api_status {s}"),
            text: format!(
                "launch failed with api_error {}",
                email.api_error.unwrap_or_default()
            ),
            retryable: false,
        }),
        other => Err(EspError::Api {
            esp: ESP,
            status: 409,
            code: "6003".to_owned(),
            text: format!(
                "launch refused but the e-mail is not launched (api_status {})",
                other.map_or("absent".to_owned(), |s| s.to_string())
            ),
            retryable: true,
        }),
    }
}

/// The replyCode of an API error, if it is one.
fn api_code(e: &EspError) -> Option<&str> {
    match e {
        EspError::Api { code, .. } => Some(code.as_str()),
        _ => None,
    }
}

fn parse<T: DeserializeOwned>(data: Value, what: &str) -> Result<T, EspError> {
    serde_json::from_value(data).map_err(|e| EspError::Protocol {
        esp: ESP,
        detail: format!("unexpected {what}: {e}"),
    })
}

/// Ids go into URL paths: only digits, so nothing a caller passes can change the path.
fn numeric_id<'a>(what: &str, id: &'a str) -> Result<&'a str, EspError> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(EspError::Invalid {
            esp: ESP,
            detail: format!("{what} must be a numeric Emarsys id"),
        })
    }
}

/// Splits the per-id errors of an upload into "not in Emarsys" and other row errors. The reason
/// text of Emarsys repeats the id; it is masked, since outcomes end up in records and logs.
pub(crate) fn outcome(
    batch: &AudienceBatch,
    inserted: u64,
    errors: &wire::IdErrors,
) -> BatchOutcome {
    let mut out = BatchOutcome {
        accepted: inserted,
        ..Default::default()
    };
    if errors.0.is_empty() {
        return out;
    }
    for (index, contact) in batch.contacts.iter().enumerate() {
        let Some(codes) = errors.0.get(&contact.customer_id) else {
            continue;
        };
        if codes.contains_key(CODE_NO_CONTACT) {
            out.not_in_esp += 1;
        } else if let Some((code, text)) = codes.iter().next() {
            out.row_errors.push(RowError {
                index,
                code: code.clone(),
                reason: text.replace(contact.customer_id.as_str(), "<id>"),
            });
        }
    }
    out
}

#[async_trait]
impl Esp for EmarsysEsp {
    fn kind(&self) -> EspKind {
        ESP
    }

    fn account(&self) -> &AccountId {
        &self.config.account
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    /// Four: Emarsys documents a rate (per API user), not a concurrency limit, and the rate
    /// gate paces every call of the account. At 1,000 a minute the gate leaves 61 ms between
    /// calls; a call adding 10,000 ids takes its round trip (100–200 ms across the internet)
    /// plus the ESP's work, so it takes three or four calls in flight to keep a call waiting
    /// at the gate (measured: two give 93.6% of the allowance at 100 ms a call).
    fn batches_in_flight(&self) -> usize {
        4
    }

    /// One call per batch of ids, at the pace the rate gate keeps (the configured limit at 98%,
    /// or the lower one the ESP announced); a call adding 10,000 ids is taken as 2 s.
    fn upload_pace(&self, _options: &Value) -> espbridge_core::ports::esp::UploadPace {
        espbridge_core::ports::esp::UploadPace {
            rows_per_call: MAX_BATCH as u64,
            calls_per_minute: Some(self.pace()),
            rows_per_minute: None,
            concurrency: 4,
            call_secs: 2.0,
        }
    }

    fn claims_template_name(&self, name: &str) -> bool {
        let prefix = &self.config.template_prefix;
        !prefix.is_empty() && name.starts_with(prefix.as_str())
    }

    async fn list_templates(&self) -> Result<Vec<Template>, EspError> {
        let emails: Vec<Email> = parse(self.http.get("email/?status=1").await?, "e-mail list")?;
        let total = emails.len();
        let prefix = self.config.template_prefix.as_str();
        let picks: Vec<Pick> = emails
            .iter()
            .map(|e| match pick(e, prefix) {
                // Its id goes into a path: one that is not numeric is not read, nor listed.
                Pick::ReadDetail if numeric_id("e-mail id", &e.id).is_err() => Pick::Skip,
                p => p,
            })
            .collect();
        let undecided: Vec<&Email> = emails
            .iter()
            .zip(&picks)
            .filter(|(_, p)| **p == Pick::ReadDetail)
            .map(|(e, _)| e)
            .collect();
        let details = self.complete_from_details(&undecided).await?;
        // Only e-mails still listed keep their detail reads.
        let listed: std::collections::HashSet<&str> =
            emails.iter().map(|e| e.id.as_str()).collect();
        lock(&self.details).retain(|id, _| listed.contains(id.as_str()));
        let undecided = undecided.len();
        let mut templates = Vec::new();
        for (e, p) in emails.into_iter().zip(picks) {
            let (e, p) = match p {
                Pick::ReadDetail => match details.get(&e.id) {
                    Some(Some(detail)) => {
                        let e = completed(&e, detail);
                        let p = pick(&e, prefix);
                        if p == Pick::ReadDetail {
                            tracing::warn!(account = %self.config.account, email_id = %e.id, "emarsys e-mail left out: its recipient source is in neither the list nor its detail");
                        }
                        (e, p)
                    }
                    _ => (e, Pick::Skip),
                },
                p => (e, p),
            };
            let Pick::Take(kind) = p else { continue };
            templates.push(Template {
                esp: ESP,
                account: self.config.account.clone(),
                display_name: e.name.strip_prefix(prefix).unwrap_or(&e.name).to_owned(),
                created: e
                    .created
                    .as_deref()
                    .and_then(|c| schedule::account_time(c, &self.zone)),
                id: e.id,
                name: e.name,
                subject: e.subject,
                kind: Some(kind.to_owned()),
            });
        }
        tracing::info!(account = %self.config.account, total, undecided, selected = templates.len(), "emarsys templates listed");
        Ok(templates)
    }

    async fn preview(&self, template_id: &str) -> Result<Preview, EspError> {
        let id = numeric_id("template id", template_id)?;
        let rendered = self
            .http
            .post(
                &format!("email/{id}/preview"),
                &wire::PreviewRequest {
                    version: "html".to_owned(),
                },
            )
            .await?;
        let email = self.get_email(id).await?;
        // The shape of preview `data` is undocumented (the docs show `{}`): a string is the
        // rendered HTML; anything else falls back to the stored source.
        let body = match rendered {
            Value::String(s) if !s.is_empty() => s,
            _ => email.html_source.clone().unwrap_or_default(),
        };
        Ok(Preview {
            template_id: id.to_owned(),
            content_type: "text/html".to_owned(),
            body,
            subject: email.subject,
        })
    }

    async fn create_audience(&self, req: &AudienceRequest<'_>) -> Result<EspIds, EspError> {
        let (campaign_id, variant) = (req.campaign_id, req.variant);
        let key_id = self.external_id_field_id().await?;
        let name = object_name(campaign_id, variant);
        let body = wire::CreateContactList {
            name: name.clone(),
            description: Some(format!("espbridge audience of campaign {campaign_id}")),
            key_id: key_id.clone(),
            external_ids: Vec::new(),
        };
        let list_id = match self.http.post("contactlist", &body).await {
            Ok(data) => parse::<wire::ContactListCreated>(data, "contact list")?.id,
            Err(e) if api_code(&e) == Some("3005") => {
                tracing::info!(%campaign_id, "emarsys contact list exists; reusing it");
                self.find_list_by_name(&name)
                    .await?
                    .ok_or_else(|| EspError::Protocol {
                        esp: ESP,
                        detail: "contact list name is taken but no list has it".to_owned(),
                    })?
            }
            Err(e) => return Err(e),
        };
        tracing::info!(%campaign_id, contact_list_id = %list_id, "emarsys audience ready");
        Ok(EspIds::default()
            .with(keys::CONTACT_LIST_ID, list_id)
            .with(keys::KEY_ID, key_id))
    }

    async fn upload_batch(
        &self,
        audience: &EspIds,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError> {
        if batch.contacts.len() > MAX_BATCH {
            return Err(EspError::Invalid {
                esp: ESP,
                detail: format!(
                    "batch of {} contacts exceeds the limit of {MAX_BATCH}",
                    batch.contacts.len()
                ),
            });
        }
        let list_id = numeric_id(
            "contact list id",
            audience.require(ESP, keys::CONTACT_LIST_ID)?,
        )?;
        if batch.contacts.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let key_id = match audience.get(keys::KEY_ID) {
            Some(k) => k.to_owned(),
            None => self.external_id_field_id().await?,
        };
        let body = wire::AddContacts {
            key_id,
            external_ids: batch
                .contacts
                .iter()
                .map(|c| c.customer_id.clone())
                .collect(),
        };
        let data = self
            .http
            .post(&format!("contactlist/{list_id}/add"), &body)
            .await?;
        let added: wire::ContactsAdded = parse(data, "contact-list add result")?;
        let out = outcome(batch, added.inserted_contacts, &added.errors);
        tracing::info!(
            contact_list_id = %list_id,
            first_ordinal = batch.first_ordinal,
            sent = batch.contacts.len(),
            accepted = out.accepted,
            not_in_esp = out.not_in_esp,
            row_errors = out.row_errors.len(),
            "emarsys batch uploaded"
        );
        Ok(out)
    }

    async fn schedule_send(&self, req: &SendRequest<'_>) -> Result<EspIds, EspError> {
        let template_id = numeric_id("template id", req.template_id)?;
        let list_id = numeric_id(
            "contact list id",
            req.audience.require(ESP, keys::CONTACT_LIST_ID)?,
        )?
        .to_owned();
        let zone = req.timezone.unwrap_or(&self.config.timezone).to_owned();
        let when = schedule::launch_schedule(req.send_at, &zone)?;
        let booked = schedule::launch_instant(req.send_at, &zone)?;
        let name = object_name(req.campaign_id, req.variant);

        let email_id = self.copy_template(template_id, &name).await?;
        let email_id = numeric_id("copied e-mail id", &email_id)?.to_owned();
        let ids = EspIds::default()
            .with(keys::EMAIL_ID, email_id.clone())
            .with(keys::CONTACT_LIST_ID, list_id.clone())
            .with(keys::LAUNCH_SCHEDULE, booked)
            .with(keys::LAUNCH_TIMEZONE, zone.clone());

        let email = self.get_email(&email_id).await?;
        match email.api_status {
            // An earlier attempt got as far as the launch.
            Some(1 | 2) => {
                tracing::info!(campaign_id = %req.campaign_id, %email_id, "emarsys send already scheduled");
                return Ok(ids);
            }
            // An earlier launch failed at Emarsys: report why instead of relaunching blindly.
            Some(10 | -10) => {
                launch_state(&email)?;
            }
            _ => {}
        }
        if email.contactlist.as_deref() != Some(list_id.as_str()) {
            self.attach_list(&email, &list_id).await?;
        }
        let launch = wire::Launch {
            schedule: Some(when.clone()),
            timezone: Some(zone.clone()),
            ..Default::default()
        };
        match self
            .http
            .post(&format!("email/{email_id}/launch"), &launch)
            .await
        {
            Ok(_) => {}
            Err(e @ EspError::Api { status: 409, .. }) if api_code(&e) == Some("6003") => {
                self.verify_launched(&email_id).await?;
            }
            Err(e) => return Err(e),
        }
        tracing::info!(campaign_id = %req.campaign_id, %email_id, contact_list_id = %list_id, schedule = %when, timezone = %zone, "emarsys send scheduled");
        Ok(ids)
    }

    /// `POST /email/{id}/stop`: a scheduled e-mail is unscheduled and goes back to "In design"
    /// (reference A.5.7, E2 `stopEmailCampaign`). On 400/6003 ("Invalid email status": nothing
    /// scheduled to stop) the e-mail is read: still in design means stopped before (`Ok`);
    /// launched means it went out, which cannot be cancelled.
    async fn cancel_send(&self, sent: &EspIds) -> Result<(), EspError> {
        let email_id = numeric_id("e-mail id", sent.require(ESP, keys::EMAIL_ID)?)?;
        match self
            .http
            .post(&format!("email/{email_id}/stop"), &serde_json::json!({}))
            .await
        {
            Ok(_) => {
                tracing::info!(%email_id, "emarsys launch stopped: the e-mail is back in design");
                Ok(())
            }
            Err(e) if api_code(&e) == Some("6003") => {
                let email = self.get_email(email_id).await?;
                if email.api_status == Some(2) || email.status == Some(3) {
                    return Err(EspError::CannotCancel {
                        esp: ESP,
                        why: CannotCancel::AlreadySent,
                        detail: format!(
                            "e-mail {email_id} is launched (status {}, api_status {}): Emarsys stops only a launch that has not gone out",
                            email.status.unwrap_or_default(),
                            email.api_status.unwrap_or_default()
                        ),
                    });
                }
                tracing::info!(%email_id, "emarsys e-mail not scheduled: stopped before");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch_metrics(&self, sent: &EspIds) -> Result<Option<MetricCounts>, EspError> {
        let email_id = numeric_id("e-mail id", sent.require(ESP, keys::EMAIL_ID)?)?;
        let data = match self
            .http
            .get(&format!("email/{email_id}/responsesummary"))
            .await
        {
            Ok(d) => d,
            // Not launched yet: no counts until the send time has passed.
            Err(e) if api_code(&e) == Some("6003") => {
                tracing::info!(%email_id, "emarsys metrics not available yet");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let s: wire::ResponseSummary = parse(data, "response summary")?;
        let counts = metric_counts(&s);
        tracing::info!(%email_id, sent = counts.sent, delivered = counts.delivered, opens = counts.opens, clicks = counts.clicks, "emarsys metrics fetched");
        Ok(Some(counts))
    }
}

pub(crate) fn metric_counts(s: &wire::ResponseSummary) -> MetricCounts {
    MetricCounts {
        sent: s.sent,
        delivered: s.delivered(),
        opens: s.opened,
        clicks: s.unique_clicks,
        unsubscribes: s.unsubscribe,
        bounces: s.bounces(),
        complaints: s.complained,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ManualClock;
    use espbridge_core::ports::Contact;

    fn esp(prefix: &str) -> EmarsysEsp {
        let mut c = EmarsysConfig::new(AccountId::parse("eu").unwrap());
        c.template_prefix = prefix.to_owned();
        let creds = EmarsysCredentials {
            user: "u".into(),
            secret: "s".into(),
        };
        let clock = Arc::new(ManualClock::new("2026-11-24T00:00:00Z".parse().unwrap()));
        EmarsysEsp::new(c, creds, &BuildContext::in_memory(clock)).unwrap()
    }

    fn email(json: serde_json::Value) -> Email {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn template_rules_by_kind_source_status_and_prefix() {
        use serde_json::json;
        let pick = |j| pick(&email(j), "opt_");
        let html = Pick::Take("html");
        assert_eq!(
            pick(json!({"id":"1","name":"opt_a","status":"1","source":"api"})),
            html
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"userlist","content_type":"html"})
            ),
            html
        );
        assert_eq!(
            pick(json!({"id":"1","name":"opt_a","status":"1","source":"profile"})),
            Pick::Skip
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"api","content_type":"template"})
            ),
            Pick::Take("cms")
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"userlist","content_type":"template"})
            ),
            Pick::Skip
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"api","content_type":"block"})
            ),
            Pick::Skip
        );
        assert_eq!(
            pick(json!({"id":"1","name":"opt_a","status":"3","source":"api"})),
            Pick::Skip
        );
        assert_eq!(
            pick(json!({"id":"1","name":"other","status":"1","source":"api"})),
            Pick::Skip
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"api","deleted":"2020-01-01 00:00:00"})
            ),
            Pick::Skip
        );
        let e = esp("opt_");
        assert!(e.claims_template_name("opt_spring"));
        assert!(!e.claims_template_name("spring"));
        assert!(!esp("").claims_template_name("anything"));
    }

    #[test]
    fn a_segment_under_either_name_is_a_segment_source() {
        use serde_json::json;
        let pick = |j| pick(&email(j), "opt_");
        for segment in [json!("22222"), json!(22222)] {
            for key in ["filter", "segment"] {
                let mut j = json!({"id":"1","name":"opt_a","status":"1","source":"userlist"});
                j[key] = segment.clone();
                assert_eq!(recipients(&email(j.clone())), Recipients::Segment, "{j}");
                assert_eq!(pick(j.clone()), Pick::Skip, "{j}");
                // Even with an API source, and without any source.
                j["source"] = json!("api");
                assert_eq!(pick(j.clone()), Pick::Skip, "{j}");
                j.as_object_mut().unwrap().remove("source");
                assert_eq!(pick(j), Pick::Skip);
            }
        }
        // "0" and "" are no segment.
        for none in [json!("0"), json!(""), json!(0), serde_json::Value::Null] {
            let j = json!({"id":"1","name":"opt_a","status":"1","source":"api","filter":none.clone(),"segment":none});
            assert_eq!(pick(j), Pick::Take("html"));
        }
    }

    #[test]
    fn the_older_field_set_is_decided_from_what_it_holds() {
        use serde_json::json;
        let pick = |j| pick(&email(j), "opt_");
        // No content_type: HTML. No source, a contact list: a contact-list source.
        assert_eq!(
            pick(json!({"id":"1","name":"opt_a","status":"1","segment":"0","contactlist":"77"})),
            Pick::Take("html")
        );
        // No source, no segment, no list: the detail must say.
        let bare = json!({"id":"1","name":"opt_a","status":"1","segment":"0","contactlist":"0"});
        assert_eq!(pick(bare.clone()), Pick::ReadDetail);
        assert_eq!(recipients(&email(bare.clone())), Recipients::Unknown);
        // ... but not when the rest already rules it out.
        assert_eq!(
            pick(json!({"id":"1","name":"other","status":"1","segment":"0"})),
            Pick::Skip
        );
        assert_eq!(
            pick(json!({"id":"1","name":"opt_a","status":"1","content_type":"block"})),
            Pick::Skip
        );
        // A CMS e-mail with a contact list is not a template, whatever its source.
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","content_type":"template","contactlist":"77"})
            ),
            Pick::Skip
        );
        assert_eq!(
            pick(json!({"id":"1","name":"opt_a","status":"1","content_type":"template"})),
            Pick::ReadDetail
        );
        // Completed by the detail (E1 `email_data.rst` field set).
        let listed = email(bare);
        for (source, want) in [
            ("api", Pick::Take("html")),
            ("userlist", Pick::Take("html")),
            ("profile", Pick::Skip),
        ] {
            let detail =
                email(json!({"id":"1","name":"opt_a","status":"1","source":source,"filter":"0"}));
            assert_eq!(super::pick(&completed(&listed, &detail), "opt_"), want);
        }
        // A detail with a segment, or with nothing more, decides nothing better.
        let detail = email(json!({"id":"1","segment":"5","source":"userlist"}));
        assert_eq!(
            recipients(&completed(&listed, &detail)),
            Recipients::Segment
        );
        let detail = email(json!({"id":"1"}));
        assert_eq!(
            recipients(&completed(&listed, &detail)),
            Recipients::Unknown
        );
        // What the list answer holds wins over the detail.
        let listed = email(json!({"id":"1","name":"opt_a","source":"api","content_type":"html"}));
        let detail = email(json!({"id":"1","source":"profile","content_type":"block"}));
        let done = completed(&listed, &detail);
        assert_eq!(
            (done.source(), done.content_type()),
            (Some("api"), Some("html"))
        );
    }

    #[test]
    fn recorded_payloads_of_both_field_sets_follow_the_rules() {
        let envelope = |name: &str| -> wire::Envelope {
            serde_json::from_slice(&std::fs::read(crate::tests_support::fixture(name)).unwrap())
                .unwrap()
        };
        let list =
            |name: &str| -> Vec<Email> { serde_json::from_value(envelope(name).data).unwrap() };
        // Current field set (E1): a segment with source `userlist`, and a deleted e-mail.
        let current = list("email_list.response.json");
        assert_eq!(recipients(&current[0]), Recipients::Segment);
        assert!(current[1].is_deleted());
        // Older field set (E4): `segment`, no source / content_type / deleted.
        let older = list("email_list.legacy_fields.response.json");
        for e in &older {
            assert_eq!(e.segment_id(), Some("22222"));
            assert_eq!(
                (e.source(), e.content_type(), e.is_deleted()),
                (None, None, false)
            );
            assert_eq!(recipients(e), Recipients::Segment);
            assert_eq!(pick(e, ""), Pick::Skip);
            // Launched (status 3) and sent to a segment: skipped on both counts; In Design
            // without the segment, it would need its detail.
            let in_design = Email {
                status: Some(1),
                segment: None,
                ..e.clone()
            };
            assert_eq!(pick(&in_design, ""), Pick::ReadDetail);
        }
        // The derived In-Design example of the older field set, and its details.
        let derived = list("email_list.legacy_fields.in_design.derived.json");
        let picks: Vec<_> = derived.iter().map(|e| pick(e, "optimove_")).collect();
        assert_eq!(picks, [Pick::ReadDetail, Pick::Take("html"), Pick::Skip]);
        let detail: Email = serde_json::from_value(
            wire::one_or_first(envelope("email_get.legacy_fields.derived.json").data).unwrap(),
        )
        .unwrap();
        assert_eq!(detail.id, derived[0].id);
        assert_eq!(
            pick(&completed(&derived[0], &detail), "optimove_"),
            Pick::Take("html")
        );
    }

    #[test]
    fn created_is_rfc3339_in_the_account_zone() {
        let zone = schedule::zone("Europe/Berlin").unwrap();
        let e = email(serde_json::json!({"id":"1","created":"2011-08-12 18:12:23"}));
        assert_eq!(
            e.created
                .as_deref()
                .and_then(|c| schedule::account_time(c, &zone))
                .as_deref(),
            Some("2011-08-12T18:12:23+02:00")
        );
    }

    #[test]
    fn new_refuses_bad_configuration() {
        let creds = || EmarsysCredentials::new("u", "s");
        let ctx = BuildContext::in_memory(Arc::new(espbridge_core::SystemClock));
        let base = EmarsysConfig::new(AccountId::parse("eu").unwrap());
        // A bad base URL never gets this far: the configuration refuses it while it is read.
        let e = serde_json::from_str::<EmarsysConfig>(r#"{"account":"eu","base_url":"not a url"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("base_url"), "{e}");
        let mut c = base.clone();
        c.timezone = "Nowhere/City".into();
        assert!(matches!(
            EmarsysEsp::new(c, creds(), &ctx),
            Err(AdapterError::Config {
                esp: ESP,
                field: "timezone",
                ..
            })
        ));
        let mut c = base.clone();
        c.rate_limit_per_minute = 0;
        assert!(EmarsysEsp::new(c, creds(), &ctx).is_err());
        let empty = EmarsysCredentials::new("u", "");
        assert!(EmarsysEsp::new(base, empty, &ctx).is_err());
    }

    fn batch(ids: &[&str]) -> AudienceBatch {
        AudienceBatch {
            first_ordinal: 0,
            field_names: Arc::from(Vec::<String>::new()),
            contacts: ids
                .iter()
                .map(|id| Contact {
                    customer_id: (*id).to_owned(),
                    email: None,
                    fields: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn upload_outcome_splits_unknown_ids_from_other_errors_and_masks_ids() {
        let errors: wire::IdErrors = serde_json::from_value(serde_json::json!({
            "C2": {"2008": "No contact found with the external id: 4980 - C2"},
            "C4": {"2010": "More than one contact with the external id: 4980 - C4"}
        }))
        .unwrap();
        let out = outcome(&batch(&["C1", "C2", "C3", "C4"]), 2, &errors);
        assert_eq!(out.accepted, 2);
        assert_eq!(out.not_in_esp, 1);
        assert_eq!(
            out.row_errors,
            vec![RowError {
                index: 3,
                code: "2010".into(),
                reason: "More than one contact with the external id: 4980 - <id>".into()
            }]
        );
        let clean = outcome(&batch(&["C1"]), 1, &wire::IdErrors::default());
        assert_eq!(
            clean,
            BatchOutcome {
                accepted: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn metrics_derive_delivered_and_bounces() {
        let s: wire::ResponseSummary = serde_json::from_value(serde_json::json!({
            "sent":"9850","planned":"10000","soft_bounces":"40","hard_bounces":"25","block_bounces":"5",
            "opened":"3120","unsubscribe":"18","total_clicks":"1402","unique_clicks":"870","complained":"2"
        }))
        .unwrap();
        assert_eq!(
            metric_counts(&s),
            MetricCounts {
                sent: 9850,
                delivered: 9780,
                opens: 3120,
                clicks: 870,
                unsubscribes: 18,
                bounces: 70,
                complaints: 2
            }
        );
        let odd: wire::ResponseSummary =
            serde_json::from_value(serde_json::json!({"sent":"1","hard_bounces":"5"})).unwrap();
        let m = metric_counts(&odd);
        assert_eq!((m.delivered, m.bounces, m.complaints), (0, 5, 0));
    }

    #[test]
    fn launch_state_accepts_1_and_2_and_reports_failures() {
        let st = |s: &str| {
            launch_state(&email(
                serde_json::json!({"id":"1","api_status":s,"api_error":"5"}),
            ))
        };
        assert!(st("1").is_ok());
        assert!(st("2").is_ok());
        for failed in ["10", "-10"] {
            match st(failed) {
                Err(EspError::Api {
                    text,
                    retryable: false,
                    ..
                }) => assert!(text.contains("api_error 5"), "{text}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            st("0"),
            Err(EspError::Api {
                retryable: true,
                ..
            })
        ));
    }

    #[test]
    fn ids_in_paths_must_be_numeric() {
        assert_eq!(numeric_id("x", "12345").unwrap(), "12345");
        for bad in ["", "12/../3", "1?a=b", "abc", "123456789012345678901"] {
            assert!(
                matches!(numeric_id("x", bad), Err(EspError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn oversized_batch_is_refused_before_any_call() {
        let e = esp("");
        let ids: Vec<String> = (0..=MAX_BATCH).map(|i| format!("C{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let audience = EspIds::default().with(keys::CONTACT_LIST_ID, "12");
        let err = e.upload_batch(&audience, &batch(&refs)).await.unwrap_err();
        assert!(matches!(err, EspError::Invalid { .. }), "{err:?}");
        let missing = e
            .upload_batch(&EspIds::default(), &batch(&["C1"]))
            .await
            .unwrap_err();
        assert!(matches!(missing, EspError::Invalid { .. }), "{missing:?}");
    }
}
