//! Account configuration and credentials. Credentials come from the secret store, configuration
//! from the account configuration file; both are plain serde so the loader decides the format.

use crate::error::SmartFocusError;
use espbridge_core::AccountId;
use serde::Deserialize;
use std::fmt;

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
    /// The account's pod host, e.g. `https://p5apie.emv3.com/`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
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
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Attempts per call for retryable failures (5xx without envelope, transport errors).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_base_url() -> String {
    "https://emvapi.emv3.com/".to_owned()
}
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
fn default_request_timeout() -> u64 {
    60
}
fn default_max_attempts() -> u32 {
    5
}

impl SmartFocusConfig {
    /// The defaults for `account`.
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            base_url: default_base_url(),
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
            request_timeout_secs: default_request_timeout(),
            max_attempts: default_max_attempts(),
        }
    }

    /// Refuses settings the adapter cannot work with, naming the field.
    pub fn validate(&self) -> Result<(), SmartFocusError> {
        let bad =
            |field: &'static str, detail: String| Err(SmartFocusError::Config { field, detail });
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

/// The API manager's login, password and manager key.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct SmartFocusCredentials {
    pub login: String,
    pub password: String,
    pub key: String,
}

impl fmt::Debug for SmartFocusCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmartFocusCredentials")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("key", &"<redacted>")
            .finish()
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
        let c = SmartFocusCredentials {
            login: "api_login".into(),
            password: "pw-s3cret".into(),
            key: "key-s3cret".into(),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("api_login"));
        assert!(
            !shown.contains("pw-s3cret") && !shown.contains("key-s3cret"),
            "{shown}"
        );
    }
}
