//! The bad-input catalogue: hostile drops, each with the exact error it must give. For every
//! one: the campaign ends in a final state (never left `received` or `uploading`), its record
//! fits one DynamoDB item, the drop is kept, nothing reached the ESP when the refusal comes
//! before the upload, and no marker id or address of the input appears in any log line, the
//! record, the API's answer or the rejects report.

use super::*;
use crate::campaign::State;
use crate::service::upload::UploadOutcome;
use std::io::Write;
use std::sync::Mutex;

/// Cells every hostile input carries, which must never come out again.
const MARK_ID: &str = "ZZMARKID77";
const MARK_MAIL: &str = "zz.mark77@leak.example";
/// DynamoDB's item limit.
const ITEM_LIMIT: usize = 400 * 1024;

/// What a case must end as.
enum Expect {
    /// Failed at `step` with exactly `reason`; `before_esp`: nothing was written at the ESP.
    Failed {
        step: &'static str,
        reason: String,
        before_esp: bool,
    },
    /// Uploaded; these reject counts (by reason key) in the record.
    Uploaded {
        valid: u64,
        rejected: &'static [(&'static str, u64)],
    },
}

struct Case {
    name: &'static str,
    manifest: Vec<u8>,
    files: Vec<(&'static str, Vec<u8>)>,
    expect: Expect,
    esp: FakeEsp,
    settings: Option<UploadSettings>,
}

fn base_manifest() -> serde_json::Value {
    serde_json::json!({
        "schema_version": "1", "campaign_id": "c1", "esp": "emarsys", "template_id": "t1",
        "send_at": "2026-11-25T09:00:00+01:00",
        "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id", "email": "email"}}
    })
}

/// A good file: header, the marker row and `n` more rows.
fn good_csv(n: usize) -> Vec<u8> {
    let mut s = format!("customer_id,email\n{MARK_ID},{MARK_MAIL}\n");
    for i in 0..n {
        s.push_str(&format!("C{i},c{i}@shop.example\n"));
    }
    s.into_bytes()
}

fn with(f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut m = base_manifest();
    f(&mut m);
    m.to_string().into_bytes()
}

fn case(name: &'static str, manifest: Vec<u8>, file: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        manifest,
        files: vec![("a.csv", file)],
        expect,
        esp: FakeEsp::default(),
        settings: None,
    }
}

fn failed(step: &'static str, reason: impl Into<String>, before_esp: bool) -> Expect {
    Expect::Failed {
        step,
        reason: reason.into(),
        before_esp,
    }
}

fn manifest_error(detail: &str) -> Expect {
    failed(
        "manifest",
        format!("{PREFIX}manifest.json rejected: {detail}"),
        true,
    )
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// 2 GiB of newlines in about 2 MB: one gzip member of a mebibyte of newlines, repeated (a
/// multi-member gzip is one file to every decoder).
/// 2 MB of gzip members that expand to 2 GiB of `byte`, after `header` (its own member).
fn gzip_bomb(header: &[u8], byte: u8) -> Vec<u8> {
    let member = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let mut out = if header.is_empty() {
        Vec::new()
    } else {
        member(header)
    };
    out.extend(member(&vec![byte; 1 << 20]).repeat(2048));
    out
}

fn catalogue() -> Vec<Case> {
    let mut cases = vec![
        // The manifest.
        case(
            "manifest is not JSON",
            b"{\"schema_version\": \"1\", ".to_vec(),
            good_csv(3),
            manifest_error(
                "(document): not valid JSON at line 1, column 24: EOF while parsing a value",
            ),
        ),
        case(
            "manifest is not UTF-8",
            b"{\"schema_version\": \"\xff\"}".to_vec(),
            good_csv(3),
            manifest_error("(document): not UTF-8 (byte 20)"),
        ),
        case(
            "a key given twice",
            br#"{"schema_version": "1", "campaign_id": "c1", "campaign_id": "c1"}"#.to_vec(),
            good_csv(3),
            manifest_error(
                "(document): key \"campaign_id\" appears twice in one object (line 1, column 58)",
            ),
        ),
        case(
            "a number where a string belongs",
            with(|m| m["template_id"] = 42.into()),
            good_csv(3),
            manifest_error("/template_id: 42 is not of type \"string\""),
        ),
        case(
            "a manifest larger than 256 KiB",
            {
                let mut m = base_manifest().to_string().into_bytes();
                m.extend(std::iter::repeat_n(b' ', 300 * 1024));
                m
            },
            good_csv(3),
            manifest_error("larger than 262144 bytes (a manifest is a few kilobytes)"),
        ),
        case(
            "a 200 KB template name",
            with(|m| m["template_name"] = "x".repeat(200_000).into()),
            good_csv(3),
            // The schema's message quotes the value: cut to 160 bytes.
            manifest_error(&format!("/template_name: \"{}…", "x".repeat(156))),
        ),
        case(
            "JSON nested 10,000 deep",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            good_csv(3),
            manifest_error(
                "(document): not valid JSON at line 1, column 128: recursion limit exceeded",
            ),
        ),
        case(
            "no audience",
            with(|m| {
                m.as_object_mut().unwrap().remove("audience");
            }),
            good_csv(3),
            manifest_error("/: \"audience\" is a required property"),
        ),
        case(
            "an unknown key",
            with(|m| m["sendAt"] = "2026-11-25T09:00:00Z".into()),
            good_csv(3),
            manifest_error("/: Additional properties are not allowed ('sendAt' was unexpected)"),
        ),
        case(
            "the campaign id is not the folder's",
            with(|m| m["campaign_id"] = "other".into()),
            good_csv(3),
            manifest_error(
                "/campaign_id: \"other\" differs from the drop folder's campaign id \"c1\"",
            ),
        ),
        case(
            "send_at three days in the past",
            with(|m| m["send_at"] = "2026-11-21T02:00:00Z".into()),
            good_csv(3),
            manifest_error("/send_at: 2026-11-21T02:00:00Z is more than 15 minutes in the past"),
        ),
        case(
            "send_at two years ahead",
            with(|m| m["send_at"] = "2028-11-24T02:00:00Z".into()),
            good_csv(3),
            manifest_error(
                "/send_at: 2028-11-24T02:00:00Z is more than 30 days ahead (the drop bucket keeps a drop's files 30 days)",
            ),
        ),
        case(
            "send_at without an offset",
            with(|m| m["send_at"] = "2026-11-25 09:00".into()),
            good_csv(3),
            manifest_error(
                r#"/send_at: "2026-11-25 09:00" does not match "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})$""#,
            ),
        ),
        case(
            "an unknown ESP option",
            with(|m| m["esp_options"] = serde_json::json!({"emarsys": {"list_name": "x"}})),
            good_csv(3),
            manifest_error(
                "/esp_options/emarsys: {\"list_name\":\"x\"} has more than 0 properties",
            ),
        ),
        case(
            "options for another ESP",
            with(|m| m["esp_options"] = serde_json::json!({"silverpop": {"mode": "lists"}})),
            good_csv(3),
            manifest_error(
                "/esp_options/silverpop: options for another ESP than the campaign's (emarsys)",
            ),
        ),
        case(
            "Bronto's From in the manifest",
            with(|m| {
                m["esp_options"] =
                    serde_json::json!({"bronto": {"from_email": "news@brand.example"}})
            }),
            good_csv(3),
            manifest_error(
                "/esp_options/bronto: {\"from_email\":\"news@brand.example\"} has more than 0 properties",
            ),
        ),
        case(
            "an account that is not configured",
            with(|m| m["account"] = "nowhere".into()),
            good_csv(3),
            manifest_error("/account: no emarsys account named \"nowhere\" is configured"),
        ),
        case(
            "an audience file outside the drop folder",
            with(|m| m["audience"]["files"] = serde_json::json!(["../../other/a.csv"])),
            good_csv(3),
            manifest_error(
                r#"/audience/files/0: "../../other/a.csv" does not match "^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.csv(\.gz)?$""#,
            ),
        ),
        case(
            "ten thousand audience files",
            with(|m| {
                m["audience"]["files"] = (0..10_000)
                    .map(|i| format!("f{i}.csv"))
                    .collect::<Vec<_>>()
                    .into()
            }),
            good_csv(3),
            manifest_error(
                "/audience/files: [\"f0.csv\",\"f1.csv\",\"f2.csv\",\"f3.csv\",\"f4.csv\",\"f5.csv\",\"f6.csv\",\"f7.csv\",\"f8.csv\",\"f9.csv\",\"f10.csv\",\"f11.csv\",\"f12.csv\",\"f13.csv\",\"f14.csv\",\"f15.csv\",\"f16.c…",
            ),
        ),
        // Checks against the account, before any ESP write.
        case(
            "a template the account does not list",
            with(|m| m["template_id"] = "t404".into()),
            good_csv(3),
            failed(
                "upload",
                "template \"t404\" is not among the emarsys account's eligible templates (see GET /templates)",
                true,
            ),
        ),
        case(
            "a variant's template the account does not list",
            with(|m| {
                m["variants"] = serde_json::json!([
                    {"name": "A", "template_id": "t1", "share": 0.5},
                    {"name": "B", "template_id": "t999", "share": 0.5}
                ])
            }),
            good_csv(3),
            failed(
                "upload",
                "template \"t999\" is not among the emarsys account's eligible templates (see GET /templates)",
                true,
            ),
        ),
        // The audience files.
        case(
            "a file without a header row",
            base_manifest().to_string().into_bytes(),
            format!("{MARK_ID},{MARK_MAIL}\nC2,c2@shop.example\n").into_bytes(),
            failed(
                "audience",
                "a.csv line 1: does not look like a header (2 fields; expected a column named \"customer_id\")",
                true,
            ),
        ),
        case(
            "an empty file",
            base_manifest().to_string().into_bytes(),
            Vec::new(),
            failed("audience", "a.csv: empty file (no header row)", true),
        ),
        case(
            "a header only",
            base_manifest().to_string().into_bytes(),
            b"customer_id,email\n".to_vec(),
            failed(
                "audience",
                "no data rows: the audience files hold a header only",
                true,
            ),
        ),
        case(
            "a header lacking the e-mail column",
            base_manifest().to_string().into_bytes(),
            format!("customer_id,mail\n{MARK_ID},{MARK_MAIL}\n").into_bytes(),
            failed(
                "audience",
                "a.csv line 1: header lacks column(s) \"email\" (2 columns)",
                true,
            ),
        ),
        case(
            "a header naming the id column twice",
            base_manifest().to_string().into_bytes(),
            format!("customer_id,email,customer_id\n{MARK_ID},{MARK_MAIL},{MARK_ID}\n")
                .into_bytes(),
            failed(
                "audience",
                "a.csv line 1: column \"customer_id\" appears 2 times in the header (columns 1, 3)",
                true,
            ),
        ),
        case(
            "UTF-16 with a byte-order mark",
            base_manifest().to_string().into_bytes(),
            b"\xFF\xFE"
                .iter()
                .copied()
                .chain(
                    String::from_utf8(good_csv(3))
                        .unwrap()
                        .encode_utf16()
                        .flat_map(|u| u.to_le_bytes()),
                )
                .collect(),
            failed(
                "audience",
                "a.csv line 1: unreadable header: encoded as UTF-16 (byte-order mark): save the file as UTF-8",
                true,
            ),
        ),
        case(
            "UTF-32 with a byte-order mark",
            base_manifest().to_string().into_bytes(),
            b"\xFF\xFE\x00\x00"
                .iter()
                .copied()
                .chain(
                    String::from_utf8(good_csv(3))
                        .unwrap()
                        .chars()
                        .flat_map(|c| (c as u32).to_le_bytes()),
                )
                .collect(),
            failed(
                "audience",
                "a.csv line 1: unreadable header: encoded as UTF-32 (byte-order mark): save the file as UTF-8",
                true,
            ),
        ),
        case(
            "UTF-16 without a byte-order mark",
            base_manifest().to_string().into_bytes(),
            String::from_utf8(good_csv(3))
                .unwrap()
                .encode_utf16()
                .flat_map(|u| u.to_be_bytes())
                .collect(),
            failed(
                "audience",
                "a.csv line 1: does not look like a header (2 fields; expected a column named \"customer_id\")",
                true,
            ),
        ),
        case(
            "a doubled UTF-8 byte-order mark",
            base_manifest().to_string().into_bytes(),
            b"\xEF\xBB\xBF\xEF\xBB\xBF"
                .iter()
                .copied()
                .chain(good_csv(3))
                .collect(),
            Expect::Uploaded {
                valid: 4,
                rejected: &[],
            },
        ),
        case(
            "ten thousand columns",
            base_manifest().to_string().into_bytes(),
            {
                let mut h = String::from("customer_id,email");
                for i in 0..10_000 {
                    h.push_str(&format!(",col{i}"));
                }
                h.push('\n');
                h.push_str(&format!("{MARK_ID},{MARK_MAIL}{}\n", ",".repeat(10_000)));
                h.into_bytes()
            },
            failed(
                "audience",
                "a.csv line 1: unreadable header: line longer than the maximum line length",
                true,
            ),
        ),
        case(
            "CR-only line ends (an old Mac export)",
            base_manifest().to_string().into_bytes(),
            good_csv(3)
                .into_iter()
                .map(|b| if b == b'\n' { b'\r' } else { b })
                .collect(),
            failed(
                "audience",
                "a.csv line 1: unreadable header: carriage return without line feed (CR-only line ends, as old Mac exports have: save the file with LF or CRLF line ends)",
                true,
            ),
        ),
        case(
            "3 MB of CR-only line ends",
            base_manifest().to_string().into_bytes(),
            {
                let mut f = b"customer_id,email\r".to_vec();
                for i in 0..100_000 {
                    f.extend(format!("C{i},c{i}@shop.example\r").bytes());
                }
                f.extend(format!("{MARK_ID},{MARK_MAIL}\r").bytes());
                f
            },
            failed(
                "audience",
                "a.csv line 1: unreadable header: carriage return without line feed (CR-only line ends, as old Mac exports have: save the file with LF or CRLF line ends)",
                true,
            ),
        ),
        case(
            "NUL bytes in a row",
            base_manifest().to_string().into_bytes(),
            [good_csv(2), b"C\x009,c9@shop.example\n".to_vec()].concat(),
            Expect::Uploaded {
                valid: 3,
                rejected: &[("invalid_customer_id", 1)],
            },
        ),
        case(
            "a 5 MB single field",
            base_manifest().to_string().into_bytes(),
            [
                good_csv(2),
                b"C77,\"".to_vec(),
                vec![b'y'; 5 << 20],
                b"\"\nC78,c78@shop.example\n".to_vec(),
            ]
            .concat(),
            Expect::Uploaded {
                valid: 4,
                rejected: &[("line_too_long", 1)],
            },
        ),
        case(
            "blank lines, stray quotes, an unterminated quote, short rows",
            base_manifest().to_string().into_bytes(),
            [
                good_csv(2),
                b"\n\nC5,c5@x.example\"\nC6\n\"C7,c7@shop.example\n".to_vec(),
            ]
            .concat(),
            Expect::Uploaded {
                valid: 3,
                rejected: &[
                    ("empty_row", 2),
                    ("malformed_quoting", 1),
                    ("column_count", 1),
                    ("unterminated_quote", 1),
                ],
            },
        ),
        case(
            "bad e-mails, a 300-byte id, a duplicate",
            base_manifest().to_string().into_bytes(),
            [
                good_csv(2),
                format!(
                    "C8,not-an-address\n{},c9@shop.example\n{MARK_ID},{MARK_MAIL}\n",
                    "9".repeat(300)
                )
                .into_bytes(),
            ]
            .concat(),
            Expect::Uploaded {
                valid: 3,
                rejected: &[
                    ("invalid_email", 1),
                    ("invalid_customer_id", 1),
                    ("duplicate_customer_id", 1),
                ],
            },
        ),
        case(
            "a gzip bomb: a header, then 2 MB expanding to one endless line past the ratio",
            with(|m| m["audience"]["files"] = serde_json::json!(["a.csv.gz"])),
            Vec::new(),
            failed(
                "audience",
                "a.csv.gz: expands more than 100 times when decompressed (a compression bomb, or not an audience file)",
                true,
            ),
        ),
        // The one pass stops at the first line: nothing is expanded beyond it.
        case(
            "a gzip bomb: 2 MB of newlines",
            with(|m| m["audience"]["files"] = serde_json::json!(["a.csv.gz"])),
            Vec::new(),
            failed(
                "audience",
                "a.csv.gz line 1: does not look like a header (1 fields; expected a column named \"customer_id\")",
                true,
            ),
        ),
        case(
            "a corrupt gzip",
            with(|m| m["audience"]["files"] = serde_json::json!(["a.csv.gz"])),
            Vec::new(),
            failed(
                "audience",
                "a.csv.gz: cannot read: corrupt data: Invalid gzip header",
                true,
            ),
        ),
        case(
            "a file name differing only in case",
            with(|m| m["audience"]["files"] = serde_json::json!(["A.csv"])),
            good_csv(3),
            failed(
                "audience",
                "A.csv: campaigns/2026-11-24/c1/A.csv: no such object",
                true,
            ),
        ),
        case(
            "more rejected rows than the limit",
            base_manifest().to_string().into_bytes(),
            [good_csv(1), b"x\n".repeat(2_000)].concat(),
            failed(
                "audience",
                "more than 1000 rows rejected: is this the file the manifest describes? (the first ones are in campaigns/2026-11-24/c1/rejects.csv)",
                true,
            ),
        ),
        case(
            "more rows than the upload's memory holds",
            base_manifest().to_string().into_bytes(),
            good_csv(30),
            failed(
                "audience",
                "a.csv: more than 20 rows in the drop (the limit follows the upload function's memory: README, Audience limits)",
                true,
            ),
        ),
        case(
            "personalization fields an ESP would drop",
            with(|m| m["audience"]["columns"]["fields"] = serde_json::json!(["first_name"])),
            good_csv(3),
            manifest_error(
                "/audience/columns/fields: emarsys cannot carry personalization fields; remove them, or they would be dropped",
            ),
        ),
    ];
    // Files that need building.
    for c in &mut cases {
        match c.name {
            "a gzip bomb: a header, then 2 MB expanding to one endless line past the ratio" => {
                let bomb = gzip_bomb(b"customer_id,email\n", b'a');
                assert!(bomb.len() < 3 << 20, "{} bytes", bomb.len());
                c.files = vec![("a.csv.gz", bomb)];
            }
            "a gzip bomb: 2 MB of newlines" => {
                let bomb = gzip_bomb(b"", b'\n');
                assert!(bomb.len() < 3 << 20, "{} bytes", bomb.len());
                c.files = vec![("a.csv.gz", bomb)];
            }
            "a corrupt gzip" => {
                let mut g = gz(&good_csv(3));
                g[0] = b'X';
                c.files = vec![("a.csv.gz", g)];
            }
            "more rejected rows than the limit" => {
                c.settings = Some(with_limits(|l| l.max_rejects = 1_000));
            }
            "more rows than the upload's memory holds" => {
                c.settings = Some(with_limits(|l| l.max_rows = 20));
            }
            "personalization fields an ESP would drop" => {
                c.esp = FakeEsp {
                    drops_fields: true,
                    ..FakeEsp::default()
                };
            }
            _ => {}
        }
    }
    cases
}

/// The default upload settings with audience limits changed by `change`.
fn with_limits(change: impl FnOnce(&mut crate::audience::read::AudienceLimits)) -> UploadSettings {
    let mut settings = UploadSettings::default();
    change(&mut settings.audience_limits);
    settings
}

/// A writer shared with the log subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What one case came to, for the figures the issue asks for.
struct Figures {
    /// The failure (step: reason), or the rejects by reason.
    outcome: String,
    record_bytes: usize,
    longest_log_line: usize,
    report_bytes: usize,
    millis: u128,
}

async fn run_case(c: Case) -> Figures {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut w = world_with(c.esp);
    if let Some(s) = c.settings {
        w.services.upload_settings = s;
    }
    for (name, body) in &c.files {
        w.src.put(&format!("{PREFIX}{name}"), body.clone());
    }
    w.src
        .put(&format!("{PREFIX}manifest.json"), c.manifest.clone());
    let drop = ObjectRef {
        bucket: "b".into(),
        key: format!("{PREFIX}manifest.json"),
        etag: "e1".into(),
    };
    let started = std::time::Instant::now();
    let out = w
        .services
        .upload()
        .handle_drop(&drop, Deadline::none(), false)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    let millis = started.elapsed().as_millis();
    let rec = w
        .services
        .store
        .get(&id())
        .await
        .unwrap()
        .expect("a record");
    match &c.expect {
        Expect::Failed {
            step,
            reason,
            before_esp,
        } => {
            assert_eq!(out, UploadOutcome::Failed(id()), "{}", c.name);
            assert_eq!(rec.state, State::Failed, "{}", c.name);
            let f = rec.failure.as_ref().expect("a failure");
            assert_eq!(
                (f.step.as_str(), f.reason.as_str()),
                (*step, reason.as_str()),
                "{}",
                c.name
            );
            if *before_esp {
                assert!(
                    w.esp.lists.lock().unwrap().is_empty(),
                    "{}: an ESP write",
                    c.name
                );
                assert_eq!(*w.esp.ids_sent.lock().unwrap(), 0, "{}", c.name);
            }
        }
        Expect::Uploaded { valid, rejected } => {
            assert_eq!(out, UploadOutcome::AudienceReady(id()), "{}", c.name);
            assert_eq!(rec.audience.valid, *valid, "{}", c.name);
            let got: Vec<(&str, u64)> = rec
                .audience
                .rejected_by_reason
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect();
            let mut want = rejected.to_vec();
            want.sort();
            let mut got = got;
            got.sort();
            assert_eq!(got, want, "{}", c.name);
        }
    }
    assert!(
        rec.failure
            .iter()
            .all(|f| f.reason.len() <= crate::text::MAX_REASON)
    );
    // The drop is kept.
    assert_eq!(
        w.src.get(&format!("{PREFIX}manifest.json")).as_deref(),
        Some(c.manifest.as_slice()),
        "{}",
        c.name
    );
    for (name, body) in &c.files {
        assert_eq!(w.src.get(&format!("{PREFIX}{name}")).as_ref(), Some(body));
    }
    // Nothing of the input's cells anywhere.
    let record = serde_json::to_string(&rec).unwrap();
    let doc = w
        .services
        .api()
        .campaign_document(&id())
        .await
        .unwrap()
        .unwrap()
        .to_string();
    let report = w
        .src
        .get(&format!("{PREFIX}rejects.csv"))
        .unwrap_or_default();
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for (what, text) in [
        ("record", record.as_str()),
        ("API answer", doc.as_str()),
        ("logs", logs.as_str()),
        ("rejects report", &String::from_utf8_lossy(&report)),
    ] {
        for mark in [MARK_ID, MARK_MAIL] {
            assert!(!text.contains(mark), "{}: {mark} in the {what}", c.name);
        }
    }
    assert!(
        record.len() < ITEM_LIMIT,
        "{}: record of {} bytes",
        c.name,
        record.len()
    );
    let outcome = match &rec.failure {
        Some(f) => format!("failed at {}: {}", f.step, f.reason),
        None => format!(
            "uploaded: {} valid, rejected {:?}",
            rec.audience.valid, rec.audience.rejected_by_reason
        ),
    };
    Figures {
        outcome,
        record_bytes: record.len(),
        longest_log_line: logs.lines().map(str::len).max().unwrap_or(0),
        report_bytes: report.len(),
        millis,
    }
}

#[tokio::test]
async fn every_hostile_drop_gives_its_clear_error_and_leaks_nothing() {
    let cases = catalogue();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for c in cases {
        let name = c.name;
        // Each case in its own task, so one failing case does not hide the others.
        match tokio::spawn(run_case(c)).await {
            Ok(f) => table.push(format!(
                "| {name} | {} | {} | {} | {} | {} ms |",
                f.outcome.replace('|', "\\|"),
                f.record_bytes,
                f.longest_log_line,
                f.report_bytes,
                f.millis
            )),
            Err(e) => failures.push(match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| format!("{name}: panicked")),
                Err(e) => format!("{name}: {e}"),
            }),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The figures of the closing note: `cargo test -p espbridge-core hostile -- --nocapture`.
    println!("| drop | result | record bytes | longest log line | rejects report bytes | time |");
    println!("|---|---|---|---|---|---|");
    for row in table {
        println!("{row}");
    }
}
