//! The use cases, each written against the ports it needs and no others. Each Lambda function
//! builds exactly one of them (upload-audience: [`UploadService`], schedule-send:
//! [`ScheduleService`], poll-metrics: [`PollService`], http-api: [`ApiService`]); the local
//! mode and the tests hold every port at once in [`Services`], which hands out each use case.
//!
//! | use case | module | ports |
//! |---|---|---|
//! | intake of a drop, validation, upload, continuation | [`intake`], [`validate`], [`upload`] | store, source, queue, ESPs, clock |
//! | conversions attribution | [`conversions`] | store, source, clock |
//! | schedule the send | [`schedule`] | store, ESPs, scheduler, clock |
//! | daily metrics, completion, clean-up | [`poll`] | store, ESPs, scheduler, clock |
//! | templates, previews, headers, campaigns, reports | [`api`], [`report`] | store, ESPs |

pub mod accounts;
pub mod api;
pub mod common;
pub mod conversions;
mod drop_files;
pub mod intake;
pub mod poll;
pub mod report;
pub mod schedule;
pub mod upload;
pub mod validate;

pub use accounts::{AccountChoiceError, EspRegistry, LateSend, SendPolicy};
pub use api::{ApiError, ApiService};
pub use common::{Deadline, ServiceError, chain};
pub use conversions::ConversionsService;
pub use poll::PollService;
pub use schedule::ScheduleService;
pub use upload::{UploadObserver, UploadService, UploadSettings};

use crate::clock::Clock;
use crate::ports::{AudienceSource, CampaignStore, Scheduler, WorkQueue};
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

    pub fn api(&self) -> ApiService {
        ApiService {
            store: Arc::clone(&self.store),
            esps: self.esps.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
