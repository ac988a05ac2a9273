//! Silverpop's answer reader (`wire::read_answer`), then every reader of a `RESULT`. Seeds: the
//! recorded answers (`cargo +nightly fuzz run silverpop_response fuzz/corpus/silverpop_response
//! shared/silverpop/fixtures`).

#![no_main]

#[path = "common.rs"]
mod common;

use espbridge_silverpop::wire::{self, Answer};
use libfuzzer_sys::fuzz_target;

fn one(data: &[u8]) {
    match wire::read_answer(data) {
        Ok(Answer::Success(r)) => {
            let _ = wire::LoginResult::from_result(&r);
            for t in wire::MailingTemplate::list(&r) {
                let _ = t.is_shared();
            }
            let _ = wire::PreviewResult::from_result(&r);
            for f in wire::RowFailure::list(&r) {
                let _ = f.column("customer_id");
            }
            let _ = wire::ListRow::list(&r);
            let _ = wire::JobStatus::from_result(&r);
            let _ = wire::list_size(&r);
            let _ = wire::SentMailing::list(&r);
            let _ = wire::AggregateTracking::from_result(&r);
        }
        Ok(Answer::Failed(f)) => {
            let _ = f.is_session_lost();
        }
        Err(e) => common::bounded("silverpop", &e.to_string(), 0),
    }
}

fuzz_target!(|data: &[u8]| common::on_worker_stack(data, one));
