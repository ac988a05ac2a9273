//! Account configuration and credentials; plain serde so the loader decides the format.

use espbridge_core::AccountId;
use espbridge_esp_kit::{
    AdapterError, Attempts, HttpDefaults, HttpOptions, HttpSettings, RequestTimeout, Secret,
};
use serde::{Deserialize, Serialize};

/// How a campaign's audience is represented at Silverpop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudienceMode {
    /// A contact list per campaign (and variant): existing contacts are added to it one by one
    /// and the mailing goes to the list.
    #[default]
    Lists,
    /// Rows (ActionID, customer id, personalization fields) go to a relational table; a query
    /// selects the campaign's ActionID and the mailing goes to the query.
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
    /// The database (LIST_ID) the contact lists and queries are built on.
    #[serde(default)]
    pub database_id: String,
    /// Database key field (and relational-table column) holding the customer id: contacts are
    /// looked up by it.
    #[serde(default = "default_customer_id_field")]
    pub customer_id_field: String,
    #[serde(default)]
    pub mode: AudienceMode,
    /// Folder path (PARENT_FOLDER_PATH) the campaigns' contact lists are created in (Lists mode):
    /// they cannot be deleted by the API, so they are kept together.
    #[serde(default = "default_contact_list_folder")]
    pub contact_list_folder: String,
    /// Fault errorids of AddContactToContactList that mean "no such contact in the database"
    /// (counted as not in the ESP). Silverpop documents no id; the default is the simulator's.
    /// A FaultString saying "not found" or "does not exist" (and naming no list) counts too.
    #[serde(default = "default_contact_not_found_errorids")]
    pub contact_not_found_errorids: Vec<u32>,
    /// Pause between GetJobStatus polls of a query's size calculation (Relational Tables mode).
    #[serde(default = "default_job_poll_interval_ms")]
    pub job_poll_interval_ms: u64,
    /// Longest wait for a query's size calculation before the step is retried later.
    #[serde(default = "default_job_timeout_secs")]
    pub job_timeout_secs: u64,
    /// Table the rows go to in Relational Tables mode (joined to the database beforehand).
    #[serde(default)]
    pub relational_table_id: Option<String>,
    /// Folder the campaign queries are created in; `None` leaves them at the top level.
    #[serde(default)]
    pub query_folder_id: Option<String>,
    /// Folder path the scheduled mailings go to.
    #[serde(default = "default_mailing_folder")]
    pub mailing_folder: String,
    /// The org's zone (IANA, default `UTC`): SCHEDULED and date ranges are local times in it,
    /// the times Silverpop returns (a template's LAST_MODIFIED) are read in it, and the API
    /// gives them as RFC 3339 with its offset.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Requests in flight at once for the org, across the deployment (Silverpop rejects the
    /// 11th).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Live legacy sessions for the org, across the deployment (Silverpop: 20).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: u32,
    /// Contacts per `upload_batch` call (`Esp::max_batch`).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Rows per InsertUpdateRelationalTable call (no documented limit; kept small).
    #[serde(default = "default_rows_per_call")]
    pub rows_per_call: usize,
    /// `base_url`, timeout, attempts and response cap of the HTTP layer (defaults:
    /// `HTTP_DEFAULTS`).
    #[serde(flatten)]
    pub http: HttpOptions,
}

/// API root, request timeout and attempts when the account sets none.
pub const HTTP_DEFAULTS: HttpDefaults = HttpDefaults {
    base_url: "https://api-campaign-us-1.goacoustic.com/",
    timeout: RequestTimeout::secs(60),
    attempts: Attempts::new(4),
};

fn default_customer_id_field() -> String {
    "CustomerID".to_owned()
}
fn default_contact_list_folder() -> String {
    "espbridge".to_owned()
}
/// The simulator's "contact not found" errorid (invented: Silverpop documents none).
pub const SIM_CONTACT_NOT_FOUND: u32 = 129;
fn default_contact_not_found_errorids() -> Vec<u32> {
    vec![SIM_CONTACT_NOT_FOUND]
}
fn default_job_poll_interval_ms() -> u64 {
    2_000
}
fn default_job_timeout_secs() -> u64 {
    300
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
fn default_max_sessions() -> u32 {
    20
}
fn default_batch_size() -> usize {
    1000
}
fn default_rows_per_call() -> usize {
    200
}

impl SilverpopConfig {
    /// The defaults for `account`.
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            database_id: String::new(),
            customer_id_field: default_customer_id_field(),
            mode: AudienceMode::default(),
            contact_list_folder: default_contact_list_folder(),
            contact_not_found_errorids: default_contact_not_found_errorids(),
            job_poll_interval_ms: default_job_poll_interval_ms(),
            job_timeout_secs: default_job_timeout_secs(),
            relational_table_id: None,
            query_folder_id: None,
            mailing_folder: default_mailing_folder(),
            timezone: default_timezone(),
            max_concurrent: default_max_concurrent(),
            max_sessions: default_max_sessions(),
            batch_size: default_batch_size(),
            rows_per_call: default_rows_per_call(),
            http: HttpOptions::default(),
        }
    }

    /// The HTTP layer's settings.
    pub fn http_settings(&self) -> Result<HttpSettings, AdapterError> {
        self.http.settings(HTTP_DEFAULTS).map_err(|e| {
            AdapterError::config(
                espbridge_core::EspKind::Silverpop,
                "base_url",
                e.to_string(),
            )
        })
    }

    /// Refuses settings the adapter cannot work with, naming the field.
    pub fn validate(&self) -> Result<(), AdapterError> {
        let bad = |field: &'static str, detail: &str| {
            Err(AdapterError::Config {
                esp: espbridge_core::EspKind::Silverpop,
                field,
                detail: detail.to_owned(),
            })
        };
        if self.customer_id_field.trim().is_empty() {
            return bad("customer_id_field", "must not be empty");
        }
        let folder = self.contact_list_folder.trim();
        if folder.is_empty() || folder.len() > 256 || folder.chars().any(char::is_control) {
            return bad(
                "contact_list_folder",
                "must be 1 to 256 characters without control characters",
            );
        }
        if self.job_poll_interval_ms == 0 || self.job_poll_interval_ms > 60_000 {
            return bad("job_poll_interval_ms", "must be between 1 and 60000");
        }
        if self.job_timeout_secs == 0 || self.job_timeout_secs > 840 {
            return bad(
                "job_timeout_secs",
                "must be between 1 and 840 (within one function run)",
            );
        }
        if self.job_poll_interval_ms > self.job_timeout_secs.saturating_mul(1000) {
            return bad("job_poll_interval_ms", "must not exceed job_timeout_secs");
        }
        if self.mode == AudienceMode::RelationalTable && self.relational_table_id.is_none() {
            return bad("relational_table_id", "required in relational_table mode");
        }
        if self.max_concurrent == 0 || self.max_concurrent > 10 {
            return bad("max_concurrent", "must be between 1 and 10");
        }
        if self.max_sessions == 0 {
            return bad("max_sessions", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.rows_per_call == 0 {
            return bad("rows_per_call", "must be at least 1");
        }
        if jiff::tz::TimeZone::get(&self.timezone).is_err() {
            return bad("timezone", "unknown IANA zone");
        }
        Ok(())
    }
}

/// The API user's login (both parts never printed: the user name is an e-mail address).
#[derive(Debug, Clone, Deserialize)]
pub struct SilverpopCredentials {
    pub username: Secret,
    pub password: Secret,
}

impl SilverpopCredentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: Secret::from(username.into()),
            password: Secret::from(password.into()),
        }
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
        assert_eq!(c.contact_list_folder, "espbridge");
        assert_eq!(c.contact_not_found_errorids, [SIM_CONTACT_NOT_FOUND]);
        assert_eq!((c.job_poll_interval_ms, c.job_timeout_secs), (2_000, 300));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn new_settings_are_validated_by_name() {
        let base = SilverpopConfig::new(AccountId::parse("sp").unwrap());
        let field_of = |c: &SilverpopConfig| c.validate().unwrap_err().field().unwrap();
        let mut c = base.clone();
        c.contact_list_folder = "  ".into();
        assert_eq!(field_of(&c), "contact_list_folder");
        c.contact_list_folder = "a\nb".into();
        assert_eq!(field_of(&c), "contact_list_folder");
        let mut c = base.clone();
        c.job_poll_interval_ms = 0;
        assert_eq!(field_of(&c), "job_poll_interval_ms");
        let mut c = base.clone();
        c.job_timeout_secs = 0;
        assert_eq!(field_of(&c), "job_timeout_secs");
        let mut c = base.clone();
        c.job_timeout_secs = 1;
        c.job_poll_interval_ms = 1_001;
        assert_eq!(field_of(&c), "job_poll_interval_ms");
        // A removed setting in an old account entry is ignored, not refused.
        let old: SilverpopConfig =
            serde_json::from_str(r#"{"account":"sp","tag_field":"OptimoveCampaign"}"#).unwrap();
        assert!(old.validate().is_ok());
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
        let c = SilverpopCredentials::new("api@example.org", "s3cret");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("example.org"),
            "{shown}"
        );
    }
}
