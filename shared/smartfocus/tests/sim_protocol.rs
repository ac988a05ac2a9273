//! Speaks the raw SmartFocus REST (XML) protocol — hand-built paths, queries, XML and multipart
//! bodies over reqwest — to a running simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use base64::Engine as _;
use espbridge_core::ManualClock;
use espbridge_sim::{Fault, FaultKind};
use espbridge_smartfocus::sim::{NameSearch, SeedMessage, SmartFocusSim, SmartFocusSimConfig};
use jiff::{SignedDuration, Timestamp};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const START: &str = "2026-03-02T08:00:00Z";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

// ----- a small XML tree for assertions -----

#[derive(Debug, Clone, Default)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<El>,
    text: String,
}

impl El {
    fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }
    fn text_of(&self, name: &str) -> String {
        self.child(name)
            .map(|c| c.text.trim().to_owned())
            .unwrap_or_default()
    }
    fn find(&self, name: &str) -> Option<&El> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
    fn child_names(&self) -> BTreeSet<String> {
        self.children.iter().map(|c| c.name.clone()).collect()
    }
    fn attr_names(&self) -> BTreeSet<String> {
        self.attrs.iter().map(|(k, _)| k.clone()).collect()
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn element(start: &quick_xml::events::BytesStart<'_>) -> El {
    El {
        name: start.local_name().as_ref().to_owned(),
        attrs: start
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (a.key.0.to_owned(), a.value.into_owned())
            })
            .collect(),
        ..El::default()
    }
}

fn parse(doc: &str) -> El {
    let mut reader = Reader::from_str(doc);
    let mut stack: Vec<El> = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(s) => stack.push(element(&s)),
            Event::Empty(s) => {
                let el = element(&s);
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => return el,
                }
            }
            Event::End(_) => {
                let el = stack.pop().unwrap();
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => return el,
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t);
                }
            }
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r)
                        .unwrap()
                        .to_owned(),
                };
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&s);
                }
            }
            Event::Eof => panic!("no root element in {doc}"),
            _ => {}
        }
    }
}

// ----- the raw client -----

struct Env {
    sim: SmartFocusSim,
    clock: ManualClock,
    http: reqwest::Client,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
    doc: El,
}

impl Reply {
    #[track_caller]
    fn ok(&self) -> &El {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.doc.name, "response");
        assert_eq!(
            self.doc.attr("responseStatus"),
            Some("success"),
            "{}",
            self.body
        );
        &self.doc
    }
    #[track_caller]
    fn result(&self) -> String {
        self.ok().text_of("result")
    }
    #[track_caller]
    fn results(&self) -> Vec<String> {
        self.ok()
            .children
            .iter()
            .map(|c| {
                assert_eq!(c.name, "result");
                c.text.clone()
            })
            .collect()
    }
    /// (description, status) of a failed envelope on HTTP 500.
    #[track_caller]
    fn failed(&self) -> (String, String) {
        assert_eq!(self.status, 500, "{}", self.body);
        assert_eq!(
            self.doc.attr("responseStatus"),
            Some("failed"),
            "{}",
            self.body
        );
        assert!(self.doc.child("fields").is_some());
        (self.doc.text_of("description"), self.doc.text_of("status"))
    }
}

async fn env(config: SmartFocusSimConfig) -> Env {
    let clock = ManualClock::new(START.parse().unwrap());
    let sim = SmartFocusSim::start(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    Env {
        sim,
        clock,
        http: reqwest::Client::new(),
    }
}

impl Env {
    fn url(&self, svc: &str, rest: &str) -> String {
        format!("{}{svc}/services/rest/{rest}", self.sim.base_url())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        svc: &str,
        rest: &str,
        ct: &str,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(svc, rest));
        if !ct.is_empty() {
            req = req.header("content-type", ct).body(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/xml"),
            "content type"
        );
        let body = resp.text().await.unwrap();
        let doc = parse(&body);
        Reply { status, body, doc }
    }

    async fn get(&self, svc: &str, rest: &str) -> Reply {
        self.send(reqwest::Method::GET, svc, rest, "", vec![]).await
    }

    async fn ccmd(&self, rest: &str) -> Reply {
        self.get("apiccmd", rest).await
    }

    async fn open(&self, svc: &str) -> String {
        self.get(svc, "connect/open/espbridge/sim-password/sim-key")
            .await
            .result()
    }

    async fn put_xml(&self, rest: &str, xml: &str) -> Reply {
        self.send(
            reqwest::Method::PUT,
            "apiccmd",
            rest,
            "text/xml",
            xml.as_bytes().to_vec(),
        )
        .await
    }

    async fn upload(&self, token: &str, xml: &str, csv: &str) -> Reply {
        let (ct, body) = multipart("mergeUpload", xml, csv.as_bytes());
        self.send(
            reqwest::Method::PUT,
            "apibatchmember",
            &format!("batchmemberservice/{token}/batchmember/mergeUpload"),
            &ct,
            body,
        )
        .await
    }

    async fn upload_status(&self, token: &str, id: &str) -> El {
        let reply = self
            .get(
                "apibatchmember",
                &format!("batchmemberservice/{token}/batchmember/{id}/getUploadStatus"),
            )
            .await;
        reply.ok().child("uploadStatus").unwrap().clone()
    }

    fn advance(&self, d: SignedDuration) {
        self.clock.advance(d);
    }
}

fn multipart(part: &str, xml: &str, file: &[u8]) -> (String, Vec<u8>) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(file);
    let body = format!(
        "--XyXyXy\r\nContent-Disposition: form-data; name=\"{part}\"\r\nContent-Type: text/xml\r\n\r\n{xml}\r\n--XyXyXy\r\nContent-Disposition: form-data; name=\"inputStream\"; filename=\"audience.csv\"\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--XyXyXy--\r\n"
    );
    (
        "multipart/form-data; boundary=XyXyXy".into(),
        body.into_bytes(),
    )
}

fn merge_xml(tag: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><mergeUpload><fileName>{tag}.csv</fileName><fileEncoding>UTF-8</fileEncoding><separator>tab</separator><skipFirstLine>false</skipFirstLine><criteria>CUSTOMER_ID</criteria><mapping><column><colNum>1</colNum><fieldName>CUSTOMER_ID</fieldName></column><column><colNum>2</colNum><fieldName>CAMPAIGN_TAG_1</fieldName><toReplace>true</toReplace></column></mapping></mergeUpload>"
    )
}

fn csv(ids: &[&str], tag: &str) -> String {
    ids.iter().map(|id| format!("{id}\t{tag}\n")).collect()
}

fn poll_only() -> SmartFocusSimConfig {
    SmartFocusSimConfig {
        upload_step_delay: None,
        upload_polls_per_step: 1,
        ..SmartFocusSimConfig::default()
    }
}

/// Uploads, polls to the end, and returns the statuses seen.
async fn upload_to_end(e: &Env, token: &str, ids: &[&str], tag: &str) -> Vec<String> {
    let id = e
        .upload(token, &merge_xml(tag), &csv(ids, tag))
        .await
        .result();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let status = e.upload_status(token, &id).await.text_of("status");
        let done = ["DONE", "DONE WITH ERRORS", "ERROR", "FAILURE"].contains(&status.as_str());
        seen.push(status);
        if done {
            break;
        }
    }
    seen
}

// ----- sessions -----

#[tokio::test]
async fn tokens_open_close_expire_and_belong_to_one_service() {
    let e = env(SmartFocusSimConfig::default()).await;
    // PI and QS styles.
    let a = e.open("apiccmd").await;
    let qs = e
        .ccmd("connect/open?login=espbridge&password=sim-password&key=sim-key")
        .await
        .result();
    assert_ne!(a, qs);
    assert_eq!(
        e.ccmd(&format!("message/getLastEmailMessages/{a}/2"))
            .await
            .results()
            .len(),
        2
    );
    assert_eq!(
        e.ccmd(&format!("message/getLastEmailMessages?token={qs}&limit=1"))
            .await
            .results()
            .len(),
        1
    );

    // A ccmd token is refused by batchmember and vice versa.
    let b = e.open("apibatchmember").await;
    let refused = e
        .get(
            "apibatchmember",
            &format!("batchmemberservice/{a}/batchmember/getLastUpload"),
        )
        .await;
    assert_eq!(refused.failed().0, "Your session has expired");
    assert_eq!(
        e.ccmd(&format!("message/getMessage/{b}/1105016560"))
            .await
            .failed()
            .0,
        "Your session has expired"
    );
    e.get(
        "apibatchmember",
        &format!("batchmemberservice/{b}/batchmember/getLastUpload"),
    )
    .await
    .ok();

    // Close (PI and QS), then the token is dead.
    assert_eq!(
        e.ccmd(&format!("connect/close/{qs}")).await.result(),
        "connection closed"
    );
    assert_eq!(
        e.ccmd(&format!("message/getLastEmailMessages/{qs}/1"))
            .await
            .failed()
            .0,
        "Your session has expired"
    );
    assert_eq!(
        e.ccmd(&format!("connect/close?token={qs}"))
            .await
            .failed()
            .0,
        "No available connection for the specified token."
    );

    // 60 minutes on the injected clock.
    e.advance(SignedDuration::from_mins(59));
    e.ccmd(&format!("message/getLastEmailMessages/{a}/1"))
        .await
        .ok();
    e.advance(SignedDuration::from_mins(1));
    assert_eq!(
        e.ccmd(&format!("message/getLastEmailMessages/{a}/1"))
            .await
            .failed()
            .0,
        "Your session has expired"
    );

    // Expiry on demand.
    let c = e.open("apiccmd").await;
    e.sim.expire_tokens();
    let (text, status) = e
        .ccmd(&format!("message/getLastEmailMessages/{c}/1"))
        .await
        .failed();
    assert_eq!(
        (text.as_str(), status.as_str()),
        ("Your session has expired", "CHECK_SESSION_FAILED")
    );
    assert_eq!(e.sim.sessions_opened(), 4);
}

#[tokio::test]
async fn a_stricter_manager_caps_open_sessions_and_used_up_ones_free_their_place() {
    let e = env(SmartFocusSimConfig {
        session_max_calls: Some(1),
        max_sessions: Some(2),
        ..SmartFocusSimConfig::default()
    })
    .await;
    let a = e.open("apiccmd").await;
    let b = e.open("apibatchmember").await;
    // Both services count: a third session is refused with the documented text.
    let (text, status) = e
        .ccmd("connect/open/espbridge/sim-password/sim-key")
        .await
        .failed();
    assert_eq!(
        (text.as_str(), status.as_str()),
        (
            "No available connection for manager espbridge.",
            "CONNECTION_FAILED"
        )
    );
    assert_eq!(e.sim.traffic().refusals(), 1);
    // A session that made its one call no longer holds a place; a closed one neither.
    e.ccmd(&format!("message/getLastEmailMessages/{a}/1"))
        .await
        .ok();
    let c = e.open("apiccmd").await;
    e.get("apibatchmember", &format!("connect/close/{b}"))
        .await
        .ok();
    e.open("apiccmd").await;
    assert_eq!(
        e.ccmd(&format!("message/getLastEmailMessages/{a}/1"))
            .await
            .failed()
            .0,
        "The maximum number of connection allowed per session has been reached"
    );
    assert_ne!(a, c);
    assert_eq!(e.sim.peak_sessions(), 2);
    assert_eq!((e.sim.sessions_opened(), e.sim.calls_served()), (4, 1));
}

#[tokio::test]
async fn bad_credentials_and_call_quota_are_refused() {
    let e = env(SmartFocusSimConfig {
        session_max_calls: Some(2),
        ..SmartFocusSimConfig::default()
    })
    .await;
    let bad = e
        .ccmd("connect/open/espbridge/wrong/sim-key")
        .await
        .failed();
    assert_eq!(bad.0, "No manager retrieved for those login, password.");
    let no_login = e.ccmd("connect/open?password=x&key=y").await.failed();
    assert!(
        no_login
            .0
            .starts_with("You must fill in the login parameter")
    );
    assert!(
        e.ccmd("connect/open/espbridge/sim-password/other-key")
            .await
            .failed()
            .0
            .contains("managerKey")
    );

    let t = e.open("apiccmd").await;
    for _ in 0..2 {
        e.ccmd(&format!("message/getLastEmailMessages/{t}/1"))
            .await
            .ok();
    }
    let over = e
        .ccmd(&format!("message/getLastEmailMessages/{t}/1"))
        .await
        .failed();
    assert_eq!(
        over.0,
        "The maximum number of connection allowed per session has been reached"
    );
    // The session is over for good.
    assert_eq!(
        e.ccmd(&format!("message/getLastEmailMessages/{t}/1"))
            .await
            .failed()
            .0,
        "Your session has expired"
    );
}

#[tokio::test]
async fn errors_are_failed_envelopes_on_500() {
    let e = env(SmartFocusSimConfig::default()).await;
    let b = e.open("apibatchmember").await;
    let reply = e
        .get(
            "apibatchmember",
            &format!("batchmemberservice/{b}/batchmember/12345/getUploadStatus"),
        )
        .await;
    let (description, status) = reply.failed();
    assert_eq!(description, "No flatUpload found!");
    assert_eq!(status, "GET_FLATUPLOAD_FAILED");
    assert_eq!(reply.doc.text_of("fields"), "12345");
    let a = e.open("apiccmd").await;
    assert_eq!(
        e.ccmd(&format!("message/getMessage/{a}/999"))
            .await
            .failed()
            .1,
        "NOT_FOUND"
    );
    assert_eq!(
        e.ccmd(&format!("message/getMessage/{a}/abc"))
            .await
            .failed()
            .1,
        "INVALID_PARAMETERS"
    );
    let unknown = e.ccmd(&format!("message/nothing/{a}")).await;
    assert_eq!(unknown.status, 404);
}

// ----- messages -----

#[tokio::test]
async fn messages_list_find_preview_and_clone() {
    let e = env(SmartFocusSimConfig::default()).await;
    let t = e.open("apiccmd").await;
    let ids = e
        .ccmd(&format!("message/getLastEmailMessages/{t}/50"))
        .await
        .results();
    assert_eq!(ids.len(), 5);
    let numeric: Vec<u64> = ids.iter().map(|i| i.parse().unwrap()).collect();
    assert!(numeric.windows(2).all(|w| w[0] > w[1]), "newest first");

    let mut optimove = Vec::new();
    for id in &ids {
        let reply = e.ccmd(&format!("message/getMessage/{t}/{id}")).await;
        let message = reply.ok().child("message").unwrap();
        assert_eq!(&message.text_of("id"), id);
        if message.text_of("name").starts_with("optimove_") {
            optimove.push(message.text_of("name"));
        }
    }
    assert_eq!(optimove.len(), 3);

    // By name, both spellings and QS.
    let by_name = e
        .ccmd(&format!(
            "message/getEmailMessagesByField/{t}/name/optimove_winback/10"
        ))
        .await
        .results();
    assert_eq!(by_name.len(), 1);
    let singular = e
        .ccmd(&format!(
            "message/getEmailMessageByField?token={t}&field=name&value=optimove_winback&limit=10"
        ))
        .await
        .results();
    assert_eq!(singular, by_name);
    let template = &by_name[0];

    let html = e
        .ccmd(&format!(
            "message/getEmailMessagePreview/{t}/{template}/HTML"
        ))
        .await
        .result();
    assert!(
        html.starts_with("<html>") && html.contains("We miss you"),
        "{html}"
    );
    let text = e
        .ccmd(&format!(
            "message/getEmailMessagePreview/{t}/{template}/text"
        ))
        .await
        .result();
    assert!(!text.contains("<html>") && text.contains("We miss you"));
    assert_eq!(
        e.ccmd(&format!(
            "message/getEmailMessagePreview/{t}/{template}/html"
        ))
        .await
        .result(),
        html
    );
    assert_eq!(
        e.ccmd(&format!(
            "message/getEmailMessagePreview/{t}/{template}/pdf"
        ))
        .await
        .failed()
        .1,
        "INVALID_PARAMETERS"
    );

    let clone = e
        .ccmd(&format!(
            "message/cloneMessage/{t}/{template}/optimove_winback%20c42"
        ))
        .await
        .result();
    let copy = e.ccmd(&format!("message/getMessage/{t}/{clone}")).await;
    let copy = copy.ok().child("message").unwrap();
    let original = e.ccmd(&format!("message/getMessage/{t}/{template}")).await;
    let original = original.ok().child("message").unwrap();
    assert_eq!(copy.text_of("name"), "optimove_winback c42");
    assert_eq!(copy.text_of("body"), original.text_of("body"));
    assert_eq!(copy.text_of("subject"), original.text_of("subject"));
    let found = e
        .ccmd(&format!(
            "message/getEmailMessagesByField/{t}/name/optimove_winback%20c42/10"
        ))
        .await
        .results();
    assert_eq!(found, vec![clone.clone()]);
    let held = e.sim.messages();
    assert_eq!(held.len(), 6);
    assert_eq!(
        held.last().unwrap().cloned_from,
        Some(template.parse().unwrap())
    );
}

// ----- the summary list (SOAP) -----

/// The `getMessageSummaryList` envelope as a SOAP client writes it (S1/S2 parameter names).
fn summary_envelope(token: &str, page: &str, page_size: &str, search: &str, sort: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:api="http://api.service.apiccmd.emailvision.com/"><soapenv:Header/><soapenv:Body><api:getMessageSummaryList><token>{token}</token><listOptionsEntity><page>{page}</page><pageSize>{page_size}</pageSize><search>{search}</search><sortOptions>{sort}</sortOptions></listOptionsEntity></api:getMessageSummaryList></soapenv:Body></soapenv:Envelope>"#
    )
}

const BY_ID_ASC: &str = "<sortOption><column>messageId</column><order>ASC</order></sortOption>";

impl Env {
    /// POSTs `body` to the apiccmd SOAP binding; (HTTP status, parsed envelope).
    async fn soap(&self, body: String) -> (u16, El) {
        let resp = self
            .http
            .post(format!(
                "{}apiccmd/services/CcmdService",
                self.sim.base_url()
            ))
            .header("content-type", "text/xml; charset=utf-8")
            .header("SOAPAction", "\"\"")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/xml"),
            "a SOAP binding answers text/xml"
        );
        (status, parse(&resp.text().await.unwrap()))
    }

    /// One summary page that must succeed: its `return` element.
    async fn summaries(&self, body: String) -> El {
        let (status, doc) = self.soap(body).await;
        assert_eq!(status, 200, "{doc:?}");
        assert_eq!(doc.name, "Envelope");
        let response = doc.find("getMessageSummaryListResponse").unwrap();
        response.child("return").unwrap().clone()
    }

    /// A SOAP fault: HTTP 500 and the (exception element, description, status) of its detail.
    async fn soap_fault(&self, body: String) -> (String, String, String) {
        let (status, doc) = self.soap(body).await;
        assert_eq!(status, 500, "{doc:?}");
        let fault = doc.find("Fault").unwrap();
        assert_eq!(fault.text_of("faultcode"), "soap:Server");
        let detail = &fault.child("detail").unwrap().children[0];
        (
            detail.name.clone(),
            detail.text_of("description"),
            detail.text_of("status"),
        )
    }
}

fn summary_names(ret: &El) -> Vec<String> {
    ret.child("messageSummaryList")
        .unwrap()
        .children
        .iter()
        .map(|m| {
            assert_eq!(m.name, "messageSummary");
            m.text_of("name")
        })
        .collect()
}

/// 5 default messages, 600 `espbridge_c*` clones, one SMS: an account past the 500 that one
/// `getLastEmailMessages` reads.
fn big_account() -> SmartFocusSimConfig {
    let mut messages = SeedMessage::defaults();
    messages.extend(SeedMessage::series("espbridge_c", 600));
    messages.push(SeedMessage::sms("optimove_sms_promo", "20% off today"));
    SmartFocusSimConfig {
        messages,
        summary_max_page_size: 50,
        ..SmartFocusSimConfig::default()
    }
}

#[tokio::test]
async fn the_summary_list_searches_by_name_and_type_and_pages_over_soap() {
    let e = env(big_account()).await;
    let t = e.open("apiccmd").await;
    // The REST lists see all of it too: every e-mail message, none of the SMS.
    let last = e
        .ccmd(&format!("message/getLastEmailMessages/{t}/1000"))
        .await
        .results();
    assert_eq!(last.len(), 605);
    let all = e
        .ccmd(&format!(
            "message/getMessagesByPeriod/{t}/2000-01-01%2000%3A00%3A00/2030-01-01%2000%3A00%3A00"
        ))
        .await
        .results();
    assert_eq!(all.len(), 606);

    // By name (contains, ignoring case) and type: the three templates on one page, summaries
    // holding id, name, type, subject and a creation date with the zone's offset.
    let search = "<name>OPTIMOVE_</name><messageType>email</messageType>";
    let ret = e
        .summaries(summary_envelope(&t, "1", "500", search, BY_ID_ASC))
        .await;
    assert_eq!(
        ret.text_of("pageSize"),
        "50",
        "capped at summary_max_page_size"
    );
    assert_eq!(ret.text_of("nbTotalItems"), "3");
    assert_eq!(ret.text_of("page"), "1");
    assert_eq!(ret.text_of("nextPage"), "false");
    assert_eq!(ret.text_of("previousPage"), "false");
    assert_eq!(
        summary_names(&ret),
        [
            "optimove_spring_sale",
            "optimove_weekly_digest",
            "optimove_winback"
        ]
    );
    let first = ret.find("messageSummary").unwrap();
    assert_eq!(
        first.child_names(),
        [
            "createdDate",
            "from",
            "fromEmail",
            "isBounceBack",
            "manager",
            "messageId",
            "messageType",
            "name",
            "replyTo",
            "replyToEmail",
            "subject",
            "to",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    assert_eq!(first.text_of("messageType"), "email");
    assert_eq!(first.text_of("subject"), "Spring sale: 20% off");
    let created = first.text_of("createdDate");
    assert!(created.ends_with("+01:00"), "Paris in winter: {created}");
    assert!(created.parse::<Timestamp>().is_ok(), "{created}");
    let ids: Vec<u64> = ret
        .find("messageSummaryList")
        .unwrap()
        .children
        .iter()
        .map(|m| m.text_of("messageId").parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "messageId ASC");

    // Without a name: 605 e-mails in pages of 50, each id once.
    let mut seen = BTreeSet::new();
    let mut page = 1;
    loop {
        let ret = e
            .summaries(summary_envelope(
                &t,
                &page.to_string(),
                "50",
                "<messageType>email</messageType>",
                BY_ID_ASC,
            ))
            .await;
        assert_eq!(ret.text_of("nbTotalItems"), "605");
        assert_eq!(ret.text_of("previousPage"), (page > 1).to_string());
        for m in &ret.find("messageSummaryList").unwrap().children {
            assert!(seen.insert(m.text_of("messageId")));
        }
        if ret.text_of("nextPage") == "false" {
            break;
        }
        page += 1;
    }
    assert_eq!((page, seen.len()), (13, 605));
    // Past the end: an empty page. Without a type: the SMS too. Default order: newest first.
    let ret = e
        .summaries(summary_envelope(&t, "14", "50", "", BY_ID_ASC))
        .await;
    assert!(summary_names(&ret).is_empty());
    assert_eq!(ret.text_of("nbTotalItems"), "606");
    let ret = e
        .summaries(summary_envelope(&t, "1", "2", "<name>optimove</name>", ""))
        .await;
    assert_eq!(
        summary_names(&ret),
        ["optimove_sms_promo", "optimove_winback"]
    );
    assert_eq!(ret.text_of("nextPage"), "true");
}

#[tokio::test]
async fn the_summary_list_refuses_bad_sessions_and_options_with_soap_faults() {
    let e = env(SmartFocusSimConfig {
        summary_name_search: NameSearch::Exact,
        ..SmartFocusSimConfig::default()
    })
    .await;
    let t = e.open("apiccmd").await;
    // The stricter name search: whole names only.
    let exact = |name: &str| format!("<name>{name}</name>");
    let ret = e
        .summaries(summary_envelope(
            &t,
            "1",
            "10",
            &exact("optimove_"),
            BY_ID_ASC,
        ))
        .await;
    assert_eq!(ret.text_of("nbTotalItems"), "0");
    let ret = e
        .summaries(summary_envelope(
            &t,
            "1",
            "10",
            &exact("optimove_winback"),
            BY_ID_ASC,
        ))
        .await;
    assert_eq!(summary_names(&ret), ["optimove_winback"]);

    // A batch token, or none known: the session fault; the REST token of apiccmd is the one.
    let b = e.open("apibatchmember").await;
    let (exception, description, status) = e
        .soap_fault(summary_envelope(&b, "1", "10", "", BY_ID_ASC))
        .await;
    assert_eq!(exception, "ConnectionServiceException");
    assert_eq!(description, "Your session has expired");
    assert_eq!(status, "CHECK_SESSION_FAILED");
    e.ccmd(&format!("connect/close/{t}")).await.ok();
    let (_, description, _) = e
        .soap_fault(summary_envelope(&t, "1", "10", "", BY_ID_ASC))
        .await;
    assert_eq!(description, "Your session has expired");

    let t = e.open("apiccmd").await;
    for (page, size, search, sort) in [
        ("0", "10", "", BY_ID_ASC),
        ("x", "10", "", BY_ID_ASC),
        ("1", "0", "", BY_ID_ASC),
        ("1", "10", "<messageType>fax</messageType>", BY_ID_ASC),
        (
            "1",
            "10",
            "<minCreatedDate>soon</minCreatedDate>",
            BY_ID_ASC,
        ),
        (
            "1",
            "10",
            "",
            "<sortOption><column>body</column></sortOption>",
        ),
        ("1", "10", "", "<sortOption><order>UP</order></sortOption>"),
    ] {
        let (exception, _, status) = e
            .soap_fault(summary_envelope(&t, page, size, search, sort))
            .await;
        assert_eq!(
            (exception.as_str(), status.as_str()),
            ("CcmdServiceException", "INVALID_PARAMETERS"),
            "{page} {size} {search} {sort}"
        );
    }
    // The operation must be in the service's namespace; other operations are not simulated.
    let wrong_ns = summary_envelope(&t, "1", "10", "", BY_ID_ASC)
        .replace("http://api.service.apiccmd.emailvision.com/", "urn:other");
    assert_eq!(e.soap_fault(wrong_ns).await.2, "INVALID_PARAMETERS");
    let other_op = summary_envelope(&t, "1", "10", "", BY_ID_ASC)
        .replace("getMessageSummaryList", "getCampaignSummaryList");
    assert_eq!(e.soap_fault(other_op).await.2, "NOT_FOUND");
    assert_eq!(
        e.soap_fault("<notSoap/>".into()).await.2,
        "INVALID_PARAMETERS"
    );
    let wsdl = e
        .http
        .get(format!(
            "{}apiccmd/services/CcmdService?wsdl",
            e.sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wsdl.status().as_u16(), 404);
}

// ----- uploads -----

#[tokio::test]
async fn a_merge_upload_moves_through_every_state_and_tags_members() {
    let e = env(poll_only()).await;
    let b = e.open("apibatchmember").await;
    let seen = upload_to_end(&e, &b, &["c-1", "c-2", "c-3"], "c42").await;
    assert_eq!(seen, ["VALIDATED", "QUEUED", "IMPORTING", "DONE"]);
    assert_eq!(e.sim.members_with_tag("c42"), ["c-1", "c-2", "c-3"]);

    // A second merge re-tags existing members (toReplace) and inserts unknown ones.
    let seen = upload_to_end(&e, &b, &["c-2", "c-4"], "c43").await;
    assert_eq!(seen.last().unwrap(), "DONE");
    assert_eq!(e.sim.members_with_tag("c42"), ["c-1", "c-3"]);
    assert_eq!(e.sim.members_with_tag("c43"), ["c-2", "c-4"]);

    let last = e
        .get(
            "apibatchmember",
            &format!("batchmemberservice/{b}/batchmember/getLastUpload"),
        )
        .await;
    let entries: Vec<&El> = last.ok().children.iter().collect();
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|u| u.name == "lastUploads" && u.text_of("status") == "DONE")
    );
    assert!(
        entries[0].text_of("id").parse::<u64>().unwrap()
            > entries[1].text_of("id").parse::<u64>().unwrap()
    );
}

#[tokio::test]
async fn without_polls_an_upload_advances_with_the_clock() {
    let e = env(SmartFocusSimConfig {
        upload_polls_per_step: 0,
        upload_step_delay: Some(SignedDuration::from_secs(5)),
        ..SmartFocusSimConfig::default()
    })
    .await;
    let b = e.open("apibatchmember").await;
    let id = e
        .upload(&b, &merge_xml("t"), &csv(&["x"], "t"))
        .await
        .result();
    let mut seen = vec![e.upload_status(&b, &id).await.text_of("status")];
    for _ in 0..4 {
        e.advance(SignedDuration::from_secs(5));
        seen.push(e.upload_status(&b, &id).await.text_of("status"));
    }
    assert_eq!(
        seen,
        ["STORAGE", "VALIDATED", "QUEUED", "IMPORTING", "DONE"]
    );
    assert!(e.sim.members_with_tag("t").contains(&"x".to_owned()));
}

#[tokio::test]
async fn failing_uploads_report_their_state_and_reason() {
    let e = env(SmartFocusSimConfig {
        max_file_bytes: 64,
        ..poll_only()
    })
    .await;
    let b = e.open("apibatchmember").await;
    // Validation error: a field the member table lacks.
    let bad = merge_xml("t").replace(
        "<fieldName>CAMPAIGN_TAG_1</fieldName>",
        "<fieldName>NO_SUCH</fieldName>",
    );
    let id = e.upload(&b, &bad, &csv(&["x"], "t")).await.result();
    let status = e.upload_status(&b, &id).await;
    assert_eq!(status.text_of("status"), "ERROR");
    assert!(status.text_of("details").contains("NO_SUCH"));
    // Import failure on demand.
    e.sim.fail_next_import();
    let seen = upload_to_end(&e, &b, &["y"], "u").await;
    assert_eq!(seen.last().unwrap(), "FAILURE");
    assert!(e.sim.members_with_tag("u").is_empty());
    // Lines without a key.
    let seen = upload_to_end(&e, &b, &["z", ""], "v").await;
    assert_eq!(seen.last().unwrap(), "DONE WITH ERRORS");
    assert_eq!(e.sim.members_with_tag("v"), ["z"]);
    // Refused at once: empty file, too large a file, LF-only multipart.
    assert_eq!(
        e.upload(&b, &merge_xml("t"), "").await.failed().1,
        "INVALID_FILE"
    );
    let big = csv(&["0123456789"; 10], "t");
    assert_eq!(
        e.upload(&b, &merge_xml("t"), &big).await.failed().1,
        "INVALID_FILE"
    );
    let (ct, body) = multipart("mergeUpload", &merge_xml("t"), b"1\tt\n");
    let lf = String::from_utf8(body)
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    let reply = e
        .send(
            reqwest::Method::PUT,
            "apibatchmember",
            &format!("batchmemberservice/{b}/batchmember/mergeUpload"),
            &ct,
            lf,
        )
        .await;
    assert_eq!(reply.failed().1, "INVALID_PARAMETERS");
    let statuses: Vec<String> = e.sim.uploads().into_iter().map(|u| u.status).collect();
    assert_eq!(statuses, ["ERROR", "FAILURE", "DONE WITH ERRORS"]);
}

#[tokio::test]
async fn the_sixth_pending_upload_is_refused() {
    let e = env(SmartFocusSimConfig::default()).await;
    let b = e.open("apibatchmember").await;
    for i in 0..5 {
        e.upload(&b, &merge_xml("p"), &csv(&[&format!("m{i}")], "p"))
            .await
            .result();
    }
    let (text, status) = e
        .upload(&b, &merge_xml("p"), &csv(&["m5"], "p"))
        .await
        .failed();
    assert_eq!(status, "MAX_NB_UPLOADS");
    assert!(text.starts_with("Too many uploads are still pending"));
    // Once they finish (2 s per state by default), uploads are accepted again.
    e.advance(SignedDuration::from_secs(10));
    e.upload(&b, &merge_xml("p"), &csv(&["m5"], "p"))
        .await
        .result();
    assert_eq!(e.sim.uploads().len(), 6);
}

#[tokio::test]
async fn the_fixture_insert_upload_is_understood() {
    let e = env(poll_only()).await;
    let b = e.open("apibatchmember").await;
    let raw = std::fs::read_to_string(format!(
        "{FIXTURES}/batchmember_insertUpload.multipart.request.txt"
    ))
    .unwrap();
    let crlf = raw.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes();
    let id = e
        .send(
            reqwest::Method::PUT,
            "apibatchmember",
            &format!("batchmemberservice/{b}/batchmember/insertUpload"),
            "multipart/form-data; boundary=XyXyXy",
            crlf,
        )
        .await
        .result();
    let uploads = e.sim.uploads();
    assert_eq!(uploads[0].id.to_string(), id);
    assert_eq!(uploads[0].file_name, "member.csv");
    assert_eq!(uploads[0].lines, 3);
    // The fixture maps EMAIL, not the customer-id key this account merges on.
    let status = e.upload_status(&b, &id).await;
    assert_eq!(status.text_of("status"), "ERROR");
    assert!(status.text_of("details").contains("CUSTOMER_ID"));
}

// ----- segments and campaigns -----

async fn tagged_segment(e: &Env, a: &str, b: &str, tag: &str, ids: &[&str]) -> String {
    upload_to_end(e, b, ids, tag).await;
    let seg = e
        .put_xml(
            &format!("segmentationservice/{a}/segment"),
            &format!("<segmentation><name>optimove {tag}</name><description>d</description><sampleType>ALL</sampleType></segmentation>"),
        )
        .await
        .result();
    let added = e
        .put_xml(
            &format!("segmentationservice/{a}/segment/{seg}/criteria/addStringDemographic"),
            &format!("<stringDemographicCriteria><columnName>CAMPAIGN_TAG_1</columnName><operator>EQUALS</operator><values>{tag}</values></stringDemographicCriteria>"),
        )
        .await
        .result();
    assert_eq!(added, "true");
    seg
}

#[tokio::test]
async fn a_segment_with_a_tag_criterion_counts_the_tagged_members() {
    let e = env(poll_only()).await;
    let (a, b) = (e.open("apiccmd").await, e.open("apibatchmember").await);
    upload_to_end(&e, &b, &["o-1"], "other").await;
    let seg = tagged_segment(&e, &a, &b, "c42", &["c-1", "c-2", "c-3"]).await;
    assert_eq!(
        e.ccmd(&format!("segmentationservice/{a}/segment/{seg}/count"))
            .await
            .result(),
        "3"
    );
    let read = e
        .ccmd(&format!("segmentationservice/{a}/segment/{seg}"))
        .await;
    let segmentation = read.ok().child("segmentation").unwrap();
    assert_eq!(segmentation.text_of("name"), "optimove c42");
    assert_eq!(segmentation.text_of("sampleType"), "ALL");
    let list = e
        .ccmd(&format!("segmentationservice/{a}/segment/list/1/items/10"))
        .await
        .results();
    assert_eq!(list, vec![seg.clone()]);
    let held = e.sim.segments();
    assert_eq!(held[0].criteria[0].column, "CAMPAIGN_TAG_1");
    assert_eq!(held[0].criteria[0].values, ["c42"]);
    // Update via POST with the fixture body.
    let update = std::fs::read_to_string(format!(
        "{FIXTURES}/segmentationservice_segment_update.request.xml"
    ))
    .unwrap();
    let r = e
        .send(
            reqwest::Method::POST,
            "apiccmd",
            &format!("segmentationservice/{a}/segment/{seg}"),
            "text/xml",
            update.into_bytes(),
        )
        .await;
    r.ok();
    assert_eq!(e.sim.segments()[0].name, "Updated QA Automation Segment");
    // Bad criteria are refused.
    let bad = e
        .put_xml(
            &format!("segmentationservice/{a}/segment/{seg}/criteria/addStringDemographic"),
            "<stringDemographicCriteria><columnName>CAMPAIGN_TAG_1</columnName><operator>LIKE</operator><values>x</values></stringDemographicCriteria>",
        )
        .await;
    assert_eq!(bad.failed().1, "INVALID_PARAMETERS");
    let deleted = e
        .send(
            reqwest::Method::DELETE,
            "apiccmd",
            &format!("segmentationservice/{a}/segment/{seg}"),
            "",
            vec![],
        )
        .await;
    assert_eq!(deleted.result(), "true");
    let gone = e
        .ccmd(&format!("segmentationservice/{a}/segment/{seg}"))
        .await;
    assert_eq!(gone.failed().1, "NOT_FOUND");
    assert!(e.sim.segments().is_empty());
}

struct Campaign {
    a: String,
    id: String,
}

async fn campaign(e: &Env, name: &str, send: &str) -> Campaign {
    let a = e.open("apiccmd").await;
    let b = e.open("apibatchmember").await;
    let ids: Vec<String> = (0..200).map(|i| format!("cust-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let seg = tagged_segment(e, &a, &b, name, &ids).await;
    let template = e
        .ccmd(&format!(
            "message/getEmailMessagesByField/{a}/name/optimove_spring_sale/1"
        ))
        .await
        .result();
    let msg = e
        .ccmd(&format!("message/cloneMessage/{a}/{template}/{name}"))
        .await
        .result();
    let id = e
        .ccmd(&format!(
            "campaign/create/{a}/{name}/optimove%20campaign/{send}/{msg}/{seg}/false/true/true"
        ))
        .await
        .result();
    Campaign { a, id }
}

#[tokio::test]
async fn a_campaign_is_created_found_by_name_posted_once_and_runs() {
    let e = env(poll_only()).await;
    // 10:00 Paris = 09:00 UTC, one hour after START.
    let c = campaign(&e, "optimove_c42", "2026-03-02T10%3A00%3A00").await;
    let a = &c.a;
    let found = e
        .ccmd(&format!(
            "campaign/getCampaignsByField/{a}/name/optimove_c42/5"
        ))
        .await
        .results();
    assert_eq!(found, vec![c.id.clone()]);
    assert!(
        e.ccmd(&format!(
            "campaign/getCampaignsByField/{a}/name/optimove_c99/5"
        ))
        .await
        .results()
        .is_empty()
    );
    assert_eq!(
        e.ccmd(&format!("campaign/last/{a}/10")).await.results(),
        vec![c.id.clone()]
    );

    let status = |s: &str| s.to_ascii_uppercase();
    assert_eq!(
        status(
            &e.ccmd(&format!("campaign/getCampaignStatus/{a}/{}", c.id))
                .await
                .result()
        ),
        "EDITABLE"
    );
    assert_eq!(
        e.ccmd(&format!("campaign/post/{a}/{}", c.id))
            .await
            .result(),
        "true"
    );
    assert_eq!(
        e.ccmd(&format!("campaign/post/{a}/{}", c.id))
            .await
            .failed()
            .1,
        "CAMPAIGN_NOT_EDITABLE"
    );
    assert_eq!(e.sim.post_count(), 1);
    assert_eq!(
        e.ccmd(&format!("campaign/getCampaignStatus/{a}/{}", c.id))
            .await
            .result(),
        "Queued"
    );

    let got = e.ccmd(&format!("campaign/getCampaign/{a}/{}", c.id)).await;
    let campaign = got.ok().child("campaign").unwrap();
    assert_eq!(campaign.text_of("name"), "optimove_c42");
    assert_eq!(campaign.text_of("sendDate"), "2026-03-02T10:00:00+01:00");
    assert_eq!(campaign.text_of("status"), "QUEUED");
    let held = &e.sim.campaigns()[0];
    assert_eq!(
        held.send_at,
        "2026-03-02T09:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(held.selected, 200);
    assert_eq!(held.send_date_raw, "2026-03-02T10:00:00");

    e.advance(SignedDuration::from_mins(61));
    let a = e.open("apiccmd").await;
    assert_eq!(
        e.ccmd(&format!("campaign/getCampaignStatus/{a}/{}", c.id))
            .await
            .result(),
        "Running"
    );
    e.advance(SignedDuration::from_hours(1));
    assert_eq!(e.sim.campaigns()[0].status, "COMPLETED");
}

#[tokio::test]
async fn campaign_create_checks_its_inputs() {
    let e = env(poll_only()).await;
    let a = e.open("apiccmd").await;
    let past = e
        .ccmd(&format!(
            "campaign/create/{a}/n/d/2020-01-01T00%3A00%3A00/1105016560/1/false/true/true"
        ))
        .await;
    assert_eq!(past.failed().1, "INVALID_PARAMETERS");
    let no_segment = e
        .ccmd(&format!(
            "campaign/create/{a}/n/d/2026-03-03%2010%3A00%3A00/1105016560/77/false/true/true"
        ))
        .await;
    assert_eq!(no_segment.failed().1, "NOT_FOUND");
    let bad_date = e
        .ccmd(&format!(
            "campaign/create/{a}/n/d/tomorrow/1105016560/77/false/true/true"
        ))
        .await;
    assert!(bad_date.failed().0.contains("sendDate"));

    let seg = e
        .put_xml(
            &format!("segmentationservice/{a}/segment"),
            "<segmentation><name>s</name><sampleType>ALL</sampleType></segmentation>",
        )
        .await
        .result();
    // A raw `+` in the offset arrives as a space and is refused; `%2B` is the right spelling.
    let raw_plus = e
        .ccmd(&format!(
            "campaign/create/{a}/n/d/2026-03-03T10%3A00%3A00+01%3A00/1105016560/{seg}/false/true/true"
        ))
        .await;
    assert!(raw_plus.failed().0.contains("sendDate"));
    e.ccmd(&format!(
        "campaign/create/{a}/n/d/2026-03-03T10%3A00%3A00%2B01%3A00/1105016560/{seg}/false/true/true"
    ))
    .await
    .result();
    let held = e.sim.campaigns();
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].send_at,
        "2026-03-03T09:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(held[0].status, "EDITABLE");
}

#[tokio::test]
async fn the_snapshot_report_grows_over_seven_days() {
    let e = env(poll_only()).await;
    let c = campaign(&e, "optimove_c7", "2026-03-02T09%3A00%3A00Z").await;
    let a = &c.a;
    let snap = |body: &Reply| {
        let s = body.ok().child("campaignSnapshot").unwrap().clone();
        let n = |f: &str| s.text_of(f).parse::<u64>().unwrap();
        [
            n("nbDelivered"),
            n("nbUniqueOpen"),
            n("nbUniqueClick"),
            n("nbUnsubscribe"),
            n("nbBounce"),
            n("nbSelected"),
        ]
    };
    e.ccmd(&format!("campaign/post/{a}/{}", c.id))
        .await
        .result();
    let before = snap(
        &e.ccmd(&format!("campaign/getCampaignSnapshotReport/{a}/{}", c.id))
            .await,
    );
    assert_eq!(before[..5], [0, 0, 0, 0, 0]);
    e.advance(SignedDuration::from_hours(1));
    let mut previous = before;
    let mut token = a.clone();
    for day in 1..=7 {
        e.advance(SignedDuration::from_hours(24));
        token = e.open("apiccmd").await;
        let now = snap(
            &e.ccmd(&format!(
                "campaign/getCampaignSnapshotReport/{token}/{}",
                c.id
            ))
            .await,
        );
        let alt = snap(
            &e.ccmd(&format!("campaign/getCampaignSnapshot/{token}/{}", c.id))
                .await,
        );
        assert_eq!(now, alt);
        assert!(
            now.iter().zip(previous).all(|(n, p)| *n >= p),
            "day {day}: {now:?} < {previous:?}"
        );
        assert_eq!(now[5], 200);
        previous = now;
    }
    assert!(
        previous[0] > 150 && previous[1] > 0 && previous[1] <= previous[0],
        "{previous:?}"
    );
    // Deterministic: asking again gives the same numbers.
    assert_eq!(
        snap(
            &e.ccmd(&format!(
                "campaign/getCampaignSnapshotReport/{token}/{}",
                c.id
            ))
            .await
        ),
        previous
    );
}

// ----- faults -----

#[tokio::test]
async fn injected_faults_take_effect_once_each() {
    let e = env(SmartFocusSimConfig::default()).await;
    let a = e.open("apiccmd").await;
    let last = format!("message/getLastEmailMessages/{a}/1");

    e.sim
        .inject(Fault::on(FaultKind::Status(503), "getLastEmailMessages", 1));
    let reply = e.ccmd(&last).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.doc.attr("responseStatus"), Some("failed"));
    assert_eq!(reply.doc.text_of("status"), "HTTP_503");
    e.ccmd(&last).await.ok();

    e.sim.inject(Fault::any(FaultKind::RateLimit, 1));
    assert!(
        e.ccmd(&last)
            .await
            .failed()
            .0
            .starts_with("The maximum number of connection")
    );
    e.ccmd(&last).await.ok(); // the session survives an injected throttle

    e.sim.inject(Fault::any(FaultKind::DropConnection, 1));
    let dropped = e.http.get(e.url("apiccmd", &last)).send().await;
    assert!(dropped.is_err());
    e.ccmd(&last).await.ok();

    // A timeout still processes the request: the clone exists although the client gave up.
    e.sim.inject(Fault::on(
        FaultKind::Timeout(Duration::from_secs(2)),
        "cloneMessage",
        1,
    ));
    let slow = e
        .http
        .get(e.url(
            "apiccmd",
            &format!("message/cloneMessage/{a}/1105016560/late"),
        ))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(slow.unwrap_err().is_timeout());
    assert!(e.sim.messages().iter().any(|m| m.name == "late"));

    let statuses: Vec<u16> = e.sim.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&0) && statuses.contains(&503));
}

// ----- response shapes against the fixtures -----

enum Shape {
    /// One `<result>` scalar (SOAP: one `<return>` without children).
    Scalar,
    /// Repeated `<result>` scalars (SOAP: repeated `<return>`).
    List,
    /// Field names of this wrapper element equal those of the SOAP `<return>`.
    Object(&'static str),
    /// A REST fixture: same element and attribute names, recursively (first child of a name).
    Rest,
}

fn names(el: &El) -> BTreeSet<String> {
    el.child_names()
}

#[track_caller]
fn same_tree(fixture: &El, mine: &El, path: &str) {
    assert_eq!(fixture.name, mine.name, "{path}");
    assert_eq!(
        fixture.attr_names(),
        mine.attr_names(),
        "attributes at {path}/{}",
        mine.name
    );
    assert_eq!(
        names(fixture),
        names(mine),
        "children at {path}/{}",
        mine.name
    );
    for child in &fixture.children {
        let other = mine.child(&child.name).unwrap();
        same_tree(child, other, &format!("{path}/{}", mine.name));
    }
}

#[track_caller]
fn check_shape(fixture_file: &str, shape: &Shape, mine: &str) {
    let fixture = parse(&std::fs::read_to_string(format!("{FIXTURES}/{fixture_file}")).unwrap());
    let mine = parse(mine);
    assert_eq!(mine.name, "response", "{fixture_file}");
    match shape {
        Shape::Rest => same_tree(&fixture, &mine, ""),
        Shape::Scalar | Shape::List => {
            let body = fixture.find("Body").unwrap();
            let returns: Vec<&El> = body.children[0].children.iter().collect();
            assert!(
                returns
                    .iter()
                    .all(|r| r.name == "return" && r.children.is_empty())
            );
            assert!(
                mine.children
                    .iter()
                    .all(|r| r.name == "result" && r.children.is_empty()),
                "{fixture_file}"
            );
            assert!(
                mine.children.iter().all(|r| r.attr("xsi:type").is_some()),
                "{fixture_file}"
            );
            if matches!(shape, Shape::Scalar) {
                assert_eq!(returns.len(), 1, "{fixture_file}");
                assert_eq!(mine.children.len(), 1, "{fixture_file}");
            } else {
                assert!(!mine.children.is_empty(), "{fixture_file}: empty list");
            }
        }
        Shape::Object(wrapper) => {
            let fields = names(fixture.find("return").unwrap());
            let ours = mine
                .child(wrapper)
                .unwrap_or_else(|| panic!("{fixture_file}: no {wrapper}"));
            assert_eq!(names(ours), fields, "{fixture_file}");
        }
    }
}

#[tokio::test]
async fn responses_are_shaped_like_every_simulated_fixture() {
    let e = env(poll_only()).await;
    let open = e
        .get("apiccmd", "connect/open/espbridge/sim-password/sim-key")
        .await;
    let a = open.result();
    let b = e.open("apibatchmember").await;
    let up_id = e
        .upload(&b, &merge_xml("f"), &csv(&["f1", "f2"], "f"))
        .await;
    let up = up_id.result();
    let status_mid = e
        .get(
            "apibatchmember",
            &format!("batchmemberservice/{b}/batchmember/{up}/getUploadStatus"),
        )
        .await;
    let last_upload = e
        .get(
            "apibatchmember",
            &format!("batchmemberservice/{b}/batchmember/getLastUpload"),
        )
        .await;
    let missing = e
        .get(
            "apibatchmember",
            &format!("batchmemberservice/{b}/batchmember/12345/getUploadStatus"),
        )
        .await;
    for _ in 0..4 {
        e.upload_status(&b, &up).await;
    }
    let seg_create = e
        .put_xml(
            &format!("segmentationservice/{a}/segment"),
            &std::fs::read_to_string(format!(
                "{FIXTURES}/segmentationservice_segment_create.request.xml"
            ))
            .unwrap(),
        )
        .await;
    let seg = seg_create.result();
    let criterion = std::fs::read_to_string(format!(
        "{FIXTURES}/segmentationservice_criteria_addStringDemographic.request.xml"
    ))
    .unwrap()
    .replace("SOURCE", "CAMPAIGN_TAG_1")
    .replace("123", "f");
    let seg_add = e
        .put_xml(
            &format!("segmentationservice/{a}/segment/{seg}/criteria/addStringDemographic"),
            &criterion,
        )
        .await;
    let seg_count = e
        .ccmd(&format!("segmentationservice/{a}/segment/{seg}/count"))
        .await;
    assert_eq!(seg_count.result(), "2");
    let seg_get = e
        .ccmd(&format!("segmentationservice/{a}/segment/{seg}"))
        .await;
    let seg_list = e
        .ccmd(&format!("segmentationservice/{a}/segment/list/1/items/10"))
        .await;
    let msg_last = e
        .ccmd(&format!("message/getLastEmailMessages/{a}/10"))
        .await;
    let msg_field = e
        .ccmd(&format!(
            "message/getEmailMessagesByField/{a}/name/optimove_spring_sale/10"
        ))
        .await;
    let msg_period = e
        .ccmd(&format!(
            "message/getMessagesByPeriod/{a}/2026-01-01%2000%3A00%3A00/2026-12-31%2000%3A00%3A00"
        ))
        .await;
    let template = msg_field.results()[0].clone();
    let msg_get = e.ccmd(&format!("message/getMessage/{a}/{template}")).await;
    let msg_preview = e
        .ccmd(&format!(
            "message/getEmailMessagePreview/{a}/{template}/HTML"
        ))
        .await;
    let msg_clone = e
        .ccmd(&format!("message/cloneMessage/{a}/{template}/optimove_f"))
        .await;
    let clone = msg_clone.result();
    let camp_create = e.ccmd(&format!("campaign/create/{a}/optimove_f/d/2026-03-02%2012%3A00%3A00/{clone}/{seg}/false/true/true")).await;
    let camp = camp_create.result();
    let camp_status = e
        .ccmd(&format!("campaign/getCampaignStatus/{a}/{camp}"))
        .await;
    let camp_post = e.ccmd(&format!("campaign/post/{a}/{camp}")).await;
    let camp_get = e.ccmd(&format!("campaign/getCampaign/{a}/{camp}")).await;
    let camp_last = e.ccmd(&format!("campaign/last/{a}/10")).await;
    e.advance(SignedDuration::from_hours(30));
    let a2 = e.open("apiccmd").await;
    let camp_snap = e
        .ccmd(&format!("campaign/getCampaignSnapshotReport/{a2}/{camp}"))
        .await;
    let close = e.ccmd(&format!("connect/close/{a2}")).await;

    let cases: Vec<(&str, Shape, &Reply)> = vec![
        ("connect_open.response.xml", Shape::Rest, &open),
        ("connect_close.response.xml", Shape::Rest, &close),
        ("batchmember_upload.response.xml", Shape::Rest, &up_id),
        (
            "batchmember_getUploadStatus.response.xml",
            Shape::Rest,
            &status_mid,
        ),
        (
            "batchmember_getLastUpload.response.xml",
            Shape::Rest,
            &last_upload,
        ),
        (
            "error_failed.GET_FLATUPLOAD_FAILED.response.xml",
            Shape::Rest,
            &missing,
        ),
        ("soap_openApiConnection.response.xml", Shape::Scalar, &open),
        (
            "soap_closeApiConnection.response.xml",
            Shape::Scalar,
            &close,
        ),
        (
            "soap_getLastEmailMessages.response.xml",
            Shape::List,
            &msg_last,
        ),
        (
            "soap_getEmailMessagesByField.response.xml",
            Shape::List,
            &msg_field,
        ),
        (
            "soap_getMessagesByPeriod.response.xml",
            Shape::List,
            &msg_period,
        ),
        (
            "soap_getMessage.response.xml",
            Shape::Object("message"),
            &msg_get,
        ),
        (
            "soap_getEmailMessagePreview.response.xml",
            Shape::Scalar,
            &msg_preview,
        ),
        ("soap_cloneMessage.response.xml", Shape::Scalar, &msg_clone),
        (
            "soap_segmentationCreateSegment.response.xml",
            Shape::Scalar,
            &seg_create,
        ),
        (
            "soap_segmentationAddStringDemographicCriteriaByObj.response.xml",
            Shape::Scalar,
            &seg_add,
        ),
        (
            "soap_segmentationCount.response.xml",
            Shape::Scalar,
            &seg_count,
        ),
        (
            "soap_segmentationGetSegmentById.response.xml",
            Shape::Object("segmentation"),
            &seg_get,
        ),
        (
            "soap_segmentationGetSegmentList.response.xml",
            Shape::List,
            &seg_list,
        ),
        (
            "soap_createCampaign.response.xml",
            Shape::Scalar,
            &camp_create,
        ),
        (
            "soap_getCampaignStatus.response.xml",
            Shape::Scalar,
            &camp_status,
        ),
        ("soap_postCampaign.response.xml", Shape::Scalar, &camp_post),
        (
            "soap_getCampaign.response.xml",
            Shape::Object("campaign"),
            &camp_get,
        ),
        (
            "soap_getLastCampaigns.response.xml",
            Shape::List,
            &camp_last,
        ),
        (
            "soap_getCampaignSnapshotReport.response.xml",
            Shape::Object("campaignSnapshot"),
            &camp_snap,
        ),
    ];
    for (file, shape, reply) in &cases {
        check_shape(file, shape, &reply.body);
    }
    // Every response fixture of an operation the simulator serves is covered above; the rest
    // belong to services or operations it does not simulate.
    let not_simulated = [
        "member_getMemberByEmail.response.xml",
        "soap_updateMessage.response.xml",
        "soap_createCampaignWithAnalytics.response.xml",
        "soap_getCampaignByStatus.response.xml",
        "soap_getGlobalReportByCampaignId.response.xml",
        "soap_segmentationGetSegmentCriterias.response.xml",
    ];
    let covered: BTreeSet<&str> = cases
        .iter()
        .map(|(f, _, _)| *f)
        .chain(not_simulated)
        .collect();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.contains(".response.") {
            assert!(
                covered.contains(name.as_str()),
                "fixture {name} is not checked"
            );
        }
    }
}
