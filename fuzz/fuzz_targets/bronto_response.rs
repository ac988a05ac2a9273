//! Bronto's SOAP answer reader (`wire::parse_response`) as an answer to every operation the
//! adapter calls, then every reader of the response element. Seeds: the recorded answers
//! (`cargo +nightly fuzz run bronto_response fuzz/corpus/bronto_response shared/bronto/fixtures`).

#![no_main]

#[path = "common.rs"]
mod common;

use espbridge_bronto::wire::{self, ReadObject, Response};
use libfuzzer_sys::fuzz_target;

const OPS: &[&str] = &[
    "login",
    "addToList",
    "readLists",
    "readDeliveries",
    "readMessages",
    "readMessageFolders",
    "addLists",
    "deleteLists",
    "addDeliveries",
];

fn one(data: &[u8]) {
    for op in OPS {
        match wire::parse_response(data, op) {
            Ok(Response::Ok(r)) => {
                let _ = wire::returns(&r);
                let _ = wire::session_id(&r);
                for (i, item) in wire::write_results(&r).iter().enumerate() {
                    assert_eq!(item.index, i);
                }
                let _ = wire::MessageFolder::list(&r);
                for m in wire::Message::list(&r) {
                    let _ = (m.content_of("html"), m.subject());
                }
                let _ = wire::MailList::list(&r);
                for d in wire::Delivery::list(&r) {
                    let _ = d.selects_list("1");
                }
            }
            Ok(Response::Fault(f)) => {
                let _ = f.code;
            }
            Err(e) => common::bounded("bronto", &e.to_string(), 0),
        }
    }
}

fuzz_target!(|data: &[u8]| common::on_worker_stack(data, one));
