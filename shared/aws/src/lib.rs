//! AWS adapters for espbridge's ports.
//!
//! | port | adapter | service |
//! |---|---|---|
//! | `CampaignStore` | [`DynamoStore`] | DynamoDB, one table ([`create_table`]) |
//! | `AudienceSource` | [`S3Source`] | S3 |
//! | `WorkQueue` | [`SqsQueue`] | SQS |
//! | `Scheduler` | [`EventBridgeScheduler`] | EventBridge Scheduler |
//! | ESP credentials | [`SecretsReader`] | Secrets Manager |
//! | `Alerts` | [`SnsAlerts`] | SNS, one topic |
//!
//! Clients come from [`sdk_config`] (the environment; `AWS_ENDPOINT_URL` points them at an
//! emulator) and, for S3, [`s3_client`]. Error messages carry the service's error code and
//! message, never customer data or secret values.
//!
//! ```no_run
//! # async fn wire() {
//! use espbridge_aws::{DynamoStore, S3Source, s3_client, sdk_config};
//! let conf = sdk_config().await;
//! let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), "espbridge-campaigns");
//! let source = S3Source::new(s3_client(&conf));
//! # let _ = (store, source);
//! # }
//! ```

pub mod alerts;
pub mod config;
pub mod error;
pub mod limits;
pub mod queue;
pub mod scheduler;
pub mod secrets;
pub mod source;
pub mod store;

pub use alerts::SnsAlerts;
pub use config::{s3_client, sdk_config};
pub use error::AwsError;
pub use limits::DynamoLimits;
pub use queue::SqsQueue;
pub use scheduler::{EventBridgeScheduler, schedule_input};
pub use secrets::{SecretsError, SecretsReader};
pub use source::S3Source;
pub use store::{DynamoStore, create_table};
