//! espbridge's adapter for Bronto: the [`Esp`](espbridge_core::ports::Esp) port over the SOAP
//! API v4 (reference `docs/esp/silverpop-bronto.md`, Part B).
//!
//! Flow per campaign (variant). Templates are the `active` messages of the folder
//! `message_folder` (readMessageFolders by name, then readMessages by `messageFolderId`, paged
//! until an empty page). The audience is a list named `object_name(campaign, variant)`
//! (`espbridge_…`), found by readLists before addLists; contacts are put on it by e-mail with
//! addToList (≤ 5000 a call, paced). The send is one `triggered` delivery of the message to the
//! list at `send_at`, with the account's or the template's sender headers (Bronto keeps none in
//! the message); every attempt first looks for it with readDeliveries (messageId + SameDay
//! start, recipients included). Metrics are the delivery's counters; `cleanup` deletes the list
//! `list_retention_days` after completion.
//!
//! Templates: reference B.6 gives a message's `status` (the `messageObject` field `status`,
//! B.7.1 and the WSDL) as `active | delete | tmp`; only `active` messages are listed. A draft
//! (`tmp`) or a deleted message (`delete`) in the folder is not a template, nor is a message
//! whose status is missing or a value the reference does not list. The filter is applied to
//! what readMessages returns: the request sends no `status` criterion (its matching rules are
//! not documented), so the listing costs the same calls whatever the statuses.
//!
//! Times: a `messageObject` has no date (`id, name, status, messageFolderId, content` in the
//! recorded 2014 WSDL; the SDK's newer model adds counters and `campaignId`, still no date), so
//! a template's `created` is absent, and nothing else this adapter returns through espbridge's
//! API is a time (its [`keys`] are ids and a name). The account therefore has no time-zone
//! setting; delivery `start`s are sent and compared as instants.
//!
//! Cost of one template listing: a `login` when the client has no live session, one
//! readMessageFolders, and one readMessages per 5000 messages of the folder plus the empty page
//! that ends the paging. A folder of 1,000 messages: 4 calls from a fresh client (3 with a live
//! session), whatever their statuses (test `a_listing_of_1000_messages_costs_4_calls`).
//!
//! Choices where the reference is silent or uncertain (UNCERTAIN):
//! * Wire: requests in the recorded shape (`soapenv`/`v4` prefixes, `sessionHeader` in the
//!   Header, children unqualified), `SOAPAction: ""`; Faults are read at any HTTP status, the
//!   code from `detail/ApiException/errorCode`, else the numeric prefix of `faultstring`.
//! * Retries: transport errors, 5xx/429 without a Fault and Faults 101/108/113 with exponential
//!   back-off up to `max_attempts`; Fault 103 logs in again (one login for all the calls in
//!   flight, which wait for it with a deadline) and repeats the call, for as long as the
//!   account's sessions serve calls — an account whose sessions end after a few calls costs a
//!   login per used-up session, not the upload — but not after a few fresh sessions in a row
//!   refused before serving any call (a retryable error then); Faults
//!   102/104/109/111 are authentication errors. 101 still failing after every attempt is
//!   reported as rate limited.
//! * Rate limit: the undocumented "50,000 contacts a minute" (`addresses_per_minute` per
//!   `rate_window_ms`) is held for the whole deployment: every addToList reserves its addresses
//!   from the account's allowance in the shared account limits (DynamoDB in AWS), evenly
//!   spaced at 97% of it, so any number of function instances together stay under it.
//! * addToList item 302 (no such contact) counts as "not in ESP", 506 (already on the list: a
//!   re-sent batch) as accepted; contacts are never created (Bronto's contacts are the
//!   account's, and addOrUpdateContacts would touch their data). Item error texts are stored
//!   with the address replaced by `<email>`.
//! * addDeliveries is sent once per attempt, each attempt preceded by the lookup; a delivery
//!   counts as ours when its start is the same second and it selects our list. Real Bronto
//!   makes deliveries readable "a few minutes" after addDeliveries, so a retry within that gap
//!   could still duplicate; the caller's retries are minutes apart.
//! * The lookup's `start` filter is `SameDay` of the UTC send time; a server comparing days in
//!   the account's zone could miss a delivery near midnight (the next attempt would then make
//!   a second one).
//! * addToList calls carry at most `min(batch_size, addresses_per_minute)` addresses, so one
//!   call always fits the allowance.
//! * `start` is sent as UTC with an explicit `+00:00` offset; the request's time zone is not
//!   needed for an instant.
//! * Metrics: `None` while the delivery is absent, `unsent`, or has no `numSends`;
//!   unsubscribes = ByPrefs + ByComplaint, complaints = ByComplaint.
//! * Read paging stops at an empty page or Fault 116 ("end of result set").
//! * Only lists named `espbridge_…` are deleted; an unknown list (501) counts as deleted; 505
//!   (list still used by a delivery) is retryable.

mod client;
mod config;
mod driver;
mod esp;
#[cfg(feature = "simulator")]
pub mod sim;
pub mod wire;

pub use config::{BrontoConfig, BrontoCredentials, MAX_PER_CALL};
pub use driver::DRIVER;
pub use esp::{BrontoEsp, bronto_start, keys, list_label, metrics};
