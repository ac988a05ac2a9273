//! Account configuration and credentials. Credentials come from the secret store, configuration
//! from the account configuration file; both are plain serde so the loader decides the format.

use espbridge_core::AccountId;
use serde::Deserialize;
use std::fmt;

/// One Emarsys account. Every field but `account` has the default the integration guide implies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EmarsysConfig {
    pub account: AccountId,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Templates whose name starts with it belong to this account; stripped from display names.
    #[serde(default)]
    pub template_prefix: String,
    /// Name of the custom field holding customer ids; its numeric id is looked up once.
    #[serde(default = "default_external_id_field")]
    pub external_id_field: String,
    /// Requests per minute the API user may make (Emarsys: 1000 per API user).
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_minute: u32,
    /// Zone of the launch schedule when the request names none.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Attempts per call for retryable failures (5xx, 429, timeouts, connection errors).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_base_url() -> String {
    "https://api.emarsys.net/api/v2/".to_owned()
}
fn default_external_id_field() -> String {
    "ExternalID".to_owned()
}
fn default_rate_limit() -> u32 {
    1000
}
fn default_timezone() -> String {
    "UTC".to_owned()
}
fn default_request_timeout() -> u64 {
    30
}
fn default_max_attempts() -> u32 {
    6
}

impl EmarsysConfig {
    /// The defaults for `account`.
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            base_url: default_base_url(),
            template_prefix: String::new(),
            external_id_field: default_external_id_field(),
            rate_limit_per_minute: default_rate_limit(),
            timezone: default_timezone(),
            request_timeout_secs: default_request_timeout(),
            max_attempts: default_max_attempts(),
        }
    }
}

/// The API user and its secret.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct EmarsysCredentials {
    pub user: String,
    pub secret: String,
}

impl fmt::Debug for EmarsysCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmarsysCredentials")
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_fields() {
        let c: EmarsysConfig = serde_json::from_str(r#"{"account":"eu"}"#).unwrap();
        assert_eq!(c, EmarsysConfig::new(AccountId::parse("eu").unwrap()));
        assert_eq!(c.base_url, "https://api.emarsys.net/api/v2/");
        assert_eq!(c.external_id_field, "ExternalID");
        assert_eq!(c.rate_limit_per_minute, 1000);
        assert_eq!(c.timezone, "UTC");
        assert_eq!(c.request_timeout_secs, 30);
        assert_eq!(c.max_attempts, 6);
        assert_eq!(c.template_prefix, "");
    }

    #[test]
    fn explicit_fields_win_and_bad_account_is_refused() {
        let c: EmarsysConfig = serde_json::from_str(
            r#"{"account":"us","template_prefix":"optimove_","rate_limit_per_minute":200}"#,
        )
        .unwrap();
        assert_eq!(c.template_prefix, "optimove_");
        assert_eq!(c.rate_limit_per_minute, 200);
        assert!(serde_json::from_str::<EmarsysConfig>(r#"{"account":"a b"}"#).is_err());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let c: EmarsysCredentials =
            serde_json::from_str(r#"{"user":"api_user","secret":"s3cr3t-value"}"#).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("api_user"));
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
    }
}
