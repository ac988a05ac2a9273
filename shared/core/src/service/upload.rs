//! upload-audience: from a recorded campaign to its audience at the ESP.
//!
//! 1. [Intake](super::intake) records the drop and creates the campaign.
//! 2. One pass over the drop validates and uploads: each row is checked and de-duplicated as
//!    it is read ([validation](super::validate)), and the first occurrence of each valid
//!    customer id goes to the ESP in its largest batches. The ESP audience is created with the
//!    first valid rows in hand, so a drop without any leaves nothing at the ESP. The record's
//!    `uploaded` count is the checkpoint, written after every batch while the next batch's
//!    call goes out (it only ever covers batches that are done). Near the end of the
//!    invocation's time it stops and enqueues a continuation, which reads the drop again from
//!    its first line, making every decision again without calling the ESP, and sends from the
//!    checkpoint on. A batch re-sent after a crash adds nobody twice (ESP audiences are sets).
//! 3. At the end of the pass the rejects report is written; a drop with no usable row, or one
//!    past the rejects cap (whenever it is reached), fails the campaign.
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
use super::validate::{REJECTS_FILE, RejectsReport, nothing_to_upload};
use crate::audience::read::{AudienceLimits, AudienceScan, ScanEnd, ScanMode};
use crate::campaign::{Campaign, State};
use crate::clock::Clock;
use crate::ids::CampaignId;
use crate::manifest::Manifest;
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
    /// The pass read every row: `rows` data rows, `valid` of them uploaded.
    fn validated(&self, campaign: &CampaignId, rows: u64, valid: u64);
    /// A checkpoint: `uploaded` rows done of the `valid` ones read so far.
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
                // A drop's own content is the audience's fault, whenever the pass meets it.
                let step = if c.state == State::Received || matches!(e, ServiceError::Audience(_)) {
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
            State::Received => self.start_pass(c).await?,
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
        let esp = self.esps.for_campaign(c)?;
        let m = stored_manifest(c)?;
        let send_at = c
            .send_at
            .ok_or_else(|| ServiceError::NoSendTime(c.id.clone()))?;
        let field_names: Arc<[String]> = m.audience.columns.fields.clone().into();
        let assigner = self.drop_files().assigner(c, &m).await?;
        // Some ESPs batch by the audience's size (Silverpop's bulk import), which the pass
        // learns at its end: an earlier invocation's count, or else the largest batch, and a
        // first round that turns out to be the whole audience is read again at its size.
        let mut max = match c.audience.valid {
            0 => esp.max_batch(),
            seen => esp.max_batch_for(seen),
        }
        .max(1);
        let mut pass = self.open_pass(c, &m)?;
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
        let mut audiences_ready = false;
        let mut first_round = true;
        loop {
            while reading && !stopping && flight.len() < depth {
                let (round, end) = read_round(
                    &mut pass.scan,
                    &assigner,
                    &field_names,
                    max,
                    read_to,
                    &mut pass.rejects,
                )
                .await?;
                if pass.rejects.failed.is_some() {
                    break;
                }
                let smaller = esp.max_batch_for(pass.scan.valid()).max(1);
                if std::mem::take(&mut first_round) && end == ScanEnd::Done && smaller < max {
                    max = smaller;
                    pass = self.open_pass(c, &m)?;
                    continue;
                }
                if round.next > read_to {
                    if !audiences_ready {
                        // Only now, with a valid row in hand: a drop with none, or one that
                        // passes the rejects cap in its first round, leaves nothing at the ESP.
                        self.create_audiences(esp.as_ref(), c, send_at, &m).await?;
                        audiences_ready = true;
                    }
                    read_to = round.next;
                    batches_this_run += round.calls() as u64;
                    flight.send(c, round);
                }
                reading = end != ScanEnd::Done;
                stopping = self.time_to_stop(&deadline, batches_this_run, slice_started);
            }
            if let Some(reason) = pass.rejects.failed.take() {
                // Calls in flight stop; nothing is scheduled for a failed campaign.
                drop(flight);
                return self.fail_pass(c, pass, reason).await;
            }
            if unsaved {
                pass.count_into(&mut c.audience);
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
                pass.count_into(&mut c.audience);
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
            // The scan stopped on a full batch: the drop may hold no more valid rows, and a
            // continuation finding none would be an invocation for nothing. One more round,
            // read and not sent (the continuation reads it again), tells.
            let (round, end) = read_round(
                &mut pass.scan,
                &assigner,
                &field_names,
                max,
                read_to,
                &mut pass.rejects,
            )
            .await?;
            if let Some(reason) = pass.rejects.failed.take() {
                return self.fail_pass(c, pass, reason).await;
            }
            reading = end != ScanEnd::Done || round.next > read_to;
        }
        if reading {
            let out = self.continue_later(c).await?;
            tracing::info!(campaign_id = %c.id, uploaded = c.audience.uploaded, "continuing in a new invocation");
            return Ok(out);
        }
        if let Some(out) = self.end_pass(c, pass).await? {
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

    /// A campaign's first upload invocation: the control-group file is read (a missing one
    /// fails the campaign before any work), and the campaign becomes `uploading`.
    async fn start_pass(&self, c: &mut Campaign) -> Result<(), ServiceError> {
        let m = stored_manifest(c)?;
        c.audience = Default::default();
        if let Some(file) = m.control_group.as_ref().and_then(|g| g.file.as_deref()) {
            let ids = self
                .drop_files()
                .control_ids(c, file, &m.audience.columns.customer_id)
                .await?;
            if let Some(control) = c.control.as_mut() {
                control.file_ids = ids.len() as u64;
            }
            tracing::info!(campaign_id = %c.id, control_ids = ids.len(), "control-group file read");
        }
        c.transition(State::Uploading, self.clock.now())?;
        *c = self.store.save(c).await?;
        Ok(())
    }

    /// The pass over the drop, from its first line: the file versions an earlier invocation
    /// saw are pinned, and the counts it made are made again.
    fn open_pass<'s>(&'s self, c: &Campaign, m: &Manifest) -> Result<Pass<'s>, ServiceError> {
        let prefix = drop_prefix(&c.drop.key);
        let limits = self.settings.audience_limits;
        let rejects = RejectsReport::new(
            format!("{prefix}{REJECTS_FILE}"),
            &m.audience.files,
            limits.max_rejects,
            self.settings.reject_samples,
        )?;
        let scan = AudienceScan::new(
            self.source.as_ref(),
            &c.drop.bucket,
            &prefix,
            &m.audience.files,
            &m.audience.columns,
            ScanMode::Validate,
            c.audience.file_etags.clone(),
        )
        .with_limits(limits);
        Ok(Pass { scan, rejects })
    }

    /// The campaign's audience (each variant's) at the ESP, created where the record has none.
    /// Before the first: every template it sends must be one the account lists, or it would be
    /// found only at schedule time, after the whole upload.
    async fn create_audiences(
        &self,
        esp: &dyn Esp,
        c: &mut Campaign,
        send_at: jiff::Timestamp,
        m: &Manifest,
    ) -> Result<(), ServiceError> {
        if c.esp_ids.0.is_empty() && c.variants.iter().all(|v| v.esp_ids.0.is_empty()) {
            self.check_templates(esp, c).await?;
        }
        let options = m.esp_options();
        let campaign_id = c.id.clone();
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
        Ok(())
    }

    /// The pass read every row: its counts and rejects report are final. A drop with no
    /// usable row fails here (nothing of it is at the ESP); `None` when the upload goes on to
    /// finish the audience.
    async fn end_pass(
        &self,
        c: &mut Campaign,
        pass: Pass<'_>,
    ) -> Result<Option<UploadOutcome>, ServiceError> {
        let (rows, valid) = (pass.scan.rows(), pass.scan.valid());
        c.audience.file_etags = pass.scan.etags().to_vec();
        pass.rejects
            .finish(self.source.as_ref(), &c.drop.bucket, &mut c.audience)
            .await?;
        c.audience.rows = rows;
        c.audience.valid = valid;
        self.metrics.record(&[per_account(
            Measurement::count(name::ROWS_REJECTED, c.audience.rejected),
            c,
        )]);
        tracing::info!(campaign_id = %c.id, rows, valid, rejected = c.audience.rejected, "audience validated");
        let listed_in = c.audience.rejects_key.as_deref().unwrap_or("the record");
        if let Some(reason) = nothing_to_upload(&c.audience, listed_in) {
            c.fail("audience", reason, self.clock.now());
            *c = self.store.save(c).await?;
            campaign_failed(self.alerts.as_ref(), self.metrics.as_ref(), c).await;
            return Ok(Some(UploadOutcome::Failed(c.id.clone())));
        }
        if let Some(o) = &self.settings.observer {
            o.validated(&c.id, rows, valid);
        }
        Ok(None)
    }

    /// The pass stopped at the rejects cap: the report holds the first rejected rows, and the
    /// campaign fails (what reached the ESP stays there unsent).
    async fn fail_pass(
        &self,
        c: &mut Campaign,
        pass: Pass<'_>,
        reason: String,
    ) -> Result<UploadOutcome, ServiceError> {
        pass.count_into(&mut c.audience);
        pass.rejects
            .finish(self.source.as_ref(), &c.drop.bucket, &mut c.audience)
            .await?;
        self.metrics.record(&[per_account(
            Measurement::count(name::ROWS_REJECTED, c.audience.rejected),
            c,
        )]);
        c.fail("audience", reason, self.clock.now());
        *c = self.store.save(c).await?;
        campaign_failed(self.alerts.as_ref(), self.metrics.as_ref(), c).await;
        Ok(UploadOutcome::Failed(c.id.clone()))
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

/// The upload's one pass over the drop: the scan and the rejects it found.
struct Pass<'s> {
    scan: AudienceScan<'s>,
    rejects: RejectsReport,
}

impl Pass<'_> {
    /// The pass's counts so far into the record (progress: final once the pass ends).
    fn count_into(&self, stats: &mut crate::campaign::AudienceStats) {
        stats.rows = self.scan.rows();
        stats.valid = self.scan.valid();
        stats.file_etags = self.scan.etags().to_vec();
        self.rejects.count_into(stats);
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
