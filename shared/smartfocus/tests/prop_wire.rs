//! Property tests of SmartFocus's answer reader (`wire::Answer::from_xml`) and of every reader of
//! a payload: arbitrary bytes, odd REST `<response>`s and SOAP envelopes (failures, Faults,
//! known elements with odd values beside unknown ones, huge values, references, CDATA, deep
//! chains), random documents, and the recorded answers damaged in a few places. No panic, and
//! every error a bounded text.
//!
//! The default case counts keep the suite fast; `PROPTEST_CASES=100000` runs more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../xml/tests/common/odd_xml.rs"]
mod odd_xml;

use espbridge_smartfocus::wire::{self, Answer};
use odd_xml::{
    ERROR_MAX, XNode, bounded_error, cases, document, el, fixtures, leaf, mutated, tree, tree_sized,
};
use proptest::collection::vec;
use proptest::prelude::*;

const NAMES: &[&str] = &[
    "response",
    "result",
    "return",
    "Envelope",
    "Body",
    "Fault",
    "faultstring",
    "detail",
    "status",
    "description",
    "fields",
    "id",
    "name",
    "subject",
    "type",
    "createDate",
    "uploadStatus",
    "details",
    "lastUploads",
    "source",
    "nbSelected",
    "nbFiltered",
    "nbDelivered",
    "nbBounce",
    "nbHardBounce",
    "nbSoftBounce",
    "nbUniqueOpen",
    "nbUniqueClick",
    "nbUnsubscribe",
    "nbComplaint",
    "message",
    "campaign",
    "segment",
];
/// Elements that hold others.
const RECORDS: &[&str] = &[
    "result",
    "return",
    "message",
    "campaign",
    "uploadStatus",
    "lastUploads",
    "detail",
];
const ATTRS: &[&str] = &["responseStatus", "xsi:type", "xsi:nil"];
const TEXTS: &[&str] = &[
    "success",
    "failed",
    "",
    "0",
    "1",
    "42 43 44",
    "-1",
    "12.5",
    "1e400",
    "NaN",
    "inf",
    "18446744073709551616",
    "DONE",
    "DONE WITH ERRORS",
    "ERROR",
    "FAILURE",
    "PENDING",
    "Editable",
    "CHECK_SESSION_FAILED",
    "SESSION_RETRIEVING_FAILED",
    "GET_FLATUPLOAD_FAILED",
    "token",
    "x",
];

fn subtree() -> impl Strategy<Value = XNode> {
    tree(NAMES, ATTRS, TEXTS)
}

fn small_subtree() -> impl Strategy<Value = XNode> {
    tree_sized(NAMES, ATTRS, TEXTS, 3, 8, true)
}

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

/// A REST `<response>` (success or failure), or a SOAP envelope around a `*Response` or a Fault.
fn answer() -> impl Strategy<Value = XNode> {
    let status = prop_oneof![
        4 => Just(Some("success")),
        2 => Just(Some("failed")),
        1 => Just(None),
        1 => prop::sample::select(TEXTS).prop_map(Some),
    ];
    let long = prop_oneof![
        4 => prop::sample::select(TEXTS).prop_map(str::to_owned),
        1 => (1usize..100_000).prop_map(|n| "d".repeat(n)),
    ];
    let rest = (status, long.clone(), vec(field(), 0..10)).prop_map(|(status, text, kids)| {
        let attrs: Vec<(&str, &str)> = status.map(|s| ("responseStatus", s)).into_iter().collect();
        let failure = vec![
            leaf("status", "GET_FLATUPLOAD_FAILED"),
            leaf("description", &text),
        ];
        let kids = if status == Some("failed") {
            [failure, kids].concat()
        } else {
            kids
        };
        el("response", &attrs, kids)
    });
    let fault = (long, vec(field(), 0..3)).prop_map(|(text, extra)| {
        let detail = el(
            "detail",
            &[],
            vec![el(
                "ServiceException",
                &[],
                vec![
                    leaf("status", "CHECK_SESSION_FAILED"),
                    leaf("description", &text),
                ],
            )],
        );
        el(
            "soap:Fault",
            &[],
            [vec![leaf("faultstring", &text), detail], extra].concat(),
        )
    });
    let response = vec(field(), 0..10).prop_map(|kids| el("ns2:getMessageResponse", &[], kids));
    let soap = (
        prop_oneof![4 => response, 1 => fault, 1 => small_subtree()],
        vec(small_subtree(), 0..2),
    )
        .prop_map(|(first, extra)| {
            let ns = ("xmlns:soap", "http://schemas.xmlsoap.org/soap/envelope/");
            el(
                "soap:Envelope",
                &[ns],
                vec![el("soap:Body", &[], [vec![first], extra].concat())],
            )
        });
    prop_oneof![3 => rest, 2 => soap, 1 => small_subtree()]
}

/// Every reader, on whatever the answer is; errors must be bounded.
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    match Answer::from_xml(body) {
        Ok(Answer::Success(p)) => {
            let _ = wire::scalar(&p);
            let _ = wire::id_list(&p);
            let _ = wire::MessageInfo::from_payload(&p);
            let _ = wire::NamedObject::from_payload(&p);
            if let Some(u) = wire::UploadStatus::from_payload(&p) {
                let _ = u.state();
            }
            let _ = wire::last_uploads(&p);
            if let Some(page) = wire::SummaryPage::from_payload(&p) {
                let utc = jiff::tz::TimeZone::UTC;
                for m in &page.items {
                    let _ = m.created.as_deref().map(|c| wire::rfc3339_in(c, &utc));
                }
            }
            if let Some(s) = wire::Snapshot::from_payload(&p) {
                let c = s.counts();
                prop_assert!(c.sent >= c.delivered);
            }
        }
        Ok(Answer::Failed(f)) => {
            let _ = (f.status.len(), f.description.len(), f.fields.len());
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
    fn odd_answers_never_panic_and_errors_are_bounded(body in document(answer())) {
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

/// The input that made "unexpected root element <...>" long: a huge root name.
#[test]
fn a_huge_root_name_gives_a_bounded_error() {
    let body = format!("<{}/>", "n".repeat(100_000));
    let e = Answer::from_xml(body.as_bytes()).unwrap_err().to_string();
    assert!(e.len() <= ERROR_MAX, "{} bytes", e.len());
}
