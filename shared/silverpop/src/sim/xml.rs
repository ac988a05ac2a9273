//! The XML the XML API speaks: a small element tree for requests, envelope writers for answers.

use quick_xml::escape::escape;
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

/// A parsed request element: the shared tree (local names, text trimmed).
pub(crate) use espbridge_xml::{Element as Node, XmlError};

/// Parses a document and returns its root element; trailing content after the root is ignored.
pub(crate) fn parse(doc: &str) -> Result<Node, XmlError> {
    espbridge_xml::parse(doc.as_bytes())
}

/// What the XML API reads from a request element beyond the shared tree.
pub(crate) trait NodeExt {
    /// A presence flag (`<SEND_HTML/>`): true when present unless its text is false/0.
    fn flag(&self, name: &str) -> bool;
    /// Re-serialises the element (used to echo CRITERIA back in GetQuery).
    fn to_xml(&self) -> String;
}

impl NodeExt for Node {
    fn flag(&self, name: &str) -> bool {
        self.text_of(name)
            .is_some_and(|t| !matches!(t.to_ascii_lowercase().as_str(), "false" | "0"))
    }

    fn to_xml(&self) -> String {
        let mut out = format!("<{}", self.name);
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {k}=\"{}\"", esc(v)));
        }
        out.push('>');
        if self.children.is_empty() {
            out.push_str(&esc(&self.text));
        }
        for child in &self.children {
            out.push_str(&child.to_xml());
        }
        out.push_str(&format!("</{}>", self.name));
        out
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
            body.child("Fault").unwrap().text_of("FaultString"),
            Some("a ]]> b")
        );
    }
}
