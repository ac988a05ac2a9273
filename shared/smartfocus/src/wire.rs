//! Campaign Commander's XML: the shared element tree (`espbridge-xml`), the typed views the
//! adapter needs on it, and the request documents it sends (every value escaped by the writer).
//!
//! REST answers are `<response responseStatus="...">`; scalar results sit in `<result>`. The
//! same readers accept the SOAP envelopes of the recorded fixtures (`*Response/return`), since
//! their inner element names match the REST fields.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use std::io::Cursor;

pub use espbridge_xml::{Element, XmlError, parse};

/// The `description/fields/status` triple of a `responseStatus="failed"` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    pub status: String,
    pub description: String,
    pub fields: String,
}

/// A decoded answer: the payload element (`<response>`, or a SOAP `*Response`) or a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Success(Element),
    Failed(Failure),
}

impl Answer {
    pub fn from_xml(body: &[u8]) -> Result<Answer, XmlError> {
        let root = parse(body)?;
        let payload = if root.name == "Envelope" {
            let body = root
                .child("Body")
                .ok_or_else(|| XmlError("SOAP envelope without Body".into()))?;
            if let Some(fault) = body.child("Fault") {
                let detail = fault.find(&|e| e.child("status").is_some());
                return Ok(Answer::Failed(Failure {
                    status: detail
                        .and_then(|d| d.child_text("status"))
                        .unwrap_or("SOAP_FAULT")
                        .to_owned(),
                    description: detail
                        .and_then(|d| d.child_text("description"))
                        .or_else(|| fault.child_text("faultstring"))
                        .unwrap_or_default()
                        .to_owned(),
                    fields: detail
                        .and_then(|d| d.child_text("fields"))
                        .unwrap_or_default()
                        .to_owned(),
                }));
            }
            body.children
                .first()
                .cloned()
                .ok_or_else(|| XmlError("SOAP Body is empty".into()))?
        } else if root.name == "response" {
            root
        } else {
            let root = espbridge_core::text::bounded(&root.name, 64);
            return Err(XmlError(format!("unexpected root element <{root}>")));
        };
        if payload.attr("responseStatus") == Some("failed") {
            return Ok(Answer::Failed(Failure {
                status: payload.child_text("status").unwrap_or_default().to_owned(),
                description: payload
                    .child_text("description")
                    .unwrap_or_default()
                    .to_owned(),
                fields: payload.child_text("fields").unwrap_or_default().to_owned(),
            }));
        }
        Ok(Answer::Success(payload))
    }
}

fn is_result(e: &Element) -> bool {
    e.name == "result" || e.name == "return"
}

/// The scalar in `<result>` (REST) or `<return>` (SOAP).
pub fn scalar(payload: &Element) -> Option<&str> {
    payload
        .children
        .iter()
        .find(|c| is_result(c))
        .map(|c| c.text.as_str())
}

/// A list of ids: repeated `<result>`/`<return>` elements, or one `<result>` holding id
/// elements (the REST shape is uncertain, so both are read).
pub fn id_list(payload: &Element) -> Vec<String> {
    let mut out = Vec::new();
    for r in payload.children.iter().filter(|c| is_result(c)) {
        if r.children.is_empty() {
            out.extend(r.text.split_whitespace().map(str::to_owned));
        } else {
            out.extend(
                r.children
                    .iter()
                    .map(|c| c.text.clone())
                    .filter(|t| !t.is_empty()),
            );
        }
    }
    out
}

/// The fields of a message, wherever the wrapper element puts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub id: String,
    pub name: String,
    pub subject: Option<String>,
    pub kind: Option<String>,
    pub created: Option<String>,
}

impl MessageInfo {
    /// Reads the first element holding both `id` and `name` (the wrapper name is uncertain).
    pub fn from_payload(payload: &Element) -> Option<MessageInfo> {
        let m = payload.find(&|e| e.child("id").is_some() && e.child("name").is_some())?;
        Some(MessageInfo {
            id: m.child_text("id")?.to_owned(),
            name: m.child("name").map(|n| n.text.clone()).unwrap_or_default(),
            subject: m.child_text("subject").map(str::to_owned),
            kind: m.child_text("type").map(str::to_owned),
            created: m.child_text("createDate").map(str::to_owned),
        })
    }
}

/// Namespace of the `apiccmd` SOAP operations (the recorded SOAP answers use it).
pub const CCMD_NS: &str = "http://api.service.apiccmd.emailvision.com/";
const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// One page request of `getMessageSummaryList` (`APIMessageListOptions`, reference B.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryQuery<'a> {
    /// Page number; the adapter counts from 1.
    pub page: u32,
    pub page_size: u32,
    /// `search/name`: the server's matching rule is not documented (see the crate docs).
    pub name: Option<&'a str>,
    /// `search/messageType`: `email` or `sms` (`ApiMessageType`).
    pub message_type: Option<&'a str>,
}

/// The SOAP 1.1 envelope of `getMessageSummaryList(token, listOptionsEntity)`, document/literal
/// with unqualified parameters (S1 `CcmdService`/`APIMessageListOptions`, S2
/// `GetMessageSummaryList`): `page`, `pageSize`, `search` (`name`, `messageType`) and one sort
/// option, `messageId` ascending, so messages created while paging land on later pages.
pub fn message_summary_request(token: &str, q: &SummaryQuery<'_>) -> Vec<u8> {
    use espbridge_xml::Node;
    let mut search = Node::new("search");
    if let Some(name) = q.name {
        search = search.child(Node::text("name", name));
    }
    if let Some(kind) = q.message_type {
        search = search.child(Node::text("messageType", kind));
    }
    let options = Node::new("listOptionsEntity")
        .child(Node::text("page", q.page.to_string()))
        .child(Node::text("pageSize", q.page_size.to_string()))
        .child(search)
        .child(
            Node::new("sortOptions").child(
                Node::new("sortOption")
                    .child(Node::text("column", "messageId"))
                    .child(Node::text("order", "ASC")),
            ),
        );
    let envelope = Node::new("soapenv:Envelope")
        .attr("xmlns:soapenv", SOAP_ENV_NS)
        .attr("xmlns:api", CCMD_NS)
        .child(Node::new("soapenv:Header"))
        .child(
            Node::new("soapenv:Body").child(
                Node::new("api:getMessageSummaryList")
                    .child(Node::text("token", token))
                    .child(options),
            ),
        );
    let mut out = br#"<?xml version="1.0" encoding="UTF-8"?>"#.to_vec();
    // Building from owned values cannot fail to serialise.
    out.extend(envelope.to_bytes().unwrap_or_default());
    out
}

/// The SOAP 1.1 envelope of `unpostCampaign(token, id)` (S1/S2 `CcmdService`; the PHP
/// clients' `unpostCampaign($id)`): a posted campaign goes back to `EDITABLE` and does not send.
/// The REST form of the call is not documented, so it goes to the SOAP binding like
/// `getMessageSummaryList`.
pub fn unpost_campaign_request(token: &str, campaign_id: &str) -> Vec<u8> {
    use espbridge_xml::Node;
    let envelope = Node::new("soapenv:Envelope")
        .attr("xmlns:soapenv", SOAP_ENV_NS)
        .attr("xmlns:api", CCMD_NS)
        .child(Node::new("soapenv:Header"))
        .child(
            Node::new("soapenv:Body").child(
                Node::new("api:unpostCampaign")
                    .child(Node::text("token", token))
                    .child(Node::text("id", campaign_id)),
            ),
        );
    let mut out = br#"<?xml version="1.0" encoding="UTF-8"?>"#.to_vec();
    // Building from owned values cannot fail to serialise.
    out.extend(envelope.to_bytes().unwrap_or_default());
    out
}

/// One `APIMessageSummary`: what the template listing needs of a message, without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    pub id: String,
    pub name: String,
    /// `messageType`: `email` or `sms`.
    pub kind: Option<String>,
    pub subject: Option<String>,
    /// `createdDate` as the server wrote it.
    pub created: Option<String>,
}

impl MessageSummary {
    fn from_element(e: &Element) -> Option<MessageSummary> {
        Some(MessageSummary {
            id: e.child_text("messageId")?.trim().to_owned(),
            name: e.child("name").map(|n| n.text.clone()).unwrap_or_default(),
            kind: e.child_text("messageType").map(str::to_owned),
            subject: e.child_text("subject").map(str::to_owned),
            created: e.child_text("createdDate").map(str::to_owned),
        })
    }
}

/// One answer of `getMessageSummaryList` (`APIMessageSummaryList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryPage {
    pub items: Vec<MessageSummary>,
    pub page: Option<u32>,
    /// The page size the server applied.
    pub page_size: Option<u32>,
    /// `nbTotalItems`: summaries matching the search, all pages together.
    pub total: Option<u64>,
    pub next_page: Option<bool>,
}

impl SummaryPage {
    /// Reads the element holding `nbTotalItems` or `messageSummaryList`. Summaries are the
    /// `messageSummary` items of the `messageSummaryList` wrapper (S1, S2); repeated
    /// `messageSummaryList` elements that are summaries themselves are read too.
    pub fn from_payload(payload: &Element) -> Option<SummaryPage> {
        let list = payload.find(&|e| {
            e.child("nbTotalItems").is_some() || e.child("messageSummaryList").is_some()
        })?;
        let mut items = Vec::new();
        for wrapper in list.children_named("messageSummaryList") {
            if wrapper.child("messageId").is_some() {
                items.extend(MessageSummary::from_element(wrapper));
            } else {
                items.extend(
                    wrapper
                        .children
                        .iter()
                        .filter_map(MessageSummary::from_element),
                );
            }
        }
        let number = |name: &str| list.child_text(name).and_then(|t| t.trim().parse().ok());
        Some(SummaryPage {
            items,
            page: number("page").and_then(|n: u64| u32::try_from(n).ok()),
            page_size: number("pageSize").and_then(|n: u64| u32::try_from(n).ok()),
            total: number("nbTotalItems"),
            next_page: list
                .child_text("nextPage")
                .map(|t| t.trim().eq_ignore_ascii_case("true")),
        })
    }
}

/// A date the API returned, as RFC 3339 with the offset `zone` has at that instant; `None` when
/// it cannot be read. Accepted: ISO 8601 with an offset or `Z` (fraction optional), and the
/// zoneless forms `YYYY-MM-DD[T ]HH:MM:SS[.fff]` and `YYYY-MM-DD`, which are read in `zone`
/// (reference B.8: returned dates usually carry an offset, sometimes not; without one the
/// account's zone is the server's).
pub fn rfc3339_in(raw: &str, zone: &jiff::tz::TimeZone) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let instant = match raw.parse::<jiff::Timestamp>() {
        Ok(t) => t,
        Err(_) => {
            let civil = raw
                .replacen(' ', "T", 1)
                .parse::<jiff::civil::DateTime>()
                .ok()
                .or_else(|| {
                    raw.parse::<jiff::civil::Date>()
                        .ok()
                        .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
                })?;
            civil.to_zoned_datetime(zone.clone()).ok()?.timestamp()
        }
    };
    Some(rfc3339(instant, zone))
}

/// `t` as RFC 3339 with the offset `zone` has at that instant, to the second
/// (`2024-05-20T09:30:00+02:00`).
pub fn rfc3339(t: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> String {
    t.to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// An object with an `id` and a `name` (campaign, segment), read like [`MessageInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedObject {
    pub id: String,
    pub name: String,
    /// Campaign status, compared case-insensitively (`Editable`, `EDITABLE`, ...).
    pub status: Option<String>,
}

impl NamedObject {
    pub fn from_payload(payload: &Element) -> Option<NamedObject> {
        let m = payload.find(&|e| e.child("id").is_some() && e.child("name").is_some())?;
        Some(NamedObject {
            id: m.child_text("id")?.to_owned(),
            name: m.child("name").map(|n| n.text.clone()).unwrap_or_default(),
            status: m.child_text("status").map(str::to_owned),
        })
    }
}

/// State of a batch upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    Pending(String),
    Done { with_errors: bool },
    Failed(String),
}

/// `<uploadStatus><status>..</status>[<details>..</details>]</uploadStatus>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub status: String,
    pub details: Option<String>,
}

impl UploadStatus {
    pub fn from_payload(payload: &Element) -> Option<UploadStatus> {
        let s = payload.find(&|e| e.name == "uploadStatus")?;
        Some(UploadStatus {
            status: s.child_text("status")?.to_owned(),
            details: s.child_text("details").map(str::to_owned),
        })
    }

    pub fn state(&self) -> UploadState {
        match self.status.trim().to_ascii_uppercase().as_str() {
            "DONE" => UploadState::Done { with_errors: false },
            "DONE WITH ERRORS" | "DONE_WITH_ERRORS" => UploadState::Done { with_errors: true },
            "ERROR" | "FAILURE" => UploadState::Failed(self.status.clone()),
            other => UploadState::Pending(other.to_owned()),
        }
    }
}

/// One `<lastUploads>` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUpload {
    pub id: String,
    pub source: Option<String>,
    pub status: String,
}

pub fn last_uploads(payload: &Element) -> Vec<LastUpload> {
    payload
        .children_named("lastUploads")
        .filter_map(|u| {
            Some(LastUpload {
                id: u.child_text("id")?.to_owned(),
                source: u.child_text("source").map(str::to_owned),
                status: u.child_text("status").unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// Campaign snapshot counters (`ApiCampaignSnapshot`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub selected: u64,
    pub filtered: u64,
    pub delivered: u64,
    pub bounces: u64,
    pub hard_bounces: u64,
    pub soft_bounces: u64,
    pub unique_opens: u64,
    pub unique_clicks: u64,
    pub unsubscribes: u64,
    pub complaints: u64,
}

impl Snapshot {
    /// Reads the element holding `nbDelivered`; `None` when the answer has no counters.
    pub fn from_payload(payload: &Element) -> Option<Snapshot> {
        let s = payload.find(&|e| e.child("nbDelivered").is_some())?;
        let n = |name: &str| {
            s.child_text(name)
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map_or(0, |f| f as u64)
        };
        Some(Snapshot {
            selected: n("nbSelected"),
            filtered: n("nbFiltered"),
            delivered: n("nbDelivered"),
            bounces: n("nbBounce"),
            hard_bounces: n("nbHardBounce"),
            soft_bounces: n("nbSoftBounce"),
            unique_opens: n("nbUniqueOpen"),
            unique_clicks: n("nbUniqueClick"),
            unsubscribes: n("nbUnsubscribe"),
            complaints: n("nbComplaint"),
        })
    }

    /// Sent = selected minus filtered; bounces = the total, or hard + soft when it is missing.
    pub fn counts(&self) -> espbridge_core::ports::MetricCounts {
        espbridge_core::ports::MetricCounts {
            sent: self
                .selected
                .saturating_sub(self.filtered)
                .max(self.delivered),
            delivered: self.delivered,
            opens: self.unique_opens,
            clicks: self.unique_clicks,
            unsubscribes: self.unsubscribes,
            bounces: self
                .bounces
                .max(self.hard_bounces.saturating_add(self.soft_bounces)),
            complaints: self.complaints,
        }
    }
}

// ---- request documents ----

/// Builds `<root><k>v</k>...</root>` style documents; text is escaped by quick-xml.
struct Doc {
    w: Writer<Cursor<Vec<u8>>>,
}

impl Doc {
    fn new() -> Doc {
        let mut w = Writer::new(Cursor::new(Vec::new()));
        // Writing to a Vec cannot fail.
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        Doc { w }
    }
    fn open(&mut self, name: &str) {
        let _ = self.w.write_event(Event::Start(BytesStart::new(name)));
    }
    fn close(&mut self, name: &str) {
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
    }
    fn leaf(&mut self, name: &str, value: &str) {
        self.open(name);
        let _ = self.w.write_event(Event::Text(BytesText::new(value)));
        self.close(name);
    }
    fn finish(self) -> String {
        String::from_utf8_lossy(&self.w.into_inner().into_inner()).into_owned()
    }
}

/// The `mergeUpload` configuration for a two-column, tab-separated file: the customer id (merge
/// key) and the campaign tag, written (overwritten) into the campaign's reserved tag field.
pub fn merge_upload_xml(file_name: &str, id_field: &str, tag_field: &str) -> String {
    let mut d = Doc::new();
    d.open("mergeUpload");
    d.leaf("fileName", file_name);
    d.leaf("fileEncoding", "UTF-8");
    d.leaf("separator", "tab");
    d.leaf("skipFirstLine", "false");
    d.leaf("criteria", id_field);
    d.open("mapping");
    d.open("column");
    d.leaf("colNum", "1");
    d.leaf("fieldName", id_field);
    d.close("column");
    d.open("column");
    d.leaf("colNum", "2");
    d.leaf("fieldName", tag_field);
    d.leaf("toReplace", "true");
    d.close("column");
    d.close("mapping");
    d.close("mergeUpload");
    d.finish()
}

/// `<segmentation>` for creating a segment over the whole member table.
pub fn segment_xml(name: &str, description: &str) -> String {
    let mut d = Doc::new();
    d.open("segmentation");
    d.leaf("name", name);
    d.leaf("description", description);
    d.leaf("sampleType", "ALL");
    d.close("segmentation");
    d.finish()
}

/// `column EQUALS value`.
pub fn string_criterion_xml(column: &str, value: &str) -> String {
    let mut d = Doc::new();
    d.open("stringDemographicCriteria");
    d.leaf("columnName", column);
    d.leaf("operator", "EQUALS");
    d.leaf("values", value);
    d.close("stringDemographicCriteria");
    d.finish()
}

/// `column IS_NOT_EMPTY`: the operator takes no value, so no `<values>` element is sent (the
/// read-back fixture shows such a criterion with a nil `values`).
pub fn not_empty_criterion_xml(column: &str) -> String {
    let mut d = Doc::new();
    d.open("stringDemographicCriteria");
    d.leaf("columnName", column);
    d.leaf("operator", "IS_NOT_EMPTY");
    d.close("stringDemographicCriteria");
    d.finish()
}

/// The CRLF multipart body of a merge upload: the XML part and the base64 file part.
pub fn multipart_body(
    boundary: &str,
    part_name: &str,
    config_xml: &str,
    file_name: &str,
    file: &[u8],
) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(file);
    let safe_name: String = file_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    let mut out = String::with_capacity(b64.len() + config_xml.len() + 512);
    out.push_str(&format!("--{boundary}\r\n"));
    out.push_str(&format!(
        "Content-Disposition: form-data; name=\"{part_name}\"\r\n"
    ));
    out.push_str("Content-Type: text/xml\r\n\r\n");
    out.push_str(config_xml);
    out.push_str(&format!("\r\n--{boundary}\r\n"));
    out.push_str(&format!(
        "Content-Disposition: form-data; name=\"inputStream\"; filename=\"{safe_name}\"\r\n"
    ));
    out.push_str(
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    out.push_str(&b64);
    out.push_str(&format!("\r\n--{boundary}--\r\n"));
    out.into_bytes()
}

/// Bytes the multipart body adds around a file of `file_len` bytes is small; base64 is 4/3.
pub fn encoded_len(file_len: usize) -> usize {
    file_len.div_ceil(3) * 4 + 2048
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_documents_escape_values_and_parse_back() {
        let xml = segment_xml("a<b>&\"c'", "d & e");
        assert!(xml.contains("a&lt;b&gt;&amp;"), "{xml}");
        let el = parse(xml.as_bytes()).unwrap();
        assert_eq!(el.name, "segmentation");
        assert_eq!(el.child_text("name"), Some("a<b>&\"c'"));
        assert_eq!(el.child_text("description"), Some("d & e"));
        assert_eq!(el.child_text("sampleType"), Some("ALL"));

        let crit = parse(string_criterion_xml("CAMPAIGN_TAG", "espbridge_<x>").as_bytes()).unwrap();
        assert_eq!(crit.child_text("columnName"), Some("CAMPAIGN_TAG"));
        assert_eq!(crit.child_text("operator"), Some("EQUALS"));
        assert_eq!(crit.child_text("values"), Some("espbridge_<x>"));

        let email = parse(not_empty_criterion_xml("EMAIL").as_bytes()).unwrap();
        assert_eq!(email.child_text("columnName"), Some("EMAIL"));
        assert_eq!(email.child_text("operator"), Some("IS_NOT_EMPTY"));
        assert!(email.child("values").is_none());
    }

    #[test]
    fn merge_config_maps_id_and_tag() {
        let el =
            parse(merge_upload_xml("f.csv", "CUSTOMER_ID", "CAMPAIGN_TAG").as_bytes()).unwrap();
        assert_eq!(el.name, "mergeUpload");
        assert_eq!(el.child_text("criteria"), Some("CUSTOMER_ID"));
        assert_eq!(el.child_text("separator"), Some("tab"));
        let cols: Vec<_> = el
            .child("mapping")
            .unwrap()
            .children_named("column")
            .collect();
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[0].child_text("fieldName"), Some("CUSTOMER_ID"));
        assert_eq!(cols[0].child_text("toReplace"), None);
        assert_eq!(cols[1].child_text("fieldName"), Some("CAMPAIGN_TAG"));
        assert_eq!(cols[1].child_text("toReplace"), Some("true"));
    }

    #[test]
    fn multipart_has_crlf_parts_and_base64_file() {
        let body = multipart_body("BND", "mergeUpload", "<x/>", "t\"1.csv", b"c1\tt\n");
        let s = String::from_utf8(body).unwrap();
        assert!(s.starts_with("--BND\r\nContent-Disposition: form-data; name=\"mergeUpload\"\r\n"));
        assert!(s.contains("filename=\"t1.csv\""), "{s}");
        assert!(
            s.contains("Content-Transfer-Encoding: base64\r\n\r\nYzEJdAo=\r\n--BND--\r\n"),
            "{s}"
        );
        assert!(encoded_len(3) >= 4);
    }

    fn zone(name: &str) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(name).unwrap()
    }

    #[test]
    fn returned_dates_become_rfc3339_in_the_account_zone() {
        let paris = zone("Europe/Paris");
        let cases = [
            // Offset given: the same instant, written with the zone's offset.
            ("2009-05-04T00:00:00+02:00", "2009-05-04T00:00:00+02:00"),
            ("2013-04-05T08:20:58.000Z", "2013-04-05T10:20:58+02:00"),
            ("2013-04-05T08:20:58.250Z", "2013-04-05T10:20:58+02:00"),
            ("2009-12-15T10:00:00-05:00", "2009-12-15T16:00:00+01:00"),
            // Zoneless: read in the account's zone.
            ("2009-12-15T00:00:00", "2009-12-15T00:00:00+01:00"),
            ("2024-05-20 09:30:00", "2024-05-20T09:30:00+02:00"),
            ("2024-05-20", "2024-05-20T00:00:00+02:00"),
        ];
        for (raw, want) in cases {
            assert_eq!(rfc3339_in(raw, &paris).as_deref(), Some(want), "{raw}");
            let back: jiff::Timestamp = want.parse().unwrap();
            assert_eq!(rfc3339(back, &paris), want);
        }
        // A second's fraction is dropped, not rounded.
        assert_eq!(
            rfc3339_in("2013-04-05T08:20:58.999Z", &paris).as_deref(),
            Some("2013-04-05T10:20:58+02:00")
        );
        assert_eq!(
            rfc3339_in("2009-05-04T00:00:00+02:00", &zone("UTC")).as_deref(),
            Some("2009-05-03T22:00:00+00:00")
        );
        for bad in ["", "  ", "yesterday", "2009-13-40T00:00:00", "04/05/2009"] {
            assert_eq!(rfc3339_in(bad, &paris), None, "{bad}");
        }
    }

    #[test]
    fn summary_request_carries_token_paging_search_and_sort() {
        let q = SummaryQuery {
            page: 3,
            page_size: 50,
            name: Some("optimove_<&>"),
            message_type: Some("email"),
        };
        let doc = message_summary_request("tok&en", &q);
        let env = parse(&doc).unwrap();
        assert_eq!(env.name, "Envelope");
        let op = &env.child("Body").unwrap().children[0];
        assert_eq!(op.name, "getMessageSummaryList");
        assert_eq!(op.namespace.as_deref(), Some(CCMD_NS));
        assert_eq!(op.child_text("token"), Some("tok&en"));
        let o = op.child("listOptionsEntity").unwrap();
        assert_eq!(o.child_text("page"), Some("3"));
        assert_eq!(o.child_text("pageSize"), Some("50"));
        let search = o.child("search").unwrap();
        assert_eq!(search.child_text("name"), Some("optimove_<&>"));
        assert_eq!(search.child_text("messageType"), Some("email"));
        let sort = o.child("sortOptions").unwrap().child("sortOption").unwrap();
        assert_eq!(sort.child_text("column"), Some("messageId"));
        assert_eq!(sort.child_text("order"), Some("ASC"));
        let bare = SummaryQuery { name: None, ..q };
        let env = parse(&message_summary_request("t", &bare)).unwrap();
        let search = env.find(&|e| e.name == "search").unwrap();
        assert!(search.child("name").is_none());
    }

    #[test]
    fn entities_and_nested_ids() {
        let el = parse(
            b"<response responseStatus=\"success\"><result>a &amp; b &#65;</result></response>",
        )
        .unwrap();
        assert_eq!(scalar(&el), Some("a & b A"));
        let nested = parse(b"<response><result><id>1</id><id>2</id></result></response>").unwrap();
        assert_eq!(id_list(&nested), ["1", "2"]);
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"").is_err());
    }
}
