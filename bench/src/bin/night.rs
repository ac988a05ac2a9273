//! The night benchmark: a real night's campaigns on shared ESP accounts, end to end through the
//! services, against the ESP simulators with their limits and a simulated latency per call.
//!
//! 40 campaigns land within a minute: 10 per ESP, the Emarsys ten on two accounts (API users),
//! audiences from 1,000 to 500,000 rows (2.45 million in all at `--scale 1`), drawn from one
//! customer base so that a customer is in about three campaigns of the night, each campaign
//! with its own send time. Silverpop's big audiences use Relational Tables mode, its small ones
//! contact lists (one call per contact). As many workers as the SAM template's reserved
//! concurrency (5) take the drops and the upload continuations (120 s slices by default), and as
//! many the schedule-send messages, all sharing one set of account limits as every Lambda
//! instance shares the DynamoDB one.
//!
//! Reported per ESP account: requests the simulator refused for a limit (must be 0); every
//! campaign's audience at the ESP at its send time against its valid rows less `not_in_esp`
//! (must be equal: same count and same set, compared by an order-free fingerprint); sends per
//! campaign (must be 1); and the time until all the account's audiences were ready against
//! the lower bound its documented limits allow.
//!
//! Run: `cargo run --release -p espbridge-bench --bin night` (`-- --scale 0.1` for a quick
//! night of 245,000 rows).

use anyhow::{Context, bail};
use clap::Parser;
use espbridge_app::{AccountConfig, build_registry, registry};
use espbridge_bench::{mib, peak_rss_bytes};
use espbridge_core::ports::{ObjectRef, WorkItem};
use espbridge_core::service::{Services, UploadSettings};
use espbridge_core::{AccountId, CampaignId, Clock, EspKind, ManualClock, State};
use espbridge_esp_kit::{BuildContext, SimSetup, SimView, SimulatedAccount};
use espbridge_local::{Delivery, FolderSource, LocalQueue, LocalScheduler, Message, SqliteStore};
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};

#[derive(Parser)]
#[command(about = "A night of 40 overlapping campaigns on shared ESP accounts")]
struct Args {
    /// Fraction of the night's audience sizes (1 = 1,000 to 500,000 rows, 2.45 M in all).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Simulated processing time of every ESP call, in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Concurrent workers (the template's reserved concurrency of upload-audience).
    #[arg(long, default_value_t = espbridge_local::worker::DEFAULT_WORKERS)]
    workers: usize,
    /// Upload time slice before a campaign yields its worker, in seconds.
    #[arg(long, default_value_t = 120)]
    slice_secs: u64,
    /// The drops land at random moments within this many seconds.
    #[arg(long, default_value_t = 60)]
    spread_secs: u64,
    /// Share of customers an account does not know.
    #[arg(long, default_value_t = 0.01)]
    unknown_share: f64,
}

/// One ESP account of the night and its campaigns' sizes at scale 1.
struct AccountPlan {
    esp: EspKind,
    account: &'static str,
    /// (rows, Silverpop mode).
    campaigns: Vec<(u64, Option<&'static str>)>,
}

fn night_plan() -> Vec<AccountPlan> {
    let plain = |sizes: &[u64]| sizes.iter().map(|r| (*r, None)).collect::<Vec<_>>();
    let mut silverpop: Vec<(u64, Option<&'static str>)> =
        [200_000, 100_000, 50_000, 20_000, 10_000, 5_000, 2_000]
            .iter()
            .map(|r| (*r, Some("relational_table")))
            .collect();
    silverpop.extend([5_000, 2_000, 1_000].iter().map(|r| (*r, Some("lists"))));
    vec![
        AccountPlan {
            esp: EspKind::Emarsys,
            account: "eu",
            campaigns: plain(&[500_000, 200_000, 100_000, 20_000, 5_000]),
        },
        AccountPlan {
            esp: EspKind::Emarsys,
            account: "us",
            campaigns: plain(&[300_000, 100_000, 50_000, 10_000, 1_000]),
        },
        AccountPlan {
            esp: EspKind::Smartfocus,
            account: "default",
            campaigns: plain(&[
                300_000, 150_000, 100_000, 50_000, 20_000, 10_000, 5_000, 2_000, 1_000, 1_000,
            ]),
        },
        AccountPlan {
            esp: EspKind::Silverpop,
            account: "default",
            campaigns: silverpop,
        },
        AccountPlan {
            esp: EspKind::Bronto,
            account: "default",
            campaigns: plain(&[
                50_000, 30_000, 20_000, 10_000, 10_000, 5_000, 2_000, 1_000, 1_000, 1_000,
            ]),
        },
    ]
}

/// One campaign of the night.
struct Campaign {
    id: CampaignId,
    esp: EspKind,
    account: AccountId,
    rows: u64,
    /// Its audience: customers `first, first+1, …` of the night's base, wrapping.
    first: u64,
    mode: Option<&'static str>,
    send_at: Timestamp,
    /// When its drop lands, after the start.
    lands_after: Duration,
}

/// A customer's id and e-mail.
fn customer(n: u64) -> (String, String) {
    (format!("C{n:09}"), format!("c{n}@mail.example"))
}

/// An order-free digest of a set of keys: count and wrapping sum of their hashes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Digest {
    count: u64,
    sum: u64,
}

impl Digest {
    fn add(&mut self, key: &str) {
        self.count += 1;
        self.sum = self
            .sum
            .wrapping_add(xxhash_rust::xxh3::xxh3_64(key.as_bytes()));
    }
}

/// One worker of a pool: one message at a time, as one Lambda instance; an interrupted step's
/// message goes back to the local queue for redelivery, as SQS would.
async fn work(
    services: Services,
    queue: LocalQueue,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Delivery>>>,
) {
    loop {
        let Some(delivery) = rx.lock().await.recv().await else {
            return;
        };
        espbridge_local::worker::process(&services, &queue, delivery).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.scale > 0.0 && args.scale <= 1.0) {
        bail!("--scale must be in (0, 1]");
    }
    let started = Instant::now();
    let t0: Timestamp = Timestamp::now();
    let clock = ManualClock::new(t0);
    let clock_dyn: Arc<dyn Clock> = Arc::new(clock.clone());

    // The plan: sizes, the customer base (a third of all rows: ~3 campaigns a customer),
    // windows at random offsets, send times 2 h after the start, 10 minutes apart.
    let plans = night_plan();
    let mut campaigns = Vec::new();
    let total: u64 = plans
        .iter()
        .flat_map(|p| &p.campaigns)
        .map(|(r, _)| ((*r as f64) * args.scale).round().max(1.0) as u64)
        .sum();
    let base = (total / 3).max(1);
    let mut k = 0u64;
    for p in &plans {
        for (i, (rows, mode)) in p.campaigns.iter().enumerate() {
            let rows = ((*rows as f64) * args.scale).round().max(1.0) as u64;
            let rows = rows.min(base);
            campaigns.push(Campaign {
                id: CampaignId::parse(&format!("night-{}-{}-{i:02}", p.esp, p.account))?,
                esp: p.esp,
                account: AccountId::parse(p.account)?,
                rows,
                first: rand::random_range(0..base),
                mode: *mode,
                send_at: t0 + SignedDuration::from_mins(120 + 10 * k as i64),
                lands_after: Duration::from_millis(rand::random_range(0..=args.spread_secs * 1000)),
            });
            k += 1;
        }
    }
    let rows_total: u64 = campaigns.iter().map(|c| c.rows).sum();
    let mut membership = vec![0u8; base as usize];
    for c in &campaigns {
        for j in 0..c.rows {
            let n = ((c.first + j) % base) as usize;
            membership[n] = membership[n].saturating_add(1);
        }
    }
    let mut per_customer = BTreeMap::new();
    for m in &membership {
        *per_customer.entry((*m).min(5)).or_insert(0u64) += 1;
    }
    drop(membership);
    println!(
        "night: {} campaigns, {rows_total} rows, {base} customers (a customer is in {:.2} campaigns \
         on average; by count {per_customer:?}), latency {} ms, {} workers",
        campaigns.len(),
        rows_total as f64 / base as f64,
        args.latency_ms,
        args.workers
    );

    // The simulators: one per account, the ESPs' documented limits, the latency.
    let mut setup = SimSetup::new(Arc::clone(&clock_dyn), "Europe/Berlin", "optimove_");
    setup.latency = Duration::from_millis(args.latency_ms);
    setup.unknown_share = args.unknown_share;
    let mut sims: Vec<(EspKind, AccountId, SimulatedAccount)> = Vec::new();
    for p in &plans {
        let driver = registry::driver(p.esp).context("no driver")?;
        let mut sim = driver.simulate(&setup).await?;
        sim.entry.rename(AccountId::parse(p.account)?);
        sims.push((p.esp, AccountId::parse(p.account)?, sim));
    }
    let accounts: Vec<AccountConfig> = sims.iter().map(|(_, _, s)| s.entry.clone()).collect();
    let esps = build_registry(
        &accounts,
        None,
        &BuildContext::in_memory(Arc::clone(&clock_dyn)),
    )
    .await?;

    // The drops, written before the night starts (the segmentation engine's files).
    let dir = tempfile::tempdir()?;
    let mut objects = Vec::new();
    let mut expected: HashMap<String, Digest> = HashMap::new();
    for c in &campaigns {
        let esp = esps.get(c.esp, &c.account).context("no such account")?;
        let template = espbridge_bench::first_template(esp.as_ref()).await?;
        let prefix = format!("campaigns/{}/{}/", t0.strftime("%Y-%m-%d"), c.id);
        std::fs::create_dir_all(dir.path().join(&prefix))?;
        let digest = write_audience(
            &dir.path().join(&prefix).join("audience.csv"),
            c,
            base,
            &args,
        )?;
        expected.insert(format!("espbridge_{}", c.id), digest);
        let mut columns = serde_json::json!({"customer_id": "customer_id"});
        if c.esp == EspKind::Bronto {
            columns["email"] = "email".into();
        }
        let mut manifest = serde_json::json!({
            "schema_version": "1", "campaign_id": c.id, "esp": c.esp, "account": c.account,
            "template_id": template.id, "send_at": c.send_at.to_string(),
            "audience": {"files": ["audience.csv"], "columns": columns}
        });
        if let Some(mode) = c.mode {
            manifest["esp_options"] = serde_json::json!({"silverpop": {"mode": mode}});
        }
        let key = format!("{prefix}manifest.json");
        std::fs::write(dir.path().join(&key), manifest.to_string())?;
        objects.push((
            c.lands_after,
            ObjectRef {
                bucket: "local".into(),
                key,
                etag: String::new(),
            },
        ));
    }
    println!("drops written in {:.1} s", started.elapsed().as_secs_f64());

    let (queue, mut work_rx) = LocalQueue::new();
    let services = Services {
        store: Arc::new(SqliteStore::in_memory()?),
        source: Arc::new(FolderSource::new(dir.path())),
        queue: Arc::new(queue.clone()),
        scheduler: Arc::new(LocalScheduler::new()),
        esps,
        clock: Arc::clone(&clock_dyn),
        alerts: Arc::new(espbridge_core::ports::LogAlerts),
        metrics: Arc::new(espbridge_core::ports::LogMetrics),
        upload_settings: UploadSettings {
            slice: Some(Duration::from_secs(args.slice_secs)),
            ..Default::default()
        },
    };

    // The night: the business clock follows real time; drops land; the workers take them.
    let night = Instant::now();
    let ticker = {
        let clock = clock.clone();
        tokio::spawn(async move {
            loop {
                clock.set(t0 + SignedDuration::try_from(night.elapsed()).unwrap_or_default());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Two pools, as the two functions each have their reserved concurrency: upload-audience
    // takes the drops and the continuations, schedule-send the scheduling requests.
    let (uploads, upload_rx) = mpsc::unbounded_channel::<Delivery>();
    let (schedules, schedule_rx) = mpsc::unbounded_channel::<Delivery>();
    tokio::spawn(async move {
        while let Some(delivery) = work_rx.recv().await {
            let to = match &delivery.message {
                Message::Work(WorkItem::ScheduleSend { .. }) => &schedules,
                Message::Work(WorkItem::ContinueUpload { .. }) | Message::Object(_) => &uploads,
            };
            if to.send(delivery).is_err() {
                return;
            }
        }
    });
    for (after, object) in objects {
        let queue = queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Err(e) = queue.send(Message::Object(object)) {
                eprintln!("{e}");
            }
        });
    }
    let mut workers = Vec::new();
    for rx in [upload_rx, schedule_rx] {
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..args.workers.max(1) {
            workers.push(tokio::spawn(work(
                services.clone(),
                queue.clone(),
                Arc::clone(&rx),
            )));
        }
    }

    // Watch the campaigns until every one is scheduled (or has ended otherwise).
    let mut ready_at: HashMap<CampaignId, Duration> = HashMap::new();
    let mut last_report = Instant::now();
    loop {
        let mut settled = 0;
        for c in &campaigns {
            let Some(rec) = services.store.get(&c.id).await? else {
                continue;
            };
            if matches!(
                rec.state,
                State::AudienceReady
                    | State::PartiallyScheduled
                    | State::Scheduled
                    | State::Collecting
                    | State::Completed
            ) {
                ready_at
                    .entry(c.id.clone())
                    .or_insert_with(|| night.elapsed());
            }
            if matches!(
                rec.state,
                State::Scheduled | State::Failed | State::Cancelled | State::PartiallyScheduled
            ) {
                settled += 1;
            }
        }
        if settled == campaigns.len() {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            println!(
                "  {:>5.0} s: {} ready, {settled} scheduled or ended",
                night.elapsed().as_secs_f64(),
                ready_at.len()
            );
            for c in &campaigns {
                if let Some(rec) = services.store.get(&c.id).await?
                    && !matches!(rec.state, State::Scheduled)
                {
                    println!(
                        "      {} {:?} {}/{}{}",
                        c.id,
                        rec.state,
                        rec.audience.uploaded,
                        rec.audience.valid,
                        rec.failure
                            .map(|f| format!(" {}: {}", f.step, f.reason))
                            .unwrap_or_default()
                    );
                }
            }
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let night_secs = night.elapsed().as_secs_f64();
    ticker.abort();
    for w in &workers {
        w.abort();
    }

    // Past every send time: what each ESP sent, to whom.
    let last_send = campaigns.iter().map(|c| c.send_at).max().unwrap_or(t0);
    clock.set(last_send + SignedDuration::from_hours(1));
    println!();
    println!(
        "| ESP account | campaigns | rows | not in ESP | audience at send = valid − not in ESP | sends per campaign | limit refusals | peak in flight | all ready after | lower bound from the limits |"
    );
    println!("|---|---:|---:|---:|---|---|---:|---:|---:|---:|");
    let mut all_ok = true;
    for (esp, account, sim) in &sims {
        let view: &dyn SimView = sim.view.as_ref();
        let sends = view.sends();
        let mut per_name: HashMap<&str, Vec<Digest>> = HashMap::new();
        for s in &sends {
            let mut d = Digest::default();
            for r in &s.recipients {
                d.add(r);
            }
            per_name.entry(s.name.as_str()).or_default().push(d);
        }
        let mine: Vec<&Campaign> = campaigns
            .iter()
            .filter(|c| c.esp == *esp && &c.account == account)
            .collect();
        let (mut rows, mut not_in_esp, mut equal, mut once, mut ready) =
            (0, 0, 0, 0, Duration::ZERO);
        let mut bound = LowerBound::default();
        for c in &mine {
            let rec = services.store.get(&c.id).await?.context("no record")?;
            rows += c.rows;
            not_in_esp += rec.audience.not_in_esp;
            let name = format!("espbridge_{}", c.id);
            let got = per_name.get(name.as_str()).cloned().unwrap_or_default();
            if got.len() == 1 {
                once += 1;
            }
            let want = expected.get(&name).copied().unwrap_or_default();
            let valid_less_unknown =
                rec.audience.valid - rec.audience.not_in_esp - rec.audience.esp_rejected;
            if got.first() == Some(&want) && want.count == valid_less_unknown {
                equal += 1;
            } else {
                eprintln!(
                    "{}: state {:?}, sent {:?}, expected {want:?}, valid {} not_in_esp {} rejected {} failure {:?}",
                    c.id,
                    rec.state,
                    got,
                    rec.audience.valid,
                    rec.audience.not_in_esp,
                    rec.audience.esp_rejected,
                    rec.failure
                );
            }
            ready = ready.max(ready_at.get(&c.id).copied().unwrap_or_default());
            bound.add(c, &args);
        }
        let refusals = view.limit_refusals();
        all_ok &= refusals == 0 && equal == mine.len() && once == mine.len();
        println!(
            "| {esp} {account} | {} | {rows} | {not_in_esp} | {equal} of {} | 1 for {once} of {} | {refusals} | {} | {:.1} s | {:.1} s ({}) |",
            mine.len(),
            mine.len(),
            mine.len(),
            view.peak_in_flight(),
            ready.as_secs_f64(),
            bound.secs(*esp),
            bound.rule(*esp),
        );
    }
    println!();
    println!(
        "night handled in {night_secs:.1} s (all scheduled); peak RSS {:.0} MiB; total {:.1} s",
        peak_rss_bytes().map(mib).unwrap_or(0.0),
        started.elapsed().as_secs_f64()
    );
    if !all_ok {
        bail!("a limit was refused, an audience differs or a campaign was not sent exactly once");
    }
    Ok(())
}

/// Writes a campaign's audience file (ids, and e-mails for Bronto) and returns the digest of
/// the keys the ESP should send to: the ones the account knows.
fn write_audience(path: &Path, c: &Campaign, base: u64, args: &Args) -> anyhow::Result<Digest> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let bronto = c.esp == EspKind::Bronto;
    writeln!(
        w,
        "{}",
        if bronto {
            "customer_id,email"
        } else {
            "customer_id"
        }
    )?;
    let mut digest = Digest::default();
    for j in 0..c.rows {
        let (id, email) = customer((c.first + j) % base);
        let key = if bronto { email.as_str() } else { id.as_str() };
        if !espbridge_sim::in_share(key, args.unknown_share) {
            digest.add(key);
        }
        if bronto {
            writeln!(w, "{id},{email}")?;
        } else {
            writeln!(w, "{id}")?;
        }
    }
    w.flush()?;
    Ok(digest)
}

/// The least time an account's uploads can take under its documented limits alone.
#[derive(Default)]
struct LowerBound {
    /// Calls that carry audience (Emarsys: 10,000 ids each; Silverpop: a contact each in
    /// Lists mode, 100 rows in Relational Tables mode).
    calls: u64,
    /// Addresses (Bronto) or uploads (SmartFocus).
    units: u64,
    latency_ms: u64,
}

impl LowerBound {
    fn add(&mut self, c: &Campaign, args: &Args) {
        self.latency_ms = args.latency_ms;
        match (c.esp, c.mode) {
            (EspKind::Emarsys, _) => self.calls += c.rows.div_ceil(10_000),
            (EspKind::Silverpop, Some("lists")) => self.calls += c.rows,
            (EspKind::Silverpop, _) => self.calls += c.rows.div_ceil(100),
            (EspKind::Bronto, _) => self.units += c.rows,
            (EspKind::Smartfocus, _) => self.units += 1,
        }
    }

    fn secs(&self, esp: EspKind) -> f64 {
        match esp {
            // 1,000 requests a minute per API user.
            EspKind::Emarsys => self.calls as f64 * 60.0 / 1_000.0,
            // 10 concurrent requests, each taking the latency.
            EspKind::Silverpop => self.calls as f64 * self.latency_ms as f64 / 1_000.0 / 10.0,
            // 50,000 addresses a minute (the configured allowance; Bronto documents none).
            EspKind::Bronto => self.units as f64 * 60.0 / 50_000.0,
            // 5 pending uploads, each at least its own calls (the upload and the simulator's
            // four status polls, one import step each).
            EspKind::Smartfocus => {
                self.units.div_ceil(5) as f64 * 5.0 * self.latency_ms as f64 / 1_000.0
            }
        }
    }

    fn rule(&self, esp: EspKind) -> &'static str {
        match esp {
            EspKind::Emarsys => "ceil(rows/10k) calls at 1,000/min",
            EspKind::Silverpop => "calls × latency / 10 concurrent",
            EspKind::Bronto => "addresses at 50,000/min",
            EspKind::Smartfocus => "uploads / 5 pending × 5 calls × latency",
        }
    }
}
