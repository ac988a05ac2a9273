//! Property tests of the shared XML reader (`espbridge_xml::parse`), which every XML and SOAP
//! adapter runs on ESP answers: arbitrary bytes and odd documents (see `common/odd_xml.rs`). No
//! panic, a bounded error, and a tree whose text is trimmed.
//!
//! The default case counts keep the suite fast; `PROPTEST_CASES=100000` runs more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/odd_xml.rs"]
mod odd_xml;

use espbridge_xml::{Element, parse};
use odd_xml::{ERROR_MAX, XNode, bounded_error, cases, document, tree};
use proptest::collection::vec;
use proptest::prelude::*;

const NAMES: &[&str] = &["Envelope", "Body", "Fault", "RESULT", "response", "a", "b"];
const ATTRS: &[&str] = &["name", "id", "responseStatus"];
const TEXTS: &[&str] = &["true", "1", "x y", "", "  padded  "];

/// Every element of the tree, without recursion.
fn walk(root: &Element) -> usize {
    let mut stack = vec![root];
    let mut n = 0;
    while let Some(e) = stack.pop() {
        n += 1;
        assert_eq!(e.text, e.text.trim(), "text is trimmed");
        assert!(!e.name.contains(['<', '>', ':']), "local name {:?}", e.name);
        stack.extend(e.children.iter());
    }
    n
}

fn check(body: &[u8]) -> Result<(), TestCaseError> {
    match parse(body) {
        Ok(root) => {
            walk(&root);
            let _ = root.find(&|e| e.name == "Fault");
        }
        Err(e) => bounded_error(&e.to_string())?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_bounded(
        body in prop_oneof![
            vec(any::<u8>(), 0..512),
            vec(prop::sample::select(b"<>/=\"'&;#![]?-:abxmlns \n\xC3\xA9\xFF".to_vec()), 0..512),
        ],
    ) {
        check(&body)?;
    }

    #[test]
    fn odd_documents_never_panic_and_errors_are_bounded(
        body in document(tree(NAMES, ATTRS, TEXTS)),
    ) {
        check(&body)?;
    }
}

/// A document nested 60,000 levels deep (420 KB, far below the adapters' 32 MB body cap) is
/// refused (found here: it once parsed, and dropping the tree recursed once per level and
/// overflowed a 2 MiB stack, the size of tokio's worker threads, aborting the process).
#[test]
fn deeply_nested_documents_fail_instead_of_overflowing_the_stack() {
    let doc = XNode::Deep(60_000, Box::new(XNode::Raw(b"x".to_vec()))).to_bytes();
    let t = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || parse(&doc).map(|root| walk(&root)).is_ok())
        .unwrap();
    assert!(
        !t.join().unwrap(),
        "a 60,000-level document should be refused"
    );
}

/// The inputs that made errors long before `xml_err` cut quick-xml's messages (which quote
/// names and references): a close tag of another, huge name; a huge unknown entity.
#[test]
fn errors_quoting_huge_names_are_cut() {
    let long = "n".repeat(100_000);
    for doc in [
        format!("<a></{long}>"),
        format!("<{long}></a>"),
        format!("<a>&{long};</a>"),
        format!("<a>&#{};</a>", "9".repeat(100_000)),
    ] {
        let e = parse(doc.as_bytes()).unwrap_err().to_string();
        assert!(e.len() <= ERROR_MAX, "{} bytes", e.len());
    }
}

/// Found by the property above in a CI run: quick-xml opens an element named `<Envelope` for
/// `<<Envelope/>`; such a name is refused.
#[test]
fn a_name_holding_an_angle_bracket_is_refused() {
    let doc = b"<Envelope><Envelope><<Envelope/></Envelope></Envelope>";
    assert!(parse(doc).is_err());
    assert!(parse(b"<a><b>x</b></a>").is_ok());
}
