//! The AWS bootstrap each Lambda function runs once per cold start: its own settings from the
//! environment (each missing variable named), the SDK clients it uses, and the ESP accounts
//! with their credentials read from Secrets Manager. Each function builds only its use case:
//! upload-audience never touches the scheduler, schedule-send and poll-metrics never read the
//! drop bucket, the HTTP API neither.

use crate::config::{ConfigError, build_registry, parse_accounts};
use async_trait::async_trait;
use espbridge_aws::secrets::SecretsError;
use espbridge_aws::{
    DynamoLimits, DynamoStore, EventBridgeScheduler, S3Source, SecretsReader, SnsAlerts, SqsQueue,
};
use espbridge_core::ports::{AccountLimits, Alerts, MeteredLimits, Metrics};
use espbridge_core::service::{
    ApiService, EspRegistry, PollService, ScheduleService, SweepService, UploadService,
    UploadSettings,
};
use espbridge_core::{Clock, SystemClock};
use espbridge_esp_kit::{BuildContext, SecretError, SecretSource};
use std::sync::Arc;

/// The campaign table.
pub const TABLE: &str = "ESPBRIDGE_TABLE";
/// JSON array of account configurations (credentials by secret id).
pub const ACCOUNTS: &str = "ESPBRIDGE_ACCOUNTS";
pub const UPLOAD_QUEUE_URL: &str = "ESPBRIDGE_UPLOAD_QUEUE_URL";
pub const SCHEDULE_QUEUE_URL: &str = "ESPBRIDGE_SCHEDULE_QUEUE_URL";
pub const SCHEDULE_GROUP: &str = "ESPBRIDGE_SCHEDULE_GROUP";
/// The poll-metrics function, the target of the polling and clean-up schedules.
pub const POLL_FUNCTION_ARN: &str = "ESPBRIDGE_POLL_FUNCTION_ARN";
/// The role EventBridge Scheduler assumes to invoke it.
pub const SCHEDULER_ROLE_ARN: &str = "ESPBRIDGE_SCHEDULER_ROLE_ARN";

/// The SNS topic alerts are published to (failures, partly booked sends).
pub const ALERT_TOPIC_ARN: &str = "ESPBRIDGE_ALERT_TOPIC_ARN";
/// The CloudWatch namespace of the metrics (default `espbridge`).
pub const METRICS_NAMESPACE: &str = "ESPBRIDGE_METRICS_NAMESPACE";

/// Longest audience line, in bytes (a longer row is rejected; default 64 KiB).
pub const MAX_LINE_BYTES: &str = "ESPBRIDGE_MAX_LINE_BYTES";
/// Days the drop bucket keeps a drop: no send time may lie further ahead.
pub const DROP_RETENTION_DAYS: &str = "ESPBRIDGE_DROP_RETENTION_DAYS";

/// The function's memory in MB, set by Lambda itself (not by the template, so not in the lists
/// below): the upload bounds a drop's rows by what its duplicate table can grow into.
pub const LAMBDA_MEMORY_MB: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// Memory the upload keeps for everything but the duplicate table: the runtime, the SDK
/// clients, the rounds in flight (an upload of 10 M rows peaks 26 MiB above its table).
const UPLOAD_MEMORY_RESERVE: u64 = 64 << 20;

/// The variables each function reads (infra/template.yaml gives each exactly these).
pub const UPLOAD_VARS: &[&str] = &[
    TABLE,
    ACCOUNTS,
    UPLOAD_QUEUE_URL,
    SCHEDULE_QUEUE_URL,
    MAX_LINE_BYTES,
    DROP_RETENTION_DAYS,
    ALERT_TOPIC_ARN,
    METRICS_NAMESPACE,
];
pub const SCHEDULE_VARS: &[&str] = &[
    TABLE,
    ACCOUNTS,
    SCHEDULE_GROUP,
    POLL_FUNCTION_ARN,
    SCHEDULER_ROLE_ARN,
    ALERT_TOPIC_ARN,
    METRICS_NAMESPACE,
];
pub const POLL_VARS: &[&str] = &[
    TABLE,
    ACCOUNTS,
    SCHEDULE_GROUP,
    POLL_FUNCTION_ARN,
    SCHEDULER_ROLE_ARN,
];
/// The API queues a retry's step and deletes a cancelled campaign's poll schedule (it creates
/// none, so it needs neither the poll function nor the scheduler role).
pub const API_VARS: &[&str] = &[
    TABLE,
    ACCOUNTS,
    UPLOAD_QUEUE_URL,
    SCHEDULE_QUEUE_URL,
    SCHEDULE_GROUP,
];
/// The sweep reads the accounts for their send policies only (no credentials, no ESP call).
pub const SWEEP_VARS: &[&str] = &[
    TABLE,
    ACCOUNTS,
    UPLOAD_QUEUE_URL,
    SCHEDULE_QUEUE_URL,
    SCHEDULE_GROUP,
    POLL_FUNCTION_ARN,
    SCHEDULER_ROLE_ARN,
    ALERT_TOPIC_ARN,
    METRICS_NAMESPACE,
];

/// Where a function's settings come from: the process environment in Lambda, a map in tests.
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;

    /// The variable's value, or an error naming it.
    fn require(&self, name: &str) -> Result<String, ConfigError> {
        self.var(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ConfigError::Env {
                name: name.to_owned(),
                detail: "not set".into(),
            })
    }
}

/// The process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> EnvSource for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl EnvSource for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

struct SecretsManager(SecretsReader);

#[async_trait]
impl SecretSource for SecretsManager {
    async fn get_json(&self, id: &str) -> Result<serde_json::Value, SecretError> {
        let id_owned = || id.to_owned();
        self.0.get_json(id).await.map_err(|e| match e {
            SecretsError::NotFound { .. } => SecretError::NotFound { id: id_owned() },
            SecretsError::NotText { .. } | SecretsError::Invalid { .. } => {
                SecretError::NotJson { id: id_owned() }
            }
            SecretsError::Unavailable { source, .. } => SecretError::Unavailable {
                id: id_owned(),
                code: source
                    .code
                    .clone()
                    .unwrap_or_else(|| "transport".to_owned()),
                source: Box::new(source),
            },
        })
    }
}

/// What every function starts from: its environment, the SDK configuration and the clock.
pub struct Bootstrap {
    pub env: Box<dyn EnvSource + Send + Sync>,
    pub sdk: aws_config::SdkConfig,
    pub clock: Arc<dyn Clock>,
}

impl Bootstrap {
    /// What a function's `main` starts from: JSON logging, the process environment, the SDK
    /// configuration it implies, the system clock.
    pub async fn from_env() -> Self {
        crate::logging::init_json();
        Self {
            env: Box::new(ProcessEnv),
            sdk: espbridge_aws::sdk_config().await,
            clock: Arc::new(SystemClock),
        }
    }

    fn store(&self) -> Result<Arc<DynamoStore>, ConfigError> {
        Ok(Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            self.env.require(TABLE)?,
        )))
    }

    fn scheduler(&self) -> Result<Arc<EventBridgeScheduler>, ConfigError> {
        Ok(Arc::new(EventBridgeScheduler::new(
            aws_sdk_scheduler::Client::new(&self.sdk),
            self.env.require(SCHEDULE_GROUP)?,
            self.env.require(POLL_FUNCTION_ARN)?,
            self.env.require(SCHEDULER_ROLE_ARN)?,
        )))
    }

    /// Alerts on the deployment's SNS topic.
    fn alerts(&self) -> Result<Arc<dyn Alerts>, ConfigError> {
        Ok(Arc::new(SnsAlerts::connect(
            &self.sdk,
            self.env.require(ALERT_TOPIC_ARN)?,
        )))
    }

    /// Metrics as EMF lines in the function's log, in the deployment's namespace.
    fn metrics(&self) -> Arc<dyn Metrics> {
        Arc::new(crate::metrics::EmfMetrics::new(
            self.metrics_namespace(),
            Arc::clone(&self.clock),
        ))
    }

    fn metrics_namespace(&self) -> String {
        self.env
            .var(METRICS_NAMESPACE)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| crate::metrics::DEFAULT_NAMESPACE.to_owned())
    }

    /// The ESP accounts, credentials read from Secrets Manager. With `metrics`, the waits for
    /// the accounts' limits are counted.
    async fn esps(&self, metrics: Option<&Arc<dyn Metrics>>) -> Result<EspRegistry, ConfigError> {
        let accounts = parse_accounts(&self.env.require(ACCOUNTS)?, ACCOUNTS)?;
        let secrets = SecretsManager(SecretsReader::new(aws_sdk_secretsmanager::Client::new(
            &self.sdk,
        )));
        let mut limits: Arc<dyn AccountLimits> = Arc::new(DynamoLimits::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            self.env.require(TABLE)?,
        ));
        if let Some(metrics) = metrics {
            limits = Arc::new(MeteredLimits::new(limits, Arc::clone(metrics)));
        }
        let ctx = BuildContext {
            clock: Arc::clone(&self.clock),
            limits,
        };
        build_registry(&accounts, Some(&secrets), &ctx).await
    }

    /// upload-audience: store, drop bucket, both queues, ESPs, alerts, metrics.
    pub async fn upload(&self) -> Result<UploadService, ConfigError> {
        let metrics = self.metrics();
        Ok(UploadService {
            store: self.store()?,
            source: Arc::new(S3Source::new(espbridge_aws::s3_client(&self.sdk))),
            queue: Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(&self.sdk),
                self.env.require(UPLOAD_QUEUE_URL)?,
                self.env.require(SCHEDULE_QUEUE_URL)?,
            )),
            esps: self.esps(Some(&metrics)).await?,
            clock: Arc::clone(&self.clock),
            alerts: self.alerts()?,
            metrics,
            settings: self.upload_settings()?,
        })
    }

    /// The upload's settings: the defaults, with the line length and the send horizon the
    /// deployment sets (both optional; a bad value is named).
    fn upload_settings(&self) -> Result<UploadSettings, ConfigError> {
        let number = |name: &str,
                      range: std::ops::RangeInclusive<u64>|
         -> Result<Option<u64>, ConfigError> {
            let Some(v) = self.env.var(name).filter(|v| !v.trim().is_empty()) else {
                return Ok(None);
            };
            match v.trim().parse::<u64>() {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(ConfigError::Env {
                    name: name.to_owned(),
                    detail: format!("a whole number from {} to {}", range.start(), range.end()),
                }),
            }
        };
        let mut s = UploadSettings::default();
        if let Some(n) = number(MAX_LINE_BYTES, 1024..=16 << 20)? {
            s.audience_limits.max_line_bytes = n as usize;
        }
        if let Some(days) = number(DROP_RETENTION_DAYS, 1..=3650)? {
            s.send_horizon = s
                .send_horizon
                .min(std::time::Duration::from_secs(days * 86_400));
        }
        if let Some(mb) = number(LAMBDA_MEMORY_MB, 128..=10_240)? {
            s.audience_limits = s
                .audience_limits
                .within_memory((mb << 20).saturating_sub(UPLOAD_MEMORY_RESERVE));
        }
        Ok(s)
    }

    /// schedule-send: store, ESPs, scheduler, alerts, metrics.
    pub async fn schedule(&self) -> Result<ScheduleService, ConfigError> {
        let metrics = self.metrics();
        Ok(ScheduleService {
            store: self.store()?,
            scheduler: self.scheduler()?,
            esps: self.esps(Some(&metrics)).await?,
            clock: Arc::clone(&self.clock),
            alerts: self.alerts()?,
            metrics,
        })
    }

    /// poll-metrics: store, ESPs, scheduler.
    pub async fn poll(&self) -> Result<PollService, ConfigError> {
        Ok(PollService {
            store: self.store()?,
            scheduler: self.scheduler()?,
            esps: self.esps(None).await?,
            clock: Arc::clone(&self.clock),
        })
    }

    /// sweep: store, both queues, scheduler, alerts, metrics, and the accounts' send policies
    /// (the sweep calls no ESP: no adapter is built and no secret read).
    pub async fn sweep(&self) -> Result<SweepService, ConfigError> {
        let accounts = parse_accounts(&self.env.require(ACCOUNTS)?, ACCOUNTS)?;
        let policies = accounts.iter().fold(EspRegistry::default(), |r, a| {
            // Checked when the accounts were parsed.
            r.with_policy(
                a.esp,
                a.account.clone(),
                a.send_policy().unwrap_or_default(),
            )
        });
        Ok(SweepService {
            store: self.store()?,
            queue: Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(&self.sdk),
                self.env.require(UPLOAD_QUEUE_URL)?,
                self.env.require(SCHEDULE_QUEUE_URL)?,
            )),
            scheduler: self.scheduler()?,
            alerts: self.alerts()?,
            metrics: self.metrics(),
            policies,
            clock: Arc::clone(&self.clock),
        })
    }

    /// http-api: store and ESPs.
    pub async fn api(&self) -> Result<ApiService, ConfigError> {
        Ok(ApiService {
            store: self.store()?,
            esps: self.esps(None).await?,
            queue: Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(&self.sdk),
                self.env.require(UPLOAD_QUEUE_URL)?,
                self.env.require(SCHEDULE_QUEUE_URL)?,
            )),
            scheduler: Arc::new(EventBridgeScheduler::deleting_only(
                aws_sdk_scheduler::Client::new(&self.sdk),
                self.env.require(SCHEDULE_GROUP)?,
            )),
            clock: Arc::clone(&self.clock),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named() {
        let env = |k: &str| (k != SCHEDULE_GROUP).then(|| "x".to_owned());
        let e = env.require(SCHEDULE_GROUP).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable ESPBRIDGE_SCHEDULE_GROUP: not set"
        );
        let blank = |_: &str| Some("  ".to_owned());
        assert!(blank.require(TABLE).is_err());
        assert_eq!(env.require(TABLE).unwrap(), "x");
    }

    fn bootstrap(vars: &[(&str, &str)]) -> Bootstrap {
        let env: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Bootstrap {
            env: Box::new(env),
            sdk: aws_config::SdkConfig::builder().build(),
            clock: Arc::new(SystemClock),
        }
    }

    #[test]
    fn the_upload_takes_the_line_length_and_the_retention_from_the_deployment() {
        let s = bootstrap(&[]).upload_settings().unwrap();
        let default = UploadSettings::default();
        assert_eq!(s.audience_limits, default.audience_limits);
        assert_eq!(s.send_horizon, default.send_horizon);
        let s = bootstrap(&[(MAX_LINE_BYTES, "131072"), (DROP_RETENTION_DAYS, "14")])
            .upload_settings()
            .unwrap();
        assert_eq!(s.audience_limits.max_line_bytes, 131_072);
        assert_eq!(s.send_horizon, std::time::Duration::from_secs(14 * 86_400));
        // A longer retention never widens the 30-day horizon.
        let s = bootstrap(&[(DROP_RETENTION_DAYS, "90")])
            .upload_settings()
            .unwrap();
        assert_eq!(s.send_horizon, UploadSettings::default().send_horizon);
        // The function's memory bounds the rows: 256 MB holds the table of 8.4 M ids (the
        // doubling to 16.8 M would hold 237 MB at once), 1,024 MB of 67 M.
        let rows = |mb: &str| {
            bootstrap(&[(LAMBDA_MEMORY_MB, mb)])
                .upload_settings()
                .unwrap()
                .audience_limits
                .max_rows
        };
        assert_eq!(rows("256"), 8_388_609);
        assert_eq!(rows("1024"), 67_108_873);
        assert_eq!(rows("10240"), default.audience_limits.max_rows);
        for (name, bad) in [
            (MAX_LINE_BYTES, "12"),
            (DROP_RETENTION_DAYS, "soon"),
            (LAMBDA_MEMORY_MB, "64"),
        ] {
            let Err(e) = bootstrap(&[(name, bad)]).upload_settings() else {
                panic!("{name}={bad} accepted");
            };
            assert!(
                e.to_string()
                    .starts_with(&format!("environment variable {name}")),
                "{e}"
            );
        }
    }

    /// The template's check (infra/checks/verify_sam.py) reads these lists from
    /// `infra/checks/function-env.json`: the file must say what the code reads.
    #[test]
    fn the_infrastructure_check_knows_what_each_function_reads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/checks/function-env.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let file: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        for (function, vars) in [
            ("upload-audience", UPLOAD_VARS),
            ("schedule-send", SCHEDULE_VARS),
            ("poll-metrics", POLL_VARS),
            ("http-api", API_VARS),
            ("sweep", SWEEP_VARS),
        ] {
            let mut listed: Vec<&str> = file[function]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let mut code = vars.to_vec();
            listed.sort_unstable();
            code.sort_unstable();
            assert_eq!(listed, code, "{function}");
        }
    }

    #[test]
    fn each_function_reads_only_what_it_uses() {
        // The API deletes schedules (cancel) but creates none.
        assert!(!API_VARS.contains(&POLL_FUNCTION_ARN) && !API_VARS.contains(&SCHEDULER_ROLE_ARN));
        assert!(!UPLOAD_VARS.contains(&SCHEDULE_GROUP));
        assert!(!SCHEDULE_VARS.contains(&UPLOAD_QUEUE_URL));
        // Only the functions that alert may publish to the topic.
        assert!(!API_VARS.contains(&ALERT_TOPIC_ARN) && !POLL_VARS.contains(&ALERT_TOPIC_ARN));
    }

    #[test]
    fn alerts_need_their_topic_and_metrics_have_a_default_namespace() {
        let Err(e) = bootstrap(&[]).alerts() else {
            panic!("alerts without a topic");
        };
        assert_eq!(
            e.to_string(),
            "environment variable ESPBRIDGE_ALERT_TOPIC_ARN: not set"
        );
        let topic = "arn:aws:sns:eu-west-1:123456789012:espbridge-prod-alarms";
        assert!(bootstrap(&[(ALERT_TOPIC_ARN, topic)]).alerts().is_ok());
        // The namespace is what the template's alarms watch.
        let b = bootstrap(&[(METRICS_NAMESPACE, "espbridge/prod")]);
        assert_eq!(b.metrics_namespace(), "espbridge/prod");
        assert_eq!(bootstrap(&[]).metrics_namespace(), "espbridge");
    }
}
