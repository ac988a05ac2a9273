//! End-to-end tests: the real Lambda handlers against moto and the Emarsys, SmartFocus,
//! Silverpop and Bronto simulators.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod ab;
mod bronto;
mod common;
mod continuation;
mod happy_path;
mod kill_midway;
mod night;
mod outage;
mod redelivery;
mod refusals;
mod silverpop;
mod smartfocus;
mod sweep;
