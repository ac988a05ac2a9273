//! The local stack: every port of the system backed by an embedded adapter (drop folder, SQLite,
//! in-process queue and scheduler), plus the ESP accounts. With no configuration file the ESP
//! accounts are in-process simulators, so the whole system runs with no AWS and no ESP account.

use anyhow::{Context, Result};
use espbridge_app::{AccountConfig, build_registry};
use espbridge_bronto::sim::{BrontoSim, BrontoSimConfig};
use espbridge_bronto::{BrontoConfig, BrontoCredentials};
use espbridge_core::ports::{PollSchedule, WorkItem};
use espbridge_core::service::poll::PollOutcome;
use espbridge_core::service::{Deadline, Services, UploadSettings};
use espbridge_core::{AccountId, CampaignId, Clock, EspKind};
use espbridge_emarsys::sim::{EmarsysSim, EmarsysSimConfig};
use espbridge_emarsys::{EmarsysConfig, EmarsysCredentials};
use espbridge_local::{FolderSource, LocalQueue, LocalScheduler, SqliteStore};
use espbridge_silverpop::sim::{SilverpopSim, SilverpopSimConfig, TableColumn};
use espbridge_silverpop::{SilverpopConfig, SilverpopCredentials};
use espbridge_smartfocus::sim::{SmartFocusSim, SmartFocusSimConfig};
use espbridge_smartfocus::{SmartFocusConfig, SmartFocusCredentials};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// The bucket name the drop folder stands in for.
pub const DROP_BUCKET: &str = "local-drops";
/// The campaign store's file in the state folder.
pub const STORE_FILE: &str = "espbridge.sqlite3";

/// ESPs that have an adapter and a simulator. Adding an ESP to the demo and to the default
/// stack is one line here plus one arm in [`start_simulator`].
pub const SUPPORTED_ESPS: &[EspKind] = &[
    EspKind::Emarsys,
    EspKind::Smartfocus,
    EspKind::Silverpop,
    EspKind::Bronto,
];

/// Template prefix of the simulated accounts (the integration guides' `optimove_`).
pub const SIM_TEMPLATE_PREFIX: &str = "optimove_";
/// Zone of the simulated accounts and of the demo's send time.
pub const SIM_TIMEZONE: &str = "Europe/Berlin";

/// Attempts of one work item before it is handed over with `final_attempt = true`.
const WORK_ATTEMPTS: u32 = 4;
const WORK_BACKOFF: Duration = Duration::from_millis(200);

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
}

/// A running simulator; kept alive as long as the stack.
pub enum Simulator {
    Emarsys(EmarsysSim),
    Smartfocus(SmartFocusSim),
    Silverpop(SilverpopSim),
    Bronto(BrontoSim),
}

impl Simulator {
    pub fn esp(&self) -> EspKind {
        match self {
            Simulator::Emarsys(_) => EspKind::Emarsys,
            Simulator::Smartfocus(_) => EspKind::Smartfocus,
            Simulator::Silverpop(_) => EspKind::Silverpop,
            Simulator::Bronto(_) => EspKind::Bronto,
        }
    }

    pub fn base_url(&self) -> String {
        match self {
            Simulator::Emarsys(s) => s.base_url(),
            Simulator::Smartfocus(s) => s.base_url(),
            Simulator::Silverpop(s) => s.base_url(),
            Simulator::Bronto(s) => s.base_url(),
        }
    }
}

/// The running stack. The work queue's receiver is taken by [`Stack::take_work`] (the server's
/// worker task) or drained in place ([`Stack::drain`], the demo).
pub struct Stack {
    pub services: Services,
    pub scheduler: LocalScheduler,
    work: Option<UnboundedReceiver<WorkItem>>,
    simulators: Vec<Simulator>,
}

/// Starts the simulator of `esp` on `clock` and returns it with the account that points at it.
pub async fn start_simulator(
    esp: EspKind,
    clock: Arc<dyn Clock>,
) -> Result<(Simulator, AccountConfig)> {
    match esp {
        EspKind::Emarsys => {
            let sim_config = EmarsysSimConfig::default();
            let credentials = EmarsysCredentials {
                user: sim_config.user.clone(),
                secret: sim_config.secret.clone(),
            };
            let sim = EmarsysSim::start(sim_config, clock)
                .await
                .context("starting the Emarsys simulator")?;
            let mut config = EmarsysConfig::new(AccountId::parse("default")?);
            config.base_url = sim.base_url();
            config.template_prefix = SIM_TEMPLATE_PREFIX.to_owned();
            config.timezone = SIM_TIMEZONE.to_owned();
            let account = AccountConfig::Emarsys {
                config,
                credentials: Some(credentials),
                credentials_secret: None,
            };
            Ok((Simulator::Emarsys(sim), account))
        }
        EspKind::Smartfocus => {
            let sim_config = SmartFocusSimConfig {
                account_timezone: SIM_TIMEZONE.to_owned(),
                ..Default::default()
            };
            let credentials = SmartFocusCredentials {
                login: sim_config.login.clone(),
                password: sim_config.password.clone(),
                key: sim_config.key.clone(),
            };
            let sim = SmartFocusSim::start(sim_config, clock)
                .await
                .context("starting the SmartFocus simulator")?;
            let mut config = SmartFocusConfig::new(AccountId::parse("default")?);
            config.base_url = sim.base_url();
            config.message_prefix = SIM_TEMPLATE_PREFIX.to_owned();
            config.timezone = SIM_TIMEZONE.to_owned();
            // The simulator's import steps take seconds of the demo's clock, not minutes.
            config.upload_poll_interval_ms = 50;
            let account = AccountConfig::Smartfocus {
                config,
                credentials: Some(credentials),
                credentials_secret: None,
            };
            Ok((Simulator::Smartfocus(sim), account))
        }
        EspKind::Silverpop => {
            // The relational table holds the demo drop's personalization fields; ActionID is
            // the campaign id, so it is a text key here.
            let mut sim_config = SilverpopSimConfig {
                org_timezone: SIM_TIMEZONE.to_owned(),
                ..Default::default()
            };
            sim_config.relational_table.columns = vec![
                TableColumn::new("ActionID", "TEXT", true),
                TableColumn::new("CustomerID", "TEXT", true),
                TableColumn::new("first_name", "TEXT", false),
                TableColumn::new("loyalty_tier", "TEXT", false),
            ];
            let credentials = SilverpopCredentials {
                username: sim_config.username.clone(),
                password: sim_config.password.clone(),
            };
            let (database, table, folder) = (
                sim_config.database_id,
                sim_config.relational_table.id,
                sim_config.query_folder_id,
            );
            let sim = SilverpopSim::start(sim_config, clock)
                .await
                .context("starting the Silverpop simulator")?;
            let mut config = SilverpopConfig::new(AccountId::parse("default")?);
            config.base_url = sim.base_url();
            config.database_id = database.to_string();
            config.relational_table_id = Some(table.to_string());
            config.query_folder_id = Some(folder.to_string());
            config.timezone = SIM_TIMEZONE.to_owned();
            let account = AccountConfig::Silverpop {
                config,
                credentials: Some(credentials),
                credentials_secret: None,
            };
            Ok((Simulator::Silverpop(sim), account))
        }
        EspKind::Bronto => {
            let sim_config = BrontoSimConfig::default();
            let credentials = BrontoCredentials {
                api_token: sim_config.api_token.clone(),
            };
            let sim = BrontoSim::start(sim_config, clock)
                .await
                .context("starting the Bronto simulator")?;
            let mut config = BrontoConfig::new(AccountId::parse("default")?);
            config.base_url = sim.base_url();
            // Bronto keeps no sender in the message: the account's defaults.
            config.from_email = "news@brand.example".to_owned();
            config.from_name = "Brand".to_owned();
            config.reply_to = Some("care@brand.example".to_owned());
            let account = AccountConfig::Bronto {
                config,
                credentials: Some(credentials),
                credentials_secret: None,
            };
            Ok((Simulator::Bronto(sim), account))
        }
    }
}

/// The supported ESPs, comma-separated, for messages.
pub fn supported_list() -> String {
    SUPPORTED_ESPS
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
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
        let accounts = match opts.accounts {
            Some(a) => a,
            None => {
                let mut accounts = Vec::new();
                for esp in SUPPORTED_ESPS {
                    let (sim, account) = start_simulator(*esp, Arc::clone(&opts.clock)).await?;
                    simulators.push(sim);
                    accounts.push(account);
                }
                accounts
            }
        };
        let esps = build_registry(&accounts, None, Arc::clone(&opts.clock))
            .await
            .context("building the ESP accounts")?;
        let (queue, rx) = LocalQueue::new();
        let scheduler = LocalScheduler::new();
        let services = Services {
            store: Arc::new(store),
            source: Arc::new(FolderSource::new(opts.drop_dir)),
            queue: Arc::new(queue),
            scheduler: Arc::new(scheduler.clone()),
            esps,
            clock: opts.clock,
            upload: opts.upload,
        };
        Ok(Stack {
            services,
            scheduler,
            work: Some(rx),
            simulators,
        })
    }

    /// The simulators running in this stack.
    pub fn simulators(&self) -> &[Simulator] {
        &self.simulators
    }

    /// Hands the queue's receiver to a long-lived worker ([`run_worker`]).
    pub fn take_work(&mut self) -> Option<UnboundedReceiver<WorkItem>> {
        self.work.take()
    }

    /// Processes queued work until the queue is empty (items enqueued while draining included).
    /// Returns how many items ran.
    pub async fn drain(&mut self) -> Result<usize> {
        let rx = self
            .work
            .as_mut()
            .context("the work queue was handed to a worker")?;
        let mut n = 0;
        while let Ok(item) = rx.try_recv() {
            process(&self.services, &item).await;
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

/// The long-lived worker: runs every queued item until the queue closes.
pub async fn run_worker(services: Services, mut rx: UnboundedReceiver<WorkItem>) {
    while let Some(item) = rx.recv().await {
        process(&services, &item).await;
    }
}

/// Runs one work item as the SQS consumer would: a retryable error is retried a few times with a
/// short back-off, and the last attempt is `final_attempt` so the campaign fails cleanly instead
/// of waiting for a redelivery that never comes locally.
pub async fn process(services: &Services, item: &WorkItem) {
    for attempt in 1..=WORK_ATTEMPTS {
        let last = attempt == WORK_ATTEMPTS;
        let result = match item {
            WorkItem::ContinueUpload { campaign_id } => services
                .continue_upload(campaign_id, Deadline::none(), last)
                .await
                .map(|o| format!("{o:?}")),
            WorkItem::ScheduleSend { campaign_id } => services
                .schedule_send(campaign_id, last)
                .await
                .map(|o| format!("{o:?}")),
        };
        let campaign_id = match item {
            WorkItem::ContinueUpload { campaign_id } | WorkItem::ScheduleSend { campaign_id } => {
                campaign_id
            }
        };
        match result {
            Ok(outcome) => {
                tracing::debug!(%campaign_id, outcome, "work item done");
                return;
            }
            Err(e) if e.is_retryable() && !last => {
                tracing::warn!(%campaign_id, attempt, error = %e, "work item failed; retrying");
                tokio::time::sleep(WORK_BACKOFF * attempt).await;
            }
            Err(e) => {
                tracing::error!(%campaign_id, attempt, error = %e, "work item failed");
                return;
            }
        }
    }
}
