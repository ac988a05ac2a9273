//! Account state and the operations on it. Each operation takes the element under `Body` and
//! returns the serialised RESULT fields, or a fault.

use super::metrics::metrics_at;
use super::xml::{Node, NodeExt, cdata, el, esc};
use super::{
    QueryCriterion, SilverpopSimConfig, SimContactList, SimMailing, SimQuery, SimRecipient,
    SimTable,
};
use espbridge_esp_kit::SimSend;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

mod import;

pub(crate) use import::ImportJob;

/// AddContactToContactList of a contact the database does not have (id invented: Silverpop
/// documents none). The adapter's default `contact_not_found_errorids` is this id.
pub(crate) const CONTACT_NOT_FOUND: i64 = 129;

/// Polls after which a data job is COMPLETE (WAITING, RUNNING, then COMPLETE)...
const JOB_POLLS: u32 = 3;
/// ...or the clock time after which it is, polled or not.
const JOB_DURATION: SignedDuration = SignedDuration::from_secs(10);

/// A Fault answer: errorid, class, FaultString.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpFault {
    pub errorid: i64,
    pub class: &'static str,
    pub message: String,
}

impl SpFault {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            errorid: 51,
            class: "SP.API",
            message: message.into(),
        }
    }

    pub fn invalid_request() -> Self {
        Self::invalid("Invalid XML Request")
    }

    pub fn session_lost() -> Self {
        Self {
            errorid: 145,
            class: "SP.Admin",
            message: "Session has expired or is invalid".into(),
        }
    }

    pub fn server_error() -> Self {
        Self {
            errorid: 50,
            class: "SP.API",
            message: "Server Error".into(),
        }
    }

    pub fn sessions_exhausted() -> Self {
        Self {
            errorid: 146,
            class: "SP.Admin",
            message: "Maximum number of sessions reached".into(),
        }
    }

    pub fn contact_not_found() -> Self {
        Self {
            errorid: CONTACT_NOT_FOUND,
            class: "SP.Recipients",
            message: "Contact not found in the database".into(),
        }
    }

    pub fn too_many_concurrent() -> Self {
        Self {
            errorid: 10,
            class: "SP.API",
            message: "Too many concurrent requests".into(),
        }
    }
}

pub(crate) type OpResult = Result<String, SpFault>;

/// A live legacy session.
pub(crate) struct LiveSession {
    /// Its last use (Login, or a call with it).
    pub last: Timestamp,
    /// Calls made with it so far (Login and Logout not counted).
    pub calls: u32,
}

/// A relational table's rows, compact (a million rows in ~150 MB): each row a slice of
/// values by column position, repeated values (the campaign's ActionID) shared, and an index
/// from the hash of a row's key values to the row.
pub(crate) struct TableState {
    pub table: SimTable,
    rows: Vec<Box<[Option<Arc<str>>]>>,
    /// Hash of a row's key values → its index (an upsert finds its row at once, however big
    /// the table); a key whose hash another key took is in `collided`.
    by_hash: HashMap<u64, usize>,
    collided: HashMap<Vec<String>, usize>,
    /// The value stored last per column, shared by the next row with the same value.
    last: Vec<Option<Arc<str>>>,
}

impl TableState {
    pub fn new(table: SimTable) -> Self {
        let columns = table.columns.len();
        Self {
            table,
            rows: Vec::new(),
            by_hash: HashMap::new(),
            collided: HashMap::new(),
            last: vec![None; columns],
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The rows as column name → value, in insertion order.
    pub fn rows(&self) -> Vec<BTreeMap<String, String>> {
        self.rows
            .iter()
            .map(|row| {
                self.table
                    .columns
                    .iter()
                    .zip(row.iter())
                    .filter_map(|(c, v)| Some((c.name.clone(), v.as_deref()?.to_owned())))
                    .collect()
            })
            .collect()
    }

    /// The `out` values of the rows whose `column` equals `value`.
    pub fn select<'a>(
        &'a self,
        column: &str,
        value: &'a str,
        out: &str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let at = |name: &str| self.table.columns.iter().position(|c| c.name == name);
        let (col, out) = (at(column), at(out));
        self.rows.iter().filter_map(move |row| {
            let v = row.get(col?)?.as_deref()?;
            if v != value {
                return None;
            }
            row.get(out?)?.as_deref()
        })
    }

    /// The key-column values of a row given by name.
    fn key_of<'v>(&self, values: &'v BTreeMap<String, String>) -> Vec<&'v str> {
        self.table
            .columns
            .iter()
            .filter(|c| c.key)
            .map(|c| values.get(&c.name).map_or("", String::as_str))
            .collect()
    }

    fn hash(key: &[&str]) -> u64 {
        let mut bytes = Vec::new();
        for k in key {
            bytes.extend_from_slice(&(k.len() as u64).to_le_bytes());
            bytes.extend_from_slice(k.as_bytes());
        }
        xxh3_64(&bytes)
    }

    /// Whether stored row `i` has this key.
    fn has_key(&self, i: usize, key: &[&str]) -> bool {
        let Some(row) = self.rows.get(i) else {
            return false;
        };
        self.table
            .columns
            .iter()
            .zip(row.iter())
            .filter(|(c, _)| c.key)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
            .eq(key.iter().copied())
    }

    /// The index of the row with this key.
    fn find(&self, key: &[&str]) -> Option<usize> {
        match self.by_hash.get(&Self::hash(key)) {
            Some(&i) if self.has_key(i, key) => Some(i),
            Some(_) => {
                let owned: Vec<String> = key.iter().map(|k| (*k).to_owned()).collect();
                self.collided.get(&owned).copied()
            }
            None => None,
        }
    }

    /// Whether a row with the key of `values` is stored.
    pub fn contains_key_of(&self, values: &BTreeMap<String, String>) -> bool {
        self.find(&self.key_of(values)).is_some()
    }

    fn intern(&mut self, at: usize, value: &str) -> Arc<str> {
        if let Some(Some(last)) = self.last.get(at)
            && &**last == value
        {
            return Arc::clone(last);
        }
        let v: Arc<str> = Arc::from(value);
        if let Some(slot) = self.last.get_mut(at) {
            *slot = Some(Arc::clone(&v));
        }
        v
    }

    /// Inserts the row, or updates the row with its key (values of columns the table does not
    /// have are left out: rows are validated first).
    fn upsert(&mut self, values: BTreeMap<String, String>) {
        let key = self.key_of(&values);
        let found = self.find(&key);
        let hash = Self::hash(&key);
        let owned_key: Vec<String> = key.iter().map(|k| (*k).to_owned()).collect();
        let positions: Vec<(usize, &String)> = values
            .iter()
            .filter_map(|(name, v)| {
                Some((self.table.columns.iter().position(|c| &c.name == name)?, v))
            })
            .collect();
        let mut cells = Vec::with_capacity(positions.len());
        for (at, v) in positions {
            cells.push((at, self.intern(at, v)));
        }
        let i = match found {
            Some(i) => i,
            None => {
                let i = self.rows.len();
                self.rows
                    .push(vec![None; self.table.columns.len()].into_boxed_slice());
                if let std::collections::hash_map::Entry::Vacant(e) = self.by_hash.entry(hash) {
                    e.insert(i);
                } else {
                    self.collided.insert(owned_key, i);
                }
                i
            }
        };
        if let Some(row) = self.rows.get_mut(i) {
            for (at, v) in cells {
                if let Some(slot) = row.get_mut(at) {
                    *slot = Some(v);
                }
            }
        }
    }
}

/// A data job (CalculateQuery): the query's size when it was started, applied to the query
/// when the job completes.
struct Job {
    query_id: i64,
    size: usize,
    started: Timestamp,
    polls: u32,
    done: bool,
}

impl Job {
    fn status(&self, now: Timestamp) -> &'static str {
        if self.done || self.polls >= JOB_POLLS || now >= self.started + JOB_DURATION {
            "COMPLETE"
        } else if self.polls + 1 >= JOB_POLLS {
            "RUNNING"
        } else {
            "WAITING"
        }
    }
}

pub(crate) struct State {
    pub config: SilverpopSimConfig,
    pub zone: TimeZone,
    /// Live sessions by id.
    pub sessions: HashMap<String, LiveSession>,
    pub logins: usize,
    /// The most sessions ever live at once.
    pub peak_sessions: usize,
    next_id: i64,
    /// Contacts with stored fields (AddRecipient/UpdateRecipient), by customer id. Every other
    /// customer id outside the unknown share is a contact too, without fields.
    pub recipients: BTreeMap<String, SimRecipient>,
    /// Customer ids of the contacts AddRecipient created (not in the database before).
    pub created: BTreeSet<String>,
    /// Recipient ids the API has answered with, for AddContactToContactList by CONTACT_ID.
    revealed: HashMap<i64, String>,
    pub contact_lists: Vec<SimContactList>,
    /// Folder path → id (made on demand by CreateContactList).
    folders: BTreeMap<String, i64>,
    pub tables: Vec<TableState>,
    pub queries: Vec<SimQuery>,
    jobs: BTreeMap<i64, Job>,
    /// Import jobs (ImportList, ImportTable) by JOB_ID.
    pub imports: BTreeMap<i64, ImportJob>,
    /// When the org's last queued import job ends (the org runs them one at a time).
    import_queue_end: Option<std::time::Instant>,
    /// How the next import job ends, when a test says so.
    pub next_import_end: Option<super::JobEnd>,
    /// The org's SFTP folders, when the endpoint is attached.
    pub sftp: Option<super::sftp::SftpFiles>,
    pub mailings: Vec<SimMailing>,
}

fn need<'a>(op: &'a Node, name: &str) -> Result<&'a str, SpFault> {
    op.text_of(name)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| SpFault::invalid(format!("{name} is required")))
}

fn need_id(op: &Node, name: &str) -> Result<i64, SpFault> {
    need(op, name)?
        .parse()
        .map_err(|_| SpFault::invalid(format!("{name} must be numeric")))
}

/// `MM/dd/yy hh:mm AM`, the format of LAST_MODIFIED and CREATED in list, template and
/// metadata results (reference A.4).
fn list_ts(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned_datetime(zone.clone())
        .strftime("%m/%d/%y %I:%M %p")
        .to_string()
}

/// `yyyy-MM-dd HH:mm:ss.0`, the reporting timestamp format.
fn report_ts(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S.0")
        .to_string()
}

impl State {
    pub fn new(config: SilverpopSimConfig, zone: TimeZone) -> Self {
        let tables = vec![TableState::new(config.relational_table.clone())];
        Self {
            config,
            zone,
            sessions: HashMap::new(),
            logins: 0,
            peak_sessions: 0,
            next_id: 3_310_000,
            recipients: BTreeMap::new(),
            created: BTreeSet::new(),
            revealed: HashMap::new(),
            contact_lists: Vec::new(),
            folders: BTreeMap::new(),
            tables,
            queries: Vec::new(),
            jobs: BTreeMap::new(),
            imports: BTreeMap::new(),
            import_queue_end: None,
            next_import_end: None,
            sftp: None,
            mailings: Vec::new(),
        }
    }

    /// Whether the database has a contact with this customer id: one the API created or
    /// updated, or any id outside the configured unknown share (the database espbridge finds).
    pub fn is_contact(&self, customer_id: &str) -> bool {
        !customer_id.is_empty()
            && (self.recipients.contains_key(customer_id)
                || !espbridge_sim::in_share(customer_id, self.config.unknown_id_share))
    }

    /// A contact's recipient id: the stored one, or a stable one derived from the customer id
    /// for the contacts the database had before.
    fn recipient_id(&self, customer_id: &str) -> i64 {
        self.recipients.get(customer_id).map_or_else(
            || 100_000_000 + (xxh3_64(customer_id.as_bytes()) % 800_000_000) as i64,
            |r| r.recipient_id,
        )
    }

    /// Freezes the audience of every mailing whose scheduled time has come (its list's members
    /// as they are now) and completes the data jobs whose time has come. Called before every
    /// request changes anything, so a mailing goes to its list as it stood at its send time.
    pub fn tick(&mut self, now: Timestamp) {
        for i in 0..self.mailings.len() {
            let m = &self.mailings[i];
            if m.recipients.is_none() && m.scheduled_at <= now {
                let members = self.members_of(m.list_id).unwrap_or_default();
                self.mailings[i].recipients = Some(members);
            }
        }
        let due: Vec<i64> = self
            .jobs
            .iter()
            .filter(|(_, j)| !j.done && j.status(now) == "COMPLETE")
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.complete_job(id);
        }
        self.run_due_imports();
    }

    fn complete_job(&mut self, job_id: i64) {
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return;
        };
        job.done = true;
        let (query_id, size) = (job.query_id, job.size);
        if let Some(q) = self.queries.iter_mut().find(|q| q.id == query_id) {
            q.calculated_size = Some(size);
        }
    }

    /// Every mailing sent so far, with the customer ids it went to.
    pub fn sim_sends(&self) -> Vec<SimSend> {
        self.mailings
            .iter()
            .filter_map(|m| {
                Some(SimSend {
                    name: m.name.clone(),
                    send_at: m.scheduled_at,
                    recipients: m.recipients.clone()?,
                })
            })
            .collect()
    }

    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Refreshes a live session and counts a call against it, or reports it lost (unknown or
    /// idle too long). A session whose `session_max_calls`-th call this is ends with it: the
    /// next call with it answers Fault 145.
    pub fn touch_session(&mut self, id: Option<&str>, now: Timestamp) -> Result<(), SpFault> {
        self.check_session(id, now)?;
        let id = id.unwrap_or_default();
        let max_calls = self.config.session_max_calls;
        if let Some(s) = self.sessions.get_mut(id) {
            s.last = now;
            s.calls += 1;
            if max_calls.is_some_and(|m| s.calls >= m) {
                self.sessions.remove(id);
            }
        }
        Ok(())
    }

    /// Whether a session is live, without counting a call (Logout); an idle one ends.
    pub fn check_session(&mut self, id: Option<&str>, now: Timestamp) -> Result<(), SpFault> {
        let idle = self.config.session_idle;
        let id = id.ok_or_else(SpFault::session_lost)?;
        match self.sessions.get(id) {
            Some(s) if now - s.last <= idle => Ok(()),
            Some(_) => {
                self.sessions.remove(id);
                Err(SpFault::session_lost())
            }
            None => Err(SpFault::session_lost()),
        }
    }

    pub fn login(&mut self, op: &Node, now: Timestamp) -> OpResult {
        let user = op.text_of("USERNAME").unwrap_or_default();
        let password = op.text_of("PASSWORD").unwrap_or_default();
        if user != self.config.username || password != self.config.password {
            return Err(SpFault::server_error());
        }
        let idle = self.config.session_idle;
        self.sessions.retain(|_, s| now - s.last <= idle);
        if self.sessions.len() >= self.config.max_sessions {
            return Err(SpFault::sessions_exhausted());
        }
        self.logins += 1;
        let seed = format!("{}/{}", self.logins, now.as_nanosecond());
        let session = format!(
            "{:016X}{:016X}",
            xxh3_64(seed.as_bytes()),
            xxh3_64(format!("{seed}/2").as_bytes())
        );
        self.sessions.insert(
            session.clone(),
            LiveSession {
                last: now,
                calls: 0,
            },
        );
        self.peak_sessions = self.peak_sessions.max(self.sessions.len());
        Ok(format!(
            "{}{}{}",
            el("SESSIONID", &session),
            el("ORGANIZATION_ID", &self.config.organization_id),
            el("SESSION_ENCODING", format!(";jsessionid={session}"))
        ))
    }

    pub fn logout(&mut self, session: Option<&str>) -> OpResult {
        if let Some(id) = session {
            self.sessions.remove(id);
        }
        Ok(String::new())
    }

    pub fn templates(&self, op: &Node) -> OpResult {
        let shared = match need(op, "VISIBILITY")? {
            "1" => true,
            "0" => false,
            _ => return Err(SpFault::invalid("VISIBILITY must be 0 or 1")),
        };
        let mut out = String::new();
        for t in self.config.templates.iter().filter(|t| t.shared == shared) {
            out.push_str(&format!(
                "<MAILING_TEMPLATE>{}{}{}{}{}{}{}{}</MAILING_TEMPLATE>",
                el("MAILING_ID", t.id),
                el("MAILING_NAME", &t.name),
                el("SUBJECT", &t.subject),
                el("LAST_MODIFIED", list_ts(t.last_modified, &self.zone)),
                el("VISIBILITY", u8::from(t.shared)),
                el(
                    "USER_ID",
                    "2f31c0-18f0a1b2c3d-5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
                ),
                el("FLAGGED_FOR_BACKUP", "false"),
                el("ALLOW_CRM_BLOCK", "false"),
            ));
        }
        Ok(out)
    }

    pub fn preview(&self, op: &Node) -> OpResult {
        let id = need_id(op, "MailingId")?;
        let t = self
            .config
            .templates
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| SpFault::invalid(format!("Mailing {id} not found")))?;
        Ok(format!(
            "<HTMLBody>{}</HTMLBody><AOLBody>{}</AOLBody><TextBody>{}</TextBody>{}",
            cdata(&t.html),
            cdata(&t.html),
            cdata(&t.text),
            el("SPAMScore", "1.2")
        ))
    }

    /// The database fields of AddRecipient/UpdateRecipient: `COLUMN/NAME+VALUE` and `SYNC_FIELDS`.
    fn columns(op: &Node) -> BTreeMap<String, String> {
        let mut fields = BTreeMap::new();
        let sync = op
            .child("SYNC_FIELDS")
            .into_iter()
            .flat_map(|s| s.children_named("SYNC_FIELD"));
        for column in sync.chain(op.children_named("COLUMN")) {
            if let Some(name) = column.text_of("NAME") {
                let value = column.text_of("VALUE").unwrap_or_default();
                fields.insert(name.to_owned(), value.to_owned());
            }
        }
        fields
    }

    fn check_database(&self, op: &Node) -> Result<(), SpFault> {
        let list = need_id(op, "LIST_ID")?;
        if list != self.config.database_id {
            return Err(SpFault::invalid(format!("List {list} not found")));
        }
        Ok(())
    }

    pub fn add_recipient(&mut self, op: &Node, update: bool) -> OpResult {
        self.check_database(op)?;
        let fields = Self::columns(op);
        let key = fields
            .get(&self.config.customer_id_field)
            .filter(|k| !k.is_empty())
            .cloned()
            .ok_or_else(|| {
                SpFault::invalid(format!(
                    "Key column {} is required",
                    self.config.customer_id_field
                ))
            })?;
        let update_if_found = update || op.flag("UPDATE_IF_FOUND");
        let recipient_id = if self.is_contact(&key) {
            if !update_if_found {
                return Err(SpFault {
                    errorid: 122,
                    class: "SP.Recipients",
                    message: "Recipient is already a member of the list".into(),
                });
            }
            let recipient_id = self.recipient_id(&key);
            self.recipients
                .entry(key.clone())
                .or_insert_with(|| SimRecipient {
                    recipient_id,
                    fields: BTreeMap::new(),
                })
                .fields
                .extend(fields);
            recipient_id
        } else if update {
            return Err(SpFault {
                errorid: 128,
                class: "SP.Recipients",
                message: "Recipient is not a member of the list".into(),
            });
        } else {
            let recipient_id = self.id();
            self.recipients.insert(
                key.clone(),
                SimRecipient {
                    recipient_id,
                    fields,
                },
            );
            self.created.insert(key.clone());
            recipient_id
        };
        self.revealed.insert(recipient_id, key);
        Ok(el("RecipientId", recipient_id))
    }

    /// Customer ids of the contacts with stored fields whose `field` equals `value`.
    pub fn recipients_with(&self, field: &str, value: &str) -> Vec<String> {
        self.recipients
            .iter()
            .filter(|(_, r)| r.fields.get(field).is_some_and(|v| v == value))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// CreateContactList: a static list of contacts of the database, in a folder (given by id,
    /// or by path, made on demand). A second list of the same name, visibility and folder is
    /// refused.
    pub fn create_contact_list(&mut self, op: &Node) -> OpResult {
        let database = need_id(op, "DATABASE_ID")?;
        if database != self.config.database_id {
            return Err(SpFault::invalid(format!("Database {database} not found")));
        }
        let name = need(op, "CONTACT_LIST_NAME")?.to_owned();
        let visibility = match need(op, "VISIBILITY")? {
            "0" => 0,
            "1" => 1,
            _ => return Err(SpFault::invalid("VISIBILITY must be 0 or 1")),
        };
        let path = op
            .text_of("PARENT_FOLDER_PATH")
            .map(|p| p.trim().trim_matches('/').to_owned())
            .filter(|p| !p.is_empty());
        let folder_id = match (
            op.text_of("PARENT_FOLDER_ID").filter(|f| !f.is_empty()),
            &path,
        ) {
            (Some(f), _) => f
                .parse()
                .map_err(|_| SpFault::invalid("PARENT_FOLDER_ID must be numeric"))?,
            (None, Some(p)) => match self.folders.get(p) {
                Some(id) => *id,
                None => {
                    let id = self.id();
                    self.folders.insert(p.clone(), id);
                    id
                }
            },
            (None, None) => 0,
        };
        if self
            .contact_lists
            .iter()
            .any(|l| l.name == name && l.visibility == visibility && l.folder_id == folder_id)
        {
            return Err(SpFault::invalid(format!(
                "A contact list named {name} already exists in this folder"
            )));
        }
        let id = self.id();
        self.contact_lists.push(SimContactList {
            id,
            name,
            database_id: database,
            visibility,
            folder_id,
            folder_path: path,
            members: Vec::new(),
        });
        Ok(format!(
            "{}{}",
            el("CONTACT_LIST_ID", id),
            el("PARENT_FOLDER_ID", folder_id)
        ))
    }

    /// AddContactToContactList: adds an existing contact (by CONTACT_ID, else by the key
    /// COLUMN) to a contact list, once; never creates a contact.
    pub fn add_contact_to_contact_list(&mut self, op: &Node) -> OpResult {
        let list_id = need_id(op, "CONTACT_LIST_ID")?;
        if !self.contact_lists.iter().any(|l| l.id == list_id) {
            return Err(SpFault::invalid(format!(
                "Contact list {list_id} not found"
            )));
        }
        let customer = match op.text_of("CONTACT_ID").filter(|c| !c.is_empty()) {
            // With a CONTACT_ID, COLUMN elements are ignored.
            Some(c) => {
                let id: i64 = c
                    .parse()
                    .map_err(|_| SpFault::invalid("CONTACT_ID must be numeric"))?;
                self.revealed
                    .get(&id)
                    .cloned()
                    .ok_or_else(SpFault::contact_not_found)?
            }
            None => {
                let key = &self.config.customer_id_field;
                op.children_named("COLUMN")
                    .find(|c| {
                        c.text_of("NAME")
                            .is_some_and(|n| n.eq_ignore_ascii_case(key))
                    })
                    .and_then(|c| c.text_of("VALUE"))
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| SpFault::invalid(format!("Key column {key} is required")))?
            }
        };
        if !self.is_contact(&customer) {
            return Err(SpFault::contact_not_found());
        }
        if let Some(list) = self.contact_lists.iter_mut().find(|l| l.id == list_id)
            && let Err(at) = list.members.binary_search(&customer)
        {
            list.members.insert(at, customer);
        }
        Ok(String::new())
    }

    pub fn table_rows(&self, table_id: i64) -> Vec<BTreeMap<String, String>> {
        self.tables
            .iter()
            .find(|t| t.table.id == table_id)
            .map(TableState::rows)
            .unwrap_or_default()
    }

    fn criterion(&self, criteria: &Node) -> Result<QueryCriterion, SpFault> {
        let expr = criteria
            .child("EXPRESSION")
            .ok_or_else(|| SpFault::invalid("CRITERIA/EXPRESSION is required"))?;
        let equals = |e: &Node| -> Result<(String, String), SpFault> {
            let operator = need(e, "OPERATOR")?;
            if !operator.eq_ignore_ascii_case("is equal to") {
                return Err(SpFault::invalid(format!("Unsupported OPERATOR {operator}")));
            }
            Ok((
                need(e, "COLUMN")?.to_owned(),
                e.text_of("VALUE").unwrap_or_default().to_owned(),
            ))
        };
        match expr.attr("criteria_type").unwrap_or("profile") {
            "profile" => {
                let (column, value) = equals(expr)?;
                Ok(QueryCriterion::Profile { column, value })
            }
            "rt_profile" | "relational_table" => {
                let table_id = need_id(expr, "ID")?;
                let table = self
                    .tables
                    .iter()
                    .find(|t| t.table.id == table_id)
                    .ok_or_else(|| SpFault::invalid(format!("Table {table_id} not found")))?;
                let inner = expr
                    .child("RT_EXPRESSIONS")
                    .and_then(|r| r.child("EXPRESSION"))
                    .ok_or_else(|| SpFault::invalid("RT_EXPRESSIONS/EXPRESSION is required"))?;
                let (column, value) = equals(inner)?;
                if !table.table.columns.iter().any(|c| c.name == column) {
                    return Err(SpFault::invalid(format!("Unknown column {column}")));
                }
                Ok(QueryCriterion::Relational {
                    table_id,
                    column,
                    value,
                })
            }
            other => Err(SpFault::invalid(format!(
                "Unsupported criteria_type {other}"
            ))),
        }
    }

    pub fn create_query(&mut self, op: &Node) -> OpResult {
        let name = need(op, "QUERY_NAME")?.to_owned();
        let parent_list_id = need_id(op, "PARENT_LIST_ID")?;
        if parent_list_id != self.config.database_id {
            return Err(SpFault::invalid(format!("List {parent_list_id} not found")));
        }
        let visibility = need_id(op, "VISIBILITY")?;
        let folder_id = match op.text_of("PARENT_FOLDER_ID") {
            Some(f) => f
                .parse()
                .map_err(|_| SpFault::invalid("PARENT_FOLDER_ID must be numeric"))?,
            None => self.config.query_folder_id,
        };
        let criteria = op
            .child("CRITERIA")
            .ok_or_else(|| SpFault::invalid("CRITERIA is required"))?;
        let criterion = self.criterion(criteria)?;
        let id = self.id();
        self.queries.push(SimQuery {
            id,
            name,
            parent_list_id,
            folder_id,
            visibility,
            criterion,
            criteria_xml: criteria.to_xml(),
            calculated_size: None,
        });
        Ok(el("ListId", id))
    }

    /// Customer ids (sorted) a list id selects now: the database (its contacts with stored
    /// fields: the ones it had before are not enumerable), a contact list (its members) or a
    /// query (evaluated now). `None` for an unknown id.
    pub fn members_of(&self, list_id: i64) -> Option<Vec<String>> {
        if list_id == self.config.database_id {
            return Some(self.recipients.keys().cloned().collect());
        }
        if let Some(list) = self.contact_lists.iter().find(|l| l.id == list_id) {
            return Some(list.members.clone());
        }
        let query = self.queries.iter().find(|q| q.id == list_id)?;
        let mut ids: Vec<String> = match &query.criterion {
            QueryCriterion::Profile { column, value } => {
                let mut ids: Vec<String> = self.recipients_with(column, value);
                // The key field of a contact the database had before.
                if *column == self.config.customer_id_field
                    && !self.recipients.contains_key(value)
                    && self.is_contact(value)
                {
                    ids.push(value.clone());
                }
                ids
            }
            QueryCriterion::Relational {
                table_id,
                column,
                value,
            } => {
                let customer = &self.config.customer_id_field;
                self.tables
                    .iter()
                    .filter(|t| t.table.id == *table_id)
                    .flat_map(|t| t.select(column, value, customer))
                    // A row whose customer id matches no contact never joins.
                    .filter(|id| self.is_contact(id))
                    .map(str::to_owned)
                    .collect()
            }
        };
        ids.sort();
        ids.dedup();
        Some(ids)
    }

    /// GetLists: databases (type 0), queries (1), both (2) or relational tables (15), by
    /// visibility and optionally folder. Databases and tables are shared (VISIBILITY 1).
    pub fn get_lists(&self, op: &Node) -> OpResult {
        let visibility = need_id(op, "VISIBILITY")?;
        let list_type = need_id(op, "LIST_TYPE")?;
        let folder = match op.text_of("FOLDER_ID").filter(|f| !f.is_empty()) {
            Some(f) => Some(
                f.parse::<i64>()
                    .map_err(|_| SpFault::invalid("FOLDER_ID must be numeric"))?,
            ),
            None => None,
        };
        // (id, name, type, size, visibility, folder)
        let mut rows: Vec<(i64, String, i64, usize, i64, i64)> = Vec::new();
        if matches!(list_type, 0 | 2) {
            rows.push((
                self.config.database_id,
                "Optimove Database".into(),
                0,
                self.recipients.len(),
                1,
                0,
            ));
        }
        if matches!(list_type, 1 | 2) {
            for q in &self.queries {
                let size = q.calculated_size.unwrap_or(0);
                rows.push((q.id, q.name.clone(), 1, size, q.visibility, q.folder_id));
            }
        }
        if matches!(list_type, 2 | 18) {
            for l in &self.contact_lists {
                rows.push((
                    l.id,
                    l.name.clone(),
                    18,
                    l.members.len(),
                    l.visibility,
                    l.folder_id,
                ));
            }
        }
        if list_type == 15 {
            for t in &self.tables {
                rows.push((t.table.id, t.table.name.clone(), 15, t.len(), 1, 0));
            }
        }
        let mut out = String::new();
        for (id, name, kind, size, vis, parent) in rows {
            if vis != visibility || folder.is_some_and(|f| f != parent) {
                continue;
            }
            out.push_str(&format!(
                "<LIST>{}{}{}{}{}{}{}{}<PARENT_NAME/>{}{}{}</LIST>",
                el("ID", id),
                el("NAME", &name),
                el("TYPE", kind),
                el("SIZE", size),
                el("NUM_OPT_OUTS", 0),
                el("NUM_UNDELIVERABLE", 0),
                el("LAST_MODIFIED", "03/02/26 08:00 AM"),
                el("VISIBILITY", vis),
                el(
                    "USER_ID",
                    "2f31c0-18f0a1b2c3d-5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
                ),
                el("PARENT_FOLDER_ID", parent),
                el("IS_FOLDER", "false"),
            ));
        }
        Ok(out)
    }

    /// CalculateQuery: a data job that counts the query's contacts as they are now; the count
    /// becomes the query's SIZE when the job completes.
    pub fn calculate_query(&mut self, op: &Node, now: Timestamp) -> OpResult {
        let id = need_id(op, "QUERY_ID")?;
        let size = self
            .queries
            .iter()
            .any(|q| q.id == id)
            .then(|| self.members_of(id))
            .flatten()
            .ok_or_else(|| SpFault::invalid(format!("Query {id} not found")))?
            .len();
        let job = self.id();
        self.jobs.insert(
            job,
            Job {
                query_id: id,
                size,
                started: now,
                polls: 0,
                done: false,
            },
        );
        Ok(el("JOB_ID", job))
    }

    /// GetJobStatus: WAITING, RUNNING, then COMPLETE (after [`JOB_POLLS`] polls or
    /// [`JOB_DURATION`] of clock time).
    pub fn job_status(&mut self, op: &Node, now: Timestamp) -> OpResult {
        let id = need_id(op, "JOB_ID")?;
        if self.imports.contains_key(&id) {
            return self.import_status(id);
        }
        let job = self
            .jobs
            .get_mut(&id)
            .ok_or_else(|| SpFault::invalid(format!("Job {id} not found")))?;
        job.polls += 1;
        let status = job.status(now);
        let query_id = job.query_id;
        if status == "COMPLETE" {
            self.complete_job(id);
        }
        Ok(format!(
            "{}{}{}<PARAMETERS><PARAMETER>{}{}</PARAMETER></PARAMETERS>",
            el("JOB_ID", id),
            el("JOB_STATUS", status),
            el("JOB_DESCRIPTION", "Calculate query"),
            el("NAME", "QUERY_ID"),
            el("VALUE", query_id)
        ))
    }

    /// GetListMetaData of the database, a query (SIZE as of its last completed calculation)
    /// or a contact list.
    pub fn list_meta_data(&self, op: &Node) -> OpResult {
        let id = need_id(op, "LIST_ID")?;
        let (name, kind, size, visibility) = if id == self.config.database_id {
            ("Optimove Database".to_owned(), 0, self.recipients.len(), 1)
        } else if let Some(q) = self.queries.iter().find(|q| q.id == id) {
            (
                q.name.clone(),
                1,
                q.calculated_size.unwrap_or(0),
                q.visibility,
            )
        } else if let Some(l) = self.contact_lists.iter().find(|l| l.id == id) {
            (l.name.clone(), 18, l.members.len(), l.visibility)
        } else {
            return Err(SpFault::invalid(format!("List {id} not found")));
        };
        let when = "03/02/26 08:00 AM";
        let column = |name: &str| format!("<COLUMN>{}</COLUMN>", el("NAME", name));
        Ok(format!(
            "{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}<COLUMNS>{}{}{}<COLUMN>{}<DEFAULT_VALUE/>{}</COLUMN></COLUMNS>",
            el("ID", id),
            el("NAME", &name),
            el("TYPE", kind),
            el("SIZE", size),
            el("NUM_OPT_OUTS", 0),
            el("NUM_UNDELIVERABLE", 0),
            el("LAST_MODIFIED", when),
            el("LAST_CONFIGURED", when),
            el("CREATED", when),
            el("VISIBILITY", visibility),
            el(
                "USER_ID",
                "2f31c0-18f0a1b2c3d-5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
            ),
            el("ORGANIZATION_ID", &self.config.organization_id),
            el("OPT_IN_FORM_DEFINED", "false"),
            el("OPT_OUT_FORM_DEFINED", "false"),
            el("PROFILE_FORM_DEFINED", "false"),
            el("OPT_IN_AUTOREPLY_DEFINED", "false"),
            el("PROFILE_AUTOREPLY_DEFINED", "false"),
            column("RECIPIENT_ID"),
            column("EMAIL"),
            column("LIST_ID"),
            el("NAME", &self.config.customer_id_field),
            el("TYPE", 0),
        ))
    }

    pub fn get_query(&self, op: &Node) -> OpResult {
        let id = op
            .text_of("LIST_ID")
            .or_else(|| op.text_of("QUERY_ID"))
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| SpFault::invalid("LIST_ID is required"))?;
        let q = self
            .queries
            .iter()
            .find(|q| q.id == id)
            .ok_or_else(|| SpFault::invalid(format!("Query {id} not found")))?;
        Ok(format!(
            "{}{}{}{}",
            el("PARENT_LIST_ID", q.parent_list_id),
            el("QUERY_NAME", &q.name),
            el("VISIBILITY", q.visibility),
            el("QUERY_CRITERIA", &q.criteria_xml)
        ))
    }

    pub fn create_table(&mut self, op: &Node) -> OpResult {
        let name = need(op, "TABLE_NAME")?.to_owned();
        if self.tables.iter().any(|t| t.table.name == name) {
            return Err(SpFault::invalid(format!("Table {name} already exists")));
        }
        let mut columns = Vec::new();
        for c in op
            .child("COLUMNS")
            .into_iter()
            .flat_map(|c| c.children_named("COLUMN"))
        {
            let truthy = |n: &str| c.text_of(n).is_some_and(|v| v.eq_ignore_ascii_case("true"));
            columns.push(super::TableColumn {
                name: need(c, "NAME")?.to_owned(),
                kind: c.text_of("TYPE").unwrap_or("TEXT").to_ascii_uppercase(),
                key: truthy("KEY_COLUMN"),
                required: truthy("IS_REQUIRED") || truthy("KEY_COLUMN"),
            });
        }
        if columns.is_empty() {
            return Err(SpFault::invalid("COLUMNS/COLUMN is required"));
        }
        let id = self.id();
        self.tables
            .push(TableState::new(SimTable { id, name, columns }));
        Ok(el("TABLE_ID", id))
    }

    pub fn insert_update_table(&mut self, op: &Node) -> OpResult {
        let id = need_id(op, "TABLE_ID")?;
        let table = self
            .tables
            .iter_mut()
            .find(|t| t.table.id == id)
            .ok_or_else(|| SpFault::invalid(format!("Table {id} not found")))?;
        let rows = op
            .child("ROWS")
            .ok_or_else(|| SpFault::invalid("ROWS is required"))?;
        let mut failures = String::new();
        for row in rows.children_named("ROW") {
            let mut values = BTreeMap::new();
            for c in row.children_named("COLUMN") {
                if let Some(name) = c.attr("name") {
                    values.insert(name.to_owned(), c.text.clone());
                }
            }
            match validate_row(&table.table, &values) {
                Ok(()) => table.upsert(values),
                Err(description) => {
                    failures.push_str(&format!(
                        r#"<FAILURE failure_type="permanent" description="{}">"#,
                        esc(&description)
                    ));
                    for key in table.table.columns.iter().filter(|c| c.key) {
                        if let Some(v) = values.get(&key.name) {
                            failures.push_str(&format!(
                                r#"<COLUMN name="{}">{}</COLUMN>"#,
                                esc(&key.name),
                                cdata(v)
                            ));
                        }
                    }
                    failures.push_str("</FAILURE>");
                }
            }
        }
        if failures.is_empty() {
            Ok(String::new())
        } else {
            Ok(format!("<FAILURES>{failures}</FAILURES>"))
        }
    }

    pub fn schedule(&mut self, op: &Node, now: Timestamp) -> OpResult {
        let template_id = need_id(op, "TEMPLATE_ID")?;
        let template = self
            .config
            .templates
            .iter()
            .find(|t| t.id == template_id)
            .cloned()
            .ok_or_else(|| SpFault::invalid(format!("Template {template_id} not found")))?;
        let list_id = need_id(op, "LIST_ID")?;
        let audience = self
            .members_of(list_id)
            .ok_or_else(|| SpFault::invalid(format!("List {list_id} not found")))?
            .len();
        let name = need(op, "MAILING_NAME")?.to_owned();
        let visibility = need(op, "VISIBILITY")?;
        let zone = match op.text_of("TIMEZONE") {
            Some(tz) if !tz.is_empty() => {
                TimeZone::get(tz).map_err(|_| SpFault::invalid(format!("Unknown TIMEZONE {tz}")))?
            }
            _ => self.zone.clone(),
        };
        let scheduled_at = match op.text_of("SCHEDULED") {
            Some(s) => parse_scheduled(s, &zone)?,
            None => now,
        };
        let send_html = op.flag("SEND_HTML");
        let send_text = op.flag("SEND_TEXT");
        if !send_html && !send_text && !op.flag("SEND_AOL") {
            return Err(SpFault::invalid(
                "One of SEND_HTML, SEND_TEXT or SEND_AOL is required",
            ));
        }
        let mailing_id = self.id();
        let report_id = self.id();
        self.mailings.push(SimMailing {
            mailing_id,
            report_id,
            name,
            template_id,
            list_id,
            scheduled_at,
            folder_path: op.text_of("PARENT_FOLDER_PATH").map(str::to_owned),
            subject: op
                .text_of("SUBJECT")
                .map_or(template.subject, str::to_owned),
            send_html,
            send_text,
            shared: visibility == "1",
            audience,
            recipients: None,
        });
        // A mailing scheduled for now (or the past) goes to its list as it is now.
        self.tick(now);
        Ok(el("MAILING_ID", mailing_id))
    }

    fn list_name(&self, list_id: i64) -> String {
        let query = self.queries.iter().find(|q| q.id == list_id);
        let list = self.contact_lists.iter().find(|l| l.id == list_id);
        query
            .map(|q| q.name.clone())
            .or_else(|| list.map(|l| l.name.clone()))
            .unwrap_or_else(|| "Optimove Database".to_owned())
    }

    pub fn sent_mailings(&self, op: &Node, now: Timestamp) -> OpResult {
        let range = |name: &str| -> Result<Option<Timestamp>, SpFault> {
            op.text_of(name)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    DateTime::strptime("%m/%d/%Y %H:%M:%S", t)
                        .ok()
                        .and_then(|d| d.to_zoned_datetime(self.zone.clone()).ok())
                        .map(|z| z.timestamp())
                        .ok_or_else(|| {
                            SpFault::invalid(format!("{name} must be MM/dd/yyyy HH:mm:ss"))
                        })
                })
                .transpose()
        };
        let start = range("DATE_START")?;
        let end = range("DATE_END")?;
        let want_sent = op.flag("SENT") || op.flag("SENDING");
        let want_scheduled = op.flag("SCHEDULED");
        let any_status = !want_sent && !want_scheduled;
        let (want_shared, want_private) = (op.flag("SHARED"), op.flag("PRIVATE"));
        let any_visibility = !want_shared && !want_private;
        let selected: Vec<&SimMailing> = self
            .mailings
            .iter()
            .filter(|m| start.is_none_or(|s| m.scheduled_at >= s))
            .filter(|m| end.is_none_or(|e| m.scheduled_at <= e))
            .filter(|m| {
                let sent = m.scheduled_at <= now;
                any_status || (sent && want_sent) || (!sent && want_scheduled)
            })
            .filter(|m| any_visibility || (m.shared && want_shared) || (!m.shared && want_private))
            .filter(|m| {
                !op.flag("EXCLUDE_ZERO_SENT")
                    || metrics_at(m.mailing_id, m.size(), m.scheduled_at, now).sent > 0
            })
            .collect();
        if op.flag("MAILING_COUNT_ONLY") {
            return Ok(el("SentMailingsCount", selected.len()));
        }
        let mut out = String::new();
        for m in selected {
            let sent = m.scheduled_at <= now;
            let sent_ts = if sent {
                el("SentTS", report_ts(m.scheduled_at, &self.zone))
            } else {
                "<SentTS/>".to_owned()
            };
            let num_sent = if sent {
                metrics_at(m.mailing_id, m.size(), m.scheduled_at, now).sent
            } else {
                0
            };
            out.push_str(&format!(
                "<Mailing>{}{}{}<MailingName>{}</MailingName><ListName>{}</ListName>{}{}{}{}{}<Subject>{}</Subject>{}{}</Mailing>",
                el("MailingId", m.mailing_id),
                el("ReportId", m.report_id),
                el("ScheduledTS", report_ts(m.scheduled_at, &self.zone)),
                cdata(&m.name),
                cdata(&self.list_name(m.list_id)),
                el("ListId", m.list_id),
                el("ParentListId", self.config.database_id),
                el("UserName", "API User"),
                sent_ts,
                el("NumSent", num_sent),
                cdata(&m.subject),
                el("Visibility", if m.shared { "Shared" } else { "Private" }),
                el("ParentTemplateId", m.template_id),
            ));
        }
        Ok(out)
    }

    pub fn aggregate(&self, op: &Node, now: Timestamp) -> OpResult {
        let mailing_id = need_id(op, "MAILING_ID")?;
        let m = self
            .mailings
            .iter()
            .find(|m| m.mailing_id == mailing_id)
            .ok_or_else(|| SpFault::invalid(format!("Mailing {mailing_id} not found")))?;
        if let Some(report) = op.text_of("REPORT_ID").filter(|r| !r.is_empty())
            && report.parse::<i64>().ok() != Some(m.report_id)
        {
            return Err(SpFault::invalid(format!("Report {report} not found")));
        }
        let x = metrics_at(m.mailing_id, m.size(), m.scheduled_at, now);
        let sent_at = if m.scheduled_at <= now {
            el("SentDateTime", report_ts(m.scheduled_at, &self.zone))
        } else {
            "<SentDateTime/>".to_owned()
        };
        let counters: [(&str, u64); 24] = [
            ("NumSent", x.sent),
            ("NumSeeds", 0),
            ("NumSuppressed", x.suppressed),
            ("NumInboxMonitored", 0),
            ("NumBounceHard", x.bounce_hard),
            ("NumBounceSoft", x.bounce_soft),
            ("NumUniqueOpen", x.unique_open),
            ("NumGrossOpen", x.gross_open),
            ("NumUniqueClick", x.unique_click),
            ("NumGrossClick", x.gross_click),
            ("NumUniqueAttach", 0),
            ("NumGrossAttach", 0),
            ("NumUniqueClickstreams", 0),
            ("NumGrossClickstreams", 0),
            ("NumUniqueMedia", 0),
            ("NumGrossMedia", 0),
            ("NumGrossAbuse", x.abuse),
            ("NumGrossChangeAddress", 0),
            ("NumGrossMailBlock", 0),
            ("NumGrossMailRestriction", 0),
            ("NumGrossOther", 0),
            ("NumConversions", 0),
            ("NumConversionAmount", 0),
            ("NumUnsubscribes", x.unsubscribes),
        ];
        let mut out = format!(
            "<Mailing>{}{}<MailingName>{}</MailingName>{sent_at}",
            el("MailingId", m.mailing_id),
            el("ReportId", m.report_id),
            cdata(&m.name)
        );
        for (name, value) in counters {
            if name == "NumUnsubscribes" {
                for fwd in FWD_COUNTERS {
                    out.push_str(&el(fwd, 0));
                }
            }
            out.push_str(&el(name, value));
        }
        out.push_str("</Mailing>");
        Ok(out)
    }
}

/// Forward counters the fixture carries; always zero here.
const FWD_COUNTERS: [&str; 25] = [
    "NumBounceHardFwd",
    "NumBounceSoftFwd",
    "NumConversionAmountFwd",
    "NumAttachOpenFwd",
    "NumClickFwd",
    "NumUniqueForwardFwd",
    "NumGrossForwardFwd",
    "NumUniqueConversionsFwd",
    "NumGrossConversionsFwd",
    "NumUniqueClickstreamFwd",
    "NumGrossClickstreamFwd",
    "NumUniqueClickFwd",
    "NumGrossClickFwd",
    "NumUniqueAttachOpenFwd",
    "NumGrossAttachOpenFwd",
    "NumUniqueMediaFwd",
    "NumGrossMediaFwd",
    "NumUniqueOpenFwd",
    "NumGrossOpenFwd",
    "NumAbuseFwd",
    "NumChangeAddressFwd",
    "NumMailRestrictionFwd",
    "NumMailBlockFwd",
    "NumOtherFwd",
    "NumSuppressedFwd",
];

/// `MM/dd/yyyy hh:mm:ss AM|PM` in `zone`.
fn parse_scheduled(s: &str, zone: &TimeZone) -> Result<Timestamp, SpFault> {
    DateTime::strptime("%m/%d/%Y %I:%M:%S %p", s)
        .ok()
        .and_then(|d| d.to_zoned_datetime(zone.clone()).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| SpFault::invalid("SCHEDULED must be MM/dd/yyyy hh:mm:ss AM|PM"))
}

/// Checks a relational row against the table's columns; the error is the FAILURE description.
fn validate_row(table: &SimTable, values: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(unknown) = values
        .keys()
        .find(|k| !table.columns.iter().any(|c| &c.name == *k))
    {
        return Err(format!("Unknown column: {unknown}"));
    }
    for column in &table.columns {
        let value = values.get(&column.name).map(String::as_str).unwrap_or("");
        if value.is_empty() {
            if column.required {
                return Err(format!("Missing required column: {}", column.name));
            }
            continue;
        }
        let ok = match column.kind.as_str() {
            "NUMERIC" => value.parse::<f64>().is_ok_and(f64::is_finite),
            "DATE" => jiff::civil::Date::strptime("%m/%d/%Y", value).is_ok(),
            _ => true,
        };
        if !ok {
            let what = if column.kind == "NUMERIC" {
                "Number"
            } else {
                "Date"
            };
            return Err(format!("Invalid {what} in column: {}", column.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adapter_counts_this_simulator_s_missing_contacts_by_default() {
        let ids = crate::SilverpopConfig::new(espbridge_core::AccountId::default_name())
            .contact_not_found_errorids;
        assert!(ids.contains(&u32::try_from(CONTACT_NOT_FOUND).unwrap()));
    }

    #[test]
    fn jobs_wait_then_run_then_complete_by_polls_or_by_time() {
        let t0: Timestamp = "2026-03-02T08:00:00Z".parse().unwrap();
        let mut job = Job {
            query_id: 1,
            size: 3,
            started: t0,
            polls: 0,
            done: false,
        };
        let mut seen = Vec::new();
        for _ in 0..3 {
            job.polls += 1;
            seen.push(job.status(t0));
        }
        assert_eq!(seen, ["WAITING", "RUNNING", "COMPLETE"]);
        job.polls = 0;
        assert_eq!(job.status(t0 + SignedDuration::from_secs(9)), "WAITING");
        assert_eq!(job.status(t0 + JOB_DURATION), "COMPLETE");
    }

    #[test]
    fn scheduled_dates_use_the_12_hour_clock_in_the_zone() {
        let utc = TimeZone::UTC;
        let t = parse_scheduled("06/15/2024 09:30:00 PM", &utc).unwrap();
        assert_eq!(t.to_string(), "2024-06-15T21:30:00Z");
        let ny = TimeZone::get("America/New_York").unwrap();
        let t = parse_scheduled("06/15/2024 09:30:00 AM", &ny).unwrap();
        assert_eq!(t.to_string(), "2024-06-15T13:30:00Z");
        assert!(parse_scheduled("2024-06-15 09:30:00", &utc).is_err());
        assert!(parse_scheduled("06/15/2024 21:30:00", &utc).is_err());
    }

    #[test]
    fn table_rows_upsert_by_key_and_are_selected_by_column() {
        let mut t = TableState::new(super::super::SilverpopSimConfig::default().relational_table);
        let row = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        t.upsert(row(&[
            ("ActionID", "1"),
            ("CustomerID", "C-1"),
            ("Channel", "a"),
        ]));
        t.upsert(row(&[("ActionID", "1"), ("CustomerID", "C-2")]));
        t.upsert(row(&[("ActionID", "2"), ("CustomerID", "C-1")]));
        // Same key: updated in place, the other values kept.
        t.upsert(row(&[
            ("ActionID", "1"),
            ("CustomerID", "C-1"),
            ("SendDate", "01/02/2026"),
        ]));
        assert_eq!(t.len(), 3);
        assert_eq!(
            t.rows()[0],
            row(&[
                ("ActionID", "1"),
                ("CustomerID", "C-1"),
                ("Channel", "a"),
                ("SendDate", "01/02/2026")
            ])
        );
        assert_eq!(
            t.rows()[1],
            row(&[("ActionID", "1"), ("CustomerID", "C-2")])
        );
        let ones: Vec<&str> = t.select("ActionID", "1", "CustomerID").collect();
        assert_eq!(ones, ["C-1", "C-2"]);
        assert!(t.contains_key_of(&row(&[("ActionID", "2"), ("CustomerID", "C-1")])));
        assert!(!t.contains_key_of(&row(&[("ActionID", "2"), ("CustomerID", "C-2")])));
        assert_eq!(t.select("Nope", "1", "CustomerID").count(), 0);
    }

    #[test]
    fn rows_are_validated_against_column_types() {
        let table = super::super::SilverpopSimConfig::default().relational_table;
        let row = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        assert!(validate_row(&table, &row(&[("ActionID", "1"), ("CustomerID", "C")])).is_ok());
        assert_eq!(
            validate_row(&table, &row(&[("ActionID", "x"), ("CustomerID", "C")])),
            Err("Invalid Number in column: ActionID".into())
        );
        assert!(validate_row(&table, &row(&[("ActionID", "1")])).is_err());
        assert!(
            validate_row(
                &table,
                &row(&[
                    ("ActionID", "1"),
                    ("CustomerID", "C"),
                    ("SendDate", "2024-01-01")
                ])
            )
            .is_err()
        );
        assert!(
            validate_row(
                &table,
                &row(&[("ActionID", "1"), ("CustomerID", "C"), ("Nope", "1")])
            )
            .is_err()
        );
    }
}
