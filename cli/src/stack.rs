//! The local stack: every port of the system backed by an embedded adapter (drop folder, SQLite,
//! in-process queue and scheduler), plus the ESP accounts. With no configuration file the ESP
//! accounts are in-process simulators, so the whole system runs with no AWS and no ESP account.

use anyhow::{Context, Result};
use espbridge_app::{AccountConfig, build_registry, registry};
use espbridge_core::ports::{LogAlerts, LogMetrics, MeteredLimits, Metrics, PollSchedule};
use espbridge_core::service::poll::PollOutcome;
use espbridge_core::service::{Services, SweepMode, SweepReport, UploadSettings};
use espbridge_core::{CampaignId, Clock};
use espbridge_esp_kit::{BuildContext, MemoryLimits, SimSetup, SimulatedAccount};
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
        // Locally alerts are warnings in the log (`alert=<kind>`), metrics debug lines.
        let metrics: Arc<dyn Metrics> = Arc::new(LogMetrics);
        // One process: the account limits live in its memory, shared by every worker.
        let ctx = BuildContext {
            clock: Arc::clone(&opts.clock),
            limits: Arc::new(MeteredLimits::new(
                Arc::new(MemoryLimits::new()),
                Arc::clone(&metrics),
            )),
        };
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
            alerts: Arc::new(LogAlerts),
            metrics,
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

    /// Rebuilds from the store what a stopped process held only in memory: queues every
    /// unfinished upload and booking again, recreates every poll schedule (from the day after
    /// the last snapshot) and every pending clean-up. The sweep's rules, in restart mode.
    pub async fn restore(&self) -> Result<SweepReport> {
        self.services
            .sweep()
            .sweep(SweepMode::Restart)
            .await
            .context("restoring unfinished work from the campaign store")
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::drop_gen::{self, DropSpec};
    use espbridge_core::campaign::State;
    use espbridge_core::{EspKind, ManualClock};
    use espbridge_local::{DropWatcher, Message};
    use jiff::{SignedDuration, Timestamp};

    fn options(dir: &std::path::Path, clock: &ManualClock, sim: &SimulatedAccount) -> StackOptions {
        StackOptions {
            drop_dir: dir.join("drops"),
            state: StateLocation::Dir(dir.join("state")),
            // Simulators the test keeps across both stacks: the ESP still knows the campaign.
            accounts: Some(vec![sim.entry.clone()]),
            clock: Arc::new(clock.clone()),
            upload: UploadSettings::default(),
            redelivery: Redelivery::default(),
        }
    }

    /// A 40-customer Emarsys drop sending at `send_at`, written to the drop folder.
    async fn drop_campaign(
        stack: &Stack,
        drop_dir: &std::path::Path,
        send_at: Timestamp,
    ) -> CampaignId {
        let id = CampaignId::parse("restart-1").unwrap();
        let prefix = format!("campaigns/2026-11-24/{id}/");
        let dir = drop_dir.join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        let generated = drop_gen::generate(DropSpec {
            customers: 40,
            seed: 7,
        });
        drop_gen::write_files(&dir, &generated).unwrap();
        let esp = stack.services.esps.of(EspKind::Emarsys).next().unwrap();
        let template = esp
            .list_templates()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.name.starts_with(SIM_TEMPLATE_PREFIX))
            .expect("a simulated template");
        let manifest = serde_json::json!({
            "schema_version": "1", "campaign_id": id, "esp": "emarsys",
            "template_id": template.id, "send_at": send_at.to_string(), "timezone": SIM_TIMEZONE,
            "audience": {"files": generated.file_names(), "columns": {"customer_id": "customer_id"}},
        });
        std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
        let found = DropWatcher::new(drop_dir, DROP_BUCKET)
            .scan()
            .await
            .unwrap();
        let drop = found
            .into_iter()
            .find(|d| d.key == format!("{prefix}manifest.json"))
            .unwrap();
        stack.queue.send(Message::Object(drop)).unwrap();
        id
    }

    #[tokio::test]
    async fn a_restarted_stack_polls_what_the_stopped_one_scheduled() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Timestamp::now());
        let setup = sim_setup(Arc::new(clock.clone()));
        let sim = registry::driver(EspKind::Emarsys)
            .unwrap()
            .simulate(&setup)
            .await
            .unwrap();
        let send_at = clock.now() + SignedDuration::from_hours(20);
        let day = |n: i64| send_at + SignedDuration::from_hours(24 * n + 1);

        let mut first = Stack::start(options(dir.path(), &clock, &sim))
            .await
            .unwrap();
        let id = drop_campaign(&first, &dir.path().join("drops"), send_at).await;
        first.drain().await.unwrap();
        let c = first.services.store.get(&id).await.unwrap().unwrap();
        assert_eq!(c.state, State::Scheduled, "{:?}", c.failure);
        clock.set(day(1));
        let polled = first.fire_due(day(1)).await;
        assert!(
            matches!(polled[..], [(_, Ok(PollOutcome::Stored { day: 1, .. }))]),
            "{polled:?}"
        );
        drop(first);

        // A new process on the same store: its scheduler starts empty.
        clock.set(day(2) - SignedDuration::from_hours(2));
        let second = Stack::start(options(dir.path(), &clock, &sim))
            .await
            .unwrap();
        assert!(second.pending_schedules().is_empty());
        let restored = second.restore().await.unwrap();
        assert_eq!((restored.polls_restored, restored.resumed), (1, 0));
        let pending = second.pending_schedules();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending[0].first_at,
            send_at + SignedDuration::from_hours(48),
            "day 1 is not polled again"
        );
        for n in 2..=7 {
            clock.set(day(n));
            let polled = second.fire_due(day(n)).await;
            assert_eq!(polled.len(), 1, "day {n}: {polled:?}");
            assert!(polled[0].1.is_ok(), "day {n}: {polled:?}");
        }
        let c = second.services.store.get(&id).await.unwrap().unwrap();
        assert_eq!(c.state, State::Completed);
        let days: Vec<u32> = second
            .services
            .store
            .snapshots(&id)
            .await
            .unwrap()
            .iter()
            .map(|s| s.day)
            .collect();
        assert_eq!(days, [1, 2, 3, 4, 5, 6, 7]);
        assert!(days.len() == 7 && c.note.is_none());
    }
}
