//! SmartFocus (Emailvision) Campaign Commander simulator: the REST (XML) API of the `apiccmd`
//! and `apibatchmember` services.
//!
//! # The protocol, as simulated
//!
//! * **Base URL** `http://127.0.0.1:PORT/`; services at `{svc}/services/rest/...` with `svc` =
//!   `apiccmd` or `apibatchmember`. Path segments are percent-decoded and a raw `+` in them
//!   becomes a space (the reference warns the real servers do this). Where the reference has
//!   both styles, parameters come in the path (PI, fixed order) or as a query (QS, names as in
//!   the WSDL: `token`, `id`, `limit`, `field`, `value`, `part`, `newName`, ...).
//! * **Envelope**: `<response responseStatus="success">` with scalars (and lists) in
//!   `<result xsi:type="xs:...">`, structured results as child elements; every error is HTTP
//!   500 with `<response responseStatus="failed"><description/><fields/><status/></response>`.
//! * **Sessions**: `connect/open/{login}/{password}/{key}` or `connect/open?login=&password=&key=`
//!   gives a token valid for **its service only**, for `token_lifetime` (60 min) on the injected
//!   clock and `session_max_calls` calls (the manager's call quota, if set);
//!   `connect/close/{token}` (or `?token=`) ends it. `max_sessions` (if set) caps the sessions
//!   open at once, both services together: one more `connect/open` answers the documented
//!   "No available connection for manager {login}.".
//! * **Stricter accounts**: `session_max_calls` and `max_sessions` make the account as strict
//!   as a manager may set it (a few calls per session, few sessions), so the client is tested
//!   against it; [`SmartFocusSim::sessions_opened`], [`SmartFocusSim::peak_sessions`] and
//!   [`SmartFocusSim::calls_served`] tell how it coped.
//! * **apiccmd**: `message/getLastEmailMessages/{token}/{limit}`,
//!   `message/getEmailMessagesByField/{token}/{field}/{value}/{limit}` (also the singular
//!   `getEmailMessageByField`; this is how a message is found by name: field `name`),
//!   `message/getMessagesByPeriod/{token}/{dateBegin}/{dateEnd}`, `message/getMessage/{token}/{id}`,
//!   `message/getEmailMessagePreview/{token}/{id}/{HTML|text}`,
//!   `message/cloneMessage/{token}/{id}/{newName}`;
//!   `segmentationservice/{token}/segment` (PUT create, XML `<segmentation>`),
//!   `segmentationservice/{token}/segment/{id}` (GET read, POST update, DELETE),
//!   `segmentationservice/{token}/segment/list/{page}/items/{n}`,
//!   `segmentationservice/{token}/segment/{id}/criteria/addStringDemographic` (PUT),
//!   `segmentationservice/{token}/segment/{id}/count`;
//!   `campaign/create/{token}/{name}/{desc}/{sendDate}/{messageId}/{mailinglistId}/{notifProgress}/{postClickTracking}/{emaildedupflg}`,
//!   `campaign/post/{token}/{id}`, `campaign/getCampaign/{token}/{id}`,
//!   `campaign/getCampaignStatus/{token}/{id}`, `campaign/last/{token}/{limit}`,
//!   `campaign/getCampaignsByField/{token}/{field}/{value}/{limit}`,
//!   `campaign/getCampaignSnapshotReport/{token}/{id}` (also `campaign/getCampaignSnapshot/...`).
//! * **apiccmd SOAP binding** `POST apiccmd/services/CcmdService` (reference B.1): a SOAP 1.1
//!   envelope whose body is one operation in `http://api.service.apiccmd.emailvision.com/`,
//!   parameters unqualified. Only `getMessageSummaryList(token, listOptionsEntity)` is served
//!   (S1/S2 beans): `page`, `pageSize`, `search` (`messageId`, `name`, `minCreatedDate`,
//!   `maxCreatedDate`, `from`, `messageType`, `subject`, `to`, `isBounceBack`) and
//!   `sortOptions/sortOption` (`column`, `order` ASC|DESC), answered as
//!   `ns2:getMessageSummaryListResponse/return` with `messageSummaryList/messageSummary` items
//!   (the `APIMessageSummary` fields: `messageId`, `name`, `manager`, `createdDate`, `from`,
//!   `fromEmail`, `messageType`, `subject`, `to`, `replyTo`, `replyToEmail`, `isBounceBack`),
//!   `pageSize`, `nbTotalItems`, `page`, `nextPage`, `previousPage`. The token is the apiccmd
//!   one of REST `connect/open`, counted against the same session quota. Errors are SOAP
//!   faults on HTTP 500 whose `detail` holds the `description/fields/status` triple. Answers
//!   are `text/xml` (REST answers `application/xml`).
//! * **Accounts of any size**: `messages` seeds as many messages as given
//!   ([`SeedMessage::series`] for thousands), oldest first, a day apart (spread over the last
//!   year beyond 365), e-mails or SMS ([`SeedMessage::sms`]). The e-mail calls
//!   (`getLastEmailMessages`, `getEmailMessagesByField`) list e-mails only, with no cap on
//!   `limit`; `getMessagesByPeriod` lists both kinds.
//! * **apibatchmember**: `PUT batchmemberservice/{token}/batchmember/mergeUpload|insertUpload`
//!   (CRLF multipart: XML part `mergeUpload`/`insertUpload` + base64 `inputStream`),
//!   `GET .../batchmember/{uploadId}/getUploadStatus`, `GET .../batchmember/getLastUpload`
//!   (also `getLastUploads`; the last 20 uploads).
//!   Uploads move STORAGE → VALIDATED → QUEUED → IMPORTING → DONE, one step per
//!   `upload_step_delay` of clock time or per `upload_polls_per_step` status polls, whichever
//!   is faster; members change when the upload reaches DONE. At most `max_pending_uploads` are
//!   not final at once; one more is refused with `MAX_NB_UPLOADS` and counted as a limit
//!   refusal ([`SimView::limit_refusals`]).
//! * **Latency**: every request is counted in flight from its arrival and held
//!   [`SimView::set_latency`] (the setup's `latency`) before it is answered.
//! * **Member table**: it exists before espbridge. Every customer id is a member with an e-mail
//!   address (`email_field`, synthesized as `<id>@members.example`) unless
//!   [`espbridge_sim::in_share`]`(id, unknown_id_share)` (the setup's `unknown_share`). Only the
//!   members an upload touched are held, so memory follows the uploads, not the account. The
//!   fields are `customer_id_field`, `email_field`, the `tag_fields` (`CAMPAIGN_TAG_1` …
//!   `CAMPAIGN_TAG_10`) and `other_member_fields`; uploads and criteria may use any of them.
//! * **Sends**: a posted campaign is sent at its `sendDate` to the members its segment selects
//!   then, and that audience is frozen ([`SimView::sends`]). Time is let pass before every
//!   request: what came due since the last one (imports completing, send dates) is processed
//!   in time order, so an import that completed before a send date is in that send and one
//!   that completed after is not.
//!
//! # Choices where the reference is UNCERTAIN
//!
//! * Lists (message, campaign and segment ids) are repeated `<result xsi:type="xs:long">`
//!   elements, mirroring the SOAP `<return>` repetition. Objects are one child of `<response>`:
//!   `<message>`, `<campaign>`, `<segmentation>`, `<campaignSnapshot>`, with the SOAP field names.
//! * Session errors (unknown, closed, expired, other-service token) all answer "Your session has
//!   expired" with status `CHECK_SESSION_FAILED`; an exhausted call quota answers "The maximum
//!   number of connection allowed per session has been reached" and ends the session. Bad
//!   credentials answer "No manager retrieved for those login, password." (`CONNECTION_FAILED`).
//!   Other apiccmd errors use invented statuses (`INVALID_PARAMETERS`, `NOT_FOUND`, ...).
//! * `getCampaignStatus` answers the mixed-case form of the fixture (`Editable`, `Queued`,
//!   `Running`, `Completed`); `getCampaign` carries the enum form (`EDITABLE`, ...). A posted
//!   campaign is RUNNING from its send date and COMPLETED an hour later.
//! * `sendDate` accepts `YYYY-MM-DDTHH:MM:SS` or `YYYY-MM-DD HH:MM:SS` (optional fraction and
//!   offset); without an offset it is read in `account_timezone`. It must not be earlier than
//!   now + `min_send_lead`.
//! * A campaign's `nbSelected` is its segment's count at post time until the send date, then
//!   the number of members the send went to; counters are zero before the send date and grow
//!   after it (see [`metrics`]).
//! * The segment is evaluated at the send date (not at post). The send goes to whatever it
//!   selects: the simulator drops no member by itself, so a segment without an e-mail criterion
//!   shows members without e-mail among the recipients.
//! * A merge on an id the member table lacks inserts a member with the file's fields only, so
//!   without e-mail (whether the real `mergeUpload` inserts unknown keys is UNCERTAIN; nothing
//!   offers an update-only merge). A merge on a known id updates the `toReplace` fields; an
//!   insert on an existing member leaves it alone. The merge `criteria` must be the customer-id
//!   field itself (SQL functions like `LOWER(EMAIL)` are not simulated): anything else, or a
//!   mapped field the member table lacks, ends the upload in `ERROR` with the reason in
//!   `<details>`. Lines without a key end it in `DONE WITH ERRORS`. [`SmartFocusSim::fail_next_import`]
//!   makes the next upload end in `FAILURE`.
//! * Segment criteria are AND-ed; the `values` of one criterion are OR-ed; string comparisons
//!   ignore case unless the operator ends in `_CASE_SENSITIVE`.
//! * Reading one segment (`GET .../segment/{id}`) answers the `segmentationGetSegmentById` fields.
//! * Segment count is `segmentationservice/{token}/segment/{id}/count` (REST path unknown; the
//!   adapter's `segment_count_path`). Counts (and sends) cover the members held: untouched
//!   members carry no tag, so this only differs from a real account for segments without a
//!   value criterion.
//! * Finding a campaign by name is `campaign/getCampaignsByField` (by analogy with messages).
//! * An injected [`FaultKind::RateLimit`] answers the call-quota error (500) without ending the
//!   session (the API documents no HTTP rate limit); [`FaultKind::Status`] answers that status
//!   with a failed envelope; [`FaultKind::Timeout`] processes the request, then holds the response.
//! * Unknown resources answer HTTP 404 with a failed envelope.
//! * The summary list: `search/name` matches names **containing** the value, ignoring case
//!   ([`NameSearch::Contains`]; [`NameSearch::Exact`] for whole names only), text criteria
//!   (`subject`, `from`, `to`) contain their value, the others are equal; pages count from 1
//!   (`page` 0 is refused); `pageSize` is cut to `summary_max_page_size` (100) and the answer's
//!   `pageSize` says so; without `sortOptions` the newest id comes first. Faults name the
//!   exception as the WSDL does: `ConnectionServiceException` for session and login failures,
//!   `CcmdServiceException` otherwise; parameter errors are `INVALID_PARAMETERS`, other
//!   operations `NOT_FOUND` (not simulated). `soap_accepts_rest_tokens: false` refuses every
//!   token as expired (an account whose SOAP binding wants its own sessions).

pub mod metrics;
mod server;
mod state;
mod upload;
mod xml;

use espbridge_core::{Clock, EspKind};
use espbridge_esp_kit::{AccountError, SimSend, SimSetup, SimView, SimulatedAccount};
use espbridge_sim::Traffic;
use espbridge_sim::faults::{Fault, FaultBook};
use espbridge_sim::http::ServerHandle;
use espbridge_sim::record::{RecordedRequest, Recorder};
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(doc)]
use espbridge_sim::faults::FaultKind;

pub use upload::UploadMode;

/// Where the `apiccmd` SOAP binding answers (the WSDL is `{this}?wsdl`).
pub const CCMD_SOAP_PATH: &str = "apiccmd/services/CcmdService";

/// The simulated account's configuration.
#[derive(Debug, Clone)]
pub struct SmartFocusSimConfig {
    pub login: String,
    pub password: String,
    /// The manager key.
    pub key: String,
    /// Textual member field holding customer ids (the merge key).
    pub customer_id_field: String,
    /// Textual member fields campaign tags are written to (the adapter's `tag_fields`); every
    /// one is a member field for uploads and segment criteria.
    pub tag_fields: Vec<String>,
    /// Member field holding the e-mail address.
    pub email_field: String,
    /// Other fields of the member table (uploads mapping unknown fields fail in `ERROR`).
    pub other_member_fields: Vec<String>,
    /// Share of customer ids the member table does not hold (chosen by
    /// [`espbridge_sim::in_share`]); every other id is a member with an e-mail address.
    pub unknown_id_share: f64,
    /// Messages present at start, oldest first (any number: an account of thousands of
    /// messages is a seed of thousands; see [`SeedMessage::series`]).
    pub messages: Vec<SeedMessage>,
    /// Largest `pageSize` `getMessageSummaryList` applies (a larger one is cut to it, and the
    /// answer's `pageSize` says so); also the size of a page that asks for none. The reference
    /// gives no number.
    pub summary_max_page_size: usize,
    /// How `getMessageSummaryList`'s `search/name` matches (the reference does not say).
    pub summary_name_search: NameSearch,
    /// Whether the SOAP binding accepts the tokens of REST `connect/open` (the simulator's
    /// reading, `true`); `false` makes it refuse every token as expired, the account a client
    /// must list by REST alone.
    pub soap_accepts_rest_tokens: bool,
    pub token_lifetime: SignedDuration,
    /// The call quota per session the manager sets (a stricter account: a session ends after
    /// this many calls, and the next call with its token answers "The maximum number of
    /// connection allowed per session has been reached"); `None` for no quota.
    pub session_max_calls: Option<u32>,
    /// Sessions the manager may have open at once (closed, expired and used-up ones do not
    /// count); one more `connect/open` answers "No available connection for manager {login}."
    /// and counts as a limit refusal. `None`: no cap (the reference gives no number).
    pub max_sessions: Option<usize>,
    /// Clock time per upload state; `None` to advance only by polls.
    pub upload_step_delay: Option<SignedDuration>,
    /// Status polls per upload state; 0 to advance only by clock.
    pub upload_polls_per_step: u32,
    /// Uploads not yet in a final state allowed at once (`MAX_NB_UPLOADS` beyond).
    pub max_pending_uploads: usize,
    /// Largest decoded upload file (`INVALID_FILE` beyond). The HTTP layer reads at most 10 MB.
    pub max_file_bytes: usize,
    /// IANA zone for zoneless `sendDate`s and the offsets of returned dates.
    pub account_timezone: String,
    /// Smallest accepted distance between now and a campaign's send date.
    pub min_send_lead: SignedDuration,
}

impl Default for SmartFocusSimConfig {
    fn default() -> Self {
        Self {
            login: "espbridge".into(),
            password: "sim-password".into(),
            key: "sim-key".into(),
            customer_id_field: "CUSTOMER_ID".into(),
            tag_fields: (1..=10).map(|i| format!("CAMPAIGN_TAG_{i}")).collect(),
            email_field: "EMAIL".into(),
            other_member_fields: vec!["FIRSTNAME".into(), "DATEOFBIRTH".into()],
            unknown_id_share: 0.01,
            messages: SeedMessage::defaults(),
            summary_max_page_size: 100,
            summary_name_search: NameSearch::default(),
            soap_accepts_rest_tokens: true,
            token_lifetime: SignedDuration::from_mins(60),
            session_max_calls: None,
            max_sessions: None,
            upload_step_delay: Some(SignedDuration::from_secs(2)),
            upload_polls_per_step: 1,
            max_pending_uploads: 5,
            max_file_bytes: 256 * 1024 * 1024,
            account_timezone: "Europe/Paris".into(),
            min_send_lead: SignedDuration::ZERO,
        }
    }
}

/// How the summary list's name search compares a message's name with the searched value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameSearch {
    /// The name contains the value, ignoring case (the simulator's choice).
    #[default]
    Contains,
    /// The name is the value (a stricter reading; the adapter must still list every template).
    Exact,
}

impl NameSearch {
    pub(crate) fn matches(self, name: &str, value: &str) -> bool {
        match self {
            NameSearch::Contains => name.to_lowercase().contains(&value.to_lowercase()),
            NameSearch::Exact => name == value,
        }
    }
}

/// A message present when the simulator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedMessage {
    pub name: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// `email` or `sms` (`ApiMessageType`).
    pub kind: String,
}

impl SeedMessage {
    pub fn new(name: &str, subject: &str) -> Self {
        Self {
            kind: "email".into(),
            name: name.into(),
            subject: subject.into(),
            html: format!(
                "<html><body><h1>{subject}</h1><p>Hello [EMV FIELD]FIRSTNAME[EMV /FIELD]</p></body></html>"
            ),
            text: format!("{subject}\nHello [EMV FIELD]FIRSTNAME[EMV /FIELD]"),
        }
    }

    /// An SMS message (listed by `getMessagesByPeriod`, never by the e-mail calls).
    pub fn sms(name: &str, text: &str) -> Self {
        Self {
            kind: "sms".into(),
            html: String::new(),
            text: text.into(),
            ..Self::new(name, text)
        }
    }

    /// `count` e-mail messages named `{stem}{i}` (`i` from 1), oldest first: many messages for
    /// a big account, e.g. `series("espbridge_c", 900)` for the clones of 900 campaigns.
    pub fn series(stem: &str, count: usize) -> Vec<SeedMessage> {
        (1..=count)
            .map(|i| SeedMessage::new(&format!("{stem}{i}"), &format!("{stem}{i} subject")))
            .collect()
    }

    /// `optimove_` templates plus messages a template picker must skip.
    pub fn defaults() -> Vec<SeedMessage> {
        vec![
            SeedMessage::new("optimove_spring_sale", "Spring sale: 20% off"),
            SeedMessage::new("newsletter_april", "April news"),
            SeedMessage::new("optimove_weekly_digest", "Your weekly picks"),
            SeedMessage::new("transactional_receipt", "Your receipt"),
            SeedMessage::new("optimove_winback", "We miss you"),
        ]
    }
}

/// A message as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMessage {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub subject: String,
    /// Both parts, delimited by `[EMV HTMLPART]` and `[EMV TEXTPART]`.
    pub body: String,
    pub created_at: Timestamp,
    pub cloned_from: Option<u64>,
    /// `email` or `sms`.
    pub kind: String,
}

/// A batch member upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUpload {
    pub id: u64,
    pub mode: UploadMode,
    pub file_name: String,
    /// As `getUploadStatus` would answer now.
    pub status: String,
    /// The reason of `ERROR`, `FAILURE` or `DONE WITH ERRORS`.
    pub details: Option<String>,
    /// Data lines in the file (after a skipped first line).
    pub lines: usize,
    pub created_at: Timestamp,
}

/// One criterion of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCriterion {
    pub column: String,
    pub operator: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSegment {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub sample_type: String,
    pub criteria: Vec<SimCriterion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCampaign {
    pub id: u64,
    pub name: String,
    pub description: String,
    /// `sendDate` as sent.
    pub send_date_raw: String,
    pub send_at: Timestamp,
    pub message_id: u64,
    pub segment_id: u64,
    /// Enum form as of now: `EDITABLE`, `QUEUED`, `RUNNING`, `COMPLETED`.
    pub status: String,
    /// Segment count at post time (0 until posted); from the send date on, the members the
    /// send went to.
    pub selected: u64,
    /// The customer ids the send went to, frozen at the send date (`None` before it or
    /// unposted), sorted.
    pub recipients: Option<Vec<String>>,
}

/// A running simulator. Dropping it stops the server.
pub struct SmartFocusSim {
    server: ServerHandle,
    shared: Arc<server::Shared>,
    config: SmartFocusSimConfig,
}

/// Starts a simulator with `config` (its zone, unknown share and latency set to the setup's)
/// and returns it with the account entry that points at it (credentials inline, the setup's
/// message prefix, the simulator's tag fields).
pub async fn account(
    mut config: SmartFocusSimConfig,
    setup: &SimSetup,
) -> Result<SimulatedAccount, AccountError> {
    let esp = EspKind::Smartfocus;
    config.account_timezone = setup.timezone.clone();
    config.unknown_id_share = setup.unknown_share;
    let credentials = serde_json::json!({
        "login": config.login, "password": config.password, "key": config.key,
    });
    let sim = SmartFocusSim::start(config, Arc::clone(&setup.clock))
        .await
        .map_err(|source| AccountError::Simulator { esp, source })?;
    sim.set_latency(setup.latency);
    let base_url = sim.base_url();
    let fields = serde_json::json!({
        "base_url": base_url,
        "message_prefix": setup.template_prefix,
        "timezone": setup.timezone,
        "tag_fields": sim.config().tag_fields,
        "email_field": sim.config().email_field,
        // The simulator's import steps take seconds of a fast-forward clock, not minutes.
        "upload_poll_interval_ms": 50,
        "credentials": credentials,
    });
    Ok(SimulatedAccount::new(esp, base_url, sim, fields))
}

impl SmartFocusSim {
    /// Starts a server on `127.0.0.1` on a free port.
    pub async fn start(
        config: SmartFocusSimConfig,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Self> {
        let started_with = config.clone();
        let zone = jiff::tz::TimeZone::get(&config.account_timezone).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("account_timezone: {e}"),
            )
        })?;
        let state = state::State::new(&config, zone, clock.now());
        // A file of `max_file_bytes`, base64-encoded, in its multipart envelope.
        let max_body = config.max_file_bytes.saturating_mul(4) / 3 + 1024 * 1024;
        let shared = Arc::new(server::Shared {
            clock,
            state: Mutex::new(state),
            faults: FaultBook::default(),
            recorder: Recorder::default(),
            traffic: Arc::new(Traffic::default()),
        });
        let handler = espbridge_sim::paced(server::handler(shared.clone()), shared.traffic.clone());
        let server = espbridge_sim::http::spawn_with_body_limit(handler, max_body).await?;
        tracing::info!(
            port = server.addr().port(),
            "smartfocus simulator listening"
        );
        Ok(Self {
            server,
            shared,
            config: started_with,
        })
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &SmartFocusSimConfig {
        &self.config
    }

    /// `http://127.0.0.1:PORT/`
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.server.addr())
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.all()
    }

    /// Queues a fault; see [`Fault`].
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.inject(fault);
    }

    /// The traffic so far (latency, peak concurrency, `MAX_NB_UPLOADS` refusals).
    pub fn traffic(&self) -> &Traffic {
        &self.shared.traffic
    }

    /// Ends every open session as if its 60 minutes had passed.
    pub fn expire_tokens(&self) {
        self.shared.state().expire_tokens();
    }

    /// Makes the next accepted upload end in `FAILURE` instead of `DONE`.
    pub fn fail_next_import(&self) {
        self.shared.state().fail_next_import();
    }

    pub fn messages(&self) -> Vec<SimMessage> {
        self.shared.state().sim_messages()
    }

    pub fn uploads(&self) -> Vec<SimUpload> {
        let now = self.shared.clock.now();
        self.shared.state().sim_uploads(now)
    }

    pub fn segments(&self) -> Vec<SimSegment> {
        self.shared.state().sim_segments()
    }

    /// The campaigns as of now (sends whose date came are frozen first).
    pub fn campaigns(&self) -> Vec<SimCampaign> {
        let now = self.shared.clock.now();
        let mut state = self.shared.state();
        state.tick(now);
        state.sim_campaigns(now)
    }

    /// Customer ids with `tag` in one of the tag fields (uploads count once DONE), sorted;
    /// members without e-mail included.
    pub fn members_with_tag(&self, tag: &str) -> Vec<String> {
        let now = self.shared.clock.now();
        self.shared.state().members_with_tag(tag, now)
    }

    /// Customer ids the member table holds without an e-mail address (created by merges of ids
    /// it did not know), sorted.
    pub fn members_without_email(&self) -> Vec<String> {
        let now = self.shared.clock.now();
        self.shared.state().members_without_email(now)
    }

    /// Whether the account's member table knows `customer_id` (before any upload).
    pub fn knows(&self, customer_id: &str) -> bool {
        !espbridge_sim::in_share(customer_id, self.config.unknown_id_share)
    }

    /// Successful `campaign/post` calls.
    pub fn post_count(&self) -> usize {
        self.shared.state().post_count()
    }

    /// Successful `unpostCampaign` (SOAP) calls.
    pub fn unpost_count(&self) -> usize {
        self.shared.state().unpost_count()
    }

    /// Sessions opened so far, on either service.
    pub fn sessions_opened(&self) -> usize {
        self.shared.state().sessions_opened()
    }

    /// The most sessions that were open at once, both services together.
    pub fn peak_sessions(&self) -> usize {
        self.shared.state().peak_sessions()
    }

    /// Calls a session carried (its token accepted), whatever their outcome.
    pub fn calls_served(&self) -> usize {
        self.shared.state().calls_served()
    }
}

impl SimView for SmartFocusSim {
    /// One send per posted campaign whose send date has come, to the members its segment
    /// selected then.
    fn sends(&self) -> Vec<SimSend> {
        let now = self.shared.clock.now();
        let mut state = self.shared.state();
        state.tick(now);
        state.sim_sends()
    }
    fn limit_refusals(&self) -> u64 {
        self.shared.traffic.refusals()
    }
    fn peak_in_flight(&self) -> usize {
        self.shared.traffic.peak()
    }
    fn set_latency(&self, latency: Duration) {
        self.shared.traffic.set_latency(latency);
    }
}
