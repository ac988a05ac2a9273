//! End-to-end tests: the real Lambda handlers against moto and the Emarsys, SmartFocus,
//! Silverpop and Bronto simulators.

mod ab;
mod bronto;
mod common;
mod continuation;
mod happy_path;
mod kill_midway;
mod outage;
mod redelivery;
mod refusals;
mod silverpop;
mod smartfocus;
