//! Embedded adapters for local mode: the whole system on one machine with no AWS.
//!
//! | port | AWS adapter | here |
//! |---|---|---|
//! | `CampaignStore` | DynamoDB single table | [`SqliteStore`] (SQLite file, WAL) |
//! | `AudienceSource` | S3 drop bucket | [`FolderSource`] (a folder) |
//! | `WorkQueue` | SQS | [`LocalQueue`] (in-process channel) |
//! | `Scheduler` | EventBridge Scheduler | [`LocalScheduler`] (polled with the clock's time) |
//! | `AccountLimits` | DynamoDB items | `espbridge_esp_kit::MemoryLimits` (memory, shared by the process's workers) |
//! | SQS consumers (Lambda) | event source mapping, reserved concurrency | [`worker::run_workers`] |
//! | S3 event on `manifest.json` | S3 notification | [`DropWatcher`] (folder scan) |
//!
//! Each keeps the semantics the domain relies on (conditional writes, idempotent drop records,
//! pinned object versions, self-deleting schedules), so local runs exercise the same paths as
//! production.

pub mod queue;
pub mod scheduler;
pub mod source;
pub mod store;
pub mod watch;
pub mod worker;

pub use queue::LocalQueue;
pub use scheduler::LocalScheduler;
pub use source::{FolderSource, KeyError};
pub use store::{OpenError, SqliteStore};
pub use watch::{DropWatcher, WatchError};
