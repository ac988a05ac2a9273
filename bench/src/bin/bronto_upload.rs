//! Bronto upload benchmark: a drop of `--rows` customers with e-mails goes through the real
//! upload service to the Bronto simulator over loopback SOAP, paced by the adapter to the
//! account's address allowance (50,000 a minute by default; both sides use the same window).
//!
//! `cargo run --release -p espbridge-bench --bin bronto_upload -- --rows 200000`
//! (`--window-ms 6000` scales the minute down tenfold for a quick run.)
//!
//! A sliding-window allowance lets the first window's addresses go at once; after that the
//! pace is the allowance. So the steady rate is measured as the addresses sent after the first
//! window's burst over the time from the first to the last `addToList` call, and compared with
//! the allowance. Also reported: wall time, calls against ⌈rows / 5,000⌉, calls the simulator
//! refused for the rate limit (Fault 101), and peak RSS.

use anyhow::{Context, bail};
use clap::Parser;
use espbridge_bench::{mib, peak_rss_bytes, write_audience};
use espbridge_bronto::{BrontoConfig, BrontoCredentials, BrontoEsp};
use espbridge_core::ports::{Esp, ObjectRef};
use espbridge_core::service::upload::UploadOutcome;
use espbridge_core::service::{Deadline, EspRegistry, Services, UploadSettings};
use espbridge_core::{AccountId, Clock, SystemClock};
use espbridge_local::{FolderSource, LocalQueue, LocalScheduler, SqliteStore};
use espbridge_sim::bronto::{BrontoSim, BrontoSimConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200_000)]
    rows: u64,
    /// Addresses allowed per window (simulator and client alike).
    #[arg(long, default_value_t = 50_000)]
    allowance: u32,
    /// The window ("minute") in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    window_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let window = Duration::from_millis(args.window_ms);
    let sim_config = BrontoSimConfig {
        addresses_per_minute: Some(args.allowance),
        rate_window: window,
        ..Default::default()
    };
    let token = sim_config.api_token.clone();
    let sim = BrontoSim::start(sim_config, Arc::clone(&clock)).await?;
    let mut config = BrontoConfig::new(AccountId::parse("default")?);
    config.base_url = sim.base_url();
    config.from_email = "news@brand.example".into();
    config.from_name = "Brand".into();
    config.addresses_per_minute = args.allowance;
    config.rate_window_ms = args.window_ms;
    let esp = BrontoEsp::new(config, BrontoCredentials { api_token: token })?;
    let template = esp
        .list_templates()
        .await?
        .into_iter()
        .next()
        .context("no template")?;

    let dir = tempfile::tempdir()?;
    let prefix = "campaigns/2026-11-24/bench-bronto/";
    std::fs::create_dir_all(dir.path().join(prefix))?;
    let bytes = write_audience(&dir.path().join(prefix).join("audience.csv"), args.rows)?;
    let manifest = serde_json::json!({
        "schema_version": "1", "campaign_id": "bench-bronto", "esp": "bronto",
        "template_id": template.id, "send_at": "2030-01-01T09:00:00+01:00",
        "audience": {"files": ["audience.csv"],
            "columns": {"customer_id": "customer_id", "email": "email"}}
    });
    let key = format!("{prefix}manifest.json");
    std::fs::write(dir.path().join(&key), manifest.to_string())?;

    let (queue, _rx) = LocalQueue::new();
    let services = Services {
        store: Arc::new(SqliteStore::in_memory()?),
        source: Arc::new(FolderSource::new(dir.path())),
        queue: Arc::new(queue),
        scheduler: Arc::new(LocalScheduler::new()),
        esps: EspRegistry::new(vec![Arc::new(esp)]),
        clock,
        upload: UploadSettings::default(),
    };
    let t = Instant::now();
    let drop = ObjectRef {
        bucket: "local".into(),
        key,
        etag: String::new(),
    };
    let out = services.handle_drop(&drop, Deadline::none()).await?;
    let secs = t.elapsed().as_secs_f64();
    if !matches!(out, UploadOutcome::AudienceReady(_)) {
        bail!("upload ended as {out:?}");
    }
    // (arrival time, addresses) of every accepted addToList call.
    let calls: Vec<(jiff::Timestamp, u64)> = sim
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .filter_map(|r| {
            let b = r.body?;
            (b["operation"] == "addToList").then(|| (r.at, b["items"].as_u64().unwrap_or(0)))
        })
        .collect();
    let sent: u64 = calls.iter().map(|c| c.1).sum();
    let steady = match (calls.first(), calls.last()) {
        (Some(first), Some(last)) if calls.len() > 1 => {
            let span = last.0.duration_since(first.0).as_secs_f64();
            let burst: u64 = calls
                .iter()
                .take_while(|c| c.0.duration_since(first.0).as_secs_f64() < window.as_secs_f64())
                .map(|c| c.1)
                .sum();
            // Addresses after the first window's burst, per window of time.
            (sent - burst) as f64 / span * window.as_secs_f64()
        }
        _ => 0.0,
    };
    let allowance = f64::from(args.allowance);
    println!(
        "rows {} ({:.1} MiB) uploaded in {secs:.1} s",
        args.rows,
        mib(bytes)
    );
    println!(
        "addToList: {} calls (⌈rows/5000⌉ = {}), {sent} addresses, {} refused by the rate limit",
        calls.len(),
        args.rows.div_ceil(5_000),
        sim.rate_refusals()
    );
    println!(
        "steady rate: {steady:.0} addresses per {:.0} s window against an allowance of {} ({:.1}%)",
        window.as_secs_f64(),
        args.allowance,
        steady / allowance * 100.0
    );
    println!("peak RSS {:.1} MiB", mib(peak_rss_bytes().unwrap_or(0)));
    Ok(())
}
