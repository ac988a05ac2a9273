//! Listing campaigns: the filter, the page and the cursor of [`CampaignStore::list`].
//!
//! Every adapter lists in one order, (state name, campaign id), because that is the order of
//! the DynamoDB indexes the listing reads (`gsi1`: `STATE#<state>` / `<id>`; `gsi2`:
//! `RUN#<run date>` / `<state>#<id>`). A page ends at a [`Position`]; the next page starts after
//! it. A position is only a place in that order, not a campaign: it stays valid when its
//! campaign changes state or a forged one names a campaign that never existed.
//!
//! Callers outside the process see the position as an opaque [`Cursor`]: bounded in length,
//! bound to the filter it was made for (a cursor of another filter is refused, not silently
//! misread) and checked when parsed, so a malformed one is a [`CursorError`], never a panic.
//!
//! [`CampaignStore::list`]: super::CampaignStore::list

use crate::campaign::{Campaign, State};
use crate::ids::{AccountId, CampaignId, EspKind, IdError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest page any adapter returns; callers ask for at most this.
pub const MAX_PAGE: usize = 100;

/// A run date, `YYYY-MM-DD`: the night a drop belongs to (its folder in the drop layout).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunDate(String);

impl RunDate {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        // Exactly ten characters: jiff also reads dates with more digits or signs.
        let ok = s.len() == 10 && jiff::civil::Date::strptime("%Y-%m-%d", s).is_ok();
        if !ok {
            return Err(IdError(format!(
                "run date must be a date as YYYY-MM-DD, got {:?}",
                crate::text::bounded(s, 32)
            )));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunDate {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}
impl From<RunDate> for String {
    fn from(d: RunDate) -> String {
        d.0
    }
}
impl fmt::Display for RunDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which campaigns to list; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignFilter {
    pub run_date: Option<RunDate>,
    pub state: Option<State>,
    pub esp: Option<EspKind>,
    pub account: Option<AccountId>,
}

impl CampaignFilter {
    pub fn matches(&self, c: &Campaign) -> bool {
        self.run_date
            .as_ref()
            .is_none_or(|d| d.as_str() == c.run_date)
            && self.state.is_none_or(|s| s == c.state)
            && self.esp.is_none_or(|e| c.esp == Some(e))
            && self
                .account
                .as_ref()
                .is_none_or(|a| c.account.as_ref() == Some(a))
    }

    /// What a cursor is bound to.
    fn fingerprint(&self) -> String {
        format!(
            "v1|{}|{}|{}|{}",
            self.run_date.as_ref().map_or("", RunDate::as_str),
            self.state.map_or("", State::as_str),
            self.esp.map_or("", EspKind::as_str),
            self.account.as_ref().map_or("", AccountId::as_str),
        )
    }
}

/// The states in listing order (by name).
pub fn states_in_order() -> Vec<State> {
    let mut states = State::ALL.to_vec();
    states.sort_by_key(|s| s.as_str());
    states
}

/// A place in the listing order: a page continues after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub state: State,
    pub id: CampaignId,
}

impl Position {
    pub fn of(c: &Campaign) -> Self {
        Self {
            state: c.state,
            id: c.id.clone(),
        }
    }

    /// `<state>#<id>`: the `gsi2` sort key, which orders as the listing does (no state name is
    /// a prefix of another, and `#` sorts below every id character).
    pub fn sort_key(&self) -> String {
        format!("{}#{}", self.state, self.id)
    }

    /// Whether `c` comes after this position in the listing order.
    pub fn is_before(&self, c: &Campaign) -> bool {
        (self.state.as_str(), self.id.as_str()) < (c.state.as_str(), c.id.as_str())
    }

    /// Where a listing of the one state `state` resumes after `after`.
    pub fn resume_in(after: Option<&Position>, state: State) -> Resume {
        match after {
            None => Resume::Start,
            Some(p) => match p.state.as_str().cmp(state.as_str()) {
                std::cmp::Ordering::Less => Resume::Start,
                std::cmp::Ordering::Equal => Resume::After(p.id.clone()),
                std::cmp::Ordering::Greater => Resume::Done,
            },
        }
    }
}

/// Where the listing of one state resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    Start,
    After(CampaignId),
    /// The position is past this state.
    Done,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CampaignPage {
    /// In listing order, at most the limit asked for.
    pub campaigns: Vec<Campaign>,
    /// Where the next page starts; `None` when the listing is complete. A page may be short
    /// (even empty) and still have a next one: an adapter reads a bounded amount per call.
    pub next: Option<Position>,
}

/// The longest cursor ever made (a 19-character state, a 64-character id and the filter's tag,
/// hex-encoded, plus the check) is 211 characters; anything longer is refused before it is read.
pub const MAX_CURSOR_LEN: usize = 240;

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor: longer than {MAX_CURSOR_LEN} characters")]
    TooLong,
    #[error("cursor: not a cursor this API made")]
    Malformed,
    #[error("cursor: made for other filters (keep run_date, state, esp and account as they were)")]
    OtherFilter,
}

/// A position as callers outside the process carry it: opaque text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// The cursor of `position` in the listing with `filter`.
    pub fn new(filter: &CampaignFilter, position: &Position) -> Self {
        let payload = format!(
            "{}/{}/{:08x}",
            position.state,
            position.id,
            filter_tag(filter)
        );
        Self(format!(
            "{}.{:016x}",
            hex(payload.as_bytes()),
            checksum(&payload)
        ))
    }

    /// The position `text` names, if it is a cursor of `filter`.
    pub fn parse(filter: &CampaignFilter, text: &str) -> Result<Position, CursorError> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(CursorError::TooLong);
        }
        let (payload_hex, check_hex) = text.split_once('.').ok_or(CursorError::Malformed)?;
        let payload = unhex(payload_hex)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(CursorError::Malformed)?;
        let check = (check_hex.len() == 16)
            .then(|| u64::from_str_radix(check_hex, 16).ok())
            .flatten()
            .ok_or(CursorError::Malformed)?;
        if checksum(&payload) != check {
            return Err(CursorError::Malformed);
        }
        let mut parts = payload.split('/');
        let (Some(state), Some(id), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CursorError::Malformed);
        };
        let state = State::parse(state).ok_or(CursorError::Malformed)?;
        let id = CampaignId::parse(id).map_err(|_| CursorError::Malformed)?;
        if tag != format!("{:08x}", filter_tag(filter)) {
            return Err(CursorError::OtherFilter);
        }
        Ok(Position { state, id })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checksum, not a signature: a cursor only names a place in a listing the caller may read
/// anyway, so one made by hand can do no harm; the check catches edits and truncation.
fn checksum(payload: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(payload.as_bytes())
}

/// Which filter a cursor belongs to.
fn filter_tag(filter: &CampaignFilter) -> u32 {
    // The low half of a 64-bit hash is as well spread as any 32 bits of it.
    xxhash_rust::xxh3::xxh3_64(filter.fingerprint().as_bytes()) as u32
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(state: Option<State>) -> CampaignFilter {
        CampaignFilter {
            run_date: Some(RunDate::parse("2026-11-24").unwrap()),
            state,
            ..Default::default()
        }
    }

    #[test]
    fn run_dates_are_checked() {
        assert!(RunDate::parse("2026-11-24").is_ok());
        for bad in [
            "2026-13-01",
            "2026-11-24x",
            "+2026-11-24",
            "",
            "26-11-24",
            "2026/11/24",
        ] {
            assert!(RunDate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cursor_round_trips_under_its_filter_only() {
        let p = Position {
            state: State::PartiallyScheduled,
            id: CampaignId::parse(&"z".repeat(64)).unwrap(),
        };
        let f = filter(None);
        let c = Cursor::new(&f, &p);
        assert!(c.as_str().len() <= MAX_CURSOR_LEN, "{}", c.as_str().len());
        assert_eq!(Cursor::parse(&f, c.as_str()), Ok(p.clone()));
        assert_eq!(
            Cursor::parse(&filter(Some(State::Failed)), c.as_str()),
            Err(CursorError::OtherFilter)
        );
    }

    #[test]
    fn malformed_cursors_are_refused_without_panic() {
        let f = filter(None);
        let good = Cursor::new(
            &f,
            &Position {
                state: State::Failed,
                id: CampaignId::parse("c-1").unwrap(),
            },
        );
        let mut edited = good.as_str().to_owned();
        edited.replace_range(0..2, "67");
        let long = "a".repeat(MAX_CURSOR_LEN + 1);
        for bad in [
            "",
            ".",
            "zz.0000000000000000",
            "abc.0000000000000000",
            "é.0000000000000000",
            "6661696c6564.123",
            edited.as_str(),
            "6661696c65642f632d31.ffffffffffffffff",
            "éé.éééééééééééééééé",
        ] {
            assert_eq!(Cursor::parse(&f, bad), Err(CursorError::Malformed), "{bad}");
        }
        assert_eq!(Cursor::parse(&f, &long), Err(CursorError::TooLong));
    }

    #[test]
    fn states_list_in_name_order_and_resume_by_state() {
        let names: Vec<_> = states_in_order().iter().map(|s| s.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let at = Position {
            state: State::Failed,
            id: CampaignId::parse("m").unwrap(),
        };
        assert_eq!(
            Position::resume_in(Some(&at), State::Completed),
            Resume::Done
        );
        assert_eq!(
            Position::resume_in(Some(&at), State::Scheduled),
            Resume::Start
        );
        assert_eq!(
            Position::resume_in(Some(&at), State::Failed),
            Resume::After(at.id.clone())
        );
        // The gsi2 sort key orders as the listing does.
        let key = |s: State, id: &str| {
            Position {
                state: s,
                id: CampaignId::parse(id).unwrap(),
            }
            .sort_key()
        };
        assert!(key(State::Failed, "a-b") < key(State::Failed, "a-b0"));
        assert!(key(State::Collecting, "zzz") < key(State::Completed, "a"));
    }
}
