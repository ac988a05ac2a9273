//! Property tests of Silverpop's answer reader (`wire::read_answer`) and of every reader of a
//! `RESULT`: arbitrary bytes, odd envelopes (Faults, `SUCCESS` spelt any way, known elements
//! with odd values beside unknown ones, huge values, references, CDATA, deep chains), random
//! documents, and the recorded answers damaged in a few places. No panic, and every error a
//! bounded text.
//!
//! The default case counts keep the suite fast; `PROPTEST_CASES=100000` runs more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../xml/tests/common/odd_xml.rs"]
mod odd_xml;

use espbridge_silverpop::wire::{self, Answer};
use odd_xml::{
    ERROR_MAX, XNode, bounded_error, cases, document, el, fixtures, leaf, mutated, tree, tree_sized,
};
use proptest::collection::vec;
use proptest::prelude::*;

const NAMES: &[&str] = &[
    "Envelope",
    "Body",
    "RESULT",
    "SUCCESS",
    "Fault",
    "FaultString",
    "FaultCode",
    "detail",
    "error",
    "errorid",
    "class",
    "SESSIONID",
    "SESSION_ENCODING",
    "MAILING_TEMPLATE",
    "MAILING_ID",
    "MAILING_NAME",
    "SUBJECT",
    "LAST_MODIFIED",
    "VISIBILITY",
    "HTMLBody",
    "TextBody",
    "SPAMScore",
    "SpamScore",
    "FAILURES",
    "FAILURE",
    "COLUMN",
    "LIST",
    "ID",
    "NAME",
    "IS_FOLDER",
    "JOB_ID",
    "JOB_STATUS",
    "SIZE",
    "Mailing",
    "MailingId",
    "ReportId",
    "MailingName",
    "ScheduledTS",
    "SentTS",
    "NumSent",
    "NumBounceHard",
    "NumBounceSoft",
    "NumUniqueOpen",
    "NumUniqueClick",
    "NumUnsubscribes",
    "NumGrossAbuse",
];
const ATTRS: &[&str] = &["failure_type", "description", "name"];
const TEXTS: &[&str] = &[
    "TRUE",
    "true",
    "Success",
    "false",
    "FALSE",
    "",
    "0",
    "1",
    "145",
    "50",
    "10",
    "-1",
    "12.5",
    "1e400",
    "NaN",
    "inf",
    "18446744073709551616",
    "WAITING",
    "RUNNING",
    "COMPLETE",
    "ERROR",
    "CANCELED",
    "cancelled",
    "Shared",
    "Private",
    "x",
    "s3ss10n",
    "01/02/2026 10:00:00 AM",
    "05/28/24 03:12 PM",
    "03/10/24 02:30 AM",
    "13/45/24 99:99 ZM",
];

fn subtree() -> impl Strategy<Value = XNode> {
    tree(NAMES, ATTRS, TEXTS)
}

fn small_subtree() -> impl Strategy<Value = XNode> {
    tree_sized(NAMES, ATTRS, TEXTS, 3, 8, true)
}

/// Elements that hold others.
const RECORDS: &[&str] = &[
    "MAILING_TEMPLATE",
    "LIST",
    "Mailing",
    "FAILURES",
    "FAILURE",
    "COLUMN",
];

/// A known element holding an odd value, a record of them, or a few odd elements.
fn field() -> impl Strategy<Value = XNode> {
    let value = || (prop::sample::select(NAMES), prop::sample::select(TEXTS));
    prop_oneof![
        8 => value().prop_map(|(n, t)| leaf(n, t)),
        4 => (prop::sample::select(RECORDS), vec(value(), 0..8))
            .prop_map(|(n, kids)| el(n, &[], kids.into_iter().map(|(k, t)| leaf(k, t)).collect())),
        1 => small_subtree(),
    ]
}

/// `Envelope/Body` holding a `RESULT`, a `Fault`, both, or neither.
fn envelope() -> impl Strategy<Value = XNode> {
    let text = prop_oneof![
        4 => prop::sample::select(TEXTS).prop_map(str::to_owned),
        1 => (1usize..100_000).prop_map(|n| "f".repeat(n)),
    ];
    let fault =
        (text, prop::sample::select(TEXTS), vec(field(), 0..3)).prop_map(|(t, id, extra)| {
            let error = el(
                "error",
                &[],
                vec![leaf("errorid", id), leaf("class", "SP.API")],
            );
            let mut kids = vec![leaf("FaultString", &t), el("detail", &[], vec![error])];
            kids.extend(extra);
            el("Fault", &[], kids)
        });
    let success = prop_oneof![
        3 => prop::sample::select(vec!["TRUE", "true", "Success", " success "]),
        1 => prop::sample::select(TEXTS),
    ];
    let result = (success, vec(field(), 0..10))
        .prop_map(|(ok, kids)| el("RESULT", &[], [vec![leaf("SUCCESS", ok)], kids].concat()));
    let root = prop_oneof![16 => Just("Envelope"), 1 => Just("envelope"), 1 => Just("x:Envelope")];
    let result = prop::option::weighted(0.9, result);
    let fault = prop::option::weighted(0.2, fault);
    (root, result, fault, vec(small_subtree(), 0..2)).prop_map(|(root, result, fault, extra)| {
        let body: Vec<XNode> = result.into_iter().chain(fault).chain(extra).collect();
        el(root, &[], vec![el("Body", &[], body)])
    })
}

/// Every reader, on whatever the answer is; errors must be bounded.
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    match wire::read_answer(body) {
        Ok(Answer::Success(r)) => {
            let _ = wire::LoginResult::from_result(&r);
            let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
            for t in wire::MailingTemplate::list(&r) {
                let _ = t.is_shared();
                if let Some(created) = t.last_modified_in(&zone) {
                    prop_assert!(created.parse::<jiff::Timestamp>().is_ok(), "{created}");
                }
            }
            let _ = wire::PreviewResult::from_result(&r);
            for f in wire::RowFailure::list(&r) {
                let _ = f.column("customer_id");
            }
            let _ = wire::ListRow::list(&r);
            let _ = wire::JobStatus::from_result(&r);
            let _ = wire::list_size(&r);
            let _ = wire::SentMailing::list(&r);
            let _ = wire::AggregateTracking::from_result(&r);
        }
        Ok(Answer::Failed(f)) => {
            let _ = (f.is_session_lost(), f.class, f.text.len());
        }
        Err(e) => bounded_error(&e.to_string())?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_bounded(body in vec(any::<u8>(), 0..512)) {
        check(&body)?;
    }

    #[test]
    fn odd_envelopes_never_panic_and_errors_are_bounded(body in document(envelope())) {
        check(&body)?;
    }

    #[test]
    fn random_documents_never_panic_and_errors_are_bounded(body in document(subtree())) {
        check(&body)?;
    }

    #[test]
    fn damaged_recorded_answers_never_panic_and_errors_are_bounded(
        body in mutated(fixtures(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))),
    ) {
        check(&body)?;
    }
}

/// An org time read in `zone` is RFC 3339 with the offset the zone has at that instant, and
/// names the wall time that was read.
fn check_org_time(text: &str) -> Result<(), TestCaseError> {
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
    if let Some(t) = wire::org_time(text, &zone) {
        let shown = wire::rfc3339(&t);
        let instant: jiff::Timestamp = shown.parse().map_err(|e| {
            TestCaseError::fail(format!("{text:?} → {shown:?} is not RFC 3339: {e}"))
        })?;
        prop_assert_eq!(instant, t.timestamp());
        let secs = zone.to_offset(instant).seconds();
        let sign = if secs < 0 { '-' } else { '+' };
        let offset = format!(
            "{sign}{:02}:{:02}",
            secs.abs() / 3600,
            secs.abs() % 3600 / 60
        );
        prop_assert_eq!(&shown[19..], offset.as_str(), "{:?} → {:?}", text, shown);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2048)))]

    #[test]
    fn org_times_never_panic_and_read_ones_are_rfc3339(
        text in prop_oneof![
            4 => concat!(
                "[0-9]{1,5}/[0-9]{1,5}/[0-9]{1,5} ",
                "[0-9]{1,3}:[0-9]{1,3}(:[0-9]{1,3})?( [AaPpXx][Mm])?"
            ),
            1 => ".{0,40}",
        ],
    ) {
        check_org_time(&text)?;
    }
}

/// The input that made "root is <...>" long: a huge root name.
#[test]
fn a_huge_root_name_gives_a_bounded_error() {
    let body = format!("<{}/>", "n".repeat(100_000));
    let e = wire::read_answer(body.as_bytes()).unwrap_err().to_string();
    assert!(e.len() <= ERROR_MAX, "{} bytes", e.len());
}
