//! Silverpop's XML API documents: the envelope check (SUCCESS / Fault), typed views of the
//! results the adapter reads, and builders of the requests it sends.

use crate::xml::{Element, Node, XmlError, parse};
use jiff::ZonedDateTime;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// The `Fault` beside `RESULT` in a failed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub errorid: Option<u32>,
    pub class: Option<String>,
    pub text: String,
}

impl Fault {
    /// errorid 145: the session expired or is unknown; log in again.
    pub fn is_session_lost(&self) -> bool {
        self.errorid == Some(145)
    }
}

/// What a response body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `RESULT` with a true `SUCCESS` (any spelling) and no `Fault`.
    Success(Element),
    /// A `Fault`, or a `SUCCESS` that is not true.
    Failed(Fault),
}

/// `TRUE`, `true`, `Success`... compared case-insensitively.
pub fn is_success(text: &str) -> bool {
    matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "true" | "success"
    )
}

/// Reads `Envelope/Body`: a `Fault` wins even when `RESULT/SUCCESS` claims success.
pub fn read_answer(body: &[u8]) -> Result<Answer, XmlError> {
    let root = parse(body)?;
    if root.name != "Envelope" {
        let root = espbridge_core::text::bounded(&root.name, 64);
        return Err(XmlError(format!("root is <{root}>, not <Envelope>")));
    }
    let body = root
        .child("Body")
        .ok_or_else(|| XmlError("no <Body>".into()))?;
    if let Some(f) = body.child("Fault") {
        let error = f.child("detail").and_then(|d| d.child("error"));
        return Ok(Answer::Failed(Fault {
            errorid: error
                .and_then(|e| e.child_text("errorid"))
                .and_then(|t| t.parse().ok()),
            class: error.and_then(|e| e.child_text("class")).map(str::to_owned),
            text: f.child_text("FaultString").unwrap_or("").to_owned(),
        }));
    }
    let result = body
        .child("RESULT")
        .ok_or_else(|| XmlError("no <RESULT> and no <Fault>".into()))?;
    if result.child_text("SUCCESS").is_some_and(is_success) {
        Ok(Answer::Success(result.clone()))
    } else {
        Ok(Answer::Failed(Fault {
            errorid: None,
            class: None,
            text: "SUCCESS is not true".into(),
        }))
    }
}

/// Login result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginResult {
    pub session_id: String,
}

impl LoginResult {
    /// The suffix is built from SESSIONID (SESSION_ENCODING may be empty).
    pub fn from_result(r: &Element) -> Option<Self> {
        r.child_text("SESSIONID").map(|s| Self {
            session_id: s.to_owned(),
        })
    }
}

/// One `MAILING_TEMPLATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailingTemplate {
    pub mailing_id: String,
    pub name: String,
    pub subject: Option<String>,
    pub last_modified: Option<String>,
    pub visibility: Option<String>,
}

impl MailingTemplate {
    pub fn list(r: &Element) -> Vec<Self> {
        r.children_named("MAILING_TEMPLATE")
            .filter_map(|t| {
                Some(Self {
                    mailing_id: t.child_text("MAILING_ID")?.to_owned(),
                    name: t.child_text("MAILING_NAME").unwrap_or_default().to_owned(),
                    subject: t.child_text("SUBJECT").map(str::to_owned),
                    last_modified: t.child_text("LAST_MODIFIED").map(str::to_owned),
                    visibility: t.child_text("VISIBILITY").map(str::to_owned),
                })
            })
            .collect()
    }
    /// Shared is `1` or `Shared` (sources disagree); an absent flag counts as what was asked.
    pub fn is_shared(&self) -> bool {
        self.visibility
            .as_deref()
            .is_none_or(|v| v == "1" || v.eq_ignore_ascii_case("shared"))
    }

    /// `LAST_MODIFIED` read as a local time of the org in `zone`, as RFC 3339 with that zone's
    /// offset then; `None` when absent or unreadable (see [`org_time`]).
    pub fn last_modified_in(&self, zone: &TimeZone) -> Option<String> {
        self.last_modified
            .as_deref()
            .and_then(|t| org_time(t, zone))
            .map(|t| rfc3339(&t))
    }
}

/// A time as Silverpop writes it in list, template and metadata results (`LAST_MODIFIED`,
/// `CREATED`: `MM/dd/yy hh:mm a`, e.g. `05/28/24 03:12 PM`; reference A.4), which carries no
/// zone: it is the org's local time, read in `zone`.
///
/// Read leniently, as the ka client does (`M/d/yy h:mm a`): one or two digits for month, day
/// and hour; a two-digit year is 20yy and four digits are taken as they are, from 2000 on
/// (Silverpop holds no earlier data; an earlier year is `None`); seconds (`:ss`) may follow the
/// minutes; `AM`/`PM` in any case, or none for a 24-hour clock. A local time that occurs twice
/// (the hour the clocks go back) is the earlier instant; one that does not occur (the hour they
/// skip) is read with the offset before the change (jiff's "compatible" rule, as `java.time`
/// and RFC 5545 do). Anything else is `None`.
pub fn org_time(text: &str, zone: &TimeZone) -> Option<ZonedDateTime> {
    let mut parts = text.split_whitespace();
    let (date, time, meridiem) = (parts.next()?, parts.next()?, parts.next());
    if parts.next().is_some() {
        return None;
    }
    let mut d = date.split('/');
    let (month, day, year) = (
        digits(d.next()?, 1, 2)?,
        digits(d.next()?, 1, 2)?,
        d.next()?,
    );
    let year = match year.len() {
        2 => 2000 + digits(year, 2, 2)?,
        _ => digits(year, 4, 4).filter(|y| *y >= 2000)?,
    };
    let mut t = time.split(':');
    let (hour, minute) = (digits(t.next()?, 1, 2)?, digits(t.next()?, 2, 2)?);
    let second = t.next().map_or(Some(0), |s| digits(s, 2, 2))?;
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    let hour = match meridiem.map(str::to_ascii_uppercase).as_deref() {
        None if hour <= 23 => hour,
        Some("AM") if (1..=12).contains(&hour) => hour % 12,
        Some("PM") if (1..=12).contains(&hour) => hour % 12 + 12,
        _ => return None,
    };
    let civil = DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        0,
    )
    .ok()?;
    civil.to_zoned_datetime(zone.clone()).ok()
}

/// `min..=max` ASCII digits as a number.
fn digits(text: &str, min: usize, max: usize) -> Option<u16> {
    if !(min..=max).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// RFC 3339 with the time's own offset, whole seconds: `2024-05-28T15:12:00-04:00`
/// (`+00:00` in UTC).
pub fn rfc3339(t: &ZonedDateTime) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// PreviewMailing result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewResult {
    pub html: Option<String>,
    pub text: Option<String>,
    pub spam_score: Option<String>,
}

impl PreviewResult {
    pub fn from_result(r: &Element) -> Self {
        Self {
            html: r.child_text("HTMLBody").map(str::to_owned),
            text: r.child_text("TextBody").map(str::to_owned),
            spam_score: r
                .child_text("SPAMScore")
                .or_else(|| r.child_text("SpamScore"))
                .map(str::to_owned),
        }
    }
}

/// One `FAILURE` of InsertUpdateRelationalTable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    pub failure_type: String,
    pub description: String,
    /// The key columns of the failed row.
    pub columns: Vec<(String, String)>,
}

impl RowFailure {
    pub fn list(r: &Element) -> Vec<Self> {
        r.child("FAILURES")
            .map(|f| {
                f.children_named("FAILURE")
                    .map(|e| Self {
                        failure_type: e.attr("failure_type").unwrap_or("unknown").to_owned(),
                        description: e.attr("description").unwrap_or("").to_owned(),
                        columns: e
                            .children_named("COLUMN")
                            .map(|c| (c.attr("name").unwrap_or("").to_owned(), c.text.clone()))
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn column(&self, name: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One `LIST` row of GetLists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub id: String,
    pub name: String,
}

impl ListRow {
    pub fn list(r: &Element) -> Vec<Self> {
        r.children_named("LIST")
            .filter(|l| !l.child_text("IS_FOLDER").is_some_and(is_success))
            .filter_map(|l| {
                Some(Self {
                    id: l.child_text("ID")?.to_owned(),
                    name: l.child_text("NAME").unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }
}

/// `JOB_STATUS` of GetJobStatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Waiting,
    Running,
    Complete,
    Error,
    Canceled,
    /// A value the reference does not list (the vendor client maps these to "unknown").
    Unknown(String),
}

impl JobStatus {
    pub fn from_result(r: &Element) -> Option<Self> {
        let s = r.child_text("JOB_STATUS")?.trim();
        Some(match s.to_ascii_uppercase().as_str() {
            "WAITING" => Self::Waiting,
            "RUNNING" => Self::Running,
            "COMPLETE" => Self::Complete,
            "ERROR" => Self::Error,
            "CANCELED" | "CANCELLED" => Self::Canceled,
            _ => Self::Unknown(s.to_owned()),
        })
    }
}

/// `SIZE` of GetListMetaData (or of a GetLists row).
pub fn list_size(r: &Element) -> Option<u64> {
    r.child_text("SIZE")?.trim().parse().ok()
}

/// One `Mailing` of GetSentMailingsForOrg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMailing {
    pub mailing_id: String,
    pub report_id: Option<String>,
    pub name: String,
    pub scheduled_ts: Option<String>,
    pub sent_ts: Option<String>,
    pub num_sent: u64,
}

impl SentMailing {
    pub fn list(r: &Element) -> Vec<Self> {
        r.children_named("Mailing")
            .filter_map(|m| {
                Some(Self {
                    mailing_id: m.child_text("MailingId")?.to_owned(),
                    report_id: m.child_text("ReportId").map(str::to_owned),
                    name: m.child_text("MailingName").unwrap_or_default().to_owned(),
                    scheduled_ts: m.child_text("ScheduledTS").map(str::to_owned),
                    sent_ts: m.child_text("SentTS").map(str::to_owned),
                    num_sent: num(m, "NumSent"),
                })
            })
            .collect()
    }
}

fn num(e: &Element, name: &str) -> u64 {
    e.child_text(name)
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map_or(0, |v| v as u64)
}

/// The counters of GetAggregateTrackingForMailing's `Mailing` block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregateTracking {
    pub sent: u64,
    pub bounce_hard: u64,
    pub bounce_soft: u64,
    pub unique_open: u64,
    pub unique_click: u64,
    pub unsubscribes: u64,
    pub abuse: u64,
}

impl AggregateTracking {
    /// The first `Mailing` block; `None` when there is none.
    pub fn from_result(r: &Element) -> Option<Self> {
        let m = r.child("Mailing")?;
        Some(Self {
            sent: num(m, "NumSent"),
            bounce_hard: num(m, "NumBounceHard"),
            bounce_soft: num(m, "NumBounceSoft"),
            unique_open: num(m, "NumUniqueOpen"),
            unique_click: num(m, "NumUniqueClick"),
            unsubscribes: num(m, "NumUnsubscribes"),
            abuse: num(m, "NumGrossAbuse"),
        })
    }
}

// ---- requests --------------------------------------------------------------------------------

pub fn login(username: &str, password: &str) -> Node {
    Node::new("Login")
        .child(Node::text("USERNAME", username))
        .child(Node::text("PASSWORD", password))
}

pub fn logout() -> Node {
    Node::new("Logout")
}

/// Shared templates only (VISIBILITY 1).
pub fn get_mailing_templates() -> Node {
    Node::new("GetMailingTemplates").child(Node::text("VISIBILITY", "1"))
}

pub fn preview_mailing(mailing_id: &str) -> Node {
    Node::new("PreviewMailing").child(Node::text("MailingId", mailing_id))
}

/// One row of InsertUpdateRelationalTable: column names as attributes.
pub fn relational_row(columns: &[(&str, &str)]) -> Node {
    Node::new("ROW").children(
        columns
            .iter()
            .map(|(n, v)| Node::text("COLUMN", *v).attr("name", *n)),
    )
}

pub fn insert_update_relational_table(table_id: &str, rows: Vec<Node>) -> Node {
    Node::new("InsertUpdateRelationalTable")
        .child(Node::text("TABLE_ID", table_id))
        .child(Node::new("ROWS").children(rows))
}

/// Shared contact lists (LIST_TYPE 18).
pub fn get_contact_lists() -> Node {
    Node::new("GetLists")
        .child(Node::text("VISIBILITY", "1"))
        .child(Node::text("LIST_TYPE", "18"))
}

/// A shared contact list of the database, in the folder at `folder_path`.
pub fn create_contact_list(database_id: &str, name: &str, folder_path: &str) -> Node {
    Node::new("CreateContactList")
        .child(Node::text("DATABASE_ID", database_id))
        .child(Node::text("CONTACT_LIST_NAME", name))
        .child(Node::text("VISIBILITY", "1"))
        .child(Node::text("PARENT_FOLDER_PATH", folder_path))
}

/// Adds the existing contact whose key field holds `key` to a contact list (never creates one).
pub fn add_contact_to_contact_list(list_id: &str, key_field: &str, key: &str) -> Node {
    Node::new("AddContactToContactList")
        .child(Node::text("CONTACT_LIST_ID", list_id))
        .child(
            Node::new("COLUMN")
                .child(Node::text("NAME", key_field))
                .child(Node::text("VALUE", key)),
        )
}

/// Starts the data job that counts a query's contacts.
pub fn calculate_query(query_id: &str) -> Node {
    Node::new("CalculateQuery").child(Node::text("QUERY_ID", query_id))
}

pub fn get_job_status(job_id: &str) -> Node {
    Node::new("GetJobStatus").child(Node::text("JOB_ID", job_id))
}

/// A database's, query's or contact list's attributes (SIZE among them).
pub fn get_list_meta_data(list_id: &str) -> Node {
    Node::new("GetListMetaData").child(Node::text("LIST_ID", list_id))
}

/// Shared queries (LIST_TYPE 1), optionally in one folder.
pub fn get_queries(folder_id: Option<&str>) -> Node {
    let mut n = Node::new("GetLists")
        .child(Node::text("VISIBILITY", "1"))
        .child(Node::text("LIST_TYPE", "1"));
    if let Some(f) = folder_id {
        n = n.child(Node::text("FOLDER_ID", f));
    }
    n
}

/// What a campaign query selects: contacts with a row of the relational table whose column
/// equals the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criteria<'a> {
    Relational {
        table_id: &'a str,
        column: &'a str,
        value: &'a str,
    },
}

pub fn create_query(
    name: &str,
    database_id: &str,
    folder_id: Option<&str>,
    criteria: Criteria<'_>,
) -> Node {
    let equals = |column: &str, value: &str, kind: &'static str| {
        Node::new("EXPRESSION")
            .attr("criteria_type", kind)
            .child(Node::text("CONJUNCTION", "AND"))
            .child(Node::text("OPERATOR", "is equal to"))
            .child(Node::text("COLUMN", column))
            .child(Node::text("VALUE", value))
    };
    let expression = match criteria {
        Criteria::Relational {
            table_id,
            column,
            value,
        } => Node::new("EXPRESSION")
            .attr("criteria_type", "rt_profile")
            .child(Node::text("CONJUNCTION", "AND"))
            .child(Node::text("ID", table_id))
            .child(Node::text("OPERATOR", "match"))
            .child(Node::new("RT_EXPRESSIONS").child(equals(column, value, "rt_profile"))),
    };
    let mut n = Node::new("CreateQuery")
        .child(Node::text("QUERY_NAME", name))
        .child(Node::text("PARENT_LIST_ID", database_id))
        .child(Node::text("VISIBILITY", "1"));
    if let Some(f) = folder_id {
        n = n.child(Node::text("PARENT_FOLDER_ID", f));
    }
    n.child(Node::new("CRITERIA").child(expression))
}

/// ScheduleMailing of a template to a query, into the mailing folder, at `scheduled`
/// (`MM/dd/yyyy hh:mm:ss a`, local time of the org).
pub fn schedule_mailing(
    template_id: &str,
    list_id: &str,
    mailing_name: &str,
    folder_path: &str,
    scheduled: &str,
) -> Node {
    Node::new("ScheduleMailing")
        .child(Node::text("TEMPLATE_ID", template_id))
        .child(Node::text("LIST_ID", list_id))
        .child(Node::text("MAILING_NAME", mailing_name))
        .child(Node::text("VISIBILITY", "1"))
        .child(Node::new("SEND_HTML"))
        .child(Node::new("SEND_TEXT"))
        .child(Node::text("PARENT_FOLDER_PATH", folder_path))
        .child(Node::new("CREATE_PARENT_FOLDER"))
        .child(Node::text("SCHEDULED", scheduled))
}

/// Shared and private mailings, scheduled, sending or sent, between two local times
/// (`MM/dd/yyyy HH:mm:ss`).
pub fn get_sent_mailings_for_org(start: &str, end: &str) -> Node {
    Node::new("GetSentMailingsForOrg")
        .child(Node::text("DATE_START", start))
        .child(Node::text("DATE_END", end))
        .child(Node::new("SHARED"))
        .child(Node::new("PRIVATE"))
        .child(Node::new("SCHEDULED"))
        .child(Node::new("SENDING"))
        .child(Node::new("SENT"))
}

pub fn get_aggregate_tracking(mailing_id: &str, report_id: &str) -> Node {
    Node::new("GetAggregateTrackingForMailing")
        .child(Node::text("MAILING_ID", mailing_id))
        .child(Node::text("REPORT_ID", report_id))
}
