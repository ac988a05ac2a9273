//! What every ESP simulator is built from.
//!
//! Each ESP's simulator lives beside its adapter, in `shared/<esp>/src/sim` (feature
//! `simulator` of the adapter crate), so one folder holds all of an ESP. Each is a real HTTP/1.1
//! server on `127.0.0.1` (any free port) that speaks its ESP's wire format — authentication,
//! envelopes, error codes, batch and rate limits — and keeps what it was sent so tests can assert
//! on it. This crate holds the parts they share: the loopback server ([`http`]), [`Fault`]
//! injection (5xx, throttling, held responses, dropped connections), the [`RecordedRequest`]
//! log, and the [`Traffic`] (simulated latency, requests in flight, limit refusals).
//!
//! ```ignore
//! use espbridge_emarsys::sim::{EmarsysSim, EmarsysSimConfig};
//! use espbridge_sim::{Fault, FaultKind};
//! let sim = EmarsysSim::start(EmarsysSimConfig::default(), clock).await?;
//! sim.inject(Fault { kind: FaultKind::Status(503), path_contains: Some("/launch".into()), times: 1 });
//! println!("point the client at {}", sim.base_url());
//! ```

pub mod faults;
pub mod http;
pub mod record;
pub mod traffic;

pub use faults::{Fault, FaultKind};
pub use record::RecordedRequest;
pub use traffic::{Traffic, in_share, paced};

// The simulators build their answers with these; re-exported so each adapter's `simulator`
// feature needs no HTTP crates of its own.
pub use bytes;
pub use http_body_util;
pub use hyper;
