//! `espbridge serve`: the local stack, long-lived, on the system clock. Polls the drop folder
//! every two seconds (the S3 notification's stand-in) and queues what it finds, runs the queue
//! with its workers (an interrupted step's message is redelivered, as SQS would), fires due
//! metric polls, sweeps for stuck campaigns every hour, and serves the HTTP API on 127.0.0.1
//! until Ctrl-C: only to loopback host names, and with a token (`--token`, `ESPBRIDGE_TOKEN` or
//! `token` in the file) only to requests bearing it; without one it answers reads only
//! ([`espbridge_api::LocalGuard`]).
//!
//! The queue and the scheduler live in memory, so at start it rebuilds them from the store
//! ([`Stack::restore`]): a campaign left uploading or unbooked by the last run is queued again,
//! and every campaign's polls and pending clean-up are scheduled again.

use crate::config;
use crate::progress::Progress;
use crate::stack::{self, DROP_BUCKET, Stack, StackOptions, StateLocation};
use anyhow::{Context, Result, anyhow};
use espbridge_api::{LocalGuard, Token};
use espbridge_core::service::{Services, SweepMode, UploadSettings, chain};
use espbridge_core::{Clock, SystemClock};
use espbridge_local::{DropWatcher, LocalQueue, LocalScheduler, Message, Redelivery};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const SCAN_EVERY: Duration = Duration::from_secs(2);
/// How often the stuck-campaign sweep runs (the deployed sweep function's schedule).
const SWEEP_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);
pub const DEFAULT_PORT: u16 = 8080;
const DEFAULT_DIR: &str = "espbridge-data";

pub struct ServeArgs {
    pub config: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub port: Option<u16>,
    /// Concurrent workers of the local queue.
    pub workers: usize,
    /// Before an interrupted step's first redelivery (doubling per receive).
    pub redeliver_after: Duration,
}

/// The longest redelivery back-off, unless `--redeliver-after` is longer.
const REDELIVER_MAX: Duration = Duration::from_secs(60);

/// The queue's back-off: `--redeliver-after`, doubling per receive up to a minute.
pub fn redelivery(args: &ServeArgs) -> Redelivery {
    Redelivery {
        first: args.redeliver_after,
        max: REDELIVER_MAX.max(args.redeliver_after),
    }
}

/// Folders and port: command line first, then the file, then the defaults.
pub struct Resolved {
    pub drop_dir: PathBuf,
    pub state_dir: PathBuf,
    pub port: u16,
}

pub fn resolve(args: &ServeArgs, local: &config::LocalSettings) -> Resolved {
    let base = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let pick = |file: &Option<PathBuf>, sub: &str| match (&args.dir, file) {
        (None, Some(f)) => f.clone(),
        _ => base.join(sub),
    };
    Resolved {
        drop_dir: pick(&local.drop_dir, "drops"),
        state_dir: pick(&local.state_dir, "state"),
        port: args.port.or(local.port).unwrap_or(DEFAULT_PORT),
    }
}

/// The API token: the command line's (or `ESPBRIDGE_TOKEN`'s), else the file's. A bad one is
/// named by where it came from, never by its value.
pub fn api_token(cli: Option<Token>, local: &config::LocalSettings) -> Result<Option<Token>> {
    let (token, from) = match (cli, &local.token) {
        (Some(t), _) => (t, "--token (or ESPBRIDGE_TOKEN)"),
        (None, Some(t)) => (t.clone(), "token in the configuration file"),
        (None, None) => return Ok(None),
    };
    token.check().map_err(|e| anyhow!("{from}: {e}"))?;
    Ok(Some(token))
}

/// `token`: the command line's `--token` (or `ESPBRIDGE_TOKEN`).
pub async fn run(args: ServeArgs, token: Option<Token>) -> Result<()> {
    let (accounts, local) = match &args.config {
        Some(p) => {
            let c = config::load(p)?;
            (Some(c.accounts), c.local)
        }
        None => (None, config::LocalSettings::default()),
    };
    let r = resolve(&args, &local);
    let token = api_token(token, &local)?;
    std::fs::create_dir_all(r.drop_dir.join("campaigns"))
        .with_context(|| format!("creating drop folder {}", r.drop_dir.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut stack = Stack::start(StackOptions {
        drop_dir: r.drop_dir.clone(),
        state: StateLocation::Dir(r.state_dir.clone()),
        accounts,
        clock: Arc::clone(&clock),
        upload: UploadSettings {
            observer: Some(Arc::new(Progress::new(false))),
            ..Default::default()
        },
        redelivery: redelivery(&args),
    })
    .await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", r.port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", r.port))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let guard = LocalGuard::new(Some(addr), token).context("the API token")?;
    let restored = stack.restore().await?;
    let simulated: Vec<String> = stack
        .simulators()
        .iter()
        .map(|s| format!("{} at {}", s.entry.esp, s.base_url))
        .collect();
    println!("espbridge serving http://{addr}");
    println!("  drops: {}", r.drop_dir.display());
    println!("  state: {}", r.state_dir.display());
    if !simulated.is_empty() {
        println!("  ESP simulators: {}", simulated.join(", "));
    }
    if restored.resumed + restored.polls_restored + restored.cleanups_restored > 0 {
        println!(
            "  resumed from the store: {} unfinished steps, {} poll schedules, {} clean-ups",
            restored.resumed, restored.polls_restored, restored.cleanups_restored
        );
    }
    if guard.has_token() {
        println!("  API token: required on every request (Authorization: Bearer <token>)");
    } else {
        println!("  API token: none, so reads only (PUT needs --token or ESPBRIDGE_TOKEN)");
    }

    let services = stack.services.clone();
    let work = stack
        .take_work()
        .context("the work queue has no receiver")?;
    let worker = tokio::spawn(espbridge_local::worker::run_workers(
        Arc::new(services.clone()),
        stack.queue.clone(),
        work,
        args.workers,
    ));
    let background = tokio::spawn(watch_loop(
        services.clone(),
        stack.queue.clone(),
        stack.scheduler.clone(),
        r.drop_dir.clone(),
        clock,
    ));
    let server = axum::serve(listener, espbridge_api::local_router(services.api(), guard))
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, the server runs until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        });
    let result = server.await.context("HTTP server");
    background.abort();
    worker.abort();
    println!("espbridge stopped");
    result
}

/// Every [`SCAN_EVERY`]: new manifests and conversions files are queued, as S3 notifies SQS in
/// AWS (the workers take them, so a long upload does not hold up the metric polls, and an
/// interrupted one is redelivered), then due polls fire; every [`SWEEP_EVERY`] on the clock,
/// the sweep runs.
async fn watch_loop(
    services: Services,
    queue: LocalQueue,
    scheduler: LocalScheduler,
    drop_dir: PathBuf,
    clock: Arc<dyn Clock>,
) {
    // A manifest still being written is left for the next scan.
    let mut watcher = DropWatcher::new(&drop_dir, DROP_BUCKET).with_settle(Duration::from_secs(1));
    let mut tick = tokio::time::interval(SCAN_EVERY);
    let mut next_sweep = clock.now().saturating_add(SWEEP_EVERY).ok();
    loop {
        tick.tick().await;
        match watcher.scan().await {
            Ok(drops) => {
                for drop in drops {
                    let key = drop.key.clone();
                    match queue.send(Message::Object(drop)) {
                        Ok(()) => tracing::info!(%key, "object queued"),
                        Err(e) => tracing::error!(%key, error = %e, "queueing the object failed"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "scanning the drop folder failed"),
        }
        stack::fire_due(&services, &scheduler, clock.now()).await;
        let now = clock.now();
        if next_sweep.is_some_and(|at| now >= at) {
            next_sweep = now.saturating_add(SWEEP_EVERY).ok();
            if let Err(e) = services.sweep().sweep(SweepMode::Hourly).await {
                tracing::warn!(error = %chain(&e), "the sweep failed; it runs again in an hour");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_wins_over_file_and_defaults_fill_in() {
        let file = config::LocalSettings {
            drop_dir: Some("/srv/drops".into()),
            state_dir: None,
            port: Some(9000),
            token: None,
        };
        let none = ServeArgs {
            config: None,
            dir: None,
            port: None,
            workers: 1,
            redeliver_after: Duration::from_secs(5),
        };
        let r = resolve(&none, &file);
        assert_eq!(r.drop_dir, PathBuf::from("/srv/drops"));
        assert_eq!(r.state_dir, PathBuf::from(DEFAULT_DIR).join("state"));
        assert_eq!(r.port, 9000);
        let cli = ServeArgs {
            config: None,
            dir: Some("/tmp/x".into()),
            port: Some(1),
            workers: 1,
            redeliver_after: Duration::from_secs(90),
        };
        let r = resolve(&cli, &file);
        assert_eq!(r.drop_dir, PathBuf::from("/tmp/x/drops"));
        assert_eq!(r.port, 1);
    }

    #[test]
    fn the_command_line_token_wins_and_a_bad_one_is_not_shown() {
        let file = config::LocalSettings {
            token: Some(Token::from("file-token-0123456789")),
            ..Default::default()
        };
        let cli = Some(Token::from("cli-token-0123456789"));
        assert_eq!(
            api_token(cli, &file).unwrap(),
            Some("cli-token-0123456789".into())
        );
        assert_eq!(
            api_token(None, &file).unwrap(),
            Some("file-token-0123456789".into())
        );
        assert_eq!(
            api_token(None, &config::LocalSettings::default()).unwrap(),
            None
        );
        let e = format!("{:#}", api_token(Some("secret".into()), &file).unwrap_err());
        assert!(e.starts_with("--token") && !e.contains("secret"), "{e}");
        let short = config::LocalSettings {
            token: Some(Token::from("hunter2")),
            ..Default::default()
        };
        let e = format!("{:#}", api_token(None, &short).unwrap_err());
        assert!(
            e.contains("configuration file") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn redelivery_doubles_from_the_flag_up_to_a_minute_or_the_flag() {
        let args = |secs| ServeArgs {
            config: None,
            dir: None,
            port: None,
            workers: 1,
            redeliver_after: Duration::from_secs(secs),
        };
        let r = redelivery(&args(5));
        assert_eq!((r.first, r.max), (Duration::from_secs(5), REDELIVER_MAX));
        let r = redelivery(&args(90));
        assert_eq!(
            (r.first, r.max),
            (Duration::from_secs(90), Duration::from_secs(90))
        );
    }
}
