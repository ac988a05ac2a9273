//! SmartFocus's answer reader (`wire::Answer::from_xml`), then every reader of a payload. Seeds:
//! the recorded answers (`cargo +nightly fuzz run smartfocus_response
//! fuzz/corpus/smartfocus_response shared/smartfocus/fixtures`).

#![no_main]

#[path = "common.rs"]
mod common;

use espbridge_smartfocus::wire::{self, Answer};
use libfuzzer_sys::fuzz_target;

fn one(data: &[u8]) {
    match Answer::from_xml(data) {
        Ok(Answer::Success(p)) => {
            let _ = wire::scalar(&p);
            let _ = wire::id_list(&p);
            let _ = wire::MessageInfo::from_payload(&p);
            let _ = wire::NamedObject::from_payload(&p);
            if let Some(u) = wire::UploadStatus::from_payload(&p) {
                let _ = u.state();
            }
            let _ = wire::last_uploads(&p);
            if let Some(s) = wire::Snapshot::from_payload(&p) {
                let c = s.counts();
                assert!(c.sent >= c.delivered);
            }
        }
        Ok(Answer::Failed(f)) => {
            let _ = f.description.len();
        }
        Err(e) => common::bounded("smartfocus", &e.to_string(), 0),
    }
}

fuzz_target!(|data: &[u8]| common::on_worker_stack(data, one));
