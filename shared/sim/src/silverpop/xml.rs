//! The XML the XML API speaks: a small element tree for requests, envelope writers for answers.

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use std::borrow::Cow;

/// Escapes text for element content or attribute values.
pub(crate) fn esc(s: &str) -> Cow<'_, str> {
    escape(s)
}

/// Wraps text in CDATA as the real service does for names and subjects; a `]]>` inside is split.
pub(crate) fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

/// A success envelope around already-serialised RESULT fields.
pub(crate) fn success(fields: &str) -> String {
    format!("<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS>{fields}</RESULT></Body></Envelope>")
}

/// The documented fault shape: `SUCCESS=false` beside a `Fault` with `detail/error/errorid`.
pub(crate) fn fault(errorid: i64, class: &str, message: &str) -> String {
    format!(
        "<Envelope><Body><RESULT><SUCCESS>false</SUCCESS></RESULT><Fault><Request/><FaultCode/>\
         <FaultString>{}</FaultString><detail><error><errorid>{errorid}</errorid><module/>\
         <class>{}</class><method/></error></detail></Fault></Body></Envelope>",
        cdata(message),
        esc(class)
    )
}

/// `<name>value</name>` with the value escaped.
pub(crate) fn el(name: &str, value: impl std::fmt::Display) -> String {
    format!("<{name}>{}</{name}>", esc(&value.to_string()))
}

/// A parsed element with its attributes, children and direct text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
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

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A presence flag (`<SEND_HTML/>`): true when present unless its text is false/0.
    pub fn flag(&self, name: &str) -> bool {
        self.child_text(name)
            .is_some_and(|t| !matches!(t.to_ascii_lowercase().as_str(), "false" | "0"))
    }

    /// Re-serialises the element (used to echo CRITERIA back in GetQuery).
    pub fn to_xml(&self) -> String {
        let mut out = format!("<{}", self.name);
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {k}=\"{}\"", esc(v)));
        }
        out.push('>');
        if self.children.is_empty() {
            out.push_str(&esc(self.text.trim()));
        }
        for child in &self.children {
            out.push_str(&child.to_xml());
        }
        out.push_str(&format!("</{}>", self.name));
        out
    }
}

#[derive(Debug, thiserror::Error)]
#[error("malformed XML: {0}")]
pub(crate) struct XmlError(String);

fn start_node(start: &BytesStart<'_>) -> Result<Node, XmlError> {
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError(e.to_string()))?;
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| XmlError(e.to_string()))?;
        attrs.push((attr.key.as_ref().to_owned(), value.into_owned()));
    }
    Ok(Node {
        name: start.name().as_ref().to_owned(),
        attrs,
        ..Node::default()
    })
}

/// Parses a document and returns its root element; trailing content after the root is ignored.
pub(crate) fn parse(doc: &str) -> Result<Node, XmlError> {
    let mut reader = Reader::from_str(doc);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| XmlError(e.to_string()))?;
        match event {
            Event::Start(start) => stack.push(start_node(&start)?),
            Event::Empty(start) => {
                let node = start_node(&start)?;
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
                        .ok_or_else(|| XmlError("unknown entity".into()))?
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
    fn parses_attributes_entities_cdata_and_round_trips_criteria() {
        let root =
            parse(r#"<?xml version="1.0"?><a><C name="x&amp;y"><![CDATA[<p>]]></C><F/></a>"#)
                .unwrap();
        let c = root.child("C").unwrap();
        assert_eq!(c.attr("name"), Some("x&y"));
        assert_eq!(c.text, "<p>");
        assert!(root.flag("F"));
        assert!(!root.flag("G"));
        let again = parse(&root.to_xml()).unwrap();
        assert_eq!(again.child("C").unwrap().text, "<p>");
    }

    #[test]
    fn rejects_unbalanced_documents_and_escapes_faults() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("").is_err());
        let doc = parse(&fault(51, "SP.API", "a ]]> b")).unwrap();
        let body = doc.child("Body").unwrap();
        assert_eq!(
            body.child("Fault").unwrap().child_text("FaultString"),
            Some("a ]]> b")
        );
    }
}
