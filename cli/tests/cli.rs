//! The built `espbridge` binary, end to end: the demo against the simulator, the template
//! listing, and the HTTP API of `serve`.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_espbridge");

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "espbridge {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn demo_completes_and_reports_every_row_without_leaking_customers() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let out = run(&[
        "demo",
        "--esp",
        "emarsys",
        "--customers",
        "3000",
        "--out",
        out_dir,
    ]);
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert!(report["generated_at"].is_string());
    let campaigns = report["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1);
    let c = &campaigns[0];
    assert_eq!(c["esp"], "emarsys");
    assert_eq!(c["state"], "completed", "{c}");

    let days = c["daily_metrics"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let opens: Vec<u64> = days.iter().map(|d| d["opens"].as_u64().unwrap()).collect();
    assert!(opens.windows(2).all(|w| w[0] <= w[1]), "{opens:?}");
    assert!(opens[6] > 0);
    let day_numbers: Vec<u64> = days.iter().map(|d| d["day"].as_u64().unwrap()).collect();
    assert_eq!(day_numbers, (1..=7).collect::<Vec<_>>());

    let a = &c["audience"];
    let (rows, uploaded, rejected) = (
        a["rows"].as_u64().unwrap(),
        a["uploaded"].as_u64().unwrap(),
        a["rejected"].as_u64().unwrap(),
    );
    assert_eq!(uploaded + rejected, rows);
    assert!(rejected > 0);
    assert_eq!(uploaded, 3000);
    assert!(c["esp_ids"]["contact_list_id"].is_string(), "{c}");

    // The rejects report sits beside the drop's manifest.
    let rejects = Path::new(c["rejects_file"].as_str().unwrap());
    assert!(rejects.is_file(), "{}", rejects.display());
    assert!(rejects.with_file_name("manifest.json").is_file());
    let lines = std::fs::read_to_string(rejects).unwrap().lines().count() as u64;
    assert_eq!(
        lines,
        rejected + 1,
        "a header and one line per rejected row"
    );

    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("completed"), "{text}");
    assert!(!text.contains("C000"), "a customer id was printed:\n{text}");
    assert!(!text.contains("@example"), "an e-mail address was printed");
}

#[test]
fn the_plain_demo_runs_every_esp_and_mode_to_completion_with_unsubscribes() {
    let dir = tempfile::tempdir().unwrap();
    run(&[
        "demo",
        "--customers",
        "2000",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let campaigns = report["campaigns"].as_array().unwrap();
    let esps: Vec<&str> = campaigns
        .iter()
        .map(|c| c["esp"].as_str().unwrap())
        .collect();
    assert_eq!(
        esps,
        ["emarsys", "smartfocus", "silverpop", "silverpop", "bronto"]
    );
    for c in campaigns {
        assert_eq!(c["state"], "completed", "{c}");
        let days = c["daily_metrics"].as_array().unwrap();
        assert_eq!(days.len(), 7, "{c}");
        assert!(days[6]["unsubscribes"].as_u64().unwrap() > 0, "{c}");
        let a = &c["audience"];
        assert_eq!(
            a["uploaded"].as_u64().unwrap() + a["rejected"].as_u64().unwrap(),
            a["rows"].as_u64().unwrap()
        );
    }
    let sf = &campaigns[1];
    for key in ["segment_id", "message_id", "campaign_id"] {
        assert!(sf["esp_ids"][key].is_string(), "{key}: {sf}");
    }
    // Silverpop runs once per audience mode.
    let modes: Vec<&str> = campaigns[2..4]
        .iter()
        .map(|c| c["esp_ids"]["silverpop_mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["lists", "relational_table"]);
    // Bronto: a list filled by e-mail and a delivery; addresses that are not contacts counted.
    let br = &campaigns[4];
    for key in ["list_id", "delivery_id", "message_id"] {
        assert!(br["esp_ids"][key].is_string(), "{key}: {br}");
    }
    assert!(br["audience"]["not_in_esp"].as_u64().unwrap() > 0, "{br}");
    assert!(
        br["cleanup_due_at"].is_string(),
        "the list's clean-up date: {br}"
    );
    assert_eq!(
        br["cleaned_up_at"], br["cleanup_due_at"],
        "the demo runs on to the clean-up: {br}"
    );
}

#[test]
fn templates_json_lists_only_the_accounts_prefix() {
    let out = run(&["templates", "--json"]);
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    let templates = body["templates"].as_array().unwrap();
    assert!(!templates.is_empty());
    // Emarsys and SmartFocus select by name prefix; Silverpop by the Shared folder, Bronto by
    // the Optimove message folder.
    for t in templates
        .iter()
        .filter(|t| t["esp"] != "silverpop" && t["esp"] != "bronto")
    {
        assert!(t["name"].as_str().unwrap().starts_with("optimove_"), "{t}");
    }
    for esp in ["emarsys", "smartfocus", "silverpop", "bronto"] {
        assert!(templates.iter().any(|t| t["esp"] == esp), "{esp} listed");
    }
    let filtered = run(&[
        "templates",
        "--json",
        "--esp",
        "emarsys",
        "--prefix",
        "spring",
    ]);
    let body: Value = serde_json::from_slice(&filtered.stdout).unwrap();
    assert_eq!(body["templates"].as_array().unwrap().len(), 1);
}

#[test]
fn unknown_esp_fails_with_a_message() {
    let out = Command::new(BIN)
        .args(["demo", "--esp", "mailchimp", "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown ESP \"mailchimp\"") && err.contains("bronto"),
        "{err}"
    );
}

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal HTTP/1.1 GET: status and body.
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
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

#[test]
fn serve_answers_the_api_on_loopback() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let _server = Server(
        Command::new(BIN)
            .args(["serve", "--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let (status, body) = loop {
        match get(port, "/templates") {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("serve did not answer on port {port}: {e}"),
        }
    };
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(!v["templates"].as_array().unwrap().is_empty());

    let (status, body) = get(port, "/campaigns/nope").unwrap();
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "not_found");
    assert!(dir.path().join("drops/campaigns").is_dir());
}
