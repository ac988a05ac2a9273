//! `espbridge check DROP_FOLDER` against the in-process simulators: a good drop is a go, each
//! kind of bad drop a no-go with its reason, no cell of a file is ever printed, and the folder
//! is left byte for byte as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_espbridge");

fn espbridge(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The first template the simulator of `esp` lists (what `GET /templates` returns).
fn template_of(esp: &str) -> String {
    let out = espbridge(&["templates", "--esp", esp, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    body["templates"][0]["id"].as_str().unwrap().to_owned()
}

/// A send time `mins` minutes from now.
fn in_mins(mins: i64) -> String {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_mins(mins))
        .unwrap()
        .to_string()
}

/// A drop folder `campaigns/2026-11-24/<campaign>/` under `root` with `manifest` and `files`.
fn drop_folder(root: &Path, campaign: &str, manifest: &Value, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = root.join("campaigns/2026-11-24").join(campaign);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(manifest).unwrap(),
    )
    .unwrap();
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
    dir
}

fn manifest(campaign: &str, esp: &str, template: &str, send_at: &str) -> Value {
    json!({
        "schema_version": "1",
        "campaign_id": campaign,
        "esp": esp,
        "template_id": template,
        "send_at": send_at,
        "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id", "email": "email"}}
    })
}

fn audience(rows: usize) -> Vec<u8> {
    let mut body = String::from("customer_id,email\n");
    for i in 0..rows {
        body.push_str(&format!("C{i:07},c{i}@shop.example\n"));
    }
    body.into_bytes()
}

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Runs the check on `folder` (with `extra` arguments), asserting the folder is unchanged.
fn check(folder: &Path, extra: &[&str]) -> Output {
    let before = snapshot(folder);
    let mut args = vec!["check", folder.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = espbridge(&args);
    assert_eq!(
        snapshot(folder),
        before,
        "the check changed the drop folder"
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn reasons(report: &Value) -> Vec<(String, String)> {
    report["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_good_drop_is_a_go_and_the_folder_is_untouched() {
    let root = tempfile::tempdir().unwrap();
    let template = template_of("emarsys");
    let folder = drop_folder(
        root.path(),
        "spring-sale",
        &manifest("spring-sale", "emarsys", &template, &in_mins(120)),
        &[("a.csv", &audience(2500))],
    );
    let out = check(&folder, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("campaigns/2026-11-24/spring-sale/manifest.json"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2500 rows: 2500 valid, 0 rejected"),
        "{stdout}"
    );
    assert!(stdout.contains("eligible"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("GO: the drop would go through"),
        "{stdout}"
    );

    let out = check(&folder, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = json_of(&out);
    assert_eq!(r["go"], true);
    assert_eq!(r["esp"], "emarsys");
    assert_eq!(r["audience"]["valid"], 2500);
    assert_eq!(r["templates"][0]["template_id"], template.as_str());
    assert_eq!(r["upload"]["fits"], true);
    assert_eq!(r["upload"]["calls"], 1, "one call of 10,000 ids");
    assert!(!text(&out).contains("C0000001"));
}

#[test]
fn a_bad_manifest_is_a_no_go_naming_its_fields() {
    let root = tempfile::tempdir().unwrap();
    let mut m = manifest("c-manifest", "emarsys", "81001", &in_mins(120));
    m["campaign_id"] = json!("another-id");
    m.as_object_mut().unwrap().remove("template_id");
    let folder = drop_folder(root.path(), "c-manifest", &m, &[("a.csv", &audience(3))]);
    let out = check(&folder, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r = json_of(&out);
    assert_eq!(r["go"], false);
    assert_eq!(r["manifest"]["ok"], false);
    let fields: Vec<&str> = r["manifest"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["/"], "the schema's finding: {r}");
    assert!(
        r["manifest"]["problems"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("template_id"),
        "{r}"
    );
    assert!(reasons(&r).iter().all(|(check, _)| check == "manifest"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the drop would not go through"), "{stderr}");
}

#[test]
fn bad_rows_are_counted_by_reason_and_no_cell_is_printed() {
    let root = tempfile::tempdir().unwrap();
    let template = template_of("emarsys");
    let rows = "customer_id,email\n\
                HOSTILE-ID-1,first@victim.example\n\
                HOSTILE-ID-1,second@victim.example\n\
                HOSTILE-ID-2,not-an-address-HOSTILE\n\
                ,orphan@victim.example\n\
                HOSTILE-ID-3,ok@victim.example,extra-HOSTILE\n\
                HOSTILE-ID-4,fine@victim.example\n";
    let folder = drop_folder(
        root.path(),
        "c-rows",
        &manifest("c-rows", "emarsys", &template, &in_mins(120)),
        &[("a.csv", rows.as_bytes())],
    );
    for extra in [
        &["--max-rejects", "3"][..],
        &["--max-rejects", "3", "--json"][..],
    ] {
        let out = check(&folder, extra);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let all = text(&out);
        for cell in ["HOSTILE", "victim.example"] {
            assert!(!all.contains(cell), "{cell} was printed:\n{all}");
        }
        if extra.len() == 2 {
            assert!(
                all.contains(
                    "audience: 4 of 6 rows would be rejected (1 column_count, \
                     1 duplicate_customer_id, 1 empty_customer_id, 1 invalid_email), \
                     more than --max-rejects 3"
                ),
                "{all}"
            );
            assert!(
                all.contains("rejected: a.csv line 3: duplicate customer id"),
                "{all}"
            );
        } else {
            let r = json_of(&out);
            assert_eq!(r["audience"]["rows"], 6);
            assert_eq!(r["audience"]["valid"], 2);
            assert_eq!(r["audience"]["rejected_by_reason"]["invalid_email"], 1);
            assert_eq!(r["audience"]["files"][0]["rejected"], 4);
            assert_eq!(reasons(&r).len(), 1);
        }
    }
    // The real run skips them: by default the drop is a go, its rejects reported.
    let out = check(&folder, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("4 rejected"), "{}", text(&out));
    assert!(!folder.join("rejects.csv").exists());
}

#[test]
fn a_template_the_account_does_not_list_is_a_no_go() {
    let root = tempfile::tempdir().unwrap();
    let template = template_of("emarsys");
    let mut m = manifest("c-template", "emarsys", &template, &in_mins(120));
    m["variants"] = json!([
        {"name": "A", "template_id": template, "share": 0.5},
        {"name": "B", "template_id": "999999", "share": 0.5}
    ]);
    let folder = drop_folder(root.path(), "c-template", &m, &[("a.csv", &audience(10))]);
    let out = check(&folder, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("999999 (variant B): NOT eligible"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "templates: template \"999999\" (variant B) is not among the emarsys account"
        ),
        "{stdout}"
    );
    assert_eq!(stdout.matches("NOT eligible").count(), 1, "{stdout}");
}

#[test]
fn a_send_time_passed_or_too_close_is_a_no_go() {
    let root = tempfile::tempdir().unwrap();
    let template = template_of("emarsys");
    for (campaign, mins, expect) in [
        ("c-late", -60, "is more than 15 minutes in the past"),
        ("c-grace", -5, "has passed"),
        (
            "c-close",
            3,
            "the audience must be up 5 min before the send",
        ),
    ] {
        let folder = drop_folder(
            root.path(),
            campaign,
            &manifest(campaign, "emarsys", &template, &in_mins(mins)),
            &[("a.csv", &audience(10))],
        );
        let out = check(&folder, &["--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let r = reasons(&json_of(&out));
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].0, "send_window");
        assert!(r[0].1.contains(expect), "{campaign}: {r:?}");
    }
}

#[test]
fn an_audience_too_large_for_the_time_left_is_a_no_go() {
    let root = tempfile::tempdir().unwrap();
    let template = template_of("bronto");
    // Bronto's allowance is 50,000 addresses a minute: 150,000 take about 3.4 minutes, and
    // 6 minutes ahead leaves one (the audience is due 5 minutes before the send).
    let folder = drop_folder(
        root.path(),
        "c-large",
        &manifest("c-large", "bronto", &template, &in_mins(6)),
        &[("a.csv", &audience(150_000))],
    );
    let out = check(&folder, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json_of(&out);
    let r = reasons(&report);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, "upload_time");
    assert!(
        r[0].1.starts_with(
            "the audience would not be up in time: 150000 valid rows take about 3 min"
        ),
        "{r:?}"
    );
    assert_eq!(report["upload"]["fits"], false);
    assert!(
        report["upload"]["pace"]["rows_per_minute"]
            .as_f64()
            .unwrap()
            <= 50_000.0
    );

    // Two hours ahead, the same audience fits.
    let mut m = manifest("c-large", "bronto", &template, &in_mins(120));
    m["campaign_id"] = json!("c-large");
    std::fs::write(folder.join("manifest.json"), m.to_string()).unwrap();
    let out = check(&folder, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_folder_that_cannot_be_read_exits_2() {
    let root = tempfile::tempdir().unwrap();
    let out = espbridge(&["check", root.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reading drop folder"),
        "{}",
        text(&out)
    );
    // A folder without a manifest is a drop that would not go through.
    let empty = root.path().join("campaigns/2026-11-24/c-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = check(&empty, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("manifest.json: (document): no such file"));
}
