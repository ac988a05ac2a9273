//! Cancelling a campaign before its send time (`POST /campaigns/{id}/cancel`,
//! `espbridge cancel`).
//!
//! - Before anything is booked (`received`, `uploading`, `audience_ready`) the campaign just
//!   becomes `cancelled`, with a write conditional on the version read: an upload or
//!   schedule-send working on it meanwhile fails its next conditional write and stops, and
//!   their queued messages find a cancelled campaign and do nothing.
//! - Once sends are booked (`scheduled`, `partially_scheduled`), each booked send (the
//!   campaign's, or each variant's) is unscheduled at the ESP, the metric-poll schedule is
//!   deleted, then the campaign becomes `cancelled`. An ESP whose API cannot unschedule
//!   ([`EspError::CannotCancel`]) changes nothing, and the answer says why.
//! - Refused: at or after the send time, when a send went out, while schedule-send holds the
//!   campaign's claim ("try again shortly": it may be booking right now), and on a campaign that
//!   is already over (`collecting`, `completed`, `failed`). A campaign already `cancelled` is
//!   answered as done: cancelling twice is harmless.

use super::accounts::EspRegistry;
use super::common::{ServiceError, chain, record_run, run_record};
use super::schedule::SENT_KEY;
use crate::campaign::{Campaign, State};
use crate::clock::Clock;
use crate::ids::CampaignId;
use crate::ports::esp::{CannotCancel, EspError};
use crate::ports::{CampaignStore, Scheduler, StoreError};
use serde::Serialize;
use std::sync::Arc;

/// Times the record is re-read when another writer got in between.
const ATTEMPTS: usize = 5;

/// The cancel use case and its ports: the store, the ESP accounts, the scheduler (the poll
/// schedule) and the clock.
#[derive(Clone)]
pub struct CancelService {
    pub store: Arc<dyn CampaignStore>,
    pub esps: EspRegistry,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cancelled {
    pub campaign_id: CampaignId,
    pub state: State,
    /// Sends unscheduled at the ESP by this call.
    pub unscheduled_sends: usize,
    /// The campaign was cancelled before this call.
    pub already: bool,
}

/// Why a cancel or a retry changed nothing. Every reason is for the marketer to read.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no campaign {0}")]
    NotFound(CampaignId),
    /// The campaign's state or time does not allow it; nothing changed.
    #[error("{reason}")]
    Refused { code: &'static str, reason: String },
    /// Another step holds the campaign right now; the same call may succeed in a moment.
    #[error("{0}")]
    Busy(String),
    /// A port failed; nothing changed at espbridge (an ESP send may already be unscheduled,
    /// which a repeated call finds done).
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        ControlError::Service(e.into())
    }
}

impl ControlError {
    fn refused(code: &'static str, reason: impl Into<String>) -> Self {
        ControlError::Refused {
            code,
            reason: crate::text::reason(&reason.into()),
        }
    }
}

/// The booked sends of a campaign: each variant's ids, or the campaign's own.
pub(crate) fn booked_sends(c: &Campaign) -> Vec<(Option<&str>, &crate::ports::EspIds)> {
    let all: Vec<(Option<&str>, &crate::ports::EspIds)> = if c.variants.is_empty() {
        vec![(None, &c.esp_ids)]
    } else {
        c.variants
            .iter()
            .map(|v| (Some(v.name.as_str()), &v.esp_ids))
            .collect()
    };
    all.into_iter()
        .filter(|(_, ids)| ids.get(SENT_KEY).is_some())
        .collect()
}

impl CancelService {
    pub async fn cancel(&self, id: &CampaignId) -> Result<Cancelled, ControlError> {
        let started = self.clock.now();
        for _ in 0..ATTEMPTS {
            let Some(c) = self.store.get(id).await? else {
                return Err(ControlError::NotFound(id.clone()));
            };
            if c.state == State::Cancelled {
                return Ok(Cancelled {
                    campaign_id: c.id,
                    state: State::Cancelled,
                    unscheduled_sends: 0,
                    already: true,
                });
            }
            self.check(&c)?;
            let unscheduled = self.unschedule(&c).await?;
            if let Some(name) = &c.schedule_name {
                self.scheduler
                    .delete(name)
                    .await
                    .map_err(ServiceError::from)?;
            }
            let mut next = c.clone();
            next.send_claim = None;
            next.transition(State::Cancelled, self.clock.now())
                .map_err(ServiceError::from)?;
            match self.store.save(&next).await {
                Ok(saved) => {
                    tracing::info!(campaign_id = %id, from = %c.state, unscheduled, "campaign cancelled");
                    let detail = format!(
                        "cancelled in {}; {unscheduled} send(s) unscheduled",
                        c.state
                    );
                    let run = run_record(
                        "cancel",
                        started,
                        self.clock.now(),
                        "done",
                        None,
                        Some(detail),
                    );
                    record_run(self.store.as_ref(), id, run).await;
                    return Ok(Cancelled {
                        campaign_id: saved.id,
                        state: saved.state,
                        unscheduled_sends: unscheduled,
                        already: false,
                    });
                }
                // An upload saved its checkpoint, schedule-send took its claim...: read again
                // and decide on what is there now (unscheduling again is harmless).
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ControlError::Busy(format!(
            "campaign {id} kept changing while it was being cancelled; try again shortly"
        )))
    }

    /// Whether the campaign may be cancelled now; the refusal says why not.
    fn check(&self, c: &Campaign) -> Result<(), ControlError> {
        let now = self.clock.now();
        match c.state {
            State::Received
            | State::Uploading
            | State::AudienceReady
            | State::Scheduled
            | State::PartiallyScheduled => {}
            State::Collecting | State::Completed => {
                return Err(ControlError::refused(
                    "already_sent",
                    format!("campaign {} is {}: its mail went out", c.id, c.state),
                ));
            }
            State::Failed | State::Cancelled => {
                return Err(ControlError::refused(
                    "not_cancellable",
                    format!("campaign {} is {}: nothing to cancel", c.id, c.state),
                ));
            }
        }
        if let Some(send_at) = c.send_at
            && send_at <= now
        {
            return Err(ControlError::refused(
                "send_time_passed",
                format!(
                    "campaign {}: its send time {send_at} has passed; a send cannot be cancelled once it is due",
                    c.id
                ),
            ));
        }
        if let Some(claim) = &c.send_claim
            && claim.until > now
        {
            return Err(ControlError::Busy(format!(
                "campaign {}: schedule-send is booking its sends right now; try again shortly (at the latest after {})",
                c.id, claim.until
            )));
        }
        Ok(())
    }

    /// Unschedules every booked send at the ESP; how many there were.
    async fn unschedule(&self, c: &Campaign) -> Result<usize, ControlError> {
        let sends = booked_sends(c);
        if sends.is_empty() {
            return Ok(0);
        }
        let esp = self.esps.for_campaign(c)?;
        for (i, (variant, ids)) in sends.iter().enumerate() {
            match esp.cancel_send(ids).await {
                Ok(()) => {
                    tracing::info!(campaign_id = %c.id, variant = variant.unwrap_or("-"), "send unscheduled at the ESP");
                }
                Err(e @ EspError::CannotCancel { why, .. }) => {
                    let code = match why {
                        CannotCancel::Unsupported => "cannot_cancel",
                        CannotCancel::AlreadySent => "already_sent",
                    };
                    let mut reason = format!("campaign {} stays {}: {}", c.id, c.state, chain(&e));
                    if i > 0 {
                        reason.push_str(&format!(
                            " ({i} of {} sends were unscheduled before this one)",
                            sends.len()
                        ));
                    }
                    return Err(ControlError::refused(code, reason));
                }
                Err(e) => return Err(ServiceError::from(e).into()),
            }
        }
        Ok(sends.len())
    }
}
