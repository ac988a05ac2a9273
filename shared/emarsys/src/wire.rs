//! Serde types of every Emarsys payload espbridge sends or reads.
//!
//! Emarsys returns the same numeric field as a JSON number on one endpoint and a numeric string on
//! another (`"id":"12345"` vs `{"id":2140}`), and empty strings where a value is absent, so every
//! numeric field goes through the lenient deserializers in [`lenient`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// "Number or numeric string" deserializers.
pub mod lenient {
    use serde::Deserialize;
    use serde::de::{self, Deserializer};
    use serde_json::Value;

    fn value_to_u64(v: &Value) -> Result<Option<u64>, String> {
        match v {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(|| format!("expected a non-negative integer, got {n}")),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => s
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("expected a numeric string, got {s:?}")),
            other => Err(format!("expected a number or numeric string, got {other}")),
        }
    }

    fn value_to_i64(v: &Value) -> Result<Option<i64>, String> {
        match v {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("expected an integer, got {n}")),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("expected a numeric string, got {s:?}")),
            other => Err(format!("expected a number or numeric string, got {other}")),
        }
    }

    /// A count: number or numeric string; absent, `null` or `""` is 0.
    pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = Value::deserialize(d)?;
        value_to_u64(&v)
            .map(|o| o.unwrap_or(0))
            .map_err(de::Error::custom)
    }

    /// An optional signed code (status, api_status): number or numeric string; `null`/`""` is None.
    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let v = Value::deserialize(d)?;
        value_to_i64(&v).map_err(de::Error::custom)
    }

    /// The envelope's `replyCode`: number or numeric string, required.
    pub fn code<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let v = Value::deserialize(d)?;
        value_to_i64(&v)
            .map_err(de::Error::custom)?
            .ok_or_else(|| de::Error::custom("replyCode is empty"))
    }

    /// An id kept as text: number or string.
    pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(de::Error::custom(format!(
                "expected an id (number or string), got {other}"
            ))),
        }
    }

    /// An optional id: number or string; `null`, `""` and `0`/`"0"` ("none") are None.
    pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let s = match Value::deserialize(d)? {
            Value::Null => return Ok(None),
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            other => {
                return Err(de::Error::custom(format!(
                    "expected an id (number or string), got {other}"
                )));
            }
        };
        Ok(match s.trim() {
            "" | "0" => None,
            t => Some(t.to_owned()),
        })
    }
}

/// An id that is sent as a JSON number when it is numeric (Emarsys' own create calls return
/// integers) and as a string otherwise; read back from either.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WireId(pub String);

impl Serialize for WireId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.parse::<u64>() {
            Ok(n) => s.serialize_u64(n),
            Err(_) => s.serialize_str(&self.0),
        }
    }
}
impl<'de> Deserialize<'de> for WireId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::id(d).map(WireId)
    }
}
impl From<&str> for WireId {
    fn from(s: &str) -> Self {
        WireId(s.to_owned())
    }
}

/// The envelope of every JSON response: `{"replyCode":0,"replyText":"OK","data":...}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Envelope {
    #[serde(rename = "replyCode", deserialize_with = "lenient::code")]
    pub reply_code: i64,
    #[serde(rename = "replyText", default)]
    pub reply_text: String,
    #[serde(default)]
    pub data: Value,
}

/// `data` that is one object in the current spec and a one-element array in the legacy docs.
pub fn one_or_first(data: Value) -> Option<Value> {
    match data {
        Value::Array(items) => items.into_iter().next(),
        Value::Object(_) => Some(data),
        _ => None,
    }
}

/// One e-mail campaign from `GET /email`, `GET /email/{id}` or the patch response.
///
/// Two field sets are read (reference `docs/esp/emarsys-smartfocus.md` A.5.1): the current one
/// (`filter`, `source`, `content_type`, `deleted`; E1 `email_list.rst`, E2) and the older one
/// some accounts still answer (`segment` for `filter`, no `source`, `content_type` or
/// `deleted`; E4 `emails.json`, fixture `email_list.legacy_fields.response.json`). Every one of
/// those fields is optional here; what their absence means is decided in the adapter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Email {
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub status: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub api_status: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub api_error: Option<i64>,
    #[serde(default)]
    pub subject: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS` in the account's zone (A.8), as sent.
    #[serde(default)]
    pub created: Option<String>,
    /// Empty or the deletion time; absent in the older field set.
    #[serde(default)]
    pub deleted: Option<String>,
    /// Recipient source: `api`, `userlist`, `profile`; absent in the older field set.
    #[serde(default)]
    pub source: Option<String>,
    /// `html`, `template` (CMS) or `block`; absent in the older field set.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Attached contact list; `None` for "none" (`0`).
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub contactlist: Option<String>,
    /// Segment (filter) used as recipient source; `None` for "none" (`0` or empty).
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub filter: Option<String>,
    /// The older field set's name for [`Email::filter`].
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub segment: Option<String>,
    #[serde(default)]
    pub html_source: Option<String>,
    #[serde(default)]
    pub text_source: Option<String>,
}

impl Email {
    pub fn is_deleted(&self) -> bool {
        self.deleted
            .as_deref()
            .is_some_and(|d| !d.trim().is_empty())
    }

    /// The segment the e-mail is sent to, under either field set's name.
    pub fn segment_id(&self) -> Option<&str> {
        self.filter.as_deref().or(self.segment.as_deref())
    }

    /// The recipient source, trimmed; `None` when absent or empty.
    pub fn source(&self) -> Option<&str> {
        self.source
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The content type, trimmed; `None` when absent or empty.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// One entry of `GET /email/templates`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EmailTemplate {
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    pub name: String,
}

/// A created object's id (`POST /email`, `POST /email/responses`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedId {
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
}

/// `POST /email` body (not used by the adapter; kept so the recorded payload is typed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailCreateRequest {
    pub name: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub fromname: Option<String>,
    #[serde(default)]
    pub fromemail: Option<String>,
    #[serde(default)]
    pub email_category: Option<WireId>,
    #[serde(default)]
    pub html_source: Option<String>,
    #[serde(default)]
    pub text_source: Option<String>,
    #[serde(default)]
    pub filter: Option<WireId>,
    #[serde(default)]
    pub contactlist: Option<WireId>,
}

/// One custom or system field from `GET /field`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Field {
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub application_type: Option<String>,
}

/// One contact list from `GET /contactlist`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContactList {
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub created: Option<String>,
}

/// `POST /contactlist` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateContactList {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub key_id: String,
    pub external_ids: Vec<String>,
}

/// `POST /contactlist/{id}/add` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddContacts {
    pub key_id: String,
    pub external_ids: Vec<String>,
}

/// Per-id errors of a contact-list call: external id → (error code → text). Emarsys sends `{}`
/// with entries, `[]` when every id matched, and nothing when no ids were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdErrors(pub BTreeMap<String, BTreeMap<String, String>>);

impl<'de> Deserialize<'de> for IdErrors {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Null => Ok(Self::default()),
            Value::Array(a) if a.is_empty() => Ok(Self::default()),
            Value::Object(map) => {
                let mut out = BTreeMap::new();
                for (id, codes) in map {
                    let mut per_id = BTreeMap::new();
                    match codes {
                        Value::Object(c) => {
                            for (code, text) in c {
                                let text = match text {
                                    Value::String(s) => s,
                                    other => other.to_string(),
                                };
                                per_id.insert(code, text);
                            }
                        }
                        // Unknown shape: keep the entry so the row is still reported.
                        other => {
                            per_id.insert(String::new(), other.to_string());
                        }
                    }
                    out.insert(id, per_id);
                }
                Ok(Self(out))
            }
            other => Err(D::Error::custom(format!(
                "contact-list errors must be an object or an empty array, got {}",
                kind_of(&other)
            ))),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a non-empty array",
        Value::Object(_) => "an object",
    }
}

/// `data` of `POST /contactlist`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContactListCreated {
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    #[serde(default)]
    pub errors: IdErrors,
}

/// `data` of `POST /contactlist/{id}/add`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContactsAdded {
    #[serde(default, deserialize_with = "lenient::count")]
    pub inserted_contacts: u64,
    #[serde(default)]
    pub errors: IdErrors,
}

/// `POST /email/{id}/copy` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyEmail {
    pub name: String,
}

/// `data` of `POST /email/{id}/copy` (note the camelCase key, unlike every other create call).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EmailCopied {
    #[serde(rename = "campaignId", deserialize_with = "lenient::id")]
    pub campaign_id: String,
}

/// `POST /email/{id}/patch` body; only the keys set are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchEmail {
    #[serde(rename = "emailId", default, skip_serializing_if = "Option::is_none")]
    pub email_id: Option<WireId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contactlist: Option<WireId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_linktracking_parameters: Option<String>,
}

/// `POST /email/{id}/updatesource` body: exactly one of filter / contact list is non-zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateSource {
    #[serde(rename = "emailId", default, skip_serializing_if = "Option::is_none")]
    pub email_id: Option<WireId>,
    #[serde(rename = "filterId")]
    pub filter_id: WireId,
    #[serde(rename = "contactlistId")]
    pub contactlist_id: WireId,
    #[serde(
        rename = "excludeFilterId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exclude_filter_id: Option<WireId>,
    #[serde(
        rename = "excludeContactlistId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exclude_contactlist_id: Option<WireId>,
}

/// `POST /email/{id}/launch` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// `YYYY-MM-DD HH:MM` in `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// IANA zone name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// A stray key in the official v2 example; accepted on read, never sent.
    #[serde(rename = "emailID", default, skip_serializing)]
    pub email_id: Option<WireId>,
}

/// `POST /email/{id}/preview` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRequest {
    /// `html`, `text` or `mobile`.
    pub version: String,
}

/// `POST /email/getlaunchesofemail` body (legacy docs spell the key `emailid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchesOfEmail {
    #[serde(rename = "emailId", alias = "emailid")]
    pub email_id: WireId,
}

/// One launch of an e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EmailLaunch {
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// `y` or `n`.
    #[serde(default)]
    pub done: Option<String>,
    #[serde(default)]
    pub launch_date: Option<String>,
}

/// `data` of `GET /email/{id}/responsesummary`. Every count is a numeric string in practice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ResponseSummary {
    #[serde(default, deserialize_with = "lenient::count")]
    pub sent: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    pub planned: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    pub soft_bounces: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    pub hard_bounces: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    pub block_bounces: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    pub opened: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    pub unsubscribe: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    pub total_clicks: u64,
    #[serde(default, deserialize_with = "lenient::count")]
    pub unique_clicks: u64,
    /// Absent in the oldest docs: 0 then.
    #[serde(default, deserialize_with = "lenient::count")]
    pub complained: u64,
}

impl ResponseSummary {
    pub fn bounces(&self) -> u64 {
        self.soft_bounces
            .saturating_add(self.hard_bounces)
            .saturating_add(self.block_bounces)
    }
    /// Emarsys has no `delivered`: it is what was sent minus every kind of bounce.
    pub fn delivered(&self) -> u64 {
        self.sent.saturating_sub(self.bounces())
    }
}

/// `POST /email/responses` body (contact-level query; not used for counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesQuery {
    #[serde(rename = "type")]
    pub kind: String,
    pub start_date: String,
    pub end_date: String,
    pub campaign_id: WireId,
}

/// `data` of `GET /email/{queryId}/responses` once ready (`replyCode` 202 and `data: ""` before).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResponsesResult {
    #[serde(default)]
    pub contact_ids: Vec<String>,
}
