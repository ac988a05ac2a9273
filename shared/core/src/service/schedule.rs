//! schedule-send: clone the template, attach the audience, schedule the send at the ESP, and
//! set up the daily metric polls, booking each campaign and variant exactly once whatever is
//! delivered twice.
//!
//! 1. **Claim.** Before the first ESP call the invocation writes a claim (owner, lease) on the
//!    record, conditionally on its version and on there being no live claim of another owner.
//!    A second delivery of the message finds the claim and comes back later (a retryable
//!    error), by which time the campaign is scheduled and the message is acknowledged. A claim
//!    whose owner died ends with its lease, so a redelivery takes over.
//! 2. **The poll schedule first.** It is created before any send is booked: a refused schedule
//!    then fails a campaign that sends nothing, and a send never goes out unpolled.
//! 3. **One send at a time, each recorded at once.** After each variant's booking its ESP ids
//!    are saved before the next is asked for. The adapters' own look-ups (deterministic names,
//!    "already launched") find what a crashed attempt booked.
//! 4. **Never a plain failure once mail may go out.** If a send cannot be booked after another
//!    one was, the campaign becomes `partially_scheduled` with the reason: it alerts, shows in
//!    the API, is polled for what was booked, and can be retried or cancelled.

use super::accounts::{EspRegistry, LateSend};
use super::common::{
    ServiceError, chain, fail_campaign, load, per_account, raise, record_run, run_record,
};
use crate::campaign::{Campaign, Failure, SendClaim, State};
use crate::clock::Clock;
use crate::ids::CampaignId;
use crate::ports::esp::{EspIds, SendRequest};
use crate::ports::metrics::name;
use crate::ports::scheduler::PollSchedule;
use crate::ports::{
    Alert, AlertKind, Alerts, CampaignStore, Esp, Measurement, Metrics, Scheduler, StoreError,
};
use jiff::SignedDuration;
use std::sync::Arc;

/// Days of metric polling after the send.
pub const POLL_DAYS: i64 = 7;
/// How far ahead a late send is booked when the account sends late campaigns at once.
const AT_ONCE_LEAD_MINS: i64 = 2;

/// How long a claim holds without its owner finishing: longer than one invocation may run.
pub const CLAIM_LEASE: SignedDuration = SignedDuration::from_mins(15);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleOutcome {
    Scheduled(CampaignId),
    Skipped(CampaignId, State),
    Failed(CampaignId),
    /// Some sends booked, one refused: mail may go out (`partially_scheduled`).
    Partial(CampaignId),
}

/// The schedule-send use case and the ports it needs: the campaign store, the ESP accounts, the
/// scheduler of the metric polls, the clock, and where failures and partly booked sends are
/// alerted and counted.
#[derive(Clone)]
pub struct ScheduleService {
    pub store: Arc<dyn CampaignStore>,
    pub esps: EspRegistry,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
    pub alerts: Arc<dyn Alerts>,
    pub metrics: Arc<dyn Metrics>,
}

/// One send of a campaign: the variant (or the campaign itself) and its template.
struct Send {
    variant: Option<String>,
    template_id: String,
}

impl ScheduleService {
    pub async fn schedule_send(
        &self,
        id: &CampaignId,
        final_attempt: bool,
    ) -> Result<ScheduleOutcome, ServiceError> {
        let started = self.clock.now();
        let c = load(self.store.as_ref(), id).await?;
        if !matches!(c.state, State::AudienceReady | State::PartiallyScheduled) {
            return Ok(ScheduleOutcome::Skipped(c.id, c.state));
        }
        let owner = claim_owner();
        let mut c = match self.claim(c, &owner).await? {
            Some(c) => c,
            None => {
                // Another invocation is booking: come back once its lease has run out.
                return Err(ServiceError::Claimed(id.clone()));
            }
        };
        let result = self.book(&mut c).await;
        let (outcome, label, detail) = match result {
            Ok(()) => {
                tracing::info!(campaign_id = %c.id, "sends booked at the ESP; metric polling scheduled");
                (ScheduleOutcome::Scheduled(c.id.clone()), "done", None)
            }
            Err(ServiceError::Store(StoreError::Conflict { .. })) => (
                ScheduleOutcome::Skipped(c.id.clone(), c.state),
                "skipped",
                None,
            ),
            Err(e) if e.is_retryable() && !final_attempt => {
                let reason = chain(&e);
                tracing::warn!(campaign_id = %c.id, error = %reason, "schedule-send interrupted; will retry");
                self.release_claim(&mut c).await;
                self.record(&c.id, started, "retry", Some(reason)).await;
                return Err(e);
            }
            Err(e) => {
                let reason = chain(&e);
                if booked(&c) > 0 {
                    self.mark_partial(&c.id, &reason).await?;
                    (
                        ScheduleOutcome::Partial(c.id.clone()),
                        "partial",
                        Some(reason),
                    )
                } else {
                    fail_campaign(
                        self.store.as_ref(),
                        self.clock.as_ref(),
                        self.alerts.as_ref(),
                        self.metrics.as_ref(),
                        &c.id,
                        "schedule",
                        &reason,
                    )
                    .await?;
                    (
                        ScheduleOutcome::Failed(c.id.clone()),
                        "failed",
                        Some(reason),
                    )
                }
            }
        };
        self.record(&c.id, started, label, detail).await;
        Ok(outcome)
    }

    /// Takes the campaign's send claim for `owner`; `None` when another owner holds a live one.
    async fn claim(&self, mut c: Campaign, owner: &str) -> Result<Option<Campaign>, ServiceError> {
        let now = self.clock.now();
        if let Some(claim) = &c.send_claim
            && claim.owner != owner
            && claim.until > now
        {
            return Ok(None);
        }
        c.send_claim = Some(SendClaim {
            owner: owner.to_owned(),
            until: now.checked_add(CLAIM_LEASE).unwrap_or(now),
        });
        c.updated_at = now;
        match self.store.save(&c).await {
            Ok(saved) => Ok(Some(saved)),
            // Someone wrote in between (most likely the other delivery's claim).
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Lets a redelivery take over at once instead of waiting out the lease.
    async fn release_claim(&self, c: &mut Campaign) {
        c.send_claim = None;
        match self.store.save(c).await {
            Ok(saved) => *c = saved,
            Err(e) => {
                tracing::debug!(campaign_id = %c.id, error = %chain(&e), "claim left to its lease")
            }
        }
    }

    /// The poll schedule, then each send, each recorded as soon as the ESP answers.
    async fn book(&self, c: &mut Campaign) -> Result<(), ServiceError> {
        let esp = self.esps.for_campaign(c)?;
        let mut send_at = c
            .send_at
            .ok_or_else(|| ServiceError::NoSendTime(c.id.clone()))?;
        // Checked again now the audience is up: an upload that outlived the send time books
        // nothing, unless the account says to send at once.
        let policy = self.esps.policy(esp.kind(), esp.account());
        let grace = SignedDuration::try_from(policy.grace).unwrap_or_default();
        let now = self.clock.now();
        if booked(c) == 0 && send_at < now.checked_sub(grace).unwrap_or(now) {
            match policy.late {
                LateSend::Fail => return Err(ServiceError::SendTimePassed { send_at }),
                LateSend::AtOnce => {
                    // A few minutes ahead: ESPs refuse a schedule in the past.
                    send_at = now
                        .checked_add(SignedDuration::from_mins(AT_ONCE_LEAD_MINS))
                        .unwrap_or(now);
                    tracing::warn!(campaign_id = %c.id, %send_at,
                        "the send time passed during the upload; sending at once, as the account allows");
                    c.send_at = Some(send_at);
                }
            }
        }
        let schedule = PollSchedule::daily_after(&c.id, send_at, POLL_DAYS);
        self.scheduler.create(&schedule).await?;
        if c.schedule_name.is_none() {
            c.schedule_name = Some(schedule.name);
            *c = self.store.save(c).await?;
        }
        let options = c
            .manifest
            .get("esp_options")
            .and_then(|o| o.get(esp.kind().as_str()))
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        for (i, send) in sends(c).into_iter().enumerate() {
            if is_booked(c.esp_ids_of(i)) {
                continue;
            }
            let ids = self
                .book_one(c, esp.as_ref(), &send, c.esp_ids_of(i), &options)
                .await?;
            match c.variants.get_mut(i) {
                Some(v) => v.esp_ids.merge(&ids),
                None => c.esp_ids.merge(&ids),
            }
            c.updated_at = self.clock.now();
            *c = self.store.save(c).await?;
            tracing::info!(campaign_id = %c.id, variant = send.variant.as_deref().unwrap_or("-"), "send booked");
        }
        c.send_claim = None;
        c.failure = None;
        c.transition(State::Scheduled, self.clock.now())?;
        *c = self.store.save(c).await?;
        Ok(())
    }

    async fn book_one(
        &self,
        c: &Campaign,
        esp: &dyn Esp,
        send: &Send,
        audience: &EspIds,
        options: &serde_json::Value,
    ) -> Result<EspIds, ServiceError> {
        // Per-send headers (Bronto): the template's stored override, else the adapter falls
        // back to the account's defaults.
        let headers = match esp.default_headers() {
            Some(_) => {
                self.store
                    .template_headers(esp.kind(), esp.account(), &send.template_id)
                    .await?
            }
            None => None,
        };
        let send_at = c
            .send_at
            .ok_or_else(|| ServiceError::NoSendTime(c.id.clone()))?;
        let ids = esp
            .schedule_send(&SendRequest {
                campaign_id: &c.id,
                variant: send.variant.as_deref(),
                template_id: &send.template_id,
                send_at,
                timezone: c.timezone.as_deref(),
                audience,
                options,
                headers: headers.as_ref(),
            })
            .await?;
        Ok(ids.with(SENT_KEY, "1"))
    }

    /// Records that mail may go out for what was booked, with the reason the rest was not.
    async fn mark_partial(&self, id: &CampaignId, reason: &str) -> Result<(), ServiceError> {
        for _ in 0..5 {
            let mut c = load(self.store.as_ref(), id).await?;
            let now = self.clock.now();
            let newly = match c.state {
                State::AudienceReady => {
                    c.transition(State::PartiallyScheduled, now)?;
                    true
                }
                State::PartiallyScheduled => false,
                _ => return Ok(()),
            };
            c.send_claim = None;
            c.failure = Some(Failure {
                step: "schedule".to_owned(),
                reason: format!(
                    "{reason} ({} of {} sends booked: mail may go out for them)",
                    booked(&c),
                    sends(&c).len()
                ),
                at: now,
            });
            match self.store.save(&c).await {
                Ok(saved) => {
                    tracing::error!(campaign_id = %id, reason,
                        "campaign partially scheduled: mail may go out");
                    if newly {
                        // Once per campaign, on the change of state: a redelivery that is
                        // refused again changes nothing anyone must act on.
                        self.metrics.record(&[per_account(
                            Measurement::count(name::CAMPAIGNS_PARTIALLY_SCHEDULED, 1),
                            &saved,
                        )]);
                        let why = saved.failure.as_ref().map_or(reason, |f| f.reason.as_str());
                        let alert = Alert::about(AlertKind::MailMayGoOut, &saved, why, now);
                        raise(self.alerts.as_ref(), &alert).await;
                    }
                    return Ok(());
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Contended(id.clone()))
    }

    async fn record(
        &self,
        id: &CampaignId,
        started: jiff::Timestamp,
        outcome: &str,
        detail: Option<String>,
    ) {
        let run = run_record("schedule", started, self.clock.now(), outcome, None, detail);
        record_run(self.store.as_ref(), id, run).await;
    }
}

/// Marks, among a send's ESP ids, that the ESP has booked it.
pub const SENT_KEY: &str = "espbridge_send_booked";

fn is_booked(ids: &EspIds) -> bool {
    ids.get(SENT_KEY).is_some()
}

/// The campaign's sends: one per variant, or its one.
fn sends(c: &Campaign) -> Vec<Send> {
    if c.variants.is_empty() {
        return vec![Send {
            variant: None,
            template_id: c.template_id.clone(),
        }];
    }
    c.variants
        .iter()
        .map(|v| Send {
            variant: Some(v.name.clone()),
            template_id: v.template_id.clone(),
        })
        .collect()
}

/// How many of the campaign's sends are booked.
pub fn booked(c: &Campaign) -> usize {
    (0..sends(c).len())
        .filter(|i| is_booked(c.esp_ids_of(*i)))
        .count()
}

/// A name for this invocation's claim.
fn claim_owner() -> String {
    format!("schedule-{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A fresh random state per call (std's SipHash keys come from the OS).
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}
