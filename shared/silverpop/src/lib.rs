//! espbridge's adapter for Silverpop Engage (Acoustic Campaign): the
//! [`Esp`](espbridge_core::ports::Esp) port over the XML API with a legacy session
//! (reference `docs/esp/silverpop-bronto.md`, Part A).
//!
//! # One audience per campaign
//!
//! Every campaign (every A/B variant) gets a container of its own, so nothing a later campaign
//! uploads changes who an earlier, still pending one sends to. (Lists mode used to write each
//! campaign's tag into one profile field with AddRecipient and select the tag with a query: a
//! customer in two pending campaigns kept only the later tag, so the earlier query lost them at
//! send time; and AddRecipient created a contact for every id the database did not have.)
//! The manifest's `esp_options.silverpop.mode` chooses the mode, else the account's `mode`.
//!
//! ## Lists mode (default): a contact list per campaign
//!
//! * `create_audience`: GetLists (VISIBILITY 1, LIST_TYPE 18) finds the contact list named
//!   `object_name(campaign, variant)` (a retry), else CreateContactList (DATABASE_ID,
//!   CONTACT_LIST_NAME, VISIBILITY 1, PARENT_FOLDER_PATH = `contact_list_folder`). Its
//!   CONTACT_LIST_ID goes into the ids.
//! * `upload_batch`: AddContactToContactList per contact (CONTACT_LIST_ID and the key COLUMN
//!   `customer_id_field` = the customer id). A refusal meaning "no such contact" is counted as
//!   not in the ESP (`contact_not_found_errorids`, or a FaultString saying "not found" / "does
//!   not exist" that names no list); any other refusal is a row error (its text without the
//!   customer id).
//! * `finish_audience`: nothing to build; the batches already counted the unknown ids
//!   (`members: None`).
//! * `schedule_send`: ScheduleMailing with LIST_ID = the contact list.
//!
//! Why a contact list:
//! * It is static: Acoustic's help says a contact list "is not updated when values in fields or
//!   behaviors for the contact change", and contacts stay in it until removed. At send time it
//!   holds exactly what espbridge put in it.
//! * ScheduleMailing takes it as is: LIST_ID is "the ID of database, query, or contact list".
//! * AddContactToContactList adds existing contacts only and never creates one ("If the contact
//!   is not found, an error message returns"); a contact already in the list "is not added", so
//!   a retried batch adds nobody twice. espbridge creates no contacts (no AddRecipient).
//!
//! The cost: one call per contact, the only form the API offers short of ImportList over SFTP
//! (the bulk import below, for accounts with `sftp` settings). The calls are bounded by the
//! org's 10 concurrent requests, shared by every function instance: a batch holds as many of
//! the org's request slots as are free (at least one) and runs that many calls at once. At
//! 100 ms a call an org adds at most about 100 contacts a second, whatever the number of
//! campaigns uploading.
//!
//! Contact lists accumulate: the API documents no way to delete one (the docs FAQ says it is
//! not possible; UNCERTAIN whether DeleteList accepts contact lists today), so espbridge leaves
//! them in one folder, `contact_list_folder` (default `espbridge`), for the marketer to purge
//! now and then (Acoustic notes that very many lists slow an org down).
//!
//! The marketer's setup: a database whose key field `customer_id_field` (default `CustomerID`)
//! holds the customer id, with the customers already in it (espbridge adds none; the ids it does
//! not find are reported as not in the ESP); its id as `database_id`; the folder
//! `contact_list_folder` made beforehand (UNCERTAIN whether CreateContactList makes a missing
//! folder path).
//!
//! ## Relational Tables mode: rows per campaign, a query per campaign
//!
//! * `upload_batch`: InsertUpdateRelationalTable rows of (`ActionID` = the campaign id,
//!   `_variant` appended; the customer id; the personalization fields) into
//!   `relational_table_id`, `rows_per_call` at a time; FAILURES are row errors.
//! * `finish_audience`: finds or creates the query `object_name(campaign, variant)` in
//!   `query_folder_id`, selecting the database's contacts with a row of the campaign's ActionID
//!   (an `rt_profile` criterion); then counts it: CalculateQuery → JOB_ID, GetJobStatus every
//!   `job_poll_interval_ms` until COMPLETE (WAITING / RUNNING wait; ERROR, CANCELED or more than
//!   `job_timeout_secs` is a retryable error), and GetListMetaData SIZE → `members`.
//! * `schedule_send`: ScheduleMailing with LIST_ID = the query.
//!
//! It is per campaign because each campaign's rows carry its own ActionID and its query selects
//! that ActionID: a later campaign adds rows beside the earlier ones. **This requires the
//! table's key to include ActionID**: keyed by the customer id alone, InsertUpdateRelationalTable
//! would replace a customer's row and the earlier campaign's query would lose them. Rows never
//! create contacts: a row whose customer id matches no contact never joins the query, so the
//! query's size is what the campaign sends to, and the upload counts the accepted rows beyond it
//! as not in the ESP.
//!
//! The marketer's setup: a relational table keyed by both `ActionID` (TEXT; a NUMERIC column
//! takes only numeric campaign ids without variants) and the customer-id column, plus one column
//! per personalization field, joined to the database on the customer id (JoinTable); its id as
//! `relational_table_id`, and optionally a query folder as `query_folder_id`.
//!
//! ## Bulk import (both modes, accounts with `sftp` settings)
//!
//! A batch of at least `bulk_import_threshold` rows (default 5,000) goes as one data job
//! ([`bulk`]): its CSV and mapping are written to the org's SFTP `upload` folder (host key
//! pinned, checked before any credential is sent), then ImportList (Lists mode: UPDATE_ONLY on
//! the database keyed on `customer_id_field`, CONTACT_LISTS = the campaign's contact list, so,
//! as AddContactToContactList, it creates no contact and an unknown id is a refused row) or
//! ImportTable (Relational Tables mode: the rows the per-call route writes, ADD_AND_UPDATE)
//! starts it, and its JOB_ID is the batch's [`BatchJob`](espbridge_core::ports::BatchJob),
//! which the upload records before it waits. `finish_batch_job` follows GetJobStatus until the
//! job ends and reads its error file through SFTP: Lists mode counts the unknown ids as not in
//! the ESP, other refusals are row errors (by row; no cell of the row in the text). Batches
//! are then `bulk_batch_size` rows (default 100,000); an audience's remainder under the
//! threshold, and every batch of an account without `sftp`, go by the per-call route. File
//! names are deterministic per audience and batch, so a batch started twice rewrites the same
//! files and adds nobody twice; finishing a job that ended before reads the same outcome.
//! Where a job reports its refused rows is UNCERTAIN (the reference is silent; see [`bulk`]).
//!
//! # Sessions and the org's limits
//!
//! Silverpop refuses an org's 11th concurrent request and allows 20 live sessions per org. Both
//! are held deployment-wide (`max_concurrent` request slots, `max_sessions` session slots in the
//! account limits): a request holds a request slot, a session its session slot from Login to
//! Logout. A step (creating the audience, one batch, finishing it, scheduling, a metrics poll)
//! logs its session out when no call of it is left, and frees its session slot then even if
//! Silverpop had already ended the session, so the org's sessions go round the instances.
//!
//! No call can hang: every wait has a deadline that ends in a retryable error naming what was
//! waited for (another call's Login, 120 s; a request or session slot of the org, 120 s; one of
//! the batch's slots or of the client's in-flight permits, 180 s; a query's size, `job_timeout_secs`),
//! and no wait closes a circle: a batch (a single call is a batch of one) takes its session slot
//! first, then its request slots, and logs in only through its own request slots; a Login never
//! waits for a request slot, and inside a batch never for a session slot. The first call of a
//! batch that cannot be made ends the batch (the batch is sent again whole later; a contact
//! list adds nobody twice).
//!
//! **Sessions that end early.** A session Silverpop ends (Fault 145: idle, or an org that ends
//! sessions after a few calls) is renewed single-flight: the calls in flight that meet the
//! refusal wait for one Login and repeat on its session. A call repeats for as long as the
//! org's sessions serve calls; only a few fresh sessions in a row refused before serving any
//! call end it (retryably). An org whose sessions end every 3 calls therefore costs one Login
//! per 3 calls, never the upload.
//!
//! **Concurrency learned from refusals.** Another tool of the org can use its ten requests, and
//! an org can allow fewer: Silverpop then refuses ("too many concurrent requests", Fault 10)
//! without saying how many it takes. `max_concurrent` is therefore a ceiling: a refusal halves
//! this client's in-flight limit (at least 1; the other refusals of that moment change nothing
//! more), and the refused request goes again under the lower limit without spending an attempt;
//! a run of answers while the limit is reached raises it by one, up to `max_concurrent`
//! (additive increase, multiplicative decrease). A decrease is logged, and each batch logs the
//! concurrency the client settled on, its refusals and its logins. Refusals lasting longer than
//! two minutes for one request become the HTTP layer's throttling waits, which end (after its
//! patience) in `RateLimited`: retryable, so the upload goes on in a later invocation.

//! # Times
//!
//! Silverpop writes times without a zone (reference A.4): they are the org's local time, the
//! account's `timezone` (the zone SCHEDULED and the date ranges are written in too). A
//! template's `created` is its `LAST_MODIFIED` (GetMailingTemplates gives no creation time),
//! `MM/dd/yy hh:mm a` (`05/28/24 03:12 PM`), read in that zone and given as RFC 3339 with its
//! offset on that date (`2024-05-28T15:12:00-04:00` in `America/New_York`, `-05:00` in
//! winter); a value that cannot be read is left out (`None`) and logged
//! ([`wire::org_time`] has the exact rules, DST changes included). The only other time this
//! adapter returns through the API, the send time kept in the campaign's ids
//! ([`keys::SEND_AT`]), is RFC 3339 with the same zone's offset.
//!
//! Cost of one template listing: one GetMailingTemplates (it has no paging), plus a Login when
//! the client has no live session: 2 calls for an org of 1,000 templates from a fresh client,
//! 1 with a live session (test `a_listing_of_1000_templates_costs_2_calls`).

//! # Choices where the reference is uncertain
//!
//! * One request form: raw `text/xml;charset=UTF-8` bodies (no `xml=` form field); values are
//!   entity-escaped by quick-xml rather than CDATA-wrapped.
//! * Any Fault of Login is an authentication error (not retried), except errorid 146 (the
//!   simulator's "sessions all in use") and 10 (its "too many concurrent requests"), which are
//!   retryable. errorid 10 is read as the org's concurrency refusal (see above; the real id is
//!   undocumented). errorid 50 is retried, as are transport errors, 5xx and 429 —
//!   except ScheduleMailing, which is sent once per attempt and preceded by a
//!   GetSentMailingsForOrg lookup of its name, so a lost answer never schedules twice.
//! * The errorid of "contact not found" is undocumented: `contact_not_found_errorids` defaults to
//!   the simulator's (129), and the FaultString test backs it up.
//! * The query is looked up by name with GetLists (LIST_TYPE 1, `query_folder_id`); a server
//!   that refuses GetLists with errorid 51 gets a CreateQuery. Contact lists are looked up with
//!   GetLists LIST_TYPE 18 over every shared contact list (they accumulate: the answer grows).
//! * CalculateQuery is allowed once per query every 12 hours: a retried `finish_audience` may be
//!   refused it, and then reports `members: None` (the unknown ids go uncounted) rather than
//!   failing the campaign.
//! * An audience finished by an earlier version in Lists mode (a query over the tag field, no
//!   contact list) is still scheduled to its query.
//! * SCHEDULED and date ranges are local times in `timezone` (the request's zone if given);
//!   returned times (LAST_MODIFIED) are read as local times in `timezone` (the reference marks
//!   the zone of returned times UNCERTAIN: "org/user setting").
//! * The report is found by GetSentMailingsForOrg within a day of the send time; `None` until
//!   the mailing has a `SentTS` and `ReportId`. delivered = NumSent − hard − soft bounces.

pub mod bulk;
mod client;
mod concurrency;
mod config;
mod csv;
mod driver;
mod esp;
pub mod import;
pub mod sftp;
#[cfg(feature = "simulator")]
pub mod sim;
pub mod wire;
pub mod xml;

pub use config::{
    AudienceMode, MAX_BULK_BATCH, SftpOptions, SilverpopConfig, SilverpopCredentials,
};
pub use driver::DRIVER;
pub use esp::{
    ACTION_ID_COLUMN, ASSUMED_IMPORT_ROWS_PER_SEC, SilverpopEsp, action_id, keys, metrics,
};
