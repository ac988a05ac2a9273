//! Raw-protocol tests of the Bronto simulator: SOAP over HTTP with reqwest, recorded fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_bronto::sim::{BrontoSim, BrontoSimConfig};
use espbridge_core::ManualClock;
use espbridge_sim::{Fault, FaultKind};
use espbridge_xml::Element;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;

const START: &str = "2026-03-02T08:00:00Z";
const NS: &str = "http://api.bronto.com/v4";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
const OPTIMOVE_MSG: &str = "0bcc03eb00000000000000000000001c7d10";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

struct Harness {
    sim: BrontoSim,
    clock: ManualClock,
    http: reqwest::Client,
}

async fn harness_with(config: BrontoSimConfig) -> Harness {
    let clock = ManualClock::new(START.parse().unwrap());
    let sim = BrontoSim::start(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    Harness {
        sim,
        clock,
        http: reqwest::Client::new(),
    }
}

async fn harness() -> Harness {
    harness_with(BrontoSimConfig::default()).await
}

/// An answer: HTTP status and the element under `Body`.
struct Answer {
    status: u16,
    body: Element,
}

impl Answer {
    fn fault_code(&self) -> Option<i64> {
        (self.body.name == "Fault").then(|| {
            self.body
                .child("detail")
                .and_then(|d| d.child("ApiException"))
                .and_then(|e| e.child_text("errorCode"))
                .and_then(|c| c.parse().ok())
                .unwrap()
        })
    }
    fn returns(&self) -> Vec<&Element> {
        assert_ne!(self.body.name, "Fault", "{:?}", self.body);
        self.body.children_named("return").collect()
    }
    /// `(errors, results as (errorCode, id))` of a writeResult.
    fn write(&self) -> (Vec<usize>, Vec<(i64, Option<String>)>) {
        let ret = self.returns();
        assert_eq!(ret.len(), 1);
        let errors = ret[0]
            .children_named("errors")
            .map(|e| e.text.parse().unwrap())
            .collect();
        let results = ret[0]
            .children_named("results")
            .map(|r| {
                (
                    r.child_text("errorCode").unwrap().parse().unwrap(),
                    r.child_text("id").map(str::to_owned),
                )
            })
            .collect();
        (errors, results)
    }
}

impl Harness {
    async fn post(&self, body: String) -> Answer {
        let response = self
            .http
            .post(self.sim.endpoint())
            .header("Content-Type", "text/xml;charset=UTF-8")
            .header("SOAPAction", "\"whatever\"")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let root = espbridge_xml::parse(text.as_bytes()).unwrap();
        assert_eq!(root.name, "Envelope");
        let body = root.child("Body").unwrap().children[0].clone();
        if body.name != "Fault" {
            assert_eq!(body.namespace.as_deref(), Some(NS));
            assert!(body.name.ends_with("Response"), "{}", body.name);
        }
        Answer { status, body }
    }

    /// Calls `op` with `inner` (children XML) under a session header.
    async fn call(&self, session: &str, op: &str, inner: &str) -> Answer {
        self.post(envelope(Some(session), op, inner)).await
    }

    async fn login(&self) -> String {
        let answer = self
            .post(envelope(
                None,
                "login",
                "<apiToken>sim-api-token</apiToken>",
            ))
            .await;
        assert_eq!(answer.status, 200);
        answer.returns()[0].text.clone()
    }

    async fn add_list(&self, session: &str, name: &str) -> String {
        let answer = self
            .call(
                session,
                "addLists",
                &format!("<lists><name>{name}</name><label>{name} label</label></lists>"),
            )
            .await;
        let (errors, results) = answer.write();
        assert!(errors.is_empty());
        results[0].1.clone().unwrap()
    }

    async fn add_to_list(&self, session: &str, list_id: &str, emails: &[String]) -> Answer {
        let contacts: String = emails
            .iter()
            .map(|e| format!("<contacts><email>{e}</email></contacts>"))
            .collect();
        self.call(
            session,
            "addToList",
            &format!("<list><id>{list_id}</id></list>{contacts}"),
        )
        .await
    }
}

fn envelope(session: Option<&str>, op: &str, inner: &str) -> String {
    let header = session
        .map(|s| {
            format!("<soapenv:Header><v4:sessionHeader><sessionId>{s}</sessionId></v4:sessionHeader></soapenv:Header>")
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:v4="http://api.bronto.com/v4" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">{header}<soapenv:Body><v4:{op}>{inner}</v4:{op}></soapenv:Body></soapenv:Envelope>"#
    )
}

/// Contacts of the account (skips the share that is not).
fn contacts(sim: &BrontoSim, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("c{i}@example.org"))
        .filter(|e| sim.is_contact(e))
        .take(n)
        .collect()
}

fn delivery(start: &str, list_id: &str, extra: &str) -> String {
    format!(
        "<deliveries><start>{start}</start><messageId>{OPTIMOVE_MSG}</messageId><type>triggered</type>\
         <fromEmail>news@brand.example</fromEmail><fromName>Brand</fromName>\
         <replyEmail>reply@brand.example</replyEmail>{extra}\
         <recipients><type>list</type><id>{list_id}</id><deliveryType>selected</deliveryType></recipients></deliveries>"
    )
}

#[tokio::test]
async fn wsdl_is_served() {
    let h = harness().await;
    let text = h
        .http
        .get(format!("{}?wsdl", h.sim.endpoint()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("BrontoSoapApiImplService"));
    assert!(text.contains("name=\"addDeliveries\""));
}

#[tokio::test]
async fn recorded_login_gets_a_session_and_a_bad_token_is_102() {
    let h = harness().await;
    let request = fixture("login.request.xml").replace("BRONTO_API_KEY", "sim-api-token");
    let answer = h.post(request).await;
    assert_eq!(answer.status, 200);
    let recorded = espbridge_xml::parse(fixture("login.response.xml").as_bytes()).unwrap();
    let recorded_session = recorded.children[0].children[0].children[0].text.clone();
    let session = &answer.returns()[0].text;
    assert_eq!(session.len(), recorded_session.len());
    assert_eq!(session.matches('-').count(), 4);
    assert_eq!(h.sim.logins(), 1);

    let bad = h.post(fixture("login.request.xml")).await;
    assert_eq!(bad.status, 500);
    assert_eq!(bad.fault_code(), Some(102));
    assert_eq!(bad.body.child_text("faultcode"), Some("soap:Client"));
    assert!(
        bad.body
            .child_text("faultstring")
            .unwrap()
            .starts_with("102: ")
    );
    assert_eq!(h.sim.logins(), 1);
}

#[tokio::test]
async fn missing_unknown_and_idle_sessions_are_103() {
    let h = harness().await;
    let none = h.post(envelope(None, "readLists", "<filter/>")).await;
    assert_eq!(none.fault_code(), Some(103));
    let unknown = h.call("nope", "readLists", "<filter/>").await;
    assert_eq!(unknown.fault_code(), Some(103));

    let session = h.login().await;
    h.clock.advance(SignedDuration::from_mins(19));
    assert_eq!(h.call(&session, "readLists", "").await.fault_code(), None);
    // Sliding: 19 more minutes after the last call is still fine.
    h.clock.advance(SignedDuration::from_mins(19));
    assert_eq!(h.call(&session, "readLists", "").await.fault_code(), None);
    h.clock.advance(SignedDuration::from_secs(20 * 60 + 1));
    assert_eq!(
        h.call(&session, "readLists", "").await.fault_code(),
        Some(103)
    );

    let again = h.login().await;
    h.sim.expire_sessions();
    assert_eq!(
        h.call(&again, "readLists", "").await.fault_code(),
        Some(103)
    );
}

#[tokio::test]
async fn a_stricter_account_ends_sessions_after_their_calls_with_103() {
    let h = harness_with(BrontoSimConfig {
        session_max_calls: Some(3),
        ..BrontoSimConfig::default()
    })
    .await;
    let a = h.login().await;
    for _ in 0..3 {
        assert_eq!(h.call(&a, "readLists", "").await.fault_code(), None);
    }
    let used_up = h.call(&a, "readLists", "").await;
    assert_eq!(used_up.fault_code(), Some(103));
    assert_eq!(
        used_up.body.child_text("faultstring"),
        Some("103: Your session is invalid. Please log in again.")
    );
    // Another session is unaffected, and a used-up one is no longer live.
    let b = h.login().await;
    assert_eq!(h.call(&b, "readLists", "").await.fault_code(), None);
    assert_eq!(h.sim.peak_sessions(), 1);
    assert_eq!((h.sim.logins(), h.sim.calls_served()), (2, 4));
}

#[tokio::test]
async fn wrong_or_missing_namespace_and_garbage_are_107() {
    let h = harness().await;
    let session = h.login().await;
    let wrong = envelope(Some(&session), "readLists", "").replace(
        "xmlns:v4=\"http://api.bronto.com/v4\"",
        "xmlns:v4=\"http://api.bronto.com/v3\"",
    );
    assert_eq!(h.post(wrong).await.fault_code(), Some(107));
    let missing = envelope(Some(&session), "readLists", "").replace("v4:readLists", "readLists");
    assert_eq!(h.post(missing).await.fault_code(), Some(107));
    assert_eq!(h.post("not xml <".into()).await.fault_code(), Some(107));
    assert_eq!(
        h.call(&session, "readUnknowns", "").await.fault_code(),
        Some(107)
    );
}

#[tokio::test]
async fn recorded_read_messages_and_folders() {
    let mut config = BrontoSimConfig::default();
    config.folders[0].messages[0].name = "Wombat First Message".into();
    let h = harness_with(config).await;
    let session = h.login().await;
    let request = fixture("readMessages.request_filter_name.xml")
        .replace("f778bf49-d061-4dff-b692-de9489687c95", &session);
    let answer = h.post(request).await;
    let returns = answer.returns();
    assert_eq!(returns.len(), 1);
    let recorded = espbridge_xml::parse(fixture("readMessages.response.xml").as_bytes()).unwrap();
    let recorded_return = &recorded.children[0].children[0].children[0];
    // The recorded fields come first, in the same order.
    let names: Vec<&str> = returns[0]
        .children
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let recorded_names: Vec<&str> = recorded_return
        .children
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(&names[..recorded_names.len()], recorded_names.as_slice());
    assert_eq!(returns[0].child_text("id"), Some(OPTIMOVE_MSG));
    assert!(returns[0].child("content").is_none());

    let folders = h
        .call(
            &session,
            "readMessageFolders",
            "<filter><name><operator>EqualTo</operator><value>Optimove</value></name></filter><pageNumber>1</pageNumber>",
        )
        .await;
    let folder_id = folders.returns()[0].child_text("id").unwrap().to_owned();
    assert_eq!(folder_id.len(), 36);
    let in_folder = h
        .call(
            &session,
            "readMessages",
            &format!("<filter><messageFolderId>{folder_id}</messageFolderId></filter><includeContent>true</includeContent><pageNumber>1</pageNumber>"),
        )
        .await;
    assert_eq!(in_folder.returns().len(), 2);
    let contents: Vec<&str> = in_folder.returns()[0]
        .children_named("content")
        .map(|c| c.child_text("type").unwrap())
        .collect();
    assert_eq!(contents, ["html", "text"]);
    let past_end = h
        .call(
            &session,
            "readMessages",
            "<filter/><pageNumber>2</pageNumber>",
        )
        .await;
    assert!(past_end.returns().is_empty());
}

#[tokio::test]
async fn read_messages_answers_each_status_and_filters_on_it() {
    use espbridge_bronto::sim::SeedMessage;
    let mut config = BrontoSimConfig::default();
    let folder_id = config.folders[0].id.clone();
    config.folders[0].messages.extend([
        SeedMessage::new("0bcc03eb00000000000000000000001c7d12", "Autumn", "Soon")
            .with_status("tmp"),
        SeedMessage::new("0bcc03eb00000000000000000000001c7d13", "Spring", "Gone")
            .with_status("delete"),
    ]);
    let h = harness_with(config).await;
    let session = h.login().await;
    let read = |filter: String| {
        let (h, session) = (&h, &session);
        async move {
            h.call(
                session,
                "readMessages",
                &format!(
                    "<filter>{filter}</filter><includeContent>false</includeContent>\
                     <pageNumber>1</pageNumber>"
                ),
            )
            .await
        }
    };
    let all = read(format!("<messageFolderId>{folder_id}</messageFolderId>")).await;
    let statuses: Vec<&str> = all
        .returns()
        .iter()
        .map(|r| r.child_text("status").unwrap())
        .collect();
    assert_eq!(statuses, ["active", "active", "tmp", "delete"]);
    for status in ["active", "tmp", "delete"] {
        let only = read(format!(
            "<messageFolderId>{folder_id}</messageFolderId><status>{status}</status>"
        ))
        .await;
        let got: Vec<&str> = only
            .returns()
            .iter()
            .map(|r| r.child_text("status").unwrap())
            .collect();
        assert!(
            !got.is_empty() && got.iter().all(|s| *s == status),
            "{status}: {got:?}"
        );
    }
}

#[tokio::test]
async fn recorded_add_to_list_by_name_and_read_lists() {
    let h = harness().await;
    let session = h.login().await;
    let list_id = h.add_list(&session, "wombat").await;
    assert_eq!(list_id.len(), 36);
    let email = "wombat@spreecommerce.com";
    let request = fixture("addToList.request_list_by_name.xml")
        .replace("288bb1c2-e6d1-4153-9ff1-3f9beba803e8", &session);
    let answer = h.post(request).await;
    let (errors, results) = answer.write();
    let expected = if h.sim.is_contact(email) { 0 } else { 302 };
    assert_eq!(errors.is_empty(), expected == 0);
    assert_eq!(results[0].0, expected);
    if expected == 0 {
        assert_eq!(results[0].1.as_deref(), Some(list_id.as_str()));
        let ret = answer.returns()[0];
        let shape: Vec<&str> = ret.children[0]
            .children
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(shape, ["id", "isNew", "isError", "errorCode"]);
    }

    let request = fixture("readLists.request_empty_filter.xml")
        .replace("a46cb587-e6d8-445c-b6b2-d58262efe667", &session);
    let lists = h.post(request).await;
    let returns = lists.returns();
    assert_eq!(returns.len(), 1);
    let names: Vec<&str> = returns[0]
        .children
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["id", "name", "label", "activeCount", "status", "visibility"]
    );
    assert_eq!(
        returns[0].child_text("activeCount"),
        Some(if expected == 0 { "1" } else { "0" })
    );
    assert_eq!(h.sim.lists()[0].name, "wombat");

    // Filter by name and by id; duplicate name is 502.
    let by_name = h
        .call(
            &session,
            "readLists",
            "<filter><name><operator>StartsWith</operator><value>wom</value></name></filter>",
        )
        .await;
    assert_eq!(by_name.returns().len(), 1);
    let by_id = h
        .call(
            &session,
            "readLists",
            "<filter><id>0bcc03ec000000000000000000000000ffff</id></filter>",
        )
        .await;
    assert!(by_id.returns().is_empty());
    let dup = h
        .call(
            &session,
            "addLists",
            "<lists><name>wombat</name><label>x</label></lists><lists><name>n</name></lists>",
        )
        .await;
    let (errors, results) = dup.write();
    assert_eq!(errors, [0, 1]);
    assert_eq!(results[0].0, 502);
    assert_eq!(results[1].0, 110);
}

#[tokio::test]
async fn reads_page_by_5000_and_are_empty_past_the_end() {
    let h = harness().await;
    let session = h.login().await;
    for batch in 0..2 {
        let lists: String = (0..(if batch == 0 { 5000 } else { 1 }))
            .map(|i| format!("<lists><name>l{batch}-{i}</name><label>x</label></lists>"))
            .collect();
        assert!(
            h.call(&session, "addLists", &lists)
                .await
                .write()
                .0
                .is_empty()
        );
    }
    let page = |n: u32, extra: &str| format!("<filter/><pageNumber>{n}</pageNumber>{extra}");
    assert_eq!(
        h.call(&session, "readLists", &page(1, ""))
            .await
            .returns()
            .len(),
        5000
    );
    let second = h.call(&session, "readLists", &page(2, "")).await;
    assert_eq!(second.returns()[0].child_text("name"), Some("l1-0"));
    assert_eq!(second.returns().len(), 1);
    assert!(
        h.call(&session, "readLists", &page(3, ""))
            .await
            .returns()
            .is_empty()
    );
    let small = h
        .call(&session, "readLists", &page(2, "<pageSize>10</pageSize>"))
        .await;
    assert_eq!(small.returns()[0].child_text("name"), Some("l0-10"));
    let tiny = h
        .call(&session, "readLists", &page(1, "<pageSize>5</pageSize>"))
        .await;
    assert_eq!(tiny.fault_code(), Some(115));
    let huge = h
        .call(&session, "readLists", &page(1, "<pageSize>5001</pageSize>"))
        .await;
    assert_eq!(huge.fault_code(), Some(106));
    let log = h.sim.requests();
    assert_eq!(log[1].body.as_ref().unwrap()["items"], 5000);
}

#[tokio::test]
async fn add_to_list_item_errors_and_call_limits() {
    let h = harness().await;
    let session = h.login().await;
    let list_id = h.add_list(&session, "audience").await;
    let good = contacts(&h.sim, 2);
    let unknown = (0..)
        .map(|i| format!("u{i}@example.org"))
        .find(|e| !h.sim.is_contact(e))
        .unwrap();
    let long = format!("{}@{}.example.org", "l".repeat(30), "d".repeat(60));
    let batch = vec![
        good[0].clone(),
        unknown.clone(),
        "not-an-email".to_owned(),
        long,
        good[1].clone(),
    ];
    let (errors, results) = h.add_to_list(&session, &list_id, &batch).await.write();
    assert_eq!(errors, [1, 2, 3]);
    let codes: Vec<i64> = results.iter().map(|r| r.0).collect();
    assert_eq!(codes, [0, 302, 303, 317, 0]);
    // Re-sending adds nobody twice: 506 for those already on the list.
    let (errors, results) = h.add_to_list(&session, &list_id, &batch[..1]).await.write();
    assert_eq!((errors, results[0].0), (vec![0], 506));
    assert_eq!(h.sim.list_members(&list_id), good);

    let empty = h
        .call(
            &session,
            "addToList",
            &format!("<list><id>{list_id}</id></list>"),
        )
        .await;
    assert_eq!(empty.fault_code(), Some(105));
    let many: Vec<String> = (0..5001).map(|i| format!("m{i}@example.org")).collect();
    let too_many = h.add_to_list(&session, &list_id, &many).await;
    assert_eq!(too_many.fault_code(), Some(106));
    assert_eq!(h.sim.list_members(&list_id).len(), 2);
    let log = h.sim.requests();
    let last = log.last().unwrap();
    assert_eq!(last.body.as_ref().unwrap()["operation"], "addToList");
    assert!(!format!("{log:?}").contains("example.org"));
}

#[tokio::test]
async fn address_rate_limit_refuses_whole_calls_until_the_window_passes() {
    let config = BrontoSimConfig {
        addresses_per_minute: Some(1000),
        rate_window: Duration::from_millis(300),
        ..BrontoSimConfig::default()
    };
    let h = harness_with(config).await;
    let session = h.login().await;
    let list_id = h.add_list(&session, "rated").await;
    let all = contacts(&h.sim, 1600);
    let first = h.add_to_list(&session, &list_id, &all[..800]).await;
    assert_eq!(first.write().0, Vec::<usize>::new());
    let second = h.add_to_list(&session, &list_id, &all[800..]).await;
    assert_eq!(second.fault_code(), Some(101));
    assert!(
        second
            .body
            .child_text("faultstring")
            .unwrap()
            .starts_with("101: Rate limit")
    );
    assert_eq!(h.sim.list_members(&list_id).len(), 800);
    assert_eq!(h.sim.rate_refusals(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let third = h.add_to_list(&session, &list_id, &all[800..]).await;
    assert!(third.write().0.is_empty());
    assert_eq!(h.sim.list_members(&list_id).len(), 1600);
}

#[tokio::test]
async fn add_deliveries_validates_each_item() {
    let h = harness().await;
    let session = h.login().await;
    let list_id = h.add_list(&session, "send").await;
    let ok = delivery("2026-03-02T10:00:00+01:00", &list_id, "");
    let cases = [
        (
            ok.replace("2026-03-02T10:00:00+01:00", "2026-03-02T10:00:00"),
            201,
        ),
        (
            ok.replace(OPTIMOVE_MSG, "0bcc03eb000000000000000000000000dead"),
            205,
        ),
        (
            ok.replace("<type>triggered</type>", "<type>transactional</type>"),
            215,
        ),
        (ok.replace("news@brand.example", "news"), 202),
        (ok.replace("<fromName>Brand</fromName>", ""), 213),
        (ok.replace("reply@brand.example", "reply@"), 202),
        (ok.replace("<type>list</type>", "<type>planet</type>"), 204),
        (
            ok.replace(&list_id, "0bcc03ec000000000000000000000000ffff"),
            206,
        ),
        (
            ok.replace(
                "<deliveryType>selected</deliveryType>",
                "<deliveryType>ineligible</deliveryType>",
            ),
            209,
        ),
        (
            delivery("2026-03-02T10:00:00Z", &list_id, "<throttle>721</throttle>"),
            220,
        ),
    ];
    let body: String = cases
        .iter()
        .map(|(d, _)| d.as_str())
        .chain([ok.as_str()])
        .collect();
    let (errors, results) = h.call(&session, "addDeliveries", &body).await.write();
    let codes: Vec<i64> = results.iter().map(|r| r.0).collect();
    let mut expected: Vec<i64> = cases.iter().map(|(_, c)| *c).collect();
    expected.push(0);
    assert_eq!(codes, expected);
    assert_eq!(errors, (0..cases.len()).collect::<Vec<_>>());
    let made = h.sim.deliveries();
    assert_eq!(made.len(), 1);
    assert_eq!(
        made[0].start,
        "2026-03-02T09:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(Some(made[0].id.clone()), results[cases.len()].1);
    let empty = h.call(&session, "addDeliveries", "").await;
    assert_eq!(empty.fault_code(), Some(105));
}

#[tokio::test]
async fn deliveries_are_not_deduplicated_and_read_back_by_id_or_message_and_day() {
    let h = harness().await;
    let session = h.login().await;
    let list_id = h.add_list(&session, "send").await;
    let members = contacts(&h.sim, 1000);
    h.add_to_list(&session, &list_id, &members).await;
    let body = delivery("2026-03-02T12:00:00+00:00", &list_id, "");
    let first = h.call(&session, "addDeliveries", &body).await.write().1;
    let second = h.call(&session, "addDeliveries", &body).await.write().1;
    let (a, b) = (first[0].1.clone().unwrap(), second[0].1.clone().unwrap());
    assert_ne!(a, b);
    assert_eq!(h.sim.deliveries().len(), 2);
    assert_eq!(h.sim.deliveries()[0].audience, 1000);

    let by_id = h
        .call(&session, "readDeliveries", &format!("<filter><id>{a}</id></filter><includeRecipients>true</includeRecipients><includeContent>false</includeContent><pageNumber>1</pageNumber>"))
        .await;
    let returns = by_id.returns();
    assert_eq!(returns.len(), 1);
    let d = returns[0];
    let order: Vec<&str> = d.children.iter().map(|c| c.name.as_str()).take(9).collect();
    assert_eq!(
        order,
        [
            "id",
            "start",
            "messageId",
            "status",
            "type",
            "fromEmail",
            "fromName",
            "replyEmail",
            "recipients"
        ]
    );
    assert_eq!(d.child_text("start"), Some("2026-03-02T12:00:00Z"));
    assert_eq!(d.child_text("status"), Some("unsent"));
    assert_eq!(d.child_text("numSends"), Some("0"));

    let same_day = format!(
        "<filter><messageId>{OPTIMOVE_MSG}</messageId><start><operator>SameDay</operator><value>2026-03-02T23:00:00+00:00</value></start></filter><pageNumber>1</pageNumber>"
    );
    assert_eq!(
        h.call(&session, "readDeliveries", &same_day)
            .await
            .returns()
            .len(),
        2
    );
    let other_day = same_day.replace("2026-03-02T23", "2026-03-03T23");
    assert!(
        h.call(&session, "readDeliveries", &other_day)
            .await
            .returns()
            .is_empty()
    );
}

/// Status and counters (sends, deliveries, bounces, opens, clicks, unsubscribes) of a delivery.
/// Logs in anew: the clock jumps further than the idle timeout.
async fn read_counters(h: &Harness, id: &str) -> (String, [u64; 8]) {
    let session = h.login().await;
    let answer = h
        .call(
            &session,
            "readDeliveries",
            &format!("<filter><id>{id}</id></filter>"),
        )
        .await;
    let d = answer.returns()[0].clone();
    let n = |name: &str| d.child_text(name).unwrap().parse::<u64>().unwrap();
    (
        d.child_text("status").unwrap().to_owned(),
        [
            n("numSends"),
            n("numDeliveries"),
            n("numBounces"),
            n("uniqOpens"),
            n("numOpens"),
            n("uniqClicks"),
            n("numClicks"),
            n("numUnsubscribesByPrefs"),
        ],
    )
}

#[tokio::test]
async fn metrics_are_zero_before_start_then_grow_monotonically_for_a_week() {
    let h = harness().await;
    let session = h.login().await;
    let list_id = h.add_list(&session, "metrics").await;
    h.add_to_list(&session, &list_id, &contacts(&h.sim, 2000))
        .await;
    let (_, results) = h
        .call(
            &session,
            "addDeliveries",
            &delivery("2026-03-02T09:00:00Z", &list_id, ""),
        )
        .await
        .write();
    let id = results[0].1.clone().unwrap();
    let (status, before) = read_counters(&h, &id).await;
    assert_eq!(status, "unsent");
    assert_eq!(before, [0; 8]);
    let mut last = before;
    for _ in 0..(8 * 4) {
        h.clock.advance(SignedDuration::from_hours(6));
        let (status, now) = read_counters(&h, &id).await;
        assert_eq!(status, "sent");
        assert!(
            now.iter().zip(&last).all(|(n, l)| n >= l),
            "{now:?} after {last:?}"
        );
        last = now;
    }
    let [sends, delivered, _, uniq_opens, _, uniq_clicks, _, _] = last;
    assert_eq!(sends, 2000);
    assert!(delivered > 1940 && delivered < 2000, "{last:?}");
    assert!((400..600).contains(&uniq_opens), "{last:?}");
    assert!((60..120).contains(&uniq_clicks), "{last:?}");
}

#[tokio::test]
async fn deleting_a_list_of_a_pending_delivery_is_505_until_it_is_sent() {
    let h = harness().await;
    let session = h.login().await;
    let list_id = h.add_list(&session, "temp").await;
    h.add_to_list(&session, &list_id, &contacts(&h.sim, 3))
        .await;
    h.call(
        &session,
        "addDeliveries",
        &delivery("2026-03-02T09:00:00Z", &list_id, ""),
    )
    .await;
    let delete = format!(
        "<lists><id>{list_id}</id></lists><lists><id>0bcc03ec000000000000000000000000ffff</id></lists>"
    );
    let (errors, results) = h.call(&session, "deleteLists", &delete).await.write();
    assert_eq!(errors, [0, 1]);
    assert_eq!((results[0].0, results[1].0), (505, 501));
    h.clock.advance(SignedDuration::from_hours(2));
    let session = h.login().await;
    let (errors, results) = h.call(&session, "deleteLists", &delete).await.write();
    assert_eq!(errors, [1]);
    assert_eq!(results[0], (0, Some(list_id)));
    assert!(h.sim.lists().is_empty());
}

#[tokio::test]
async fn injected_faults_match_the_operation_name() {
    let h = harness().await;
    let session = h.login().await;
    h.sim.inject(Fault::on(FaultKind::RateLimit, "addLists", 1));
    h.sim
        .inject(Fault::on(FaultKind::Status(503), "readLists", 1));
    let read = h.call(&session, "readLists", "").await;
    assert_eq!((read.status, read.fault_code()), (503, Some(101)));
    let limited = h
        .call(
            &session,
            "addLists",
            "<lists><name>a</name><label>b</label></lists>",
        )
        .await;
    assert_eq!(limited.fault_code(), Some(101));
    assert!(h.sim.lists().is_empty());
    h.sim
        .inject(Fault::on(FaultKind::DropConnection, "readLists", 1));
    let dropped = h
        .http
        .post(h.sim.endpoint())
        .body(envelope(Some(&session), "readLists", ""))
        .send()
        .await;
    assert!(dropped.is_err());
    assert_eq!(h.call(&session, "readLists", "").await.fault_code(), None);
}

#[tokio::test]
async fn a_timed_out_add_deliveries_still_creates_the_delivery() {
    let h = harness().await;
    let session = h.login().await;
    let list_id = h.add_list(&session, "slow").await;
    h.add_to_list(&session, &list_id, &contacts(&h.sim, 2))
        .await;
    h.sim.inject(Fault::on(
        FaultKind::Timeout(Duration::from_millis(400)),
        "addDeliveries",
        1,
    ));
    let impatient = h
        .http
        .post(h.sim.endpoint())
        .timeout(Duration::from_millis(100))
        .body(envelope(
            Some(&session),
            "addDeliveries",
            &delivery("2026-03-02T09:00:00Z", &list_id, ""),
        ))
        .send()
        .await;
    assert!(impatient.is_err());
    assert_eq!(h.sim.deliveries().len(), 1);
    let ops: Vec<String> = h
        .sim
        .requests()
        .iter()
        .map(|r| {
            r.body.as_ref().unwrap()["operation"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ops, ["login", "addLists", "addToList", "addDeliveries"]);
}
