//! The simulated account: sessions, messages, the member table, uploads, segments, campaigns.
//! Every operation answers the XML body of a success or a [`Failure`]. This module holds the
//! account and what every resource shares; each resource's operations are in its own module.

mod campaigns;
mod messages;
mod segments;
mod sessions;
mod uploads;

use campaigns::Campaign;
use segments::Segment;
use sessions::Session;
use uploads::Upload;

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

/// The whole account. Its operations live one resource per module: [`sessions`],
/// [`messages`], [`uploads`] (and the member table they feed), [`segments`], [`campaigns`].
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

pub(super) fn bool_text(b: bool) -> String {
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

    pub(super) fn date(&self, t: Timestamp) -> String {
        t.to_zoned_datetime(self.zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    // ----- sessions -----
}

/// `t + d`, saturating: dates come from requests and must not overflow.
pub(super) fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
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

/// The HTML and text parts of a `[EMV HTMLPART]...[EMV TEXTPART]...` body.
pub(super) fn split_body(body: &str) -> (&str, &str) {
    let (before_text, text) = body.split_once("[EMV TEXTPART]").unwrap_or((body, ""));
    let html = before_text
        .split_once("[EMV HTMLPART]")
        .map_or(before_text, |(_, h)| h);
    (html, text)
}

pub(super) fn parse_id(raw: &str, field: &str) -> Result<u64, Failure> {
    raw.trim()
        .parse()
        .map_err(|_| Failure::params(format!("{field} must be a number"), field))
}

pub(super) fn parse_limit(raw: &str) -> Result<usize, Failure> {
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
    use super::segments::criterion_matches;
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
