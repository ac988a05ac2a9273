//! `espbridge check DROP_FOLDER`: would this drop go through? The manifest, every audience
//! file, the templates at the ESP, the send window and the upload's time under the account's
//! limits, by the domain's [`CheckService`]; nothing is uploaded, booked or written (the
//! folder is read through a read-only [`DropFolder`]).
//!
//! Exit codes: 0 the drop would go through; 1 it would not (the reasons are printed);
//! [`EXIT_UNCHECKED`] it could not be checked (a folder that cannot be read, a configuration
//! that cannot be loaded, an ESP that does not answer for now; clap's usage errors exit 2 too).

use crate::config;
use crate::stack::{sim_setup, start_simulators};
use anyhow::{Context, Result, anyhow, bail};
use espbridge_app::{AccountConfig, build_registry};
use espbridge_core::service::check::{CheckKind, CheckOptions, CheckReport, human_secs};
use espbridge_core::service::{CheckService, UploadSettings};
use espbridge_core::{Clock, SystemClock};
use espbridge_esp_kit::BuildContext;
use espbridge_local::DropFolder;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The exit code of a check that could not be made.
pub const EXIT_UNCHECKED: i32 = 2;

/// The bucket name the folder stands in for (only messages show it).
const BUCKET: &str = "check";

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The drop's folder: `manifest.json` and the audience files, named after the campaign id
    /// (inside `campaigns/<run date>/` or anywhere).
    pub drop_folder: PathBuf,
    /// TOML file with `[[accounts]]` (default: one simulator per supported ESP).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// A no-go when more than N rows would be rejected (default: the real run's rules only:
    /// rejected rows are skipped and reported, and the drop fails past its rejects cap).
    #[arg(long, value_name = "N")]
    pub max_rejects: Option<u64>,
}

pub async fn run(args: CheckArgs) -> Result<()> {
    let report = match check(&args).await {
        Ok(r) => r,
        Err(e) => {
            // Not a verdict on the drop: a distinct code, so a script can tell.
            eprintln!("error: {e:#}");
            std::process::exit(EXIT_UNCHECKED);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report));
    }
    if report.go {
        Ok(())
    } else {
        Err(anyhow!(
            "the drop would not go through ({} reason(s))",
            report.reasons.len()
        ))
    }
}

async fn check(args: &CheckArgs) -> Result<CheckReport> {
    let folder = std::fs::canonicalize(&args.drop_folder)
        .with_context(|| format!("reading drop folder {}", args.drop_folder.display()))?;
    if !folder.is_dir() {
        bail!("{} is not a folder", args.drop_folder.display());
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (campaign, run_date) = drop_names(&folder, clock.now());
    let source = DropFolder::new(&folder, &run_date, &campaign);
    let accounts: Option<Vec<AccountConfig>> = match &args.config {
        Some(p) => Some(config::load(p)?.accounts),
        None => None,
    };
    // Kept until the check is done: a simulator stops when dropped.
    let mut simulators = Vec::new();
    let accounts = match accounts {
        Some(a) => a,
        None => {
            simulators = start_simulators(&sim_setup(Arc::clone(&clock))).await?;
            simulators.iter().map(|s| s.entry.clone()).collect()
        }
    };
    let esps = build_registry(
        &accounts,
        None,
        &BuildContext::in_memory(Arc::clone(&clock)),
    )
    .await
    .context("building the ESP accounts")?;
    let service = CheckService {
        source: Arc::new(source.clone()),
        esps,
        clock,
        settings: UploadSettings::default(),
    };
    let report = service
        .check(
            BUCKET,
            &source.manifest_key(),
            CheckOptions {
                max_rejects: args.max_rejects,
            },
        )
        .await?;
    drop(simulators);
    Ok(report)
}

/// The campaign id (the folder's name) and the run date: the parent folder's name when it is
/// one (`campaigns/<run date>/<campaign id>/`), else today's (UTC).
fn drop_names(folder: &Path, now: jiff::Timestamp) -> (String, String) {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let campaign = name(Some(folder));
    let parent = name(folder.parent());
    let run_date = if jiff::civil::Date::strptime("%Y-%m-%d", &parent).is_ok() {
        parent
    } else {
        jiff::tz::TimeZone::UTC.to_datetime(now).date().to_string()
    };
    (campaign, run_date)
}

/// The report for a terminal: each check's findings, then the verdict and its reasons.
pub fn human(r: &CheckReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "check of {}", r.manifest_file);
    if let (Some(id), Some(esp)) = (&r.campaign_id, r.esp) {
        let account = r.account.as_ref().map_or("(none)", |a| a.as_str());
        let _ = writeln!(out, "  campaign   {id} on {esp} account {account}");
    }
    if r.manifest.ok {
        let _ = writeln!(out, "  manifest   ok");
    } else {
        let _ = writeln!(out, "  manifest   {} problem(s)", r.manifest.problems.len());
        for p in &r.manifest.problems {
            let _ = writeln!(out, "    {}: {}: {}", p.file, p.field, p.problem);
        }
    }
    if let Some(a) = &r.audience {
        let _ = writeln!(
            out,
            "  audience   {} file(s), {} rows: {} valid, {} rejected",
            a.files.len(),
            a.rows,
            a.valid,
            a.rejected
        );
        for f in &a.files {
            let _ = writeln!(
                out,
                "    {}: {} rows, {} valid, {} rejected{}",
                f.file,
                f.rows,
                f.valid,
                f.rejected,
                by_reason(&f.rejected_by_reason)
            );
        }
        if let Some(n) = a.control_file_ids {
            let _ = writeln!(out, "    control-group file: {n} customers");
        }
        for s in &a.reject_samples {
            let _ = writeln!(
                out,
                "    rejected: {} line {}: {}",
                s.file, s.line, s.reason
            );
        }
        if a.reject_samples.len() as u64 > 0 && (a.reject_samples.len() as u64) < a.rejected {
            let _ = writeln!(
                out,
                "    ... and {} more",
                a.rejected - a.reject_samples.len() as u64
            );
        }
        if let Some(e) = &a.error {
            let _ = writeln!(out, "    stopped: {e}");
        }
    }
    for t in &r.templates {
        let variant = t
            .variant
            .as_deref()
            .map(|v| format!(" (variant {v})"))
            .unwrap_or_default();
        let verdict = match (&t.name, t.eligible) {
            (Some(name), true) => format!("eligible ({name})"),
            (None, true) => "eligible".to_owned(),
            (_, false) => "NOT eligible".to_owned(),
        };
        let _ = writeln!(out, "  template   {}{variant}: {verdict}", t.template_id);
    }
    if let Some(w) = &r.send_window {
        let away = w.send_at.duration_since(w.now).as_secs();
        let when = if away >= 0 {
            format!("in {}", human_secs(away.unsigned_abs()))
        } else {
            format!("{} ago", human_secs(away.unsigned_abs()))
        };
        let _ = writeln!(
            out,
            "  send at    {} ({when}; the audience is due {} min before)",
            w.send_at,
            w.lead_secs / 60
        );
    }
    if let Some(u) = &r.upload {
        let mut pace = vec![format!("{} rows a call", u.pace.rows_per_call)];
        if let Some(c) = u.pace.calls_per_minute {
            pace.push(format!("{c:.0} calls/min"));
        }
        if let Some(rows) = u.pace.rows_per_minute {
            pace.push(format!("{rows:.0} rows/min"));
        }
        if u.pace.concurrency > 1 {
            pace.push(format!("{} at once", u.pace.concurrency));
        }
        pace.push(format!("~{} s a call", u.pace.call_secs));
        let _ = writeln!(
            out,
            "  upload     {} rows in {} call(s): about {} ({}); {} left",
            u.rows,
            u.calls,
            human_secs(u.estimate_secs),
            pace.join(", "),
            human_secs(u.time_left_secs.max(0).unsigned_abs())
        );
    }
    if r.go {
        let _ = writeln!(out, "GO: the drop would go through");
    } else {
        let _ = writeln!(out, "NO-GO:");
        for n in &r.reasons {
            let _ = writeln!(out, "  - {}: {}", kind(n.check), n.reason);
        }
    }
    out
}

fn kind(k: CheckKind) -> &'static str {
    match k {
        CheckKind::SendWindow => "send window",
        CheckKind::UploadTime => "upload time",
        other => other.as_str(),
    }
}

fn by_reason(counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(" ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_date_is_the_parent_folders_when_it_is_one() {
        let now: jiff::Timestamp = "2026-11-24T23:30:00Z".parse().unwrap();
        assert_eq!(
            drop_names(Path::new("/d/campaigns/2026-11-20/spring"), now),
            ("spring".to_owned(), "2026-11-20".to_owned())
        );
        assert_eq!(
            drop_names(Path::new("/tmp/spring"), now),
            ("spring".to_owned(), "2026-11-24".to_owned())
        );
    }
}
