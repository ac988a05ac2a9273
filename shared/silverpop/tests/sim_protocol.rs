//! Raw-protocol tests of the Silverpop simulator: XML over HTTP with reqwest, both encodings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ManualClock;
use espbridge_esp_kit::SimView;
use espbridge_silverpop::sim::{QueryCriterion, SilverpopSim, SilverpopSimConfig};
use espbridge_sim::{Fault, FaultKind};
use jiff::SignedDuration;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const START: &str = "2026-03-02T08:00:00Z";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

// ----- the shared XML tree, with what the assertions need -----

use espbridge_xml::Element as El;

trait ElExt {
    fn all(&self, name: &str) -> Vec<&El>;
    /// Text of a child that must be there.
    fn text_at(&self, name: &str) -> String;
    /// Every element path below (and including) this one.
    fn paths(&self, prefix: &str, out: &mut BTreeSet<String>);
}

impl ElExt for El {
    fn all(&self, name: &str) -> Vec<&El> {
        self.children.iter().filter(|c| c.name == name).collect()
    }
    fn text_at(&self, name: &str) -> String {
        self.text_of(name)
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.name))
    }
    fn paths(&self, prefix: &str, out: &mut BTreeSet<String>) {
        let here = format!("{prefix}/{}", self.name);
        for child in &self.children {
            child.paths(&here, out);
        }
        out.insert(here);
    }
}

fn parse(doc: &str) -> El {
    espbridge_xml::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e} in {doc}"))
}

// ----- the raw client -----

struct Env {
    sim: SilverpopSim,
    clock: ManualClock,
    http: reqwest::Client,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    raw: String,
    root: El,
}

impl Reply {
    fn result(&self) -> &El {
        self.root.child("Body").unwrap().child("RESULT").unwrap()
    }
    fn success(&self) -> bool {
        self.result()
            .text_at("SUCCESS")
            .eq_ignore_ascii_case("true")
    }
    fn errorid(&self) -> Option<i64> {
        let fault = self.root.child("Body")?.child("Fault")?;
        let id = fault.child("detail")?.child("error")?.text_at("errorid");
        Some(id.parse().unwrap())
    }
    #[track_caller]
    fn ok(&self) -> &El {
        assert_eq!(self.status, 200, "{}", self.raw);
        assert!(self.success(), "{}", self.raw);
        assert_eq!(self.errorid(), None);
        self.result()
    }
    #[track_caller]
    fn fault(&self, errorid: i64) {
        assert_eq!(self.status, 200, "{}", self.raw);
        assert!(!self.success(), "{}", self.raw);
        assert_eq!(self.errorid(), Some(errorid), "{}", self.raw);
    }
}

fn envelope(op: &str) -> String {
    format!("<Envelope><Body>{op}</Body></Envelope>")
}

impl Env {
    async fn new() -> Self {
        Self::with(SilverpopSimConfig::default()).await
    }

    async fn with(config: SilverpopSimConfig) -> Self {
        let clock = ManualClock::new(START.parse().unwrap());
        let sim = SilverpopSim::start(config, Arc::new(clock.clone()))
            .await
            .unwrap();
        Self {
            sim,
            clock,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, session: Option<&str>) -> String {
        match session {
            Some(s) => format!("{};jsessionid={s}", self.sim.endpoint()),
            None => self.sim.endpoint(),
        }
    }

    async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let raw = resp.text().await.unwrap();
        let root = parse(&raw);
        assert_eq!(root.name, "Envelope", "{raw}");
        Reply { status, raw, root }
    }

    /// Raw `text/xml` body.
    async fn raw(&self, session: Option<&str>, op: &str) -> Reply {
        self.raw_doc(session, &envelope(op)).await
    }

    async fn raw_doc(&self, session: Option<&str>, doc: &str) -> Reply {
        let resp = self
            .http
            .post(self.url(session))
            .header("Content-Type", "text/xml;charset=UTF-8")
            .body(doc.to_owned())
            .send()
            .await
            .unwrap();
        Self::read(resp).await
    }

    /// `xml=` form field.
    async fn form(&self, session: Option<&str>, op: &str) -> Reply {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("xml", &envelope(op))
            .finish();
        self.form_body(session, body).await
    }

    async fn form_body(&self, session: Option<&str>, body: String) -> Reply {
        let resp = self
            .http
            .post(self.url(session))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Self::read(resp).await
    }

    async fn login(&self) -> String {
        let reply = self
            .form(
                None,
                "<Login><USERNAME>espbridge</USERNAME><PASSWORD>sim-password</PASSWORD></Login>",
            )
            .await;
        let result = reply.ok();
        let session = result.text_at("SESSIONID");
        assert_eq!(
            result.text_at("SESSION_ENCODING"),
            format!(";jsessionid={session}")
        );
        session
    }

    async fn add(&self, s: &str, customer: &str, tag: &str, update: bool) -> Reply {
        let flag = if update {
            "<UPDATE_IF_FOUND>TRUE</UPDATE_IF_FOUND>"
        } else {
            ""
        };
        self.raw(
            Some(s),
            &format!(
                "<AddRecipient><LIST_ID>2740754</LIST_ID><CREATED_FROM>1</CREATED_FROM>{flag}\
                 <COLUMN><NAME>CustomerID</NAME><VALUE>{customer}</VALUE></COLUMN>\
                 <COLUMN><NAME>OptimoveCampaign</NAME><VALUE>{tag}</VALUE></COLUMN></AddRecipient>"
            ),
        )
        .await
    }

    async fn insert_rows(&self, s: &str, rows: &[(&str, &str)]) -> Reply {
        let mut xml =
            String::from("<InsertUpdateRelationalTable><TABLE_ID>348449</TABLE_ID><ROWS>");
        for (action, customer) in rows {
            xml.push_str(&format!(
                "<ROW><COLUMN name=\"ActionID\"><![CDATA[{action}]]></COLUMN>\
                 <COLUMN name=\"CustomerID\"><![CDATA[{customer}]]></COLUMN></ROW>"
            ));
        }
        xml.push_str("</ROWS></InsertUpdateRelationalTable>");
        self.form(Some(s), &xml).await
    }

    async fn rt_query(&self, s: &str, name: &str, action: &str) -> i64 {
        let reply = self
            .raw(
                Some(s),
                &format!(
                    "<CreateQuery><QUERY_NAME>{name}</QUERY_NAME><PARENT_LIST_ID>2740754</PARENT_LIST_ID>\
                     <VISIBILITY>1</VISIBILITY><CRITERIA><EXPRESSION criteria_type=\"rt_profile\">\
                     <CONJUNCTION>AND</CONJUNCTION><ID>348449</ID><OPERATOR>match</OPERATOR><RT_EXPRESSIONS>\
                     <EXPRESSION criteria_type=\"rt_profile\"><COLUMN>ActionID</COLUMN>\
                     <CONJUNCTION>AND</CONJUNCTION><OPERATOR>is equal to</OPERATOR>\
                     <VALUE><![CDATA[{action}]]></VALUE></EXPRESSION></RT_EXPRESSIONS></EXPRESSION>\
                     </CRITERIA></CreateQuery>"
                ),
            )
            .await;
        reply.ok().text_at("ListId").parse().unwrap()
    }

    async fn schedule(&self, s: &str, list: i64, name: &str, when: &str) -> Reply {
        self.raw(
            Some(s),
            &format!(
                "<ScheduleMailing><TEMPLATE_ID>410233</TEMPLATE_ID><LIST_ID>{list}</LIST_ID>\
                 <MAILING_NAME>{name}</MAILING_NAME><VISIBILITY>1</VISIBILITY><SEND_HTML/><SEND_TEXT/>\
                 <PARENT_FOLDER_PATH>Optimove</PARENT_FOLDER_PATH><SCHEDULED>{when}</SCHEDULED>\
                 </ScheduleMailing>"
            ),
        )
        .await
    }

    async fn sent_mailings(&self, s: &str, flags: &str) -> Vec<El> {
        let reply = self
            .form(
                Some(s),
                &format!(
                    "<GetSentMailingsForOrg><DATE_START>03/01/2026 00:00:00</DATE_START>\
                     <DATE_END>03/31/2026 23:59:59</DATE_END>{flags}</GetSentMailingsForOrg>"
                ),
            )
            .await;
        reply.ok().all("Mailing").into_iter().cloned().collect()
    }

    /// `polls` GetJobStatus answers for `job`.
    async fn job_statuses(&self, s: &str, job: &str, polls: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..polls {
            let reply = self
                .raw(
                    Some(s),
                    &format!("<GetJobStatus><JOB_ID>{job}</JOB_ID></GetJobStatus>"),
                )
                .await;
            out.push(reply.ok().text_at("JOB_STATUS"));
        }
        out
    }

    /// CreateContactList in the Optimove database; the new list's id.
    async fn contact_list(&self, s: &str, name: &str, folder: &str) -> String {
        let reply = self
            .raw(
                Some(s),
                &format!(
                    "<CreateContactList><DATABASE_ID>2740754</DATABASE_ID>\
                     <CONTACT_LIST_NAME>{name}</CONTACT_LIST_NAME><VISIBILITY>1</VISIBILITY>\
                     <PARENT_FOLDER_PATH>{folder}</PARENT_FOLDER_PATH></CreateContactList>"
                ),
            )
            .await;
        reply.ok().text_at("CONTACT_LIST_ID")
    }

    /// AddContactToContactList by the CustomerID key column.
    async fn add_to_list(&self, s: &str, list: &str, customer: &str) -> Reply {
        self.raw(
            Some(s),
            &format!(
                "<AddContactToContactList><CONTACT_LIST_ID>{list}</CONTACT_LIST_ID>\
                 <COLUMN><NAME>CustomerID</NAME><VALUE><![CDATA[{customer}]]></VALUE></COLUMN>\
                 </AddContactToContactList>"
            ),
        )
        .await
    }

    async fn tracking(&self, s: &str, mailing: &str) -> El {
        let reply = self
            .raw(
                Some(s),
                &format!(
                    "<GetAggregateTrackingForMailing><MAILING_ID>{mailing}</MAILING_ID>\
                     </GetAggregateTrackingForMailing>"
                ),
            )
            .await;
        reply.ok().child("Mailing").unwrap().clone()
    }
}

const TEMPLATES: &str = "<GetMailingTemplates><VISIBILITY>1</VISIBILITY></GetMailingTemplates>";

// ----- sessions -----

#[tokio::test]
async fn login_in_both_encodings_then_sessions_expire_with_fault_145() {
    let env = Env::new().await;
    let raw = env
        .raw(
            None,
            "<Login><USERNAME>espbridge</USERNAME><PASSWORD>sim-password</PASSWORD></Login>",
        )
        .await;
    let raw_session = raw.ok().text_at("SESSIONID");
    let session = env.login().await;
    assert_ne!(raw_session, session);
    assert_eq!(env.sim.logins(), 2);

    env.raw(Some(&session), TEMPLATES).await.ok();
    env.form(Some(&raw_session), TEMPLATES).await.ok();
    env.raw(None, TEMPLATES).await.fault(145);
    env.raw(Some("NOT-A-SESSION"), TEMPLATES).await.fault(145);

    // Use keeps a session alive; 20 idle minutes end it.
    env.clock.advance(SignedDuration::from_mins(15));
    env.raw(Some(&session), TEMPLATES).await.ok();
    env.clock.advance(SignedDuration::from_mins(15));
    env.raw(Some(&session), TEMPLATES).await.ok();
    env.raw(Some(&raw_session), TEMPLATES).await.fault(145);

    env.sim.expire_sessions();
    env.raw(Some(&session), TEMPLATES).await.fault(145);

    let again = env.login().await;
    env.form(Some(&again), "<Logout/>").await.ok();
    env.form(Some(&again), TEMPLATES).await.fault(145);
}

#[tokio::test]
async fn bad_credentials_invalid_xml_and_unknown_operations_are_faults_on_200() {
    let env = Env::new().await;
    let bad = env
        .raw(
            None,
            "<Login><USERNAME>espbridge</USERNAME><PASSWORD>wrong</PASSWORD></Login>",
        )
        .await;
    bad.fault(50);
    let fixture =
        std::fs::read_to_string(format!("{FIXTURES}/Login.request.form-urlencoded.txt")).unwrap();
    env.form_body(None, fixture.trim().to_owned())
        .await
        .fault(50);

    let s = env.login().await;
    env.raw_doc(Some(&s), "<Envelope><Body><GetMailingTemplates>")
        .await
        .fault(51);
    env.raw_doc(
        Some(&s),
        "<Envelope><body><GetMailingTemplates><VISIBILITY>1</VISIBILITY></GetMailingTemplates></body></Envelope>",
    )
    .await
    .fault(51);
    env.raw(Some(&s), "<LOGIN/>").await.fault(51);
    env.raw(Some(&s), "<GetMailingTemplate/>").await.fault(51);
    env.form_body(Some(&s), "notxml=1".into()).await.fault(51);
    let log = env.sim.requests();
    assert!(log.iter().all(|r| r.status == 200));
    assert_eq!(log.iter().filter(|r| r.reply_code == Some(51)).count(), 5);
}

#[tokio::test]
async fn the_eleventh_concurrent_request_is_refused() {
    let env = Arc::new(Env::new().await);
    let s = env.login().await;
    env.sim.inject(Fault::any(
        FaultKind::Timeout(Duration::from_millis(800)),
        10,
    ));
    let mut held = Vec::new();
    for _ in 0..10 {
        let env = env.clone();
        let s = s.clone();
        held.push(tokio::spawn(
            async move { env.raw(Some(&s), TEMPLATES).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.raw(Some(&s), TEMPLATES).await.fault(10);
    for h in held {
        h.await.unwrap().ok();
    }
    env.raw(Some(&s), TEMPLATES).await.ok();
    assert_eq!(env.sim.limit_refusals(), 1);
    assert_eq!(env.sim.peak_in_flight(), 11);
}

#[tokio::test]
async fn requests_waiting_out_the_latency_count_against_the_cap() {
    let env = Arc::new(Env::new().await);
    let s = env.login().await;
    env.sim.set_latency(Duration::from_millis(300));
    let burst = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (env, s) = (env.clone(), s.clone());
                tokio::spawn(async move { env.raw(Some(&s), TEMPLATES).await.errorid() })
            })
            .collect();
        async move {
            let mut refused = 0u64;
            for t in tasks {
                match t.await.unwrap() {
                    None => {}
                    Some(10) => refused += 1,
                    Some(other) => panic!("errorid {other}"),
                }
            }
            refused
        }
    };
    // Ten at once fit; every one of them waited 300 ms in flight.
    let started = std::time::Instant::now();
    assert_eq!(burst(10).await, 0);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(env.sim.peak_in_flight(), 10);
    assert_eq!(env.sim.limit_refusals(), 0);
    // Eleven at once: the cap sees all eleven while they wait, and refuses.
    let refused = burst(11).await;
    assert!(refused >= 1, "none of eleven refused");
    assert_eq!(env.sim.limit_refusals(), refused);
    assert_eq!(env.sim.peak_in_flight(), 11);
}

#[tokio::test]
async fn at_most_twenty_sessions_live_at_once() {
    let env = Env::new().await;
    let mut sessions = Vec::new();
    for _ in 0..20 {
        sessions.push(env.login().await);
    }
    env.form(
        None,
        "<Login><USERNAME>espbridge</USERNAME><PASSWORD>sim-password</PASSWORD></Login>",
    )
    .await
    .fault(146);
    assert_eq!(
        env.sim.limit_refusals(),
        1,
        "a refused Login is a limit refusal"
    );
    assert_eq!(env.sim.peak_sessions(), 20);
    env.raw(Some(&sessions[0]), "<Logout/>").await.ok();
    env.login().await;
    assert_eq!(env.sim.peak_sessions(), 20);
}

#[tokio::test]
async fn a_strict_org_ends_sessions_after_their_calls_and_caps_them_lower() {
    let env = Env::with(SilverpopSimConfig {
        session_max_calls: Some(3),
        max_sessions: 2,
        ..SilverpopSimConfig::default()
    })
    .await;
    let a = env.login().await;
    for _ in 0..3 {
        env.raw(Some(&a), TEMPLATES).await.ok();
    }
    // The fourth call meets the real session-lost Fault, as an expired session does.
    let used_up = env.raw(Some(&a), TEMPLATES).await;
    used_up.fault(145);
    assert!(
        used_up.raw.contains("Session has expired or is invalid")
            && used_up.raw.contains("SP.Admin"),
        "{}",
        used_up.raw
    );
    // A used-up session no longer counts against the cap; a Logout is no call.
    let b = env.login().await;
    let c = env.login().await;
    env.form(
        None,
        "<Login><USERNAME>espbridge</USERNAME><PASSWORD>sim-password</PASSWORD></Login>",
    )
    .await
    .fault(146);
    assert_eq!(env.sim.peak_sessions(), 2);
    env.raw(Some(&b), TEMPLATES).await.ok();
    env.raw(Some(&b), "<Logout/>").await.ok();
    env.raw(Some(&b), TEMPLATES).await.fault(145);
    for _ in 0..3 {
        env.raw(Some(&c), TEMPLATES).await.ok();
    }
    env.raw(Some(&c), "<Logout/>").await.fault(145);
    assert_eq!(env.sim.logins(), 3);
}

#[tokio::test]
async fn request_fixtures_are_understood_verbatim() {
    let env = Env::new().await;
    let s = env.login().await;
    let doc = std::fs::read_to_string(format!("{FIXTURES}/CreateTable.request.xml")).unwrap();
    let created = env.raw_doc(Some(&s), &doc).await;
    let id: i64 = created.ok().text_at("TABLE_ID").parse().unwrap();
    let table = env.sim.tables().into_iter().find(|t| t.id == id).unwrap();
    assert_eq!(table.name, "Purchases");
    assert_eq!(table.columns.len(), 3);
    assert!(table.columns[0].key && table.columns[1].required && !table.columns[1].key);

    // The fixture previews mailing 5, which this account does not have: parsed, then refused.
    let form = std::fs::read_to_string(format!(
        "{FIXTURES}/PreviewMailing.request.form-urlencoded.txt"
    ))
    .unwrap();
    let reply = env.form_body(Some(&s), form.trim().to_owned()).await;
    reply.fault(51);
    let fault = reply.root.child("Body").unwrap().child("Fault").unwrap();
    assert_eq!(fault.text_at("FaultString"), "Mailing 5 not found");

    // The fixture's contact list is in database 12345, which this org does not have.
    let form = std::fs::read_to_string(format!(
        "{FIXTURES}/CreateContactList.request.form-urlencoded.txt"
    ))
    .unwrap();
    let reply = env.form_body(Some(&s), form.trim().to_owned()).await;
    reply.fault(51);
    let fault = reply.root.child("Body").unwrap().child("Fault").unwrap();
    assert_eq!(fault.text_at("FaultString"), "Database 12345 not found");
    assert!(env.sim.contact_lists().is_empty());
}

// ----- templates -----

#[tokio::test]
async fn templates_are_listed_by_visibility_and_previewed() {
    let env = Env::new().await;
    let s = env.login().await;
    let ids = |reply: &Reply| -> Vec<String> {
        reply
            .ok()
            .all("MAILING_TEMPLATE")
            .iter()
            .map(|t| t.text_at("MAILING_ID"))
            .collect()
    };
    let shared = env.raw(Some(&s), TEMPLATES).await;
    assert_eq!(ids(&shared), ["410233", "410234"]);
    assert!(
        shared
            .ok()
            .all("MAILING_TEMPLATE")
            .iter()
            .all(|t| t.text_at("VISIBILITY") == "1")
    );
    let private = env
        .form(
            Some(&s),
            "<GetMailingTemplates><VISIBILITY>0</VISIBILITY></GetMailingTemplates>",
        )
        .await;
    assert_eq!(ids(&private), ["410300"]);
    env.raw(Some(&s), "<GetMailingTemplates/>").await.fault(51);

    let preview = env
        .form(
            Some(&s),
            "<PreviewMailing><MailingId>410234</MailingId></PreviewMailing>",
        )
        .await;
    let result = preview.ok();
    assert!(result.text_at("HTMLBody").contains("We miss you"));
    assert!(result.text_at("TextBody").contains("We miss you"));
    env.raw(
        Some(&s),
        "<PreviewMailing><MailingId>5</MailingId></PreviewMailing>",
    )
    .await
    .fault(51);
}

// ----- audiences -----

#[tokio::test]
async fn recipients_are_added_and_a_profile_query_selects_them() {
    // An empty database beforehand: every id is unknown until AddRecipient creates it.
    let env = Env::with(SilverpopSimConfig {
        unknown_id_share: 1.0,
        ..SilverpopSimConfig::default()
    })
    .await;
    let s = env.login().await;
    for (customer, tag) in [
        ("C-1", "881"),
        ("C-2", "881"),
        ("C-3", "881"),
        ("C-4", "882"),
    ] {
        let reply = env.add(&s, customer, tag, false).await;
        assert!(reply.ok().text_at("RecipientId").parse::<i64>().is_ok());
    }
    env.add(&s, "C-4", "881", false).await.fault(122);
    env.add(&s, "C-4", "881", true).await.ok();
    env.raw(
        Some(&s),
        "<UpdateRecipient><LIST_ID>2740754</LIST_ID><COLUMN><NAME>CustomerID</NAME><VALUE>C-1</VALUE></COLUMN>\
         <COLUMN><NAME>OptimoveCampaign</NAME><VALUE>900</VALUE></COLUMN></UpdateRecipient>",
    )
    .await
    .ok();
    let mut tagged = env.sim.recipients_with("OptimoveCampaign", "881");
    tagged.sort();
    assert_eq!(tagged, ["C-2", "C-3", "C-4"]);
    assert_eq!(env.sim.recipients_with("OptimoveCampaign", "900"), ["C-1"]);
    assert_eq!(env.sim.created_contacts(), ["C-1", "C-2", "C-3", "C-4"]);

    let lists = |reply: &Reply| -> Vec<(String, String)> {
        reply
            .ok()
            .all("LIST")
            .iter()
            .map(|l| (l.text_at("ID"), l.text_at("NAME")))
            .collect()
    };
    const QUERIES: &str = "<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>1</LIST_TYPE><FOLDER_ID>77120</FOLDER_ID></GetLists>";
    assert!(lists(&env.raw(Some(&s), QUERIES).await).is_empty());
    let created = env
        .form(
            Some(&s),
            "<CreateQuery><QUERY_NAME>opt-camp-881</QUERY_NAME><PARENT_LIST_ID>2740754</PARENT_LIST_ID>\
             <VISIBILITY>1</VISIBILITY><CRITERIA><EXPRESSION criteria_type=\"profile\">\
             <CONJUNCTION>AND</CONJUNCTION><OPERATOR>is equal to</OPERATOR><COLUMN>OptimoveCampaign</COLUMN>\
             <VALUE><![CDATA[881]]></VALUE></EXPRESSION></CRITERIA></CreateQuery>",
        )
        .await;
    let query_id = created.ok().text_at("ListId");
    assert_eq!(
        lists(&env.raw(Some(&s), QUERIES).await),
        [(query_id.clone(), "opt-camp-881".to_owned())]
    );
    let databases = env
        .raw(
            Some(&s),
            "<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>0</LIST_TYPE></GetLists>",
        )
        .await;
    assert_eq!(lists(&databases)[0].0, "2740754");
    assert_eq!(databases.ok().all("LIST")[0].text_at("SIZE"), "4");
    let job = env
        .raw(
            Some(&s),
            &format!("<CalculateQuery><QUERY_ID>{query_id}</QUERY_ID></CalculateQuery>"),
        )
        .await;
    let job = job.ok().text_at("JOB_ID");
    assert_eq!(
        env.sim.queries()[0].calculated_size,
        None,
        "not before the job ends"
    );
    assert_eq!(
        env.job_statuses(&s, &job, 3).await,
        ["WAITING", "RUNNING", "COMPLETE"]
    );
    let queries = env.sim.queries();
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].id.to_string(), query_id);
    assert_eq!(queries[0].folder_id, 77120);
    assert_eq!(queries[0].calculated_size, Some(3));
    assert_eq!(
        queries[0].criterion,
        QueryCriterion::Profile {
            column: "OptimoveCampaign".into(),
            value: "881".into()
        }
    );
    let got = env
        .raw(
            Some(&s),
            &format!("<GetQuery><LIST_ID>{query_id}</LIST_ID></GetQuery>"),
        )
        .await;
    let result = got.ok();
    assert_eq!(result.text_at("QUERY_NAME"), "opt-camp-881");
    let criteria = parse(&result.text_at("QUERY_CRITERIA"));
    assert_eq!(
        criteria.child("EXPRESSION").unwrap().text_at("COLUMN"),
        "OptimoveCampaign"
    );
    env.add(&s, "", "881", true).await.fault(51);
}

/// A customer id the default database (1% unknown) does not have.
fn unknown_id() -> String {
    (0..)
        .map(|i| format!("U-{i}"))
        .find(|id| espbridge_sim::in_share(id, 0.01))
        .unwrap()
}

#[tokio::test]
async fn contact_lists_take_existing_contacts_once_and_create_none() {
    let env = Env::new().await;
    let s = env.login().await;
    let list = env.contact_list(&s, "espbridge_881", "espbridge").await;
    // Same name in the same folder: refused.
    env.raw(
        Some(&s),
        "<CreateContactList><DATABASE_ID>2740754</DATABASE_ID><CONTACT_LIST_NAME>espbridge_881\
         </CONTACT_LIST_NAME><VISIBILITY>1</VISIBILITY><PARENT_FOLDER_PATH>espbridge\
         </PARENT_FOLDER_PATH></CreateContactList>",
    )
    .await
    .fault(51);
    let other = env.contact_list(&s, "espbridge_882", "/espbridge/").await;
    let lists = env.sim.contact_lists();
    assert_eq!(lists.len(), 2);
    assert_eq!(
        lists[0].folder_id, lists[1].folder_id,
        "one folder per path"
    );
    assert_eq!(lists[0].folder_path.as_deref(), Some("espbridge"));

    env.add_to_list(&s, &list, "C-1").await.ok();
    env.add_to_list(&s, &list, "C-2").await.ok();
    env.add_to_list(&s, &list, "C-1").await.ok();
    env.add_to_list(&s, &other, "C-2").await.ok();
    let unknown = unknown_id();
    let reply = env.add_to_list(&s, &list, &unknown).await;
    reply.fault(129);
    assert_eq!(
        reply
            .root
            .child("Body")
            .unwrap()
            .child("Fault")
            .unwrap()
            .text_at("FaultString"),
        "Contact not found in the database"
    );
    env.add_to_list(&s, "999", "C-1").await.fault(51);
    env.raw(
        Some(&s),
        &format!(
            "<AddContactToContactList><CONTACT_LIST_ID>{list}</CONTACT_LIST_ID>\
             </AddContactToContactList>"
        ),
    )
    .await
    .fault(51);
    // By CONTACT_ID (a recipient id the API answered with); COLUMN elements are then ignored.
    let recipient = env
        .raw(
            Some(&s),
            "<AddRecipient><LIST_ID>2740754</LIST_ID><CREATED_FROM>1</CREATED_FROM>\
             <UPDATE_IF_FOUND>TRUE</UPDATE_IF_FOUND><COLUMN><NAME>CustomerID</NAME>\
             <VALUE>C-3</VALUE></COLUMN></AddRecipient>",
        )
        .await
        .ok()
        .text_at("RecipientId");
    env.raw(
        Some(&s),
        &format!(
            "<AddContactToContactList><CONTACT_LIST_ID>{other}</CONTACT_LIST_ID>\
             <CONTACT_ID>{recipient}</CONTACT_ID><COLUMN><NAME>CustomerID</NAME>\
             <VALUE>{unknown}</VALUE></COLUMN></AddContactToContactList>"
        ),
    )
    .await
    .ok();

    let lists = env.sim.contact_lists();
    assert_eq!(lists[0].members, ["C-1", "C-2"]);
    assert_eq!(lists[1].members, ["C-2", "C-3"]);
    assert!(
        env.sim.created_contacts().is_empty(),
        "C-3 was updated, not created"
    );
    assert!(!env.sim.knows(&unknown));

    let listed = env
        .raw(
            Some(&s),
            "<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>18</LIST_TYPE></GetLists>",
        )
        .await;
    let rows: Vec<(String, String, String, String)> = listed
        .ok()
        .all("LIST")
        .iter()
        .map(|l| {
            (
                l.text_at("ID"),
                l.text_at("NAME"),
                l.text_at("TYPE"),
                l.text_at("SIZE"),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                list.clone(),
                "espbridge_881".into(),
                "18".into(),
                "2".into()
            ),
            (
                other.clone(),
                "espbridge_882".into(),
                "18".into(),
                "2".into()
            ),
        ]
    );
    let meta = env
        .raw(
            Some(&s),
            &format!("<GetListMetaData><LIST_ID>{list}</LIST_ID></GetListMetaData>"),
        )
        .await;
    assert_eq!(meta.ok().text_at("SIZE"), "2");
    assert_eq!(meta.ok().text_at("TYPE"), "18");
}

#[tokio::test]
async fn a_mailing_goes_to_its_contact_list_as_it_is_at_the_scheduled_time() {
    let env = Env::new().await;
    let s = env.login().await;
    let list = env.contact_list(&s, "espbridge_77", "espbridge").await;
    env.add_to_list(&s, &list, "C-1").await.ok();
    let when = "03/02/2026 09:00:00 AM";
    env.schedule(&s, list.parse().unwrap(), "espbridge_77", when)
        .await
        .ok();
    // Still before the send: a member added now is in it.
    env.add_to_list(&s, &list, "C-2").await.ok();
    assert!(env.sim.sends().is_empty(), "not sent before its time");
    env.clock.set("2026-03-02T09:00:01Z".parse().unwrap());
    // After the send: a member added now is not.
    let s = env.login().await;
    env.add_to_list(&s, &list, "C-3").await.ok();
    let sends = env.sim.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].name, "espbridge_77");
    assert_eq!(sends[0].send_at.to_string(), "2026-03-02T09:00:00Z");
    assert_eq!(sends[0].recipients, ["C-1", "C-2"]);
    assert_eq!(env.sim.contact_lists()[0].members, ["C-1", "C-2", "C-3"]);
    assert_eq!(env.sim.mailings()[0].size(), 2);
}

#[tokio::test]
async fn a_relational_query_sends_to_the_known_contacts_of_its_rows_at_send_time() {
    let env = Env::new().await;
    let s = env.login().await;
    let unknown = unknown_id();
    env.insert_rows(&s, &[("881", "C-1"), ("881", &unknown), ("882", "C-2")])
        .await
        .ok();
    let query = env.rt_query(&s, "opt-rt-881", "881").await;
    env.schedule(&s, query, "opt-881", "03/02/2026 09:00:00 AM")
        .await
        .ok();
    env.insert_rows(&s, &[("881", "C-3")]).await.ok();
    env.clock.set("2026-03-02T09:00:00Z".parse().unwrap());
    let s = env.login().await;
    env.insert_rows(&s, &[("881", "C-4")]).await.ok();
    let sends = env.sim.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].recipients, ["C-1", "C-3"]);
    assert!(env.sim.created_contacts().is_empty());
}

#[tokio::test]
async fn relational_inserts_report_rejected_rows_and_feed_a_query() {
    let env = Env::new().await;
    let s = env.login().await;
    let reply = env
        .insert_rows(
            &s,
            &[
                ("881", "C-1"),
                ("88x", "C-2"),
                ("881", ""),
                ("881", "C-3"),
                ("882", "C-4"),
            ],
        )
        .await;
    let result = reply.ok();
    let failures = result.child("FAILURES").unwrap().all("FAILURE");
    assert_eq!(failures.len(), 2, "{}", reply.raw);
    assert_eq!(failures[0].attr("failure_type"), Some("permanent"));
    assert_eq!(
        failures[0].attr("description"),
        Some("Invalid Number in column: ActionID")
    );
    let key = failures[0].all("COLUMN");
    assert!(
        key.iter()
            .any(|c| c.attr("name") == Some("CustomerID") && c.text == "C-2")
    );
    assert!(
        failures[1]
            .attr("description")
            .unwrap()
            .contains("CustomerID")
    );
    assert_eq!(env.sim.table_rows(348449).len(), 3);

    // Same keys update in place; clean batches answer without FAILURES.
    let again = env.insert_rows(&s, &[("881", "C-1")]).await;
    assert!(again.ok().child("FAILURES").is_none());
    assert_eq!(env.sim.table_rows(348449).len(), 3);

    let query = env.rt_query(&s, "opt-rt-881", "881").await;
    let job = env
        .raw(
            Some(&s),
            &format!("<CalculateQuery><QUERY_ID>{query}</QUERY_ID></CalculateQuery>"),
        )
        .await
        .ok()
        .text_at("JOB_ID");
    // Ten seconds of clock time complete a job without polls.
    env.clock.advance(SignedDuration::from_secs(10));
    assert_eq!(env.job_statuses(&s, &job, 1).await, ["COMPLETE"]);
    assert_eq!(env.sim.queries()[0].calculated_size, Some(2));

    let created = env
        .raw(
            Some(&s),
            "<CreateTable><TABLE_NAME>Other</TABLE_NAME><COLUMNS><COLUMN><NAME>CustomerID</NAME>\
             <TYPE>TEXT</TYPE><IS_REQUIRED>true</IS_REQUIRED><KEY_COLUMN>true</KEY_COLUMN></COLUMN>\
             </COLUMNS></CreateTable>",
        )
        .await;
    let table: i64 = created.ok().text_at("TABLE_ID").parse().unwrap();
    assert!(
        env.sim
            .tables()
            .iter()
            .any(|t| t.id == table && t.name == "Other")
    );
}

// ----- scheduling and reporting -----

#[tokio::test]
async fn a_scheduled_mailing_is_found_by_name_before_and_after_it_is_sent() {
    let env = Env::new().await;
    let s = env.login().await;
    env.insert_rows(&s, &[("881", "C-1"), ("881", "C-2")])
        .await
        .ok();
    let query = env.rt_query(&s, "opt-rt-881", "881").await;
    env.schedule(&s, query, "opt-881", "2026-03-02 10:00:00")
        .await
        .fault(51);
    env.schedule(&s, query, "opt-881", "03/02/2026 22:00:00")
        .await
        .fault(51);
    env.schedule(&s, 999, "opt-881", "03/02/2026 10:00:00 AM")
        .await
        .fault(51);
    let reply = env
        .schedule(&s, query, "opt-881", "03/02/2026 10:00:00 AM")
        .await;
    let mailing_id = reply.ok().text_at("MAILING_ID");
    assert_eq!(env.sim.schedule_count(), 1);
    let mailing = &env.sim.mailings()[0];
    assert_eq!(mailing.scheduled_at.to_string(), "2026-03-02T10:00:00Z");
    assert_eq!(mailing.folder_path.as_deref(), Some("Optimove"));
    assert!(mailing.send_html && mailing.send_text);
    assert_eq!(mailing.audience, 2);

    let scheduled = env.sent_mailings(&s, "<SHARED/><SCHEDULED/>").await;
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0].text_at("MailingName"), "opt-881");
    assert_eq!(scheduled[0].text_at("MailingId"), mailing_id);
    assert_eq!(scheduled[0].text_at("SentTS"), "");
    assert_eq!(scheduled[0].text_at("NumSent"), "0");
    assert_eq!(scheduled[0].text_at("ScheduledTS"), "2026-03-02 10:00:00.0");
    assert!(env.sent_mailings(&s, "<SENT/><SENDING/>").await.is_empty());

    env.clock.advance(SignedDuration::from_hours(3));
    // Three idle hours end the session; a fresh one sees the mailing as sent.
    env.form(
        Some(&s),
        "<GetSentMailingsForOrg><SENT/></GetSentMailingsForOrg>",
    )
    .await
    .fault(145);
    let s = env.login().await;
    let sent = env.sent_mailings(&s, "<SENT/><SENDING/>").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text_at("SentTS"), "2026-03-02 10:00:00.0");
    assert!(env.sent_mailings(&s, "<SCHEDULED/>").await.is_empty());
    let count = env
        .raw(
            Some(&s),
            "<GetSentMailingsForOrg><MAILING_COUNT_ONLY/></GetSentMailingsForOrg>",
        )
        .await;
    assert_eq!(count.ok().text_at("SentMailingsCount"), "1");

    // A second schedule with the same name is accepted and counted.
    env.schedule(&s, query, "opt-881", "03/03/2026 10:00:00 AM")
        .await
        .ok();
    assert_eq!(env.sim.schedule_count(), 2);
}

#[tokio::test]
async fn aggregate_tracking_grows_over_seven_days_then_stays() {
    let env = Env::new().await;
    let s = env.login().await;
    let rows: Vec<(String, String)> = (0..2000)
        .map(|i| ("881".into(), format!("C-{i}")))
        .collect();
    for chunk in rows.chunks(500) {
        let refs: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(a, c)| (a.as_str(), c.as_str()))
            .collect();
        env.insert_rows(&s, &refs).await.ok();
    }
    let query = env.rt_query(&s, "opt-rt-881", "881").await;
    let reply = env
        .schedule(&s, query, "opt-881", "03/02/2026 09:00:00 AM")
        .await;
    let mailing = reply.ok().text_at("MAILING_ID");
    let n = |m: &El, name: &str| -> u64 { m.text_at(name).parse().unwrap() };

    let before = env.tracking(&s, &mailing).await;
    assert_eq!(n(&before, "NumSent"), 0);
    let mut seen = Vec::new();
    for hours in [2, 24, 72, 168, 240] {
        env.clock.set(
            "2026-03-02T09:00:00Z".parse::<jiff::Timestamp>().unwrap()
                + SignedDuration::from_hours(hours),
        );
        let s = env.login().await;
        seen.push(env.tracking(&s, &mailing).await);
    }
    let fields = [
        "NumSent",
        "NumBounceHard",
        "NumBounceSoft",
        "NumUniqueOpen",
        "NumUniqueClick",
        "NumUnsubscribes",
    ];
    for pair in seen.windows(2) {
        for f in fields {
            assert!(n(&pair[1], f) >= n(&pair[0], f), "{f} decreased");
        }
    }
    assert!(n(&seen[0], "NumSent") > 1900);
    assert!(n(&seen[1], "NumUniqueOpen") < n(&seen[3], "NumUniqueOpen"));
    assert!(n(&seen[3], "NumUniqueClick") > 0);
    for f in fields {
        assert_eq!(n(&seen[3], f), n(&seen[4], f), "{f} moved after 7 days");
    }
    assert_eq!(seen[0].text_at("SentDateTime"), "2026-03-02 09:00:00.0");
}

// ----- injected faults -----

#[tokio::test]
async fn each_injected_fault_kind_behaves() {
    let env = Env::new().await;
    let s = env.login().await;

    env.sim.inject(Fault::any(FaultKind::Status(503), 1));
    let reply = env.raw(Some(&s), TEMPLATES).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.errorid(), Some(50));

    env.sim.inject(Fault::any(FaultKind::RateLimit, 1));
    env.raw(Some(&s), TEMPLATES).await.fault(10);

    env.sim
        .inject(Fault::on(FaultKind::DropConnection, "XMLAPI", 1));
    let dropped = env
        .http
        .post(env.url(Some(&s)))
        .header("Content-Type", "text/xml")
        .body(envelope(TEMPLATES))
        .send()
        .await;
    assert!(dropped.is_err());

    // A held response: the client gives up, but the mailing was scheduled.
    env.insert_rows(&s, &[("881", "C-1")]).await.ok();
    let query = env.rt_query(&s, "q", "881").await;
    env.sim.inject(Fault::any(
        FaultKind::Timeout(Duration::from_millis(500)),
        1,
    ));
    let body = envelope(&format!(
        "<ScheduleMailing><TEMPLATE_ID>410233</TEMPLATE_ID><LIST_ID>{query}</LIST_ID>\
         <MAILING_NAME>held</MAILING_NAME><VISIBILITY>1</VISIBILITY><SEND_HTML/></ScheduleMailing>"
    ));
    let timed_out = env
        .http
        .post(env.url(Some(&s)))
        .header("Content-Type", "text/xml")
        .timeout(Duration::from_millis(100))
        .body(body)
        .send()
        .await;
    assert!(timed_out.is_err());
    assert_eq!(env.sim.schedule_count(), 1);
    env.raw(Some(&s), TEMPLATES).await.ok();
    let log = env.sim.requests();
    assert!(log.iter().any(|r| r.status == 0));
    assert!(log.iter().any(|r| r.status == 503));
}

// ----- response shapes against the fixtures -----

fn paths(doc: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    parse(doc).paths("", &mut out);
    out
}

#[track_caller]
fn covers(fixture_file: &str, mine: &Reply, exact: bool) {
    let fixture = paths(&std::fs::read_to_string(format!("{FIXTURES}/{fixture_file}")).unwrap());
    let ours = paths(&mine.raw);
    let missing: Vec<&String> = fixture.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "{fixture_file}: missing {missing:?} in {}",
        mine.raw
    );
    if exact {
        assert_eq!(fixture, ours, "{fixture_file}");
    }
}

#[tokio::test]
async fn responses_carry_every_element_of_the_fixtures() {
    let env = Env::new().await;
    let login = env
        .raw(
            None,
            "<Login><USERNAME>espbridge</USERNAME><PASSWORD>sim-password</PASSWORD></Login>",
        )
        .await;
    covers("Login.response.xml", &login, true);
    let s = login.ok().text_at("SESSIONID");
    covers(
        "Login.fault_errorid_50.xml",
        &env.raw(
            None,
            "<Login><USERNAME>x</USERNAME><PASSWORD>y</PASSWORD></Login>",
        )
        .await,
        true,
    );
    covers(
        "Fault.session_expired_errorid_145.xml",
        &env.raw(Some("gone"), TEMPLATES).await,
        true,
    );
    covers(
        "Fault.invalid_xml_request_errorid_51.xml",
        &env.raw(Some(&s), "<Nope/>").await,
        true,
    );
    covers(
        "GetMailingTemplates.response.xml",
        &env.raw(Some(&s), TEMPLATES).await,
        false,
    );
    covers(
        "AddRecipient.response.xml",
        &env.add(&s, "C-1", "881", true).await,
        true,
    );
    covers(
        "InsertUpdateRelationalTable.response.xml",
        &env.insert_rows(&s, &[("881", "C-1")]).await,
        true,
    );
    let created = env
        .raw(
            Some(&s),
            "<CreateTable><TABLE_NAME>T</TABLE_NAME><COLUMNS><COLUMN><NAME>CustomerID</NAME>\
             <KEY_COLUMN>true</KEY_COLUMN></COLUMN></COLUMNS></CreateTable>",
        )
        .await;
    covers("CreateTable.response.xml", &created, true);
    let query = env.rt_query(&s, "q", "881").await;
    let calc = env
        .raw(
            Some(&s),
            &format!("<CalculateQuery><QUERY_ID>{query}</QUERY_ID></CalculateQuery>"),
        )
        .await;
    covers("CalculateQuery.response.xml", &calc, true);
    let get = env
        .raw(
            Some(&s),
            &format!("<GetQuery><LIST_ID>{query}</LIST_ID></GetQuery>"),
        )
        .await;
    covers("GetQuery.response.xml", &get, true);
    let lists = env
        .raw(
            Some(&s),
            "<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>",
        )
        .await;
    covers("GetLists.response.xml", &lists, true);
    let created = env
        .raw(
            Some(&s),
            "<CreateContactList><DATABASE_ID>2740754</DATABASE_ID><CONTACT_LIST_NAME>c\
             </CONTACT_LIST_NAME><VISIBILITY>1</VISIBILITY><PARENT_FOLDER_PATH>f\
             </PARENT_FOLDER_PATH></CreateContactList>",
        )
        .await;
    covers("CreateContactList.response.xml", &created, true);
    let meta = env
        .raw(
            Some(&s),
            &format!("<GetListMetaData><LIST_ID>{query}</LIST_ID></GetListMetaData>"),
        )
        .await;
    covers("GetListMetaData.response.xml", &meta, true);
    let scheduled = env.schedule(&s, query, "m", "03/02/2026 08:30:00 AM").await;
    covers("ScheduleMailing.response.xml", &scheduled, true);
    let mailing = scheduled.ok().text_at("MAILING_ID");
    env.clock.advance(SignedDuration::from_hours(2));
    let s = env.login().await;
    let sent = env
        .form(
            Some(&s),
            "<GetSentMailingsForOrg><SENT/></GetSentMailingsForOrg>",
        )
        .await;
    covers("GetSentMailingsForOrg.response.xml", &sent, true);
    let tracking = env
        .raw(
            Some(&s),
            &format!("<GetAggregateTrackingForMailing><MAILING_ID>{mailing}</MAILING_ID></GetAggregateTrackingForMailing>"),
        )
        .await;
    covers(
        "GetAggregateTrackingForMailing.response.xml",
        &tracking,
        true,
    );
    covers(
        "Logout.response.xml",
        &env.form(Some(&s), "<Logout/>").await,
        true,
    );
}
