//! Retrying a campaign (`POST /campaigns/{id}/retry`, `espbridge retry`): it resumes at the
//! step that failed, from the record's checkpoints, and never repeats what is done.
//!
//! | failed step | back to | work queued | what runs |
//! |---|---|---|---|
//! | `audience` (the drop's content) | `received` | continue upload | the upload's pass, from the first line (what an earlier run put in the ESP audience is sent again: harmless, it is a set) |
//! | `upload` | `uploading` | continue upload | the upload after its checkpoint (`audience.uploaded`): an uploaded batch is never sent again |
//! | `schedule` | `audience_ready` | schedule-send | the booking of the sends without an ESP id (a booked one is never booked twice) |
//! | (`partially_scheduled`) | unchanged | schedule-send | the booking of the missing sends only |
//!
//! A failure at `manifest` (the drop was refused) is not retryable: the drop itself must change,
//! under a new campaign id. The state change is written conditionally on the version read, so two
//! retries at once queue the work once; the work is queued after the write, and if it cannot be
//! queued the campaign is put back as it was.

use super::accounts::{EspRegistry, LateSend};
use super::cancel::ControlError;
use super::common::{ServiceError, chain, record_run, run_record};
use crate::campaign::{Campaign, State};
use crate::clock::Clock;
use crate::ids::CampaignId;
use crate::ports::{CampaignStore, StoreError, WorkItem, WorkQueue};
use jiff::SignedDuration;
use serde::Serialize;
use std::sync::Arc;

/// The retry use case and its ports: the store, the work queue, the ESP accounts (the send
/// policy) and the clock.
#[derive(Clone)]
pub struct RetryService {
    pub store: Arc<dyn CampaignStore>,
    pub queue: Arc<dyn WorkQueue>,
    pub esps: EspRegistry,
    pub clock: Arc<dyn Clock>,
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retried {
    pub campaign_id: CampaignId,
    /// The state the campaign resumes from.
    pub state: State,
    /// The step that resumes: `audience`, `upload` or `schedule`.
    pub step: String,
    /// The work queued: `continue_upload` or `schedule_send`.
    pub queued: String,
}

impl RetryService {
    pub async fn retry(&self, id: &CampaignId) -> Result<Retried, ControlError> {
        let started = self.clock.now();
        let Some(c) = self.store.get(id).await? else {
            return Err(ControlError::NotFound(id.clone()));
        };
        let (to, step) = self.resume_point(&c)?;
        let item = match to {
            State::Received | State::Uploading => WorkItem::ContinueUpload {
                campaign_id: c.id.clone(),
            },
            _ => WorkItem::ScheduleSend {
                campaign_id: c.id.clone(),
            },
        };
        let before = c.clone();
        let saved = if c.state == to {
            c
        } else {
            let mut next = c;
            let now = self.clock.now();
            next.transition(to, now).map_err(ServiceError::from)?;
            next.failure = None;
            // The failed invocation is over; its claim must not hold the redelivery back.
            next.send_claim = None;
            if to == State::Received {
                // The pass starts again from the first line; the ESP audience, if the failed
                // run created one, is kept (its ids are in the record, outside `audience`).
                next.audience = Default::default();
            }
            // A batch job the failure left in the record (one the ESP ended in error, say) is
            // not waited for again: the retry imports that batch anew (harmless if the job did
            // run: the audience is a set).
            next.audience.jobs.clear();
            match self.store.save(&next).await {
                Ok(saved) => saved,
                // Another retry (or cancel) got there first: this one changes nothing.
                Err(StoreError::Conflict { .. }) => {
                    return Err(ControlError::Busy(format!(
                        "campaign {id} changed while it was being retried (another retry or a cancel); look at its state"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        };
        if let Err(e) = self.queue.enqueue(&item).await {
            self.put_back(&before, &saved).await;
            return Err(ServiceError::from(e).into());
        }
        tracing::info!(campaign_id = %id, state = %saved.state, step, "campaign retried");
        let run = run_record(
            "retry",
            started,
            self.clock.now(),
            "done",
            None,
            Some(format!("resumes at {step} from {}", saved.state)),
        );
        record_run(self.store.as_ref(), id, run).await;
        Ok(Retried {
            campaign_id: saved.id,
            state: saved.state,
            step: step.to_owned(),
            queued: match item {
                WorkItem::ContinueUpload { .. } => "continue_upload",
                WorkItem::ScheduleSend { .. } => "schedule_send",
            }
            .to_owned(),
        })
    }

    /// The state the campaign resumes from and the step that runs, or why it cannot.
    fn resume_point(&self, c: &Campaign) -> Result<(State, &'static str), ControlError> {
        let refused = |reason: String| ControlError::Refused {
            code: "not_retryable",
            reason: crate::text::reason(&reason),
        };
        match c.state {
            State::Failed => {}
            State::PartiallyScheduled => return Ok((State::PartiallyScheduled, "schedule")),
            s => {
                return Err(refused(format!(
                    "campaign {} is {s}: only a failed or partially scheduled campaign can be retried",
                    c.id
                )));
            }
        }
        let step = c.failure.as_ref().map_or("", |f| f.step.as_str());
        let (to, step) = match step {
            "audience" => (State::Received, "audience"),
            "upload" => (State::Uploading, "upload"),
            "schedule" => (State::AudienceReady, "schedule"),
            "manifest" => {
                return Err(refused(format!(
                    "campaign {} failed at its manifest (the drop was refused): a retry would read the same drop; fix it and drop it under a new campaign id",
                    c.id
                )));
            }
            other => {
                return Err(refused(format!(
                    "campaign {} failed at step {:?}, which cannot be resumed",
                    c.id,
                    crate::text::bounded(other, 64)
                )));
            }
        };
        self.check_send_time(c)?;
        Ok((to, step))
    }

    /// A retry that can only fail again on the send time is refused now, saying so.
    fn check_send_time(&self, c: &Campaign) -> Result<(), ControlError> {
        let (Some(send_at), Ok(esp)) = (c.send_at, self.esps.for_campaign(c)) else {
            return Ok(());
        };
        let policy = self.esps.policy(esp.kind(), esp.account());
        if policy.late == LateSend::AtOnce {
            return Ok(());
        }
        let grace = SignedDuration::try_from(policy.grace).unwrap_or_default();
        let now = self.clock.now();
        if send_at < now.checked_sub(grace).unwrap_or(now) {
            return Err(ControlError::Refused {
                code: "send_time_passed",
                reason: format!(
                    "campaign {}: its send time {send_at} has passed (the account sends nothing late); drop it again under a new campaign id with a new send time",
                    c.id
                ),
            });
        }
        Ok(())
    }

    /// The work could not be queued: the campaign goes back to how it was, so it does not sit
    /// in a state whose work nobody will do.
    async fn put_back(&self, before: &Campaign, saved: &Campaign) {
        if before.version == saved.version {
            return;
        }
        let mut back = before.clone();
        back.version = saved.version;
        back.updated_at = self.clock.now();
        if let Err(e) = self.store.save(&back).await {
            tracing::warn!(campaign_id = %before.id, error = %chain(&e),
                "a retry could not queue its work nor put the campaign back");
        }
    }
}
