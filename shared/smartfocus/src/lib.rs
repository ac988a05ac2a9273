//! espbridge's adapter for SmartFocus Campaign Commander (CCMD): the
//! [`Esp`](espbridge_core::ports::Esp) port over the REST services with XML answers and
//! per-service session tokens (reference `docs/esp/emarsys-smartfocus.md`, Part B).
//!
//! Flow per campaign (and A/B variant): `create_audience` reserves one of the account's tag
//! fields; the audience is tagged in the member table by merge uploads of
//! `CUSTOMER_ID<TAB>tag` files into that field (tag = `object_name(campaign)`), each followed
//! through `getUploadStatus` to `DONE`, at most `max_pending_uploads` at a time; a segment of
//! that name selects `<tag field> EQUALS tag` and `<email_field> IS_NOT_EMPTY` and is counted;
//! the template is cloned under the same name, a campaign of that name is created on the segment
//! and posted. Each create first looks for an object of that name, so a retry finds what an
//! earlier attempt made and never posts twice.
//!
//! # Why a pool of tag fields
//!
//! * The REST API has no static list of ids: a campaign targets a segment, a rule over the
//!   member table, so a campaign's audience has to be written into the member table.
//! * A segment is evaluated when the campaign sends, not when it is created or posted. With one
//!   tag field, the next campaign's upload overwrites the field of every customer the two share
//!   before the first one sends, and the first sends only to the customers the second lacks
//!   (issue: two campaigns of 2,000 customers sharing 1,000, the first sent to 1,000).
//! * So each pending campaign holds its own field (`tag_fields`, default `CAMPAIGN_TAG_1` …
//!   `CAMPAIGN_TAG_10`) from `create_audience` until `tag_hold_after_send_mins` (120) after its
//!   send time. The reservation is a deployment-wide slot (`smartfocus/<account>/tag-fields`,
//!   owner = the campaign's object name, so a retry gets the same field back) judged on the
//!   injected clock. A field freed and reused keeps stale tags of earlier campaigns, which never
//!   match: every tag is unique.
//! * Capacity: as many campaigns as there are fields may be pending on an account at once. One
//!   more fails before anything is uploaded with [`EspError::Capacity`](espbridge_core::ports::EspError)
//!   naming `tag_fields` and when the first field frees.
//!
//! # Ids SmartFocus does not know
//!
//! `mergeUpload` has no update-only option and `insertUpload` inserts, so an id missing from the
//! member table cannot be kept out: the merge (as we read the reference) creates a member with
//! only the customer id and the tag, and no e-mail. The segment's `<email_field> IS_NOT_EMPTY`
//! criterion leaves those members out of the send, and `finish_audience` returns the segment's
//! count as `members`, so the upload service counts accepted − members as `not_in_esp`. The
//! count's REST path is `segment_count_path`; a 404 there leaves `not_in_esp` uncounted.
//!
//! # What the marketer sets up
//!
//! Create N text fields in the member table (e.g. `CAMPAIGN_TAG_1` … `CAMPAIGN_TAG_10`) and list
//! them in `tag_fields`, N at least the most campaigns (counting each A/B variant) the account
//! has pending at once (uploaded and waiting for their send time); plus the textual customer-id
//! field (`customer_id_field`) and the e-mail field (`email_field`, `EMAIL`).
//!
//! # Listing templates
//!
//! Templates are the e-mail messages named with `message_prefix`. Every campaign adds a clone
//! (`espbridge_<campaign>`), so an account soon holds far more clones than templates: the
//! newest N messages (`getLastEmailMessages/{limit}`, the former listing, with a `getMessage`
//! per id) stop holding the templates after a few hundred campaigns, and cost N + 1 calls.
//!
//! What the reference (`docs/esp/emarsys-smartfocus.md`, B.4) documents for finding messages:
//! REST `getLastEmailMessages/{limit}` and `getMessagesByPeriod/{begin}/{end}` answer **ids
//! only** (no maximum is documented for the limit);
//! `getEmailMessagesByField/{field}/{value}/{limit}` answers ids and has **no documented
//! wildcard or prefix search**; the paged
//! **`getMessageSummaryList(token, listOptionsEntity)`** (`APIMessageListOptions {page,
//! pageSize, search {name, messageType, …}, sortOptions}` → `APIMessageSummaryList
//! {messageSummaryList [APIMessageSummary {messageId, name, createdDate, messageType,
//! subject, …}], pageSize, nbTotalItems, page, nextPage, previousPage}`; sources S1
//! `CcmdService.java`, `APIMessageListOptions.java`, `APIMessageSearchCriteria.java`,
//! `APIMessageSummaryList.java`, `APIMessageSummary.java`, and S2 `GetMessageSummaryList`) is
//! the only call whose answer holds what a template needs (id, name, type, subject, creation
//! date), so nothing has to be read message by message. Its REST form is unknown, so it is
//! called on the service's SOAP binding, `POST apiccmd/services/CcmdService` (reference B.1),
//! with the session token of the REST `connect/open`.
//!
//! The listing (`message_listing = "summary"`, the default):
//!
//! 1. `getMessageSummaryList` with `search/name` = the prefix, `search/messageType` = `email`,
//!    sorted by `messageId` ascending (messages created meanwhile land on later pages), pages
//!    of `summary_page_size` (100), followed while `nextPage` is true and each page brings new
//!    ids; page 0 is read once more if pages 1.. gave fewer than `nbTotalItems` (whether pages
//!    count from 0 or 1 is not documented; a refused page 0 is ignored). Names are then kept
//!    when they **start** with the prefix, whatever the server's matching rule (contains,
//!    starts with, any case).
//! 2. If that finds no prefixed message (a server whose name search matches whole names only
//!    would answer nothing), the whole e-mail list is read the same way, without a name.
//! 3. A prefixed summary without a `createdDate` is completed by `getMessage` (so at most one
//!    call per template; never for a clone or any other message).
//!
//! Cost of one listing: `connect/open` when no session is open (1) + ⌈templates / page size⌉
//! pages; for an account of 1,000 messages with 30 templates and 900 clones, **2 calls**
//! (1 once the session is open); with the whole-list fallback of step 2, 1 + 1 + ⌈e-mail
//! messages / page size⌉ (12 for those 1,000 messages).
//!
//! UNCERTAIN, and the way out: whether the SOAP binding accepts the REST session token (both
//! are `apiccmd` sessions of the same manager; a refused token fails the listing after the
//! session renewals, naming the call and `message_listing`), the name search's rule (handled
//! above), the largest page size (pages are followed by what the server answers).
//! `message_listing = "by_period"` lists by REST alone: one `getMessagesByPeriod` from
//! `2000-01-01 00:00:00` to tomorrow (the account's zone, `YYYY-MM-DD HH:MM:SS`, B.8) and one
//! `getMessage` per id: every message, but 1 + 1 + N calls for N messages (1,002 for 1,000).
//! The summary listing falls back to it by itself when the SOAP binding answers HTTP 404.
//!
//! # Dates
//!
//! Every timestamp the adapter hands out is RFC 3339, to the second, with the offset the
//! account's zone (`timezone`, default `UTC`: the reference documents no account zone) has at
//! that instant: a template's `created` (the API's `createdDate`/`createDate`, ISO 8601 with or
//! without an offset, B.8; a date without one is read in the account's zone; one that cannot be
//! read is `None`) and the `send_at` kept in a campaign's ESP ids.
//!
//! # Choices where the reference is uncertain (Part C)
//!
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
//! * Merge uploads are assumed to insert unknown ids (as members without e-mail); the EQUALS
//!   criterion is one `<values>`, `IS_NOT_EMPTY` has none; the criteria of one segment are
//!   assumed AND-ed. `DONE WITH ERRORS` counts every row as accepted (the bad-line file is not
//!   read).
//! * Segment count at `segment_count_path` (default
//!   `segmentationservice/{token}/segment/{id}/count`, SOAP `segmentationCount`), a number in
//!   `<result>`; HTTP 404 logs a warning and reports no count.
//! * A segment is evaluated at send time: tag fields are held until the send time plus
//!   `tag_hold_after_send_mins`.
//! * Metrics: sent = `nbSelected - nbFiltered`; opens/clicks are the unique counts; `None`
//!   before the recorded send time and while nothing is delivered or bounced.
//! * Sessions: the batch session is closed by `finish_audience`, the apiccmd one after
//!   `schedule_send` and `fetch_metrics`, each only when no other call is using it. A session
//!   error (expired, the manager's call quota reached) re-opens the service's session once for
//!   all the calls in flight (they wait for it, with a deadline) and repeats the call, for as
//!   long as the account's sessions serve calls: a quota of a few calls per session costs a
//!   `connect/open` per used-up session, not the upload. The manager's cap on open sessions
//!   ("No available connection for manager …" on `connect/open`) is retried like a transient
//!   failure; the client keeps at most one session per service.
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

pub use config::{MessageListing, SendDateFormat, SmartFocusConfig, SmartFocusCredentials};
pub use driver::DRIVER;
pub use esp::{SmartFocusEsp, keys};
