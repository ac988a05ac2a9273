//! The validation pass (a campaign's first upload invocations): every row is checked, the
//! rejected ones go to `<drop>/rejects.csv` (by file, line and reason, never content) and to
//! counts in the record, and the file versions are pinned for every later pass. A campaign with
//! no usable row fails here; otherwise it becomes `uploading`.
//!
//! Like the upload, the pass honours the invocation's deadline: near it, it decides the rows in
//! flight, writes its duplicate table to `<drop>/validation.state` and its rejects so far to the
//! report, records where it stopped ([`ValidationCheckpoint`]) and queues a continuation, which
//! goes on from that line with that table.

use super::common::{Deadline, ServiceError, per_account, stored_manifest};
use super::drop_files::drop_prefix;
use super::upload::UploadService;
use crate::audience::read::{AudienceScan, Event, Flow, IdSet, ScanEnd, ScanMode, count_lines};
use crate::audience::rows::RejectReason;
use crate::campaign::{AudienceStats, Campaign, RejectSample, State, ValidationCheckpoint};
use crate::ports::metrics::name;
use crate::ports::{Measurement, WorkItem};
use std::io::Write;

/// Name of the rejects report written into the drop folder.
pub const REJECTS_FILE: &str = "rejects.csv";
/// The duplicate table of an unfinished validation pass, beside the drop.
pub const STATE_FILE: &str = "validation.state";
/// Invocations a validation pass may take: each one reads until its deadline, so a pass that
/// needs more is not making progress.
const MAX_VALIDATION_RUNS: u32 = 12;

/// How a validation invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validation {
    /// The pass is done (the campaign is `uploading`, or `failed` with the reason).
    Done,
    /// It stopped near the deadline; a continuation is queued.
    Continued,
}

/// Counts one rejected row in `stats`: by reason, and as a sample while fewer than
/// `sample_cap` are kept (where and why, never the row's content). Counts nothing and answers
/// `false` once the drop has `max_rejects`: the pass stops there. The check of a drop
/// ([`check`](super::check)) counts its rejects with it too.
pub(crate) fn count_reject(
    stats: &mut AudienceStats,
    file: &str,
    line: u64,
    reason: &RejectReason,
    max_rejects: u64,
    sample_cap: usize,
) -> bool {
    if stats.rejected >= max_rejects {
        return false;
    }
    stats.rejected += 1;
    *stats
        .rejected_by_reason
        .entry(reason.key().to_owned())
        .or_default() += 1;
    if stats.reject_samples.len() < sample_cap {
        stats.reject_samples.push(RejectSample {
            file: crate::text::bounded(file, 256),
            line,
            reason: reason.to_string(),
        });
    }
    true
}

/// Why a pass stopped at the rejects cap; `listed_in` says where the first ones are.
pub(crate) fn too_many_rejects(max_rejects: u64, listed_in: &str) -> String {
    format!(
        "more than {max_rejects} rows rejected: is this the file the manifest describes? \
         (the first ones are in {listed_in})"
    )
}

/// Why a finished pass leaves nothing to upload, if it does; `listed_in` says where the
/// rejected rows are listed.
pub(crate) fn nothing_to_upload(stats: &AudienceStats, listed_in: &str) -> Option<String> {
    if stats.rows == 0 {
        Some("no data rows: the audience files hold a header only".to_owned())
    } else if stats.valid == 0 {
        Some(format!(
            "no valid rows: all {} rows rejected (see {listed_in})",
            stats.rows
        ))
    } else {
        None
    }
}

impl UploadService {
    /// One invocation of the validation pass: counts, rejects report, pinned versions; then
    /// `uploading` (or `failed` when no row is usable), or a checkpoint and a continuation.
    pub(crate) async fn validate(
        &self,
        c: &mut Campaign,
        deadline: Deadline,
    ) -> Result<Validation, ServiceError> {
        let m = stored_manifest(c)?;
        let prefix = drop_prefix(&c.drop.key);
        let limits = self.settings.audience_limits;
        let key = format!("{prefix}{REJECTS_FILE}");
        let state_key = format!("{prefix}{STATE_FILE}");
        let report_error = |problem: &str, e: std::io::Error| ServiceError::Report {
            key: key.clone(),
            problem: problem.to_owned(),
            source: Some(e),
        };
        let resume = c.audience.validation.clone();
        let report =
            tempfile::NamedTempFile::new().map_err(|e| report_error("no temporary file", e))?;
        let mut out = std::io::BufWriter::new(report.as_file());
        let mut scan = match &resume {
            None => {
                // The control-group file is read first: a missing one fails the campaign
                // before any audience work.
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
                let (lines, etags) = count_lines(
                    self.source.as_ref(),
                    &c.drop.bucket,
                    &prefix,
                    &m.audience.files,
                    &limits,
                )
                .await?;
                c.audience = Default::default();
                c.audience.file_etags = etags.clone();
                writeln!(out, "file,line,reason")
                    .map_err(|e| report_error("cannot be written", e))?;
                AudienceScan::new(
                    self.source.as_ref(),
                    &c.drop.bucket,
                    &prefix,
                    &m.audience.files,
                    &m.audience.columns,
                    ScanMode::Validate {
                        expected_rows: lines,
                    },
                    etags,
                )
            }
            Some(cp) => {
                if cp.runs >= MAX_VALIDATION_RUNS {
                    c.fail(
                        "audience",
                        format!(
                            "validation did not finish in {MAX_VALIDATION_RUNS} invocations (stopped at line {} of {})",
                            cp.line,
                            m.audience.files.get(cp.file_index).map_or("?", String::as_str)
                        ),
                        self.clock.now(),
                    );
                    *c = self.store.save(c).await?;
                    return Ok(Validation::Done);
                }
                let ids = self.read_state(&c.drop.bucket, &state_key).await?;
                // The rejects so far, to go on appending.
                let earlier = if c.audience.rejected > 0 {
                    self.drop_files().read_whole(&c.drop.bucket, &key).await?
                } else {
                    b"file,line,reason\n".to_vec()
                };
                out.write_all(&earlier)
                    .map_err(|e| report_error("cannot be written", e))?;
                tracing::info!(campaign_id = %c.id, file = cp.file_index, line = cp.line, "validation resumed");
                AudienceScan::new(
                    self.source.as_ref(),
                    &c.drop.bucket,
                    &prefix,
                    &m.audience.files,
                    &m.audience.columns,
                    ScanMode::Validate { expected_rows: 0 },
                    c.audience.file_etags.clone(),
                )
                .resume_after(cp.file_index, cp.line, ids)
            }
        }
        .with_limits(limits);

        let mut io_error: Option<std::io::Error> = None;
        let stats = &mut c.audience;
        let sample_cap = self.settings.reject_samples;
        let files = m.audience.files.clone();
        // Why the pass stopped before the end for good, if it did.
        // Set by the visitor while the scan holds it, read after (shared, and Send: the future
        // runs on any worker thread).
        let failed: std::sync::Mutex<Option<String>> = Default::default();
        let out_of_time = std::sync::atomic::AtomicBool::new(false);
        let mut events = 0u64;
        let stop_margin = self.settings.stop_margin;
        let slice_rows = self.settings.validation_slice_rows;
        let mut visit = |ev: Event<'_>| {
            if let Event::Reject {
                file_index,
                line,
                reason,
            } = ev
            {
                let file = files.get(file_index).cloned().unwrap_or_default();
                if !count_reject(stats, &file, line, &reason, limits.max_rejects, sample_cap) {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(too_many_rejects(limits.max_rejects, &key));
                    return Flow::Pause;
                }
                if let Err(e) = writeln!(out, "{file},{line},\"{reason}\"") {
                    io_error.get_or_insert(e);
                }
            }
            events += 1;
            // The invocation's time, checked every 64 Ki rows (the clock is not free), after
            // the row is recorded: the checkpoint says every row up to here is done.
            let slice_done = slice_rows.is_some_and(|n| events >= n);
            if slice_done || (events.is_multiple_of(65_536) && deadline.remaining() < stop_margin) {
                out_of_time.store(true, std::sync::atomic::Ordering::Relaxed);
                return Flow::Pause;
            }
            Flow::Continue
        };
        let end = scan.run(&mut visit).await?;
        let stopped_for_time = end == ScanEnd::Paused
            && out_of_time.load(std::sync::atomic::Ordering::Relaxed)
            && failed.lock().map_or(true, |f| f.is_none());
        if stopped_for_time {
            // Rows in the duplicate pipeline are decided now, so the checkpoint is exact.
            scan.flush(&mut visit);
        }
        let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
        stats.rows += scan.rows();
        stats.valid += scan.valid();
        if let Some(e) = io_error {
            return Err(report_error("cannot be written", e));
        }
        out.flush()
            .map_err(|e| report_error("cannot be written", e))?;
        drop(out);
        if stats.rejected > 0 {
            self.source
                .put_file(&c.drop.bucket, &key, report.path())
                .await?;
            stats.rejects_key = Some(key.clone());
        }
        let now = self.clock.now();
        if stopped_for_time {
            let (file_index, line) = scan.position();
            if let Some(ids) = scan.duplicate_table() {
                self.write_state(&c.drop.bucket, &state_key, ids).await?;
            }
            let runs = resume.map_or(0, |r| r.runs) + 1;
            c.audience.validation = Some(ValidationCheckpoint {
                file_index,
                line,
                runs,
            });
            c.updated_at = now;
            *c = self.store.save(c).await?;
            self.queue
                .enqueue(&WorkItem::ContinueUpload {
                    campaign_id: c.id.clone(),
                })
                .await?;
            tracing::info!(campaign_id = %c.id, rows = c.audience.rows, file = file_index, line,
                "validation continues in a new invocation");
            return Ok(Validation::Continued);
        }
        let stats = &mut c.audience;
        stats.validation = None;
        tracing::info!(campaign_id = %c.id, rows = stats.rows, valid = stats.valid, rejected = stats.rejected, "audience validated");
        if let Some(o) = &self.settings.observer {
            o.validated(&c.id, stats.rows, stats.valid);
        }
        if let Some(reason) = failed {
            c.fail("audience", reason, now);
        } else if end == ScanEnd::Paused {
            c.fail("audience", "validation stopped early", now);
        } else if let Some(reason) =
            nothing_to_upload(stats, stats.rejects_key.as_deref().unwrap_or("the record"))
        {
            c.fail("audience", reason, now);
        } else {
            c.transition(State::Uploading, now)?;
        }
        *c = self.store.save(c).await?;
        self.metrics.record(&[per_account(
            Measurement::count(name::ROWS_REJECTED, c.audience.rejected),
            c,
        )]);
        Ok(Validation::Done)
    }

    /// Writes the duplicate table beside the drop (through a temporary file: it may be large).
    async fn write_state(&self, bucket: &str, key: &str, ids: &IdSet) -> Result<(), ServiceError> {
        let io = |problem: &str, e: std::io::Error| ServiceError::Report {
            key: key.to_owned(),
            problem: problem.to_owned(),
            source: Some(e),
        };
        let file = tempfile::NamedTempFile::new().map_err(|e| io("no temporary file", e))?;
        let mut w = std::io::BufWriter::new(file.as_file());
        ids.write_to(&mut w)
            .map_err(|e| io("cannot be written", e))?;
        w.flush().map_err(|e| io("cannot be written", e))?;
        drop(w);
        self.source.put_file(bucket, key, file.path()).await?;
        Ok(())
    }

    async fn read_state(&self, bucket: &str, key: &str) -> Result<IdSet, ServiceError> {
        let bytes = self.drop_files().read_whole(bucket, key).await?;
        IdSet::from_bytes(&bytes).ok_or_else(|| ServiceError::Report {
            key: key.to_owned(),
            problem: "is not a duplicate table".to_owned(),
            source: None,
        })
    }
}
