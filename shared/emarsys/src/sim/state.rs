//! The simulated account: e-mails, contact lists, launches, and the operations on them.
//!
//! Every operation takes the request body as JSON and the current time, and answers the
//! envelope's `data` or an [`ApiError`] carrying Emarsys' (HTTP status, replyCode, replyText).

use super::metrics::Summary;
use super::{EmarsysSimConfig, SimContactList, SimEmail, SimLaunch};
use jiff::{Timestamp, civil, tz::TimeZone};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use xxhash_rust::xxh3::xxh3_64;

/// An Emarsys error: HTTP status, replyCode and replyText (data is `""`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub http: u16,
    pub code: i64,
    pub text: String,
}

impl ApiError {
    pub fn new(http: u16, code: i64, text: impl Into<String>) -> Self {
        Self {
            http,
            code,
            text: text.into(),
        }
    }
    fn invalid(what: &str) -> Self {
        Self::new(400, 10001, format!("Invalid data format for {what}"))
    }
}

pub(crate) type ApiResult = Result<Value, ApiError>;

const VALID_STATUSES: [i32; 5] = [1, 2, 3, 4, -3];

/// Which answer an e-mail is shown in: its field set differs between the list and the detail
/// only for an account on the older field set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    InList,
    Alone,
}

#[derive(Debug, Clone)]
struct EmailRec {
    id: u64,
    name: String,
    language: String,
    status: i32,
    api_status: i32,
    source: String,
    content_type: String,
    subject: String,
    html: String,
    text: String,
    fromemail: String,
    fromname: String,
    created: Timestamp,
    deleted: Option<Timestamp>,
    contactlist: u64,
    filter: u64,
    source_updated: bool,
    copied_from: Option<u64>,
    launches: Vec<LaunchRec>,
}

#[derive(Debug, Clone)]
struct LaunchRec {
    id: u64,
    schedule: Option<String>,
    timezone: String,
    send_at: Timestamp,
    planned: u64,
    /// The list's members when the send time came ([`State::tick`]); `None` before.
    recipients: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct ListRec {
    id: u64,
    name: String,
    description: String,
    created: Timestamp,
    members: Vec<String>,
    /// A B-tree, not a hash set: a list of a million members grows without the whole-table
    /// rehash that would hold the simulator's lock for a fifth of a second.
    member_set: BTreeSet<String>,
}

/// The whole simulated account.
pub(crate) struct State {
    field_id: String,
    field_name: String,
    max_ids: usize,
    unknown_share: f64,
    status_at_send: bool,
    legacy_fields: bool,
    zone: TimeZone,
    emails: BTreeMap<u64, EmailRec>,
    lists: BTreeMap<u64, ListRec>,
    next_email: u64,
    next_list: u64,
    next_launch: u64,
    launch_count: usize,
}

impl State {
    pub fn new(config: &EmarsysSimConfig, zone: TimeZone, now: Timestamp) -> Self {
        let mut state = State {
            field_id: config.external_id_field_id.clone(),
            field_name: config.external_id_field_name.clone(),
            max_ids: config.max_ids_per_call,
            unknown_share: config.unknown_id_share,
            status_at_send: config.status_launched_at_send,
            legacy_fields: config.legacy_email_fields,
            zone,
            emails: BTreeMap::new(),
            lists: BTreeMap::new(),
            next_email: 81_001,
            next_list: 300_000_001,
            next_launch: 7_001,
            launch_count: 0,
        };
        let count = config.emails.len() as i64;
        for (i, seed) in config.emails.iter().enumerate() {
            // Seeds look created over the past weeks, oldest first.
            let age = jiff::SignedDuration::from_hours(24 * (count - i as i64 + 1));
            let id = state.next_email_id();
            state.emails.insert(
                id,
                EmailRec {
                    id,
                    name: seed.name.clone(),
                    language: "en".into(),
                    status: i32::from(seed.status),
                    api_status: if seed.status == 3 { 2 } else { 0 },
                    source: seed.source.clone(),
                    content_type: seed.content_type.clone(),
                    subject: seed.subject.clone(),
                    text: strip_tags(&seed.html),
                    html: seed.html.clone(),
                    fromemail: seed.fromemail.clone(),
                    fromname: seed.fromname.clone(),
                    created: seed
                        .created
                        .unwrap_or_else(|| now.saturating_sub(age).unwrap_or(now)),
                    deleted: None,
                    contactlist: seed.contactlist,
                    filter: seed.filter,
                    source_updated: false,
                    copied_from: None,
                    launches: Vec::new(),
                },
            );
        }
        state
    }

    fn next_email_id(&mut self) -> u64 {
        let id = self.next_email;
        self.next_email += 1;
        id
    }

    fn datetime(&self, ts: Timestamp) -> String {
        ts.to_zoned_datetime(self.zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    fn effective_status(&self, e: &EmailRec, now: Timestamp) -> i32 {
        if self.status_at_send && e.status != 3 && e.launches.iter().any(|l| l.send_at <= now) {
            3
        } else {
            e.status
        }
    }

    /// Whether an external id belongs to an existing contact: a stable hash puts a configured
    /// share of ids outside the database.
    fn is_known(&self, external_id: &str) -> bool {
        !espbridge_sim::in_share(external_id, self.unknown_share)
    }

    fn email_json(&self, e: &EmailRec, now: Timestamp, shown: Shown) -> Value {
        match (self.legacy_fields, shown) {
            (false, _) => self.current_json(e, now),
            (true, Shown::InList) => self.legacy_list_json(e, now),
            (true, Shown::Alone) => self.legacy_detail_json(e, now),
        }
    }

    /// The older list field set, key for key E4's `emails.json` (fixture
    /// `email_list.legacy_fields.response.json`): `segment` for `filter`; no `source`,
    /// `content_type` or `deleted`.
    fn legacy_list_json(&self, e: &EmailRec, now: Timestamp) -> Value {
        json!({
            "id": e.id.to_string(),
            "root_email": "0",
            "language": e.language,
            "created": self.datetime(e.created),
            "name": e.name,
            "status": self.effective_status(e, now).to_string(),
            "api_status": e.api_status.to_string(),
            "api_error": "0",
            "fromemail": e.fromemail,
            "fromname": e.fromname,
            "subject": e.subject,
            "email_category": "0",
            "segment": e.filter.to_string(),
            "contactlist": e.contactlist.to_string(),
            "html_source": e.html,
            "text_source": e.text,
        })
    }

    /// The detail on the older field set: the legacy docs' `email_data.rst` fields (with
    /// `source`), `segment` for `filter` (fixture `email_get.legacy_fields.derived.json`, where
    /// `GET /email/{id}` wraps it in a one-element array as those docs do). UNCERTAIN: no
    /// public payload shows it.
    fn legacy_detail_json(&self, e: &EmailRec, now: Timestamp) -> Value {
        json!({
            "id": e.id.to_string(),
            "language": e.language,
            "created": self.datetime(e.created),
            "name": e.name,
            "status": self.effective_status(e, now).to_string(),
            "api_status": e.api_status.to_string(),
            "api_error": "0",
            "fromemail": e.fromemail,
            "fromname": e.fromname,
            "subject": e.subject,
            "email_category": "0",
            "segment": e.filter.to_string(),
            "contactlist": e.contactlist.to_string(),
            "cc_list": 0,
            "source": e.source,
            "html_source": e.html,
            "text_source": e.text,
        })
    }

    fn current_json(&self, e: &EmailRec, now: Timestamp) -> Value {
        json!({
            "id": e.id.to_string(),
            "root_email": "0",
            "language": e.language,
            "name": e.name,
            "created": self.datetime(e.created),
            "deleted": e.deleted.map(|d| self.datetime(d)).unwrap_or_default(),
            "fromemail": e.fromemail,
            "fromname": e.fromname,
            "subject": e.subject,
            "email_category": "0",
            "filter": e.filter.to_string(),
            "exclude_filter": 0,
            "contactlist": e.contactlist.to_string(),
            "exclude_contactlist": 0,
            "additional_linktracking_parameters": "",
            "cc_list": 0,
            "html_source": e.html,
            "text_source": e.text,
            "template": "0",
            "content_type": e.content_type,
            "unsubscribe": "y",
            "browse": "y",
            "status": self.effective_status(e, now).to_string(),
            "api_status": e.api_status.to_string(),
            "api_error": "0",
            "external_event_id": null,
            "combined_segment_id": null,
            "text_only": "n",
            "source": e.source,
        })
    }

    // ---- fields -------------------------------------------------------------------------------

    pub fn fields(&self) -> Value {
        let mut fields = vec![
            json!({"id": "0", "name": "Interests", "application_type": "interests"}),
            json!({"id": "1", "name": "First Name", "application_type": "shorttext"}),
            json!({"id": "2", "name": "Last Name", "application_type": "shorttext"}),
            json!({"id": "3", "name": "E-Mail", "application_type": "longtext"}),
            json!({"id": "9", "name": "Title", "application_type": "singlechoice"}),
            json!({"id": "31", "name": "Opt-In", "application_type": "singlechoice"}),
        ];
        fields.push(
            json!({"id": self.field_id, "name": self.field_name, "application_type": "shorttext"}),
        );
        Value::Array(fields)
    }

    // ---- e-mails ------------------------------------------------------------------------------

    pub fn list_emails(&self, query: &HashMap<String, String>, now: Timestamp) -> ApiResult {
        let status = match query.get("status") {
            Some(raw) => Some(
                raw.trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|s| VALID_STATUSES.contains(s))
                    .ok_or_else(|| {
                        ApiError::new(400, 6003, format!("Invalid email status in filter: {raw}"))
                    })?,
            ),
            None => None,
        };
        let contactlist = match query.get("contactlist") {
            Some(raw) => Some(
                raw.parse::<u64>()
                    .map_err(|_| ApiError::new(400, 10001, "Invalid value: contactlist"))?,
            ),
            None => None,
        };
        let date = |key: &str| -> Result<Option<civil::Date>, ApiError> {
            query
                .get(key)
                .map(|raw| {
                    raw.parse::<civil::Date>()
                        .map_err(|_| ApiError::invalid(key))
                })
                .transpose()
        };
        let (from, to) = (date("fromdate")?, date("todate")?);
        let show_deleted = query.get("showdeleted").is_some_and(|v| v == "1");
        let launched = query.get("launched").map(|v| v == "1");
        let content_type = query.get("content_type");
        let list = self
            .emails
            .values()
            .filter(|e| show_deleted || e.deleted.is_none())
            .filter(|e| status.is_none_or(|s| self.effective_status(e, now) == s))
            .filter(|e| contactlist.is_none_or(|c| e.contactlist == c))
            .filter(|e| launched.is_none_or(|l| (e.api_status == 2) == l))
            .filter(|e| content_type.is_none_or(|c| &e.content_type == c))
            .filter(|e| {
                let created = e.created.to_zoned_datetime(self.zone.clone()).date();
                from.is_none_or(|f| created >= f) && to.is_none_or(|t| created <= t)
            })
            .map(|e| self.email_json(e, now, Shown::InList))
            .collect();
        Ok(Value::Array(list))
    }

    /// Template-based campaigns (`content_type` `template`), ids as integers.
    pub fn templates(&self) -> Value {
        self.emails
            .values()
            .filter(|e| e.deleted.is_none() && e.content_type == "template")
            .map(|e| json!({"id": e.id, "name": e.name}))
            .collect()
    }

    fn email(&self, id: u64, code: i64, text: &str) -> Result<&EmailRec, ApiError> {
        self.emails
            .get(&id)
            .filter(|e| e.deleted.is_none())
            .ok_or_else(|| ApiError::new(400, code, text))
    }

    pub fn get_email(&self, id: u64, now: Timestamp) -> ApiResult {
        let e = self.email(id, 6004, "Invalid email ID")?;
        let one = self.email_json(e, now, Shown::Alone);
        Ok(if self.legacy_fields {
            Value::Array(vec![one])
        } else {
            one
        })
    }

    /// Preview: the source as stored. UNCERTAIN in the reference (the docs show `data: {}`);
    /// the simulator answers the HTML or text source as a string, no personalization applied.
    pub fn preview(&self, id: u64, body: &Value) -> ApiResult {
        let e = self
            .emails
            .get(&id)
            .ok_or_else(|| ApiError::new(400, 6004, "Invalid email ID"))?;
        if e.deleted.is_some() {
            return Err(ApiError::new(400, 6003, "Invalid email status"));
        }
        match body
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("html")
        {
            "html" | "mobile" => Ok(Value::String(e.html.clone())),
            "text" => Ok(Value::String(e.text.clone())),
            _ => Err(ApiError::new(400, 6005, "Invalid version")),
        }
    }

    fn name_taken(&self, name: &str, except: Option<u64>) -> bool {
        self.emails
            .values()
            .any(|e| e.name == name && Some(e.id) != except)
    }

    pub fn copy(&mut self, id: u64, body: &Value, now: Timestamp) -> ApiResult {
        let original = self.email(id, 6026, "No such campaign")?.clone();
        let name = match body.get("name") {
            None | Some(Value::Null) => self.fresh_copy_name(&original.name),
            Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
            Some(_) => return Err(ApiError::invalid("name")),
        };
        if self.name_taken(&name, None) {
            return Err(ApiError::new(400, 6023, "Campaign name already taken"));
        }
        let new_id = self.next_email_id();
        let copy = EmailRec {
            id: new_id,
            name,
            status: 1,
            api_status: 0,
            created: now,
            deleted: None,
            source_updated: false,
            copied_from: Some(id),
            launches: Vec::new(),
            ..original
        };
        self.emails.insert(new_id, copy);
        tracing::debug!(from = id, to = new_id, "emarsys sim copied an e-mail");
        Ok(json!({ "campaignId": new_id }))
    }

    fn fresh_copy_name(&self, base: &str) -> String {
        let mut n = 1;
        loop {
            let candidate = if n == 1 {
                format!("{base} copy")
            } else {
                format!("{base} copy {n}")
            };
            if !self.name_taken(&candidate, None) {
                return candidate;
            }
            n += 1;
        }
    }

    pub fn patch(&mut self, id: u64, body: &Value, now: Timestamp) -> ApiResult {
        let body = body.as_object().cloned().unwrap_or_default();
        let e = self.email(id, 6025, "No such campaign")?;
        if e.api_status != 0 || self.effective_status(e, now) == 3 {
            return Err(ApiError::new(400, 6037, "Campaign is not editable"));
        }
        let contactlist = match body.get("contactlist") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let list = id_of(v)
                    .ok_or_else(|| ApiError::new(400, 10001, "Invalid value: contactlist"))?;
                if list != 0 && !self.lists.contains_key(&list) {
                    return Err(ApiError::new(
                        400,
                        3006,
                        "There is no contact list with the given ID",
                    ));
                }
                Some(list)
            }
        };
        let text = |key: &str| -> Result<Option<String>, ApiError> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ApiError::invalid(key)),
            }
        };
        let name = text("name")?;
        if let Some(name) = &name {
            if name.trim().is_empty() {
                return Err(ApiError::new(400, 6038, "Campaign name cannot be empty"));
            }
            if self.name_taken(name, Some(id)) {
                return Err(ApiError::new(400, 6023, "Campaign name already taken"));
            }
        }
        let subject = text("subject")?;
        if subject.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(ApiError::new(400, 6040, "Subject cannot be empty"));
        }
        let (language, fromname, fromemail) =
            (text("language")?, text("fromname")?, text("fromemail")?);
        let (html, plain) = (text("html_source")?, text("text_source")?);
        let e = self
            .emails
            .get_mut(&id)
            .ok_or_else(|| ApiError::new(400, 6025, "No such campaign"))?;
        if let Some(list) = contactlist {
            e.contactlist = list;
        }
        for (slot, value) in [
            (&mut e.name, name),
            (&mut e.subject, subject),
            (&mut e.language, language),
            (&mut e.fromname, fromname),
            (&mut e.fromemail, fromemail),
            (&mut e.html, html),
            (&mut e.text, plain),
        ] {
            if let Some(value) = value {
                *slot = value;
            }
        }
        let e = self.email(id, 6025, "No such campaign")?;
        Ok(self.email_json(e, now, Shown::Alone))
    }

    /// Only e-mails whose recipient source is "Using the API", and only once.
    pub fn update_source(&mut self, id: u64, body: &Value) -> ApiResult {
        let e = self.email(id, 6004, "Invalid email ID")?;
        if e.source != "api" || e.source_updated {
            return Err(ApiError::new(
                400,
                6004,
                "Email source is not set to Using the API",
            ));
        }
        let number = |key: &str| -> Result<u64, ApiError> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(0),
                Some(v) => id_of(v).ok_or_else(|| ApiError::invalid(key)),
            }
        };
        let (list, filter) = (number("contactlistId")?, number("filterId")?);
        if (list == 0) == (filter == 0) {
            return Err(ApiError::new(
                400,
                10001,
                "Exactly one of filterId and contactlistId must be given",
            ));
        }
        if list != 0 && !self.lists.contains_key(&list) {
            return Err(ApiError::new(
                400,
                3006,
                "There is no contact list with the given ID",
            ));
        }
        if let Some(e) = self.emails.get_mut(&id) {
            e.contactlist = list;
            e.filter = filter;
            e.source_updated = true;
        }
        Ok(Value::Bool(true))
    }

    pub fn launch(&mut self, id: u64, body: &Value, now: Timestamp) -> ApiResult {
        let e = self.email(id, 6004, "Invalid email ID")?;
        if e.api_status != 0 || !e.launches.is_empty() {
            return Err(ApiError::new(409, 6003, "Invalid email status"));
        }
        let zone_name = match body.get("timezone").or_else(|| body.get("time_zone")) {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(_) => return Err(ApiError::new(400, 6008, "Invalid timezone")),
        };
        let zone = match &zone_name {
            Some(name) => {
                TimeZone::get(name).map_err(|_| ApiError::new(400, 6008, "Invalid timezone"))?
            }
            None => self.zone.clone(),
        };
        let schedule = match body.get("schedule") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::new(400, 6009, "Invalid schedule")),
        };
        let requested = match &schedule {
            Some(s) => parse_schedule(s)
                .and_then(|dt| dt.to_zoned_datetime(zone.clone()).ok())
                .map(|z| z.timestamp())
                .ok_or_else(|| ApiError::new(400, 6009, "Invalid schedule"))?,
            None => now,
        };
        if e.contactlist == 0 && e.filter == 0 {
            return Err(ApiError::new(
                400,
                6032,
                "Contact list or segment is missing",
            ));
        }
        if e.fromname.trim().is_empty() {
            return Err(ApiError::new(400, 6033, "From name is missing"));
        }
        if e.fromemail.trim().is_empty() {
            return Err(ApiError::new(400, 6034, "From email is missing"));
        }
        if e.subject.trim().is_empty() {
            return Err(ApiError::new(400, 6035, "Subject is missing"));
        }
        // A time already past sends at once; the counters start from the moment of the call.
        let send_at = requested.max(now);
        let planned = match self.lists.get(&e.contactlist) {
            Some(list) => list.members.len() as u64,
            None => 1_000 + xxh3_64(&e.filter.to_le_bytes()) % 9_000,
        };
        let launch = LaunchRec {
            id: self.next_launch,
            schedule,
            timezone: zone_name
                .unwrap_or_else(|| self.zone.iana_name().unwrap_or("UTC").to_owned()),
            send_at,
            planned,
            recipients: None,
        };
        self.next_launch += 1;
        self.launch_count += 1;
        let status_now = !self.status_at_send;
        if let Some(e) = self.emails.get_mut(&id) {
            e.api_status = 2;
            if status_now {
                e.status = 3;
            }
            e.launches.push(launch);
        }
        tracing::debug!(email = id, planned, "emarsys sim accepted a launch");
        Ok(Value::String(String::new()))
    }

    /// `POST /email/{id}/stop`: a launch that has not gone out is unscheduled and the e-mail
    /// goes back to "In design" (status 1, api_status 0); it sends nothing and has no counts.
    /// An e-mail with nothing pending (never launched, stopped before, or sent) is 400/6003.
    pub fn stop(&mut self, id: u64, now: Timestamp) -> ApiResult {
        let e = self.email(id, 6004, "Invalid email ID")?;
        let pending = !e.launches.is_empty()
            && e.launches
                .iter()
                .all(|l| l.recipients.is_none() && l.send_at > now);
        if !pending {
            return Err(ApiError::new(400, 6003, "Invalid email status"));
        }
        if let Some(e) = self.emails.get_mut(&id) {
            e.launches.clear();
            e.api_status = 0;
            e.status = 1;
        }
        tracing::debug!(email = id, "emarsys sim stopped a scheduled launch");
        Ok(Value::String(String::new()))
    }

    pub fn launches_of(&self, body: &Value, now: Timestamp) -> ApiResult {
        let id = body
            .get("emailId")
            .or_else(|| body.get("emailid"))
            .and_then(id_of)
            .ok_or_else(|| ApiError::new(400, 6004, "Invalid email ID"))?;
        let e = self.email(id, 6004, "Invalid email ID")?;
        if e.launches.is_empty() {
            return Err(ApiError::new(400, 6003, "Invalid email status"));
        }
        Ok(e.launches
            .iter()
            .map(|l| {
                json!({
                    "id": l.id.to_string(),
                    "done": if l.send_at <= now { "y" } else { "n" },
                    "launch_date": l.send_at.to_zoned_datetime(self.zone.clone()).date().to_string(),
                })
            })
            .collect())
    }

    pub fn response_summary(
        &self,
        id: u64,
        query: &HashMap<String, String>,
        now: Timestamp,
    ) -> ApiResult {
        let e = self.email(id, 6400, "Invalid email ID")?;
        let launch_filter = match query.get("launch_id") {
            Some(raw) => Some(
                raw.parse::<u64>()
                    .ok()
                    .filter(|l| e.launches.iter().any(|x| x.id == *l))
                    .ok_or_else(|| ApiError::new(400, 10001, "Invalid value: launch_id"))?,
            ),
            None => None,
        };
        let sent: Vec<&LaunchRec> = e
            .launches
            .iter()
            .filter(|l| launch_filter.is_none_or(|f| f == l.id) && l.send_at <= now)
            .collect();
        if sent.is_empty() {
            // Launched before the simulator started: nothing to count, but not an error.
            if self.effective_status(e, now) == 3 && e.launches.is_empty() {
                return Ok(Summary::default().to_json());
            }
            return Err(ApiError::new(400, 6003, "Invalid email status"));
        }
        let mut total = Summary::default();
        for launch in sent {
            let elapsed = now.duration_since(launch.send_at).as_secs_f64();
            total.add(&Summary::at(e.id, launch.planned, elapsed));
        }
        Ok(total.to_json())
    }

    // ---- contact lists ------------------------------------------------------------------------

    pub fn list_contact_lists(&self) -> Value {
        self.lists
            .values()
            .map(|l| {
                json!({"id": l.id.to_string(), "name": l.name, "created": self.datetime(l.created), "type": 0})
            })
            .collect()
    }

    pub fn contact_list_count(&self, id: u64) -> ApiResult {
        let list = self.list(id)?;
        Ok(json!(list.members.len()))
    }

    fn list(&self, id: u64) -> Result<&ListRec, ApiError> {
        self.lists
            .get(&id)
            .ok_or_else(|| ApiError::new(400, 3006, "There is no contact list with the given ID"))
    }

    /// Checks `key_id` and `external_ids`; 2004 (a wrong key field) is an HTTP 200 error.
    fn external_ids(&self, body: &Value) -> Result<Vec<String>, ApiError> {
        let ids = match body.get("external_ids") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids.clone(),
            Some(_) => {
                return Err(ApiError::new(
                    400,
                    3003,
                    "The external IDs must be an array",
                ));
            }
        };
        if ids.len() > self.max_ids {
            return Err(ApiError::new(
                400,
                3002,
                "The list of external IDs exceeds the maximum size",
            ));
        }
        let key = body.get("key_id").map(|k| match k {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        if key.as_deref() != Some(self.field_id.as_str())
            && key.as_deref() != Some(self.field_name.as_str())
        {
            return Err(ApiError::new(200, 2004, "Invalid key field id"));
        }
        ids.into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(ApiError::invalid("external_ids")),
            })
            .collect()
    }

    /// Adds the known ids to the list (set semantics: a member already present is not counted
    /// again) and answers the inserted count and the `errors` value: absent for no ids, `[]` when
    /// every id matched, else `{id: {"2008": ...}}`.
    fn insert(&mut self, list_id: u64, ids: Vec<String>) -> (u64, Option<Value>) {
        if ids.is_empty() {
            return (0, None);
        }
        let mut errors = Map::new();
        let mut known = Vec::with_capacity(ids.len());
        for id in ids {
            if self.is_known(&id) {
                known.push(id);
            } else {
                let text = format!(
                    "No contact found with the external id: {} - {id}",
                    self.field_id
                );
                errors.insert(id, json!({ "2008": text }));
            }
        }
        let mut inserted = 0;
        if let Some(list) = self.lists.get_mut(&list_id) {
            for id in known {
                if list.member_set.insert(id.clone()) {
                    list.members.push(id);
                    inserted += 1;
                }
            }
        }
        let unknown = errors.len();
        tracing::debug!(
            list = list_id,
            inserted,
            unknown,
            "emarsys sim contact list upload"
        );
        let errors = if errors.is_empty() {
            Value::Array(Vec::new())
        } else {
            Value::Object(errors)
        };
        (inserted, Some(errors))
    }

    pub fn create_contact_list(&mut self, body: &Value, now: Timestamp) -> ApiResult {
        let ids = self.external_ids(body)?;
        let name = match body.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
            _ => return Err(ApiError::new(400, 10001, "Missing parameter: name")),
        };
        if self.lists.values().any(|l| l.name == name) {
            return Err(ApiError::new(
                400,
                3005,
                "Contact list with the requested name already exists",
            ));
        }
        let id = self.next_list;
        self.next_list += 1;
        let description = body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.lists.insert(
            id,
            ListRec {
                id,
                name,
                description,
                created: now,
                members: Vec::new(),
                member_set: BTreeSet::new(),
            },
        );
        let (_, errors) = self.insert(id, ids);
        let mut data = Map::new();
        data.insert("id".into(), json!(id));
        if let Some(errors) = errors {
            data.insert("errors".into(), errors);
        }
        Ok(Value::Object(data))
    }

    pub fn add_to_contact_list(&mut self, id: u64, body: &Value) -> ApiResult {
        self.list(id)?;
        let ids = self.external_ids(body)?;
        let (inserted, errors) = self.insert(id, ids);
        let mut data = Map::new();
        data.insert("inserted_contacts".into(), json!(inserted));
        if let Some(errors) = errors {
            data.insert("errors".into(), errors);
        }
        Ok(Value::Object(data))
    }

    // ---- views for tests ----------------------------------------------------------------------

    pub fn delete_email(&mut self, id: u64, now: Timestamp) -> bool {
        match self.emails.get_mut(&id) {
            Some(e) if e.deleted.is_none() => {
                e.deleted = Some(now);
                true
            }
            _ => false,
        }
    }

    pub fn launch_count(&self) -> usize {
        self.launch_count
    }

    pub fn sim_lists(&self) -> Vec<SimContactList> {
        self.lists
            .values()
            .map(|l| SimContactList {
                id: l.id,
                name: l.name.clone(),
                description: l.description.clone(),
                members: l.members.clone(),
            })
            .collect()
    }

    /// Sends the launches whose time has come: each takes its list's members as they are now.
    /// Called before every request changes anything, so a launch sees its list as it stood at
    /// its send time, as Emarsys evaluates the list when it sends.
    pub fn tick(&mut self, now: Timestamp) {
        let lists = &self.lists;
        for e in self.emails.values_mut() {
            for l in e.launches.iter_mut() {
                if l.recipients.is_none() && l.send_at <= now {
                    let mut members = lists
                        .get(&e.contactlist)
                        .map(|list| list.members.clone())
                        .unwrap_or_default();
                    members.sort_unstable();
                    l.recipients = Some(members);
                }
            }
        }
    }

    /// Every launch sent so far, under its e-mail's name.
    pub fn sim_sends(&self) -> Vec<espbridge_esp_kit::SimSend> {
        self.emails
            .values()
            .flat_map(|e| {
                e.launches.iter().filter_map(|l| {
                    Some(espbridge_esp_kit::SimSend {
                        name: e.name.clone(),
                        send_at: l.send_at,
                        recipients: l.recipients.clone()?,
                    })
                })
            })
            .collect()
    }

    pub fn sim_emails(&self, now: Timestamp) -> Vec<SimEmail> {
        self.emails
            .values()
            .map(|e| SimEmail {
                id: e.id,
                name: e.name.clone(),
                status: self.effective_status(e, now),
                api_status: e.api_status,
                contactlist: e.contactlist,
                filter: e.filter,
                source: e.source.clone(),
                content_type: e.content_type.clone(),
                subject: e.subject.clone(),
                deleted: e.deleted.is_some(),
                copied_from: e.copied_from,
                launches: e
                    .launches
                    .iter()
                    .map(|l| SimLaunch {
                        id: l.id,
                        schedule: l.schedule.clone(),
                        timezone: l.timezone.clone(),
                        send_at: l.send_at,
                        planned: l.planned,
                    })
                    .collect(),
            })
            .collect()
    }
}

/// An id sent as a JSON number or a numeric string.
pub(crate) fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS`.
fn parse_schedule(s: &str) -> Option<civil::DateTime> {
    let s = s.trim();
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| civil::DateTime::strptime(format, s).ok())
}

/// A plain-text rendering of seed HTML: tags removed, whitespace collapsed.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_with_and_without_seconds() {
        assert!(parse_schedule("2024-05-20 09:30").is_some());
        assert!(parse_schedule("2024-05-20 09:30:15").is_some());
        assert!(parse_schedule("2024-05-20T09:30").is_none());
        assert!(parse_schedule("tomorrow").is_none());
    }

    #[test]
    fn strip_tags_keeps_the_text() {
        assert_eq!(
            strip_tags("<html><p>Hi $First Name$,</p><p>sale</p></html>"),
            "Hi $First Name$, sale"
        );
    }
}
