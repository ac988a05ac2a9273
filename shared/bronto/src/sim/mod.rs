//! Bronto SOAP API v4 simulator.
//!
//! `GET /v4?wsdl` serves the recorded WSDL; `POST /v4` takes one SOAP 1.1 envelope and
//! dispatches on the single element under `Body` (SOAPAction is ignored). Elements are matched
//! by local name with any prefix; the operation wrapper must be in `http://api.bronto.com/v4`
//! (otherwise, or when the XML does not parse, Fault 107). Answers are `soap:` envelopes with
//! `ns2:<op>Response`; call-level errors are HTTP 500 `soap:Fault`s with `faultstring`
//! "CODE: text" and `detail/ns2:ApiException/errorCode`; item-level errors are `writeResult`
//! items (`errors` = failed indices, then one `results` per input item).
//!
//! Operations:
//! - `login(apiToken)` → session id (UUID-shaped). Wrong token → 102. Every other call needs
//!   `Header/sessionHeader/sessionId`; missing, unknown or idle longer than
//!   [`BrontoSimConfig::session_idle`] on the injected clock (sliding) → 103 "Your session is
//!   invalid. Please log in again.". A stricter account
//!   ([`BrontoSimConfig::session_max_calls`]) ends a session after that many calls: the next
//!   call with it answers the same 103. There is no cap on sessions: Bronto allows several per
//!   token and recommends one per thread, and documents no number (a cap would be invented);
//!   [`BrontoSim::peak_sessions`] tells how many a client kept live at once.
//! - `readMessageFolders` (filter `id`, `name` stringValue), `readMessages` (filter `id`,
//!   `name`, `status`, `messageFolderId`; `includeContent` adds html and text `content`),
//!   `readLists` (filter `id`, `name`), `readDeliveries` (filter `id`, `messageId`, `status`,
//!   `start` dateValue; `includeRecipients`). Filters honour `type` AND|OR (else 112); 5000
//!   objects per `pageNumber` (default 1; `pageSize` 10..=5000 as newer WSDLs allow, above →
//!   106, below → 115), an empty wrapper past the end.
//! - `addLists` (`name` ≤ 100 else 510, `label` ≤ 100 else 509, either missing 110, existing
//!   name 502), `addToList` (list by `id` or `name`; e-mail not a contact 302, invalid 303,
//!   already on the list 506, unknown list 501 on every item), `deleteLists` (unknown 501, used
//!   by a delivery whose start is still ahead 505), `addDeliveries` (start 201, messageId 205,
//!   type triggered|test, transactional 215, other 106, fromEmail 202, fromName 213, replyEmail
//!   202, throttle 0..720 else 220, recipients: bad type 204, unknown list 206, segment 207,
//!   contact without id 208, none selected 209), `deleteDeliveries` (a delivery whose start is
//!   ahead is removed: it sends nothing and has no counters; unknown id 219; one already sent
//!   106, since the reference names no code for it).
//!
//! Limits: an empty input array → 105; more than [`BrontoSimConfig::max_per_call`] items →
//! 106; `addToList` addresses over [`BrontoSimConfig::addresses_per_minute`] within the real-time
//! [`BrontoSimConfig::rate_window`] → the whole call refused with 101 and nothing applied
//! (counted on receipt of accepted calls; see [`BrontoSim::rate_refusals`]).
//!
//! Deliveries are `unsent` until their `start` on the clock and `sent` from then on; their
//! counters come from [`metrics`]: 0 before the start, then growing monotonically over 7 days
//! for the audience measured when the delivery was added.
//!
//! Faults: [`BrontoSim::inject`] takes the usual [`Fault`]s, but `path_contains` is matched
//! against the **operation name** (e.g. `Fault::on(FaultKind::Timeout(d), "addDeliveries", 1)`).
//! `Status(code)` answers that HTTP status with Fault 101, `RateLimit` Fault 101 (rate text),
//! `Timeout` processes the call then holds the answer, `DropConnection` closes the socket.
//! Faults are taken once the envelope is parsed, so a body that names no operation is only hit
//! by [`Fault::any`]. The request log records `{"operation", "items"}` as the body (items = entries of the input
//! array), never the e-mails.
//!
//! UNCERTAIN choices (the reference is silent):
//! - Fault HTTP status 500 and faultcode `soap:Client` for 102/104/105/106/110, `soap:Server`
//!   otherwise; fault texts are the PHP SDK's wording; 106 for more than 5000 items; 101 for the
//!   per-minute address limit, which Bronto does not document at all.
//! - The account's contacts are implicit: every syntactically valid address is an active contact
//!   except a stable `unknown_email_share` of them (xxh3 of the lower-cased address). Contacts
//!   given only by `id` are answered 302 (the simulator keeps no contact ids); list membership is
//!   case-insensitive.
//! - An unknown list in `addToList` is item error 501 on every item (not a Fault); the call still
//!   counts against the rate window.
//! - Lists answer `visibility` `private`; folders carry no parent. A message has the `status`
//!   it was seeded with ([`SeedMessage::status`]: `active`, or `tmp` for a draft, `delete` for
//!   a deleted message): readMessages returns every status (the reference lists them among
//!   message statuses and says nothing of reads leaving some out), and a `status` criterion
//!   matches it exactly. addDeliveries takes a message whatever its status (the reference
//!   names no error for a draft or a deleted message).
//! - A `deliveries` item with an unknown `type` (e.g. `normal`) is item error 106.
//! - Recipients of type `contact` count one address each and are not checked; `keyword` is 204;
//!   a delivery's audience is the distinct members of its selected lists minus its `ineligible`
//!   lists, frozen at `addDeliveries`.
//! - `deliveryType` missing counts as `selected`; `eligible` is treated like `selected`.
//! - `deleteLists` removes the list outright (no `deleted` status left behind to read).
//! - Session ids are UUID-shaped hashes of the login count and time: unique, not secret.
//! - No deduplication: the same `addDeliveries` twice makes two deliveries.
//! - Date filters compare days in UTC; a bare date in a filter means midnight UTC; a `start`
//!   without an offset is refused (201).
//! - readDeliveries omits the rate fields (`deliveryRate`, …: units unknown) and the social
//!   counters; `numHardBadEmail` = all hard bounces, `numSoftDestUnreach` = all soft bounces.
//! - `sending` is never reported: a delivery goes `unsent` → `sent` at its start.
//! - String filters are case-sensitive.
//! - Only SOAP 1.1 envelopes are accepted; a SOAP 1.2 envelope is Fault 107 like any other
//!   malformed request (a real CXF server answers a VersionMismatch fault).

mod filter;
pub mod metrics;
mod server;
mod soap;
mod state;

use espbridge_core::{Clock, EspKind};
use espbridge_esp_kit::{AccountError, SimSend, SimSetup, SimView, SimulatedAccount};
use espbridge_sim::Traffic;
use espbridge_sim::faults::{Fault, FaultBook};
use espbridge_sim::http::ServerHandle;
use espbridge_sim::record::{RecordedRequest, Recorder};
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A message (template) of a seeded folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedMessage {
    pub id: String,
    pub name: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The message `status` (reference B.6: `active | delete | tmp`); readMessages answers it
    /// as is, whatever it is.
    pub status: String,
}

impl SeedMessage {
    /// An `active` message.
    pub fn new(id: &str, name: &str, subject: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            subject: subject.to_owned(),
            html: format!("<html><body><h1>{subject}</h1>Hi %%!contact_email%%</body></html>"),
            text: format!("{subject}\nHi %%!contact_email%%"),
            status: "active".to_owned(),
        }
    }

    /// The same message with another `status` (`tmp`: a draft; `delete`: deleted).
    pub fn with_status(mut self, status: &str) -> Self {
        self.status = status.to_owned();
        self
    }
}

/// A message folder with its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFolder {
    pub id: String,
    pub name: String,
    pub messages: Vec<SeedMessage>,
}

/// Simulator configuration; [`Default`] gives a ready account.
#[derive(Debug, Clone)]
pub struct BrontoSimConfig {
    pub api_token: String,
    pub folders: Vec<SeedFolder>,
    /// Share of valid addresses that are not contacts of the account (addToList → 302).
    pub unknown_email_share: f64,
    /// Idle time after which a session answers Fault 103, on the injected clock.
    pub session_idle: SignedDuration,
    /// A stricter account: a session ends after this many calls (login not counted), and the
    /// next call with it answers Fault 103 like an expired one. `None`: no limit.
    pub session_max_calls: Option<u32>,
    /// Most items per write call (read pages hold at most 5000 objects whatever this is).
    pub max_per_call: usize,
    /// addToList addresses allowed per [`Self::rate_window`]; `None` = unlimited.
    pub addresses_per_minute: Option<u32>,
    /// The real-time "minute" of the address limit (the time-scale knob for tests).
    pub rate_window: Duration,
}

impl Default for BrontoSimConfig {
    fn default() -> Self {
        Self {
            api_token: "sim-api-token".into(),
            folders: vec![
                SeedFolder {
                    id: "0bcc03f2000000000000000000000000a1b2".into(),
                    name: "Optimove".into(),
                    messages: vec![
                        SeedMessage::new(
                            "0bcc03eb00000000000000000000001c7d10",
                            "Summer promo",
                            "Summer is here",
                        ),
                        SeedMessage::new(
                            "0bcc03eb00000000000000000000001c7d11",
                            "Winback",
                            "We miss you",
                        ),
                    ],
                },
                SeedFolder {
                    id: "0bcc03f2000000000000000000000000a1b3".into(),
                    name: "Transactional".into(),
                    messages: vec![SeedMessage::new(
                        "0bcc03eb00000000000000000000001c7d20",
                        "Order confirmation",
                        "Your order",
                    )],
                },
            ],
            unknown_email_share: 0.01,
            session_idle: SignedDuration::from_mins(20),
            session_max_calls: None,
            max_per_call: 5000,
            addresses_per_minute: Some(50_000),
            rate_window: Duration::from_secs(60),
        }
    }
}

/// A list of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimList {
    pub id: String,
    pub name: String,
    pub label: String,
    pub status: String,
    /// Member count (`activeCount`).
    pub members: usize,
}

/// One `recipients` entry of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRecipient {
    /// `list` or `contact`.
    pub kind: String,
    pub id: String,
    /// `selected`, `eligible` or `ineligible`.
    pub delivery_type: String,
}

/// A delivery made by `addDeliveries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDelivery {
    pub id: String,
    pub message_id: String,
    pub start: Timestamp,
    /// The delivery `type` (`triggered` or `test`).
    pub kind: String,
    pub from_email: String,
    pub from_name: String,
    pub reply_email: Option<String>,
    pub recipients: Vec<SimRecipient>,
    /// Distinct addresses selected when the delivery was added.
    pub audience: usize,
    /// The (lower-cased) addresses it went to, taken from its lists at its `start`; `None`
    /// before.
    pub sent_to: Option<Vec<String>>,
}

/// A running simulator; stops when dropped.
pub struct BrontoSim {
    server: ServerHandle,
    shared: Arc<server::Shared>,
    config: BrontoSimConfig,
}

/// Starts a simulator with `config` and returns it with the account entry that points at it:
/// the token inline and sender defaults (Bronto keeps no sender in the message).
pub async fn account(
    mut config: BrontoSimConfig,
    setup: &SimSetup,
) -> Result<SimulatedAccount, AccountError> {
    let esp = EspKind::Bronto;
    config.unknown_email_share = setup.unknown_share;
    let credentials = serde_json::json!({"api_token": config.api_token});
    let sim = BrontoSim::start(config, Arc::clone(&setup.clock))
        .await
        .map_err(|source| AccountError::Simulator { esp, source })?;
    sim.set_latency(setup.latency);
    let base_url = sim.base_url();
    let fields = serde_json::json!({
        "base_url": base_url,
        "from_email": "news@brand.example",
        "from_name": "Brand",
        "reply_to": "care@brand.example",
        "credentials": credentials,
    });
    Ok(SimulatedAccount::new(esp, base_url, sim, fields))
}

impl BrontoSim {
    /// Starts a server on `127.0.0.1` on a free port.
    pub async fn start(config: BrontoSimConfig, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let started_with = config.clone();
        let shared = Arc::new(server::Shared {
            clock,
            state: Mutex::new(state::State::new(config)),
            faults: FaultBook::default(),
            recorder: Recorder::default(),
            traffic: Arc::new(Traffic::default()),
        });
        let handler = espbridge_sim::paced(server::handler(shared.clone()), shared.traffic.clone());
        let server = espbridge_sim::http::spawn(handler).await?;
        tracing::info!(port = server.addr().port(), "bronto simulator listening");
        Ok(Self {
            server,
            shared,
            config: started_with,
        })
    }

    /// `http://127.0.0.1:PORT/`
    /// The configuration it was started with.
    pub fn config(&self) -> &BrontoSimConfig {
        &self.config
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/", self.server.addr())
    }

    /// `http://127.0.0.1:PORT/v4`
    pub fn endpoint(&self) -> String {
        format!("http://{}/v4", self.server.addr())
    }

    /// Queues a fault; its `path_contains` is matched against the operation name.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.inject(fault);
    }

    /// Invalidates every session: the next call with one answers Fault 103.
    pub fn expire_sessions(&self) {
        self.shared.state().sessions.clear();
    }

    /// Requests received; `body` is `{"operation": NAME, "items": N}`.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.all()
    }

    /// Successful logins.
    pub fn logins(&self) -> usize {
        self.shared.state().logins
    }

    /// The most sessions live at once (idle-expired and used-up ones no longer count).
    pub fn peak_sessions(&self) -> usize {
        self.shared.state().peak_sessions
    }

    /// Calls a session carried (its header accepted), whatever their outcome.
    pub fn calls_served(&self) -> usize {
        self.shared.state().calls_served
    }

    pub fn lists(&self) -> Vec<SimList> {
        self.shared.state().lists()
    }

    /// E-mails on the list, in insertion order, each once.
    pub fn list_members(&self, list_id: &str) -> Vec<String> {
        self.shared.state().list_members(list_id)
    }

    pub fn deliveries(&self) -> Vec<SimDelivery> {
        self.shared.state().deliveries.clone()
    }

    /// addToList calls refused by the per-minute address limit.
    pub fn rate_refusals(&self) -> usize {
        self.shared.state().rate_refusals
    }

    /// Whether the account has a contact with this address.
    pub fn is_contact(&self, email: &str) -> bool {
        self.shared.state().is_contact(email)
    }
}

impl SimView for BrontoSim {
    /// One send per delivery whose start has come, named after its (first) list.
    fn sends(&self) -> Vec<SimSend> {
        let now = self.shared.clock.now();
        let mut state = self.shared.state();
        state.tick(now);
        state.sim_sends()
    }
    fn limit_refusals(&self) -> u64 {
        self.shared.state().rate_refusals as u64
    }
    fn peak_in_flight(&self) -> usize {
        self.shared.traffic.peak()
    }
    fn set_latency(&self, latency: Duration) {
        self.shared.traffic.set_latency(latency);
    }
}
