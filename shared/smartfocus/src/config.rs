//! Account configuration and credentials. Credentials come from the secret store, configuration
//! from the account configuration file; both are plain serde so the loader decides the format.

use espbridge_core::AccountId;
use espbridge_esp_kit::{
    AdapterError, Attempts, HttpDefaults, HttpOptions, HttpSettings, RequestTimeout, Secret,
};
use serde::Deserialize;

/// How `sendDate` is written in `campaign/create` (the reference is unsure which the REST server
/// prefers; both are local times in the send zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendDateFormat {
    /// `YYYY-MM-DDTHH:MM:SS` (the reference's recommendation).
    #[default]
    IsoLocal,
    /// `YYYY-MM-DD HH:MM:SS` (the SOAP wrappers' form).
    SpaceLocal,
}

/// One Campaign Commander account. Every field but `account` has the default the guides imply.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SmartFocusConfig {
    pub account: AccountId,
    /// Only messages named with it are templates; the display name is the rest.
    #[serde(default = "default_message_prefix")]
    pub message_prefix: String,
    /// Member-table field holding the customer id (merge key).
    #[serde(default = "default_customer_id_field")]
    pub customer_id_field: String,
    /// Type of that field. Only `text` is accepted: numeric ids lose leading zeros and overflow.
    #[serde(default = "default_text")]
    pub customer_id_field_type: String,
    /// Text field the campaign tag is written to; the segment selects on it.
    #[serde(default = "default_tag_field")]
    pub tag_field: String,
    /// Uploads an account may have pending at once (SmartFocus: 5).
    #[serde(default = "default_max_pending")]
    pub max_pending_uploads: usize,
    /// Largest upload file in bytes (SmartFocus: 256 MB); batches are sized to stay below it.
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: u64,
    #[serde(default = "default_poll_ms")]
    pub upload_poll_interval_ms: u64,
    /// How long one upload may stay pending before the batch is reported as a transient failure.
    #[serde(default = "default_upload_timeout")]
    pub upload_timeout_secs: u64,
    /// The account's zone at SmartFocus: `sendDate` is written as local time in it.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub send_date_format: SendDateFormat,
    /// How many recent messages/campaigns/segments are read when listing or finding by name.
    #[serde(default = "default_list_limit")]
    pub list_limit: u32,
    /// REST path (under `apiccmd/services/rest/`) of the campaign snapshot report.
    #[serde(default = "default_snapshot_path")]
    pub snapshot_path: String,
    /// `base_url`, timeout, attempts and response cap of the HTTP layer (defaults:
    /// [`HTTP_DEFAULTS`]).
    #[serde(flatten)]
    pub http: HttpOptions,
}

/// API root, request timeout and attempts when the account sets none.
pub const HTTP_DEFAULTS: HttpDefaults = HttpDefaults {
    base_url: "https://emvapi.emv3.com/",
    timeout: RequestTimeout::secs(60),
    attempts: Attempts::new(5),
};

fn default_message_prefix() -> String {
    "optimove_".to_owned()
}
fn default_customer_id_field() -> String {
    "CUSTOMER_ID".to_owned()
}
fn default_text() -> String {
    "text".to_owned()
}
fn default_tag_field() -> String {
    "CAMPAIGN_TAG".to_owned()
}
fn default_max_pending() -> usize {
    5
}
fn default_max_upload_bytes() -> u64 {
    250 * 1024 * 1024
}
fn default_poll_ms() -> u64 {
    5000
}
fn default_upload_timeout() -> u64 {
    3600
}
fn default_timezone() -> String {
    "UTC".to_owned()
}
fn default_list_limit() -> u32 {
    500
}
fn default_snapshot_path() -> String {
    "campaign/getCampaignSnapshotReport".to_owned()
}

impl SmartFocusConfig {
    /// The defaults for `account`.
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            message_prefix: default_message_prefix(),
            customer_id_field: default_customer_id_field(),
            customer_id_field_type: default_text(),
            tag_field: default_tag_field(),
            max_pending_uploads: default_max_pending(),
            max_upload_bytes: default_max_upload_bytes(),
            upload_poll_interval_ms: default_poll_ms(),
            upload_timeout_secs: default_upload_timeout(),
            timezone: default_timezone(),
            send_date_format: SendDateFormat::default(),
            list_limit: default_list_limit(),
            snapshot_path: default_snapshot_path(),
            http: HttpOptions::default(),
        }
    }

    /// The HTTP layer's settings.
    pub fn http_settings(&self) -> Result<HttpSettings, AdapterError> {
        self.http.settings(HTTP_DEFAULTS).map_err(|e| {
            AdapterError::config(
                espbridge_core::EspKind::Smartfocus,
                "base_url",
                e.to_string(),
            )
        })
    }

    /// Refuses settings the adapter cannot work with, naming the field.
    pub fn validate(&self) -> Result<(), AdapterError> {
        let bad = |field: &'static str, detail: String| {
            Err(AdapterError::Config {
                esp: espbridge_core::EspKind::Smartfocus,
                field,
                detail,
            })
        };
        let ty = self.customer_id_field_type.trim().to_ascii_lowercase();
        if !matches!(ty.as_str(), "text" | "string") {
            return bad(
                "customer_id_field_type",
                format!(
                    "the customer id field must be textual, got {:?} (numeric fields drop leading zeros)",
                    self.customer_id_field_type
                ),
            );
        }
        for (field, value) in [
            ("customer_id_field", &self.customer_id_field),
            ("tag_field", &self.tag_field),
        ] {
            if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return bad(field, format!("{value:?} is not a member-table field name"));
            }
        }
        if self.customer_id_field == self.tag_field {
            return bad("tag_field", "must differ from customer_id_field".to_owned());
        }
        if self.max_pending_uploads == 0 {
            return bad("max_pending_uploads", "must be at least 1".to_owned());
        }
        if self.max_upload_bytes < 64 * 1024 {
            return bad("max_upload_bytes", "must be at least 64 KiB".to_owned());
        }
        if self.list_limit == 0 {
            return bad("list_limit", "must be at least 1".to_owned());
        }
        if jiff::tz::TimeZone::get(&self.timezone).is_err() {
            return bad("timezone", format!("unknown zone {:?}", self.timezone));
        }
        Ok(())
    }
}

/// The API manager's login, password and manager key (the last two never printed).
#[derive(Debug, Clone, Deserialize)]
pub struct SmartFocusCredentials {
    pub login: String,
    pub password: Secret,
    pub key: Secret,
}

impl SmartFocusCredentials {
    pub fn new(
        login: impl Into<String>,
        password: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        Self {
            login: login.into(),
            password: Secret::from(password.into()),
            key: Secret::from(key.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_fields() {
        let c: SmartFocusConfig = serde_json::from_str(r#"{"account":"sf"}"#).unwrap();
        assert_eq!(c, SmartFocusConfig::new(AccountId::parse("sf").unwrap()));
        assert_eq!(c.message_prefix, "optimove_");
        assert_eq!(c.customer_id_field, "CUSTOMER_ID");
        assert_eq!(c.tag_field, "CAMPAIGN_TAG");
        assert_eq!(c.max_pending_uploads, 5);
        assert_eq!(c.send_date_format, SendDateFormat::IsoLocal);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn numeric_customer_id_field_is_refused() {
        let c: SmartFocusConfig =
            serde_json::from_str(r#"{"account":"sf","customer_id_field_type":"numeric"}"#).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("customer_id_field_type"), "{err}");
        assert!(err.contains("textual"), "{err}");
    }

    #[test]
    fn bad_fields_are_named() {
        let mut c = SmartFocusConfig::new(AccountId::parse("sf").unwrap());
        c.tag_field = "a b".into();
        assert!(c.validate().unwrap_err().to_string().contains("tag_field"));
        let mut c = SmartFocusConfig::new(AccountId::parse("sf").unwrap());
        c.timezone = "Mars/Olympus".into();
        assert!(c.validate().unwrap_err().to_string().contains("timezone"));
        let c: SmartFocusConfig =
            serde_json::from_str(r#"{"account":"sf","send_date_format":"space_local"}"#).unwrap();
        assert_eq!(c.send_date_format, SendDateFormat::SpaceLocal);
    }

    #[test]
    fn debug_redacts_password_and_key() {
        let c = SmartFocusCredentials::new("api_login", "pw-s3cret", "key-s3cret");
        let shown = format!("{c:?}");
        assert!(shown.contains("api_login"));
        assert!(
            !shown.contains("pw-s3cret") && !shown.contains("key-s3cret"),
            "{shown}"
        );
    }
}
