//! Account configuration and credentials; plain serde so the loader decides the format.

use crate::error::SilverpopError;
use espbridge_core::AccountId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a campaign's audience is represented at Silverpop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudienceMode {
    /// The campaign tag is written to `tag_field` of each recipient; a query selects the tag.
    #[default]
    Lists,
    /// Rows (ActionID, customer id, personalization fields) go to a relational table; a query
    /// selects the campaign's ActionID.
    RelationalTable,
}

impl AudienceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AudienceMode::Lists => "lists",
            AudienceMode::RelationalTable => "relational_table",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lists" => Some(AudienceMode::Lists),
            "relational_table" | "relational_tables" => Some(AudienceMode::RelationalTable),
            _ => None,
        }
    }
}

/// One Engage account (org). Every field but `account` has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SilverpopConfig {
    pub account: AccountId,
    /// The account's API host, e.g. `https://api-campaign-us-2.goacoustic.com/`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The database (LIST_ID) the queries are built on.
    #[serde(default)]
    pub database_id: String,
    /// Database field (and relational-table column) holding the customer id.
    #[serde(default = "default_customer_id_field")]
    pub customer_id_field: String,
    /// Database field the campaign tag is written to in Lists mode.
    #[serde(default = "default_tag_field")]
    pub tag_field: String,
    #[serde(default)]
    pub mode: AudienceMode,
    /// Table the rows go to in Relational Tables mode (joined to the database beforehand).
    #[serde(default)]
    pub relational_table_id: Option<String>,
    /// Folder the campaign queries are created in; `None` leaves them at the top level.
    #[serde(default)]
    pub query_folder_id: Option<String>,
    /// Folder path the scheduled mailings go to.
    #[serde(default = "default_mailing_folder")]
    pub mailing_folder: String,
    /// The org's zone: SCHEDULED and date ranges are local times in it.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Requests in flight at once for the account (Silverpop rejects the 11th).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Contacts per `upload_batch` call (`Esp::max_batch`).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Rows per InsertUpdateRelationalTable call (no documented limit; kept small).
    #[serde(default = "default_rows_per_call")]
    pub rows_per_call: usize,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Attempts per call for retryable failures (transport errors, 5xx, 429, errorid 50).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_base_url() -> String {
    "https://api-campaign-us-1.goacoustic.com/".to_owned()
}
fn default_customer_id_field() -> String {
    "CustomerID".to_owned()
}
fn default_tag_field() -> String {
    "OptimoveCampaign".to_owned()
}
fn default_mailing_folder() -> String {
    "Optimove".to_owned()
}
fn default_timezone() -> String {
    "UTC".to_owned()
}
fn default_max_concurrent() -> usize {
    10
}
fn default_batch_size() -> usize {
    1000
}
fn default_rows_per_call() -> usize {
    200
}
fn default_request_timeout() -> u64 {
    60
}
fn default_max_attempts() -> u32 {
    4
}

impl SilverpopConfig {
    /// The defaults for `account`.
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            base_url: default_base_url(),
            database_id: String::new(),
            customer_id_field: default_customer_id_field(),
            tag_field: default_tag_field(),
            mode: AudienceMode::default(),
            relational_table_id: None,
            query_folder_id: None,
            mailing_folder: default_mailing_folder(),
            timezone: default_timezone(),
            max_concurrent: default_max_concurrent(),
            batch_size: default_batch_size(),
            rows_per_call: default_rows_per_call(),
            request_timeout_secs: default_request_timeout(),
            max_attempts: default_max_attempts(),
        }
    }

    /// Refuses settings the adapter cannot work with, naming the field.
    pub fn validate(&self) -> Result<(), SilverpopError> {
        let bad = |field: &'static str, detail: &str| {
            Err(SilverpopError::Config {
                field,
                detail: detail.to_owned(),
            })
        };
        if url::Url::parse(&self.base_url).is_err() {
            return bad("base_url", "not a URL");
        }
        for (field, value) in [
            ("customer_id_field", &self.customer_id_field),
            ("tag_field", &self.tag_field),
        ] {
            if value.trim().is_empty() {
                return bad(field, "must not be empty");
            }
        }
        if self.customer_id_field == self.tag_field {
            return bad("tag_field", "must differ from customer_id_field");
        }
        if self.mode == AudienceMode::RelationalTable && self.relational_table_id.is_none() {
            return bad("relational_table_id", "required in relational_table mode");
        }
        if self.max_concurrent == 0 || self.max_concurrent > 10 {
            return bad("max_concurrent", "must be between 1 and 10");
        }
        if self.batch_size == 0 || self.rows_per_call == 0 || self.max_attempts == 0 {
            return bad(
                "batch_size",
                "batch_size, rows_per_call and max_attempts must be at least 1",
            );
        }
        if jiff::tz::TimeZone::get(&self.timezone).is_err() {
            return bad("timezone", "unknown IANA zone");
        }
        Ok(())
    }
}

/// The API user's login.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct SilverpopCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for SilverpopCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SilverpopCredentials")
            .field("username", &"<redacted>")
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_fields() {
        let c: SilverpopConfig = serde_json::from_str(r#"{"account":"sp"}"#).unwrap();
        assert_eq!(c, SilverpopConfig::new(AccountId::parse("sp").unwrap()));
        assert_eq!(c.mailing_folder, "Optimove");
        assert_eq!(c.max_concurrent, 10);
        assert_eq!(c.mode, AudienceMode::Lists);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn relational_mode_needs_a_table() {
        let c: SilverpopConfig =
            serde_json::from_str(r#"{"account":"sp","mode":"relational_table"}"#).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("relational_table_id"), "{err}");
        let mut c = SilverpopConfig::new(AccountId::parse("sp").unwrap());
        c.timezone = "Mars/Olympus".into();
        assert!(c.validate().unwrap_err().to_string().contains("timezone"));
        c.timezone = "UTC".into();
        c.max_concurrent = 11;
        assert!(c.validate().is_err());
    }

    #[test]
    fn debug_redacts_credentials() {
        let c = SilverpopCredentials {
            username: "api@example.org".into(),
            password: "s3cret".into(),
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("example.org"),
            "{shown}"
        );
    }
}
