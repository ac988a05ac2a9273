//! espbridge's adapter for Silverpop Engage (Acoustic Campaign): the
//! [`Esp`](espbridge_core::ports::Esp) port over the XML API with a legacy session
//! (reference `docs/esp/silverpop-bronto.md`, Part A).
//!
//! Flow per campaign. Lists mode: the tag (campaign id, `_variant` appended) is written to
//! `tag_field` of each recipient by AddRecipient (update if found, matched on
//! `customer_id_field`); Relational Tables mode: InsertUpdateRelationalTable rows of
//! (`ActionID`, customer id, personalization fields), FAILURES reported per row. Then
//! `finish_audience` finds or creates the query `object_name(campaign)` in `query_folder_id`,
//! and `schedule_send` finds (GetSentMailingsForOrg, scheduled included) or schedules the
//! mailing of that name into `mailing_folder`. Metrics: GetAggregateTrackingForMailing.
//!
//! Choices where the reference is uncertain:
//! * One request form: raw `text/xml;charset=UTF-8` bodies (no `xml=` form field); values are
//!   entity-escaped by quick-xml rather than CDATA-wrapped.
//! * Any Fault of Login is an authentication error (not retried); errorid 50 and 10 (the
//!   simulator's "too many concurrent requests") are retried elsewhere, as are transport errors,
//!   5xx and 429 — except ScheduleMailing, which is sent once per attempt and preceded by a
//!   GetSentMailingsForOrg lookup of its name, so a lost answer never schedules twice.
//! * The query is looked up by name with GetLists (LIST_TYPE 1, `query_folder_id`); a server
//!   that refuses GetLists with errorid 51 (the simulator) gets a CreateQuery.
//! * ActionID is the campaign id (`_variant` appended): a NUMERIC ActionID column takes only
//!   numeric campaign ids without variants.
//! * SCHEDULED and date ranges are local times in `timezone` (the request's zone if given).
//! * The report is found by GetSentMailingsForOrg within a day of the send time; `None` until
//!   the mailing has a `SentTS` and `ReportId`. delivered = NumSent − hard − soft bounces.
//! * The session is logged out after `schedule_send` and `fetch_metrics` when no call is in
//!   flight; otherwise it lapses.

mod client;
mod config;
mod driver;
mod esp;
#[cfg(feature = "simulator")]
pub mod sim;
pub mod wire;
pub mod xml;

pub use config::{AudienceMode, SilverpopConfig, SilverpopCredentials};
pub use driver::DRIVER;
pub use esp::{ACTION_ID_COLUMN, SilverpopEsp, action_id, keys, metrics};
