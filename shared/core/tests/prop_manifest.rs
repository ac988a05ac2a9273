//! Property tests of the manifest parser (`manifest::parse`) and the drop-key parser
//! (`DropPath::parse`): arbitrary bytes, arbitrary JSON values put at the manifest's keys, and
//! odd JSON text (deep nesting, huge strings and numbers, lone surrogates, repeated keys, control
//! characters, invalid UTF-8 inside a string, truncation). No panic, and every error is a bounded
//! reason: a manifest's values may be quoted in a schema error, but cut short.
//!
//! The default case counts keep the suite fast; `PROPTEST_CASES=100000` runs more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use espbridge_core::manifest::{DropPath, ManifestError, parse};
use espbridge_core::text::MAX_REASON;
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

const KEY: &str = "campaigns/2026-11-24/spring-sale/manifest.json";

/// Longest a field's pointer and reason are kept (`FieldError::new`).
const FIELD_MAX: usize = 96;
const REASON_MAX: usize = 160;

fn drop_path() -> DropPath {
    DropPath::parse(KEY).unwrap().unwrap()
}

/// A manifest that uses every key the schema knows, and passes.
fn good() -> Value {
    json!({
        "schema_version": "1",
        "campaign_id": "spring-sale",
        "esp": "silverpop",
        "account": "eu",
        "template_id": "81001",
        "template_name": "Spring",
        "send_at": "2026-11-25T09:30:00+01:00",
        "timezone": "Europe/Berlin",
        "audience": {
            "files": ["audience-000.csv.gz", "audience-001.csv"],
            "columns": {"customer_id": "customer_id", "email": "email", "fields": ["first_name"]}
        },
        "variants": [
            {"name": "a", "template_id": "81001", "share": 0.5},
            {"name": "b", "template_id": "81002", "share": 0.5}
        ],
        "control_group": {"holdout_share": 0.1},
        "ab_metric": "open_rate",
        "esp_options": {"silverpop": {"mode": "relational_table"}}
    })
}

/// Every place a value sits in [`good`] (and one key it does not have).
const POINTERS: &[&str] = &[
    "",
    "/schema_version",
    "/campaign_id",
    "/esp",
    "/account",
    "/template_id",
    "/template_name",
    "/send_at",
    "/timezone",
    "/audience",
    "/audience/files",
    "/audience/files/0",
    "/audience/files/1",
    "/audience/columns",
    "/audience/columns/customer_id",
    "/audience/columns/email",
    "/audience/columns/fields",
    "/audience/columns/fields/0",
    "/variants",
    "/variants/0",
    "/variants/0/name",
    "/variants/0/template_id",
    "/variants/1/share",
    "/control_group",
    "/control_group/holdout_share",
    "/ab_metric",
    "/esp_options",
    "/esp_options/silverpop",
    "/esp_options/silverpop/mode",
];

/// Most bytes a rejection's text may take beyond the file name: at most three problems of a
/// bounded field and reason each, and a count of the rest. (The target is [`MAX_REASON`]; see
/// `rejections_fit_one_reason`, ignored while three problems can take about 800 bytes.)
const MESSAGE_MAX: usize = 1024;

/// Checks what must hold of any answer of the parser.
fn check(
    result: &Result<espbridge_core::manifest::Manifest, ManifestError>,
) -> Result<(), TestCaseError> {
    check_within(result, MESSAGE_MAX)
}

fn check_within(
    result: &Result<espbridge_core::manifest::Manifest, ManifestError>,
    max: usize,
) -> Result<(), TestCaseError> {
    let Err(e) = result else {
        return Ok(());
    };
    prop_assert!(!e.errors.is_empty(), "a rejection without a reason");
    prop_assert_eq!(&e.file, KEY);
    for f in &e.errors {
        prop_assert!(
            f.field.len() <= FIELD_MAX,
            "field of {} bytes",
            f.field.len()
        );
        prop_assert!(
            f.reason.len() <= REASON_MAX,
            "reason of {} bytes",
            f.reason.len()
        );
    }
    let text = e.to_string();
    prop_assert!(
        text.len() <= max + KEY.len(),
        "{} bytes ({} problems): {}",
        text.len(),
        e.errors.len(),
        text
    );
    Ok(())
}

/// Strings a manifest might hold, and strings no manifest should.
fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "", "1", "emarsys", "bronto", "silverpop", "smartfocus", "spring-sale", "other",
            "2026-11-25T09:30:00Z", "2026-02-30T25:61:00+99:99", "tomorrow", "Europe/Berlin",
            "Mars/Olympus", "a.csv", "../etc/passwd", "audience-000.csv.gz", "customer_id",
            "lists", "relational_table", "open_rate", "\u{0}", "\u{feff}", "é", "\"\\", "𝔘",
        ]).prop_map(str::to_owned),
        3 => ".{0,40}",
        2 => (1usize..20_000, prop::sample::select(vec!["x", "é", "\"", "\\", "\u{1}", "😀", "a/b"]))
            .prop_map(|(n, s)| s.repeat(n)),
    ]
}

fn odd_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "schema_version", "campaign_id", "esp", "files", "columns", "name", "share", "mode",
            "emarsys", "silverpop", "file", "holdout_share", "sendAt", "",
        ]).prop_map(str::to_owned),
        1 => ".{0,20}",
        1 => (1usize..5_000).prop_map(|n| "k".repeat(n)),
    ]
}

/// Any JSON value: scalars of every kind (huge, negative, fractional, odd strings), nested
/// arrays and objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        prop::sample::select(vec![0.0, -0.0, 0.5, 1.0, 1.0000001, 1e-300, 1e300])
            .prop_map(|f| json!(f)),
        odd_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 10, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..10).prop_map(Value::Array),
            btree_map(odd_key(), inner, 0..10).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Change {
    Set(usize, Value),
    Remove(usize),
    AddKey(usize, String, Value),
}

fn change() -> impl Strategy<Value = Change> {
    let at = 0..POINTERS.len();
    prop_oneof![
        6 => (at.clone(), json_value()).prop_map(|(i, v)| Change::Set(i, v)),
        1 => at.clone().prop_map(Change::Remove),
        2 => (at, odd_key(), json_value()).prop_map(|(i, k, v)| Change::AddKey(i, k, v)),
    ]
}

/// Applies `c` to `doc`; a change whose place is gone (an earlier change replaced its parent)
/// does nothing.
fn apply(doc: &mut Value, c: &Change) {
    match c {
        Change::Set(i, v) => {
            if let Some(slot) = doc.pointer_mut(POINTERS[*i]) {
                *slot = v.clone();
            }
        }
        Change::Remove(i) => {
            let p = POINTERS[*i];
            let Some((parent, last)) = p.rsplit_once('/') else {
                return;
            };
            match doc.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(last);
                }
                Some(Value::Array(a)) => {
                    if let Ok(n) = last.parse::<usize>()
                        && n < a.len()
                    {
                        a.remove(n);
                    }
                }
                _ => {}
            }
        }
        Change::AddKey(i, k, v) => {
            if let Some(Value::Object(m)) = doc.pointer_mut(POINTERS[*i]) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
}

/// JSON text no serializer writes, as a value.
fn odd_json_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0usize..400).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d)).into_bytes()),
        (0usize..400)
            .prop_map(|d| format!("{}1{}", "{\"a\":".repeat(d), "}".repeat(d)).into_bytes()),
        (0usize..400).prop_map(|d| "[".repeat(d).into_bytes()),
        prop::sample::select(vec![
            "1e400",
            "-1e400",
            "-0",
            "18446744073709551616",
            "-9223372036854775809",
            "0.1e-400",
            "1E+2",
            "01",
            "+1",
            ".5",
            "NaN",
            "Infinity",
            "nul",
            "tru",
            r#""\ud800""#,
            r#""\udc00\ud800""#,
            r#""\u0000""#,
            r#""\x41""#,
            r#""\u12""#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            r#"[{"x":1,"x":1}]"#,
            r#"{"":1}"#,
            r#"{1:2}"#,
            "[1,]",
            "{,}",
            "/* c */ 1",
            "'single'",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        // A string holding raw control characters or bytes that are not UTF-8.
        vec(prop_oneof![any::<u8>(), Just(b'"'), Just(b'\\')], 0..40).prop_map(|b| [
            &b"\""[..],
            &b,
            &b"\""[..]
        ]
        .concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    /// Arbitrary bytes, and bytes that look like JSON.
    #[test]
    fn arbitrary_bytes_are_refused_with_a_bounded_reason(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..512),
            vec(prop::sample::select(b"{}[]\":,0123456789.eE+-tfnul \\/\n\tx\xC3\xA9\xFF".to_vec()), 0..512),
        ],
    ) {
        check(&parse(&bytes, KEY, &drop_path()))?;
    }

    /// The good manifest with arbitrary JSON values put at its keys, keys removed and unknown keys
    /// added, a few at once (so several problems are reported together).
    #[test]
    fn arbitrary_values_at_the_manifest_keys_give_bounded_reasons(
        changes in vec(change(), 1..6),
    ) {
        let mut doc = good();
        for c in &changes {
            apply(&mut doc, c);
        }
        let text = serde_json::to_vec(&doc).unwrap();
        check(&parse(&text, KEY, &drop_path()))?;
    }

    /// Odd JSON text at one of the manifest's values (or instead of the whole document, or cut
    /// anywhere), with or without a byte-order mark and trailing bytes.
    #[test]
    fn odd_json_text_gives_bounded_reasons(
        at in 0..POINTERS.len(),
        odd in odd_json_text(),
        cut in prop::option::weighted(0.2, any::<prop::sample::Index>()),
        bom in prop::bool::weighted(0.1),
        trailing in prop::sample::select(vec![&b""[..], &b""[..], &b" "[..], &b"x"[..], &b"{}"[..], &b"\x00"[..]]),
    ) {
        // A placeholder string, swapped for the odd text once serialized.
        const HOLE: &str = "\u{1}HOLE\u{1}";
        let mut doc = good();
        if let Some(slot) = doc.pointer_mut(POINTERS[at]) {
            *slot = Value::String(HOLE.to_owned());
        }
        let text = serde_json::to_string(&doc).unwrap();
        let hole = serde_json::to_string(HOLE).unwrap();
        let mut bytes = Vec::new();
        if bom {
            bytes.extend_from_slice(b"\xEF\xBB\xBF");
        }
        match text.split_once(&hole) {
            Some((before, after)) => {
                bytes.extend_from_slice(before.as_bytes());
                bytes.extend_from_slice(&odd);
                bytes.extend_from_slice(after.as_bytes());
            }
            None => bytes.extend_from_slice(&odd),
        }
        bytes.extend_from_slice(trailing);
        if let Some(i) = cut {
            bytes.truncate(i.index(bytes.len() + 1));
        }
        check(&parse(&bytes, KEY, &drop_path()))?;
    }

    /// Drop keys: any text is a drop, not one, or refused with a bounded reason.
    #[test]
    fn drop_keys_never_panic_and_refusals_are_bounded(
        key in prop_oneof![
            ".{0,80}",
            "(campaigns|other)/[0-9-]{0,12}/[A-Za-z0-9_ é./-]{0,80}/manifest\\.json",
            (1usize..5000).prop_map(|n| format!("campaigns/2026-11-24/{}/manifest.json", "x".repeat(n))),
            (1usize..5000).prop_map(|n| format!("campaigns/{}/c/manifest.json", "9".repeat(n))),
        ],
    ) {
        match DropPath::parse(&key) {
            Ok(Some(p)) => {
                prop_assert!(key.starts_with(&p.prefix));
                prop_assert!(key.ends_with("manifest.json"));
            }
            Ok(None) => {}
            Err(e) => {
                prop_assert!(e.field.len() <= FIELD_MAX);
                prop_assert!(e.reason.len() <= REASON_MAX, "{} bytes", e.reason.len());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    /// A rejection's text fits one reason ([`MAX_REASON`]) beside the file name (found by this
    /// property: three problems of 96 + 160 bytes once made it about 800 bytes; now two of
    /// 64 + 160 are shown, and the count of the rest).
    #[test]
    fn rejections_fit_one_reason(changes in vec(change(), 1..6)) {
        let mut doc = good();
        for c in &changes {
            apply(&mut doc, c);
        }
        let text = serde_json::to_vec(&doc).unwrap();
        check_within(&parse(&text, KEY, &drop_path()), MAX_REASON)?;
    }
}

#[test]
fn the_base_manifest_is_good() {
    let text = serde_json::to_vec(&good()).unwrap();
    let m = parse(&text, KEY, &drop_path()).unwrap();
    assert_eq!(m.variants.len(), 2);
}
