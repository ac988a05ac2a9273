//! The Emarsys answer reader (`classify`, through the hidden `fuzzing` entry point) on any body
//! under the statuses it tells apart, then every wire type on the data it returns. Seeds: the
//! recorded answers (`cargo +nightly fuzz run emarsys_response fuzz/corpus/emarsys_response
//! shared/emarsys/fixtures`).

#![no_main]

#[path = "common.rs"]
mod common;

use espbridge_emarsys::{fuzzing::classify_answer, wire};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn read<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

fn read_data(data: Value) {
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
        }
        let _ = read::<wire::ResponsesResult>(v);
        let _ = read::<wire::IdErrors>(v);
    }
}

fuzz_target!(|data: &[u8]| {
    for status in [200, 202, 400, 401, 404, 409, 429, 500, 501, 503] {
        match classify_answer(status, data) {
            Ok(Some(v)) if status == 200 => read_data(v),
            Ok(_) => {}
            Err(text) => common::bounded("emarsys", &text, 0),
        }
    }
});
