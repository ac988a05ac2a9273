//! What every ESP adapter is built from, so each adapter keeps only what is its ESP's own
//! (envelopes, authentication, pacing rules):
//!
//! - [`http`]: the one HTTP layer — no redirects, capped response bodies, the retry loop with
//!   exponential back-off and full jitter, `Retry-After`, transport errors without URLs;
//! - [`settings`]: `base_url` (https, or http to loopback), timeout, attempts and body cap, each
//!   checked while the account configuration is deserialized;
//! - [`session`]: a login session shared by an account's calls, renewed single-flight;
//! - [`limits`]: an account's limits held for the whole deployment ([`RateGate`], [`SlotPool`]),
//!   and paces learned from an ESP's refusals ([`Aimd`]);
//! - [`driver`]: the [`EspDriver`] trait, one per ESP, which the ESP registry lists;
//! - [`Secret`]: credentials wrapped so they never print (`secrecy`).

pub mod driver;
mod error;
pub mod http;
pub mod limits;
pub mod session;
pub mod settings;

pub use driver::{
    AccountEntry, AccountError, Adapter, BoxError, BuildContext, DemoCampaign, Driver, EspDriver,
    SecretError, SecretSource, SimSend, SimSetup, SimView, SimulatedAccount,
};
pub use error::AdapterError;
pub use http::{Backoff, EspHttp, Exchange, Idempotency, Retryable, SendError, Step};
pub use limits::{Aimd, MemoryLimits, RateGate, SlotGuard, SlotPool};
pub use secrecy::{ExposeSecret, SecretString as Secret};
pub use session::SessionSlot;
pub use settings::{
    Attempts, BaseUrl, BodyLimit, DEFAULT_THROTTLE_PATIENCE, HttpDefaults, HttpOptions,
    HttpSettings, RequestTimeout,
};
