//! upload-audience: from a manifest's arrival to the audience at the ESP.
//!
//! 1. The drop is recorded and its campaign created in one conditional write keyed on the drop
//!    (bucket, key, ETag): a re-delivered event finds the campaign and resumes it.
//! 2. Validation pass (first invocation only): every row is checked, rejects go to
//!    `<drop>/rejects.csv` and to counts in the record; file versions are pinned.
//! 3. Upload pass: valid rows go to the ESP in its largest batches; the record's `uploaded`
//!    count is the checkpoint, written after every batch. Near the end of the invocation's time
//!    it stops and enqueues a continuation. A batch re-sent after a crash adds nobody twice
//!    (ESP audiences are sets).
//! 4. The ESP finishes the audience; the campaign becomes `audience_ready` and schedule-send is
//!    enqueued.
//!
//! A/B variants and control groups: each row's group comes from
//! [`Assigner`](crate::audience::assign::Assigner) (a seeded hash of the customer id, plus the
//! control-group file if the manifest names one), so every pass and every retry routes a
//! customer the same way. Each variant has its own ESP audience; a round of the upload fills one
//! buffer per variant and, when one is full, sends every non-empty buffer to its variant's
//! audience before the checkpoint. Held-out customers are counted and never sent.

use super::context::{Deadline, ServiceError, Services};
use crate::audience::assign::{Assigner, Group};
use crate::audience::read::{
    AudienceScan, Event, Flow, RejectedLines, ScanEnd, ScanMode, count_lines,
};
use crate::campaign::{Campaign, ControlState, RejectSample, RunRecord, State, VariantState};
use crate::ids::CampaignId;
use crate::manifest::Columns;
use crate::manifest::{self, DropPath, Manifest};
use crate::ports::esp::{AudienceBatch, Contact, EspIds};
use crate::ports::{Created, ObjectRef, StoreError, WorkItem};
use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Name of the rejects report written into the drop folder.
pub const REJECTS_FILE: &str = "rejects.csv";

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

impl Services {
    /// Handles an S3 ObjectCreated for `drop`.
    pub async fn handle_drop(
        &self,
        drop: &ObjectRef,
        deadline: Deadline,
    ) -> Result<UploadOutcome, ServiceError> {
        let path = match DropPath::parse(&drop.key) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(UploadOutcome::Ignored(drop.key.clone())),
            Err(e) => {
                // No campaign id can be read from the key, so no record can carry the failure.
                tracing::error!(key = %drop.key, reason = %e.reason, "drop refused");
                return Ok(UploadOutcome::Ignored(e.reason));
            }
        };
        let (bytes, _) = self.source.read_small(&drop.bucket, &drop.key).await?;
        let now = self.clock.now();
        let parsed = manifest::parse(&bytes, &drop.key, &path).map_err(|e| e.to_string());
        let parsed = parsed.and_then(|m| self.check_against_accounts(m, &drop.key));
        let candidate = match &parsed {
            Ok((m, account)) => new_campaign(drop, &path, m, Some(account.clone()), now),
            Err(reason) => {
                let mut c = rejected_campaign(drop, &path, &bytes, now);
                c.fail("manifest", reason.clone(), now);
                c
            }
        };
        let campaign = match self.store.create_from_drop(drop, &candidate).await {
            Ok(Created::New(c)) => {
                tracing::info!(campaign_id = %c.id, state = %c.state, "campaign created from drop");
                c
            }
            Ok(Created::Existing(c)) => {
                tracing::info!(campaign_id = %c.id, state = %c.state, "drop seen before: resuming");
                c
            }
            Err(StoreError::CampaignExists {
                campaign_id,
                existing_key,
            }) => {
                // Never a second send for one campaign id: the new drop is left untouched.
                tracing::error!(campaign_id = %campaign_id, existing = %existing_key, key = %drop.key,
                    "a campaign with this id came from another drop; this drop is ignored");
                return Ok(UploadOutcome::Ignored(format!(
                    "campaign {campaign_id} already exists from {existing_key}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if campaign.state == State::Failed {
            if let Some(f) = &campaign.failure {
                tracing::warn!(campaign_id = %campaign.id, step = %f.step, reason = %f.reason, "campaign failed");
            }
            return Ok(UploadOutcome::Failed(campaign.id));
        }
        self.run_upload(campaign, deadline, false).await
    }

    /// Resumes a campaign's upload (a continuation message). `final_attempt` fails the campaign
    /// on a retryable error instead of leaving it for another delivery.
    pub async fn continue_upload(
        &self,
        id: &CampaignId,
        deadline: Deadline,
        final_attempt: bool,
    ) -> Result<UploadOutcome, ServiceError> {
        let c = self.load(id).await?;
        self.run_upload(c, deadline, final_attempt).await
    }

    /// The manifest's account exists, and its columns suit the ESP.
    /// Errors read like the manifest's own: the file (the manifest's key), the field, the problem.
    fn check_against_accounts(
        &self,
        m: Manifest,
        file: &str,
    ) -> Result<(Manifest, crate::ids::AccountId), String> {
        let esp = self
            .esps
            .choose(m.esp, m.account.as_ref(), m.template_name.as_deref())
            .map_err(|e| format!("{file} rejected: /account: {e}"))?;
        if esp.needs_email() && m.audience.columns.email.is_none() {
            return Err(format!(
                "{file} rejected: /audience/columns/email: {} matches contacts by e-mail, so an e-mail column is required",
                m.esp
            ));
        }
        Ok((m, esp.account().clone()))
    }

    async fn run_upload(
        &self,
        mut c: Campaign,
        deadline: Deadline,
        final_attempt: bool,
    ) -> Result<UploadOutcome, ServiceError> {
        let started = self.clock.now();
        let result = self.upload_steps(&mut c, deadline).await;
        let (outcome, detail) = match result {
            Ok(o) => (o, None),
            Err(ServiceError::Store(StoreError::Conflict { .. })) => {
                tracing::info!(campaign_id = %c.id, "another invocation moved the campaign on; stopping");
                (UploadOutcome::Superseded(c.id.clone()), None)
            }
            Err(e) if e.is_retryable() && !final_attempt => {
                tracing::warn!(campaign_id = %c.id, error = %e, uploaded = c.audience.uploaded, "upload interrupted; will resume");
                self.record_run(
                    &c.id,
                    run(
                        "upload",
                        started,
                        self.clock.now(),
                        "retry",
                        &c,
                        Some(e.to_string()),
                    ),
                )
                .await;
                return Err(e);
            }
            Err(e) => {
                let reason = e.to_string();
                let step = if c.state == State::Received {
                    "audience"
                } else {
                    "upload"
                };
                self.fail_campaign(&c.id, step, &reason).await?;
                (UploadOutcome::Failed(c.id.clone()), Some(reason))
            }
        };
        let label = match &outcome {
            UploadOutcome::Continued(_) => "continued",
            UploadOutcome::AudienceReady(_) => "done",
            UploadOutcome::Failed(_) => "failed",
            _ => "skipped",
        };
        self.record_run(
            &c.id,
            run("upload", started, self.clock.now(), label, &c, detail),
        )
        .await;
        Ok(outcome)
    }

    async fn upload_steps(
        &self,
        c: &mut Campaign,
        deadline: Deadline,
    ) -> Result<UploadOutcome, ServiceError> {
        match c.state {
            State::Received => self.validate(c).await?,
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
            return Ok(UploadOutcome::Failed(c.id.clone()));
        }
        let esp = self.esps.for_campaign(c)?;
        let m: Manifest = serde_json::from_value(c.manifest.clone())
            .map_err(|e| ServiceError::Config(format!("stored manifest unreadable: {e}")))?;
        let options = m.esp_options();
        if c.variants.is_empty() && c.esp_ids.0.is_empty() {
            let ids = esp.create_audience_with(&c.id, None, &options).await?;
            c.esp_ids.merge(&ids);
            *c = self.store.save(c).await?;
            tracing::info!(campaign_id = %c.id, esp = %esp.kind(), "audience created at the ESP");
        }
        for i in 0..c.variants.len() {
            if c.variants[i].esp_ids.0.is_empty() {
                let name = c.variants[i].name.clone();
                let ids = esp
                    .create_audience_with(&c.id, Some(&name), &options)
                    .await?;
                c.variants[i].esp_ids.merge(&ids);
                *c = self.store.save(c).await?;
                tracing::info!(campaign_id = %c.id, variant = %name, "variant audience created at the ESP");
            }
        }
        let prefix = drop_prefix(&c.drop.key);
        let max = esp.max_batch().max(1);
        let field_names: Arc<[String]> = m.audience.columns.fields.clone().into();
        let assigner = self.assigner(c, &m).await?;
        let mut scan = self.valid_rows(c, &m, &prefix).await?;
        let mut batches_this_run = 0u64;
        loop {
            let skip = c.audience.uploaded;
            // One buffer per variant (one without variants), with its first row's ordinal.
            let mut buffers: Vec<(Option<u64>, Vec<Contact>)> =
                vec![(None, Vec::new()); assigner.variants()];
            let mut held = 0u64;
            let mut next = skip;
            let end = scan
                .run(&mut |ev| {
                    if let Event::Row(r) = ev
                        && r.ordinal >= skip
                    {
                        next = r.ordinal + 1;
                        let Group::Variant(i) = assigner.assign(r.customer_id) else {
                            held += 1;
                            return Flow::Continue;
                        };
                        let (first, contacts) = &mut buffers[i];
                        first.get_or_insert(r.ordinal);
                        contacts.push(Contact {
                            customer_id: r.customer_id.to_owned(),
                            email: r.email.map(str::to_owned),
                            fields: (0..r.field_count())
                                .map(|i| r.field(i).to_owned())
                                .collect(),
                        });
                        if contacts.len() >= max {
                            return Flow::Pause;
                        }
                    }
                    Flow::Continue
                })
                .await?;
            if next > skip {
                for (i, (first, contacts)) in buffers.into_iter().enumerate() {
                    if contacts.is_empty() {
                        continue;
                    }
                    let n = contacts.len() as u64;
                    let batch = AudienceBatch {
                        first_ordinal: first.unwrap_or(skip),
                        field_names: Arc::clone(&field_names),
                        contacts,
                    };
                    let audience: &EspIds = match c.variants.get(i) {
                        Some(v) => &v.esp_ids,
                        None => &c.esp_ids,
                    };
                    let out = esp.upload_batch(audience, &batch).await?;
                    c.audience.not_in_esp += out.not_in_esp;
                    c.audience.esp_rejected += out.row_errors.len() as u64;
                    c.audience.batches += 1;
                    if let Some(v) = c.variants.get_mut(i) {
                        v.assigned += n;
                        v.not_in_esp += out.not_in_esp;
                        v.esp_rejected += out.row_errors.len() as u64;
                    }
                    batches_this_run += 1;
                }
                c.audience.uploaded = next;
                c.audience.held_out += held;
                c.updated_at = self.clock.now();
                *c = self.store.save(c).await?;
                if let Some(o) = &self.upload.observer {
                    o.uploaded(&c.id, c.audience.uploaded, c.audience.valid);
                }
                tracing::info!(campaign_id = %c.id, uploaded = c.audience.uploaded, valid = c.audience.valid,
                    held_out = c.audience.held_out, not_in_esp = c.audience.not_in_esp, "batch uploaded");
            }
            // The validation pass counted the valid rows: once they are all up, stop, even if
            // the scan paused on a full last batch (saves an empty continuation).
            if end == ScanEnd::Done || c.audience.uploaded >= c.audience.valid {
                break;
            }
            let out_of_batches = self
                .upload
                .max_batches_per_run
                .is_some_and(|m| batches_this_run >= m);
            if deadline.remaining() < self.upload.stop_margin || out_of_batches {
                self.queue
                    .enqueue(&WorkItem::ContinueUpload {
                        campaign_id: c.id.clone(),
                    })
                    .await?;
                tracing::info!(campaign_id = %c.id, uploaded = c.audience.uploaded, "continuing in a new invocation");
                return Ok(UploadOutcome::Continued(c.id.clone()));
            }
        }
        if c.audience.uploaded != c.audience.valid {
            return Err(ServiceError::Config(format!(
                "audience files changed between passes: {} valid rows validated, {} uploaded",
                c.audience.valid, c.audience.uploaded
            )));
        }
        if c.variants.is_empty() {
            let ids = esp.finish_audience(&c.id, None, &c.esp_ids).await?;
            c.esp_ids.merge(&ids);
        }
        for i in 0..c.variants.len() {
            let name = c.variants[i].name.clone();
            let ids = esp
                .finish_audience(&c.id, Some(&name), &c.variants[i].esp_ids)
                .await?;
            c.variants[i].esp_ids.merge(&ids);
        }
        c.transition(State::AudienceReady, self.clock.now())
            .map_err(|e| ServiceError::Config(e.to_string()))?;
        *c = self.store.save(c).await?;
        self.queue
            .enqueue(&WorkItem::ScheduleSend {
                campaign_id: c.id.clone(),
            })
            .await?;
        tracing::info!(campaign_id = %c.id, uploaded = c.audience.uploaded, rejected = c.audience.rejected, "audience ready");
        Ok(UploadOutcome::AudienceReady(c.id.clone()))
    }

    /// The validation pass: counts, rejects report, pinned versions; then `uploading` (or
    /// `failed` when no row is usable).
    async fn validate(&self, c: &mut Campaign) -> Result<(), ServiceError> {
        let m: Manifest = serde_json::from_value(c.manifest.clone())
            .map_err(|e| ServiceError::Config(format!("stored manifest unreadable: {e}")))?;
        let prefix = drop_prefix(&c.drop.key);
        // The control-group file is read first: a missing one fails the campaign before any
        // audience work.
        if let Some(file) = m.control_group.as_ref().and_then(|g| g.file.as_deref()) {
            let ids = self
                .control_ids(c, file, &m.audience.columns.customer_id)
                .await?;
            if let Some(control) = c.control.as_mut() {
                control.file_ids = ids.len() as u64;
            }
            tracing::info!(campaign_id = %c.id, control_ids = ids.len(), "control-group file read");
        }
        let (lines, etags) = count_lines(
            self.source.as_ref(),
            &c.drop.bucket,
            &prefix,
            &m.audience.files,
        )
        .await?;
        let mut scan = AudienceScan::new(
            self.source.as_ref(),
            &c.drop.bucket,
            &prefix,
            &m.audience.files,
            &m.audience.columns,
            ScanMode::Validate {
                expected_rows: lines,
            },
            etags,
        );
        let report =
            tempfile::NamedTempFile::new().map_err(|e| ServiceError::Report(e.to_string()))?;
        let mut out = std::io::BufWriter::new(report.as_file());
        let mut io_error: Option<std::io::Error> = None;
        let _ = writeln!(out, "file,line,reason");
        let stats = &mut c.audience;
        *stats = Default::default();
        let sample_cap = self.upload.reject_samples;
        let files = m.audience.files.clone();
        scan.run(&mut |ev| {
            if let Event::Reject {
                file_index,
                line,
                reason,
            } = ev
            {
                stats.rejected += 1;
                *stats
                    .rejected_by_reason
                    .entry(reason.key().to_owned())
                    .or_default() += 1;
                let file = files.get(file_index).cloned().unwrap_or_default();
                if let Err(e) = writeln!(out, "{file},{line},\"{reason}\"") {
                    io_error.get_or_insert(e);
                }
                if stats.reject_samples.len() < sample_cap {
                    stats.reject_samples.push(RejectSample {
                        file,
                        line,
                        reason: reason.to_string(),
                    });
                }
            }
            Flow::Continue
        })
        .await?;
        stats.rows = scan.rows();
        stats.valid = scan.valid();
        stats.file_etags = scan.etags().to_vec();
        if let Some(e) = io_error {
            return Err(ServiceError::Report(e.to_string()));
        }
        out.flush()
            .map_err(|e| ServiceError::Report(e.to_string()))?;
        drop(out);
        if stats.rejected > 0 {
            let key = format!("{prefix}{REJECTS_FILE}");
            self.source
                .put_file(&c.drop.bucket, &key, report.path())
                .await?;
            stats.rejects_key = Some(key);
        }
        tracing::info!(campaign_id = %c.id, rows = stats.rows, valid = stats.valid, rejected = stats.rejected, "audience validated");
        if let Some(o) = &self.upload.observer {
            o.validated(&c.id, stats.rows, stats.valid);
        }
        let now = self.clock.now();
        if stats.valid == 0 {
            let reason = format!(
                "no valid rows: all {} rows rejected (see {})",
                stats.rows,
                stats.rejects_key.as_deref().unwrap_or("the record")
            );
            c.fail("audience", reason, now);
        } else {
            c.transition(State::Uploading, now)
                .map_err(|e| ServiceError::Config(e.to_string()))?;
        }
        *c = self.store.save(c).await?;
        Ok(())
    }

    /// A scan of the campaign's valid rows (upload mode: the lines its validation pass rejected
    /// are skipped, the file versions it saw are pinned).
    pub(crate) async fn valid_rows(
        &self,
        c: &Campaign,
        m: &Manifest,
        prefix: &str,
    ) -> Result<AudienceScan<'_>, ServiceError> {
        let rejected = self.rejected_lines(c, &m.audience.files).await?;
        Ok(AudienceScan::new(
            self.source.as_ref(),
            &c.drop.bucket,
            prefix,
            &m.audience.files,
            &m.audience.columns,
            ScanMode::Upload { rejected },
            c.audience.file_etags.clone(),
        ))
    }

    /// The campaign's assignment rule, with the control-group file's ids when there is one.
    pub(crate) async fn assigner(
        &self,
        c: &Campaign,
        m: &Manifest,
    ) -> Result<Assigner, ServiceError> {
        let shares: Vec<f64> = c.variants.iter().map(|v| v.share).collect();
        let holdout = c
            .control
            .as_ref()
            .and_then(|g| g.holdout_share)
            .unwrap_or(0.0);
        let assigner = Assigner::new(c.id.as_str(), &shares, holdout);
        match m.control_group.as_ref().and_then(|g| g.file.as_deref()) {
            Some(file) => {
                let ids = self
                    .control_ids(c, file, &m.audience.columns.customer_id)
                    .await?;
                Ok(assigner.with_control(ids))
            }
            None => Ok(assigner),
        }
    }

    /// The distinct customer ids of a control-group file (a CSV whose customer id column has the
    /// audience's name), as [`Assigner::control_key`]s. Rows that are not valid are skipped: the
    /// validation pass reported them.
    pub(crate) async fn control_ids(
        &self,
        c: &Campaign,
        file: &str,
        customer_id_column: &str,
    ) -> Result<HashSet<u64>, ServiceError> {
        let prefix = drop_prefix(&c.drop.key);
        let files = vec![file.to_owned()];
        let columns = Columns {
            customer_id: customer_id_column.to_owned(),
            email: None,
            fields: Vec::new(),
        };
        let mut scan = AudienceScan::new(
            self.source.as_ref(),
            &c.drop.bucket,
            &prefix,
            &files,
            &columns,
            ScanMode::Upload {
                rejected: RejectedLines::default(),
            },
            Vec::new(),
        );
        let mut ids = HashSet::new();
        scan.run(&mut |ev| {
            if let Event::Row(r) = ev {
                ids.insert(Assigner::control_key(r.customer_id));
            }
            Flow::Continue
        })
        .await?;
        Ok(ids)
    }

    /// The lines the validation pass rejected, from its report.
    pub(crate) async fn rejected_lines(
        &self,
        c: &Campaign,
        files: &[String],
    ) -> Result<RejectedLines, ServiceError> {
        let Some(key) = c.audience.rejects_key.as_deref() else {
            return Ok(RejectedLines::default());
        };
        let (mut stream, _) = self.source.open(&c.drop.bucket, key, None).await?;
        let mut report = Vec::new();
        stream
            .read_to_end(&mut report)
            .await
            .map_err(|e| ServiceError::Report(format!("{key}: {e}")))?;
        let lines = RejectedLines::from_report(&report, files)
            .map_err(|e| ServiceError::Report(format!("{key}: {e}")))?;
        if lines.total() != c.audience.rejected {
            return Err(ServiceError::Report(format!(
                "{key} lists {} rows, the record {}",
                lines.total(),
                c.audience.rejected
            )));
        }
        Ok(lines)
    }

    /// Marks the campaign failed, re-reading it on a conflict so the reason is never lost.
    pub(crate) async fn fail_campaign(
        &self,
        id: &CampaignId,
        step: &str,
        reason: &str,
    ) -> Result<(), ServiceError> {
        for _ in 0..5 {
            let Some(mut c) = self.store.get(id).await? else {
                return Ok(());
            };
            if c.state.is_terminal() {
                return Ok(());
            }
            c.fail(step, reason, self.clock.now());
            match self.store.save(&c).await {
                Ok(_) => {
                    tracing::warn!(campaign_id = %id, step, reason, "campaign failed");
                    return Ok(());
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Config(format!(
            "could not mark campaign {id} failed: the record kept changing"
        )))
    }
}

fn drop_prefix(manifest_key: &str) -> String {
    manifest_key
        .strip_suffix(manifest::MANIFEST_FILE)
        .unwrap_or(manifest_key)
        .to_owned()
}

fn run(
    step: &str,
    started: jiff::Timestamp,
    finished: jiff::Timestamp,
    outcome: &str,
    c: &Campaign,
    detail: Option<String>,
) -> RunRecord {
    RunRecord {
        step: step.into(),
        started_at: started,
        finished_at: finished,
        outcome: outcome.into(),
        rows_uploaded: c.audience.uploaded,
        batches: c.audience.batches,
        detail,
    }
}

fn new_campaign(
    drop: &ObjectRef,
    path: &DropPath,
    m: &Manifest,
    account: Option<crate::ids::AccountId>,
    now: jiff::Timestamp,
) -> Campaign {
    let mut c = Campaign::received(path.campaign_id.clone(), &path.run_date, drop.clone(), now);
    c.esp = Some(m.esp);
    c.account = account;
    c.template_id = m.template_id.clone();
    c.send_at = Some(m.send_at);
    c.timezone = m.timezone.clone();
    c.manifest = serde_json::to_value(m).unwrap_or(serde_json::Value::Null);
    c.variants = m
        .variants
        .iter()
        .map(|v| VariantState {
            name: v.name.clone(),
            template_id: v.template_id.clone(),
            share: v.share,
            assigned: 0,
            not_in_esp: 0,
            esp_rejected: 0,
            esp_ids: EspIds::default(),
        })
        .collect();
    c.control = m.control_group.as_ref().map(|g| ControlState {
        holdout_share: g.holdout_share,
        file: g.file.clone(),
        file_ids: 0,
    });
    c
}

/// The record of a drop whose manifest was refused: what could be read of it is kept.
fn rejected_campaign(
    drop: &ObjectRef,
    path: &DropPath,
    bytes: &[u8],
    now: jiff::Timestamp,
) -> Campaign {
    let raw: serde_json::Value = serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null);
    let mut c = Campaign::received(path.campaign_id.clone(), &path.run_date, drop.clone(), now);
    c.esp = raw
        .get("esp")
        .and_then(|v| v.as_str())
        .and_then(|s| crate::ids::EspKind::parse(s).ok());
    c.template_id = raw
        .get("template_id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    c.manifest = raw;
    c
}
