//! Ports: the traits the domain talks through. Each has one adapter per ESP or service
//! (AWS in `espbridge-aws`, embedded in `espbridge-local`, ESPs in their own crates).

pub mod backend;
pub mod esp;
pub mod queue;
pub mod scheduler;
pub mod source;
pub mod store;

pub use backend::{BackendError, BoxError};
pub use esp::{
    AudienceBatch, BatchOutcome, Contact, Esp, EspError, EspIds, MetricCounts, Preview, RowError,
    SendRequest, SenderHeaders, Template,
};
pub use queue::{QueueError, WorkItem, WorkQueue};
pub use scheduler::{PollSchedule, Scheduler, SchedulerError};
pub use source::{AudienceSource, ObjectRef, SourceError};
pub use store::{CampaignStore, Created, StoreError};
