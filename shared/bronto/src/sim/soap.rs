//! SOAP envelopes the simulator writes: response wrappers, `writeResult`, faults.

use espbridge_xml::Node;

/// Target namespace of the API (wrapper elements and `sessionHeader`).
pub(crate) const NS: &str = "http://api.bronto.com/v4";
pub(crate) const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// A call-level error: answered as a `soap:Fault` with `ApiException/errorCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiFault {
    pub code: i64,
    pub text: String,
}

impl ApiFault {
    pub fn new(code: i64, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }
    pub fn soap_request() -> Self {
        Self::new(
            107,
            "There was an error in your soap request. Please examine the request and try again.",
        )
    }
    pub fn bad_token() -> Self {
        Self::new(102, "Authentication failed for token.")
    }
    pub fn session() -> Self {
        Self::new(103, "Your session is invalid. Please log in again.")
    }
    pub fn empty_input() -> Self {
        Self::new(
            105,
            "You must specify at least one item in the input array.",
        )
    }
    pub fn too_many(max: usize) -> Self {
        Self::new(
            106,
            format!("Unable to verify parameter: at most {max} contacts per call"),
        )
    }
    pub fn parameter(what: &str) -> Self {
        Self::new(106, format!("Unable to verify parameter: {what}"))
    }
    pub fn rate_limited() -> Self {
        Self::new(
            101,
            "Rate limit exceeded: too many contacts in the last minute. Try again shortly.",
        )
    }
    pub fn unknown() -> Self {
        Self::new(
            101,
            "There was an unknown API error. Please try your request again shortly.",
        )
    }

    /// Codes about what the caller sent are `soap:Client`, the rest `soap:Server` (contract).
    fn faultcode(&self) -> &'static str {
        match self.code {
            102 | 104 | 105 | 106 | 110 => "soap:Client",
            _ => "soap:Server",
        }
    }
}

/// One item's outcome in a `writeResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Ok { id: String, is_new: bool },
    Err { code: i64, text: String },
}

impl Item {
    pub fn err(code: i64, text: impl Into<String>) -> Self {
        Self::Err {
            code,
            text: text.into(),
        }
    }
}

/// `<return>` of a write: failed indices in `errors`, then one `results` per item in input
/// order (no `id`/`isNew` on a failed item, as recorded).
pub(crate) fn write_result(items: &[Item]) -> Node {
    let errors = items
        .iter()
        .enumerate()
        .filter(|(_, item)| matches!(item, Item::Err { .. }))
        .map(|(index, _)| Node::text("errors", index.to_string()));
    let results = items.iter().map(|item| match item {
        Item::Ok { id, is_new } => Node::new("results")
            .child(Node::text("id", id.clone()))
            .child(Node::text("isNew", is_new.to_string()))
            .child(Node::text("isError", "false"))
            .child(Node::text("errorCode", "0")),
        Item::Err { code, text } => Node::new("results")
            .child(Node::text("isError", "true"))
            .child(Node::text("errorCode", code.to_string()))
            .child(Node::text("errorString", text.clone())),
    });
    Node::new("return")
        .children(errors)
        .children(results.collect::<Vec<_>>())
}

fn envelope(body: Node) -> Vec<u8> {
    let doc = Node::new("soap:Envelope")
        .attr("xmlns:soap", SOAP_NS)
        .child(Node::new("soap:Body").child(body));
    // Writing into memory only fails on a bug of the writer; answer a fixed fault then.
    doc.to_bytes().unwrap_or_else(|_| {
        br#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>101: unknown API error</faultstring></soap:Fault></soap:Body></soap:Envelope>"#.to_vec()
    })
}

/// `ns2:<op>Response` holding `returns`.
pub(crate) fn response(operation: &str, returns: Vec<Node>) -> Vec<u8> {
    envelope(
        Node::new(format!("ns2:{operation}Response"))
            .attr("xmlns:ns2", NS)
            .children(returns),
    )
}

/// `soap:Fault` with `faultstring` "CODE: text" and `detail/ns2:ApiException/errorCode`.
pub(crate) fn fault(fault: &ApiFault) -> Vec<u8> {
    envelope(
        Node::new("soap:Fault")
            .child(Node::text("faultcode", fault.faultcode()))
            .child(Node::text(
                "faultstring",
                format!("{}: {}", fault.code, fault.text),
            ))
            .child(
                Node::new("detail").child(
                    Node::new("ns2:ApiException")
                        .attr("xmlns:ns2", NS)
                        .child(Node::text("errorCode", fault.code.to_string())),
                ),
            ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_results_list_failed_indices_before_the_results() {
        let body = response(
            "addToList",
            vec![write_result(&[
                Item::Ok {
                    id: "L1".into(),
                    is_new: false,
                },
                Item::err(302, "Contact does not exist"),
            ])],
        );
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(
            "<return><errors>1</errors><results><id>L1</id><isNew>false</isNew><isError>false</isError><errorCode>0</errorCode></results><results><isError>true</isError><errorCode>302</errorCode><errorString>Contact does not exist</errorString></results></return>"
        ), "{text}");
    }

    #[test]
    fn faults_carry_the_code_in_the_string_and_the_detail() {
        let text = String::from_utf8(fault(&ApiFault::session())).unwrap();
        assert!(
            text.contains("<faultcode>soap:Server</faultcode>"),
            "{text}"
        );
        assert!(text.contains("<faultstring>103: Your session"), "{text}");
        assert!(text.contains("<errorCode>103</errorCode>"), "{text}");
        let client = String::from_utf8(fault(&ApiFault::empty_input())).unwrap();
        assert!(client.contains("soap:Client"), "{client}");
    }
}
