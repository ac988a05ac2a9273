//! Integration tests against an AWS emulator (moto server).
//!
//! Run: `scripts/aws-emu.sh start && eval "$(scripts/aws-emu.sh env)" && cargo test -p espbridge-aws`.
//! Without `AWS_ENDPOINT_URL` each test prints "skipped: no emulator" and passes, unless
//! `ESPBRIDGE_REQUIRE_EMULATOR=1`, which makes a missing emulator a failure. Every test uses its
//! own table, bucket, queue or group, so tests run in parallel on one server that is never reset.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod alerts;
mod common;
mod limits;
mod queue;
mod scheduler;
mod secrets;
mod source;
mod store;
