//! Property tests of the Emarsys answer reader: `classify` (through the hidden `fuzzing` entry
//! point) on arbitrary bytes, on odd `replyCode`/`replyText`/`data` envelopes, and on the
//! recorded responses with arbitrary JSON values put anywhere in them; then every wire type on
//! whatever `data` came out. No panic, and every error the answer becomes is a bounded text.
//!
//! The default case counts keep the suite fast; `PROPTEST_CASES=100000` runs more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use espbridge_emarsys::fuzzing::classify_answer;
use espbridge_emarsys::wire;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Cases per property: `default`, or `PROPTEST_CASES` when set.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Longest error text an answer may give.
const ERROR_MAX: usize = 1024;

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => prop::sample::select(vec![200u16, 201, 202, 204, 400, 401, 403, 404, 408, 409, 429, 500, 501, 502, 503]),
        1 => any::<u16>(),
    ]
}

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "", "OK", "0", "7003", " 12 ", "-1", "1e3", "12345678901234567890123", "y", "n",
            "\u{0}", "é", "😀", "\"\\",
        ]).prop_map(str::to_owned),
        2 => ".{0,40}",
        1 => (1usize..100_000, prop::sample::select(vec!["x", "é", "\\", "😀"])).prop_map(|(n, s)| s.repeat(n)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        prop::sample::select(vec![0.0, -0.0, 0.5, 1e19, -1.0, 1e300]).prop_map(|f| json!(f)),
        odd_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            btree_map(
                prop_oneof![
                    prop::sample::select(vec![
                        "id",
                        "name",
                        "errors",
                        "inserted_contacts",
                        "campaignId",
                        "sent",
                        "contact_ids",
                        "status",
                        "deleted",
                        "contactlist",
                        "2008",
                        "",
                    ])
                    .prop_map(str::to_owned),
                    ".{0,10}",
                ],
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer inside `v` (the root included).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// The recorded answers of this crate's `fixtures/`.
fn recorded() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".response.json"))
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p.to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 10, "recorded answers in {}", dir.display());
    out.into_iter().map(|(_, v)| v).collect()
}

/// Checks an answer: bounded error text, and every wire type read from its data without a panic.
fn check(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
    match classify_answer(status, body) {
        Ok(Some(data)) => read_data(data),
        Ok(None) => {}
        Err(text) => {
            prop_assert!(
                text.len() <= ERROR_MAX,
                "{} bytes: {}",
                text.len(),
                text.chars().take(200).collect::<String>()
            );
        }
    }
    Ok(())
}

/// Reads `data` as every type the adapter reads (their errors are the adapter's to bound).
fn read_data(data: Value) {
    fn read<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
        serde_json::from_value(v.clone()).ok()
    }
    let one = wire::one_or_first(data.clone());
    for v in [Some(&data), one.as_ref()].into_iter().flatten() {
        if let Some(e) = read::<wire::Email>(v) {
            let _ = e.is_deleted();
        }
        let _ = read::<Vec<wire::Email>>(v);
        let _ = read::<Vec<wire::EmailTemplate>>(v);
        let _ = read::<wire::CreatedId>(v);
        let _ = read::<Vec<wire::Field>>(v);
        let _ = read::<Vec<wire::ContactList>>(v);
        let _ = read::<wire::ContactListCreated>(v);
        let _ = read::<wire::ContactsAdded>(v);
        let _ = read::<wire::EmailCopied>(v);
        let _ = read::<Vec<wire::EmailLaunch>>(v);
        if let Some(s) = read::<wire::ResponseSummary>(v) {
            assert!(s.delivered() <= s.sent);
            let _ = s.bounces();
        }
        let _ = read::<wire::ResponsesResult>(v);
        let _ = read::<wire::IdErrors>(v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_bounded(
        status in status(),
        body in prop_oneof![
            vec(any::<u8>(), 0..512),
            vec(prop::sample::select(b"{}[]\":,0123456789.eE+-tfnul \\replyCodTxa".to_vec()), 0..512),
        ],
    ) {
        check(status, &body)?;
    }

    /// Envelopes with odd codes (numeric strings, floats, huge, negative, of the wrong type),
    /// odd texts (empty, huge, control characters) and any data.
    #[test]
    fn odd_envelopes_never_panic_and_errors_are_bounded(
        status in status(),
        code in prop_oneof![
            prop::sample::select(vec![
                json!(0), json!("0"), json!(" 0 "), json!(7003), json!("7003"), json!(6096),
                json!(6028), json!(2008), json!(-1), json!(1e30), json!(9223372036854775808u64),
                json!("abc"), json!(""), json!(null), json!([]), json!({}), json!(true), json!(0.5),
            ]),
            json_value(),
        ],
        text in prop_oneof![odd_string().prop_map(Value::String), json_value()],
        data in json_value(),
        omit in prop::sample::select(vec!["", "", "replyCode", "replyText", "data"]),
    ) {
        let mut env = serde_json::Map::new();
        env.insert("replyCode".into(), code);
        env.insert("replyText".into(), text);
        env.insert("data".into(), data);
        env.remove(omit);
        check(status, &serde_json::to_vec(&Value::Object(env)).unwrap())?;
    }

    /// The recorded answers, with arbitrary values put in a few places.
    #[test]
    fn recorded_answers_with_odd_values_never_panic(
        status in status(),
        pick in any::<prop::sample::Index>(),
        changes in vec((any::<prop::sample::Index>(), json_value()), 1..4),
    ) {
        let answers = recorded();
        let mut doc = pick.get(&answers).clone();
        for (at, value) in changes {
            let mut all = Vec::new();
            pointers(&doc, String::new(), &mut all);
            let p = at.get(&all).clone();
            if let Some(slot) = doc.pointer_mut(&p) {
                *slot = value;
            }
        }
        check(status, &serde_json::to_vec(&doc).unwrap())?;
    }
}

/// The inputs that made `classify`'s errors long: a huge `replyText` (quoted by API, auth and
/// transient errors) and a huge `replyCode` (quoted by the "not a JSON envelope" error).
#[test]
fn huge_reply_texts_and_codes_give_bounded_errors() {
    let text = "t".repeat(100_000);
    let huge_text = json!({"replyCode": 6023, "replyText": text, "data": ""});
    let huge_code = json!({"replyCode": [text], "replyText": "x", "data": ""});
    for body in [huge_text, huge_code] {
        let body = serde_json::to_vec(&body).unwrap();
        for status in [200, 400, 401, 500] {
            if let Err(e) = classify_answer(status, &body) {
                assert!(e.len() <= ERROR_MAX, "HTTP {status}: {} bytes", e.len());
            }
        }
    }
}
