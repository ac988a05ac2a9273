//! Time to audience-ready per ESP and mode: one campaign of `--rows` customers (1,000,000 by
//! default) through the real upload service to each ESP's simulator, with its documented limits
//! and `--latency-ms` (100) per call, next to the lower bound those limits allow.
//!
//! `cargo run --release -p espbridge-bench --bin per_esp -- --rows 1000000`
//!
//! One upload slice of `--max-secs` (default 900) per ESP: an upload still running then is
//! reported as "not ready after N s (X rows/s)" from its record's progress instead of being
//! waited for. CPU seconds and peak RSS are the process's own over that ESP's run (simulator
//! included; the peak is reset between runs through `/proc/self/clear_refs`).

use anyhow::Context;
use clap::Parser;
use espbridge_app::{build_registry, registry};
use espbridge_bench::{mib, peak_rss_bytes, write_audience};
use espbridge_core::ports::{CampaignStore, ObjectRef};
use espbridge_core::service::upload::UploadOutcome;
use espbridge_core::service::{Deadline, UploadService, UploadSettings};
use espbridge_core::{AccountId, CampaignId, Clock, EspKind, SystemClock};
use espbridge_esp_kit::{BuildContext, SimSetup};
use espbridge_local::{FolderSource, LocalQueue, SqliteStore};
use espbridge_silverpop::sim;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Longest time given to one ESP's upload.
    #[arg(long, default_value_t = 900)]
    max_secs: u64,
    /// Only these modes (emarsys, smartfocus, silverpop-lists, silverpop-rt, bronto).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// One ESP and, for Silverpop, its mode.
struct Mode {
    name: &'static str,
    esp: EspKind,
    silverpop_mode: Option<&'static str>,
}

const MODES: [Mode; 5] = [
    Mode {
        name: "emarsys",
        esp: EspKind::Emarsys,
        silverpop_mode: None,
    },
    Mode {
        name: "smartfocus",
        esp: EspKind::Smartfocus,
        silverpop_mode: None,
    },
    Mode {
        name: "silverpop-lists",
        esp: EspKind::Silverpop,
        silverpop_mode: Some("lists"),
    },
    Mode {
        name: "silverpop-rt",
        esp: EspKind::Silverpop,
        silverpop_mode: Some("relational_table"),
    },
    Mode {
        name: "bronto",
        esp: EspKind::Bronto,
        silverpop_mode: None,
    },
];

impl Mode {
    /// The least time the documented limits allow for `rows` (the night bench's rules).
    fn lower_bound(&self, rows: u64, latency_ms: u64) -> (f64, &'static str) {
        let latency = latency_ms as f64 / 1_000.0;
        match (self.esp, self.silverpop_mode) {
            (EspKind::Emarsys, _) => (
                rows.div_ceil(10_000) as f64 * 60.0 / 1_000.0,
                "ceil(rows/10k) calls at 1,000/min",
            ),
            (EspKind::Silverpop, mode) => silverpop_bulk_bound(rows, latency, mode),
            (EspKind::Bronto, _) => (rows as f64 * 60.0 / 50_000.0, "addresses at 50,000/min"),
            _ => (
                5.0 * latency,
                "one upload: its call and 4 status polls × latency",
            ),
        }
    }
}

/// Silverpop with the bulk import (the simulated account has an SFTP endpoint): batches of
/// `bulk_batch_size` rows, each one import job; the org runs its jobs one at a time and the
/// upload waits for each before the next. Per job: the simulator's queue wait, ImportList and
/// at least one GetJobStatus (2 × latency), and its rows at the simulator's job speed; the
/// file transfers (loopback) counted as nothing. A last batch under `bulk_import_threshold`
/// goes per call: Lists mode one call per contact, Relational Tables mode 200 rows a call,
/// both at 10 concurrent.
fn silverpop_bulk_bound(rows: u64, latency: f64, mode: Option<&str>) -> (f64, &'static str) {
    let config = espbridge_silverpop::SilverpopConfig::new(AccountId::default_name());
    let (batch, threshold) = (
        config.bulk_batch_size as u64,
        config.bulk_import_threshold as u64,
    );
    let rest = rows % batch;
    let (jobs, per_call) = if rest >= threshold {
        (rows.div_ceil(batch), 0)
    } else {
        (rows / batch, rest)
    };
    let job_rows = rows - per_call;
    let per_call_secs = match mode {
        Some("lists") => per_call as f64 * latency / 10.0,
        _ => per_call.div_ceil(200) as f64 * latency / 10.0,
    };
    let secs = job_rows as f64 / sim::DEFAULT_IMPORT_ROWS_PER_SEC
        + jobs as f64 * (sim::DEFAULT_IMPORT_WAIT.as_secs_f64() + 2.0 * latency)
        + per_call_secs;
    (
        secs,
        "bulk: rows at the sim's 5,000/s + per 100k job its 0.2 s wait and 2 calls × latency",
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "{} rows per ESP, {} ms per call, at most {} s each\n",
        args.rows, args.latency_ms, args.max_secs
    );
    println!("| ESP / mode | result | lower bound | CPU s | peak RSS MiB |\n|---|---|---|---|---|");
    for mode in MODES
        .iter()
        .filter(|m| args.only.is_empty() || args.only.iter().any(|o| o == m.name))
    {
        let (bound, rule) = mode.lower_bound(args.rows, args.latency_ms);
        reset_peak_rss();
        let cpu0 = cpu_secs();
        let result = run(mode, &args).await?;
        println!(
            "| {} | {result} | {bound:.1} s ({rule}) | {:.1} | {:.1} |",
            mode.name,
            cpu_secs() - cpu0,
            mib(peak_rss_bytes().unwrap_or(0))
        );
    }
    Ok(())
}

/// One campaign of `args.rows` to a fresh simulator of `mode`; "ready in N s" or "not ready".
async fn run(mode: &Mode, args: &Args) -> anyhow::Result<String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut setup = SimSetup::new(Arc::clone(&clock), "Europe/Berlin", "optimove_");
    setup.latency = Duration::from_millis(args.latency_ms);
    setup.unknown_share = 0.0;
    let mut sim = registry::driver(mode.esp)
        .context("no driver")?
        .simulate(&setup)
        .await?;
    if mode.esp == EspKind::Silverpop {
        // The bulk route: the simulated account carries its SFTP endpoint (host, port, host
        // key; the API user's login).
        anyhow::ensure!(
            sim.entry
                .to_value()
                .get("sftp")
                .is_some_and(|v| v.is_object()),
            "the Silverpop simulator's account has no SFTP endpoint"
        );
    }
    let account = AccountId::parse("default")?;
    sim.entry.rename(account.clone());
    let esps = build_registry(
        &[sim.entry.clone()],
        None,
        &BuildContext::in_memory(Arc::clone(&clock)),
    )
    .await?;
    let esp = esps.get(mode.esp, &account).context("no such account")?;
    let template = espbridge_bench::first_template(esp.as_ref()).await?;

    let dir = tempfile::tempdir()?;
    let id = format!("per-esp-{}", mode.name);
    let prefix = format!("campaigns/2026-11-24/{id}/");
    std::fs::create_dir_all(dir.path().join(&prefix))?;
    write_audience(&dir.path().join(&prefix).join("audience.csv"), args.rows)?;
    let mut columns = serde_json::json!({"customer_id": "customer_id"});
    if mode.esp == EspKind::Bronto {
        columns["email"] = "email".into();
    }
    let send_at = clock
        .now()
        .checked_add(jiff::SignedDuration::from_hours(24))?
        .round(jiff::Unit::Second)?;
    let mut manifest = serde_json::json!({
        "schema_version": "1", "campaign_id": id, "esp": mode.esp, "account": "default",
        "template_id": template.id, "send_at": send_at.to_string(),
        "audience": {"files": ["audience.csv"], "columns": columns}
    });
    if let Some(m) = mode.silverpop_mode {
        manifest["esp_options"] = serde_json::json!({"silverpop": {"mode": m}});
    }
    let key = format!("{prefix}manifest.json");
    std::fs::write(dir.path().join(&key), manifest.to_string())?;

    let store = Arc::new(SqliteStore::in_memory()?);
    let (queue, _rx) = LocalQueue::new();
    let upload = UploadService {
        store: store.clone(),
        source: Arc::new(FolderSource::new(dir.path())),
        queue: Arc::new(queue),
        esps,
        clock,
        alerts: Arc::new(espbridge_core::ports::LogAlerts),
        metrics: Arc::new(espbridge_core::ports::LogMetrics),
        // One slice of the cap: past it the service stops and reports a continuation.
        settings: UploadSettings {
            slice: Some(Duration::from_secs(args.max_secs)),
            ..UploadSettings::default()
        },
    };
    let drop = ObjectRef {
        bucket: "local".into(),
        key,
        etag: String::new(),
    };
    let t = Instant::now();
    let out = upload.handle_drop(&drop, Deadline::none(), false).await?;
    let secs = t.elapsed().as_secs_f64();
    let jobs = sim
        .simulator::<sim::SilverpopSim>()
        .map(|s| format!(", {} import jobs", s.import_job_count()))
        .unwrap_or_default();
    Ok(match out {
        UploadOutcome::AudienceReady(_) => {
            format!(
                "ready in {secs:.1} s ({:.0} rows/s{jobs})",
                args.rows as f64 / secs
            )
        }
        UploadOutcome::Continued(_) => {
            let record = store
                .get(&CampaignId::parse(&id)?)
                .await?
                .context("no record")?;
            let done = record.audience.uploaded;
            format!(
                "not ready after {secs:.0} s ({done} rows uploaded, {:.0} rows/s)",
                done as f64 / secs
            )
        }
        other => anyhow::bail!("{}: upload ended as {other:?}", mode.name),
    })
}

/// User + system CPU seconds of this process so far.
fn cpu_secs() -> f64 {
    // SAFETY: all-zero is a valid `rusage`; `getrusage` only writes it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid for writes.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS, so each ESP's peak is its own.
fn reset_peak_rss() {
    // Best effort: without it the peak shown is the run's and every earlier run's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
