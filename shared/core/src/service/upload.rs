//! upload-audience: from a recorded campaign to its audience at the ESP.
//!
//! 1. [Intake](super::intake) records the drop and creates the campaign.
//! 2. [Validation](super::validate) (first invocation only) counts and reports rejects.
//! 3. Upload: valid rows go to the ESP in its largest batches; the record's `uploaded` count is
//!    the checkpoint, written after every batch while the next batch's call goes out (it only
//!    ever covers batches that are done). Near the end of the invocation's time it stops and
//!    enqueues a continuation. A batch re-sent after a crash adds nobody twice (ESP audiences
//!    are sets).
//! 4. The ESP finishes the audience; the campaign becomes `audience_ready` and schedule-send is
//!    enqueued.
//!
//! A/B variants and control groups: each row's group comes from
//! [`Assigner`](crate::audience::assign::Assigner) (a seeded hash of the customer id, plus the
//! control-group file if the manifest names one), so every pass and every retry routes a
//! customer the same way. Each variant has its own ESP audience; a round of the upload fills one
//! buffer per variant and, when one is full, sends every non-empty buffer to its variant's
//! audience before the checkpoint. Held-out customers are counted and never sent.

use super::accounts::EspRegistry;
use super::common::{
    Deadline, ServiceError, campaign_failed, chain, fail_campaign, load, per_account, record_run,
    run_record, stored_manifest,
};
use super::conversions::ConversionsService;
use super::drop_files::{DropFiles, drop_prefix};
use super::rounds::{InFlight, MAX_IN_FLIGHT, read_round};
use crate::audience::read::{AudienceLimits, ScanEnd};
use crate::campaign::{Campaign, State};
use crate::clock::Clock;
use crate::ids::CampaignId;
use crate::ports::esp::{AudienceRequest, Esp, EspError};
use crate::ports::metrics::name;
use crate::ports::{
    Alerts, AudienceSource, CampaignStore, Measurement, Metrics, StoreError, WorkItem, WorkQueue,
};
use std::sync::Arc;
use std::time::Duration;

/// How far in the past a send time may be and still send (at once), unless the account's
/// [`SendPolicy`](super::accounts::SendPolicy) says otherwise.
pub const DEFAULT_SEND_GRACE: Duration = Duration::from_secs(15 * 60);

/// Tuning of the upload loop.
#[derive(Clone)]
pub struct UploadSettings {
    /// Stop and enqueue a continuation when less than this much invocation time is left.
    pub stop_margin: Duration,
    /// Stop after this many batches in one invocation (tests and demos of continuation).
    pub max_batches_per_run: Option<u64>,
    /// Stop validating after this many rows in one invocation, as if its time had run out
    /// (tests of the validation's continuation).
    pub validation_slice_rows: Option<u64>,
    /// Stop after uploading this long and enqueue a continuation, even with time left: with
    /// more campaigns than workers, each holds a worker for one slice at a time, so a
    /// 5,000-row campaign queued behind a 5-million-row one of the same night starts within a
    /// slice instead of after the big one (their account's allowance is shared call by call).
    pub slice: Option<Duration>,
    /// How far ahead a send time may lie: never beyond the drop bucket's lifecycle, which
    /// deletes the files the analysis re-reads.
    pub send_horizon: Duration,
    /// Time schedule-send needs before the send time. An upload the ESP keeps throttling
    /// continues in a new invocation as long as the rest can still arrive before
    /// `send_at - send_lead`; after that the campaign fails with that reason.
    pub send_lead: Duration,
    /// Rejected rows kept in the record as samples (all are in the rejects report).
    pub reject_samples: usize,
    /// What a drop may make the audience passes read, hold and write.
    pub audience_limits: AudienceLimits,
    pub observer: Option<Arc<dyn UploadObserver>>,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            stop_margin: Duration::from_secs(90),
            max_batches_per_run: None,
            validation_slice_rows: None,
            slice: Some(Duration::from_secs(120)),
            send_lead: Duration::from_secs(300),
            send_horizon: Duration::from_secs(30 * 24 * 3600),
            reject_samples: 50,
            audience_limits: AudienceLimits::default(),
            observer: None,
        }
    }
}

/// Progress of an upload (the CLI's progress bar).
pub trait UploadObserver: Send + Sync {
    fn validated(&self, campaign: &CampaignId, rows: u64, valid: u64);
    fn uploaded(&self, campaign: &CampaignId, uploaded: u64, valid: u64);
}

/// The upload-audience use case and the ports it needs: the campaign store, the drop bucket,
/// the work queue (continuations, schedule-send), the ESP accounts, the clock, and where
/// failures are alerted and progress is counted.
#[derive(Clone)]
pub struct UploadService {
    pub store: Arc<dyn CampaignStore>,
    pub source: Arc<dyn AudienceSource>,
    pub queue: Arc<dyn WorkQueue>,
    pub esps: EspRegistry,
    pub clock: Arc<dyn Clock>,
    pub alerts: Arc<dyn Alerts>,
    pub metrics: Arc<dyn Metrics>,
    pub settings: UploadSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Not a manifest of the drop layout.
    Ignored(String),
    /// The campaign failed (bad manifest or audience, or the ESP refused); the reason is in the
    /// record.
    Failed(CampaignId),
    /// Stopped near the deadline; a continuation is queued.
    Continued(CampaignId),
    /// The audience is at the ESP and schedule-send is queued.
    AudienceReady(CampaignId),
    /// Nothing to do in this state (a late duplicate event).
    Skipped(CampaignId, State),
    /// Another invocation moved the campaign on while this one worked; it stopped.
    Superseded(CampaignId),
}

impl UploadService {
    /// The conversions attribution on the same ports (conversions files arrive on the same
    /// queue as drops).
    pub fn conversions(&self) -> ConversionsService {
        ConversionsService {
            store: Arc::clone(&self.store),
            source: Arc::clone(&self.source),
            clock: Arc::clone(&self.clock),
        }
    }

    /// Resumes a campaign's upload (a continuation message). `final_attempt` fails the campaign
    /// on a retryable error instead of leaving it for another delivery.
    pub async fn continue_upload(
        &self,
        id: &CampaignId,
        deadline: Deadline,
        final_attempt: bool,
    ) -> Result<UploadOutcome, ServiceError> {
        let c = load(self.store.as_ref(), id).await?;
        self.run_upload(c, deadline, final_attempt).await
    }

    pub(crate) async fn run_upload(
        &self,
        mut c: Campaign,
        deadline: Deadline,
        final_attempt: bool,
    ) -> Result<UploadOutcome, ServiceError> {
        let started = self.clock.now();
        let before = (c.audience.uploaded, refused_by_esp(&c));
        let result = self.upload_steps(&mut c, deadline).await;
        self.count_slice(&c, before);
        let (outcome, detail) = match result {
            Ok(o) => (o, None),
            Err(ServiceError::Store(StoreError::Conflict { .. })) => {
                tracing::info!(campaign_id = %c.id, "another invocation moved the campaign on; stopping");
                (UploadOutcome::Superseded(c.id.clone()), None)
            }
            Err(e) if e.is_retryable() && !final_attempt => {
                let reason = chain(&e);
                tracing::warn!(campaign_id = %c.id, error = %reason, uploaded = c.audience.uploaded, "upload interrupted; will resume");
                let run = run_record(
                    "upload",
                    started,
                    self.clock.now(),
                    "retry",
                    Some(&c),
                    Some(reason),
                );
                record_run(self.store.as_ref(), &c.id, run).await;
                return Err(e);
            }
            Err(e) => {
                let reason = chain(&e);
                let step = if c.state == State::Received {
                    "audience"
                } else {
                    "upload"
                };
                fail_campaign(
                    self.store.as_ref(),
                    self.clock.as_ref(),
                    self.alerts.as_ref(),
                    self.metrics.as_ref(),
                    &c.id,
                    step,
                    &reason,
                )
                .await?;
                (UploadOutcome::Failed(c.id.clone()), Some(reason))
            }
        };
        let label = match &outcome {
            UploadOutcome::Continued(_) => "continued",
            UploadOutcome::AudienceReady(_) => "done",
            UploadOutcome::Failed(_) => "failed",
            _ => "skipped",
        };
        let run = run_record("upload", started, self.clock.now(), label, Some(&c), detail);
        record_run(self.store.as_ref(), &c.id, run).await;
        Ok(outcome)
    }

    async fn upload_steps(
        &self,
        c: &mut Campaign,
        deadline: Deadline,
    ) -> Result<UploadOutcome, ServiceError> {
        match c.state {
            State::Received => {
                if self.validate(c, deadline).await? == super::validate::Validation::Continued {
                    return Ok(UploadOutcome::Continued(c.id.clone()));
                }
            }
            State::Uploading => {}
            State::AudienceReady => {
                // Uploaded before but the hand-off may have been lost: hand off again (idempotent).
                self.queue
                    .enqueue(&WorkItem::ScheduleSend {
                        campaign_id: c.id.clone(),
                    })
                    .await?;
                return Ok(UploadOutcome::AudienceReady(c.id.clone()));
            }
            s => return Ok(UploadOutcome::Skipped(c.id.clone(), s)),
        }
        if c.state == State::Failed {
            // The validation pass failed it (no usable row, too many rejects).
            campaign_failed(self.alerts.as_ref(), self.metrics.as_ref(), c).await;
            return Ok(UploadOutcome::Failed(c.id.clone()));
        }
        let esp = self.esps.for_campaign(c)?;
        let m = stored_manifest(c)?;
        let options = m.esp_options();
        let send_at = c
            .send_at
            .ok_or_else(|| ServiceError::NoSendTime(c.id.clone()))?;
        let campaign_id = c.id.clone();
        if c.esp_ids.0.is_empty() && c.variants.iter().all(|v| v.esp_ids.0.is_empty()) {
            // Before anything is written at the ESP: a template it does not list (or lists as
            // not eligible) would be found only at schedule time, after the whole upload.
            self.check_templates(esp.as_ref(), c).await?;
        }
        if c.variants.is_empty() && c.esp_ids.0.is_empty() {
            let req = AudienceRequest {
                campaign_id: &campaign_id,
                variant: None,
                send_at,
                options: &options,
            };
            let ids = esp.create_audience(&req).await?;
            c.esp_ids.merge(&ids);
            *c = self.store.save(c).await?;
            tracing::info!(campaign_id = %c.id, esp = %esp.kind(), "audience created at the ESP");
        }
        for i in 0..c.variants.len() {
            if c.variants[i].esp_ids.0.is_empty() {
                let name = c.variants[i].name.clone();
                let req = AudienceRequest {
                    campaign_id: &campaign_id,
                    variant: Some(&name),
                    send_at,
                    options: &options,
                };
                let ids = esp.create_audience(&req).await?;
                c.variants[i].esp_ids.merge(&ids);
                *c = self.store.save(c).await?;
                tracing::info!(campaign_id = %c.id, variant = %name, "variant audience created at the ESP");
            }
        }
        let prefix = drop_prefix(&c.drop.key);
        let max = esp.max_batch_for(c.audience.valid).max(1);
        let field_names: Arc<[String]> = m.audience.columns.fields.clone().into();
        let files = self.drop_files();
        let assigner = files.assigner(c, &m).await?;
        let mut scan = files.valid_rows(c, &m, &prefix).await?;
        let slice_started = std::time::Instant::now();
        let mut batches_this_run = 0u64;
        // Up to `depth` rounds in flight, each on its own task, awaited oldest first; the
        // checkpoint of the last round counted is written while the next one is awaited, so
        // the ESP never waits for the store. Rows before `read_to` are in a round.
        let depth = esp.batches_in_flight().clamp(1, MAX_IN_FLIGHT);
        let mut flight = InFlight::new(Arc::clone(&esp));
        let mut read_to = c.audience.uploaded;
        let mut reading = true;
        let mut stopping = false;
        let mut unsaved = false;
        loop {
            while reading && !stopping && flight.len() < depth {
                let (round, end) =
                    read_round(&mut scan, &assigner, &field_names, max, read_to).await?;
                if round.next > read_to {
                    read_to = round.next;
                    batches_this_run += round.calls() as u64;
                    flight.send(c, round);
                }
                // The validation pass counted the valid rows: once they are all read, stop,
                // even if the scan paused on a full last batch (saves an empty continuation).
                reading = end != ScanEnd::Done && read_to < c.audience.valid;
                stopping = self.time_to_stop(&deadline, batches_this_run, slice_started);
            }
            let checkpoint = async {
                if unsaved {
                    self.store.save(c).await.map(Some)
                } else {
                    Ok(None)
                }
            };
            let (saved, sent) = tokio::join!(checkpoint, flight.next());
            // The checkpoint first: after a failed call the record stands at the last round
            // that succeeded, and the run resumes from there.
            if let Some(saved) = saved? {
                *c = saved;
                self.checkpointed(c);
            }
            let Some(sent) = sent else {
                break;
            };
            let round = match sent {
                Ok(round) => round,
                Err(e @ EspError::RateLimited { .. }) => {
                    return self.still_throttled(c, send_at, e).await;
                }
                Err(e) => return Err(e.into()),
            };
            let jobs = round.jobs();
            if !jobs.is_empty() && jobs != c.audience.jobs {
                // Recorded before waiting: a continuation waits for these jobs.
                c.audience.jobs = jobs;
                *c = self.store.save(c).await?;
            }
            // The jobs run at the ESP whatever this invocation does: it waits for them only
            // until its stop margin, then hands the wait to a continuation (the record has them).
            let wait = deadline
                .remaining()
                .saturating_sub(self.settings.stop_margin);
            let round = match tokio::time::timeout(wait, round.finish_jobs(esp.as_ref(), c)).await {
                Ok(Ok(round)) => round,
                Ok(Err(e @ EspError::RateLimited { .. })) => {
                    return self.still_throttled(c, send_at, e).await;
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    let out = self.continue_later(c).await?;
                    tracing::info!(campaign_id = %c.id, jobs = c.audience.jobs.len(),
                        "the ESP's jobs outlast this invocation; a continuation waits for them");
                    return Ok(out);
                }
            };
            round.apply(c);
            c.updated_at = self.clock.now();
            unsaved = true;
            stopping = stopping || self.time_to_stop(&deadline, batches_this_run, slice_started);
        }
        if reading {
            let out = self.continue_later(c).await?;
            tracing::info!(campaign_id = %c.id, uploaded = c.audience.uploaded, "continuing in a new invocation");
            return Ok(out);
        }
        if c.audience.uploaded != c.audience.valid {
            return Err(ServiceError::AudienceChanged {
                validated: c.audience.valid,
                uploaded: c.audience.uploaded,
            });
        }
        if c.variants.is_empty() {
            let done = esp.finish_audience(&c.id, None, &c.esp_ids).await?;
            c.esp_ids.merge(&done.ids);
            let a = &c.audience;
            let sent = a.uploaded - a.held_out.min(a.uploaded);
            let unknown = unselected(sent, a.not_in_esp + a.esp_rejected, done.members);
            c.audience.not_in_esp += unknown;
        }
        for i in 0..c.variants.len() {
            let name = c.variants[i].name.clone();
            let done = esp
                .finish_audience(&c.id, Some(&name), &c.variants[i].esp_ids)
                .await?;
            let v = &mut c.variants[i];
            v.esp_ids.merge(&done.ids);
            let unknown = unselected(v.assigned, v.not_in_esp + v.esp_rejected, done.members);
            v.not_in_esp += unknown;
            c.audience.not_in_esp += unknown;
        }
        let ready_at = self.clock.now();
        c.transition(State::AudienceReady, ready_at)?;
        *c = self.store.save(c).await?;
        let ahead = send_at.duration_since(ready_at).as_secs_f64();
        self.metrics.record(&[per_account(
            Measurement::seconds(name::SECONDS_BEFORE_SEND, ahead),
            c,
        )]);
        self.queue
            .enqueue(&WorkItem::ScheduleSend {
                campaign_id: c.id.clone(),
            })
            .await?;
        tracing::info!(campaign_id = %c.id, uploaded = c.audience.uploaded, rejected = c.audience.rejected, "audience ready");
        Ok(UploadOutcome::AudienceReady(c.id.clone()))
    }

    /// Whether this invocation starts no new round: its deadline is near, or it used its
    /// slice or its batches.
    fn time_to_stop(
        &self,
        deadline: &Deadline,
        batches_this_run: u64,
        started: std::time::Instant,
    ) -> bool {
        let s = &self.settings;
        deadline.remaining() < s.stop_margin
            || s.max_batches_per_run.is_some_and(|m| batches_this_run >= m)
            || s.slice.is_some_and(|slice| started.elapsed() >= slice)
    }

    /// A checkpoint is written: progress for the CLI and the log.
    fn checkpointed(&self, c: &Campaign) {
        if let Some(o) = &self.settings.observer {
            o.uploaded(&c.id, c.audience.uploaded, c.audience.valid);
        }
        tracing::info!(campaign_id = %c.id, uploaded = c.audience.uploaded, valid = c.audience.valid,
            held_out = c.audience.held_out, not_in_esp = c.audience.not_in_esp, "batch uploaded");
    }

    /// Counts what one invocation's slice sent (`before`: rows uploaded and refused by the ESP
    /// when it started).
    fn count_slice(&self, c: &Campaign, before: (u64, u64)) {
        let uploaded = c.audience.uploaded.saturating_sub(before.0);
        let refused = refused_by_esp(c).saturating_sub(before.1);
        if uploaded == 0 && refused == 0 {
            return;
        }
        self.metrics.record(&[
            per_account(Measurement::count(name::ROWS_UPLOADED, uploaded), c),
            per_account(Measurement::count(name::ROWS_REFUSED_BY_ESP, refused), c),
        ]);
    }

    /// The campaign's drop, read with the deployment's limits.
    pub(crate) fn drop_files(&self) -> DropFiles<'_> {
        DropFiles {
            source: self.source.as_ref(),
            limits: self.settings.audience_limits,
        }
    }

    /// Every template the campaign sends (its own, each variant's) is one the account lists,
    /// by the same rules as `GET /templates`.
    async fn check_templates(&self, esp: &dyn Esp, c: &Campaign) -> Result<(), ServiceError> {
        let listed: std::collections::HashSet<String> = esp
            .list_templates()
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect();
        let wanted =
            std::iter::once(&c.template_id).chain(c.variants.iter().map(|v| &v.template_id));
        for id in wanted {
            if !listed.contains(id) {
                return Err(ServiceError::TemplateNotListed {
                    esp: esp.kind(),
                    template_id: crate::text::bounded(id, 128),
                });
            }
        }
        Ok(())
    }

    /// The ESP kept throttling past a call's patience. Throttling is no reason to give up: the
    /// upload goes on in a new invocation (from the last checkpoint: batches are sets) while
    /// the send time leaves room, and fails only when it does not.
    async fn still_throttled(
        &self,
        c: &Campaign,
        send_at: jiff::Timestamp,
        e: EspError,
    ) -> Result<UploadOutcome, ServiceError> {
        let lead = jiff::SignedDuration::try_from(self.settings.send_lead)
            .unwrap_or(jiff::SignedDuration::MAX);
        let last_useful = send_at.checked_sub(lead).unwrap_or(send_at);
        if self.clock.now() >= last_useful {
            return Err(ServiceError::SendTimeMissed {
                send_at,
                uploaded: c.audience.uploaded,
                valid: c.audience.valid,
                source: e,
            });
        }
        self.metrics
            .record(&[per_account(Measurement::count(name::ESP_THROTTLED, 1), c)]);
        let out = self.continue_later(c).await?;
        tracing::warn!(campaign_id = %c.id, uploaded = c.audience.uploaded, error = %chain(&e),
            "the ESP is still throttling; continuing in a new invocation");
        Ok(out)
    }

    /// Queues the campaign's continuation: the next invocation resumes from its record.
    async fn continue_later(&self, c: &Campaign) -> Result<UploadOutcome, ServiceError> {
        self.queue
            .enqueue(&WorkItem::ContinueUpload {
                campaign_id: c.id.clone(),
            })
            .await?;
        Ok(UploadOutcome::Continued(c.id.clone()))
    }
}

/// Rows the ESP refused or does not know, so far.
fn refused_by_esp(c: &Campaign) -> u64 {
    c.audience.not_in_esp + c.audience.esp_rejected
}

/// Accepted rows a finished container does not select (ids the ESP does not know, counted by
/// the container's size where the batches could not tell): `sent` rows went up, `refused` of
/// them were already counted as unknown or rejected.
fn unselected(sent: u64, refused: u64, members: Option<u64>) -> u64 {
    members.map_or(0, |m| sent.saturating_sub(refused).saturating_sub(m))
}
