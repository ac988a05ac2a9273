//! The ESP port. One implementation per ESP and account; the domain never sees a wire format.
//!
//! Every write is idempotent on the ESP side: objects are created under deterministic names
//! derived from the campaign id (see [`object_name`]), so a retry finds what an earlier attempt
//! made instead of making a second one.

use crate::ids::{AccountId, CampaignId, EspKind};
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A template a marketer may choose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub esp: EspKind,
    pub account: AccountId,
    /// The ESP's own id of the message/e-mail/template.
    pub id: String,
    /// The full name at the ESP.
    pub name: String,
    /// The name shown to marketers (account prefix removed where the ESP's rules use one).
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// ESP-specific kind, e.g. `html` or `cms` for Emarsys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// A rendered preview of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub template_id: String,
    /// `text/html` or `text/plain`.
    pub content_type: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Ids of what the ESP made for a campaign (list id, clone id, launch id...), keyed by a name the
/// adapter chooses. Stored as-is in the campaign record and handed back on later steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EspIds(pub BTreeMap<String, String>);

impl EspIds {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }
    pub fn merge(&mut self, other: &EspIds) {
        for (k, v) in &other.0 {
            self.0.insert(k.clone(), v.clone());
        }
    }
    /// The id under `key`, or a protocol error naming what is missing.
    pub fn require(&self, esp: EspKind, key: &str) -> Result<&str, EspError> {
        self.get(key).ok_or_else(|| EspError::Invalid {
            esp,
            detail: format!("campaign record has no {key}"),
        })
    }
}

/// One audience member as the ESP receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub customer_id: String,
    pub email: Option<String>,
    /// Personalization values, in the order of [`AudienceBatch::field_names`].
    pub fields: Vec<String>,
}

/// A batch of at most [`Esp::max_batch`] contacts.
#[derive(Debug, Clone)]
pub struct AudienceBatch {
    /// Position of the first contact among the campaign's valid rows (0-based); lets adapters
    /// that upload files name them deterministically.
    pub first_ordinal: u64,
    pub field_names: Arc<[String]>,
    pub contacts: Vec<Contact>,
}

/// A row the ESP refused inside an otherwise successful call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Index in the batch.
    pub index: usize,
    pub code: String,
    pub reason: String,
}

/// What the ESP made of one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Contacts the ESP took.
    pub accepted: u64,
    /// Contacts the ESP does not know (e.g. Emarsys 2008, Bronto unknown e-mail): not sent to,
    /// reported as "not in ESP".
    pub not_in_esp: u64,
    /// Other per-row refusals.
    pub row_errors: Vec<RowError>,
}

/// A batch the ESP runs as a job on its side ([`Esp::start_batch_job`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchJob {
    /// The ESP's job id (at most [`BatchJob::MAX_REFERENCE`] bytes: it is stored in the record).
    pub reference: String,
    /// Rows the job was given.
    pub rows: u64,
}

impl BatchJob {
    pub const MAX_REFERENCE: usize = 256;
}

/// What `create_audience` needs.
#[derive(Debug, Clone)]
pub struct AudienceRequest<'a> {
    pub campaign_id: &'a CampaignId,
    /// The A/B variant, when the campaign has several.
    pub variant: Option<&'a str>,
    /// When the send goes out: a container an ESP reserves per pending campaign (a SmartFocus
    /// tag field) is held until then.
    pub send_at: Timestamp,
    /// The manifest's `esp_options` object for this ESP (`null` when absent), for ESPs whose
    /// audience shape a manifest may choose (Silverpop's Lists or Relational Tables mode).
    pub options: &'a serde_json::Value,
}

/// `null`: no `esp_options` in the manifest.
static NO_OPTIONS: serde_json::Value = serde_json::Value::Null;

impl<'a> AudienceRequest<'a> {
    /// A request without `esp_options`.
    pub fn new(campaign_id: &'a CampaignId, variant: Option<&'a str>, send_at: Timestamp) -> Self {
        Self {
            campaign_id,
            variant,
            send_at,
            options: &NO_OPTIONS,
        }
    }

    pub fn with_options(self, options: &'a serde_json::Value) -> Self {
        Self { options, ..self }
    }
}

/// The audience once every batch is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedAudience {
    pub ids: EspIds,
    /// How many contacts the finished container selects now, for ESPs whose batches cannot
    /// tell which ids they know (a SmartFocus segment, a Silverpop query over a relational
    /// table): the upload counts the accepted rows it does not select as `not_in_esp`. `None`
    /// when the batches already counted them.
    pub members: Option<u64>,
}

/// What `schedule_send` needs.
#[derive(Debug, Clone)]
pub struct SendRequest<'a> {
    pub campaign_id: &'a CampaignId,
    /// The A/B variant, when the campaign has several.
    pub variant: Option<&'a str>,
    pub template_id: &'a str,
    pub send_at: Timestamp,
    /// IANA zone the send time is expressed in at the ESP; `None` uses the account default.
    pub timezone: Option<&'a str>,
    /// Ids returned by the audience steps.
    pub audience: &'a EspIds,
    /// The manifest's `esp_options` object for this ESP (may be `null`).
    pub options: &'a serde_json::Value,
    /// The template's stored sender-header override, for ESPs that take headers per send
    /// ([`Esp::default_headers`] is `Some`); `None` means the account's defaults.
    pub headers: Option<&'a SenderHeaders>,
}

/// The From and Reply-To a send goes out with, where the ESP takes them per send (Bronto):
/// account defaults, or a per-template override kept in the campaign table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderHeaders {
    pub from_email: String,
    pub from_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

impl SenderHeaders {
    /// Checks the addresses and the name; every problem is named by its field.
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut errors = Vec::new();
        if let Err(e) = crate::audience::rows::check_email(&self.from_email) {
            errors.push(("from_email".to_owned(), e.to_string()));
        }
        if let Some(r) = &self.reply_to
            && let Err(e) = crate::audience::rows::check_email(r)
        {
            errors.push(("reply_to".to_owned(), e.to_string()));
        }
        let name = self.from_name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            errors.push((
                "from_name".to_owned(),
                "must be 1 to 100 characters without control characters".to_owned(),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Counts for one campaign at one moment (cumulative since the send).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricCounts {
    pub sent: u64,
    pub delivered: u64,
    pub opens: u64,
    pub clicks: u64,
    pub unsubscribes: u64,
    #[serde(default)]
    pub bounces: u64,
    #[serde(default)]
    pub complaints: u64,
}

impl std::ops::AddAssign for MetricCounts {
    fn add_assign(&mut self, o: Self) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.opens += o.opens;
        self.clicks += o.clicks;
        self.unsubscribes += o.unsubscribes;
        self.bounces += o.bounces;
        self.complaints += o.complaints;
    }
}

/// An ESP's own text (a fault string, a reply text) as an error shows it: cut, since an ESP may
/// put anything there, request content included, and errors go to logs and records.
fn bounded(text: &str) -> String {
    crate::text::bounded(text, 300)
}

/// Errors an ESP adapter reports. `is_retryable` decides between "try again later" and "fail the
/// campaign with this reason".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EspError {
    #[error("{esp} refused the credentials: {}", bounded(.detail))]
    Auth { esp: EspKind, detail: String },
    /// The ESP kept throttling for longer than a call waits; the work goes on later.
    #[error("{esp} still throttling after {attempts} attempts over {waited_secs} s")]
    RateLimited {
        esp: EspKind,
        attempts: u32,
        waited_secs: u64,
    },
    #[error("{esp} transient failure: {}", bounded(.detail))]
    Transient { esp: EspKind, detail: String },
    #[error("{esp} API error (HTTP {status}, code {}): {}", bounded(.code), bounded(.text))]
    Api {
        esp: EspKind,
        status: u16,
        code: String,
        text: String,
        retryable: bool,
    },
    #[error("{esp}: {} not found", bounded(.what))]
    NotFound { esp: EspKind, what: String },
    #[error("{esp}: invalid request: {}", bounded(.detail))]
    Invalid { esp: EspKind, detail: String },
    #[error("{esp}: unexpected response: {}", bounded(.detail))]
    Protocol { esp: EspKind, detail: String },
    /// The account cannot take one more pending campaign as it is set up (every tag field of a
    /// pool reserved, say); the detail names the setting to change.
    #[error("{esp}: no room for this campaign: {}", bounded(.detail))]
    Capacity { esp: EspKind, detail: String },
    /// A booked send cannot be unscheduled at the ESP: it went out already, or the ESP's API has
    /// no way to cancel it. Nothing was changed.
    #[error("{esp} cannot cancel the send: {}", bounded(.detail))]
    CannotCancel {
        esp: EspKind,
        why: CannotCancel,
        detail: String,
    },
}

/// Why [`Esp::cancel_send`] could not cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CannotCancel {
    /// The ESP's API has no call that unschedules this kind of send.
    Unsupported,
    /// The send has gone out (or is going out).
    AlreadySent,
}

impl EspError {
    pub fn is_retryable(&self) -> bool {
        match self {
            EspError::RateLimited { .. } | EspError::Transient { .. } => true,
            EspError::Api { retryable, .. } => *retryable,
            EspError::Auth { .. }
            | EspError::NotFound { .. }
            | EspError::Invalid { .. }
            | EspError::Protocol { .. }
            | EspError::Capacity { .. }
            | EspError::CannotCancel { .. } => false,
        }
    }
}

/// The deterministic name of anything espbridge creates at an ESP for a campaign (list, clone,
/// segment, mailing): a retry looks it up by this name.
pub fn object_name(campaign_id: &CampaignId, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("espbridge_{campaign_id}_{v}"),
        None => format!("espbridge_{campaign_id}"),
    }
}

/// The manifest's `esp_options` object for one ESP (`null` when absent), named for adapters
/// that read none and so need no JSON crate of their own.
pub type EspOptions = serde_json::Value;

/// How fast an account takes an audience, from its configuration (what `espbridge check`
/// estimates an upload's time with). A rate the configuration does not bound is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UploadPace {
    /// Contacts one ESP call carries (a batch may take several calls).
    pub rows_per_call: u64,
    /// Calls a minute the account's limit allows, as the adapter paces them.
    pub calls_per_minute: Option<f64>,
    /// Contacts a minute the account's limit allows, as the adapter paces them.
    pub rows_per_minute: Option<f64>,
    /// Calls one upload keeps in flight at once.
    pub concurrency: u32,
    /// Seconds one call is assumed to take where no rate binds (no ESP publishes it): the
    /// round trip and the ESP's work on it.
    pub call_secs: f64,
}

impl UploadPace {
    /// Calls `rows` contacts take.
    pub fn calls(&self, rows: u64) -> u64 {
        rows.div_ceil(self.rows_per_call.max(1))
    }

    /// Time `rows` contacts take: the slowest of the account's rates and of the calls in turn
    /// (`concurrency` at a time), each at least `call_secs`.
    pub fn estimate(&self, rows: u64) -> std::time::Duration {
        let calls = self.calls(rows) as f64;
        let per_minute = |n: f64, rate: Option<f64>| rate.map_or(0.0, |r| n / r.max(1e-9) * 60.0);
        let secs = [
            per_minute(calls, self.calls_per_minute),
            per_minute(rows as f64, self.rows_per_minute),
            calls * self.call_secs.max(0.0) / f64::from(self.concurrency.max(1)),
        ]
        .into_iter()
        .fold(0.0, f64::max);
        // At most a year: a figure beyond any send horizon, never a panic on an absurd pace.
        std::time::Duration::from_secs_f64(secs.min(365.0 * 24.0 * 3600.0))
    }
}

/// The default [`Esp::check_options`]: no key at all.
pub fn no_options(options: &serde_json::Value) -> Result<(), String> {
    match options {
        serde_json::Value::Null => Ok(()),
        serde_json::Value::Object(m) => match m.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("unknown option {:?}", crate::text::bounded(k, 64))),
        },
        _ => Err("must be an object".to_owned()),
    }
}

/// One ESP account.
#[async_trait]
pub trait Esp: Send + Sync {
    fn kind(&self) -> EspKind;
    fn account(&self) -> &AccountId;
    /// Largest number of contacts one upload call takes.
    fn max_batch(&self) -> usize;
    /// The batch size of an audience of `valid_rows` (an ESP whose large audiences go as jobs
    /// batches them by the job, and small ones by the call). By default [`Self::max_batch`].
    fn max_batch_for(&self, _valid_rows: u64) -> usize {
        self.max_batch()
    }
    /// The pace this account's configured limits allow an upload under the manifest's
    /// `esp_options` (`null` when absent). By default: one batch a call, one call at a time,
    /// a second each.
    fn upload_pace(&self, _options: &serde_json::Value) -> UploadPace {
        UploadPace {
            rows_per_call: self.max_batch() as u64,
            calls_per_minute: None,
            rows_per_minute: None,
            concurrency: 1,
            call_secs: 1.0,
        }
    }
    /// Whether this account's template-name rules claim the template name (e.g. the Emarsys
    /// per-account prefix). Used to choose an account when the manifest names none.
    fn claims_template_name(&self, _name: &str) -> bool {
        false
    }
    /// Whether uploads need an e-mail column (Bronto matches contacts by e-mail).
    fn needs_email(&self) -> bool {
        false
    }
    /// Checks the manifest's `esp_options` object for this ESP (`null` when absent): every key
    /// must be one the adapter reads, with a value it accepts. The error names the key and the
    /// problem (the manifest's own text, bounded by the caller). By default an ESP reads none.
    fn check_options(&self, options: &serde_json::Value) -> Result<(), String> {
        no_options(options)
    }
    /// Whether the audience's personalization `fields` reach the ESP with these options (the
    /// campaign is refused when a manifest names fields that would be dropped).
    fn carries_fields(&self, _options: &serde_json::Value) -> bool {
        false
    }
    /// The account's default sender headers, for ESPs that take them per send (Bronto);
    /// `None` for ESPs whose messages carry their own.
    fn default_headers(&self) -> Option<SenderHeaders> {
        None
    }

    /// Templates a marketer may choose, after this ESP's visibility rules.
    async fn list_templates(&self) -> Result<Vec<Template>, EspError>;
    async fn preview(&self, template_id: &str) -> Result<Preview, EspError>;

    /// Creates (or finds, on a retry) the campaign's audience container: its own, so nothing
    /// another campaign uploads changes who this one sends to. Adapters record what they chose
    /// in the returned ids, which every later call receives.
    async fn create_audience(&self, req: &AudienceRequest<'_>) -> Result<EspIds, EspError>;
    /// Batches one upload may keep in flight at once: more than one where the ESP takes
    /// concurrent calls and the adapter's account-wide limits pace them (the next batch's call
    /// then starts before the previous one answers). One by default.
    fn batches_in_flight(&self) -> usize {
        1
    }
    /// Starts `batch` as a job the ESP runs on its side (Silverpop's bulk import), returning
    /// the job's reference, or `None` when this batch goes by
    /// [`upload_batch`](Self::upload_batch) (the default). The upload records the reference
    /// before it waits, so a continuation after a crash waits for the same job with
    /// [`finish_batch_job`](Self::finish_batch_job) instead of starting another. Starting the
    /// same batch twice must not add anyone twice.
    async fn start_batch_job(
        &self,
        _audience: &EspIds,
        _batch: &AudienceBatch,
    ) -> Result<Option<BatchJob>, EspError> {
        Ok(None)
    }
    /// Waits until a job [`start_batch_job`](Self::start_batch_job) started ends, and reads
    /// what it made of the batch's rows. Only called for jobs this adapter started.
    async fn finish_batch_job(
        &self,
        _audience: &EspIds,
        job: &BatchJob,
    ) -> Result<BatchOutcome, EspError> {
        Err(EspError::Invalid {
            esp: self.kind(),
            detail: format!(
                "no batch jobs, yet asked for job {}",
                bounded(&job.reference)
            ),
        })
    }
    /// Adds one batch. Sending the same batch twice must not add anyone twice.
    async fn upload_batch(
        &self,
        audience: &EspIds,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError>;
    /// Called once every batch is in (e.g. build a segment or query over what was uploaded).
    async fn finish_audience(
        &self,
        _campaign_id: &CampaignId,
        _variant: Option<&str>,
        audience: &EspIds,
    ) -> Result<FinishedAudience, EspError> {
        Ok(FinishedAudience {
            ids: audience.clone(),
            members: None,
        })
    }
    /// Clones the template, attaches the audience and schedules the send. Idempotent: a retry
    /// finds the clone and the scheduled send of an earlier attempt.
    async fn schedule_send(&self, req: &SendRequest<'_>) -> Result<EspIds, EspError>;
    /// Unschedules a booked send (the ids [`schedule_send`](Self::schedule_send) returned), so
    /// nothing goes out at its time. Idempotent: a send cancelled before is `Ok`. A send that
    /// went out, or one the ESP's API cannot unschedule, is [`EspError::CannotCancel`] and
    /// changes nothing.
    async fn cancel_send(&self, _sent: &EspIds) -> Result<(), EspError> {
        Err(EspError::CannotCancel {
            esp: self.kind(),
            why: CannotCancel::Unsupported,
            detail: "this adapter has no way to unschedule a send".to_owned(),
        })
    }
    /// Cumulative counts, or `None` while the ESP has none yet (before the send).
    async fn fetch_metrics(&self, sent: &EspIds) -> Result<Option<MetricCounts>, EspError>;
    /// How long after completion [`cleanup`](Self::cleanup) runs; `None` = at completion.
    /// Lets marketers look at what a campaign used (Bronto lists) for a while.
    fn cleanup_after(&self) -> Option<jiff::SignedDuration> {
        None
    }
    /// Removes what the campaign left behind at the ESP, where the ESP needs that. Only objects
    /// espbridge made may be removed; a repeated call is harmless.
    async fn cleanup(&self, _ids: &EspIds) -> Result<(), EspError> {
        Ok(())
    }
}
