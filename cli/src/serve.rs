//! `espbridge serve`: the local stack, long-lived, on the system clock. Polls the drop folder
//! every two seconds (the S3 notification's stand-in), runs queued work, fires due metric polls,
//! and serves the HTTP API on 127.0.0.1 until Ctrl-C.

use crate::config;
use crate::progress::Progress;
use crate::stack::{self, DROP_BUCKET, Stack, StackOptions, StateLocation};
use anyhow::{Context, Result};
use espbridge_core::service::{Deadline, Services, UploadSettings, chain};
use espbridge_core::{Clock, SystemClock};
use espbridge_local::{DropWatcher, LocalScheduler};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const SCAN_EVERY: Duration = Duration::from_secs(2);
const DEFAULT_PORT: u16 = 8080;
const DEFAULT_DIR: &str = "espbridge-data";

pub struct ServeArgs {
    pub config: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub port: Option<u16>,
    /// Concurrent workers of the local queue.
    pub workers: usize,
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

pub async fn run(args: ServeArgs) -> Result<()> {
    let (accounts, local) = match &args.config {
        Some(p) => {
            let c = config::load(p)?;
            (Some(c.accounts), c.local)
        }
        None => (None, config::LocalSettings::default()),
    };
    let r = resolve(&args, &local);
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
    })
    .await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", r.port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", r.port))?;
    let addr = listener.local_addr().context("reading the bound address")?;
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

    let services = stack.services.clone();
    let work = stack
        .take_work()
        .context("the work queue has no receiver")?;
    let worker = tokio::spawn(espbridge_local::worker::run_workers(
        services.clone(),
        work,
        args.workers,
    ));
    let background = tokio::spawn(watch_loop(
        services.clone(),
        stack.scheduler.clone(),
        r.drop_dir.clone(),
        clock,
    ));
    let server = axum::serve(listener, espbridge_api::router(services.api()))
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

/// Every [`SCAN_EVERY`]: new manifests and conversions files go to `handle_object` (each in its
/// own task, so a long upload does not hold up the others or the metric polls), then due polls
/// fire.
async fn watch_loop(
    services: Services,
    scheduler: LocalScheduler,
    drop_dir: PathBuf,
    clock: Arc<dyn Clock>,
) {
    // A manifest still being written is left for the next scan.
    let mut watcher = DropWatcher::new(&drop_dir, DROP_BUCKET).with_settle(Duration::from_secs(1));
    let mut tick = tokio::time::interval(SCAN_EVERY);
    loop {
        tick.tick().await;
        match watcher.scan().await {
            Ok(drops) => {
                for drop in drops {
                    let services = services.clone();
                    tokio::spawn(async move {
                        match services
                            .upload()
                            .handle_object(&drop, Deadline::none())
                            .await
                        {
                            Ok(outcome) => {
                                tracing::info!(key = %drop.key, outcome = ?outcome, "object handled")
                            }
                            Err(e) => {
                                tracing::error!(key = %drop.key, error = %chain(&e), "drop failed")
                            }
                        }
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "scanning the drop folder failed"),
        }
        stack::fire_due(&services, &scheduler, clock.now()).await;
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
        };
        let none = ServeArgs {
            config: None,
            dir: None,
            port: None,
            workers: 1,
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
        };
        let r = resolve(&cli, &file);
        assert_eq!(r.drop_dir, PathBuf::from("/tmp/x/drops"));
        assert_eq!(r.port, 1);
    }
}
