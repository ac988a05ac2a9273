//! The AWS bootstrap every Lambda function runs once per cold start: settings from the
//! environment (each missing variable named), SDK clients, and the ESP registry with its
//! credentials read from Secrets Manager.

use crate::config::{ConfigError, build_registry, parse_accounts};
use async_trait::async_trait;
use espbridge_aws::secrets::SecretsError;
use espbridge_aws::{DynamoStore, EventBridgeScheduler, S3Source, SecretsReader, SqsQueue};
use espbridge_core::service::{Services, UploadSettings};
use espbridge_core::{Clock, SystemClock};
use espbridge_esp_kit::{SecretError, SecretSource};
use std::sync::Arc;

/// The functions' environment (see infra/template.yaml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaEnv {
    pub table: String,
    pub upload_queue_url: String,
    pub schedule_queue_url: String,
    pub schedule_group: String,
    pub poll_function_arn: String,
    pub scheduler_role_arn: String,
    /// JSON array of account configurations (credentials by secret id).
    pub accounts: String,
}

impl LambdaEnv {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError::Env {
                    name: name.to_owned(),
                    detail: "not set".into(),
                })
        };
        Ok(Self {
            table: var("ESPBRIDGE_TABLE")?,
            upload_queue_url: var("ESPBRIDGE_UPLOAD_QUEUE_URL")?,
            schedule_queue_url: var("ESPBRIDGE_SCHEDULE_QUEUE_URL")?,
            schedule_group: var("ESPBRIDGE_SCHEDULE_GROUP")?,
            poll_function_arn: var("ESPBRIDGE_POLL_FUNCTION_ARN")?,
            scheduler_role_arn: var("ESPBRIDGE_SCHEDULER_ROLE_ARN")?,
            accounts: var("ESPBRIDGE_ACCOUNTS")?,
        })
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

/// Builds the services on AWS from `env`, an SDK configuration and a clock (the system clock in
/// Lambda; tests pass a manual one shared with the ESP simulator).
pub async fn services(
    env: &LambdaEnv,
    sdk: &aws_config::SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<Services, ConfigError> {
    let accounts = parse_accounts(&env.accounts, "ESPBRIDGE_ACCOUNTS")?;
    let secrets = SecretsManager(SecretsReader::new(aws_sdk_secretsmanager::Client::new(sdk)));
    let esps = build_registry(&accounts, Some(&secrets), Arc::clone(&clock)).await?;
    Ok(Services {
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            env.table.clone(),
        )),
        source: Arc::new(S3Source::new(espbridge_aws::s3_client(sdk))),
        queue: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(sdk),
            env.upload_queue_url.clone(),
            env.schedule_queue_url.clone(),
        )),
        scheduler: Arc::new(EventBridgeScheduler::new(
            aws_sdk_scheduler::Client::new(sdk),
            env.schedule_group.clone(),
            env.poll_function_arn.clone(),
            env.scheduler_role_arn.clone(),
        )),
        esps,
        clock,
        upload: UploadSettings::default(),
    })
}

/// What a function's `main` calls: logging, then the services from the process environment.
pub async fn services_from_env() -> Result<Services, ConfigError> {
    crate::logging::init_json();
    let env = LambdaEnv::from_env()?;
    let sdk = espbridge_aws::sdk_config().await;
    services(&env, &sdk, Arc::new(SystemClock)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named() {
        let e =
            LambdaEnv::from_lookup(|k| (k != "ESPBRIDGE_SCHEDULE_GROUP").then(|| "x".to_owned()))
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable ESPBRIDGE_SCHEDULE_GROUP: not set"
        );
        assert!(LambdaEnv::from_lookup(|_| Some("x".into())).is_ok());
    }
}
