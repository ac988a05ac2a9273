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
