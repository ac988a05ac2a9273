//! End-to-end tests: the real Lambda handlers against moto and the Emarsys and SmartFocus simulators.

mod common;
mod continuation;
mod happy_path;
mod kill_midway;
mod outage;
mod redelivery;
mod refusals;
mod silverpop;
mod smartfocus;
