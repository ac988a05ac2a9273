//! The validation pass (a campaign's first upload invocation): every row is checked, the
//! rejected ones go to `<drop>/rejects.csv` (by file, line and reason, never content) and to
//! counts in the record, and the file versions are pinned for every later pass. A campaign with
//! no usable row fails here; otherwise it becomes `uploading`.

use super::common::{Deadline, ServiceError, stored_manifest};
use super::drop_files::{DropFiles, drop_prefix};
use super::upload::UploadService;
use crate::audience::read::{AudienceScan, Event, Flow, ScanEnd, ScanMode, count_lines};
use crate::campaign::{Campaign, RejectSample, State};
use std::io::Write;

/// Name of the rejects report written into the drop folder.
pub const REJECTS_FILE: &str = "rejects.csv";

impl UploadService {
    /// The validation pass: counts, rejects report, pinned versions; then `uploading` (or
    /// `failed` when no row is usable).
    pub(crate) async fn validate(
        &self,
        c: &mut Campaign,
        deadline: Deadline,
    ) -> Result<(), ServiceError> {
        let m = stored_manifest(c)?;
        let prefix = drop_prefix(&c.drop.key);
        let limits = self.settings.audience_limits;
        // The control-group file is read first: a missing one fails the campaign before any
        // audience work.
        if let Some(file) = m.control_group.as_ref().and_then(|g| g.file.as_deref()) {
            let files = DropFiles {
                source: self.source.as_ref(),
                limits,
            };
            let ids = files
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
        )
        .with_limits(limits);
        let key = format!("{prefix}{REJECTS_FILE}");
        let report_error = |problem: &str, e: std::io::Error| ServiceError::Report {
            key: key.clone(),
            problem: problem.to_owned(),
            source: Some(e),
        };
        let report =
            tempfile::NamedTempFile::new().map_err(|e| report_error("no temporary file", e))?;
        let mut out = std::io::BufWriter::new(report.as_file());
        let mut io_error: Option<std::io::Error> = None;
        let _ = writeln!(out, "file,line,reason");
        let stats = &mut c.audience;
        *stats = Default::default();
        let sample_cap = self.settings.reject_samples;
        let files = m.audience.files.clone();
        // Why the pass stopped before the end, if it did.
        let mut stopped: Option<String> = None;
        let mut events = 0u64;
        let stop_margin = self.settings.stop_margin;
        let end = scan.run(&mut |ev| {
            events += 1;
            // The invocation's time: checked every 64 Ki rows (the clock is not free).
            if events.is_multiple_of(65_536) && deadline.remaining() < stop_margin {
                stopped = Some(format!(
                    "validation did not finish within the invocation's time ({events} rows read)"
                ));
                return Flow::Pause;
            }
            if let Event::Reject {
                file_index,
                line,
                reason,
            } = ev
            {
                if stats.rejected >= limits.max_rejects {
                    stopped = Some(format!(
                        "more than {} rows rejected: is this the file the manifest describes? \
                         (the first ones are in {key})",
                        limits.max_rejects
                    ));
                    return Flow::Pause;
                }
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
                        file: crate::text::bounded(&file, 256),
                        line,
                        reason: reason.to_string(),
                    });
                }
            }
            Flow::Continue
        })
        .await?;
        let stopped = if end == ScanEnd::Paused {
            stopped.or_else(|| Some("validation stopped early".to_owned()))
        } else {
            None
        };
        stats.rows = scan.rows();
        stats.valid = scan.valid();
        stats.file_etags = scan.etags().to_vec();
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
        tracing::info!(campaign_id = %c.id, rows = stats.rows, valid = stats.valid, rejected = stats.rejected, "audience validated");
        if let Some(o) = &self.settings.observer {
            o.validated(&c.id, stats.rows, stats.valid);
        }
        let now = self.clock.now();
        if let Some(reason) = stopped {
            c.fail("audience", reason, now);
        } else if stats.rows == 0 {
            c.fail(
                "audience",
                "no data rows: the audience files hold a header only",
                now,
            );
        } else if stats.valid == 0 {
            let reason = format!(
                "no valid rows: all {} rows rejected (see {})",
                stats.rows,
                stats.rejects_key.as_deref().unwrap_or("the record")
            );
            c.fail("audience", reason, now);
        } else {
            c.transition(State::Uploading, now)?;
        }
        *c = self.store.save(c).await?;
        Ok(())
    }
}
