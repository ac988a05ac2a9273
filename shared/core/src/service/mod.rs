//! The use cases, each written against the ports it needs and no others. Each Lambda function
//! builds exactly one of them (upload-audience: [`UploadService`], schedule-send:
//! [`ScheduleService`], poll-metrics: [`PollService`], http-api: [`ApiService`]); the local
//! mode and the tests hold every port at once in [`Services`], which hands out each use case.
//!
//! | use case | module | ports |
//! |---|---|---|
//! | intake of a drop, validation, upload, continuation | [`intake`], [`validate`], [`upload`] | store, source, queue, ESPs, clock, alerts, metrics |
//! | conversions attribution | [`conversions`] | store, source, clock |
//! | schedule the send | [`schedule`] | store, ESPs, scheduler, clock, alerts, metrics |
//! | daily metrics, completion, clean-up | [`poll`] | store, ESPs, scheduler, clock |
//! | templates, previews, headers, campaigns, reports | [`api`], [`report`] | store, ESPs |
//! | the campaign listing, the night report | [`night`] | store |
//! | check a drop before dropping it (writes nothing) | [`check`] | source, ESPs, clock |
//! | cancel a campaign | [`cancel`] | store, ESPs, scheduler, clock |
//! | retry a failed campaign | [`retry`] | store, queue, ESPs, clock |
//! | find stuck campaigns, resume or alert; rebuild after a restart | [`sweep`] | store, queue, scheduler, alerts, metrics, clock, send policies |

pub mod accounts;
pub mod api;
pub mod cancel;
pub mod check;
pub mod common;
pub mod conversions;
mod drop_files;
pub mod intake;
pub mod night;
pub mod poll;
pub mod report;
pub mod retry;
mod rounds;
pub mod schedule;
pub mod sweep;
pub mod upload;
pub mod validate;

pub use accounts::{AccountChoiceError, EspRegistry, LateSend, SendPolicy};
pub use api::{ApiError, ApiService};
pub use cancel::{CancelService, Cancelled, ControlError};
pub use check::{CheckOptions, CheckReport, CheckService};
pub use common::{Deadline, ServiceError, chain};
pub use conversions::ConversionsService;
pub use poll::PollService;
pub use retry::{Retried, RetryService};
pub use schedule::ScheduleService;
pub use sweep::{SweepMode, SweepReport, SweepService};
pub use upload::{UploadObserver, UploadService, UploadSettings};

use crate::clock::Clock;
use crate::ports::{Alerts, AudienceSource, CampaignStore, Metrics, Scheduler, WorkQueue};
use std::sync::Arc;

/// Every port of one deployment, for the local mode and the tests, which run every use case in
/// one process. (A Lambda function builds only its own use case, from only its own ports.)
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn CampaignStore>,
    pub source: Arc<dyn AudienceSource>,
    pub queue: Arc<dyn WorkQueue>,
    pub scheduler: Arc<dyn Scheduler>,
    pub esps: EspRegistry,
    pub clock: Arc<dyn Clock>,
    /// Where campaign failures, partly booked sends and stuck campaigns are reported.
    pub alerts: Arc<dyn Alerts>,
    pub metrics: Arc<dyn Metrics>,
    pub upload_settings: UploadSettings,
}

impl Services {
    pub fn upload(&self) -> UploadService {
        UploadService {
            store: Arc::clone(&self.store),
            source: Arc::clone(&self.source),
            queue: Arc::clone(&self.queue),
            esps: self.esps.clone(),
            clock: Arc::clone(&self.clock),
            alerts: Arc::clone(&self.alerts),
            metrics: Arc::clone(&self.metrics),
            settings: self.upload_settings.clone(),
        }
    }

    pub fn conversions(&self) -> ConversionsService {
        self.upload().conversions()
    }

    pub fn schedule(&self) -> ScheduleService {
        ScheduleService {
            store: Arc::clone(&self.store),
            esps: self.esps.clone(),
            scheduler: Arc::clone(&self.scheduler),
            clock: Arc::clone(&self.clock),
            alerts: Arc::clone(&self.alerts),
            metrics: Arc::clone(&self.metrics),
        }
    }

    pub fn poll(&self) -> PollService {
        PollService {
            store: Arc::clone(&self.store),
            esps: self.esps.clone(),
            scheduler: Arc::clone(&self.scheduler),
            clock: Arc::clone(&self.clock),
        }
    }

    pub fn sweep(&self) -> SweepService {
        SweepService {
            store: Arc::clone(&self.store),
            queue: Arc::clone(&self.queue),
            scheduler: Arc::clone(&self.scheduler),
            alerts: Arc::clone(&self.alerts),
            metrics: Arc::clone(&self.metrics),
            policies: self.esps.clone(),
            clock: Arc::clone(&self.clock),
        }
    }

    pub fn check(&self) -> CheckService {
        CheckService {
            source: Arc::clone(&self.source),
            esps: self.esps.clone(),
            clock: Arc::clone(&self.clock),
            settings: self.upload_settings.clone(),
        }
    }

    pub fn api(&self) -> ApiService {
        ApiService {
            store: Arc::clone(&self.store),
            esps: self.esps.clone(),
            queue: Arc::clone(&self.queue),
            scheduler: Arc::clone(&self.scheduler),
            clock: Arc::clone(&self.clock),
        }
    }

    pub fn cancel(&self) -> CancelService {
        self.api().cancel_service()
    }

    pub fn retry(&self) -> RetryService {
        self.api().retry_service()
    }
}

#[cfg(test)]
mod tests;
