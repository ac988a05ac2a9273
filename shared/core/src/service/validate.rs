//! Validation, inside the upload's one pass over a drop: every row is checked as it is read
//! (a [`ScanMode::Validate`](crate::audience::read::ScanMode::Validate) scan), the first occurrence
//! of each valid customer id goes to the ESP, and each rejected row goes to `<drop>/rejects.csv`
//! (by file, line and reason, never content) and to counts in the record. The report is written
//! once the pass ends (or stops at the rejects cap); an invocation that stops before rebuilds
//! nothing from storage: the next one reads the files again from the first line, decides every
//! row again (same pinned file versions, same decisions) and sends only those after the upload
//! checkpoint.

use super::common::ServiceError;
use crate::audience::read::Flow;
use crate::audience::rows::RejectReason;
use crate::campaign::{AudienceStats, RejectSample};
use crate::ports::AudienceSource;
use std::io::Write;

/// Name of the rejects report written into the drop folder.
pub const REJECTS_FILE: &str = "rejects.csv";

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

/// The rejects of one pass: their counts (the record's `rejected`, by reason, samples) and the
/// report, in a temporary file until the pass ends.
pub(crate) struct RejectsReport {
    /// The report's key beside the drop.
    key: String,
    files: Vec<String>,
    max_rejects: u64,
    sample_cap: usize,
    /// Only the reject fields are used.
    pub counts: AudienceStats,
    out: std::io::BufWriter<tempfile::NamedTempFile>,
    io_error: Option<std::io::Error>,
    /// Why the pass must stop for good (the rejects cap), once it must.
    pub failed: Option<String>,
}

impl RejectsReport {
    pub fn new(
        key: String,
        files: &[String],
        max_rejects: u64,
        sample_cap: usize,
    ) -> Result<Self, ServiceError> {
        let report_error = |problem: &str, e| ServiceError::Report {
            key: key.clone(),
            problem: problem.to_owned(),
            source: Some(e),
        };
        let file =
            tempfile::NamedTempFile::new().map_err(|e| report_error("no temporary file", e))?;
        let mut out = std::io::BufWriter::new(file);
        writeln!(out, "file,line,reason").map_err(|e| report_error("cannot be written", e))?;
        Ok(Self {
            key,
            files: files.to_vec(),
            max_rejects,
            sample_cap,
            counts: AudienceStats::default(),
            out,
            io_error: None,
            failed: None,
        })
    }

    /// Records a rejected row; `Pause` once the drop has more than `max_rejects` (the pass
    /// stops there and the campaign fails).
    pub fn reject(&mut self, file_index: usize, line: u64, reason: &RejectReason) -> Flow {
        let file = self.files.get(file_index).map_or("", String::as_str);
        if !count_reject(
            &mut self.counts,
            file,
            line,
            reason,
            self.max_rejects,
            self.sample_cap,
        ) {
            self.failed = Some(too_many_rejects(self.max_rejects, &self.key));
            return Flow::Pause;
        }
        if let Err(e) = writeln!(self.out, "{file},{line},\"{reason}\"") {
            self.io_error.get_or_insert(e);
        }
        Flow::Continue
    }

    /// Copies the counts so far into the record's.
    pub fn count_into(&self, stats: &mut AudienceStats) {
        stats.rejected = self.counts.rejected;
        stats.rejected_by_reason = self.counts.rejected_by_reason.clone();
        stats.reject_samples = self.counts.reject_samples.clone();
    }

    /// Writes the report beside the drop when a row was rejected, and records where it is.
    pub async fn finish(
        self,
        source: &dyn AudienceSource,
        bucket: &str,
        stats: &mut AudienceStats,
    ) -> Result<(), ServiceError> {
        self.count_into(stats);
        let report_error = |e| ServiceError::Report {
            key: self.key.clone(),
            problem: "cannot be written".to_owned(),
            source: Some(e),
        };
        if let Some(e) = self.io_error {
            return Err(report_error(e));
        }
        if self.counts.rejected == 0 {
            stats.rejects_key = None;
            return Ok(());
        }
        let file = self
            .out
            .into_inner()
            .map_err(|e| report_error(e.into_error()))?;
        source.put_file(bucket, &self.key, file.path()).await?;
        stats.rejects_key = Some(self.key);
        Ok(())
    }
}
