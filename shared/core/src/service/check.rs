//! The check of a drop before it is dropped (`espbridge check`): would it go through?
//!
//! It runs the code a real drop meets, in the same order, and stops at nothing: the manifest
//! ([`manifest::parse`] and the intake's account checks), every audience file (the validation
//! pass's scan and its reject counting), the templates at the ESP (the account's own listing,
//! as `GET /templates` and the upload use it), the send window (the intake's, then the time
//! schedule-send needs before the send) and the upload's time at the account's configured pace
//! ([`Esp::upload_pace`]) against the time left before the send.
//!
//! Nothing is written: no record, no rejects report, nothing at the ESP
//! (the only ESP call is the template listing). The report names files, lines, reasons and
//! counts, never a cell of a file.

use super::accounts::EspRegistry;
use super::common::{ServiceError, chain};
use super::drop_files::{DropFiles, drop_prefix};
use super::intake::AccountCheck;
use super::upload::UploadSettings;
use super::validate::{count_reject, nothing_to_upload, too_many_rejects};
use crate::audience::read::{AudienceScan, Event, Flow, ScanMode};
use crate::campaign::{AudienceStats, Campaign, RejectSample};
use crate::clock::Clock;
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::manifest::{self, DropPath, Manifest};
use crate::ports::esp::UploadPace;
use crate::ports::source::SourceError;
use crate::ports::{AudienceSource, Esp, ObjectRef};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The check's use case and the ports it needs: the drop's source, the ESP accounts and the
/// clock, with the deployment's upload settings (limits, send lead, horizon).
#[derive(Clone)]
pub struct CheckService {
    pub source: Arc<dyn AudienceSource>,
    pub esps: EspRegistry,
    pub clock: Arc<dyn Clock>,
    pub settings: UploadSettings,
}

/// What the check lets pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// A stricter cap on rejected rows than the real run's: more than this many is a no-go.
    /// `None`: the real run's rules only (rejected rows are skipped and reported; the drop
    /// fails only past the drop's rejects cap or with no valid row).
    pub max_rejects: Option<u64>,
}

/// Which check a no-go reason comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Manifest,
    Audience,
    Templates,
    SendWindow,
    UploadTime,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Manifest => "manifest",
            CheckKind::Audience => "audience",
            CheckKind::Templates => "templates",
            CheckKind::SendWindow => "send_window",
            CheckKind::UploadTime => "upload_time",
        }
    }
}

/// One reason the drop would not go through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoGo {
    pub check: CheckKind,
    pub reason: String,
}

/// One problem of the manifest: the file, the field (a JSON pointer, or `(document)`) and
/// the problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestProblem {
    pub file: String,
    pub field: String,
    pub problem: String,
}

/// The manifest's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestCheck {
    pub ok: bool,
    pub problems: Vec<ManifestProblem>,
}

/// One audience file's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileCheck {
    pub file: String,
    pub rows: u64,
    pub valid: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
}

/// The audience files, as the upload's validation reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AudienceCheck {
    pub files: Vec<FileCheck>,
    pub rows: u64,
    pub valid: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The first rejected rows (file, line, reason; never their content).
    pub reject_samples: Vec<RejectSample>,
    /// Distinct customer ids of the control-group file, when the manifest names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_file_ids: Option<u64>,
    /// What stopped the pass before the end (a file that cannot be read as an audience).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One template the campaign sends (its own, or a variant's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateCheck {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub template_id: String,
    /// Listed by the account under its ESP's rules (`GET /templates`).
    pub eligible: bool,
    /// Its display name at the ESP, when listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The send time against the clock and the account's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendWindowCheck {
    pub send_at: Timestamp,
    pub now: Timestamp,
    /// How long before the send the audience must be up (schedule-send's time).
    pub lead_secs: u64,
    /// How late a drop may be and still send at once (the account's `send_grace_mins`).
    pub grace_secs: u64,
    /// Time from now to `send_at` less the lead: what the upload has.
    pub time_left_secs: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The upload's time at the account's configured pace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadEstimate {
    /// Valid rows to upload (held-out customers included: an upper bound).
    pub rows: u64,
    pub calls: u64,
    pub pace: UploadPace,
    pub estimate_secs: u64,
    pub time_left_secs: i64,
    pub fits: bool,
}

/// Everything the check found, and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub manifest_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esp: Option<EspKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// `true`: the drop would go through.
    pub go: bool,
    /// Why not, when it would not.
    pub reasons: Vec<NoGo>,
    pub manifest: ManifestCheck,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<AudienceCheck>,
    /// Every template the campaign sends; empty when no account could be chosen.
    pub templates: Vec<TemplateCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_window: Option<SendWindowCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadEstimate>,
}

/// Why the drop could not be judged: something the check reads could not be reached for now
/// (the drop's files, the ESP). Nothing about the drop itself is known from it.
#[derive(Debug, thiserror::Error)]
#[error("the drop could not be checked")]
pub struct CheckError(#[source] pub ServiceError);

impl CheckReport {
    fn new(manifest_file: &str) -> Self {
        Self {
            manifest_file: manifest_file.to_owned(),
            campaign_id: None,
            esp: None,
            account: None,
            go: false,
            reasons: Vec::new(),
            manifest: ManifestCheck {
                ok: false,
                problems: Vec::new(),
            },
            audience: None,
            templates: Vec::new(),
            send_window: None,
            upload: None,
        }
    }

    fn no_go(&mut self, check: CheckKind, reason: impl Into<String>) {
        self.reasons.push(NoGo {
            check,
            reason: crate::text::reason(&reason.into()),
        });
    }

    fn manifest_problem(&mut self, field: &str, problem: &str) {
        let p = ManifestProblem {
            file: self.manifest_file.clone(),
            field: crate::text::bounded(field, 64),
            problem: crate::text::reason(problem),
        };
        self.no_go(
            CheckKind::Manifest,
            format!("{}: {}: {}", p.file, p.field, p.problem),
        );
        self.manifest.problems.push(p);
    }
}

/// A retryable error means the drop could not be judged; any other is a verdict on it.
fn judged(e: ServiceError) -> Result<String, CheckError> {
    if e.is_retryable() {
        Err(CheckError(e))
    } else {
        Ok(chain(&e))
    }
}

impl CheckService {
    /// Checks the drop whose manifest is `manifest_key` in `bucket`
    /// (`campaigns/<run date>/<campaign id>/manifest.json`).
    pub async fn check(
        &self,
        bucket: &str,
        manifest_key: &str,
        opts: CheckOptions,
    ) -> Result<CheckReport, CheckError> {
        let mut report = CheckReport::new(manifest_key);
        let Some(m) = self.manifest(bucket, manifest_key, &mut report).await? else {
            return Ok(report);
        };
        let now = self.clock.now();
        let accounts = AccountCheck {
            esps: &self.esps,
            now,
            send_horizon: self.settings.send_horizon,
        };
        // The intake's checks stop at the first problem; one of the send time is reported
        // with the send window.
        let mut window_refused = None;
        match accounts.manifest(m.clone()) {
            Ok(_) => {}
            Err(r) if r.field == "/send_at" => window_refused = Some(r.problem),
            Err(r) => report.manifest_problem(&r.field, &r.problem),
        }
        report.manifest.ok = report.manifest.problems.is_empty();
        report.esp = Some(m.esp);
        let esp = self
            .esps
            .choose(m.esp, m.account.as_ref(), m.template_name.as_deref())
            .ok();
        report.account = esp.as_ref().map(|e| e.account().clone());

        let drop = ObjectRef {
            bucket: bucket.to_owned(),
            key: manifest_key.to_owned(),
            etag: String::new(),
        };
        let a = self.audience(&drop, &m, opts, &mut report).await?;
        if let Some(esp) = &esp {
            self.templates(esp.as_ref(), &m, &mut report).await?;
        }
        let window = self.send_window(esp.as_deref(), &m, now, window_refused, &accounts);
        if let Some(problem) = &window.problem {
            report.no_go(CheckKind::SendWindow, format!("send_at: {problem}"));
        }
        if let Some(esp) = &esp
            && a.valid > 0
        {
            let pace = esp.upload_pace(&m.esp_options());
            let estimate = pace.estimate(a.valid);
            let fits =
                i64::try_from(estimate.as_secs()).unwrap_or(i64::MAX) <= window.time_left_secs;
            if !fits && window.problem.is_none() {
                report.no_go(
                    CheckKind::UploadTime,
                    format!(
                        "the audience would not be up in time: {} valid rows take about {} at the \
                         account's pace ({} calls), {} are left before the send time less {} min",
                        a.valid,
                        human_secs(estimate.as_secs()),
                        pace.calls(a.valid),
                        human_secs(window.time_left_secs.max(0).unsigned_abs()),
                        window.lead_secs / 60
                    ),
                );
            }
            report.upload = Some(UploadEstimate {
                rows: a.valid,
                calls: pace.calls(a.valid),
                pace,
                estimate_secs: estimate.as_secs(),
                time_left_secs: window.time_left_secs,
                fits,
            });
        }
        report.send_window = Some(window);
        report.audience = Some(a);
        report.go = report.reasons.is_empty();
        Ok(report)
    }

    /// The manifest, parsed and checked against the schema and the drop's folder; `None`
    /// (with the problems in the report) when there is none to go on with.
    async fn manifest(
        &self,
        bucket: &str,
        key: &str,
        report: &mut CheckReport,
    ) -> Result<Option<Manifest>, CheckError> {
        let path = match DropPath::parse(key) {
            Ok(Some(p)) => p,
            Ok(None) => {
                report.manifest_problem(
                    "(key)",
                    "not a manifest of the drop layout (campaigns/<run date>/<campaign id>/manifest.json)",
                );
                return Ok(None);
            }
            Err(e) => {
                report.manifest_problem(&e.field, &e.reason);
                return Ok(None);
            }
        };
        report.campaign_id = Some(path.campaign_id.clone());
        let bytes = match self.source.read_small(bucket, key).await {
            Ok((bytes, _)) => bytes,
            Err(SourceError::TooLarge { limit, .. }) => {
                report.manifest_problem(
                    "(document)",
                    &format!("larger than {limit} bytes (a manifest is a few kilobytes)"),
                );
                return Ok(None);
            }
            Err(SourceError::NotFound { .. }) => {
                report.manifest_problem("(document)", "no such file");
                return Ok(None);
            }
            Err(SourceError::NotAFile { reason, .. }) => {
                report.manifest_problem("(document)", reason);
                return Ok(None);
            }
            Err(e) => {
                let reason = judged(e.into())?;
                report.manifest_problem("(document)", &reason);
                return Ok(None);
            }
        };
        match manifest::parse(&bytes, key, &path) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                for f in &e.errors {
                    report.manifest_problem(&f.field, &f.reason);
                }
                Ok(None)
            }
        }
    }

    /// Every audience file through the upload's scan and reject counting, in one go
    /// and writing nothing.
    async fn audience(
        &self,
        drop: &ObjectRef,
        m: &Manifest,
        opts: CheckOptions,
        report: &mut CheckReport,
    ) -> Result<AudienceCheck, CheckError> {
        let prefix = drop_prefix(&drop.key);
        let mut out = AudienceCheck {
            files: m
                .audience
                .files
                .iter()
                .map(|f| FileCheck {
                    file: crate::text::bounded(f, 256),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        match self.scan(drop, &prefix, m, &mut out).await {
            Ok(None) => {}
            Ok(Some(stopped)) => out.error = Some(stopped),
            Err(e) => out.error = Some(judged(e)?),
        }
        if let Some(e) = &out.error {
            report.no_go(CheckKind::Audience, e.clone());
        } else {
            let stats = AudienceStats {
                rows: out.rows,
                valid: out.valid,
                ..Default::default()
            };
            if let Some(reason) = nothing_to_upload(&stats, "the samples") {
                report.no_go(CheckKind::Audience, reason);
            } else if let Some(max) = opts.max_rejects
                && out.rejected > max
            {
                let by_reason: Vec<String> = out
                    .rejected_by_reason
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect();
                report.no_go(
                    CheckKind::Audience,
                    format!(
                        "{} of {} rows would be rejected ({}), more than --max-rejects {max}",
                        out.rejected,
                        out.rows,
                        by_reason.join(", ")
                    ),
                );
            }
        }
        Ok(out)
    }

    /// The pass itself: the control-group file, the line count, the scan. `Some(reason)` when
    /// it stopped at the rejects cap.
    async fn scan(
        &self,
        drop: &ObjectRef,
        prefix: &str,
        m: &Manifest,
        out: &mut AudienceCheck,
    ) -> Result<Option<String>, ServiceError> {
        let limits = self.settings.audience_limits;
        let files = DropFiles {
            source: self.source.as_ref(),
            limits,
        };
        if let Some(file) = m.control_group.as_ref().and_then(|g| g.file.as_deref()) {
            // Only the drop's bucket and key are read from the record.
            let c = Campaign::received(m.campaign_id.clone(), "", drop.clone(), self.clock.now());
            let ids = files
                .control_ids(&c, file, &m.audience.columns.customer_id)
                .await?;
            out.control_file_ids = Some(ids.len() as u64);
        }
        let mut scan = AudienceScan::new(
            self.source.as_ref(),
            &drop.bucket,
            prefix,
            &m.audience.files,
            &m.audience.columns,
            ScanMode::Validate,
            Vec::new(),
        )
        .with_limits(limits);
        let mut stats = AudienceStats::default();
        let mut capped = false;
        let sample_cap = self.settings.reject_samples;
        let per_file = &mut out.files;
        let names = &m.audience.files;
        let mut visit = |ev: Event<'_>| {
            match ev {
                Event::Row(r) => {
                    let file_index = r.file_index;
                    if let Some(f) = per_file.get_mut(file_index) {
                        f.rows += 1;
                        f.valid += 1;
                    }
                }
                Event::Reject {
                    file_index,
                    line,
                    reason,
                } => {
                    let name = names.get(file_index).map_or("", String::as_str);
                    if !count_reject(
                        &mut stats,
                        name,
                        line,
                        &reason,
                        limits.max_rejects,
                        sample_cap,
                    ) {
                        capped = true;
                        return Flow::Pause;
                    }
                    if let Some(f) = per_file.get_mut(file_index) {
                        f.rows += 1;
                        f.rejected += 1;
                        *f.rejected_by_reason
                            .entry(reason.key().to_owned())
                            .or_default() += 1;
                    }
                }
            }
            Flow::Continue
        };
        let result = scan.run(&mut visit).await;
        out.rows = scan.rows();
        out.valid = scan.valid();
        out.rejected = stats.rejected;
        out.rejected_by_reason = stats.rejected_by_reason;
        out.reject_samples = stats.reject_samples;
        result?;
        Ok(capped.then(|| too_many_rejects(limits.max_rejects, "the samples")))
    }

    /// Every template the campaign sends, against the account's listing.
    async fn templates(
        &self,
        esp: &dyn Esp,
        m: &Manifest,
        report: &mut CheckReport,
    ) -> Result<(), CheckError> {
        let wanted = std::iter::once((None, &m.template_id)).chain(
            m.variants
                .iter()
                .map(|v| (Some(v.name.clone()), &v.template_id)),
        );
        let listed = match esp.list_templates().await {
            Ok(t) => t,
            Err(e) => {
                let reason = judged(e.into())?;
                report.no_go(
                    CheckKind::Templates,
                    format!(
                        "the {} account's templates cannot be listed: {reason}",
                        esp.kind()
                    ),
                );
                return Ok(());
            }
        };
        for (variant, id) in wanted {
            let found = listed.iter().find(|t| &t.id == id);
            let check = TemplateCheck {
                variant,
                template_id: crate::text::bounded(id, 128),
                eligible: found.is_some(),
                name: found.map(|t| crate::text::bounded(&t.display_name, 256)),
            };
            if !check.eligible {
                report.no_go(
                    CheckKind::Templates,
                    format!(
                        "template {:?}{} is not among the {} account {}'s eligible templates \
                         (see GET /templates)",
                        check.template_id,
                        check
                            .variant
                            .as_deref()
                            .map(|v| format!(" (variant {v})"))
                            .unwrap_or_default(),
                        esp.kind(),
                        esp.account()
                    ),
                );
            }
            report.templates.push(check);
        }
        Ok(())
    }

    /// The send time: the intake's window (the account's grace, the horizon), then the time
    /// schedule-send needs before it (`send_lead`, the upload's `send_at - 5 min`).
    fn send_window(
        &self,
        esp: Option<&dyn Esp>,
        m: &Manifest,
        now: Timestamp,
        refused: Option<String>,
        accounts: &AccountCheck<'_>,
    ) -> SendWindowCheck {
        let policy = esp
            .map(|e| self.esps.policy(e.kind(), e.account()))
            .unwrap_or_default();
        let lead = SignedDuration::try_from(self.settings.send_lead).unwrap_or_default();
        let time_left = m.send_at.duration_since(now) - lead;
        let problem = refused
            .or_else(|| accounts.send_window(m.send_at, policy.grace).err())
            .or_else(|| {
                if m.send_at <= now {
                    Some(format!(
                        "{} has passed (it is {now}): the send would go out late, or not at all",
                        m.send_at
                    ))
                } else if time_left.is_negative() || time_left.is_zero() {
                    Some(format!(
                        "{} is {} away: the audience must be up {} min before the send",
                        m.send_at,
                        human_secs(m.send_at.duration_since(now).as_secs().unsigned_abs()),
                        lead.as_mins()
                    ))
                } else {
                    None
                }
            });
        SendWindowCheck {
            send_at: m.send_at,
            now,
            lead_secs: lead.as_secs().unsigned_abs(),
            grace_secs: policy.grace.as_secs(),
            time_left_secs: time_left.as_secs(),
            problem,
        }
    }
}

/// `1 h 05 min`, `3 min 20 s`, `45 s`.
pub fn human_secs(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}
