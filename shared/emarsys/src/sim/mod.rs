//! Emarsys Suite API v2 simulator.
//!
//! # The protocol, as simulated
//!
//! * **Base URL** `http://127.0.0.1:PORT/api/v2/`. Requests carry JSON bodies; responses are
//!   JSON served as `Content-Type: text/html; charset=utf-8`, as the real API does.
//! * **Auth**: every request carries `X-WSSE` (or `WSSE`):
//!   `UsernameToken Username="u", PasswordDigest="d", Nonce="n", Created="c"` with
//!   `d = base64(lowercase_hex(sha1(n + c + secret)))`. `Created` must be within 5 minutes of
//!   the injected [`Clock`]; a nonce is accepted once. Failure: HTTP 401, replyCode 1. See [`wsse`].
//! * **Envelope**: `{"replyCode": 0, "replyText": "OK", "data": ...}`. Ids and counters in list and
//!   get responses are strings; create responses use integers. Some errors (2004 wrong key field)
//!   arrive on HTTP 200.
//! * **Latency**: every request is held [`SimView::set_latency`] before it is answered.
//! * **Rate limit**: `rate_limit_per_minute` requests per API user per real-time minute; every
//!   response carries `X-RateLimit-Limit`, `X-Ratelimit-Remaining` and `X-RateLimit-Reset` (unix
//!   seconds, on the injected clock, of the window's end); beyond it 429 / 7003.
//! * **Endpoints**: `GET field`, `GET field/translate/{lang}`, `GET email` (filters as a query,
//!   `email/?status=1`, or legacy in the path, `email/status=1&contactlist=0`), `GET email/templates`,
//!   `GET email/{id}`, `POST email/{id}/preview|copy|patch|updatesource|launch`,
//!   `POST email/getlaunchesofemail`, `GET email/{id}/responsesummary`, `POST contactlist`,
//!   `GET contactlist`, `POST contactlist/{id}/add`, `GET contactlist/{id}/count`. Anything else
//!   is 501 "This feature has not been implemented yet.".
//!
//! # Choices where the reference is UNCERTAIN
//!
//! * Preview answers the stored HTML (or text) source as a JSON string.
//! * Contact-list membership is a set: re-adding a member adds nothing and is not counted in
//!   `inserted_contacts`. Ids that match no contact (a stable hash puts `unknown_id_share` of
//!   them there) are reported as 2008 in `errors` and not added.
//! * `status` flips 1 → 3 when the send time passes (`status_launched_at_send`, default) or at
//!   the launch call; `api_status` goes 0 → 2 at the launch call. A schedule in the past sends at
//!   the call. `time_zone` is accepted beside `timezone`; without one the account zone applies.
//! * A launch's `planned` count is the list's membership at the launch call; the launch is sent
//!   to the list's members as they are at its send time (see [`SimView::sends`]).
//! * `responsesummary` ignores `start_date`/`end_date`; its counters are deterministic per
//!   e-mail, cumulative over the days after the send, and 400 / 6003 before the send time.
//! * An injected [`FaultKind::Timeout`] processes the request and then holds the response.
//! * **Field sets of `GET /email`**: the current one by default (`filter`, `source`,
//!   `content_type`, `deleted`, …; E1 `email_list.rst`, E2); with
//!   [`EmarsysSimConfig::legacy_email_fields`] the older one some accounts still answer, key for
//!   key E4's `emails.json` (`segment` for `filter`; no `source`, `content_type` or `deleted`).
//!   What such an account answers to `GET /email/{id}` is not documented: the simulator
//!   answers the legacy docs' `email_data.rst` fields (which include `source`) with `segment`
//!   for `filter`, as a one-element array, and the patch answer in the same fields as an
//!   object.
//! * Dates in answers (`created`, `deleted`, contact-list `created`) are the account's wall
//!   clock, `YYYY-MM-DD HH:MM:SS` in `account_timezone` (A.8).

mod metrics;
mod ratelimit;
mod server;
mod state;
pub mod wsse;

use espbridge_core::{Clock, EspKind};
use espbridge_esp_kit::{AccountError, SimSend, SimSetup, SimView, SimulatedAccount};
use espbridge_sim::Traffic;
use espbridge_sim::faults::{Fault, FaultBook};
use espbridge_sim::http::ServerHandle;
use espbridge_sim::record::{RecordedRequest, Recorder};
use jiff::Timestamp;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(doc)]
use espbridge_sim::faults::FaultKind;

/// The simulated account's configuration.
#[derive(Debug, Clone)]
pub struct EmarsysSimConfig {
    /// The one API user accepted.
    pub user: String,
    pub secret: String,
    /// Id of the custom contact field holding customer ids (the `key_id` to send).
    pub external_id_field_id: String,
    pub external_id_field_name: String,
    /// Requests per API user per real-time minute.
    pub rate_limit_per_minute: u32,
    /// The window the rate is counted over: a minute, as Emarsys does; tests shorten it (same
    /// rate, a proportional budget) to meet the limit in seconds instead of minutes.
    pub rate_window: Duration,
    /// Largest `external_ids` array per contact-list call (400 / 3002 beyond).
    pub max_ids_per_call: usize,
    /// Share of external ids, chosen by a stable hash, that match no contact (2008).
    pub unknown_id_share: f64,
    /// Whether `status` becomes 3 at the send time (true) or at the launch call (false).
    pub status_launched_at_send: bool,
    /// E-mails present at start.
    pub emails: Vec<SeedEmail>,
    /// The account's zone (IANA): for schedules without `timezone`, zoneless `Created` values
    /// and the `YYYY-MM-DD HH:MM:SS` dates in responses.
    pub account_timezone: String,
    /// Answer `GET /email` (and the e-mail detail) in the older field set: `segment` instead
    /// of `filter`, without `source`, `content_type` and `deleted` in the list.
    pub legacy_email_fields: bool,
}

impl Default for EmarsysSimConfig {
    fn default() -> Self {
        Self {
            user: "espbridge".into(),
            secret: "sim-secret".into(),
            external_id_field_id: "4980".into(),
            external_id_field_name: "ExternalID".into(),
            rate_limit_per_minute: 1000,
            rate_window: Duration::from_secs(60),
            max_ids_per_call: 10_000,
            unknown_id_share: 0.01,
            status_launched_at_send: true,
            emails: SeedEmail::defaults(),
            account_timezone: "Europe/Berlin".into(),
            legacy_email_fields: false,
        }
    }
}

/// An e-mail present when the simulator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedEmail {
    pub name: String,
    /// 1 in design, 2 tested, 3 launched, 4 ready to launch.
    pub status: u8,
    /// Recipient source: `api`, `userlist` or `profile`.
    pub source: String,
    /// `html`, `template` or `block`.
    pub content_type: String,
    pub subject: String,
    pub html: String,
    pub fromemail: String,
    pub fromname: String,
    /// Segment (filter) the e-mail is sent to; 0 for none.
    pub filter: u64,
    /// Contact list the e-mail is sent to; 0 for none (the simulator does not create it).
    pub contactlist: u64,
    /// When it was created; `None`: a day apart, oldest first, before the start.
    pub created: Option<Timestamp>,
}

impl SeedEmail {
    /// An in-design HTML e-mail with an API recipient source.
    pub fn in_design(name: &str, subject: &str) -> Self {
        Self {
            name: name.into(),
            status: 1,
            source: "api".into(),
            content_type: "html".into(),
            subject: subject.into(),
            html: format!("<html><body><h1>{subject}</h1><p>Hi $First Name$!</p></body></html>"),
            fromemail: "news@shop.example".into(),
            fromname: "Shop".into(),
            filter: 0,
            contactlist: 0,
            created: None,
        }
    }

    /// A realistic account: `optimove_` templates in design (HTML with API or contact-list
    /// source, CMS template, block), plus e-mails the template picker must hide.
    pub fn defaults() -> Vec<SeedEmail> {
        let with = |mut e: SeedEmail, status: u8, source: &str, content: &str| {
            e.status = status;
            e.source = source.into();
            e.content_type = content.into();
            e
        };
        vec![
            SeedEmail::in_design("optimove_spring_sale", "Spring sale: 20% off"),
            with(
                SeedEmail::in_design("optimove_weekly_digest", "Your weekly picks"),
                1,
                "userlist",
                "html",
            ),
            with(
                SeedEmail::in_design("optimove_cms_welcome", "Welcome aboard"),
                1,
                "api",
                "template",
            ),
            with(
                SeedEmail::in_design("optimove_loyalty_block", "Your points"),
                1,
                "api",
                "block",
            ),
            with(
                SeedEmail::in_design("optimove_tested_offer", "An offer for you"),
                2,
                "api",
                "html",
            ),
            with(
                SeedEmail::in_design("newsletter_april", "April news"),
                3,
                "userlist",
                "html",
            ),
            with(
                SeedEmail::in_design("transactional_receipt", "Your receipt"),
                1,
                "profile",
                "html",
            ),
        ]
    }
}

/// A contact list as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimContactList {
    pub id: u64,
    pub name: String,
    pub description: String,
    /// External ids of known contacts, each once, in insertion order.
    pub members: Vec<String>,
}

/// One accepted launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimLaunch {
    pub id: u64,
    /// `schedule` as sent; `None` for an immediate launch.
    pub schedule: Option<String>,
    /// The zone the schedule was read in (`timezone` sent, or the account zone).
    pub timezone: String,
    pub send_at: Timestamp,
    /// Contacts assigned at the launch call.
    pub planned: u64,
}

/// An e-mail as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEmail {
    pub id: u64,
    pub name: String,
    /// As reported now (3 once sent, under the default config).
    pub status: i32,
    pub api_status: i32,
    pub contactlist: u64,
    pub filter: u64,
    pub source: String,
    pub content_type: String,
    pub subject: String,
    pub deleted: bool,
    pub launches: Vec<SimLaunch>,
    pub copied_from: Option<u64>,
}

/// A running simulator. Dropping it (or [`EmarsysSim::shutdown`]) stops the server.
pub struct EmarsysSim {
    server: ServerHandle,
    shared: Arc<server::Shared>,
    config: EmarsysSimConfig,
}

/// Starts a simulator with `config` and returns it with the account entry that points at it
/// (credentials inline, the setup's template prefix and zone).
pub async fn account(
    mut config: EmarsysSimConfig,
    setup: &SimSetup,
) -> Result<SimulatedAccount, AccountError> {
    let esp = EspKind::Emarsys;
    config.unknown_id_share = setup.unknown_share;
    // One account, one zone: the adapter reads the simulator's wall-clock dates in it.
    if !setup.timezone.is_empty() {
        config.account_timezone = setup.timezone.clone();
    }
    let credentials = serde_json::json!({"user": config.user, "secret": config.secret});
    let sim = EmarsysSim::start(config, Arc::clone(&setup.clock))
        .await
        .map_err(|source| AccountError::Simulator { esp, source })?;
    sim.set_latency(setup.latency);
    let base_url = sim.base_url();
    let fields = serde_json::json!({
        "base_url": base_url,
        "template_prefix": setup.template_prefix,
        "timezone": setup.timezone,
        "credentials": credentials,
    });
    Ok(SimulatedAccount::new(esp, base_url, sim, fields))
}

impl EmarsysSim {
    /// Starts a server on `127.0.0.1` on a free port.
    pub async fn start(config: EmarsysSimConfig, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let started_with = config.clone();
        let zone = jiff::tz::TimeZone::get(&config.account_timezone).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("account_timezone: {e}"),
            )
        })?;
        let state = state::State::new(&config, zone.clone(), clock.now());
        let shared = Arc::new(server::Shared {
            limiter: Mutex::new(ratelimit::RateLimiter::new(
                config.rate_limit_per_minute,
                config.rate_window,
            )),
            config,
            zone,
            clock,
            state: Mutex::new(state),
            nonces: Mutex::new(wsse::NonceCache::default()),
            faults: FaultBook::default(),
            recorder: Recorder::default(),
            traffic: Arc::new(Traffic::default()),
        });
        let handler = espbridge_sim::paced(server::handler(shared.clone()), shared.traffic.clone());
        let server = espbridge_sim::http::spawn(handler).await?;
        tracing::info!(port = server.addr().port(), "emarsys simulator listening");
        Ok(Self {
            server,
            shared,
            config: started_with,
        })
    }

    /// `http://127.0.0.1:PORT/api/v2/`
    /// The configuration it was started with.
    pub fn config(&self) -> &EmarsysSimConfig {
        &self.config
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/api/v2/", self.server.addr())
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.all()
    }

    /// Queues a fault; see [`Fault`].
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.inject(fault);
    }

    /// The traffic so far (peak concurrency, refusals of the rate limit).
    pub fn traffic(&self) -> &Traffic {
        &self.shared.traffic
    }

    pub fn contact_lists(&self) -> Vec<SimContactList> {
        self.shared.state().sim_lists()
    }

    pub fn emails(&self) -> Vec<SimEmail> {
        let now = self.shared.clock.now();
        self.shared.state().sim_emails(now)
    }

    /// Launch calls accepted (a repeated launch is refused and not counted).
    pub fn launch_count(&self) -> usize {
        self.shared.state().launch_count()
    }

    /// Marks an e-mail deleted (listed only with `showdeleted=1`); `false` if unknown or
    /// already deleted.
    pub fn delete_email(&self, id: u64) -> bool {
        let now = self.shared.clock.now();
        self.shared.state().delete_email(id, now)
    }

    /// Stops the server; open connections close.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl SimView for EmarsysSim {
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
