//! Loopback simulators of the ESP APIs espbridge talks to.
//!
//! Each simulator is a real HTTP/1.1 server on `127.0.0.1` (any free port) that speaks its ESP's
//! wire format — authentication, envelopes, error codes, batch and rate limits — and keeps what
//! it was sent so tests can assert on it. Tests and the local demo start one in-process, point a
//! client at [`emarsys::EmarsysSim::base_url`], and later read back its state.
//!
//! Pieces shared by every simulator live at the top level: [`Fault`] injection (5xx, throttling,
//! held responses, dropped connections) and the [`RecordedRequest`] log. The ESP-specific
//! protocols live in one module each: [`emarsys`], [`smartfocus`], [`silverpop`], [`bronto`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use espbridge_sim::emarsys::{EmarsysSim, EmarsysSimConfig};
//! use espbridge_sim::{Fault, FaultKind};
//! let clock = std::sync::Arc::new(espbridge_core::SystemClock);
//! let sim = EmarsysSim::start(EmarsysSimConfig::default(), clock).await?;
//! sim.inject(Fault { kind: FaultKind::Status(503), path_contains: Some("/launch".into()), times: 1 });
//! println!("point the client at {}", sim.base_url());
//! # Ok(()) }
//! ```

pub mod bronto;
pub mod emarsys;
pub mod faults;
mod http;
pub mod record;
pub mod silverpop;
pub mod smartfocus;

pub use faults::{Fault, FaultKind};
pub use record::RecordedRequest;
