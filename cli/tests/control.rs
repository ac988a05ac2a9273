//! `espbridge cancel` and `espbridge retry` against a real `espbridge serve` started here: a
//! dropped campaign is scheduled at the Emarsys simulator, cancelled through the command, and
//! the refusals come back with their reasons.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_espbridge");
const TOKEN: &str = "cli-control-token-0123456789abcdef";

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` with the token: status and body.
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_owned()))
}

/// `espbridge <args>` with `token` in ESPBRIDGE_TOKEN (or none).
fn espbridge(args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("RUST_LOG");
    match token {
        Some(t) => cmd.env("ESPBRIDGE_TOKEN", t),
        None => cmd.env_remove("ESPBRIDGE_TOKEN"),
    };
    cmd.output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The campaign's document once `done` holds for it.
fn wait_for(port: u16, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok((200, body)) = get(port, &format!("/campaigns/{id}")) {
            let v: Value = serde_json::from_str(&body).unwrap();
            if done(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "campaign {id} did not get there");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn cancel_and_retry_ask_the_running_server() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _server = Server(
        Command::new(BIN)
            .args(["serve", "--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .env("ESPBRIDGE_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let p = port.to_string();
    // Until serve listens, the command says nothing is there.
    let deadline = Instant::now() + Duration::from_secs(60);
    let templates = loop {
        match get(port, "/templates?esp=emarsys") {
            Ok((200, body)) => break serde_json::from_str::<Value>(&body).unwrap(),
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("serve did not answer: {other:?}"),
        }
    };
    let template = templates["templates"][0]["id"].as_str().unwrap().to_owned();

    // A campaign for tomorrow, dropped into serve's folder (manifest last).
    let id = "cli-cancel-1";
    let run_date = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let folder = dir.path().join(format!("drops/campaigns/{run_date}/{id}"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut csv = String::from("customer_id\n");
    for i in 0..50 {
        csv.push_str(&format!("CUST{i:06}\n"));
    }
    std::fs::write(folder.join("a.csv"), csv).unwrap();
    let send_at = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)).to_string();
    let manifest = serde_json::json!({
        "schema_version": "1", "campaign_id": id, "esp": "emarsys", "template_id": template,
        "send_at": send_at,
        "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id"}}
    });
    std::fs::write(folder.join("manifest.json"), manifest.to_string()).unwrap();
    let v = wait_for(port, id, |v| {
        v["state"] == "scheduled" || v["state"] == "failed"
    });
    assert_eq!(v["state"], "scheduled", "{v}");

    // Without the token the server refuses, and the command says what to do.
    let out = espbridge(&["cancel", id, "--port", &p], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("HTTP 401"), "{}", text(&out));
    assert!(text(&out).contains("ESPBRIDGE_TOKEN"), "{}", text(&out));

    let out = espbridge(&["cancel", id, "--port", &p], Some(TOKEN));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "campaign {id} cancelled (1 send(s) unscheduled at the ESP)"
        )),
        "{}",
        text(&out)
    );
    let v = wait_for(port, id, |v| v["state"] == "cancelled");
    assert!(v["schedule_name"].is_string());
    let out = espbridge(&["cancel", id, "--port", &p], Some(TOKEN));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already cancelled"), "{}", text(&out));

    let out = espbridge(&["retry", id, "--port", &p], Some(TOKEN));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("retry refused (HTTP 409, not_retryable)"),
        "{}",
        text(&out)
    );
    let out = espbridge(&["retry", "nope", "--port", &p], Some(TOKEN));
    assert!(text(&out).contains("HTTP 404"), "{}", text(&out));
    // A token is never echoed.
    assert!(!text(&out).contains(TOKEN));
}

#[test]
fn nothing_listening_is_said_plainly() {
    let port = free_port().to_string();
    let out = espbridge(&["cancel", "c1", "--port", &port], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(&format!("nothing is listening on 127.0.0.1:{port}")),
        "{}",
        text(&out)
    );
    let out = espbridge(&["retry", "not a campaign id", "--port", &port], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("campaign id"), "{}", text(&out));
}
