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
    peak_sessions: usize,
    calls_served: usize,
    messages: BTreeMap<u64, SimMessage>,
    next_message_id: u64,
    uploads: BTreeMap<u64, Upload>,
    next_upload_id: u64,
    fail_next_import: bool,
    /// Customer id → field → value, for the members an upload touched (the rest of the member
    /// table is implied by `unknown_id_share`; see [`uploads`]).
    members: BTreeMap<String, BTreeMap<String, String>>,
    segments: BTreeMap<u64, Segment>,
    next_segment_id: u64,
    campaigns: BTreeMap<u64, Campaign>,
    next_campaign_id: u64,
    posts: usize,
    /// `unpostCampaign` calls that unposted.
    unposts: usize,
}

pub(super) fn bool_text(b: bool) -> String {
    b.to_string()
}

impl State {
    pub fn new(config: &SmartFocusSimConfig, zone: TimeZone, now: Timestamp) -> Self {
        let mut messages = BTreeMap::new();
        let count = config.messages.len();
        let mut next_message_id = 1_105_016_560;
        // A day apart, or spread over the last year when there are more than 365 seeds.
        let year_secs: i64 = 365 * 86_400;
        let step_secs = i64::try_from(count)
            .ok()
            .filter(|&n| n > 365)
            .map_or(86_400, |n| (year_secs / n).max(1));
        for (i, seed) in config.messages.iter().enumerate() {
            let steps = i64::try_from(count - i).unwrap_or(0);
            let created_at = now
                .checked_sub(SignedDuration::from_secs(step_secs.saturating_mul(steps)))
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
                    kind: seed.kind.clone(),
                },
            );
            next_message_id += 13;
        }
        Self {
            config: config.clone(),
            zone,
            sessions: HashMap::new(),
            sessions_opened: 0,
            peak_sessions: 0,
            calls_served: 0,
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
            unposts: 0,
        }
    }

    pub(super) fn date(&self, t: Timestamp) -> String {
        t.to_zoned_datetime(self.zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// Lets time pass up to `now`: imports that completed and sends whose date came, in time
    /// order (an import completing at or before a send date is in that send; one completing
    /// after it is not). Runs before every request and every read of the state.
    pub fn tick(&mut self, now: Timestamp) {
        /// Imports before sends at the same instant; then creation order.
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        enum Due {
            Import(u64),
            Send(u64),
        }
        let mut due: Vec<(Timestamp, Due)> = Vec::new();
        for u in self.uploads.values() {
            let complete = matches!(
                u.outcome,
                uploads::Outcome::Done | uploads::Outcome::DoneWithErrors(_)
            );
            if !u.applied
                && complete
                && let Some(at) = self.final_at(u)
                && at <= now
            {
                due.push((at, Due::Import(u.id)));
            }
        }
        for c in self.campaigns.values() {
            if c.posted && c.recipients.is_none() && c.send_at <= now {
                due.push((c.send_at, Due::Send(c.id)));
            }
        }
        due.sort();
        for (_, event) in due {
            match event {
                Due::Import(id) => self.apply_upload(id),
                Due::Send(id) => self.freeze_send(id),
            }
        }
    }
}

/// `t + d`, saturating: dates come from requests and must not overflow.
pub(super) fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// `connect/open` beyond the manager's open sessions (`max_sessions`): the documented
/// "No available connection for manager {0}." (status invented).
pub(crate) fn no_connection_for_manager(login: &str) -> Failure {
    Failure::new(
        format!("No available connection for manager {login}."),
        "login",
        "CONNECTION_FAILED",
    )
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

    /// A merge of `CUSTOMER_ID<TAB>tag` lines into `CAMPAIGN_TAG_1`.
    fn merge(ids: &[&str], tag: &str) -> Result<UploadRequest, Failure> {
        use super::super::upload::Column;
        let column = |n: usize, field: &str, to_replace: bool| Column {
            col_num: Some(n),
            field: field.into(),
            to_replace,
            default_value: None,
        };
        Ok(UploadRequest {
            description: Description {
                mode: UploadMode::Merge,
                file_name: format!("{tag}.csv"),
                separator: '\t',
                skip_first_line: false,
                criteria: Some("CUSTOMER_ID".into()),
                columns: vec![
                    column(1, "CUSTOMER_ID", false),
                    column(2, "CAMPAIGN_TAG_1", true),
                ],
            },
            file: ids
                .iter()
                .map(|id| format!("{id}\t{tag}\n"))
                .collect::<String>()
                .into_bytes(),
        })
    }

    fn t(offset_secs: i64) -> Timestamp {
        let start: Timestamp = "2026-06-10T08:00:00Z".parse().unwrap();
        plus(start, SignedDuration::from_secs(offset_secs))
    }

    #[test]
    fn a_send_takes_the_imports_completed_before_its_date_and_not_the_later_ones() {
        let config = SmartFocusSimConfig {
            upload_step_delay: Some(SignedDuration::from_secs(10)),
            upload_polls_per_step: 0,
            unknown_id_share: 0.0,
            ..SmartFocusSimConfig::default()
        };
        let mut state = State::new(&config, zone(), t(0));
        state
            .create_segment(
                "<segmentation><name>espbridge_c1</name></segmentation>",
                t(0),
            )
            .unwrap();
        let segment = *state.segments.keys().next().unwrap();
        state
            .add_string_criterion(
                &segment.to_string(),
                "<stringDemographicCriteria><columnName>CAMPAIGN_TAG_1</columnName>\
                 <operator>EQUALS</operator><values>t1</values></stringDemographicCriteria>",
                t(0),
            )
            .unwrap();
        // Four states of 10 s: this import completes at +40 s, before the send at +60 s.
        state.upload(merge(&["a", "b"], "t1"), t(0)).unwrap();
        let message = state.messages.keys().next().unwrap().to_string();
        let send_date = t(60).to_string();
        state
            .create_campaign(
                [
                    Some("espbridge_c1"),
                    None,
                    Some(&send_date),
                    Some(&message),
                    Some(&segment.to_string()),
                    None,
                    None,
                    None,
                ],
                t(0),
            )
            .unwrap();
        let campaign = *state.campaigns.keys().next().unwrap();
        state.post_campaign(&campaign.to_string(), t(1)).unwrap();
        // This one completes at +70 s, after the send.
        state.upload(merge(&["c"], "t1"), t(30)).unwrap();
        assert!(state.sim_sends().is_empty());

        // One late tick processes both imports and the send in time order.
        state.tick(t(120));
        let sends = state.sim_sends();
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].name, "espbridge_c1");
        assert_eq!(sends[0].send_at, t(60));
        assert_eq!(sends[0].recipients, ["a", "b"]);
        assert_eq!(state.members_with_tag("t1", t(120)), ["a", "b", "c"]);
        // nbSelected was 0 at post (nothing imported yet); it is the send's audience now.
        assert_eq!(state.sim_campaigns(t(120))[0].selected, 2);
        assert_eq!(
            state.sim_campaigns(t(120))[0].recipients.as_deref(),
            Some(["a".to_owned(), "b".to_owned()].as_slice())
        );
    }

    #[test]
    fn merges_complete_known_members_and_add_unknown_ones_without_email() {
        let config = SmartFocusSimConfig {
            upload_step_delay: Some(SignedDuration::ZERO),
            unknown_id_share: 0.5,
            ..SmartFocusSimConfig::default()
        };
        let ids: Vec<String> = (0..40).map(|i| format!("id{i}")).collect();
        let (known, unknown): (Vec<&str>, Vec<&str>) = ids
            .iter()
            .map(String::as_str)
            .partition(|id| !espbridge_sim::in_share(id, 0.5));
        assert!(!known.is_empty() && !unknown.is_empty());
        let mut state = State::new(&config, zone(), t(0));
        assert!(state.members.is_empty(), "nothing is held before an upload");
        state
            .upload(merge(&[known[0], unknown[0]], "t1"), t(0))
            .unwrap();
        state.tick(t(1));
        assert_eq!(state.members.len(), 2);
        let k = &state.members[known[0]];
        assert_eq!(
            k.get("EMAIL"),
            Some(&format!("{}@members.example", known[0]))
        );
        assert_eq!(k.get("CAMPAIGN_TAG_1").map(String::as_str), Some("t1"));
        let u = &state.members[unknown[0]];
        assert_eq!(u.get("EMAIL"), None);
        assert_eq!(u.get("CAMPAIGN_TAG_1").map(String::as_str), Some("t1"));
        assert_eq!(state.members_without_email(t(1)), [unknown[0]]);
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
