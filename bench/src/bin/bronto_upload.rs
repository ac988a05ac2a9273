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
//!
//! A stricter account than configured (issue "when the ESP pushes back"):
//! `-- --rows 60000 --allowance 10000 --configured 50000 --window-ms 6000` — the simulator takes
//! 10,000 addresses a window, the client is configured for 50,000; Bronto only refuses, so the
//! client learns its pace; reported: the pace it settled on and the time against the
//! limit-bound minimum.

use clap::Parser;
use espbridge_bench::{UploadRun, mib, peak_rss_bytes, upload_generated_drop};
use espbridge_bronto::sim::{BrontoSim, BrontoSimConfig};
use espbridge_bronto::{BrontoConfig, BrontoCredentials, BrontoEsp};
use espbridge_core::{AccountId, Clock, SystemClock};
use espbridge_esp_kit::{BaseUrl, BuildContext};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200_000)]
    rows: u64,
    /// Addresses the account takes per window (the simulator's).
    #[arg(long, default_value_t = 50_000)]
    allowance: u32,
    /// Addresses per window the client is configured for (default: `--allowance`).
    #[arg(long)]
    configured: Option<u32>,
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
    config.http.base_url = Some(BaseUrl::parse(&sim.base_url())?);
    config.from_email = "news@brand.example".into();
    config.from_name = "Brand".into();
    config.addresses_per_minute = args.configured.unwrap_or(args.allowance);
    config.rate_window_ms = args.window_ms;
    let esp = BrontoEsp::new(
        config,
        BrontoCredentials::new(token),
        &BuildContext::in_memory(Arc::clone(&clock)),
    )?;
    let template = espbridge_bench::first_template(&esp).await?;

    let esp = Arc::new(esp);
    let UploadRun { bytes, secs } =
        upload_generated_drop(esp.clone(), &template.id, args.rows, true, clock).await?;
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
    // The limit-bound minimum: one window's addresses at once, then the allowance's pace.
    let windows = (args.rows.saturating_sub(u64::from(args.allowance))) as f64 / allowance;
    let (pace, refusals) = esp.address_pace();
    println!(
        "client pace: {:.0} addresses per window (configured {}), {refusals} refusals taught it; upload {secs:.1} s against a limit-bound minimum of {:.1} s",
        pace * window.as_secs_f64() / 60.0,
        args.configured.unwrap_or(args.allowance),
        windows.max(0.0) * window.as_secs_f64()
    );
    println!("peak RSS {:.1} MiB", mib(peak_rss_bytes().unwrap_or(0)));
    Ok(())
}
