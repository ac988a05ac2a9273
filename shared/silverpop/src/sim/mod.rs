//! Silverpop Engage (Acoustic Campaign) XML API simulator.
//!
//! One endpoint, `POST /XMLAPI` (or `/XMLAPI;jsessionid=…`), taking one
//! `<Envelope><Body><Operation>…</Operation></Body></Envelope>` either as a form field `xml=`
//! (`application/x-www-form-urlencoded`) or as a raw `text/xml` body. Answers are
//! `Envelope/Body/RESULT` with `SUCCESS`; faults are `RESULT/SUCCESS=false` plus a sibling
//! `Fault` (FaultString, `detail/error/errorid`), always on HTTP 200 — only injected
//! [`FaultKind::Status`](espbridge_sim::FaultKind::Status) faults use another status.
//!
//! Supported operations: `Login`, `Logout`, `GetLists`, `GetListMetaData`, `GetMailingTemplates`,
//! `PreviewMailing`, `AddRecipient`, `UpdateRecipient`, `CreateContactList`,
//! `AddContactToContactList`, `CreateQuery`, `CalculateQuery`, `GetQuery`, `GetJobStatus`,
//! `CreateTable`, `InsertUpdateRelationalTable`, `ImportList`, `ImportTable`, `ScheduleMailing`,
//! `GetSentMailingsForOrg`, `GetAggregateTrackingForMailing`. Anything else, a mis-cased tag or
//! XML that does not parse is Fault 51 "Invalid XML Request" (reference A.1, A.8.3).
//!
//! The org's SFTP endpoint ([`SftpEndpoint`], a real SSH/SFTP server on loopback) takes the
//! files of the bulk import into `upload/` and holds the import jobs' error files in
//! `download/`. It is attached when [`SilverpopSimConfig::sftp`] is set (or by
//! [`SilverpopSim::attach_sftp`]); [`account`] always attaches it and puts its host, port and
//! host key in the account entry (its login is the API user's). `ImportList` / `ImportTable`
//! run data jobs over its files against the simulated database, contact lists and tables with
//! the per-call operations' semantics; `GetJobStatus` follows them (WAITING, RUNNING, COMPLETE
//! or ERROR), at [`SilverpopSimConfig::import_rows_per_sec`]. The rules, and what in them is
//! the simulator's choice, are in `state/import.rs`; [`SilverpopSim::import_jobs`] lists the
//! jobs.
//!
//! The org:
//! - *The database* exists before espbridge: every customer id is a contact unless
//!   [`espbridge_sim::in_share`]`(id, unknown_id_share)` (default 1%; [`account`] takes the
//!   setup's `unknown_share`). Those contacts have no fields and are not enumerable (a mailing
//!   to the database itself goes to the contacts the API touched). `AddRecipient` /
//!   `UpdateRecipient` store fields on a contact, creating it when the database does not have
//!   it ([`SilverpopSim::created_contacts`]).
//! - *Contact lists* (`CreateContactList`, listed by `GetLists` LIST_TYPE 18 and 2): static
//!   lists of contacts. `AddContactToContactList` adds an existing contact, by `CONTACT_ID` (a
//!   recipient id the API answered with; `COLUMN`s are then ignored) or by the key `COLUMN`
//!   (`customer_id_field`); a member already there stays once; it never creates a contact.
//! - *Relational tables* (seeded, or made with `CreateTable`) filled with
//!   `InsertUpdateRelationalTable`.
//! - *Queries* (`CreateQuery`): a profile criterion (`COLUMN is equal to VALUE` over the stored
//!   fields, or the key field of any contact), or an `rt_profile` (or `relational_table`)
//!   criterion selecting the distinct customer ids of the table's matching rows that are
//!   contacts (a row matching no contact never joins). `CalculateQuery` starts a data job that
//!   counts the query as it is then; `GetJobStatus` answers WAITING, RUNNING, then COMPLETE (on
//!   the third poll, or 10 s of clock time after the start); the count becomes the query's SIZE
//!   (`GetListMetaData`, `GetLists`) when the job completes.
//! - *Mailings* (`ScheduleMailing`, LIST_ID a database, a contact list or a query) go to their
//!   list as it is at their SCHEDULED time: before every request the state is brought up to the
//!   clock ([`SimView::sends`] too), freezing the recipients of each mailing whose time has come.
//!   [`SimView::sends`] gives one send per such mailing (MAILING_NAME, time, customer ids).
//! - *Traffic*: every request waits out the latency ([`SimView::set_latency`]; [`account`] takes
//!   the setup's) as in flight, so the concurrency cap sees the requests waiting too. Refusals
//!   of the cap and of the session cap count as [`SimView::limit_refusals`].
//!
//! - *Stricter orgs*: [`SilverpopSimConfig`] can make the org harder than the documented one,
//!   so the client is tested against what a busy or restricted org does: `session_max_calls`
//!   ends a session after that many calls (the next call with it answers the real session-lost
//!   Fault, errorid 145 class SP.Admin "Session has expired or is invalid"), `max_sessions`
//!   lowers the org's session cap (20) and `max_concurrent` its request cap (10).
//!   [`SilverpopSim::logins`] and [`SilverpopSim::peak_sessions`] tell how a client coped.
//!
//! UNCERTAIN choices (reference A.9 and gaps), each a guess to revisit against a live pod:
//! - Idle session timeout: configurable, default 20 minutes. More than `max_sessions` (20) live
//!   sessions → Login Fault errorid 146 "Maximum number of sessions reached" (id invented).
//!   A session that ran out of calls (`session_max_calls`) or was logged out no longer counts.
//! - Bad credentials → Fault errorid 50 "Server Error", class SP.API (the vendor fixture).
//! - The 11th concurrent request → HTTP 200 Fault errorid 10 class SP.API "Too many concurrent
//!   requests" (no id documented); injected [`FaultKind::RateLimit`](espbridge_sim::FaultKind::RateLimit)
//!   answers the same (not counted as a limit refusal).
//! - `AddContactToContactList` of a contact the database does not have → Fault errorid 129 class
//!   SP.Recipients "Contact not found in the database" (id and text invented; the reference says
//!   only that "an error message returns"). An unknown contact list → Fault 51 "Contact list N
//!   not found".
//! - `CreateContactList` of a name already used in the same folder and visibility → Fault 51; a
//!   PARENT_FOLDER_PATH that does not exist is made (one folder id per path); without a folder
//!   the list is at the top (PARENT_FOLDER_ID 0).
//! - Unknown template/list/query/table ids, bad dates and missing required elements → Fault 51
//!   with a descriptive FaultString (the reference says to use 51 for unclassified errors).
//! - Template `VISIBILITY` answered as `0/1`; reporting `Visibility` as `Private/Shared`; the spam
//!   score element is `SPAMScore`.
//! - `SCHEDULED` (`MM/dd/yyyy hh:mm:ss AM`) and every returned timestamp are in the configured
//!   org time zone (default UTC; [`account`] takes the setup's), without a zone designator as in
//!   the reference: a template's `LAST_MODIFIED` is its [`SeedTemplate::last_modified`] as
//!   `MM/dd/yy hh:mm AM` there. A missing `SCHEDULED` means now. `TIMEZONE` in the request, if
//!   given, must be an IANA name and overrides it.
//! - A mailing gets its `ReportId` when scheduled; while scheduled it shows `<SentTS/>` and
//!   `NumSent` 0, afterwards it counts as sent, its counters growing from the size of the
//!   audience it went to.
//! - A second `ScheduleMailing` with the same name is allowed (the reference does not forbid
//!   it); [`SilverpopSim::schedule_count`] lets tests assert a client did not schedule twice.
//! - `GetSentMailingsForOrg` with none of `SENT`/`SENDING`/`SCHEDULED` returns every mailing;
//!   `DATE_START`/`DATE_END` filter on the scheduled time.
//! - `AddRecipient` of an existing key without `UPDATE_IF_FOUND` → Fault 122 (id invented);
//!   `UpdateRecipient` of a key the database does not have → Fault 128 (id invented).
//! - `FAILURE` elements of `InsertUpdateRelationalTable` list the failed row's key columns in
//!   request order (no row index is documented); a row missing a key column lists what it has.
//! - The 12 h cadence of `CalculateQuery` is not enforced. `GetLists` lists the database as
//!   "Optimove Database", folder 0, its SIZE the contacts with stored fields. OAuth
//!   (`/oauth/token`, Bearer) is not simulated: only legacy sessions.

mod metrics;
mod server;
mod sftp;
mod state;
mod xml;

use espbridge_core::{Clock, EspKind};
use espbridge_esp_kit::{AccountError, SimSend, SimSetup, SimView, SimulatedAccount};
use espbridge_sim::Traffic;
use espbridge_sim::faults::{Fault, FaultBook};
use espbridge_sim::http::ServerHandle;
use espbridge_sim::record::{RecordedRequest, Recorder};
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use metrics::Metrics;
pub use sftp::{MAX_CONNECTIONS, MAX_OPEN_FILES, SftpEndpoint, SftpSimConfig};

/// A template seeded into the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedTemplate {
    pub id: i64,
    pub name: String,
    pub subject: String,
    /// `true` = Shared folder (VISIBILITY 1), `false` = private (VISIBILITY 0).
    pub shared: bool,
    pub html: String,
    pub text: String,
    /// When it was last changed: GetMailingTemplates answers it as `LAST_MODIFIED`, the org's
    /// local time (`MM/dd/yy hh:mm AM`, minutes cut) in [`SilverpopSimConfig::org_timezone`].
    pub last_modified: Timestamp,
}

impl SeedTemplate {
    /// Last modified at 2024-05-28 15:12 UTC (the reference's `05/28/24 03:12 PM` in a UTC
    /// org).
    pub fn new(id: i64, name: &str, subject: &str, shared: bool) -> Self {
        Self {
            id,
            name: name.to_owned(),
            subject: subject.to_owned(),
            shared,
            html: format!("<html><body><h1>{subject}</h1>Hi %%First Name%%</body></html>"),
            text: format!("{subject}\nHi %%First Name%%"),
            last_modified: Timestamp::constant(1_716_909_120, 0),
        }
    }

    /// The same template, last modified at `at`.
    pub fn modified_at(mut self, at: Timestamp) -> Self {
        self.last_modified = at;
        self
    }
}

/// A column of a relational table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableColumn {
    pub name: String,
    /// TEXT, NUMERIC, DATE, … (NUMERIC and DATE values are validated).
    pub kind: String,
    pub key: bool,
    pub required: bool,
}

impl TableColumn {
    pub fn new(name: &str, kind: &str, key: bool) -> Self {
        Self {
            name: name.to_owned(),
            kind: kind.to_owned(),
            key,
            required: key,
        }
    }
}

/// A relational table, seeded or created by `CreateTable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTable {
    pub id: i64,
    pub name: String,
    pub columns: Vec<TableColumn>,
}

/// Simulator configuration; [`Default`] gives a ready account.
#[derive(Debug, Clone)]
pub struct SilverpopSimConfig {
    pub username: String,
    pub password: String,
    pub organization_id: String,
    pub templates: Vec<SeedTemplate>,
    /// The database (Lists mode) id.
    pub database_id: i64,
    /// Key field of the database.
    pub customer_id_field: String,
    /// Share (0..=1) of customer ids the database does not have, chosen by
    /// [`espbridge_sim::in_share`]; every other id is a contact from the start.
    pub unknown_id_share: f64,
    /// Default folder for queries created without PARENT_FOLDER_ID.
    pub query_folder_id: i64,
    /// Folder path expected for mailings (informational; any path is accepted and stored).
    pub mailing_folder: String,
    pub relational_table: SimTable,
    /// Idle time after which a session answers Fault 145.
    pub session_idle: SignedDuration,
    /// A stricter org: a session ends after this many calls (Login and Logout not counted),
    /// and the next call with it answers Fault 145 like an expired one. `None`: no limit.
    pub session_max_calls: Option<u32>,
    /// Live sessions the org allows at once; a Login beyond answers Fault 146.
    pub max_sessions: usize,
    /// Requests in flight the org allows at once; one more answers Fault 10.
    pub max_concurrent: usize,
    /// IANA zone of SCHEDULED and of returned timestamps.
    pub org_timezone: String,
    /// The org's SFTP endpoint for the bulk import; `None`: not started (ImportList then finds
    /// no file). [`SilverpopSimConfig::with_sftp`] sets one with the API user's login.
    pub sftp: Option<SftpSimConfig>,
    /// Rows an import job processes a second (Silverpop publishes no speed; the default,
    /// [`DEFAULT_IMPORT_ROWS_PER_SEC`], is a guess: a million rows in 200 s).
    pub import_rows_per_sec: f64,
    /// How long an import job is WAITING before it runs (after the org's previous one ends).
    pub import_wait: Duration,
}

/// The default [`SilverpopSimConfig::import_rows_per_sec`].
pub const DEFAULT_IMPORT_ROWS_PER_SEC: f64 = 5_000.0;
/// The default [`SilverpopSimConfig::import_wait`].
pub const DEFAULT_IMPORT_WAIT: Duration = Duration::from_millis(200);

/// How a test makes the next import job end ([`SilverpopSim::end_next_import`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    Error,
    Canceled,
}

/// An import job as the simulator ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimImportJob {
    pub job_id: i64,
    /// `ImportList` or `ImportTable`.
    pub operation: String,
    pub source_file: String,
    pub map_file: String,
    /// Data rows of the source.
    pub rows: usize,
    /// WAITING, RUNNING, COMPLETE, ERROR or CANCELED.
    pub status: String,
    /// Rows taken and refused, once it ended.
    pub valid: Option<usize>,
    pub rejected: Option<usize>,
}

/// What the client's account entry needs to reach the simulator's SFTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpAccess {
    pub host: String,
    pub port: u16,
    /// The host key as an OpenSSH public key line.
    pub host_key: String,
    pub username: String,
    pub password: Option<String>,
}

impl SftpAccess {
    /// The account entry's `sftp` object.
    pub fn account_fields(&self) -> serde_json::Value {
        serde_json::json!({"host": self.host, "port": self.port, "host_key": self.host_key})
    }
}

impl Default for SilverpopSimConfig {
    fn default() -> Self {
        Self {
            username: "espbridge".into(),
            password: "sim-password".into(),
            organization_id: "6822f942-13a511eb273-b72427ac28f4177bd55290ce12678282".into(),
            templates: vec![
                SeedTemplate::new(410233, "Optimove - Summer promo", "Summer is here", true),
                SeedTemplate::new(410234, "Optimove - Winback", "We miss you", true),
                SeedTemplate::new(410300, "Draft - private", "Not shared", false),
            ],
            database_id: 2740754,
            customer_id_field: "CustomerID".into(),
            unknown_id_share: 0.01,
            query_folder_id: 77120,
            mailing_folder: "Optimove".into(),
            relational_table: SimTable {
                id: 348449,
                name: "OptimoveAudience".into(),
                columns: vec![
                    TableColumn::new("ActionID", "NUMERIC", true),
                    TableColumn::new("CustomerID", "TEXT", true),
                    TableColumn::new("SendDate", "DATE", false),
                    TableColumn::new("Channel", "TEXT", false),
                ],
            },
            session_idle: SignedDuration::from_mins(20),
            session_max_calls: None,
            max_sessions: 20,
            max_concurrent: 10,
            org_timezone: "UTC".into(),
            sftp: None,
            import_rows_per_sec: DEFAULT_IMPORT_ROWS_PER_SEC,
            import_wait: DEFAULT_IMPORT_WAIT,
        }
    }
}

/// A contact of the database with stored fields (made or updated by AddRecipient or
/// UpdateRecipient; the contacts the database had before have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRecipient {
    pub recipient_id: i64,
    pub fields: BTreeMap<String, String>,
}

/// What a query selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryCriterion {
    /// Database field equals a value.
    Profile { column: String, value: String },
    /// Rows of a relational table whose column equals a value.
    Relational {
        table_id: i64,
        column: String,
        value: String,
    },
}

/// A query created with `CreateQuery`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimQuery {
    pub id: i64,
    pub name: String,
    pub parent_list_id: i64,
    pub folder_id: i64,
    pub visibility: i64,
    pub criterion: QueryCriterion,
    /// The CRITERIA element as received, re-serialised.
    pub criteria_xml: String,
    /// Size from the last `CalculateQuery`, if any.
    pub calculated_size: Option<usize>,
}

/// A contact list created by `CreateContactList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimContactList {
    pub id: i64,
    pub name: String,
    pub database_id: i64,
    pub visibility: i64,
    pub folder_id: i64,
    /// The PARENT_FOLDER_PATH it was created with, if any.
    pub folder_path: Option<String>,
    /// Customer ids of its members, sorted.
    pub members: Vec<String>,
}

/// A mailing created by `ScheduleMailing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMailing {
    pub mailing_id: i64,
    pub report_id: i64,
    pub name: String,
    pub template_id: i64,
    pub list_id: i64,
    pub scheduled_at: Timestamp,
    pub folder_path: Option<String>,
    pub subject: String,
    pub send_html: bool,
    pub send_text: bool,
    pub shared: bool,
    /// Audience size when scheduled.
    pub audience: usize,
    /// The customer ids it went to, frozen when its scheduled time came; `None` before.
    pub recipients: Option<Vec<String>>,
}

impl SimMailing {
    /// Its audience's size: the recipients once sent, the size when scheduled before.
    pub fn size(&self) -> usize {
        self.recipients.as_ref().map_or(self.audience, Vec::len)
    }
}

/// A running simulator; stops when dropped.
pub struct SilverpopSim {
    server: ServerHandle,
    shared: Arc<server::Shared>,
    config: SilverpopSimConfig,
    sftp: Option<SftpEndpoint>,
}

/// Starts a simulator with `config` (its zone, unknown share and latency set to the setup's, its
/// SFTP endpoint attached) and returns it with the account entry that points at it: the
/// database, the relational table and the query folder of the simulated org, the SFTP
/// endpoint (host, port, pinned host key: a large batch goes as a bulk import), credentials
/// inline, and quick polls of data jobs (a query's size completes within three polls; an
/// import job is polled every 250 ms).
pub async fn account(
    mut config: SilverpopSimConfig,
    setup: &SimSetup,
) -> Result<SimulatedAccount, AccountError> {
    let esp = EspKind::Silverpop;
    config.org_timezone = setup.timezone.clone();
    config.unknown_id_share = setup.unknown_share;
    if config.sftp.is_none() {
        config = config.with_sftp();
    }
    let credentials = serde_json::json!({"username": config.username, "password": config.password});
    let (database, table, folder) = (
        config.database_id,
        config.relational_table.id,
        config.query_folder_id,
    );
    let sim = SilverpopSim::start(config, Arc::clone(&setup.clock))
        .await
        .map_err(|source| AccountError::Simulator { esp, source })?;
    sim.set_latency(setup.latency);
    let base_url = sim.base_url();
    let mut fields = serde_json::json!({
        "base_url": base_url,
        "database_id": database.to_string(),
        "relational_table_id": table.to_string(),
        "query_folder_id": folder.to_string(),
        "timezone": setup.timezone,
        "job_poll_interval_ms": 20,
        "import_poll_interval_ms": 250,
        "credentials": credentials,
    });
    if let Some(access) = sim.sftp_access() {
        fields["sftp"] = access.account_fields();
    }
    Ok(SimulatedAccount::new(esp, base_url, sim, fields))
}

impl SilverpopSimConfig {
    /// The org with its SFTP endpoint, whose login is the API user's.
    pub fn with_sftp(mut self) -> Self {
        self.sftp = Some(SftpSimConfig::new(&self.username, &self.password));
        self
    }

    /// The org with a relational table keyed by ActionID (text: the campaign id) and the
    /// customer id, plus one text column per personalization field.
    pub fn with_table_fields(mut self, fields: &[&str]) -> Self {
        self.relational_table.columns = vec![
            TableColumn::new("ActionID", "TEXT", true),
            TableColumn::new("CustomerID", "TEXT", true),
        ];
        self.relational_table
            .columns
            .extend(fields.iter().map(|f| TableColumn::new(f, "TEXT", false)));
        self
    }
}

impl SilverpopSim {
    /// Starts a server on `127.0.0.1` on a free port.
    pub async fn start(config: SilverpopSimConfig, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let started_with = config.clone();
        let zone = jiff::tz::TimeZone::get(&config.org_timezone).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("org_timezone: {e}"),
            )
        })?;
        let max_concurrent = config.max_concurrent;
        let shared = Arc::new(server::Shared {
            clock,
            state: Mutex::new(state::State::new(config, zone)),
            faults: FaultBook::default(),
            recorder: Recorder::default(),
            traffic: Arc::new(Traffic::default()),
            max_concurrent,
        });
        let handler = espbridge_sim::paced(server::handler(shared.clone()), shared.traffic.clone());
        let server = espbridge_sim::http::spawn(handler).await?;
        tracing::info!(port = server.addr().port(), "silverpop simulator listening");
        let mut sim = Self {
            server,
            shared,
            config: started_with,
            sftp: None,
        };
        if let Some(sftp) = sim.config.sftp.clone() {
            sim.attach_sftp(sftp).await?;
        }
        Ok(sim)
    }

    /// Starts the org's SFTP endpoint (replacing one attached before): ImportList and
    /// ImportTable read its `upload/` folder and leave their error files in its `download/`.
    pub async fn attach_sftp(&mut self, config: SftpSimConfig) -> std::io::Result<()> {
        let endpoint = SftpEndpoint::start(config.clone()).await?;
        self.shared.state().sftp = Some(endpoint.files());
        tracing::info!(
            port = endpoint.addr().port(),
            "silverpop simulator's SFTP endpoint listening"
        );
        self.config.sftp = Some(config);
        self.sftp = Some(endpoint);
        Ok(())
    }

    /// The org's SFTP endpoint, when attached.
    pub fn sftp(&self) -> Option<&SftpEndpoint> {
        self.sftp.as_ref()
    }

    /// How a client reaches the SFTP endpoint, when attached.
    pub fn sftp_access(&self) -> Option<SftpAccess> {
        let endpoint = self.sftp.as_ref()?;
        let config = self.config.sftp.as_ref()?;
        Some(SftpAccess {
            host: endpoint.addr().ip().to_string(),
            port: endpoint.addr().port(),
            host_key: endpoint.host_key().to_openssh().ok()?,
            username: config.username.clone(),
            password: config.password.clone(),
        })
    }

    /// The import jobs (ImportList, ImportTable) so far, by JOB_ID; a job whose time has come
    /// has run.
    pub fn import_jobs(&self) -> Vec<SimImportJob> {
        let mut state = self.shared.state();
        state.run_due_imports();
        state
            .imports
            .iter()
            .map(|(id, j)| {
                let (status, counts) = j.summary();
                SimImportJob {
                    job_id: *id,
                    operation: j.operation.to_owned(),
                    source_file: j.source_file.clone(),
                    map_file: j.map_file.clone(),
                    rows: j.rows,
                    status: status.to_owned(),
                    valid: counts.map(|c| c.0),
                    rejected: counts.map(|c| c.1),
                }
            })
            .collect()
    }

    /// Import jobs accepted so far.
    pub fn import_job_count(&self) -> usize {
        self.shared.state().imports.len()
    }

    /// The next import job accepted ends this way when its time comes, changing nothing.
    pub fn end_next_import(&self, end: JobEnd) {
        self.shared.state().next_import_end = Some(end);
    }

    /// `http://127.0.0.1:PORT/XMLAPI`
    pub fn endpoint(&self) -> String {
        format!("http://{}/XMLAPI", self.server.addr())
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &SilverpopSimConfig {
        &self.config
    }

    /// `http://127.0.0.1:PORT/`
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.server.addr())
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.all()
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.faults.inject(fault);
    }

    /// Invalidates every session: the next call with one answers Fault 145.
    pub fn expire_sessions(&self) {
        self.shared.state().sessions.clear();
    }

    /// The traffic so far (requests in flight and their peak, limit refusals, latency).
    pub fn traffic(&self) -> &Traffic {
        &self.shared.traffic
    }

    /// Whether the database has a contact with this customer id (it had it from the start, or
    /// the API created it).
    pub fn knows(&self, customer_id: &str) -> bool {
        self.shared.state().is_contact(customer_id)
    }

    /// Customer ids of the contacts with stored fields whose `field` equals `value`.
    pub fn recipients_with(&self, field: &str, value: &str) -> Vec<String> {
        self.shared.state().recipients_with(field, value)
    }

    /// The contacts with stored fields (AddRecipient / UpdateRecipient).
    pub fn recipients(&self) -> Vec<SimRecipient> {
        self.shared.state().recipients.values().cloned().collect()
    }

    /// Customer ids of the contacts the API created (the database did not have them), sorted.
    pub fn created_contacts(&self) -> Vec<String> {
        self.shared.state().created.iter().cloned().collect()
    }

    pub fn contact_lists(&self) -> Vec<SimContactList> {
        self.shared.state().contact_lists.clone()
    }

    /// The contact list of that name, if any.
    pub fn contact_list(&self, name: &str) -> Option<SimContactList> {
        self.shared
            .state()
            .contact_lists
            .iter()
            .find(|l| l.name == name)
            .cloned()
    }

    /// Rows of the table with this id, in insertion order (column name → value).
    pub fn table_rows(&self, table_id: i64) -> Vec<BTreeMap<String, String>> {
        self.shared.state().table_rows(table_id)
    }

    pub fn tables(&self) -> Vec<SimTable> {
        self.shared
            .state()
            .tables
            .iter()
            .map(|t| t.table.clone())
            .collect()
    }

    pub fn queries(&self) -> Vec<SimQuery> {
        self.shared.state().queries.clone()
    }

    /// The mailings, each with its recipients once its scheduled time has come.
    pub fn mailings(&self) -> Vec<SimMailing> {
        let now = self.shared.clock.now();
        let mut state = self.shared.state();
        state.tick(now);
        state.mailings.clone()
    }

    /// Successful ScheduleMailing calls.
    pub fn schedule_count(&self) -> usize {
        self.shared.state().mailings.len()
    }

    /// Successful Login calls.
    pub fn logins(&self) -> usize {
        self.shared.state().logins
    }

    /// The most sessions that were ever live at once.
    pub fn peak_sessions(&self) -> usize {
        self.shared.state().peak_sessions
    }
}

impl SimView for SilverpopSim {
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
