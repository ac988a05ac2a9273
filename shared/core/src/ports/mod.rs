//! Ports: the traits the domain talks through. Each has one adapter per ESP or service
//! (AWS in `espbridge-aws`, embedded in `espbridge-local`, ESPs in their own crates).

pub mod alerts;
pub mod backend;
pub mod esp;
pub mod limits;
pub mod listing;
pub mod metered_limits;
pub mod metrics;
pub mod queue;
pub mod scheduler;
pub mod source;
pub mod store;

pub use alerts::{Alert, AlertKind, Alerts, LogAlerts};
pub use backend::{BackendError, BoxError};
pub use esp::{
    AudienceBatch, AudienceRequest, BatchJob, BatchOutcome, CannotCancel, Contact, Esp, EspError,
    EspIds, FinishedAudience, MetricCounts, Preview, RowError, SendRequest, SenderHeaders,
    Template,
};
pub use limits::{AccountLimits, LimitError};
pub use listing::{CampaignFilter, CampaignPage, Cursor, CursorError, Position, RunDate};
pub use metered_limits::MeteredLimits;
pub use metrics::{LogMetrics, Measurement, Metrics, Unit};
pub use queue::{QueueError, WorkItem, WorkQueue};
pub use scheduler::{PollSchedule, Scheduler, SchedulerError};
pub use source::{AudienceSource, ObjectRef, SourceError};
pub use store::{CampaignStore, Created, StoreError};
