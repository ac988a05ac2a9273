//! The built `espbridge` binary, end to end: the demo against the simulator, the template
//! listing, and the HTTP API of `serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

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
        [
            "emarsys",
            "smartfocus",
            "silverpop",
            "silverpop",
            "bronto",
            "emarsys"
        ],
        "one campaign per ESP and Silverpop mode, then the A/B campaign"
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

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {v}"))
}

fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count: {v}"))
}

#[test]
fn the_demo_ab_campaign_reports_variants_a_verdict_and_uplift_and_report_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let out = run(&["demo", "--customers", "2000", "--out", out_dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("A/B test on click_rate"), "{stdout}");
    assert!(stdout.contains("  uplift "), "{stdout}");
    assert!(!stdout.contains("C000"), "a customer id was printed");

    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let campaigns = report["campaigns"].as_array().unwrap();
    let ab: Vec<&Value> = campaigns
        .iter()
        .filter(|c| c["ab_test"].is_object())
        .collect();
    assert_eq!(ab.len(), 1, "exactly one A/B campaign");
    let c = ab[0];
    let id = c["campaign_id"].as_str().unwrap();
    assert_eq!(c["esp"], "emarsys");
    assert_eq!(c["state"], "completed", "{c}");
    assert_eq!(c["daily_metrics"].as_array().unwrap().len(), 7);

    // Variants: names, distinct templates, counts and rates with their intervals.
    let variants = c["variants"].as_array().unwrap();
    assert!((2..=3).contains(&variants.len()), "{variants:?}");
    let mut templates: Vec<&str> = variants
        .iter()
        .map(|v| v["template_id"].as_str().unwrap())
        .collect();
    templates.sort_unstable();
    templates.dedup();
    assert_eq!(templates.len(), variants.len(), "one template per variant");
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for v in variants {
        assert!(
            count(v, "sent") > 0 && count(v, "delivered") <= count(v, "sent"),
            "{v}"
        );
        assert!(count(v, "clicks") <= count(v, "opens"), "{v}");
        count(v, "unsubscribes");
        for rate in [
            "open_rate",
            "click_rate",
            "unsubscribe_rate",
            "conversion_rate",
        ] {
            let r = &v["rates"][rate];
            let (lo, x, hi) = (num(r, "ci_low"), num(r, "value"), num(r, "ci_high"));
            assert!(0.0 <= lo && lo <= x && x <= hi && hi <= 1.0, "{rate}: {r}");
        }
    }
    let assigned: u64 = variants.iter().map(|v| count(v, "assigned")).sum();
    let a = &c["audience"];
    let held_out = count(a, "held_out");
    assert!(held_out > 0, "a control group was held out: {a}");
    assert_eq!(assigned, count(a, "uploaded") - held_out);

    // The A/B verdict: a named variant only when significant.
    let t = &c["ab_test"];
    assert_eq!(t["metric"], "click_rate");
    let p = num(t, "p_value");
    assert!((0.0..=1.0).contains(&p), "{t}");
    match t["winner"].as_str() {
        Some(w) => assert!(names.contains(&w) && p < 0.05, "{t}"),
        None => assert!(
            t["winner"].is_null() && t["verdict"] == "no significant winner",
            "{t}"
        ),
    }

    // The control group: the held-out customers against everyone sent.
    let k = &c["control"];
    assert_eq!(count(k, "control_customers"), held_out, "{k}");
    assert_eq!(count(k, "treated_customers"), assigned, "{k}");
    let (treated, control, uplift) = (
        num(k, "treated_rate"),
        num(k, "control_rate"),
        num(k, "uplift"),
    );
    assert!(
        (0.0..=1.0).contains(&treated) && (0.0..=1.0).contains(&control),
        "{k}"
    );
    assert!((uplift - (treated - control)).abs() < 1e-12, "{k}");
    assert!(
        num(k, "ci_low") <= uplift && uplift <= num(k, "ci_high"),
        "{k}"
    );
    assert!(
        count(k, "control_converters") > 0 && count(k, "treated_converters") > 0,
        "{k}"
    );
    // Some generated conversions fall outside the 7-day window and are not counted.
    let conv = &c["conversions"];
    assert!(
        count(conv, "rows_in_window") < count(conv, "rows"),
        "{conv}"
    );
    // The record's own variant and control settings are kept beside the analysis.
    assert_eq!(c["control_group"]["holdout_share"], 0.1, "{c}");
    assert_eq!(
        c["variant_states"].as_array().unwrap().len(),
        variants.len()
    );

    // The A/B campaign's page, self-contained, with its three charts; one page per campaign.
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(page.contains(id));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "self-contained"
    );
    assert_eq!(page.matches("<svg").count(), 3, "three charts");
    for other in campaigns {
        let other = other["campaign_id"].as_str().unwrap();
        assert!(
            dir.path().join(format!("reports/{other}.html")).is_file(),
            "{other}"
        );
    }

    // `espbridge report` reads the same report back from the store.
    let json = run(&["report", id, "--dir", out_dir, "--json"]);
    let read: Value = serde_json::from_slice(&json.stdout).unwrap();
    for part in ["variants", "ab_test", "control"] {
        assert_eq!(read[part], c[part], "{part}");
    }
    // A configuration file's state_dir (relative to the file; no accounts needed) finds it too.
    let toml = dir.path().join("report.toml");
    std::fs::write(&toml, "state_dir = \"state\"\n").unwrap();
    let by_config = run(&["report", id, "--config", toml.to_str().unwrap(), "--json"]);
    assert_eq!(by_config.stdout, json.stdout);
    let html = dir.path().join("again.html");
    let text = run(&[
        "report",
        id,
        "--dir",
        out_dir,
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&html).unwrap(), page);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("campaign {id}")), "{text}");
    for name in names {
        assert!(
            text.contains(&format!("variant {name} (template ")),
            "{text}"
        );
    }
    assert!(
        text.contains("A/B test on click_rate") && text.contains("uplift"),
        "{text}"
    );
    let open = run(&[
        "report",
        id,
        "--dir",
        out_dir,
        "--json",
        "--metric",
        "open_rate",
    ]);
    let read: Value = serde_json::from_slice(&open.stdout).unwrap();
    assert_eq!(read["ab_test"]["metric"], "open_rate");

    let missing = Command::new(BIN)
        .args(["report", "no-such-campaign", "--dir", out_dir])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no campaign no-such-campaign"), "{err}");
}

#[test]
fn report_names_a_missing_store_and_refuses_a_bad_metric() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["report", "c1", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no campaign store at"), "{err}");
    assert!(!dir.path().join("state").exists(), "nothing is created");
    let out = Command::new(BIN)
        .args(["report", "c1", "--metric", "revenue", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown metric"));
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
    request(port, "GET", path, "127.0.0.1", &[], "")
}

/// A minimal HTTP/1.1 request for `host` with extra header lines: status and body.
fn request(
    port: u16,
    method: &str,
    path: &str,
    host: &str,
    headers: &[&str],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    write!(s, "{head}Content-Length: {}\r\n\r\n{body}", body.len())?;
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

/// A free loopback port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for the server's first answer to `attempt`.
fn first_answer(port: u16, attempt: impl Fn() -> std::io::Result<(u16, String)>) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match attempt() {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("serve did not answer on port {port}: {e}"),
        }
    }
}

#[test]
fn serve_answers_the_api_on_loopback() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _server = Server(
        Command::new(BIN)
            .args(["serve", "--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .env_remove("ESPBRIDGE_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (status, body) = first_answer(port, || get(port, "/templates"));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(!v["templates"].as_array().unwrap().is_empty());

    let (status, body) = get(port, "/campaigns/nope").unwrap();
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "not_found");
    assert!(dir.path().join("drops/campaigns").is_dir());

    // A page whose DNS name was rebound to 127.0.0.1 reaches the socket, not the API.
    let (status, body) = request(port, "GET", "/templates", "rebound.example", &[], "").unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("rebound.example"), "{body}");
    let (status, _) = get(port, "/templates").unwrap();
    assert_eq!(status, 200);
    // Without a token the API only reads.
    let good = r#"{"from_email": "sale@brand.example", "from_name": "Brand Sale"}"#;
    let (status, body) = request(
        port,
        "PUT",
        "/templates/bronto/t1/headers",
        "localhost",
        &[],
        good,
    )
    .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("PUT needs a token: start serve with --token"),
        "{body}"
    );
}

#[test]
fn serve_with_a_token_answers_only_requests_bearing_it() {
    const TOKEN: &str = "cli-test-token-0123456789abcdef";
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stdout");
    let _server = Server(
        Command::new(BIN)
            .args(["serve", "--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .env("ESPBRIDGE_TOKEN", TOKEN)
            .env("RUST_LOG", "debug")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap(),
    );
    let (status, body) = first_answer(port, || get(port, "/templates"));
    assert_eq!(status, 401, "no token: {body}");
    let auth = format!("Authorization: Bearer {TOKEN}");
    let wrong = format!("Authorization: Bearer {TOKEN}x");
    let (status, _) = request(port, "GET", "/templates", "localhost", &[&wrong], "").unwrap();
    assert_eq!(status, 401, "a wrong token");
    let (status, body) = request(port, "GET", "/templates", "localhost", &[&auth], "").unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let bronto = v["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["esp"] == "bronto")
        .expect("a Bronto template from the simulator");
    let path = format!(
        "/templates/bronto/{}/headers",
        bronto["id"].as_str().unwrap()
    );
    let good = r#"{"from_email": "sale@brand.example", "from_name": "Brand Sale"}"#;
    let (status, body) = request(port, "PUT", &path, "[::1]:1", &[&auth], good).unwrap();
    assert_eq!(status, 200, "PUT with the token: {body}");
    let (status, _) = request(port, "PUT", &path, "localhost", &[], good).unwrap();
    assert_eq!(status, 401, "PUT without it");
    let (status, _) = request(port, "GET", &path, "rebound.example", &[&auth], "").unwrap();
    assert_eq!(status, 403, "the host is checked even with the token");
    for file in ["stdout", "stderr"] {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert!(!text.contains(TOKEN), "the token is not in {file}: {text}");
    }
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("API token: required")
    );
}
