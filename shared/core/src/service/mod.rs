//! The use cases: what each Lambda function (and the local runner) does, written against the
//! ports only. Handlers translate their event into one of these calls and the outcome back.

pub mod api;
pub mod context;
pub mod conversions;
pub mod poll;
pub mod report;
pub mod schedule;
pub mod upload;

pub use context::{Deadline, EspRegistry, ServiceError, Services, UploadObserver, UploadSettings};

#[cfg(test)]
mod tests;
