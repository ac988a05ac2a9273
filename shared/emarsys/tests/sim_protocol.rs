//! Speaks the raw Emarsys protocol — hand-built X-WSSE headers and JSON bodies over reqwest — to a
//! running simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use base64::Engine as _;
use espbridge_core::{Clock, ManualClock};
use espbridge_emarsys::sim::{EmarsysSim, EmarsysSimConfig};
use espbridge_sim::{Fault, FaultKind};
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const START: &str = "2026-03-02T08:00:00Z";

struct Client {
    http: reqwest::Client,
    base: String,
    user: String,
    secret: String,
    clock: ManualClock,
    nonces: AtomicU64,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

impl Reply {
    fn code(&self) -> i64 {
        self.json["replyCode"].as_i64().unwrap()
    }
    fn data(&self) -> &Value {
        &self.json["data"]
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

fn digest(nonce: &str, created: &str, secret: &str) -> String {
    let sha = Sha1::digest(format!("{nonce}{created}{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hex::encode(sha))
}

fn wsse(user: &str, digest: &str, nonce: &str, created: &str) -> String {
    format!(
        r#"UsernameToken Username="{user}", PasswordDigest="{digest}", Nonce="{nonce}", Created="{created}""#
    )
}

impl Client {
    fn new(sim: &EmarsysSim, config: &EmarsysSimConfig, clock: &ManualClock) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: sim.base_url(),
            user: config.user.clone(),
            secret: config.secret.clone(),
            clock: clock.clone(),
            nonces: AtomicU64::new(1),
        }
    }

    fn header(&self) -> String {
        let nonce = format!("{:032x}", self.nonces.fetch_add(1, Ordering::Relaxed));
        let created = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        wsse(
            &self.user,
            &digest(&nonce, &created, &self.secret),
            &nonce,
            &created,
        )
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.header("X-WSSE", self.header()).send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let json = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        Reply {
            status,
            headers,
            json,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        self.send(req).await
    }
}

async fn start(config: EmarsysSimConfig, at: &str) -> (EmarsysSim, Client, ManualClock) {
    let clock = ManualClock::new(at.parse().unwrap());
    let sim = EmarsysSim::start(config.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let client = Client::new(&sim, &config, &clock);
    (sim, client, clock)
}

fn email_id(sim: &EmarsysSim, name: &str) -> u64 {
    sim.emails().iter().find(|e| e.name == name).unwrap().id
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:05}")).collect()
}

#[tokio::test]
async fn wsse_worked_example_is_accepted_once_and_wsse_header_name_works() {
    let config = EmarsysSimConfig {
        user: "u".into(),
        secret: "example-secret".into(),
        ..Default::default()
    };
    let (sim, client, _clock) = start(config, "2024-05-06T07:08:09Z").await;
    let header = wsse(
        "u",
        "YzEzNmQxNWM5NWY1NmY3OTk3NTMwYmNiNjkzMzA0YmU4MGU4MmY1ZQ==",
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "2024-05-06T07:08:09Z",
    );
    let url = format!("{}field", sim.base_url());
    let resp = client
        .http
        .get(&url)
        .header("X-WSSE", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["replyCode"], 0);
    let external = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "ExternalID")
        .unwrap();
    assert_eq!(external["id"], "4980");

    // The same nonce again is a replay.
    let replay = client
        .http
        .get(&url)
        .header("X-WSSE", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(
        body,
        json!({"replyCode": 1, "replyText": "Unauthorized", "data": ""})
    );

    // `WSSE` is accepted as the header name, with `+0000` in Created.
    let created = "2024-05-06T07:08:09+0000";
    let nonce = "A1B2C3D4E5F60718293A4B5C6D7E8F90";
    let other = wsse(
        "u",
        &digest(nonce, created, "example-secret"),
        nonce,
        created,
    );
    let resp = client
        .http
        .get(format!("{}field/translate/en", sim.base_url()))
        .header("WSSE", other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn wsse_rejects_wrong_digest_stale_created_and_missing_header() {
    let config = EmarsysSimConfig::default();
    let (sim, client, clock) = start(config, START).await;
    let url = format!("{}field", sim.base_url());
    let created = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let nonce = "00112233445566778899aabbccddeeff";
    // base64 of the raw 20 bytes instead of the hex string: the classic client bug.
    let raw = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(
        format!("{nonce}{created}sim-secret").as_bytes(),
    ));
    let resp = client
        .http
        .get(&url)
        .header("X-WSSE", wsse("espbridge", &raw, nonce, &created))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["replyCode"], 1);

    let stale = "2026-03-02T07:54:00Z"; // six minutes behind the server
    let header = wsse(
        "espbridge",
        &digest(nonce, stale, "sim-secret"),
        nonce,
        stale,
    );
    let resp = client
        .http
        .get(&url)
        .header("X-WSSE", header)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["replyText"],
        "Unauthorized Time frame is invalid"
    );

    let resp = client.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // A correct header passes, so the refusals above were about the header.
    assert_eq!(client.get("field").await.status, 200);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 200]);
}

#[tokio::test]
async fn email_list_filters_in_both_spellings_get_and_preview() {
    let (sim, client, _clock) = start(EmarsysSimConfig::default(), START).await;
    let names = |r: &Reply| -> Vec<String> {
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let in_design = client.get("email/?status=1").await;
    assert_eq!(in_design.code(), 0);
    let listed = names(&in_design);
    assert!(listed.contains(&"optimove_spring_sale".to_owned()));
    assert!(
        !listed.contains(&"newsletter_april".to_owned()),
        "launched e-mail listed as in design"
    );
    assert!(
        in_design
            .data()
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "1" && e["id"].is_string())
    );
    assert_eq!(names(&client.get("email/status=1").await), listed);

    let bad = client.get("email/?status=9").await;
    assert_eq!((bad.status.as_u16(), bad.code()), (400, 6003));
    assert_eq!(bad.json["replyText"], "Invalid email status in filter: 9");

    let id = email_id(&sim, "optimove_spring_sale");
    assert!(sim.delete_email(id));
    assert!(
        !names(&client.get("email/?status=1").await).contains(&"optimove_spring_sale".to_owned())
    );
    assert!(
        names(&client.get("email/?status=1&showdeleted=1").await)
            .contains(&"optimove_spring_sale".to_owned())
    );

    let cms = email_id(&sim, "optimove_cms_welcome");
    let one = client.get(&format!("email/{cms}")).await;
    assert_eq!(one.data()["id"], cms.to_string());
    assert_eq!(one.data()["content_type"], "template");
    let missing = client.get("email/999").await;
    assert_eq!((missing.status.as_u16(), missing.code()), (400, 6004));

    let html = client
        .post(&format!("email/{cms}/preview"), json!({"version": "html"}))
        .await;
    assert!(
        html.data()
            .as_str()
            .unwrap()
            .contains("<h1>Welcome aboard</h1>")
    );
    let text = client
        .post(&format!("email/{cms}/preview"), json!({"version": "text"}))
        .await;
    assert!(text.data().as_str().unwrap().starts_with("Welcome aboard"));
    let wrong = client
        .post(&format!("email/{cms}/preview"), json!({"version": "pdf"}))
        .await;
    assert_eq!(wrong.code(), 6005);
}

#[tokio::test]
async fn contact_lists_create_add_and_their_errors() {
    let config = EmarsysSimConfig {
        unknown_id_share: 0.2,
        max_ids_per_call: 500,
        ..Default::default()
    };
    let (sim, client, _clock) = start(config, START).await;
    let first = ids("C", 400);
    let created = client
        .post(
            "contactlist",
            json!({"name": "espbridge_c1", "key_id": "4980", "external_ids": first}),
        )
        .await;
    assert_eq!(created.code(), 0);
    let list_id = created.data()["id"]
        .as_u64()
        .expect("create answers an integer id");
    let errors = created.data()["errors"].as_object().unwrap();
    let members = sim.contact_lists()[0].members.clone();
    // Every id is either a member or a 2008 error, never both.
    assert_eq!(errors.len() + members.len(), first.len());
    assert!(
        (40..=120).contains(&errors.len()),
        "{} unknown of 400",
        errors.len()
    );
    let (unknown, detail) = errors.iter().next().unwrap();
    assert!(!members.contains(unknown));
    assert_eq!(
        detail["2008"],
        format!("No contact found with the external id: 4980 - {unknown}")
    );

    // Adding overlapping ids inserts only the new known ones.
    let second = ids("C", 500)[300..].to_vec();
    let added = client
        .post(
            &format!("contactlist/{list_id}/add"),
            json!({"key_id": 4980, "external_ids": second}),
        )
        .await;
    let after = sim.contact_lists()[0].members.clone();
    assert_eq!(
        added.data()["inserted_contacts"].as_u64().unwrap() as usize,
        after.len() - members.len()
    );
    assert!(after.len() > members.len());
    let count = client.get(&format!("contactlist/{list_id}/count")).await;
    assert_eq!(count.data().as_u64().unwrap() as usize, after.len());

    // All known: errors is an empty array; no ids: errors is absent.
    let known = client
        .post(
            "contactlist",
            json!({"name": "known", "key_id": "4980", "external_ids": members[..10]}),
        )
        .await;
    assert_eq!(known.data()["errors"], json!([]));
    let empty = client
        .post(
            "contactlist",
            json!({"name": "empty", "key_id": "4980", "external_ids": []}),
        )
        .await;
    assert_eq!(empty.code(), 0);
    assert!(empty.data().get("errors").is_none());

    let too_many = client
        .post(
            "contactlist",
            json!({"name": "big", "key_id": "4980", "external_ids": ids("X", 501)}),
        )
        .await;
    assert_eq!((too_many.status.as_u16(), too_many.code()), (400, 3002));
    let not_array = client
        .post(
            "contactlist",
            json!({"name": "bad", "key_id": "4980", "external_ids": "C1"}),
        )
        .await;
    assert_eq!((not_array.status.as_u16(), not_array.code()), (400, 3003));
    let duplicate = client
        .post(
            "contactlist",
            json!({"name": "espbridge_c1", "key_id": "4980", "external_ids": []}),
        )
        .await;
    assert_eq!((duplicate.status.as_u16(), duplicate.code()), (400, 3005));
    let wrong_key = client
        .post(
            "contactlist",
            json!({"name": "k", "key_id": "3", "external_ids": ["a"]}),
        )
        .await;
    assert_eq!((wrong_key.status.as_u16(), wrong_key.code()), (200, 2004));
    let no_list = client
        .post(
            "contactlist/42/add",
            json!({"key_id": "4980", "external_ids": ["a"]}),
        )
        .await;
    assert_eq!(no_list.code(), 3006);

    let listed = client.get("contactlist").await;
    let listed = listed.data().as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["id"], list_id.to_string());
    assert_eq!(sim.contact_lists().len(), 3);
}

#[tokio::test]
async fn copy_patch_launch_once_and_counters_grow_after_the_send() {
    let (sim, client, clock) = start(EmarsysSimConfig::default(), START).await;
    let template = email_id(&sim, "optimove_spring_sale");
    let list = client
        .post(
            "contactlist",
            json!({"name": "audience", "key_id": "4980", "external_ids": ids("K", 3000)}),
        )
        .await;
    let list_id = list.data()["id"].as_u64().unwrap();
    let members = sim.contact_lists()[0].members.len() as u64;

    let copy = client
        .post(
            &format!("email/{template}/copy"),
            json!({"name": "espbridge_camp1"}),
        )
        .await;
    let copy_id = copy.data()["campaignId"]
        .as_u64()
        .expect("campaignId is an integer");
    let again = client
        .post(
            &format!("email/{template}/copy"),
            json!({"name": "espbridge_camp1"}),
        )
        .await;
    assert_eq!((again.status.as_u16(), again.code()), (400, 6023));
    assert_eq!(again.data(), "");
    assert_eq!(client.post("email/5/copy", json!({})).await.code(), 6026);

    let unknown_list = client
        .post(&format!("email/{copy_id}/patch"), json!({"contactlist": 7}))
        .await;
    assert_eq!(unknown_list.code(), 3006);
    let patched = client
        .post(
            &format!("email/{copy_id}/patch"),
            json!({"contactlist": list_id, "subject": "Hi"}),
        )
        .await;
    assert_eq!(patched.data()["contactlist"], list_id.to_string());
    assert_eq!(patched.data()["subject"], "Hi");
    assert_eq!(patched.data()["status"], "1");

    let launch = client
        .post(
            &format!("email/{copy_id}/launch"),
            json!({"schedule": "2026-03-03 09:30", "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(
        (launch.status.as_u16(), launch.code(), launch.data()),
        (200, 0, &json!(""))
    );
    let twice = client
        .post(
            &format!("email/{copy_id}/launch"),
            json!({"schedule": "2026-03-03 09:30", "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!((twice.status.as_u16(), twice.code()), (409, 6003));
    assert_eq!(sim.launch_count(), 1);
    let launched = sim.emails().into_iter().find(|e| e.id == copy_id).unwrap();
    assert_eq!(
        (launched.status, launched.api_status, launched.copied_from),
        (1, 2, Some(template))
    );
    let send_at: Timestamp = "2026-03-03T08:30:00Z".parse().unwrap();
    assert_eq!(launched.launches[0].send_at, send_at);
    assert_eq!(launched.launches[0].planned, members);
    let locked = client
        .post(&format!("email/{copy_id}/patch"), json!({"subject": "x"}))
        .await;
    assert_eq!(locked.code(), 6037);

    let launches = client
        .post(
            "email/getlaunchesofemail",
            json!({"emailid": copy_id.to_string()}),
        )
        .await;
    assert_eq!(launches.data()[0]["done"], "n");
    assert_eq!(launches.data()[0]["launch_date"], "2026-03-03");

    let before = client
        .get(&format!("email/{copy_id}/responsesummary"))
        .await;
    assert_eq!((before.status.as_u16(), before.code()), (400, 6003));
    assert_eq!(
        client.get("email/424242/responsesummary").await.code(),
        6400
    );

    clock.set(send_at);
    clock.advance(SignedDuration::from_hours(24));
    let day1 = client
        .get(&format!("email/{copy_id}/responsesummary"))
        .await;
    assert_eq!(day1.code(), 0);
    let n = |r: &Reply, k: &str| -> u64 { r.data()[k].as_str().unwrap().parse().unwrap() };
    assert_eq!(n(&day1, "planned"), members);
    assert!(n(&day1, "sent") <= members && n(&day1, "sent") >= members * 99 / 100);
    assert!(n(&day1, "opened") > 0);
    clock.advance(SignedDuration::from_hours(48));
    let launch_id = launches.data()[0]["id"].as_str().unwrap().to_owned();
    let day3 = client
        .get(&format!(
            "email/{copy_id}/responsesummary/launch_id={launch_id}"
        ))
        .await;
    for key in [
        "opened",
        "unique_clicks",
        "total_clicks",
        "unsubscribe",
        "hard_bounces",
    ] {
        assert!(n(&day3, key) >= n(&day1, key), "{key} went down");
    }
    assert!(n(&day3, "opened") > n(&day1, "opened"));
    assert!(n(&day3, "total_clicks") >= n(&day3, "unique_clicks"));
    let sent = sim.emails().into_iter().find(|e| e.id == copy_id).unwrap();
    assert_eq!(sent.status, 3);
}

#[tokio::test]
async fn launch_validation_and_updatesource() {
    let (sim, client, _clock) = start(EmarsysSimConfig::default(), START).await;
    let template = email_id(&sim, "optimove_spring_sale");
    let copy = client
        .post(&format!("email/{template}/copy"), json!({}))
        .await;
    let copy_id = copy.data()["campaignId"].as_u64().unwrap();
    assert!(
        sim.emails()
            .iter()
            .any(|e| e.name == "optimove_spring_sale copy")
    );

    let no_list = client
        .post(&format!("email/{copy_id}/launch"), json!({}))
        .await;
    assert_eq!(no_list.code(), 6032);
    let list = client
        .post(
            "contactlist",
            json!({"name": "l", "key_id": "4980", "external_ids": ["a", "b"]}),
        )
        .await;
    let list_id = list.data()["id"].as_u64().unwrap();

    let both = client
        .post(
            &format!("email/{copy_id}/updatesource"),
            json!({"contactlistId": list_id, "filterId": 5}),
        )
        .await;
    assert_eq!(both.code(), 10001);
    let ok = client
        .post(
            &format!("email/{copy_id}/updatesource"),
            json!({"contactlistId": list_id.to_string(), "filterId": "0"}),
        )
        .await;
    assert_eq!(ok.data(), &json!(true));
    let twice = client
        .post(
            &format!("email/{copy_id}/updatesource"),
            json!({"contactlistId": list_id, "filterId": 0}),
        )
        .await;
    assert_eq!(twice.code(), 6004);
    let userlist = email_id(&sim, "optimove_weekly_digest");
    let not_api = client
        .post(
            &format!("email/{userlist}/updatesource"),
            json!({"contactlistId": list_id}),
        )
        .await;
    assert_eq!(not_api.code(), 6004);

    let bad_schedule = client
        .post(
            &format!("email/{copy_id}/launch"),
            json!({"schedule": "03/03/2026"}),
        )
        .await;
    assert_eq!(bad_schedule.code(), 6009);
    let bad_zone = client
        .post(
            &format!("email/{copy_id}/launch"),
            json!({"schedule": "2026-03-03 09:30", "timezone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(bad_zone.code(), 6008);
    assert_eq!(sim.launch_count(), 0);
    let now = client
        .post(
            &format!("email/{copy_id}/launch"),
            json!({"time_zone": "America/New_York"}),
        )
        .await;
    assert_eq!(now.code(), 0);
    let launch = &sim
        .emails()
        .into_iter()
        .find(|e| e.id == copy_id)
        .unwrap()
        .launches[0];
    assert_eq!(launch.send_at, START.parse::<Timestamp>().unwrap());
    assert_eq!(launch.timezone, "America/New_York");

    let not_found = client.get("nothing/here").await;
    assert_eq!(not_found.status.as_u16(), 501);
}

#[tokio::test]
async fn rate_limit_answers_429_with_headers_after_the_budget() {
    let config = EmarsysSimConfig {
        rate_limit_per_minute: 3,
        ..Default::default()
    };
    let (_sim, client, clock) = start(config, START).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = client.get("field").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("X-RateLimit-Limit"), "3");
        remaining.push(r.header("X-Ratelimit-Remaining").to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let limited = client.get("field").await;
    assert_eq!((limited.status.as_u16(), limited.code()), (429, 7003));
    let reset: i64 = limited.header("X-RateLimit-Reset").parse().unwrap();
    let now = clock.now().as_second();
    assert!(
        reset > now && reset <= now + 60,
        "reset {reset} vs now {now}"
    );
}

#[tokio::test]
async fn injected_faults_status_throttle_drop_and_timeout() {
    let (sim, client, _clock) = start(EmarsysSimConfig::default(), START).await;
    sim.inject(Fault::on(FaultKind::Status(503), "/field", 1));
    let unavailable = client.get("field").await;
    assert_eq!((unavailable.status.as_u16(), unavailable.code()), (503, 1));
    assert!(unavailable.headers.contains_key("x-ratelimit-remaining"));
    assert_eq!(client.get("field").await.status, 200);

    sim.inject(Fault::any(FaultKind::RateLimit, 1));
    let throttled = client.get("email").await;
    assert_eq!((throttled.status.as_u16(), throttled.code()), (429, 7003));
    assert_eq!(throttled.header("X-Ratelimit-Remaining"), "0");

    sim.inject(Fault::on(FaultKind::DropConnection, "contactlist", 1));
    let dropped = client
        .http
        .get(format!("{}contactlist", sim.base_url()))
        .header("X-WSSE", client.header())
        .send()
        .await
        .expect_err("the connection was dropped");
    assert!(
        !dropped.is_timeout() && (dropped.is_request() || dropped.is_connect()),
        "{dropped:?}"
    );

    sim.inject(Fault::on(
        FaultKind::Timeout(Duration::from_secs(3)),
        "contactlist",
        1,
    ));
    let slow = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let body = json!({"name": "held", "key_id": "4980", "external_ids": ["a"]});
    let timed_out = slow
        .post(format!("{}contactlist", sim.base_url()))
        .header("X-WSSE", client.header())
        .body(body.to_string())
        .send()
        .await
        .expect_err("the response was held");
    assert!(timed_out.is_timeout(), "{timed_out:?}");
    // The held request was processed: the list exists although the client saw a timeout.
    assert!(sim.contact_lists().iter().any(|l| l.name == "held"));

    let log = sim.requests();
    let statuses: Vec<(u16, Option<i64>)> = log.iter().map(|r| (r.status, r.reply_code)).collect();
    assert_eq!(
        statuses,
        [
            (503, Some(1)),
            (200, Some(0)),
            (429, Some(7003)),
            (0, None),
            (200, Some(0))
        ]
    );
    assert_eq!(log[4].body.as_ref().unwrap()["name"], "held");
    assert_eq!(log[4].method, "POST");
}

#[tokio::test]
async fn status_can_flip_at_launch_and_lists_filter_by_contact_list() {
    let config = EmarsysSimConfig {
        status_launched_at_send: false,
        ..Default::default()
    };
    let (sim, client, _clock) = start(config, START).await;
    let template = email_id(&sim, "optimove_spring_sale");
    let list = client
        .post(
            "contactlist",
            json!({"name": "l", "key_id": "4980", "external_ids": ["a"]}),
        )
        .await;
    let list_id = list.data()["id"].as_u64().unwrap();
    let copy = client
        .post(&format!("email/{template}/copy"), json!({"name": "c"}))
        .await;
    let copy_id = copy.data()["campaignId"].as_u64().unwrap();
    client
        .post(
            &format!("email/{copy_id}/patch"),
            json!({"contactlist": list_id}),
        )
        .await;

    let by_list = client.get(&format!("email/?contactlist={list_id}")).await;
    let found: Vec<&Value> = by_list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(found, [&json!(copy_id.to_string())]);

    let launch = client
        .post(
            &format!("email/{copy_id}/launch"),
            json!({"schedule": "2026-04-01 10:00:00", "timezone": "UTC"}),
        )
        .await;
    assert_eq!(launch.code(), 0);
    let got = client.get(&format!("email/{copy_id}")).await;
    assert_eq!(
        (&got.data()["status"], &got.data()["api_status"]),
        (&json!("3"), &json!("2"))
    );
    // Scheduled, so no counters yet even though the status says launched.
    assert_eq!(
        client
            .get(&format!("email/{copy_id}/responsesummary"))
            .await
            .code(),
        6003
    );
}

/// The keys of one e-mail object of a fixture's `data` (an array's first element).
fn fixture_keys(name: &str) -> std::collections::BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["data"][0].as_object().unwrap().keys().cloned().collect()
}

fn keys(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn email_answers_in_either_field_set_carry_the_documented_keys() {
    // Current field set: every key of the recorded list (E1) is there, and no `segment`.
    let (sim, client, _clock) = start(EmarsysSimConfig::default(), START).await;
    let recorded = fixture_keys("email_list.response.json");
    let list = client.get("email/?status=1").await;
    for item in list.data().as_array().unwrap() {
        let got = keys(item);
        assert!(
            got.is_superset(&recorded),
            "{:?}",
            recorded.difference(&got)
        );
        assert!(!got.contains("segment"));
    }
    let id = email_id(&sim, "optimove_spring_sale");
    let detail = client.get(&format!("email/{id}")).await;
    assert!(detail.data().is_object());
    assert_eq!(detail.data()["source"], "api");

    // Older field set: exactly the recorded keys (E4) in the list; in the detail the keys of
    // the derived detail, `source` among them.
    let config = EmarsysSimConfig {
        legacy_email_fields: true,
        ..Default::default()
    };
    let (sim, client, _clock) = start(config, START).await;
    let recorded = fixture_keys("email_list.legacy_fields.response.json");
    for spelling in ["email/?status=1", "email/status=1", "email/"] {
        let list = client.get(spelling).await;
        assert_eq!(list.code(), 0);
        let items = list.data().as_array().unwrap();
        assert!(!items.is_empty());
        for item in items {
            assert_eq!(keys(item), recorded, "{spelling}");
            assert!(item["segment"].is_string());
        }
    }
    let id = email_id(&sim, "optimove_spring_sale");
    let detail = client.get(&format!("email/{id}")).await;
    let items = detail.data().as_array().unwrap();
    assert_eq!(items.len(), 1, "one-element array, as the legacy docs show");
    assert_eq!(
        keys(&items[0]),
        fixture_keys("email_get.legacy_fields.derived.json")
    );
    assert_eq!(items[0]["source"], "api");
    assert_eq!(items[0]["segment"], "0");
    // The `created` of both answers is the account's wall clock (Europe/Berlin), no offset.
    let created = items[0]["created"].as_str().unwrap();
    assert!(
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", created).is_ok(),
        "{created}"
    );
}
