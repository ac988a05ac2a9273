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

const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Namespace of the `apiccmd` SOAP operations (as in the recorded SOAP answers).
pub(crate) const CCMD_NS: &str = "http://api.service.apiccmd.emailvision.com/";

/// A SOAP 1.1 answer of `operation`: `inner` inside `ns2:{operation}Response`, the shape of
/// the recorded SOAP answers (`fixtures/soap_*`).
pub(crate) fn soap_success(operation: &str, inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body><ns2:{operation}Response xmlns:ns2="{CCMD_NS}">{inner}</ns2:{operation}Response></soap:Body></soap:Envelope>"#
    )
}

/// A SOAP fault (served with HTTP 500) carrying the failure triple in its `detail`, under
/// `ConnectionServiceException` for session and login failures, `CcmdServiceException`
/// otherwise (the WSDL's `ConnectionExceptionDetails` / `CcmdExceptionDetails`, S1).
pub(crate) fn soap_fault(description: &str, fields: &str, status: &str) -> String {
    let exception = if matches!(status, "CHECK_SESSION_FAILED" | "CONNECTION_FAILED") {
        "ConnectionServiceException"
    } else {
        "CcmdServiceException"
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>{d}</faultstring><detail><ns2:{exception} xmlns:ns2="{CCMD_NS}"><description>{d}</description><fields>{f}</fields><status>{s}</status></ns2:{exception}></detail></soap:Fault></soap:Body></soap:Envelope>"#,
        d = esc(description),
        f = esc(fields),
        s = esc(status),
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
        let doc = soap_fault("Your session <expired>", "token", "CHECK_SESSION_FAILED");
        let root = parse(&doc).unwrap();
        let detail = root
            .find(&|e| e.name == "ConnectionServiceException")
            .unwrap();
        assert_eq!(
            detail.text_of("description"),
            Some("Your session <expired>")
        );
        assert_eq!(detail.text_of("status"), Some("CHECK_SESSION_FAILED"));
        let doc = soap_success("getX", "<return>a&amp;b</return>");
        let root = parse(&doc).unwrap();
        let op = root.find(&|e| e.name == "getXResponse").unwrap();
        assert_eq!(op.namespace.as_deref(), Some(CCMD_NS));
        assert_eq!(op.text_of("return"), Some("a&b"));
    }
}
