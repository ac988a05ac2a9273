//! A small XML element tree shared by the XML and SOAP adapters and simulators.
//!
//! Documents are parsed into [`Element`]s (local names, with the namespace URI each element
//! resolves to, so SOAP code can check the namespace without caring about prefixes) and requests
//! are built as [`Node`]s written by quick-xml, so every value is escaped by the writer, never
//! concatenated.

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use quick_xml::{Writer, XmlVersion};
use std::borrow::Cow;
use std::io::Cursor;

/// The XML could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML: {0}")]
pub struct XmlError(pub String);

/// Deepest element nesting accepted (ESP answers nest a dozen levels).
pub const MAX_DEPTH: usize = 256;

fn xml_err(e: impl std::fmt::Display) -> XmlError {
    XmlError(e.to_string().chars().take(200).collect())
}

/// One parsed element: name, attributes, text (entities and CDATA resolved, trimmed), children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (prefix removed).
    pub name: String,
    /// Namespace URI the element's prefix (or the default namespace) resolves to.
    pub namespace: Option<String>,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// Text of the named child, if present and not empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }
    /// Text of the named child when the child is present, empty or not (`<A/>` gives `""`):
    /// for protocols where presence itself means something.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
    /// The first element (self included, depth first) for which `pred` holds.
    pub fn find(&self, pred: &dyn Fn(&Element) -> bool) -> Option<&Element> {
        if pred(self) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(pred))
    }
}

/// Parses a whole document into its root element.
pub fn parse(body: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(body).map_err(|_| XmlError("body is not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<(Element, String)> = Vec::new();
    let open = |ns: ResolveResult<'_>, e: &BytesStart<'_>| -> Result<Element, XmlError> {
        let name = e.local_name().into_inner().to_owned();
        // quick-xml is lenient about names (`<<a/>` opens an element named `<a`): refuse what
        // no XML name may hold.
        if name.is_empty() || name.contains(['<', '>', '&', '"', '\'', '=', '/']) {
            return Err(XmlError("an element name that is not an XML name".into()));
        }
        let namespace = match ns {
            ResolveResult::Bound(n) => Some(n.into_inner().to_owned()),
            // An undeclared prefix (seen in hand-made recordings) resolves to no namespace:
            // readers match local names, and a server that checks namespaces refuses it.
            ResolveResult::Unbound | ResolveResult::Unknown(_) => None,
        };
        let mut el = Element {
            name,
            namespace,
            ..Element::default()
        };
        for a in e.attributes() {
            let a = a.map_err(xml_err)?;
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(xml_err)?
                .into_owned();
            let key = a.key.local_name().into_inner().to_owned();
            el.attrs.push((key, value));
        }
        Ok(el)
    };
    let close = |(mut el, raw): (Element, String)| {
        el.text = raw.trim().to_owned();
        el
    };
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(xml_err)?;
        match event {
            Event::Start(e) => {
                // The tree is dropped, cloned and searched by recursion: a document nested
                // deeper than any ESP answer must be refused, not overflow the stack.
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError(format!(
                        "elements nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                stack.push((open(ns, &e)?, String::new()))
            }
            Event::Empty(e) => {
                let el = open(ns, &e)?;
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                let el = close(done);
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some((_, raw)) = stack.last_mut() {
                    raw.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(xml_err)? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::unescape(&format!("&{};", &*r))
                        .map_err(xml_err)?
                        .into_owned(),
                };
                if let Some((_, raw)) = stack.last_mut() {
                    raw.push_str(&resolved);
                }
            }
            Event::CData(c) => {
                if let Some((_, raw)) = stack.last_mut() {
                    raw.push_str(&c.xml10_content());
                }
            }
            Event::Eof => return Err(XmlError("document ended before its root closed".into())),
            _ => {}
        }
    }
}

/// An element of a request document. Text and attribute values are escaped when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    name: Cow<'static, str>,
    attrs: Vec<(Cow<'static, str>, String)>,
    text: Option<String>,
    children: Vec<Node>,
}

impl Node {
    /// An element with no content (written as `<NAME/>`: Silverpop's presence flags). A name
    /// may carry a prefix (`v4:login`); declare it with an `xmlns:` attribute.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            attrs: Vec::new(),
            text: None,
            children: Vec::new(),
        }
    }
    /// An element holding `text`.
    pub fn text(name: impl Into<Cow<'static, str>>, text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::new(name)
        }
    }
    pub fn attr(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.attrs.push((name.into(), value.into()));
        self
    }
    pub fn child(mut self, child: Node) -> Self {
        self.children.push(child);
        self
    }
    pub fn children(mut self, children: impl IntoIterator<Item = Node>) -> Self {
        self.children.extend(children);
        self
    }

    fn write(&self, w: &mut Writer<Cursor<Vec<u8>>>) -> Result<(), XmlError> {
        let mut start = BytesStart::new(self.name.as_ref());
        for (k, v) in &self.attrs {
            start.push_attribute((k.as_ref(), v.as_str()));
        }
        if self.text.is_none() && self.children.is_empty() {
            return w.write_event(Event::Empty(start)).map_err(xml_err);
        }
        w.write_event(Event::Start(start)).map_err(xml_err)?;
        if let Some(t) = &self.text {
            w.write_event(Event::Text(BytesText::new(t)))
                .map_err(xml_err)?;
        }
        for c in &self.children {
            c.write(w)?;
        }
        w.write_event(Event::End(BytesEnd::new(self.name.as_ref())))
            .map_err(xml_err)
    }

    /// The element as a document (no XML declaration).
    pub fn to_bytes(&self) -> Result<Vec<u8>, XmlError> {
        let mut w = Writer::new(Cursor::new(Vec::new()));
        self.write(&mut w)?;
        Ok(w.into_inner().into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_round_trip() {
        let value = r#"Tom & "Jerry" <b>'s</b> ]]> café"#;
        let body = Node::new("Envelope")
            .child(Node::new("ROW").child(Node::text("COLUMN", value).attr("name", "A&B\"<")))
            .to_bytes()
            .unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(!text.contains("<b>"), "{text}");
        let root = parse(&body).unwrap();
        let col = &root.children[0].children[0];
        assert_eq!(col.text, value);
        assert_eq!(col.attr("name"), Some("A&B\"<"));
    }

    #[test]
    fn empty_flags_are_self_closing() {
        let body = Node::new("X")
            .child(Node::new("SHARED"))
            .to_bytes()
            .unwrap();
        assert_eq!(String::from_utf8(body).unwrap(), "<X><SHARED/></X>");
    }

    #[test]
    fn cdata_and_entities_are_resolved() {
        let root = parse(b"<A><B><![CDATA[x < y]]></B><C>a &amp; b &#65;</C></A>").unwrap();
        assert_eq!(root.child_text("B"), Some("x < y"));
        assert_eq!(root.child_text("C"), Some("a & b A"));
    }

    #[test]
    fn namespaces_resolve_whatever_the_prefix() {
        let doc = br#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ns2:loginResponse xmlns:ns2="http://api.bronto.com/v4"><return>abc</return></ns2:loginResponse></soap:Body></soap:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Envelope");
        assert_eq!(
            root.namespace.as_deref(),
            Some("http://schemas.xmlsoap.org/soap/envelope/")
        );
        let op = &root.child("Body").unwrap().children[0];
        assert_eq!(op.name, "loginResponse");
        assert_eq!(op.namespace.as_deref(), Some("http://api.bronto.com/v4"));
        let ret = op.child("return").unwrap();
        assert_eq!(ret.namespace, None, "children are unqualified");
        assert_eq!(ret.text, "abc");
    }

    #[test]
    fn prefixed_names_are_written_as_given() {
        let body = Node::new("v4:login")
            .attr("xmlns:v4", "http://api.bronto.com/v4")
            .child(Node::text("apiToken", "a<b"))
            .to_bytes()
            .unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"<v4:login xmlns:v4="http://api.bronto.com/v4"><apiToken>a&lt;b</apiToken></v4:login>"#
        );
    }

    #[test]
    fn text_of_tells_an_empty_child_from_a_missing_one() {
        let root = parse(b"<A><B/><C> x </C></A>").unwrap();
        assert_eq!(root.text_of("B"), Some(""));
        assert_eq!(root.child_text("B"), None);
        assert_eq!(root.text_of("C"), Some("x"));
        assert_eq!(root.text_of("D"), None);
    }

    #[test]
    fn an_undeclared_prefix_has_no_namespace() {
        let root = parse(b"<x:A><B><C>1</C></B></x:A>").unwrap();
        assert_eq!((root.name.as_str(), root.namespace.as_deref()), ("A", None));
        assert_eq!(
            root.find(&|e| e.name == "C").map(|c| c.text.as_str()),
            Some("1")
        );
    }

    #[test]
    fn truncated_document_is_an_error() {
        assert!(parse(b"<A><B>").is_err());
    }
}
