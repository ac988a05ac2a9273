//! Property tests of Bronto's SOAP answer reader (`wire::parse_response`) and of every reader of
//! a response element: arbitrary bytes, odd envelopes (Faults and `<op>Response`s holding unknown
//! elements, huge values, references, CDATA, deep chains, other namespaces), random documents,
//! and the recorded answers damaged in a few places. No panic, and every error a bounded text.
//!
//! The default case counts keep the suite fast; `PROPTEST_CASES=100000` runs more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../xml/tests/common/odd_xml.rs"]
mod odd_xml;

use espbridge_bronto::wire::{self, NS, ReadObject, Response, SOAP_NS};
use odd_xml::{
    ERROR_MAX, XNode, bounded_error, cases, document, el, fixtures, leaf, mutated, tree, tree_sized,
};
use proptest::collection::vec;
use proptest::prelude::*;

const NAMES: &[&str] = &[
    "Envelope",
    "Header",
    "Body",
    "Fault",
    "faultcode",
    "faultstring",
    "detail",
    "ApiException",
    "errorCode",
    "errorString",
    "return",
    "results",
    "errors",
    "id",
    "isNew",
    "isError",
    "name",
    "label",
    "activeCount",
    "status",
    "parentId",
    "messageFolderId",
    "content",
    "type",
    "subject",
    "numSends",
    "numDeliveries",
    "numBounces",
    "uniqOpens",
    "uniqClicks",
    "numUnsubscribesByPrefs",
    "numUnsubscribesByComplaint",
    "start",
    "messageId",
    "fromEmail",
    "fromName",
    "replyEmail",
    "recipients",
    "deliveryType",
    "loginResponse",
];
const ATTRS: &[&str] = &["xsi:type", "xsi:nil", "id"];
const TEXTS: &[&str] = &[
    "true",
    "false",
    "0",
    "1",
    "302",
    "101: Rate limit exceeded",
    "116",
    "12.0",
    "-1",
    "1e400",
    "NaN",
    "18446744073709551616",
    "soap:Server",
    "list",
    "selected",
    "ineligible",
    "html",
    "text",
    "2026-11-25T08:30:00.000Z",
    "x",
    "0a1b2c3d",
];
const OPS: &[&str] = &[
    "login",
    "addToList",
    "readLists",
    "readDeliveries",
    "readMessages",
    "readMessageFolders",
    "addLists",
    "deleteLists",
    "addDeliveries",
];

fn subtree() -> impl Strategy<Value = XNode> {
    tree(NAMES, ATTRS, TEXTS)
}

/// A few odd elements, to put beside the known ones.
fn small_subtree() -> impl Strategy<Value = XNode> {
    tree_sized(NAMES, ATTRS, TEXTS, 3, 8, true)
}

/// A `return` (or another child of the response): known fields and random ones.
fn response_child() -> impl Strategy<Value = XNode> {
    let field = prop_oneof![
        8 => (prop::sample::select(NAMES), prop::sample::select(TEXTS)).prop_map(|(n, t)| leaf(n, t)),
        1 => small_subtree(),
    ];
    let name = prop::sample::select(vec!["return", "return", "return", "results", "other"]);
    (name, vec(field, 0..12)).prop_map(|(n, children)| el(n, &[], children))
}

fn fault() -> impl Strategy<Value = XNode> {
    let code = prop_oneof![
        prop::sample::select(TEXTS).prop_map(str::to_owned),
        "[0-9]{0,25}"
    ];
    let text = prop_oneof![
        4 => prop::sample::select(TEXTS).prop_map(str::to_owned),
        1 => (1usize..100_000).prop_map(|n| "f".repeat(n)),
    ];
    (code, text, vec(small_subtree(), 0..2)).prop_map(|(code, text, extra)| {
        let mut children = vec![
            leaf("faultcode", "soap:Server"),
            leaf("faultstring", &text),
            el(
                "detail",
                &[],
                vec![el("ApiException", &[], vec![leaf("errorCode", &code)])],
            ),
        ];
        children.extend(extra);
        el("soap:Fault", &[], children)
    })
}

/// An envelope around an answer to `op` (or to another operation, or in another namespace).
fn envelope() -> impl Strategy<Value = (String, XNode)> {
    let op = prop::sample::select(OPS);
    let answered = prop_oneof![4 => Just(None), 1 => prop::sample::select(OPS).prop_map(Some)];
    let ns = prop_oneof![6 => Just(NS), 1 => Just("urn:other"), 1 => Just(SOAP_NS)];
    let body = (
        answered,
        ns,
        vec(response_child(), 0..6),
        fault(),
        subtree(),
        0..7u8,
    );
    let header = prop::option::weighted(0.2, small_subtree());
    (op, body, header, vec(small_subtree(), 0..2)).prop_map(
        |(op, (answered, ns, children, fault, other, pick), header, extra)| {
            let name = format!("ns2:{}Response", answered.unwrap_or(op));
            let first = match pick {
                0 => fault,
                1 => other,
                _ => el(&name, &[("xmlns:ns2", ns)], children),
            };
            let mut body = vec![first];
            body.extend(extra);
            let mut env = Vec::new();
            if let Some(h) = header {
                env.push(el("soap:Header", &[], vec![h]));
            }
            env.push(el("soap:Body", &[], body));
            (
                op.to_owned(),
                el("soap:Envelope", &[("xmlns:soap", SOAP_NS)], env),
            )
        },
    )
}

/// Every reader, on whatever the answer is; errors must be bounded.
fn check(body: &[u8], op: &str) -> Result<(), TestCaseError> {
    match wire::parse_response(body, op) {
        Ok(Response::Ok(r)) => {
            let _ = wire::returns(&r);
            let _ = wire::session_id(&r);
            let items = wire::write_results(&r);
            for (i, item) in items.iter().enumerate() {
                prop_assert_eq!(item.index, i);
            }
            let _ = wire::MessageFolder::list(&r);
            for m in wire::Message::list(&r) {
                let _ = (m.content_of("html"), m.subject());
            }
            let _ = wire::MailList::list(&r);
            for d in wire::Delivery::list(&r) {
                let _ = d.selects_list("x");
            }
        }
        Ok(Response::Fault(f)) => {
            let _ = (f.code, f.fault_code.len(), f.text.len());
        }
        Err(e) => bounded_error(&e.to_string())?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_bounded(
        body in vec(any::<u8>(), 0..512),
        op in prop::sample::select(OPS),
    ) {
        check(&body, op)?;
    }

    #[test]
    fn odd_envelopes_never_panic_and_errors_are_bounded(
        (op, body) in envelope().prop_flat_map(|(op, root)| (Just(op), document(Just(root)))),
    ) {
        check(&body, &op)?;
    }

    #[test]
    fn random_documents_never_panic_and_errors_are_bounded(
        body in document(subtree()),
        op in prop::sample::select(OPS),
    ) {
        check(&body, op)?;
    }

    #[test]
    fn damaged_recorded_answers_never_panic_and_errors_are_bounded(
        body in mutated(fixtures(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))),
        op in prop::sample::select(OPS),
    ) {
        check(&body, op)?;
    }
}

/// The input that made `UnexpectedOperation` long: a huge element name where the response goes.
#[test]
fn an_unexpected_element_with_a_huge_name_gives_a_bounded_error() {
    let name = "n".repeat(100_000);
    let body = format!(
        r#"<soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body><{name}/></soap:Body></soap:Envelope>"#
    );
    let e = wire::parse_response(body.as_bytes(), "login")
        .unwrap_err()
        .to_string();
    assert!(e.len() <= ERROR_MAX, "{} bytes", e.len());
}
