//! Every recorded Emarsys payload in `fixtures/` (this crate's recorded payloads) parses with the wire types,
//! with the values the documents show.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_emarsys::wire::{self, Envelope};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    assert!(
        d.is_dir(),
        "Emarsys fixtures missing: expected {} (the shared/ folder beside the repository)",
        d.display()
    );
    d
}

fn read(name: &str) -> Vec<u8> {
    let p = dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

fn envelope(name: &str) -> Envelope {
    serde_json::from_slice(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn data<T: DeserializeOwned>(name: &str) -> T {
    let env = envelope(name);
    assert_eq!(env.reply_code, 0, "{name}");
    assert_eq!(env.reply_text, "OK", "{name}");
    serde_json::from_value(env.data).unwrap_or_else(|e| panic!("{name} data: {e}"))
}

fn body<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_slice(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Parses one fixture and checks its values; returns false for a file no test knows.
fn check(name: &str) -> bool {
    match name {
        "contactlist_add.request.json" => {
            let r: wire::AddContacts = body(name);
            assert_eq!(r.key_id, "3");
            assert_eq!(r.external_ids.len(), 3);
            assert_eq!(r.external_ids[2], "loki@example.com");
        }
        "contactlist_add.response.json" => {
            let r: wire::ContactsAdded = data(name);
            assert_eq!(r.inserted_contacts, 2);
            let e = &r.errors.0["loki@example.com"];
            assert!(e["2008"].starts_with("No contact found"));
            assert_eq!(r.errors.0.len(), 1);
        }
        "contactlist_create.request.json" => {
            let r: wire::CreateContactList = body(name);
            assert_eq!(r.name, "asgard_protectors");
            assert_eq!(r.description.as_deref(), Some("those who fight for Asgard"));
            assert_eq!((r.key_id.as_str(), r.external_ids.len()), ("3", 3));
        }
        "contactlist_create.response_no_errors.json" => {
            let r: wire::ContactListCreated = data(name);
            assert_eq!(r.id, "123");
            assert!(r.errors.0.is_empty());
        }
        "contactlist_create.response_with_errors.json" => {
            let r: wire::ContactListCreated = data(name);
            assert_eq!(r.id, "123");
            assert!(r.errors.0["loki@example.com"].contains_key("2008"));
        }
        "contactlist_list.response.json" => {
            let r: Vec<wire::ContactList> = data(name);
            let got: Vec<_> = r.iter().map(|l| (l.id.as_str(), l.name.as_str())).collect();
            assert_eq!(
                got,
                [("123", "asgard_protectors"), ("124", "asgard_enemies")]
            );
        }
        "email_copy.error_6023.response.json" => {
            let e = envelope(name);
            assert_eq!(e.reply_code, 6023);
            assert_eq!(e.reply_text, "Campaign name already taken");
            assert_eq!(e.data, serde_json::json!(""));
        }
        "email_copy.request_v2spec.json" => {
            let r: wire::CopyEmail = body(name);
            assert_eq!(r.name, "test");
        }
        "email_copy.response.json" => {
            let r: wire::EmailCopied = data(name);
            assert_eq!(r.campaign_id, "123456");
        }
        "email_create.request.json" => {
            let r: wire::EmailCreateRequest = body(name);
            assert_eq!(r.name, "be_afraid_email");
            assert_eq!(r.filter, Some(wire::WireId("222222222".into())));
            assert_eq!(r.email_category, Some(wire::WireId("111111111".into())));
        }
        "email_create.response.json" | "email_responses.response.json" => {
            let r: wire::CreatedId = data(name);
            let want = if name.starts_with("email_create") {
                "2140"
            } else {
                "20"
            };
            assert_eq!(r.id, want);
        }
        "email_get.response.json" => {
            let env = envelope(name);
            let one = wire::one_or_first(env.data).expect("one e-mail");
            let e: wire::Email = serde_json::from_value(one).unwrap();
            assert_eq!((e.id.as_str(), e.name.as_str()), ("12345", "funny_email"));
            assert_eq!(
                (e.status, e.api_status, e.api_error),
                (Some(3), Some(2), Some(0))
            );
            assert_eq!(e.contactlist, None);
            assert_eq!(e.filter.as_deref(), Some("333333333"));
            assert_eq!(e.source.as_deref(), Some("api"));
            assert_eq!(e.subject.as_deref(), Some("I'm alive"));
            assert!(!e.is_deleted());
        }
        "email_getlaunchesofemail.request.json" => {
            let r: wire::LaunchesOfEmail = body(name);
            assert_eq!(r.email_id, wire::WireId("1234".into()));
            // Sent in the spelling of the parameter table.
            assert_eq!(
                serde_json::to_value(&r).unwrap(),
                serde_json::json!({"emailId": 1234})
            );
        }
        "email_getlaunchesofemail.response.json" => {
            let r: Vec<wire::EmailLaunch> = data(name);
            assert_eq!(r.len(), 2);
            assert_eq!(
                (r[0].id.as_str(), r[0].done.as_deref()),
                ("7555", Some("y"))
            );
            assert_eq!(r[1].launch_date.as_deref(), Some("2012-05-05"));
        }
        "email_launch.request.json" | "email_launch.request_v2spec.json" => {
            let r: wire::Launch = body(name);
            assert_eq!(r.schedule.as_deref(), Some("2011-08-12 08:35"));
            assert_eq!(r.timezone.as_deref(), Some("America/New_York"));
            if name.contains("v2spec") {
                assert_eq!(r.features, Some(vec!["sto".to_owned()]));
                assert_eq!(r.email_id, Some(wire::WireId("1234567890".into())));
                // The stray emailID is never sent back.
                assert!(serde_json::to_value(&r).unwrap().get("emailID").is_none());
            }
        }
        "email_launch.response.json" => {
            let e = envelope(name);
            assert_eq!((e.reply_code, e.data), (0, serde_json::json!("")));
        }
        "email_list.response.json" => {
            let r: Vec<wire::Email> = data(name);
            assert_eq!(r.len(), 2);
            assert_eq!(
                (r[0].id.as_str(), r[0].source.as_deref()),
                ("12345", Some("userlist"))
            );
            assert!(!r[0].is_deleted());
            assert!(r[1].is_deleted());
            assert_eq!(r[1].status, Some(3));
            assert_eq!(r[0].created.as_deref(), Some("2011-08-12 18:12:23"));
            // The current field set: `filter` (a segment), no `segment`.
            assert_eq!(r[0].segment_id(), Some("222222222"));
            assert_eq!(r[0].segment, None);
            assert_eq!(r[0].content_type(), None);
        }
        "email_list.legacy_fields.response.json" => {
            // The older field set (E4): `segment` for `filter`; no source, content_type, deleted.
            let raw = envelope(name);
            for item in raw.data.as_array().unwrap() {
                let keys: BTreeSet<&str> = item
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert!(keys.contains("segment"));
                for absent in ["filter", "source", "content_type", "deleted"] {
                    assert!(!keys.contains(absent), "{absent}");
                }
            }
            let r: Vec<wire::Email> = data(name);
            assert_eq!(r.len(), 2);
            assert_eq!((r[0].id.as_str(), r[0].name.as_str()), ("12345", "Test1"));
            assert_eq!(r[0].segment_id(), Some("22222"));
            assert_eq!(r[0].filter, None);
            assert_eq!((r[0].source(), r[0].content_type()), (None, None));
            assert!(!r[0].is_deleted() && !r[1].is_deleted());
            assert_eq!((r[1].status, r[1].contactlist.as_deref()), (Some(3), None));
            assert_eq!(r[1].created.as_deref(), Some("2011-08-12 18:20:23"));
        }
        "email_list.legacy_fields.in_design.derived.json" => {
            let r: Vec<wire::Email> = data(name);
            let got: Vec<_> = r
                .iter()
                .map(|e| (e.name.as_str(), e.segment_id(), e.contactlist.as_deref()))
                .collect();
            assert_eq!(
                got,
                [
                    ("optimove_spring_sale", None, None),
                    ("optimove_weekly_digest", None, Some("176523015")),
                    ("optimove_cms_welcome", Some("22222"), None),
                ]
            );
            assert!(
                r.iter()
                    .all(|e| e.status == Some(1) && e.source().is_none())
            );
            assert_eq!(r[0].created.as_deref(), Some("2026-11-26 11:31:21"));
        }
        "email_get.legacy_fields.derived.json" => {
            let env = envelope(name);
            assert!(
                env.data.is_array(),
                "one-element array, as the legacy docs show"
            );
            let e: wire::Email =
                serde_json::from_value(wire::one_or_first(env.data).unwrap()).unwrap();
            assert_eq!((e.id.as_str(), e.source()), ("81001", Some("api")));
            assert_eq!((e.segment_id(), e.contactlist.as_deref()), (None, None));
            assert_eq!(e.content_type(), None);
        }
        "email_patch.request.json" => {
            let r: wire::PatchEmail = body(name);
            assert_eq!(r.email_id, Some(wire::WireId("100018233".into())));
            assert_eq!(r.name.as_deref(), Some("asgardian_email"));
            assert_eq!(r.contactlist, None);
        }
        "email_patch.response.json" => {
            let e: wire::Email = data(name);
            assert_eq!(e.contactlist.as_deref(), Some("176523015"));
            assert_eq!(
                (e.status, e.api_status, e.api_error),
                (Some(1), Some(0), Some(0))
            );
        }
        "email_preview.request.json" => {
            let r: wire::PreviewRequest = body(name);
            assert_eq!(r.version, "html");
        }
        "email_preview.response.json" => {
            // The documented placeholder: an object, so the adapter falls back to html_source.
            let e = envelope(name);
            assert!(e.data.is_object());
        }
        "email_responses.request_v2spec.json" => {
            let r: wire::ResponsesQuery = body(name);
            assert_eq!(r.kind, "clicked");
            assert_eq!(r.campaign_id, wire::WireId("5243".into()));
            assert_eq!(r.start_date, "2017-12-01 00:00");
        }
        "email_responses_result.pending_202.response.json" => {
            let e = envelope(name);
            assert_eq!(e.reply_code, 202);
            assert_eq!(e.data, serde_json::json!(""));
        }
        "email_responses_result.response.json" => {
            let r: wire::ResponsesResult = data(name);
            assert_eq!(r.contact_ids, ["749678081", "176415518"]);
        }
        "email_responsesummary.response.json" => {
            let r: wire::ResponseSummary = data(name);
            assert_eq!((r.sent, r.planned, r.opened), (3, 3, 2));
            assert_eq!(
                (r.bounces(), r.delivered(), r.unique_clicks, r.complained),
                (0, 3, 0, 0)
            );
        }
        "email_templates.response.json" => {
            let r: Vec<wire::EmailTemplate> = data(name);
            assert_eq!(r.len(), 4);
            assert_eq!(r[0].id, "1111111111");
            assert_eq!(r[3].name, "Re-engagement Campaign - French");
        }
        "email_updatesource.request.json" => {
            let r: wire::UpdateSource = body(name);
            assert_eq!(r.filter_id, wire::WireId("1121".into()));
            assert_eq!(r.contactlist_id, wire::WireId("0".into()));
        }
        "email_updatesource.request_v2spec.json" => {
            let r: wire::UpdateSource = body(name);
            assert_eq!(r.contactlist_id, wire::WireId("12345678".into()));
            assert_eq!(
                r.exclude_contactlist_id,
                Some(wire::WireId("87654321".into()))
            );
            assert_eq!(r.email_id, Some(wire::WireId("12345".into())));
        }
        "email_updatesource.response.json" => {
            let e = envelope(name);
            assert_eq!(e.data, serde_json::json!(true));
        }
        "error_401_unauthorized.response.json" => {
            let e = envelope(name);
            assert_eq!((e.reply_code, e.reply_text.as_str()), (1, "Unauthorized"));
        }
        "field_list.response.json" => {
            let r: Vec<wire::Field> = data(name);
            assert_eq!(r.len(), 5);
            assert_eq!(
                (r[3].id.as_str(), r[3].name.as_str()),
                ("123", "CustomField18")
            );
            assert_eq!(r[0].application_type.as_deref(), Some("interests"));
        }
        _ => return false,
    }
    true
}

#[test]
fn every_fixture_parses_with_expected_values() {
    let mut unknown = BTreeSet::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir()).expect("fixture folder is readable") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        if check(&name) {
            checked += 1;
        } else {
            unknown.insert(name);
        }
    }
    assert!(
        unknown.is_empty(),
        "fixtures without a parser test: {unknown:?}"
    );
    assert_eq!(
        checked, 36,
        "expected all 36 payloads (33 recorded, 3 derived)"
    );
}

#[test]
fn lenient_numbers_accept_both_spellings() {
    let a: wire::ResponseSummary =
        serde_json::from_str(r#"{"sent":"10","soft_bounces":1,"hard_bounces":"","opened":null}"#)
            .unwrap();
    assert_eq!(
        (a.sent, a.soft_bounces, a.hard_bounces, a.opened),
        (10, 1, 0, 0)
    );
    assert!(serde_json::from_str::<wire::ResponseSummary>(r#"{"sent":"ten"}"#).is_err());
    let e: Envelope = serde_json::from_str(r#"{"replyCode":"6003","replyText":"x"}"#).unwrap();
    assert_eq!((e.reply_code, e.data), (6003, serde_json::Value::Null));
    let ids: Vec<wire::CreatedId> = serde_json::from_str(r#"[{"id":7},{"id":"8"}]"#).unwrap();
    assert_eq!((ids[0].id.as_str(), ids[1].id.as_str()), ("7", "8"));
    // Ids that are numeric go out as numbers.
    assert_eq!(
        serde_json::to_string(&wire::WireId("42".into())).unwrap(),
        "42"
    );
    assert_eq!(
        serde_json::to_string(&wire::WireId("a1".into())).unwrap(),
        "\"a1\""
    );
}

#[test]
fn upload_errors_accept_array_object_or_absent() {
    for (json, n) in [
        (r#"{"inserted_contacts":"3","errors":[]}"#, 0),
        (r#"{"inserted_contacts":3,"errors":{}}"#, 0),
        (r#"{"inserted_contacts":3}"#, 0),
        (r#"{"inserted_contacts":3,"errors":{"x":{"2008":"no"}}}"#, 1),
    ] {
        let r: wire::ContactsAdded = serde_json::from_str(json).unwrap();
        assert_eq!((r.inserted_contacts, r.errors.0.len()), (3, n), "{json}");
    }
    assert!(serde_json::from_str::<wire::ContactsAdded>(r#"{"errors":"bad"}"#).is_err());
}
