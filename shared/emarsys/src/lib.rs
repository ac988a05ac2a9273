//! espbridge's adapter for Emarsys Suite API v2: the [`Esp`](espbridge_core::ports::Esp) port
//! over JSON/HTTPS with `X-WSSE` authentication.
//!
//! Flow per campaign (reference `docs/esp/emarsys-smartfocus.md`, Part A): a contact list of
//! ExternalIDs named after the campaign, ≤ 10 000 ids per `add` call; a copy of the template
//! under the same deterministic name; the list attached to the copy; a scheduled launch; the
//! response summary polled daily. Every create step treats "name already exists" as "made by an
//! earlier attempt" and looks the object up, so retries never duplicate anything.
//!
//! Which e-mails are templates, under either field set of `GET /email`, and the rule for each
//! with its source in the reference: see the docs at the top of `src/esp.rs` ("Which e-mails
//! are templates"); the detail reads they may need are bounded by [`SOURCE_READ_TTL`] and
//! [`DETAIL_READS_IN_FLIGHT`].
//! Times handed on (a template's `created`, the booked launch) are RFC 3339 with the offset of
//! the account's (or the launch's) zone: [`schedule::account_time`].
//!
//! Choices where the reference is uncertain:
//! * `X-RateLimit-Reset` below 10^9 is read as seconds from now, otherwise as a Unix time
//!   (compared with the injected clock); a wait is capped at 61 s.
//! * Preview `data` is used when it is a string; otherwise the e-mail's `html_source`.
//! * The list is attached with `updatesource` when the copy's source is `api`, else `patch`;
//!   6041/6037/6004 switch to the other call.
//! * Pacing spaces requests evenly at 98% of `rate_limit_per_minute`, held for the whole
//!   deployment by a [`RateGate`](espbridge_esp_kit::RateGate) keyed by account (every instance
//!   of every function shares the API user's allowance).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use espbridge_emarsys::{EmarsysConfig, EmarsysCredentials, EmarsysEsp};
//! # fn demo() -> Result<(), espbridge_esp_kit::AdapterError> {
//! let config = EmarsysConfig::new(espbridge_core::AccountId::parse("eu").expect("valid id"));
//! let creds = EmarsysCredentials { user: "api_user".into(), secret: "from-secrets".into() };
//! let ctx = espbridge_esp_kit::BuildContext::in_memory(Arc::new(espbridge_core::SystemClock));
//! let esp = EmarsysEsp::new(config, creds, &ctx)?;
//! # let _ = esp; Ok(()) }
//! ```

mod client;
mod config;
mod driver;
mod esp;
pub mod schedule;
#[cfg(feature = "simulator")]
pub mod sim;
pub mod wire;
pub mod wsse;

pub use config::{EmarsysConfig, EmarsysCredentials};
pub use driver::DRIVER;
pub use esp::{DETAIL_READS_IN_FLIGHT, EmarsysEsp, MAX_BATCH, SOURCE_READ_TTL, keys};

/// Entry points for the property tests and fuzz targets only: no API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::client::{Verdict, classify};

    /// What the client makes of one HTTP answer: its data (`None` for a throttling signal), or
    /// the text of the error it becomes.
    pub fn classify_answer(status: u16, body: &[u8]) -> Result<Option<serde_json::Value>, String> {
        match classify(status, body) {
            Verdict::Done(data) => Ok(Some(data)),
            Verdict::RetryRateLimited => Ok(None),
            Verdict::RetryTransient(detail) => Err(detail),
            Verdict::Fail(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests_support {
    use std::path::PathBuf;

    /// A recorded payload from this crate's `fixtures/` folder.
    pub(crate) fn fixture(name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        assert!(
            dir.is_dir(),
            "Emarsys fixtures not found at {} (expected the shared/ folder beside the repo)",
            dir.display()
        );
        dir.join(name)
    }
}
