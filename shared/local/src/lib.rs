//! Embedded adapters for local mode: the whole system on one machine with no AWS.
//!
//! | port | AWS adapter | here |
//! |---|---|---|
//! | `CampaignStore` | DynamoDB single table | [`SqliteStore`] (SQLite file, WAL) |
//! | `AudienceSource` | S3 drop bucket | [`FolderSource`] (a folder); [`DropFolder`] (one drop's folder, read-only: `espbridge check`) |
//! | `WorkQueue` | SQS | [`LocalQueue`] (in-process channel, with SQS's redelivery) |
//! | `Scheduler` | EventBridge Scheduler | [`LocalScheduler`] (polled with the clock's time) |
//! | `AccountLimits` | DynamoDB items | `espbridge_esp_kit::MemoryLimits` (memory, shared by the process's workers) |
//! | SQS consumers (Lambda) | event source mapping, reserved concurrency | [`worker::run_workers`] |
//! | S3 event on `manifest.json` | S3 notification | [`DropWatcher`] (folder scan) |
//!
//! Each keeps the semantics the domain relies on (conditional writes, idempotent drop records,
//! pinned object versions, self-deleting schedules, redelivery of interrupted steps), so local
//! runs exercise the same paths as production.
//!
//! The queue in particular behaves as SQS does, because the steps are written for it: a step
//! interrupted by a retryable error (an ESP's 503, a busy store) returns the error and counts
//! on its message coming back. Locally the message comes back after a back-off (the visibility
//! timeout) with its receive count up, drops from the folder watcher included, and the last
//! allowed receive ([`MAX_RECEIVES`](espbridge_core::ports::queue::MAX_RECEIVES), the deployed
//! queues' `maxReceiveCount`) runs as the final attempt, so the campaign ends resumed or failed
//! with its reason, never stuck `uploading` (see [`queue`]).

pub mod drop_folder;
pub mod queue;
pub mod scheduler;
pub mod source;
pub mod store;
pub mod watch;
pub mod worker;

pub use drop_folder::DropFolder;
pub use queue::{Delivery, Inbox, LocalQueue, Message, Redelivery};
pub use scheduler::LocalScheduler;
pub use source::{FolderSource, KeyError};
pub use store::{OpenError, SqliteStore};
pub use watch::{DropWatcher, WatchError};
pub use worker::Consumer;
