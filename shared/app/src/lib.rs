//! Wiring shared by the Lambda functions and the CLI: the account configuration, the ESP
//! registry built from it, logging, metrics (EMF), and the AWS bootstrap (clients, settings
//! from the environment, credentials from Secrets Manager read once per cold start).

pub mod aws;
pub mod config;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod registry;

pub use config::{AccountConfig, ConfigError, build_registry, parse_accounts};
pub use espbridge_esp_kit::SecretSource;
