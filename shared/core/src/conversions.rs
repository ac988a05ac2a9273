//! Conversions drops: where they live in the drop bucket and what a row is. Pure: no I/O (the
//! attribution itself is [`crate::service::conversions`]).
//!
//! # Contract
//!
//! A conversions file is CSV (UTF-8, header row, RFC 4180 quoting, BOM and CRLF accepted),
//! `.csv` or `.csv.gz`. Its header names at least `customer_id`, `amount` and `timestamp`, in any
//! order; other columns are ignored. Per row:
//! - `customer_id`: the audience's customer id, under the same rules as an audience row;
//! - `amount`: a decimal number, finite and `>= 0` (refunds are not netted here);
//! - `timestamp`: RFC 3339 with an offset (`2026-11-26T10:00:00+01:00` or `...Z`).
//!
//! A file is referenced in one of two ways:
//! - by campaign: `campaigns/<run date>/<campaign id>/*conversions.csv[.gz]` (the name ends
//!   with `conversions.csv`, so the bucket's notification can select exactly these files with
//!   a suffix filter), attributed to that campaign only;
//! - by date: `conversions/<YYYY-MM-DD>/<name>.csv[.gz]`, attributed to every campaign whose send
//!   time falls on one of the 7 days before the file's date or on that date (UTC days).
//!
//! A conversion counts for a campaign when `send_at <= timestamp < send_at + 7 days`
//! ([`CONVERSIONS_WINDOW_DAYS`]).
//!
//! Bad rows never stop a file: each is counted and a few are sampled by file, line and reason
//! (never by content). A header lacking a required column makes the whole file unreadable; that
//! is reported as [`HeaderError`], naming the file's columns that are missing.
//!
//! UNCERTAIN: a name ending in `conversions.csv` or `conversions.csv.gz` in a campaign folder is
//! always a conversions file, so an audience file may not be named so (the README reserves such
//! names). By-date files use UTC calendar days for "the 7 days before the file's date".

use crate::audience::rows::check_customer_id;
use crate::audience::scan::{BadRecord, RecordView};
use crate::ids::CampaignId;
use jiff::Timestamp;
use jiff::civil::Date;
use std::fmt;

/// Days after the send during which a conversion is attributed to the campaign.
pub const CONVERSIONS_WINDOW_DAYS: u32 = 7;

/// Top-level folder of conversions referenced by date.
pub const BY_DATE_ROOT: &str = "conversions";

/// The three columns every conversions file must name.
pub const REQUIRED_COLUMNS: [&str; 3] = ["customer_id", "amount", "timestamp"];

/// How a conversions file is referenced, read from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversionsPath {
    /// `campaigns/<run date>/<campaign id>/*conversions.csv[.gz]`.
    ByCampaign {
        run_date: String,
        campaign_id: CampaignId,
    },
    /// `conversions/<YYYY-MM-DD>/<name>.csv[.gz]`.
    ByDate { date: Date },
}

impl ConversionsPath {
    /// `None` for any key that is not a conversions file of either layout (manifests, audience
    /// files, rejects reports, malformed dates or ids).
    pub fn parse(key: &str) -> Option<Self> {
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["campaigns", run_date, campaign, file]
                if file.ends_with("conversions.csv") || file.ends_with("conversions.csv.gz") =>
            {
                parse_date(run_date)?;
                Some(Self::ByCampaign {
                    run_date: (*run_date).to_owned(),
                    campaign_id: CampaignId::parse(campaign).ok()?,
                })
            }
            [root, date, file] if *root == BY_DATE_ROOT && is_csv_name(file) => {
                Some(Self::ByDate {
                    date: parse_date(date)?,
                })
            }
            _ => None,
        }
    }
}

/// A non-empty name before a `.csv` or `.csv.gz` extension.
fn is_csv_name(name: &str) -> bool {
    let stem = name
        .strip_suffix(".csv.gz")
        .or_else(|| name.strip_suffix(".csv"));
    stem.is_some_and(|s| !s.is_empty())
}

fn parse_date(s: &str) -> Option<Date> {
    Date::strptime("%Y-%m-%d", s).ok()
}

/// Whether a conversion at `at` counts for a campaign sent at `send_at`.
pub fn in_window(send_at: Timestamp, at: Timestamp) -> bool {
    let days = i64::from(CONVERSIONS_WINDOW_DAYS);
    match send_at.checked_add(jiff::SignedDuration::from_hours(24 * days)) {
        Ok(end) => send_at <= at && at < end,
        Err(_) => false,
    }
}

/// Whether a campaign sent at `send_at` is concerned by a by-date file of `date`: sent on one of
/// the [`CONVERSIONS_WINDOW_DAYS`] days before `date`, or on `date` (UTC).
pub fn sent_in_date_window(send_at: Timestamp, date: Date) -> bool {
    let sent = jiff::tz::TimeZone::UTC.to_datetime(send_at).date();
    match date.checked_sub(jiff::Span::new().days(i64::from(CONVERSIONS_WINDOW_DAYS))) {
        Ok(first) => first <= sent && sent <= date,
        Err(_) => false,
    }
}

/// A header lacking required columns: the file cannot be read. The message names the missing
/// columns and counts the others without naming them: a file without a header row would have
/// its first customer's data there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("header lacks column(s) {} ({found} columns found)", quoted(.missing))]
pub struct HeaderError {
    pub missing: Vec<String>,
    pub found: usize,
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the required columns sit in a file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversionsHeader {
    pub width: usize,
    pub customer_id: usize,
    pub amount: usize,
    pub timestamp: usize,
}

impl ConversionsHeader {
    pub fn new(header: &[&str]) -> Result<Self, HeaderError> {
        let find = |name: &str| header.iter().position(|h| h.trim() == name);
        let found: Vec<Option<usize>> = REQUIRED_COLUMNS.iter().map(|c| find(c)).collect();
        match found.as_slice() {
            [Some(customer_id), Some(amount), Some(timestamp)] => Ok(Self {
                width: header.len(),
                customer_id: *customer_id,
                amount: *amount,
                timestamp: *timestamp,
            }),
            _ => Err(HeaderError {
                missing: REQUIRED_COLUMNS
                    .iter()
                    .zip(&found)
                    .filter(|(_, i)| i.is_none())
                    .map(|(c, _)| (*c).to_owned())
                    .collect(),
                found: header.len(),
            }),
        }
    }
}

/// A valid conversion row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConversionRow<'r> {
    pub customer_id: &'r str,
    pub amount: f64,
    pub at: Timestamp,
}

/// Why a row was refused. Never carries the row's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    EmptyRow,
    Malformed(BadRecord),
    ColumnCount { expected: usize, found: usize },
    CustomerId(String),
    Amount,
    Timestamp,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::EmptyRow => f.write_str("empty row"),
            RowError::Malformed(b) => f.write_str(b.as_str()),
            RowError::ColumnCount { expected, found } => {
                write!(f, "expected {expected} columns, found {found}")
            }
            RowError::CustomerId(why) => f.write_str(why),
            RowError::Amount => f.write_str("amount is not a finite number >= 0"),
            RowError::Timestamp => f.write_str("timestamp is not RFC 3339 with an offset"),
        }
    }
}

/// Reads one data record under `header`.
pub fn parse_row<'r>(
    rec: &RecordView<'r>,
    header: &ConversionsHeader,
) -> Result<ConversionRow<'r>, RowError> {
    if rec.is_blank() {
        return Err(RowError::EmptyRow);
    }
    if rec.len() != header.width {
        return Err(RowError::ColumnCount {
            expected: header.width,
            found: rec.len(),
        });
    }
    let customer_id = rec.field(header.customer_id).unwrap_or("");
    check_customer_id(customer_id).map_err(|r| RowError::CustomerId(r.to_string()))?;
    let amount = parse_amount(rec.field(header.amount).unwrap_or(""))?;
    let at = parse_timestamp(rec.field(header.timestamp).unwrap_or(""))?;
    Ok(ConversionRow {
        customer_id,
        amount,
        at,
    })
}

fn parse_amount(s: &str) -> Result<f64, RowError> {
    match s.trim().parse::<f64>() {
        Ok(a) if a.is_finite() && a >= 0.0 => Ok(a),
        _ => Err(RowError::Amount),
    }
}

/// jiff's `Timestamp` parser takes RFC 3339 and refuses a civil time without an offset.
fn parse_timestamp(s: &str) -> Result<Timestamp, RowError> {
    s.trim().parse().map_err(|_| RowError::Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::scan::{CsvScanner, Step};

    type Parsed = Result<(String, f64, Timestamp), RowError>;

    /// Parses `csv` (header first) and returns each data row's result, by line.
    fn rows(csv: &str) -> Vec<(u64, Parsed)> {
        let mut sc = CsvScanner::new();
        sc.push(csv.as_bytes());
        sc.finish();
        let mut header = None;
        let mut out = Vec::new();
        loop {
            match sc.next_step() {
                Step::Record(r) => match &header {
                    None => {
                        let names: Vec<&str> = (0..r.len()).filter_map(|i| r.field(i)).collect();
                        header = Some(ConversionsHeader::new(&names).unwrap());
                    }
                    Some(h) => out.push((
                        r.line,
                        parse_row(&r, h).map(|x| (x.customer_id.to_owned(), x.amount, x.at)),
                    )),
                },
                Step::Bad { line, reason } => out.push((line, Err(RowError::Malformed(reason)))),
                Step::NeedMore | Step::End => break,
            }
        }
        out
    }

    #[test]
    fn rows_are_read_in_any_column_order_with_extra_columns() {
        let got = rows(
            "timestamp,store,amount,customer_id\n\
             2026-11-26T10:00:00+01:00,s1,12.50,C1\n\
             2026-11-26T09:00:00Z,s2,0,C2\n",
        );
        let t1: Timestamp = "2026-11-26T09:00:00Z".parse().unwrap();
        assert_eq!(got[0], (2, Ok(("C1".into(), 12.5, t1))));
        assert_eq!(got[1], (3, Ok(("C2".into(), 0.0, t1))));
    }

    #[test]
    fn bad_rows_say_why_without_content() {
        let got = rows(
            "customer_id,amount,timestamp\n\
             C1,-1,2026-11-26T10:00:00Z\n\
             C2,abc,2026-11-26T10:00:00Z\n\
             C3,NaN,2026-11-26T10:00:00Z\n\
             C4,inf,2026-11-26T10:00:00Z\n\
             C5,1,2026-11-26T10:00:00\n\
             C6,1,yesterday\n\
             ,1,2026-11-26T10:00:00Z\n\
             C8,1\n\
             \n",
        );
        let errs: Vec<(u64, RowError)> =
            got.into_iter().map(|(l, r)| (l, r.unwrap_err())).collect();
        assert_eq!(errs[0], (2, RowError::Amount));
        assert_eq!(errs[1], (3, RowError::Amount));
        assert_eq!(errs[2], (4, RowError::Amount));
        assert_eq!(errs[3], (5, RowError::Amount));
        assert_eq!(errs[4], (6, RowError::Timestamp), "no offset");
        assert_eq!(errs[5], (7, RowError::Timestamp));
        assert_eq!(
            errs[6],
            (8, RowError::CustomerId("empty customer id".into()))
        );
        assert_eq!(
            errs[7],
            (
                9,
                RowError::ColumnCount {
                    expected: 3,
                    found: 2
                }
            )
        );
        assert_eq!(errs[8], (10, RowError::EmptyRow));
        assert!(!errs[4].1.to_string().contains("C5"));
    }

    #[test]
    fn a_header_without_a_required_column_names_it() {
        let e = ConversionsHeader::new(&["customer_id", "value", "timestamp"]).unwrap_err();
        assert_eq!(e.missing, ["amount"]);
        assert_eq!(
            e.to_string(),
            "header lacks column(s) \"amount\" (3 columns found)"
        );
    }

    #[test]
    fn key_layout() {
        assert_eq!(
            ConversionsPath::parse("campaigns/2026-11-24/c1/conversions.csv"),
            Some(ConversionsPath::ByCampaign {
                run_date: "2026-11-24".into(),
                campaign_id: CampaignId::parse("c1").unwrap()
            })
        );
        assert!(matches!(
            ConversionsPath::parse("campaigns/2026-11-24/c1/week2-conversions.csv.gz"),
            Some(ConversionsPath::ByCampaign { .. })
        ));
        assert_eq!(
            ConversionsPath::parse("conversions/2026-11-30/shop.csv.gz"),
            Some(ConversionsPath::ByDate {
                date: Date::constant(2026, 11, 30)
            })
        );
        for not in [
            "campaigns/2026-11-24/c1/manifest.json",
            "campaigns/2026-11-24/c1/audience.csv",
            "campaigns/2026-11-24/c1/rejects.csv",
            "campaigns/2026-11-24/c1/conversions.json",
            "campaigns/2026-11-24/c1/conversions-week2.csv",
            "campaigns/2026-13-24/c1/conversions.csv",
            "campaigns/2026-11-24/c1/sub/conversions.csv",
            "conversions/2026-11-30/.csv",
            "conversions/2026-11-30/a/b.csv",
            "conversions/yesterday/shop.csv",
            "other/2026-11-30/shop.csv",
        ] {
            assert_eq!(ConversionsPath::parse(not), None, "{not}");
        }
    }

    #[test]
    fn windows() {
        let send: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(in_window(send, send));
        assert!(in_window(send, at("2026-12-02T07:59:59Z")));
        assert!(!in_window(send, at("2026-12-02T08:00:00Z")));
        assert!(!in_window(send, at("2026-11-25T07:59:59Z")));
        assert!(sent_in_date_window(send, Date::constant(2026, 11, 25)));
        assert!(sent_in_date_window(send, Date::constant(2026, 12, 2)));
        assert!(!sent_in_date_window(send, Date::constant(2026, 12, 3)));
        assert!(!sent_in_date_window(send, Date::constant(2026, 11, 24)));
    }
}
