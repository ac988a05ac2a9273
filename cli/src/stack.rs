//! The local stack: every port of the system backed by an embedded adapter (drop folder, SQLite,
//! in-process queue and scheduler), plus the ESP accounts. With no configuration file the ESP
//! accounts are in-process simulators, so the whole system runs with no AWS and no ESP account.

use anyhow::{Context, Result};
use espbridge_app::{AccountConfig, build_registry, registry};
use espbridge_core::ports::PollSchedule;
use espbridge_core::service::poll::PollOutcome;
use espbridge_core::service::{Services, UploadSettings};
use espbridge_core::{CampaignId, Clock};
use espbridge_esp_kit::{BuildContext, SimSetup, SimulatedAccount};
use espbridge_local::{FolderSource, Inbox, LocalQueue, LocalScheduler, Redelivery, SqliteStore};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::error::TryRecvError;

/// The bucket name the drop folder stands in for.
pub const DROP_BUCKET: &str = "local-drops";
/// The campaign store's file in the state folder.
pub const STORE_FILE: &str = "espbridge.sqlite3";

/// Template prefix of the simulated accounts (the integration guides' `optimove_`).
pub const SIM_TEMPLATE_PREFIX: &str = "optimove_";
/// Zone of the simulated accounts and of the demo's send time.
pub const SIM_TIMEZONE: &str = "Europe/Berlin";

/// Where the campaign store lives.
pub enum StateLocation {
    /// `espbridge.sqlite3` in this folder (created if missing).
    Dir(PathBuf),
    /// A private in-memory database (one-shot commands such as `templates`).
    Memory,
}

/// What to start.
pub struct StackOptions {
    pub drop_dir: PathBuf,
    pub state: StateLocation,
    /// ESP accounts from a configuration file; `None` starts one simulator per supported ESP.
    pub accounts: Option<Vec<AccountConfig>>,
    pub clock: Arc<dyn Clock>,
    pub upload: UploadSettings,
    /// How long an interrupted step's message stays away before it is redelivered.
    pub redelivery: Redelivery,
}

/// The running stack. The queue's inbox is taken by [`Stack::take_work`] (the server's workers)
/// or drained in place ([`Stack::drain`], the demo).
pub struct Stack {
    pub services: Services,
    pub scheduler: LocalScheduler,
    /// The queue the services hand work on through; drops are sent to it as messages too.
    pub queue: LocalQueue,
    work: Option<Inbox>,
    simulators: Vec<SimulatedAccount>,
}

/// The demo's simulated accounts: the simulators' zone and template prefix, no latency.
pub fn sim_setup(clock: Arc<dyn Clock>) -> SimSetup {
    SimSetup::new(clock, SIM_TIMEZONE, SIM_TEMPLATE_PREFIX)
}

/// Starts every registered ESP's simulator with `setup`, each with an account pointing at it.
pub async fn start_simulators(setup: &SimSetup) -> Result<Vec<SimulatedAccount>> {
    let mut out = Vec::new();
    for driver in registry::DRIVERS {
        let sim = driver
            .simulate(setup)
            .await
            .with_context(|| format!("starting the {} simulator", driver.kind()))?;
        out.push(sim);
    }
    Ok(out)
}

impl Stack {
    pub async fn start(opts: StackOptions) -> Result<Stack> {
        let store = match &opts.state {
            StateLocation::Dir(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating state folder {}", dir.display()))?;
                let path = dir.join(STORE_FILE);
                SqliteStore::open(&path)
                    .with_context(|| format!("opening campaign store {}", path.display()))?
            }
            StateLocation::Memory => {
                SqliteStore::in_memory().context("opening an in-memory campaign store")?
            }
        };
        let mut simulators = Vec::new();
        let accounts: Vec<AccountConfig> = match opts.accounts {
            Some(a) => a,
            None => {
                simulators = start_simulators(&sim_setup(Arc::clone(&opts.clock))).await?;
                simulators.iter().map(|s| s.entry.clone()).collect()
            }
        };
        // One process: the account limits live in its memory, shared by every worker.
        let ctx = BuildContext::in_memory(Arc::clone(&opts.clock));
        let esps = build_registry(&accounts, None, &ctx)
            .await
            .context("building the ESP accounts")?;
        let (queue, rx) = LocalQueue::with_redelivery(opts.redelivery);
        let scheduler = LocalScheduler::new();
        let services = Services {
            store: Arc::new(store),
            source: Arc::new(FolderSource::new(opts.drop_dir)),
            queue: Arc::new(queue.clone()),
            scheduler: Arc::new(scheduler.clone()),
            esps,
            clock: opts.clock,
            upload_settings: opts.upload,
        };
        Ok(Stack {
            services,
            scheduler,
            queue,
            work: Some(rx),
            simulators,
        })
    }

    /// The simulators running in this stack.
    pub fn simulators(&self) -> &[SimulatedAccount] {
        &self.simulators
    }

    /// Hands the queue's inbox to the long-lived workers ([`espbridge_local::worker::run_workers`]).
    pub fn take_work(&mut self) -> Option<Inbox> {
        self.work.take()
    }

    /// Processes queued messages one at a time until none is left: those sent while draining
    /// and those waiting to be redelivered included (it waits for their back-off). Returns how
    /// many receives ran.
    pub async fn drain(&mut self) -> Result<usize> {
        let rx = self
            .work
            .as_mut()
            .context("the work queue was handed to a worker")?;
        let mut n = 0;
        loop {
            let delivery = match rx.try_recv() {
                Ok(d) => d,
                // Nothing queued, nothing in process: only redeliveries can be outstanding.
                Err(TryRecvError::Empty) if self.queue.outstanding() > 0 => match rx.recv().await {
                    Some(d) => d,
                    None => break,
                },
                Err(_) => break,
            };
            espbridge_local::worker::process(&self.services, &self.queue, delivery).await;
            n += 1;
        }
        Ok(n)
    }

    /// Runs poll-metrics for every schedule occurrence due at `now`.
    pub async fn fire_due(&self, now: jiff::Timestamp) -> Vec<(CampaignId, Result<PollOutcome>)> {
        fire_due(&self.services, &self.scheduler, now).await
    }

    /// Schedules not yet finished.
    pub fn pending_schedules(&self) -> Vec<PollSchedule> {
        self.scheduler.pending()
    }
}

/// Runs poll-metrics for every occurrence due at `now`.
pub async fn fire_due(
    services: &Services,
    scheduler: &LocalScheduler,
    now: jiff::Timestamp,
) -> Vec<(CampaignId, Result<PollOutcome>)> {
    let mut out = Vec::new();
    for event in scheduler.due(now) {
        let r = services
            .poll()
            .poll_metrics(&event.campaign_id)
            .await
            .with_context(|| format!("polling metrics of campaign {}", event.campaign_id));
        if let Err(e) = &r {
            tracing::warn!(campaign_id = %event.campaign_id, error = %format!("{e:#}"), "poll failed");
        }
        out.push((event.campaign_id, r));
    }
    out
}
