//! Bronto's SOAP documents: request builders in the recorded envelope shape (`soapenv` and `v4`
//! prefixes, `sessionHeader` in the Header, the operation wrapper qualified, its children
//! unqualified) and parsers of responses: the operation's `return`s, `writeResult`s and Faults.

pub use espbridge_xml::{Element, Node, XmlError, parse};
use std::collections::BTreeSet;

/// Bronto's target namespace.
pub const NS: &str = "http://api.bronto.com/v4";
/// SOAP 1.1 envelope namespace.
pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// A response body that is not a SOAP answer of the expected operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("not a SOAP envelope")]
    NotEnvelope,
    #[error("SOAP envelope without a Body")]
    NoBody,
    #[error("expected <{expected}> in the v4 namespace, got <{got}>")]
    UnexpectedOperation { expected: String, got: String },
}

/// A SOAP Fault: a call-level error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `detail/ApiException/errorCode`, else the numeric prefix of `faultstring`.
    pub code: Option<u32>,
    /// `soap:Server` or `soap:Client` (prefix kept as sent).
    pub fault_code: String,
    pub text: String,
}

/// What a response body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The `<op>Response` wrapper.
    Ok(Element),
    Fault(Fault),
}

/// The request document: envelope, optional session header, the operation in the Body.
pub fn envelope(session_id: Option<&str>, operation: Node) -> Result<Vec<u8>, XmlError> {
    let mut env = Node::new("soapenv:Envelope")
        .attr("xmlns:soapenv", SOAP_NS)
        .attr("xmlns:v4", NS);
    if let Some(s) = session_id {
        env = env.child(
            Node::new("soapenv:Header")
                .child(Node::new("v4:sessionHeader").child(Node::text("sessionId", s))),
        );
    }
    let mut out = br#"<?xml version="1.0" encoding="UTF-8"?>"#.to_vec();
    out.extend(
        env.child(Node::new("soapenv:Body").child(operation))
            .to_bytes()?,
    );
    Ok(out)
}

/// Reads a response of operation `op`: a Fault (any HTTP status) or `<op>Response`.
pub fn parse_response(body: &[u8], op: &str) -> Result<Response, WireError> {
    let root = parse(body)?;
    if root.name != "Envelope" || root.namespace.as_deref() != Some(SOAP_NS) {
        return Err(WireError::NotEnvelope);
    }
    let body = root
        .children
        .iter()
        .find(|c| c.name == "Body")
        .ok_or(WireError::NoBody)?;
    let first = body
        .children
        .first()
        .ok_or_else(|| WireError::UnexpectedOperation {
            expected: format!("{op}Response"),
            got: "nothing".into(),
        })?;
    if first.name == "Fault" {
        return Ok(Response::Fault(read_fault(first)));
    }
    let expected = format!("{op}Response");
    if first.name != expected || first.namespace.as_deref() != Some(NS) {
        return Err(WireError::UnexpectedOperation {
            expected,
            got: espbridge_core::text::bounded(&first.name, 64),
        });
    }
    Ok(Response::Ok(first.clone()))
}

fn read_fault(f: &Element) -> Fault {
    let text = f.child_text("faultstring").unwrap_or("").to_owned();
    let detail_code = f
        .child("detail")
        .and_then(|d| d.child("ApiException"))
        .and_then(|e| e.child_text("errorCode"))
        .and_then(|c| c.parse().ok());
    let prefix_code = text
        .split_once(':')
        .and_then(|(p, _)| p.trim().parse().ok());
    Fault {
        code: detail_code.or(prefix_code),
        fault_code: f.child_text("faultcode").unwrap_or("").to_owned(),
        text,
    }
}

/// The `return` elements of a read (none when nothing matched).
pub fn returns(response: &Element) -> Vec<&Element> {
    response.children_named("return").collect()
}

/// An object a read returns, built from one `return` element.
pub trait ReadObject: Sized {
    /// `None` when the element lacks what identifies the object (its `id`).
    fn from_return(r: &Element) -> Option<Self>;
    /// Every object of a read's response.
    fn list(response: &Element) -> Vec<Self> {
        returns(response)
            .into_iter()
            .filter_map(Self::from_return)
            .collect()
    }
}

/// `login`'s session id.
pub fn session_id(response: &Element) -> Option<&str> {
    response.child_text("return")
}

/// One `results` item of a `writeResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult {
    /// Position of the input item.
    pub index: usize,
    pub id: Option<String>,
    pub is_new: bool,
    /// 0 on success.
    pub error_code: u32,
    pub error_string: Option<String>,
}

impl ItemResult {
    pub fn is_error(&self) -> bool {
        self.error_code != 0
    }
}

/// The items of a write's `return` (a `writeResult`): one per input item, in input order. An
/// item is failed when `errors` lists its index or it says so itself; a failed item without a
/// code gets code 1 so it can never pass for a success.
pub fn write_results(response: &Element) -> Vec<ItemResult> {
    let Some(ret) = response.child("return") else {
        return Vec::new();
    };
    let failed: BTreeSet<usize> = ret
        .children_named("errors")
        .filter_map(|e| e.text.parse().ok())
        .collect();
    ret.children_named("results")
        .enumerate()
        .map(|(index, r)| {
            let code: u32 = r
                .child_text("errorCode")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let is_error = failed.contains(&index) || r.child_text("isError") == Some("true");
            ItemResult {
                index,
                id: r.child_text("id").map(str::to_owned),
                is_new: r.child_text("isNew") == Some("true"),
                error_code: if is_error && code == 0 { 1 } else { code },
                error_string: r.child_text("errorString").map(str::to_owned),
            }
        })
        .collect()
}

fn text(e: &Element, name: &str) -> Option<String> {
    e.child_text(name).map(str::to_owned)
}

/// A `messageFolderObject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFolder {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
}

impl ReadObject for MessageFolder {
    fn from_return(r: &Element) -> Option<Self> {
        Some(Self {
            id: text(r, "id")?,
            name: text(r, "name").unwrap_or_default(),
            parent_id: text(r, "parentId"),
        })
    }
}

/// A `messageContentObject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// `html` or `text`.
    pub kind: String,
    pub subject: Option<String>,
    pub body: String,
}

/// A `messageObject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub name: String,
    pub status: Option<String>,
    pub folder_id: Option<String>,
    pub content: Vec<Content>,
}

impl ReadObject for Message {
    fn from_return(r: &Element) -> Option<Self> {
        Some(Self {
            id: text(r, "id")?,
            name: text(r, "name").unwrap_or_default(),
            status: text(r, "status"),
            folder_id: text(r, "messageFolderId"),
            content: r
                .children_named("content")
                .map(|c| Content {
                    kind: text(c, "type").unwrap_or_default(),
                    subject: text(c, "subject"),
                    body: c
                        .child("content")
                        .map(|b| b.text.clone())
                        .unwrap_or_default(),
                })
                .collect(),
        })
    }
}

/// The `status` of a message that may be sent: reference B.6 gives message `status` as
/// `active | delete | tmp` (`tmp`: a draft; `delete`: a deleted message), the WSDL's
/// `messageObject` carries it as `status`, and the recorded `readMessages` answer shows
/// `<status>active</status>`.
pub const MESSAGE_ACTIVE: &str = "active";

impl Message {
    /// Whether the message is `active` (see [`MESSAGE_ACTIVE`]): a draft (`tmp`), a deleted
    /// message (`delete`), a status the reference does not list, or none at all is not.
    pub fn is_active(&self) -> bool {
        self.status.as_deref() == Some(MESSAGE_ACTIVE)
    }

    /// The content of `kind` (`html` or `text`).
    pub fn content_of(&self, kind: &str) -> Option<&Content> {
        self.content.iter().find(|c| c.kind == kind)
    }

    /// The subject of the first content that has one.
    pub fn subject(&self) -> Option<&str> {
        self.content.iter().find_map(|c| c.subject.as_deref())
    }
}

/// A `mailListObject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailList {
    pub id: String,
    pub name: String,
    pub label: Option<String>,
    pub active_count: Option<u64>,
    pub status: Option<String>,
}

impl ReadObject for MailList {
    fn from_return(r: &Element) -> Option<Self> {
        Some(Self {
            id: text(r, "id")?,
            name: text(r, "name").unwrap_or_default(),
            label: text(r, "label"),
            active_count: r.child_text("activeCount").and_then(|c| c.parse().ok()),
            status: text(r, "status"),
        })
    }
}

/// A `deliveryRecipientObject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// `list`, `contact`, `segment`…
    pub kind: String,
    pub id: String,
    /// `selected` (include) or `ineligible` (exclude); absent means selected.
    pub delivery_type: Option<String>,
}

/// The counters of a `deliveryObject` this adapter reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub num_sends: u64,
    pub num_deliveries: u64,
    pub num_bounces: u64,
    pub uniq_opens: u64,
    pub uniq_clicks: u64,
    pub unsubscribes_by_prefs: u64,
    pub unsubscribes_by_complaint: u64,
}

/// A `deliveryObject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    /// As sent by Bronto (UTC `Z`).
    pub start: Option<String>,
    pub message_id: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
    pub from_email: Option<String>,
    pub from_name: Option<String>,
    pub reply_email: Option<String>,
    pub recipients: Vec<Recipient>,
    /// `None` while the delivery has no `numSends`.
    pub counts: Option<DeliveryCounts>,
}

/// A non-negative count; Bronto writes longs, but a double (`12.0`) is tolerated.
fn count(e: &Element, name: &str) -> Option<u64> {
    let t = e.child_text(name)?;
    t.parse::<u64>().ok().or_else(|| {
        t.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64)
    })
}

impl ReadObject for Delivery {
    fn from_return(r: &Element) -> Option<Self> {
        let counts = count(r, "numSends").map(|num_sends| DeliveryCounts {
            num_sends,
            num_deliveries: count(r, "numDeliveries").unwrap_or(0),
            num_bounces: count(r, "numBounces").unwrap_or(0),
            uniq_opens: count(r, "uniqOpens").unwrap_or(0),
            uniq_clicks: count(r, "uniqClicks").unwrap_or(0),
            unsubscribes_by_prefs: count(r, "numUnsubscribesByPrefs").unwrap_or(0),
            unsubscribes_by_complaint: count(r, "numUnsubscribesByComplaint").unwrap_or(0),
        });
        Some(Self {
            id: text(r, "id")?,
            start: text(r, "start"),
            message_id: text(r, "messageId"),
            status: text(r, "status"),
            kind: text(r, "type"),
            from_email: text(r, "fromEmail"),
            from_name: text(r, "fromName"),
            reply_email: text(r, "replyEmail"),
            recipients: r
                .children_named("recipients")
                .filter_map(|c| {
                    Some(Recipient {
                        kind: text(c, "type").unwrap_or_default(),
                        id: text(c, "id")?,
                        delivery_type: text(c, "deliveryType"),
                    })
                })
                .collect(),
            counts,
        })
    }
}

impl Delivery {
    /// Whether the delivery selects list `list_id` (not as an exclusion).
    pub fn selects_list(&self, list_id: &str) -> bool {
        self.recipients.iter().any(|r| {
            r.kind == "list"
                && r.id == list_id
                && r.delivery_type.as_deref().is_none_or(|t| t == "selected")
        })
    }
}

// ---- requests --------------------------------------------------------------------------------

fn op(name: &'static str) -> Node {
    Node::new(format!("v4:{name}"))
}

fn flag(name: &'static str, value: bool) -> Node {
    Node::text(name, if value { "true" } else { "false" })
}

/// A filter criterion `<field><operator>…</operator><value>…</value></field>` (stringValue or
/// dateValue).
pub fn criterion(field: &'static str, operator: &str, value: &str) -> Node {
    Node::new(field)
        .child(Node::text("operator", operator))
        .child(Node::text("value", value))
}

/// A filter criterion that is a plain id (`id`, `messageFolderId`, `messageId`).
pub fn id_criterion(field: &'static str, id: &str) -> Node {
    Node::text(field, id)
}

fn filter(criteria: Vec<Node>) -> Node {
    Node::new("filter").children(criteria)
}

pub fn login(api_token: &str) -> Node {
    op("login").child(Node::text("apiToken", api_token))
}

pub fn read_message_folders(criteria: Vec<Node>, page: u32) -> Node {
    op("readMessageFolders")
        .child(filter(criteria))
        .child(Node::text("pageNumber", page.to_string()))
}

pub fn read_messages(criteria: Vec<Node>, include_content: bool, page: u32) -> Node {
    op("readMessages")
        .child(filter(criteria))
        .child(flag("includeContent", include_content))
        .child(Node::text("pageNumber", page.to_string()))
}

/// `pageNumber` is optional on the wire (the recorded request omitted it).
pub fn read_lists(criteria: Vec<Node>, page: Option<u32>) -> Node {
    let n = op("readLists").child(filter(criteria));
    match page {
        Some(p) => n.child(Node::text("pageNumber", p.to_string())),
        None => n,
    }
}

pub fn add_lists(name: &str, label: &str) -> Node {
    op("addLists").child(
        Node::new("lists")
            .child(Node::text("name", name))
            .child(Node::text("label", label)),
    )
}

pub fn delete_lists<'a>(ids: impl IntoIterator<Item = &'a str>) -> Node {
    op("deleteLists").children(
        ids.into_iter()
            .map(|id| Node::new("lists").child(Node::text("id", id))),
    )
}

/// `deleteDeliveries`: the deliveries by id (a `deliveryObject` of which only `id` is read).
pub fn delete_deliveries<'a>(ids: impl IntoIterator<Item = &'a str>) -> Node {
    op("deleteDeliveries").children(
        ids.into_iter()
            .map(|id| Node::new("deliveries").child(Node::text("id", id))),
    )
}

/// How a write names its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListRef<'a> {
    Id(&'a str),
    Name(&'a str),
}

impl ListRef<'_> {
    fn node(self) -> Node {
        let inner = match self {
            ListRef::Id(id) => Node::text("id", id),
            ListRef::Name(n) => Node::text("name", n),
        };
        Node::new("list").child(inner)
    }
}

/// Puts contacts (by e-mail) on a list.
pub fn add_to_list<'a>(list: ListRef<'_>, emails: impl IntoIterator<Item = &'a str>) -> Node {
    op("addToList").child(list.node()).children(
        emails
            .into_iter()
            .map(|e| Node::new("contacts").child(Node::text("email", e))),
    )
}

/// A `messageFieldObject` of a delivery (API message tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryField {
    pub name: String,
    pub kind: String,
    pub content: String,
}

/// The `deliveryObject` of an `addDeliveries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// `xsd:dateTime` with an explicit offset.
    pub start: String,
    pub message_id: String,
    /// `triggered` (bulk API sends), `test` or `transactional`.
    pub kind: String,
    pub from_email: String,
    pub from_name: String,
    pub reply_email: Option<String>,
    pub recipients: Vec<Recipient>,
    pub fields: Vec<DeliveryField>,
}

/// `addDeliveries` of one delivery; elements in the WSDL's sequence order.
pub fn add_deliveries(d: &NewDelivery) -> Node {
    let mut del = Node::new("deliveries")
        .child(Node::text("start", d.start.as_str()))
        .child(Node::text("messageId", d.message_id.as_str()))
        .child(Node::text("type", d.kind.as_str()))
        .child(Node::text("fromEmail", d.from_email.as_str()))
        .child(Node::text("fromName", d.from_name.as_str()));
    if let Some(r) = &d.reply_email {
        del = del.child(Node::text("replyEmail", r.as_str()));
    }
    for r in &d.recipients {
        let mut n = Node::new("recipients");
        if let Some(t) = &r.delivery_type {
            n = n.child(Node::text("deliveryType", t.as_str()));
        }
        del = del.child(
            n.child(Node::text("id", r.id.as_str()))
                .child(Node::text("type", r.kind.as_str())),
        );
    }
    for f in &d.fields {
        del = del.child(
            Node::new("fields")
                .child(Node::text("name", f.name.as_str()))
                .child(Node::text("type", f.kind.as_str()))
                .child(Node::text("content", f.content.as_str())),
        );
    }
    op("addDeliveries").child(del)
}

pub fn read_deliveries(criteria: Vec<Node>, include_recipients: bool, page: u32) -> Node {
    op("readDeliveries")
        .child(filter(criteria))
        .child(flag("includeRecipients", include_recipients))
        .child(flag("includeContent", false))
        .child(Node::text("pageNumber", page.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_carries_the_session_header() {
        let body = envelope(Some("s-1"), login("t")).unwrap();
        let root = parse(&body).unwrap();
        let header = root.child("Header").unwrap();
        let sh = header.child("sessionHeader").unwrap();
        assert_eq!(sh.namespace.as_deref(), Some(NS));
        assert_eq!(sh.child_text("sessionId"), Some("s-1"));
        assert_eq!(sh.child("sessionId").unwrap().namespace, None);
        let no_session = parse(&envelope(None, login("t")).unwrap()).unwrap();
        assert!(no_session.child("Header").is_none());
    }

    #[test]
    fn fault_code_falls_back_to_the_faultstring_prefix() {
        let body = format!(
            r#"<soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>101: Rate limit exceeded</faultstring></soap:Fault></soap:Body></soap:Envelope>"#
        );
        let Response::Fault(f) = parse_response(body.as_bytes(), "addToList").unwrap() else {
            panic!("not a fault")
        };
        assert_eq!(f.code, Some(101));
        assert_eq!(f.fault_code, "soap:Server");
        let body = body.replace("101: Rate", "Rate");
        let Response::Fault(f) = parse_response(body.as_bytes(), "addToList").unwrap() else {
            panic!("not a fault")
        };
        assert_eq!(f.code, None);
    }

    #[test]
    fn the_wrong_operation_or_namespace_is_refused() {
        let body = format!(
            r#"<soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body><ns2:loginResponse xmlns:ns2="urn:other"><return>x</return></ns2:loginResponse></soap:Body></soap:Envelope>"#
        );
        assert!(parse_response(body.as_bytes(), "login").is_err());
        let body = body.replace("urn:other", NS);
        assert!(matches!(
            parse_response(body.as_bytes(), "login"),
            Ok(Response::Ok(_))
        ));
        assert!(parse_response(body.as_bytes(), "readLists").is_err());
        assert!(parse_response(b"<html>502</html>", "login").is_err());
    }

    #[test]
    fn errors_indices_mark_failed_items() {
        let body = format!(
            r#"<soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body><ns2:addToListResponse xmlns:ns2="{NS}"><return><errors>1</errors><errors>2</errors><results><id>L</id><isNew>false</isNew><isError>false</isError><errorCode>0</errorCode></results><results><isError>true</isError><errorCode>302</errorCode><errorString>Contact does not exist</errorString></results><results><isError>true</isError><errorCode>0</errorCode></results></return></ns2:addToListResponse></soap:Body></soap:Envelope>"#
        );
        let Response::Ok(r) = parse_response(body.as_bytes(), "addToList").unwrap() else {
            panic!("fault")
        };
        let items = write_results(&r);
        assert_eq!(items.len(), 3);
        assert!(!items[0].is_error());
        assert_eq!(items[0].id.as_deref(), Some("L"));
        assert_eq!(items[1].error_code, 302);
        assert_eq!(
            items[1].error_string.as_deref(),
            Some("Contact does not exist")
        );
        assert!(items[2].is_error(), "listed in errors without a code");
    }
}
