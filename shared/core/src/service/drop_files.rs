//! Reading a campaign's drop beyond the upload's pass: its valid rows once validated (the
//! rejected lines skipped, the file versions pinned: conversions attribution), its assignment
//! rule and its control-group file (upload and conversions alike, so both route every customer
//! the same way).

use super::common::ServiceError;
use crate::audience::assign::Assigner;
use crate::audience::read::{AudienceLimits, AudienceScan, Event, Flow, RejectedLines, ScanMode};
use crate::campaign::Campaign;
use crate::manifest::{self, Columns, Manifest};
use crate::ports::AudienceSource;
use std::collections::HashSet;
use tokio::io::AsyncReadExt;

/// The folder of a drop (`campaigns/<run date>/<campaign id>/`), from its manifest's key.
pub(crate) fn drop_prefix(manifest_key: &str) -> String {
    manifest_key
        .strip_suffix(manifest::MANIFEST_FILE)
        .unwrap_or(manifest_key)
        .to_owned()
}

/// A campaign's drop, read through the source.
pub(crate) struct DropFiles<'a> {
    pub source: &'a dyn AudienceSource,
    pub limits: AudienceLimits,
}

impl<'a> DropFiles<'a> {
    /// A scan of the campaign's valid rows after its upload (the lines its validation rejected
    /// are skipped, the file versions it saw are pinned).
    pub async fn valid_rows(
        &self,
        c: &Campaign,
        m: &Manifest,
        prefix: &str,
    ) -> Result<AudienceScan<'a>, ServiceError> {
        let rejected = self.rejected_lines(c, &m.audience.files).await?;
        Ok(AudienceScan::new(
            self.source,
            &c.drop.bucket,
            prefix,
            &m.audience.files,
            &m.audience.columns,
            ScanMode::Reread { rejected },
            c.audience.file_etags.clone(),
        )
        .with_limits(self.limits))
    }

    /// The campaign's assignment rule, with the control-group file's ids when there is one.
    pub async fn assigner(&self, c: &Campaign, m: &Manifest) -> Result<Assigner, ServiceError> {
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
    /// audience's name), as [`Assigner::control_key`]s. Rows that are not valid are skipped.
    pub async fn control_ids(
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
            self.source,
            &c.drop.bucket,
            &prefix,
            &files,
            &columns,
            ScanMode::Validate,
            Vec::new(),
        )
        .with_limits(self.limits);
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

    /// A file espbridge wrote beside the drop (the rejects report), whole.
    pub async fn read_whole(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ServiceError> {
        let (mut stream, _) = self.source.open(bucket, key, None).await?;
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| ServiceError::Report {
                key: key.to_owned(),
                problem: "cannot be read".to_owned(),
                source: Some(e),
            })?;
        Ok(bytes)
    }

    /// The lines the validation rejected, from its report.
    pub async fn rejected_lines(
        &self,
        c: &Campaign,
        files: &[String],
    ) -> Result<RejectedLines, ServiceError> {
        let Some(key) = c.audience.rejects_key.as_deref() else {
            return Ok(RejectedLines::default());
        };
        let report_error = |problem: String, source: Option<std::io::Error>| ServiceError::Report {
            key: key.to_owned(),
            problem,
            source,
        };
        let report = self.read_whole(&c.drop.bucket, key).await?;
        let lines =
            RejectedLines::from_report(&report, files).map_err(|e| report_error(e, None))?;
        if lines.total() != c.audience.rejected {
            return Err(report_error(
                format!(
                    "lists {} rows, the record {}",
                    lines.total(),
                    c.audience.rejected
                ),
                None,
            ));
        }
        Ok(lines)
    }
}
