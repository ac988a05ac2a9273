//! End-to-end tests: the real Lambda handlers against moto and the Emarsys simulator.

mod common;
mod happy_path;
mod redelivery;
