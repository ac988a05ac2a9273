//! espbridge's adapter for SmartFocus Campaign Commander (CCMD): the
//! [`Esp`](espbridge_core::ports::Esp) port over the REST services with XML answers and
//! per-service session tokens (reference `docs/esp/emarsys-smartfocus.md`, Part B).
//!
//! Flow per campaign: the audience is tagged in the member table by merge uploads of
//! `CUSTOMER_ID<TAB>tag` files (tag = `object_name(campaign)`), each followed through
//! `getUploadStatus` to `DONE`, at most `max_pending_uploads` at a time; a segment of that name
//! selects `tag_field EQUALS tag`; the template is cloned under the same name, a campaign of that
//! name is created on the segment and posted. Each create first looks for an object of that
//! name, so a retry finds what an earlier attempt made and never posts twice.
//!
//! Choices where the reference is uncertain (Part C):
//! * Paths: PI style everywhere; `connect/open` in QS style (keeps the password out of the
//!   path); `message/getEmailMessagesByField/{t}/name/{name}/{limit}`, falling back to the
//!   singular `getEmailMessageByField` on HTTP 404; `campaign/getCampaign/{t}/{id}` and
//!   `segmentationservice/{t}/segment/{id}` to read names back (the 50 highest ids of
//!   `campaign/last` and `segment/list/1/items/{list_limit}`); snapshot at
//!   `snapshot_path` (default `campaign/getCampaignSnapshotReport`), falling back to
//!   `campaign/getCampaignSnapshot` on HTTP 404.
//! * `sendDate`: local time in the account's zone (`timezone`), `YYYY-MM-DDTHH:MM:SS` by
//!   default (`send_date_format: space_local` for `YYYY-MM-DD HH:MM:SS`), percent-encoded.
//! * `getMessage`'s wrapper element: the first element holding `id` and `name` is read.
//! * Id lists: repeated `<result>` elements, or one `<result>` with id children.
//! * Merge uploads are assumed to insert unknown ids; the criterion is one `<values>`.
//!   `DONE WITH ERRORS` counts every row as accepted (the bad-line file is not read).
//! * Metrics: sent = `nbSelected - nbFiltered`; opens/clicks are the unique counts; `None`
//!   before the recorded send time and while nothing is delivered or bounced.
//! * Sessions: the batch session is closed by `finish_audience`, the apiccmd one after
//!   `schedule_send` and `fetch_metrics`, each only when no other call is using it.
//! * `SendRequest::timezone` is not sent: `campaign/create` takes no zone, so `sendDate` is the
//!   instant written in the account's zone (`timezone`).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use espbridge_smartfocus::{SmartFocusConfig, SmartFocusCredentials, SmartFocusEsp};
//! # fn demo() -> Result<(), espbridge_esp_kit::AdapterError> {
//! let config = SmartFocusConfig::new(espbridge_core::AccountId::parse("sf").expect("valid id"));
//! let creds = SmartFocusCredentials {
//!     login: "api_login".into(),
//!     password: "from-secrets".into(),
//!     key: "manager-key".into(),
//! };
//! let ctx = espbridge_esp_kit::BuildContext::in_memory(Arc::new(espbridge_core::SystemClock));
//! let esp = SmartFocusEsp::new(config, creds, &ctx)?;
//! # let _ = esp; Ok(()) }
//! ```

mod client;
mod config;
mod driver;
mod esp;
#[cfg(feature = "simulator")]
pub mod sim;
pub mod wire;

pub use config::{SendDateFormat, SmartFocusConfig, SmartFocusCredentials};
pub use driver::DRIVER;
pub use esp::{SmartFocusEsp, keys};
