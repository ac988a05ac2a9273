//! The manifest parser and the drop-key parser on any bytes: no panic, bounded errors.

#![no_main]

#[path = "common.rs"]
mod common;

use espbridge_core::manifest::{DropPath, parse};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "campaigns/2026-11-24/spring-sale/manifest.json";

fuzz_target!(|data: &[u8]| {
    let drop = DropPath::parse(KEY)
        .ok()
        .flatten()
        .expect("a valid drop key");
    if let Err(e) = parse(data, KEY, &drop) {
        assert!(!e.errors.is_empty());
        for f in &e.errors {
            assert!(f.field.len() <= 96 && f.reason.len() <= 160, "{f}");
        }
        common::bounded("manifest", &e.to_string(), KEY.len());
    }
    let key = String::from_utf8_lossy(data);
    if let Err(e) = DropPath::parse(&key) {
        assert!(e.field.len() <= 96 && e.reason.len() <= 160, "{e}");
    }
});
