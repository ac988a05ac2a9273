//! Audience files: scanning, row validation, and the streaming reader over a source.

pub mod assign;
pub mod dedupe;
pub mod read;
pub mod rows;
pub mod scan;
