//! Full upload benchmark: a drop of `--rows` customer ids goes through the real upload service
//! (one validating pass, batches, checkpoints) to the Emarsys simulator over loopback HTTP.
//!
//! `cargo run --release -p espbridge-bench --bin upload -- --rows 1000000`
//!
//! Reports wall time, ESP calls against ⌈rows / 10,000⌉, the request rate against the account's
//! allowed 1,000 requests a minute, 429s received, and peak RSS.
//!
//! A saturated upload with real round trips (issue "real audience sizes"): `-- --rows 1000000
//! --latency-ms 100 --save-ms 20` — each call takes 100 ms and each checkpoint 20 ms; reported:
//! the steady rate against the allowance (two batches in flight keep it at the pacer's 98%).
//!
//! A stricter account than configured (issue "when the ESP pushes back"):
//! `-- --rows 200000 --rate 120 --configured 1000` — the simulator allows and announces 120 a
//! minute, the client is configured for 1,000; reported: the pace the client settled on and the
//! time against the limit-bound minimum.

use clap::Parser;
use espbridge_bench::{AudienceFile, UploadRun, mib, on_own_runtime, peak_rss_bytes, upload_drop};
use espbridge_core::{AccountId, Clock, SystemClock};
use espbridge_emarsys::sim::{EmarsysSim, EmarsysSimConfig};
use espbridge_emarsys::{EmarsysConfig, EmarsysCredentials, EmarsysEsp};
use espbridge_esp_kit::{BaseUrl, BuildContext};
use std::sync::Arc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// The account's allowed requests per minute (the simulator's, announced in its headers).
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// The client's configured requests per minute (default: `--rate`).
    #[arg(long)]
    configured: Option<u32>,
    /// Milliseconds the simulator takes per request (a call's round trip across the internet).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Milliseconds each campaign-record write takes (a DynamoDB conditional write).
    #[arg(long, default_value_t = 0)]
    save_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The simulator on a runtime of its own: its work must not stall the client measured.
    let (sim_rt, sim) = on_own_runtime(EmarsysSim::start(
        EmarsysSimConfig {
            rate_limit_per_minute: args.rate,
            ..Default::default()
        },
        Arc::clone(&clock),
    ))?;
    let sim = sim?;
    sim.traffic()
        .set_latency(std::time::Duration::from_millis(args.latency_ms));
    let account = AccountId::parse("default")?;
    let mut config = EmarsysConfig::new(account);
    config.http.base_url = Some(BaseUrl::parse(&sim.base_url())?);
    config.rate_limit_per_minute = args.configured.unwrap_or(args.rate);
    let esp = EmarsysEsp::new(
        config,
        EmarsysCredentials::new("espbridge", "sim-secret"),
        &BuildContext::in_memory(Arc::clone(&clock)),
    )?;
    let template = espbridge_bench::first_template(&esp).await?;

    let before = sim.requests().len();
    let esp = Arc::new(esp);
    let UploadRun { bytes, secs } = upload_drop(
        esp.clone(),
        &template.id,
        AudienceFile::Generated(args.rows),
        false,
        clock,
        std::time::Duration::from_millis(args.save_ms),
    )
    .await?;
    let reqs = sim.requests();
    let calls = &reqs[before..];
    let list_calls = calls
        .iter()
        .filter(|r| r.path.contains("contactlist"))
        .count();
    let throttled = calls.iter().filter(|r| r.status == 429).count();
    let per_min = calls.len() as f64 / secs * 60.0;
    // The steady state: the calls adding ids, between the first and the last one (the list's
    // creation comes before the upload reads its first batch).
    let list_times: Vec<_> = calls
        .iter()
        .filter(|r| r.path.contains("contactlist") && r.path.ends_with("/add"))
        .map(|r| r.at)
        .collect();
    let steady = match (list_times.first(), list_times.last()) {
        (Some(a), Some(b)) if list_times.len() > 1 => {
            let span = b.duration_since(*a).as_secs_f64();
            (list_times.len() - 1) as f64 / span * 60.0
        }
        _ => 0.0,
    };
    // Gaps between consecutive adds longer than the pacer's: where the upload left the
    // allowance unused.
    let gaps: Vec<f64> = list_times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1000.0)
        .collect();
    let pacer_gap = 60_000.0 / esp.pace();
    let late = gaps.iter().filter(|g| **g > pacer_gap + 2.0).count();
    let expected = args.rows.div_ceil(10_000);
    println!(
        "{} ms per call, {} ms per record write",
        args.latency_ms, args.save_ms
    );
    println!(
        "rows {} ({:.1} MiB) uploaded in {secs:.1} s ({:.0} rows/s)",
        args.rows,
        mib(bytes),
        args.rows as f64 / secs
    );
    println!(
        "ESP calls: {} in all, {list_calls} contact-list calls (⌈rows/10000⌉ = {expected}, + 1 create)",
        calls.len()
    );
    println!(
        "rate: {per_min:.0} requests/min against an allowance of {} ({:.0}%), {throttled} rejected with 429",
        args.rate,
        per_min / f64::from(args.rate) * 100.0
    );
    println!(
        "steady upload rate: {steady:.0} requests/min ({:.1}% of the allowance)",
        steady / f64::from(args.rate) * 100.0
    );
    println!(
        "gaps between adds: {} of {} longer than the pacer's {pacer_gap:.1} ms (+2), longest {:.1} ms",
        late,
        gaps.len(),
        gaps.iter().copied().fold(0.0, f64::max)
    );
    let where_late: Vec<String> = gaps
        .iter()
        .enumerate()
        .filter(|(_, g)| **g > pacer_gap + 2.0)
        .take(12)
        .map(|(i, g)| format!("#{}: {g:.0} ms", i + 1))
        .collect();
    if !where_late.is_empty() {
        println!("  late gaps (after add #n): {}", where_late.join(", "));
    }
    // The limit-bound minimum: every call of the upload spaced at the account's real rate.
    let minimum = (calls.len().saturating_sub(1)) as f64 * 60.0 / f64::from(args.rate);
    println!(
        "client pace: {:.0} requests/min (configured {}); upload {secs:.1} s against a limit-bound minimum of {minimum:.1} s",
        esp.pace(),
        args.configured.unwrap_or(args.rate)
    );
    println!("peak RSS {:.1} MiB", mib(peak_rss_bytes().unwrap_or(0)));
    sim_rt.shutdown_background();
    Ok(())
}
