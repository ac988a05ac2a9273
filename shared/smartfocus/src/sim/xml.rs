//! The XML the simulator speaks: `<response>` envelopes out, small request documents in.

use quick_xml::escape::escape;
use std::borrow::Cow;

const DECL: &str = r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?>"#;
const NS: &str = r#"xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#;

/// Escapes text for element content.
pub(crate) fn esc(s: &str) -> Cow<'_, str> {
    escape(s)
}

/// A success envelope holding one typed scalar in `<result>`.
pub(crate) fn result(xsi_type: &str, value: &str) -> String {
    results(xsi_type, std::iter::once(value))
}

/// A success envelope holding one `<result>` per value (lists of ids), possibly none.
pub(crate) fn results<'a>(xsi_type: &str, values: impl IntoIterator<Item = &'a str>) -> String {
    let mut inner = String::new();
    for value in values {
        inner.push_str(&format!(
            r#"<result xsi:type="{xsi_type}" {NS}>{}</result>"#,
            esc(value)
        ));
    }
    success(&inner)
}

/// A success envelope around already-serialised child elements.
pub(crate) fn success(inner: &str) -> String {
    format!(r#"{DECL}<response responseStatus="success">{inner}</response>"#)
}

/// The failure envelope served with HTTP 500 (or an injected status).
pub(crate) fn failed(description: &str, fields: &str, status: &str) -> String {
    format!(
        r#"{DECL}<response responseStatus="failed"><description>{}</description><fields>{}</fields><status>{}</status></response>"#,
        esc(description),
        esc(fields),
        esc(status)
    )
}

/// Serialises `<name>` with one child element per `(field, value)` pair, in order.
pub(crate) fn object(name: &str, fields: &[(&str, String)]) -> String {
    let mut out = format!("<{name}>");
    for (field, value) in fields {
        out.push_str(&format!("<{field}>{}</{field}>", esc(value)));
    }
    out.push_str(&format!("</{name}>"));
    out
}

/// A parsed request element: the shared tree (local names, namespace prefixes dropped, text
/// trimmed).
pub(crate) use espbridge_xml::{Element as Node, XmlError};

/// Parses a document and returns its root element.
pub(crate) fn parse(doc: &str) -> Result<Node, XmlError> {
    espbridge_xml::parse(doc.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_elements_entities_and_cdata() {
        let root = parse(
            r#"<?xml version="1.0"?><a><b>x &amp; y&#33;</b><c><![CDATA[<p>]]></c><d/><b>2</b></a>"#,
        )
        .unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.text_of("b"), Some("x & y!"));
        assert_eq!(root.text_of("c"), Some("<p>"));
        assert_eq!(root.text_of("d"), Some(""));
        assert_eq!(root.children_named("b").count(), 2);
    }

    #[test]
    fn rejects_unbalanced_documents() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn envelopes_escape_their_content() {
        let doc = result("xs:string", "a<b");
        let root = parse(&doc).unwrap();
        assert_eq!(root.text_of("result"), Some("a<b"));
        let doc = failed("bad & worse", "id", "X");
        let root = parse(&doc).unwrap();
        assert_eq!(root.text_of("description"), Some("bad & worse"));
        assert_eq!(root.text_of("status"), Some("X"));
    }
}
