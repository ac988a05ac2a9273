//! The simulated account: sessions, messages, the member table, uploads, segments, campaigns.
//! Every operation answers the XML body of a success or a [`Failure`].

use super::metrics::Snapshot;
use super::upload::{Description, UploadMode, UploadRequest, split_line};
use super::xml::{self, Node};
use super::{SimCampaign, SimCriterion, SimMessage, SimSegment, SimUpload, SmartFocusSimConfig};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, HashMap};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// An error answer: a `failed` envelope on `http` (500 unless a fault says otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub http: u16,
    pub description: String,
    pub fields: String,
    pub status: String,
}

impl Failure {
    pub fn new(description: impl Into<String>, fields: impl Into<String>, status: &str) -> Self {
        Self {
            http: 500,
            description: description.into(),
            fields: fields.into(),
            status: status.into(),
        }
    }

    pub fn params(description: impl Into<String>, fields: &str) -> Self {
        Self::new(description, fields, "INVALID_PARAMETERS")
    }

    pub fn not_found(what: &str, fields: &str) -> Self {
        Self::new(
            format!("No {what} found for the given id"),
            fields,
            "NOT_FOUND",
        )
    }

    pub fn session_expired() -> Self {
        Self::new("Your session has expired", "token", "CHECK_SESSION_FAILED")
    }
}

pub(crate) type Answer = Result<String, Failure>;

/// The two services the simulator serves; a token belongs to one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Ccmd,
    BatchMember,
}

struct Session {
    service: Service,
    opened_at: Timestamp,
    calls: u32,
    ended: bool,
}

const UPLOAD_STATES: [&str; 4] = ["STORAGE", "VALIDATED", "QUEUED", "IMPORTING"];
const FINAL_STATES: [&str; 4] = ["DONE", "DONE WITH ERRORS", "ERROR", "FAILURE"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Done,
    DoneWithErrors(String),
    Error(String),
    Failure(String),
}

/// One valid file line: `(field, value, replace on merge)`.
type Row = Vec<(String, String, bool)>;

struct Upload {
    id: u64,
    mode: UploadMode,
    file_name: String,
    created_at: Timestamp,
    polls: u32,
    lines: usize,
    outcome: Outcome,
    rows: Vec<Row>,
    applied: bool,
}

struct Segment {
    id: u64,
    name: String,
    description: String,
    sample_type: String,
    created_at: Timestamp,
    modified_at: Timestamp,
    criteria: Vec<SimCriterion>,
}

struct Campaign {
    id: u64,
    name: String,
    description: String,
    send_date_raw: String,
    send_at: Timestamp,
    message_id: u64,
    segment_id: u64,
    notification: bool,
    post_click_tracking: bool,
    dedup: bool,
    posted: bool,
    selected: u64,
}

const STRING_OPERATORS: [&str; 7] = [
    "EQUALS",
    "CONTAINS",
    "DOES_NOT_CONTAINS",
    "BEGINS_WITH",
    "ENDS_WITH",
    "IS_EMPTY",
    "IS_NOT_EMPTY",
];

pub(crate) struct State {
    config: SmartFocusSimConfig,
    zone: TimeZone,
    sessions: HashMap<String, Session>,
    sessions_opened: usize,
    messages: BTreeMap<u64, SimMessage>,
    next_message_id: u64,
    uploads: BTreeMap<u64, Upload>,
    next_upload_id: u64,
    fail_next_import: bool,
    /// Customer id → field → value.
    members: BTreeMap<String, BTreeMap<String, String>>,
    segments: BTreeMap<u64, Segment>,
    next_segment_id: u64,
    campaigns: BTreeMap<u64, Campaign>,
    next_campaign_id: u64,
    posts: usize,
}

fn bool_text(b: bool) -> String {
    b.to_string()
}

impl State {
    pub fn new(config: &SmartFocusSimConfig, zone: TimeZone, now: Timestamp) -> Self {
        let mut messages = BTreeMap::new();
        let count = config.messages.len();
        let mut next_message_id = 1_105_016_560;
        for (i, seed) in config.messages.iter().enumerate() {
            let age_days = i64::try_from(count - i).unwrap_or(0);
            let created_at = now
                .checked_sub(SignedDuration::from_hours(24 * age_days))
                .unwrap_or(now);
            messages.insert(
                next_message_id,
                SimMessage {
                    id: next_message_id,
                    name: seed.name.clone(),
                    description: format!("{} (seed)", seed.name),
                    subject: seed.subject.clone(),
                    body: format!("[EMV HTMLPART]{}[EMV TEXTPART]{}", seed.html, seed.text),
                    created_at,
                    cloned_from: None,
                },
            );
            next_message_id += 13;
        }
        Self {
            config: config.clone(),
            zone,
            sessions: HashMap::new(),
            sessions_opened: 0,
            messages,
            next_message_id,
            uploads: BTreeMap::new(),
            next_upload_id: 197_301,
            fail_next_import: false,
            members: BTreeMap::new(),
            segments: BTreeMap::new(),
            next_segment_id: 1_122_301,
            campaigns: BTreeMap::new(),
            next_campaign_id: 2_201,
            posts: 0,
        }
    }

    fn date(&self, t: Timestamp) -> String {
        t.to_zoned_datetime(self.zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    // ----- sessions -----

    pub fn open(
        &mut self,
        service: Service,
        login: Option<&str>,
        password: Option<&str>,
        key: Option<&str>,
        now: Timestamp,
    ) -> Answer {
        let login = login.filter(|l| !l.is_empty()).ok_or_else(|| {
            Failure::new(
                "You must fill in the login parameter to authentifiate on this API.",
                "login",
                "CONNECTION_FAILED",
            )
        })?;
        if login != self.config.login || password != Some(self.config.password.as_str()) {
            return Err(Failure::new(
                "No manager retrieved for those login, password.",
                "login, password",
                "CONNECTION_FAILED",
            ));
        }
        if key != Some(self.config.key.as_str()) {
            return Err(Failure::new(
                "The managerKey is no longer valid. Your API access is closed!",
                "key",
                "CONNECTION_FAILED",
            ));
        }
        self.sessions_opened += 1;
        let counter = self.sessions_opened as u64;
        let token = format!(
            "{:016x}{:016x}",
            xxh3_64_with_seed(&counter.to_le_bytes(), 0x5f),
            xxh3_64_with_seed(&now.as_nanosecond().to_le_bytes(), counter)
        );
        self.sessions.insert(
            token.clone(),
            Session {
                service,
                opened_at: now,
                calls: 0,
                ended: false,
            },
        );
        Ok(xml::result("xs:string", &token))
    }

    pub fn close(&mut self, service: Service, token: Option<&str>, now: Timestamp) -> Answer {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Failure::params("You must fill in the token parameter", "token"))?;
        let lifetime = self.config.token_lifetime;
        match self.sessions.get_mut(token) {
            Some(s) if s.service == service && !s.ended && now < plus(s.opened_at, lifetime) => {
                s.ended = true;
                Ok(xml::result("xs:string", "connection closed"))
            }
            _ => Err(Failure::new(
                "No available connection for the specified token.",
                "token",
                "CLOSE_CONNECTION_FAILED",
            )),
        }
    }

    /// Checks a token for one call, counting it against the session's quota.
    pub fn session(
        &mut self,
        service: Service,
        token: &str,
        now: Timestamp,
    ) -> Result<(), Failure> {
        let lifetime = self.config.token_lifetime;
        let quota = self.config.calls_per_session;
        let session = self
            .sessions
            .get_mut(token)
            .filter(|s| s.service == service && !s.ended)
            .ok_or_else(Failure::session_expired)?;
        if now >= plus(session.opened_at, lifetime) {
            session.ended = true;
            return Err(Failure::session_expired());
        }
        session.calls += 1;
        if quota.is_some_and(|q| session.calls > q) {
            session.ended = true;
            return Err(quota_reached());
        }
        Ok(())
    }

    pub fn expire_tokens(&mut self) {
        for session in self.sessions.values_mut() {
            session.ended = true;
        }
    }

    pub fn sessions_opened(&self) -> usize {
        self.sessions_opened
    }

    // ----- messages -----

    fn message(&self, id: &str) -> Result<&SimMessage, Failure> {
        let id = parse_id(id, "id")?;
        self.messages
            .get(&id)
            .ok_or_else(|| Failure::not_found("message", "id"))
    }

    pub fn last_messages(&self, limit: &str) -> Answer {
        let limit = parse_limit(limit)?;
        let ids: Vec<String> = self
            .messages
            .keys()
            .rev()
            .take(limit)
            .map(u64::to_string)
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn messages_by_field(&self, field: &str, value: &str, limit: &str) -> Answer {
        let limit = parse_limit(limit)?;
        let pick: fn(&SimMessage) -> &str = match field.to_ascii_lowercase().as_str() {
            "name" => |m| &m.name,
            "subject" => |m| &m.subject,
            "description" => |m| &m.description,
            _ => return Err(Failure::params(format!("Unknown field {field}"), "field")),
        };
        let ids: Vec<String> = self
            .messages
            .values()
            .rev()
            .filter(|m| pick(m) == value)
            .take(limit)
            .map(|m| m.id.to_string())
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn messages_by_period(&self, begin: &str, end: &str) -> Answer {
        let begin = parse_date(begin, &self.zone, "dateBegin")?;
        let end = parse_date(end, &self.zone, "dateEnd")?;
        let ids: Vec<String> = self
            .messages
            .values()
            .filter(|m| m.created_at >= begin && m.created_at <= end)
            .map(|m| m.id.to_string())
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn get_message(&self, id: &str) -> Answer {
        let m = self.message(id)?;
        let fields = [
            ("body", m.body.clone()),
            ("createDate", self.date(m.created_at)),
            ("description", m.description.clone()),
            ("encoding", "UTF-8".into()),
            ("from", "Shop".into()),
            ("fromEmail", "news@shop.example".into()),
            ("hotmailUnsubFlg", "false".into()),
            ("hotmailUnsubUrl", String::new()),
            ("id", m.id.to_string()),
            ("isBounceback", "false".into()),
            ("name", m.name.clone()),
            ("replyTo", "Shop".into()),
            ("replyToEmail", "reply@shop.example".into()),
            ("subject", m.subject.clone()),
            ("to", "[EMV FIELD]FIRSTNAME[EMV /FIELD]".into()),
            ("type", "email".into()),
        ];
        Ok(xml::success(&xml::object("message", &fields)))
    }

    pub fn preview(&self, id: &str, part: &str) -> Answer {
        let m = self.message(id)?;
        let (html, text) = split_body(&m.body);
        let content = match part.to_ascii_lowercase().as_str() {
            "html" => html,
            "text" => text,
            _ => return Err(Failure::params("part must be HTML or text", "part")),
        };
        Ok(xml::result("xs:string", content))
    }

    pub fn clone_message(&mut self, id: &str, new_name: &str, now: Timestamp) -> Answer {
        if new_name.trim().is_empty() {
            return Err(Failure::params("newName is required", "newName"));
        }
        let mut copy = self.message(id)?.clone();
        copy.cloned_from = Some(copy.id);
        copy.id = self.next_message_id;
        copy.name = new_name.to_owned();
        copy.created_at = now;
        self.next_message_id += 1;
        let id = copy.id;
        self.messages.insert(id, copy);
        Ok(xml::result("xs:long", &id.to_string()))
    }

    pub fn sim_messages(&self) -> Vec<SimMessage> {
        self.messages.values().cloned().collect()
    }

    // ----- uploads and members -----

    pub fn fail_next_import(&mut self) {
        self.fail_next_import = true;
    }

    fn stage(&self, upload: &Upload, now: Timestamp) -> usize {
        let by_clock = match self.config.upload_step_delay {
            Some(step) if step.is_positive() => {
                let elapsed = now.duration_since(upload.created_at);
                usize::try_from(elapsed.as_nanos() / step.as_nanos()).unwrap_or(0)
            }
            Some(_) => UPLOAD_STATES.len(),
            None => 0,
        };
        let by_polls = match self.config.upload_polls_per_step {
            0 => 0,
            per_step => (upload.polls / per_step) as usize,
        };
        by_clock.max(by_polls).min(UPLOAD_STATES.len())
    }

    fn upload_status(&self, upload: &Upload, now: Timestamp) -> (&'static str, Option<String>) {
        let stage = self.stage(upload, now);
        match (&upload.outcome, stage) {
            (_, 0) => (UPLOAD_STATES[0], None),
            (Outcome::Error(why), _) => ("ERROR", Some(why.clone())),
            (_, s) if s < UPLOAD_STATES.len() => (UPLOAD_STATES[s], None),
            (Outcome::Done, _) => ("DONE", None),
            (Outcome::DoneWithErrors(why), _) => ("DONE WITH ERRORS", Some(why.clone())),
            (Outcome::Failure(why), _) => ("FAILURE", Some(why.clone())),
        }
    }

    /// Applies uploads that reached DONE (or DONE WITH ERRORS) to the member table, in order.
    pub fn refresh(&mut self, now: Timestamp) {
        let ready: Vec<u64> = self
            .uploads
            .values()
            .filter(|u| !u.applied)
            .filter(|u| matches!(self.upload_status(u, now).0, "DONE" | "DONE WITH ERRORS"))
            .map(|u| u.id)
            .collect();
        let key_field = self.config.customer_id_field.clone();
        for id in ready {
            let Some(upload) = self.uploads.get_mut(&id) else {
                continue;
            };
            upload.applied = true;
            for row in std::mem::take(&mut upload.rows) {
                let Some(key) = row
                    .iter()
                    .find(|(f, _, _)| *f == key_field)
                    .map(|r| r.1.clone())
                else {
                    continue;
                };
                match self.members.get_mut(&key) {
                    Some(member) if upload.mode == UploadMode::Merge => {
                        for (field, value, replace) in row {
                            if replace && field != key_field {
                                member.insert(field, value);
                            }
                        }
                    }
                    Some(_) => {}
                    None => {
                        let fields = row.into_iter().map(|(f, v, _)| (f, v)).collect();
                        self.members.insert(key, fields);
                    }
                }
            }
        }
    }

    pub fn upload(&mut self, request: Result<UploadRequest, Failure>, now: Timestamp) -> Answer {
        let request = request?;
        if request.file.iter().all(u8::is_ascii_whitespace) {
            return Err(Failure::new(
                "The file is empty",
                "inputStream",
                "INVALID_FILE",
            ));
        }
        if request.file.len() > self.config.max_file_bytes {
            return Err(Failure::new(
                format!(
                    "The file is too large: at most {} bytes are accepted",
                    self.config.max_file_bytes
                ),
                "inputStream",
                "INVALID_FILE",
            ));
        }
        self.refresh(now);
        let pending = self
            .uploads
            .values()
            .filter(|u| !FINAL_STATES.contains(&self.upload_status(u, now).0))
            .count();
        if pending >= self.config.max_pending_uploads {
            return Err(Failure::new(
                "Too many uploads are still pending, please wait for them to finish",
                "",
                "MAX_NB_UPLOADS",
            ));
        }
        let (outcome, rows, lines) = self.validate(&request.description, &request.file);
        let outcome = match outcome {
            Outcome::Done | Outcome::DoneWithErrors(_) if self.fail_next_import => {
                self.fail_next_import = false;
                Outcome::Failure("The import of the file failed".into())
            }
            other => other,
        };
        let id = self.next_upload_id;
        self.next_upload_id += 1;
        self.uploads.insert(
            id,
            Upload {
                id,
                mode: request.description.mode,
                file_name: request.description.file_name,
                created_at: now,
                polls: 0,
                lines,
                outcome,
                rows,
                applied: false,
            },
        );
        Ok(xml::result("xs:long", &id.to_string()))
    }

    fn known_field(&self, field: &str) -> bool {
        field.eq_ignore_ascii_case(&self.config.customer_id_field)
            || field.eq_ignore_ascii_case(&self.config.tag_field)
            || self
                .config
                .other_member_fields
                .iter()
                .any(|f| f.eq_ignore_ascii_case(field))
    }

    /// Canonical spelling of a known field.
    fn field_name(&self, field: &str) -> String {
        std::iter::once(&self.config.customer_id_field)
            .chain(std::iter::once(&self.config.tag_field))
            .chain(self.config.other_member_fields.iter())
            .find(|f| f.eq_ignore_ascii_case(field))
            .cloned()
            .unwrap_or_else(|| field.to_owned())
    }

    fn validate(&self, d: &Description, file: &[u8]) -> (Outcome, Vec<Row>, usize) {
        let key = &self.config.customer_id_field;
        let Ok(text) = std::str::from_utf8(file) else {
            return (
                Outcome::Error("The file is not valid UTF-8".into()),
                vec![],
                0,
            );
        };
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if d.skip_first_line && !lines.is_empty() {
            lines.remove(0);
        }
        let count = lines.len();
        let error = |why: String| (Outcome::Error(why), vec![], count);
        if let Some(unknown) = d.columns.iter().find(|c| !self.known_field(&c.field)) {
            return error(format!("Unknown field {}", unknown.field));
        }
        if d.mode == UploadMode::Merge
            && !d
                .criteria
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(key))
        {
            return error(format!("Unsupported merge criteria; expected {key}"));
        }
        if !d.columns.iter().any(|c| c.field.eq_ignore_ascii_case(key)) {
            return error(format!("The key field {key} is not mapped"));
        }
        let mut rows = Vec::new();
        let mut bad = 0usize;
        for line in &lines {
            let cells = split_line(line, d.separator);
            let row: Option<Row> = d
                .columns
                .iter()
                .map(|c| {
                    let value = match (&c.default_value, c.col_num) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(n)) => cells.get(n - 1).map(|v| v.trim().to_owned()),
                        (None, None) => None,
                    }?;
                    Some((self.field_name(&c.field), value, c.to_replace))
                })
                .collect();
            match row {
                Some(row) if row.iter().any(|(f, v, _)| f == key && !v.is_empty()) => {
                    rows.push(row)
                }
                _ => bad += 1,
            }
        }
        let outcome = if bad == 0 {
            Outcome::Done
        } else {
            Outcome::DoneWithErrors(format!("{bad} line(s) rejected"))
        };
        (outcome, rows, lines.len())
    }

    pub fn upload_status_answer(&mut self, id: &str, now: Timestamp) -> Answer {
        let missing = || Failure::new("No flatUpload found!", id, "GET_FLATUPLOAD_FAILED");
        let id: u64 = id.parse().map_err(|_| missing())?;
        let upload = self.uploads.get_mut(&id).ok_or_else(missing)?;
        upload.polls = upload.polls.saturating_add(1);
        self.refresh(now);
        let upload = self.uploads.get(&id).ok_or_else(missing)?;
        let (status, details) = self.upload_status(upload, now);
        let mut inner = format!("<uploadStatus><status>{status}</status>");
        if let Some(details) = details {
            inner.push_str(&format!("<details>{}</details>", xml::esc(&details)));
        }
        inner.push_str("</uploadStatus>");
        Ok(xml::success(&inner))
    }

    pub fn last_uploads(&self, now: Timestamp) -> Answer {
        let inner: String = self
            .uploads
            .values()
            .rev()
            .take(20)
            .map(|u| {
                xml::object(
                    "lastUploads",
                    &[
                        ("id", u.id.to_string()),
                        ("source", "API_BATCH_MEMBER".into()),
                        ("status", self.upload_status(u, now).0.into()),
                    ],
                )
            })
            .collect();
        Ok(xml::success(&inner))
    }

    pub fn sim_uploads(&mut self, now: Timestamp) -> Vec<SimUpload> {
        self.refresh(now);
        self.uploads
            .values()
            .map(|u| {
                let (status, details) = self.upload_status(u, now);
                SimUpload {
                    id: u.id,
                    mode: u.mode,
                    file_name: u.file_name.clone(),
                    status: status.into(),
                    details,
                    lines: u.lines,
                    created_at: u.created_at,
                }
            })
            .collect()
    }

    pub fn members_with_tag(&mut self, tag: &str, now: Timestamp) -> Vec<String> {
        self.refresh(now);
        let field = &self.config.tag_field;
        self.members
            .iter()
            .filter(|(_, m)| m.get(field).is_some_and(|v| v == tag))
            .map(|(id, _)| id.clone())
            .collect()
    }

    // ----- segments -----

    fn segment_body(body: &str, fields: &str) -> Result<(String, String, String), Failure> {
        let root = xml::parse(body).map_err(|e| Failure::params(e.to_string(), fields))?;
        if root.name != "segmentation" {
            return Err(Failure::params(
                "a <segmentation> document is required",
                fields,
            ));
        }
        let name = root
            .text_of("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Failure::params("name is required", "name"))?;
        let sample_type = root
            .text_of("sampleType")
            .unwrap_or("ALL")
            .to_ascii_uppercase();
        if !["ALL", "PERCENT", "FIX"].contains(&sample_type.as_str()) {
            return Err(Failure::params(
                "sampleType must be ALL, PERCENT or FIX",
                "sampleType",
            ));
        }
        Ok((
            name.to_owned(),
            root.text_of("description").unwrap_or_default().to_owned(),
            sample_type,
        ))
    }

    pub fn create_segment(&mut self, body: &str, now: Timestamp) -> Answer {
        let (name, description, sample_type) = Self::segment_body(body, "segmentation")?;
        let id = self.next_segment_id;
        self.next_segment_id += 1;
        self.segments.insert(
            id,
            Segment {
                id,
                name,
                description,
                sample_type,
                created_at: now,
                modified_at: now,
                criteria: Vec::new(),
            },
        );
        Ok(xml::result("xs:long", &id.to_string()))
    }

    fn segment_mut(&mut self, id: &str) -> Result<&mut Segment, Failure> {
        let id = parse_id(id, "segmentId")?;
        self.segments
            .get_mut(&id)
            .ok_or_else(|| Failure::not_found("segment", "segmentId"))
    }

    pub fn update_segment(&mut self, id: &str, body: &str, now: Timestamp) -> Answer {
        let (name, description, sample_type) = Self::segment_body(body, "segmentation")?;
        let segment = self.segment_mut(id)?;
        segment.name = name;
        segment.description = description;
        segment.sample_type = sample_type;
        segment.modified_at = now;
        Ok(xml::result("xs:boolean", "true"))
    }

    pub fn delete_segment(&mut self, id: &str) -> Answer {
        let id = self.segment_mut(id)?.id;
        self.segments.remove(&id);
        Ok(xml::result("xs:boolean", "true"))
    }

    pub fn get_segment(&self, id: &str) -> Answer {
        let id = parse_id(id, "segmentId")?;
        let segment = self
            .segments
            .get(&id)
            .ok_or_else(|| Failure::not_found("segment", "segmentId"))?;
        let fields = [
            ("dateCreate", self.date(segment.created_at)),
            ("dateModif", self.date(segment.modified_at)),
            ("id", segment.id.to_string()),
            ("name", segment.name.clone()),
            ("sampleRate", "0.0".into()),
            ("sampleType", segment.sample_type.clone()),
        ];
        Ok(xml::success(&xml::object("segmentation", &fields)))
    }

    pub fn list_segments(&self, page: &str, per_page: &str) -> Answer {
        let page = parse_id(page, "page")?.max(1);
        let per_page = parse_limit(per_page)?;
        let skip = usize::try_from(page - 1)
            .unwrap_or(usize::MAX)
            .saturating_mul(per_page);
        let ids: Vec<String> = self
            .segments
            .keys()
            .rev()
            .skip(skip)
            .take(per_page)
            .map(u64::to_string)
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn add_string_criterion(&mut self, id: &str, body: &str, now: Timestamp) -> Answer {
        let root: Node =
            xml::parse(body).map_err(|e| Failure::params(e.to_string(), "criteria"))?;
        if root.name != "stringDemographicCriteria" {
            return Err(Failure::params(
                "a <stringDemographicCriteria> document is required",
                "criteria",
            ));
        }
        let column = root
            .text_of("columnName")
            .filter(|c| self.known_field(c))
            .ok_or_else(|| Failure::params("columnName is not a member field", "columnName"))?;
        let column = self.field_name(column);
        let operator = root
            .text_of("operator")
            .unwrap_or_default()
            .to_ascii_uppercase();
        let base = operator.trim_end_matches("_CASE_SENSITIVE");
        if !STRING_OPERATORS.contains(&base) {
            return Err(Failure::params(
                format!("Unknown operator {operator}"),
                "operator",
            ));
        }
        let values: Vec<String> = root
            .children_named("values")
            .map(|v| v.text.clone())
            .collect();
        if values.is_empty() && !base.ends_with("EMPTY") {
            return Err(Failure::params("values is required", "values"));
        }
        let segment = self.segment_mut(id)?;
        segment.criteria.push(SimCriterion {
            column,
            operator,
            values,
        });
        segment.modified_at = now;
        Ok(xml::result("xs:boolean", "true"))
    }

    fn count_of(&self, segment: &Segment) -> u64 {
        self.members
            .values()
            .filter(|m| segment.criteria.iter().all(|c| criterion_matches(c, m)))
            .count() as u64
    }

    pub fn count_segment(&mut self, id: &str, now: Timestamp) -> Answer {
        self.refresh(now);
        let id = parse_id(id, "segmentId")?;
        let segment = self
            .segments
            .get(&id)
            .ok_or_else(|| Failure::not_found("segment", "segmentId"))?;
        Ok(xml::result("xs:long", &self.count_of(segment).to_string()))
    }

    pub fn sim_segments(&self) -> Vec<SimSegment> {
        self.segments
            .values()
            .map(|s| SimSegment {
                id: s.id,
                name: s.name.clone(),
                description: s.description.clone(),
                sample_type: s.sample_type.clone(),
                criteria: s.criteria.clone(),
            })
            .collect()
    }

    // ----- campaigns -----

    /// `args`: name, desc, sendDate, messageId, mailinglistId, notifProgress,
    /// postClickTracking, emaildedupflg.
    pub fn create_campaign(&mut self, args: [Option<&str>; 8], now: Timestamp) -> Answer {
        let [
            name,
            desc,
            send_date,
            message_id,
            segment_id,
            notif,
            pct,
            dedup,
        ] = args;
        let name = name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| Failure::params("name is required", "name"))?;
        let send_date =
            send_date.ok_or_else(|| Failure::params("sendDate is required", "sendDate"))?;
        let send_at = parse_date(send_date, &self.zone, "sendDate")?;
        if send_at < plus(now, self.config.min_send_lead) {
            return Err(Failure::params("sendDate is too early", "sendDate"));
        }
        let message_id = parse_id(message_id.unwrap_or_default(), "messageId")?;
        if !self.messages.contains_key(&message_id) {
            return Err(Failure::not_found("message", "messageId"));
        }
        let segment_id = parse_id(segment_id.unwrap_or_default(), "mailinglistId")?;
        if !self.segments.contains_key(&segment_id) {
            return Err(Failure::not_found("segment", "mailinglistId"));
        }
        let flag = |v: Option<&str>, field: &str| match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(Failure::params(
                format!("{field} must be true or false"),
                field,
            )),
        };
        let campaign = Campaign {
            id: self.next_campaign_id,
            name: name.to_owned(),
            description: desc.unwrap_or_default().to_owned(),
            send_date_raw: send_date.to_owned(),
            send_at,
            message_id,
            segment_id,
            notification: flag(notif, "notifProgress")?,
            post_click_tracking: flag(pct, "postClickTracking")?,
            dedup: flag(dedup, "emaildedupflg")?,
            posted: false,
            selected: 0,
        };
        self.next_campaign_id += 1;
        let id = campaign.id;
        self.campaigns.insert(id, campaign);
        Ok(xml::result("xs:long", &id.to_string()))
    }

    fn campaign(&self, id: &str) -> Result<&Campaign, Failure> {
        let id = parse_id(id, "id")?;
        self.campaigns
            .get(&id)
            .ok_or_else(|| Failure::not_found("campaign", "id"))
    }

    pub fn post_campaign(&mut self, id: &str, now: Timestamp) -> Answer {
        self.refresh(now);
        let campaign = self.campaign(id)?;
        if campaign.posted {
            return Err(Failure::new(
                "The campaign is not editable",
                "id",
                "CAMPAIGN_NOT_EDITABLE",
            ));
        }
        let (cid, segment_id) = (campaign.id, campaign.segment_id);
        let selected = match self.segments.get(&segment_id) {
            Some(segment) => self.count_of(segment),
            None => return Err(Failure::not_found("segment", "mailinglistId")),
        };
        if let Some(campaign) = self.campaigns.get_mut(&cid) {
            campaign.posted = true;
            campaign.selected = selected;
        }
        self.posts += 1;
        Ok(xml::result("xs:boolean", "true"))
    }

    fn status_of(c: &Campaign, now: Timestamp) -> &'static str {
        if !c.posted {
            "EDITABLE"
        } else if now < c.send_at {
            "QUEUED"
        } else if now < plus(c.send_at, SignedDuration::from_hours(1)) {
            "RUNNING"
        } else {
            "COMPLETED"
        }
    }

    pub fn get_campaign(&self, id: &str, now: Timestamp) -> Answer {
        let c = self.campaign(id)?;
        let status = Self::status_of(c, now);
        let fields = [
            ("deliverySpeed", "0".into()),
            ("description", c.description.clone()),
            ("emaildedupflg", bool_text(c.dedup)),
            ("format", "OTHER".into()),
            ("id", c.id.to_string()),
            ("lifeStatus", "TRACKING".into()),
            ("mailingListId", c.segment_id.to_string()),
            ("messageId", c.message_id.to_string()),
            ("name", c.name.clone()),
            ("notification", bool_text(c.notification)),
            ("postClickTracking", bool_text(c.post_click_tracking)),
            ("sendDate", self.date(c.send_at)),
            ("status", status.into()),
            ("strategy", "OTHER".into()),
            ("target", "OTHER".into()),
            ("valid", status.into()),
            ("analytics", "false".into()),
        ];
        Ok(xml::success(&xml::object("campaign", &fields)))
    }

    pub fn campaign_status(&self, id: &str, now: Timestamp) -> Answer {
        let c = self.campaign(id)?;
        let status = Self::status_of(c, now);
        let mixed = format!("{}{}", &status[..1], status[1..].to_ascii_lowercase());
        Ok(xml::result("xs:string", &mixed))
    }

    pub fn last_campaigns(&self, limit: &str) -> Answer {
        let limit = parse_limit(limit)?;
        let ids: Vec<String> = self
            .campaigns
            .keys()
            .rev()
            .take(limit)
            .map(u64::to_string)
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn campaigns_by_field(&self, field: &str, value: &str, limit: &str) -> Answer {
        let limit = parse_limit(limit)?;
        if !field.eq_ignore_ascii_case("name") {
            return Err(Failure::params(format!("Unknown field {field}"), "field"));
        }
        let ids: Vec<String> = self
            .campaigns
            .values()
            .rev()
            .filter(|c| c.name == value)
            .take(limit)
            .map(|c| c.id.to_string())
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn snapshot(&self, id: &str, now: Timestamp) -> Answer {
        let c = self.campaign(id)?;
        let elapsed = if c.posted {
            now.duration_since(c.send_at).as_secs_f64()
        } else {
            -1.0
        };
        let s = Snapshot::at(c.id, c.selected, elapsed);
        let end = if now > c.send_at { now } else { c.send_at };
        let fields = [
            ("beginDate", self.date(c.send_at)),
            ("campaignId", c.id.to_string()),
            ("endDate", self.date(end)),
            ("nbBounce", s.bounce.to_string()),
            ("nbComplaint", s.complaint.to_string()),
            ("nbConversion", s.conversion.to_string()),
            ("nbDelivered", s.delivered.to_string()),
            ("nbFiltered", s.filtered.to_string()),
            ("nbHardBounce", s.hard_bounce.to_string()),
            ("nbSelected", s.selected.to_string()),
            ("nbSoftBounce", s.soft_bounce.to_string()),
            ("nbUniqueClick", s.unique_click.to_string()),
            ("nbUniqueOpen", s.unique_open.to_string()),
            ("nbUnsubscribe", s.unsubscribe.to_string()),
        ];
        Ok(xml::success(&xml::object("campaignSnapshot", &fields)))
    }

    pub fn post_count(&self) -> usize {
        self.posts
    }

    pub fn sim_campaigns(&self, now: Timestamp) -> Vec<SimCampaign> {
        self.campaigns
            .values()
            .map(|c| SimCampaign {
                id: c.id,
                name: c.name.clone(),
                description: c.description.clone(),
                send_date_raw: c.send_date_raw.clone(),
                send_at: c.send_at,
                message_id: c.message_id,
                segment_id: c.segment_id,
                status: Self::status_of(c, now).into(),
                selected: c.selected,
            })
            .collect()
    }
}

/// `t + d`, saturating: dates come from requests and must not overflow.
fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

pub(crate) fn quota_reached() -> Failure {
    Failure::new(
        "The maximum number of connection allowed per session has been reached",
        "token",
        "CHECK_SESSION_FAILED",
    )
}

fn criterion_matches(c: &SimCriterion, member: &BTreeMap<String, String>) -> bool {
    let value = member
        .get(&c.column)
        .map(String::as_str)
        .unwrap_or_default();
    let sensitive = c.operator.ends_with("_CASE_SENSITIVE");
    let norm = |s: &str| {
        if sensitive {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    let value = norm(value);
    match c.operator.trim_end_matches("_CASE_SENSITIVE") {
        "IS_EMPTY" => value.is_empty(),
        "IS_NOT_EMPTY" => !value.is_empty(),
        "DOES_NOT_CONTAINS" => c.values.iter().all(|v| !value.contains(&norm(v))),
        op => c.values.iter().any(|v| {
            let v = norm(v);
            match op {
                "EQUALS" => value == v,
                "CONTAINS" => value.contains(&v),
                "BEGINS_WITH" => value.starts_with(&v),
                "ENDS_WITH" => value.ends_with(&v),
                _ => false,
            }
        }),
    }
}

/// The HTML and text parts of a `[EMV HTMLPART]...[EMV TEXTPART]...` body.
fn split_body(body: &str) -> (&str, &str) {
    let (before_text, text) = body.split_once("[EMV TEXTPART]").unwrap_or((body, ""));
    let html = before_text
        .split_once("[EMV HTMLPART]")
        .map_or(before_text, |(_, h)| h);
    (html, text)
}

fn parse_id(raw: &str, field: &str) -> Result<u64, Failure> {
    raw.trim()
        .parse()
        .map_err(|_| Failure::params(format!("{field} must be a number"), field))
}

fn parse_limit(raw: &str) -> Result<usize, Failure> {
    raw.trim()
        .parse()
        .map_err(|_| Failure::params("limit must be a number", "limit"))
}

/// A date as the API takes it: ISO or `YYYY-MM-DD HH:MM:SS`, offset optional (zone otherwise).
pub(crate) fn parse_date(raw: &str, zone: &TimeZone, field: &str) -> Result<Timestamp, Failure> {
    let raw = raw.trim();
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Ok(t);
    }
    let civil = raw
        .replacen(' ', "T", 1)
        .parse::<jiff::civil::DateTime>()
        .map_err(|_| Failure::params(format!("{field} is not a valid date"), field))?;
    civil
        .to_zoned_datetime(zone.clone())
        .map(|z| z.timestamp())
        .map_err(|_| Failure::params(format!("{field} is not a valid date"), field))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    #[test]
    fn send_dates_accept_the_formats_seen_in_the_wild() {
        let expected: Timestamp = "2024-05-20T07:30:00Z".parse().unwrap();
        for raw in [
            "2024-05-20T09:30:00",
            "2024-05-20 09:30:00",
            "2024-05-20T09:30:00+02:00",
            "2024-05-20T09:30:00.000+02:00",
        ] {
            assert_eq!(
                parse_date(raw, &zone(), "sendDate").unwrap(),
                expected,
                "{raw}"
            );
        }
        assert!(parse_date("20/05/2024", &zone(), "sendDate").is_err());
    }

    #[test]
    fn date_arithmetic_saturates_instead_of_panicking() {
        let hour = SignedDuration::from_hours(1);
        assert_eq!(plus(Timestamp::MAX, hour), Timestamp::MAX);
        assert_eq!(plus(Timestamp::MIN, -hour), Timestamp::MIN);
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(plus(t, hour), "2026-01-01T01:00:00Z".parse().unwrap());
    }

    #[test]
    fn bodies_split_into_html_and_text() {
        assert_eq!(
            split_body("[EMV HTMLPART]<b>x</b>[EMV TEXTPART]x"),
            ("<b>x</b>", "x")
        );
        assert_eq!(split_body("[EMV HTMLPART]<b>x</b>"), ("<b>x</b>", ""));
    }

    #[test]
    fn criteria_compare_case_insensitively_unless_told() {
        let member: BTreeMap<String, String> = [("TAG".to_owned(), "C42".to_owned())].into();
        let c = |op: &str, v: &str| SimCriterion {
            column: "TAG".into(),
            operator: op.into(),
            values: vec![v.into()],
        };
        assert!(criterion_matches(&c("EQUALS", "c42"), &member));
        assert!(!criterion_matches(
            &c("EQUALS_CASE_SENSITIVE", "c42"),
            &member
        ));
        assert!(criterion_matches(&c("BEGINS_WITH", "c4"), &member));
        assert!(!criterion_matches(&c("DOES_NOT_CONTAINS", "4"), &member));
        assert!(criterion_matches(&c("IS_NOT_EMPTY", ""), &member));
    }
}
