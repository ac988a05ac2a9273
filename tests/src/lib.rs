//! Harness for espbridge's end-to-end tests: the real Lambda handlers, wired by
//! `espbridge_app::aws::services` onto a moto server (S3, DynamoDB, SQS, EventBridge Scheduler,
//! Secrets Manager) and the simulator of the ESP under test (its driver's default, or one the test configured), with one manual clock
//! shared by both.
//!
//! Every [`Harness`] creates its own table, bucket, queues, schedule group and secret under
//! unique names, so tests run in parallel against one moto server that is never reset.

pub mod audience;
pub mod events;
pub mod harness;

pub use audience::{AudienceFile, Bad, Drop};
pub use harness::{Harness, HarnessOptions, Received, SimFactory};
