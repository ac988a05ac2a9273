//! The XML the simulator speaks: `<response>` envelopes out, small request documents in.

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
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

/// A parsed element: enough structure for the request bodies the API takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Node {
    /// Local name (namespace prefix dropped).
    pub name: String,
    pub children: Vec<Node>,
    /// Concatenated text and CDATA directly inside this element, untrimmed.
    pub text: String,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Trimmed text of the first child called `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("malformed XML: {0}")]
pub(crate) struct XmlError(String);

/// Parses a document and returns its root element.
pub(crate) fn parse(doc: &str) -> Result<Node, XmlError> {
    let mut reader = Reader::from_str(doc);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| XmlError(e.to_string()))?;
        match event {
            Event::Start(start) => stack.push(Node {
                name: start.local_name().as_ref().to_owned(),
                ..Node::default()
            }),
            Event::Empty(start) => {
                let node = Node {
                    name: start.local_name().as_ref().to_owned(),
                    ..Node::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::End(_) => {
                let node = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::Text(text) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&data);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    _ => resolve_predefined_entity(&reference)
                        .ok_or_else(|| XmlError(format!("unknown entity &{};", &*reference)))?
                        .to_owned(),
                };
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&resolved);
                }
            }
            Event::Eof => return Err(XmlError("no root element".into())),
            _ => {}
        }
    }
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
        assert_eq!(root.child_text("b"), Some("x & y!"));
        assert_eq!(root.child_text("c"), Some("<p>"));
        assert_eq!(root.child_text("d"), Some(""));
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
        assert_eq!(root.child_text("result"), Some("a<b"));
        let doc = failed("bad & worse", "id", "X");
        let root = parse(&doc).unwrap();
        assert_eq!(root.child_text("description"), Some("bad & worse"));
        assert_eq!(root.child_text("status"), Some("X"));
    }
}
