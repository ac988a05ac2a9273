//! Account configuration and credentials. Credentials come from the secret store, configuration
//! from the account configuration file; both are plain serde so the loader decides the format.

use espbridge_core::AccountId;
use espbridge_esp_kit::{
    AdapterError, Attempts, HttpDefaults, HttpOptions, HttpSettings, RequestTimeout, Secret,
};
use serde::Deserialize;

/// One Emarsys account. Every field but `account` has the default the integration guide implies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EmarsysConfig {
    pub account: AccountId,
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
    /// `base_url`, timeout, attempts and response cap of the HTTP layer (defaults:
    /// [`HTTP_DEFAULTS`]).
    #[serde(flatten)]
    pub http: HttpOptions,
}

/// API root, request timeout and attempts when the account sets none.
pub const HTTP_DEFAULTS: HttpDefaults = HttpDefaults {
    base_url: "https://api.emarsys.net/api/v2/",
    timeout: RequestTimeout::secs(30),
    attempts: Attempts::new(6),
};

fn default_external_id_field() -> String {
    "ExternalID".to_owned()
}
fn default_rate_limit() -> u32 {
    1000
}
fn default_timezone() -> String {
    "UTC".to_owned()
}

impl EmarsysConfig {
    /// The defaults for `account`.
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            template_prefix: String::new(),
            external_id_field: default_external_id_field(),
            rate_limit_per_minute: default_rate_limit(),
            timezone: default_timezone(),
            http: HttpOptions::default(),
        }
    }

    /// The HTTP layer's settings.
    pub fn http_settings(&self) -> Result<HttpSettings, AdapterError> {
        self.http.settings(HTTP_DEFAULTS).map_err(|e| {
            AdapterError::config(espbridge_core::EspKind::Emarsys, "base_url", e.to_string())
        })
    }
}

/// The API user and its secret (never printed: `Debug` shows it redacted).
#[derive(Debug, Clone, Deserialize)]
pub struct EmarsysCredentials {
    pub user: String,
    pub secret: Secret,
}

impl EmarsysCredentials {
    pub fn new(user: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            secret: Secret::from(secret.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_fields() {
        let c: EmarsysConfig = serde_json::from_str(r#"{"account":"eu"}"#).unwrap();
        assert_eq!(c, EmarsysConfig::new(AccountId::parse("eu").unwrap()));
        assert_eq!(
            c.http_settings().unwrap().base_url.to_string(),
            "https://api.emarsys.net/api/v2/"
        );
        assert_eq!(c.external_id_field, "ExternalID");
        assert_eq!(c.rate_limit_per_minute, 1000);
        assert_eq!(c.timezone, "UTC");
        let http = c.http_settings().unwrap();
        assert_eq!(http.timeout, RequestTimeout::secs(30));
        assert_eq!(http.attempts, Attempts::new(6));
        let tuned: EmarsysConfig = serde_json::from_str(
            r#"{"account":"eu","request_timeout_secs":5,"max_attempts":2,"max_response_bytes":65536}"#,
        )
        .unwrap();
        let http = tuned.http_settings().unwrap();
        assert_eq!(http.timeout, RequestTimeout::secs(5));
        assert_eq!(http.attempts, Attempts::new(2));
        assert_eq!(http.max_response.get(), 65536);
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
