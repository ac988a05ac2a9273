//! Account configuration and credentials; plain serde so the loader decides the format.

use crate::sftp::{HostKey, SftpAuth, SftpTarget};
use espbridge_core::AccountId;
use espbridge_esp_kit::{
    AdapterError, Attempts, ExposeSecret, HttpDefaults, HttpOptions, HttpSettings, RequestTimeout,
    Secret,
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
    /// The org's SFTP endpoint for the bulk import (ImportList / ImportTable). Without it every
    /// batch goes by the per-call route.
    #[serde(default)]
    pub sftp: Option<SftpOptions>,
    /// Batches of at least this many rows go as a bulk import when `sftp` is set; smaller
    /// ones (a small audience, an audience's last remainder) by the per-call route.
    #[serde(default = "default_bulk_import_threshold")]
    pub bulk_import_threshold: usize,
    /// Rows per bulk import job (`Esp::max_batch` when `sftp` is set). A batch is held in
    /// memory while it is written out (100,000 customer ids with a few fields: ~10–30 MB), and
    /// it is the unit a failed job repeats; at most [`MAX_BULK_BATCH`].
    #[serde(default = "default_bulk_batch_size")]
    pub bulk_batch_size: usize,
    /// Pause between GetJobStatus polls of an import job.
    #[serde(default = "default_import_poll_interval_ms")]
    pub import_poll_interval_ms: u64,
    /// Longest wait for one import job in one invocation; then the step is retried later and
    /// waits for the same job again (it is recorded).
    #[serde(default = "default_import_timeout_secs")]
    pub import_timeout_secs: u64,
    /// `base_url`, timeout, attempts and response cap of the HTTP layer (defaults:
    /// `HTTP_DEFAULTS`).
    #[serde(flatten)]
    pub http: HttpOptions,
}

/// The org's SFTP endpoint (reference A.1: "SFTP for batch files: `transfer{N}.silverpop.com`",
/// the pod's "transfer" twin of the API host). The login is the account's secret (see
/// [`SilverpopCredentials`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SftpOptions {
    /// e.g. `transfer2.silverpop.com`.
    #[serde(default)]
    pub host: String,
    #[serde(default = "default_sftp_port")]
    pub port: u16,
    /// The host's key, required (no trust on first use): its OpenSSH public key line
    /// (`ssh-ed25519 AAAA…`, `ssh-rsa AAAA…`, as `ssh-keyscan` prints it without the host
    /// name) or its fingerprint (`SHA256:…`, as `ssh-keygen -lf` prints it).
    #[serde(default)]
    pub host_key: String,
    /// Deadline of each network step of a transfer (connect, login, open, one 32 KiB chunk,
    /// close).
    #[serde(default = "default_sftp_step_timeout_secs")]
    pub step_timeout_secs: u64,
}

/// The largest `bulk_batch_size`: a batch is held in memory while it is written out.
pub const MAX_BULK_BATCH: usize = 250_000;

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
fn default_sftp_port() -> u16 {
    22
}
fn default_sftp_step_timeout_secs() -> u64 {
    60
}
fn default_bulk_import_threshold() -> usize {
    5_000
}
fn default_bulk_batch_size() -> usize {
    100_000
}
fn default_import_poll_interval_ms() -> u64 {
    5_000
}
fn default_import_timeout_secs() -> u64 {
    600
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
            sftp: None,
            bulk_import_threshold: default_bulk_import_threshold(),
            bulk_batch_size: default_bulk_batch_size(),
            import_poll_interval_ms: default_import_poll_interval_ms(),
            import_timeout_secs: default_import_timeout_secs(),
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
        self.validate_bulk()
    }

    /// The bulk import's settings (checked whether or not `sftp` is set, so a mistake shows
    /// before it is switched on).
    fn validate_bulk(&self) -> Result<(), AdapterError> {
        let bad = |field: &'static str, detail: String| {
            Err(AdapterError::Config {
                esp: espbridge_core::EspKind::Silverpop,
                field,
                detail,
            })
        };
        if self.bulk_import_threshold == 0 {
            return bad("bulk_import_threshold", "must be at least 1".into());
        }
        if self.bulk_batch_size < self.bulk_import_threshold
            || self.bulk_batch_size > MAX_BULK_BATCH
        {
            return bad(
                "bulk_batch_size",
                format!(
                    "must be between bulk_import_threshold ({}) and {MAX_BULK_BATCH}",
                    self.bulk_import_threshold
                ),
            );
        }
        if self.import_poll_interval_ms == 0 || self.import_poll_interval_ms > 60_000 {
            return bad(
                "import_poll_interval_ms",
                "must be between 1 and 60000".into(),
            );
        }
        if self.import_timeout_secs == 0 || self.import_timeout_secs > 840 {
            return bad(
                "import_timeout_secs",
                "must be between 1 and 840 (within one function run)".into(),
            );
        }
        if self.import_poll_interval_ms > self.import_timeout_secs.saturating_mul(1000) {
            return bad(
                "import_poll_interval_ms",
                "must not exceed import_timeout_secs".into(),
            );
        }
        let Some(sftp) = &self.sftp else {
            return Ok(());
        };
        let host = sftp.host.trim();
        if host.is_empty()
            || host.len() > 253
            || host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@'))
        {
            return bad(
                "sftp.host",
                "must be a host name or address (e.g. transfer2.silverpop.com)".into(),
            );
        }
        if sftp.port == 0 {
            return bad("sftp.port", "must be between 1 and 65535".into());
        }
        if sftp.host_key.trim().is_empty() {
            return bad(
                "sftp.host_key",
                "required: the host's OpenSSH public key line or its SHA256: fingerprint \
                 (a host key is never trusted on first use)"
                    .into(),
            );
        }
        if let Err(e) = HostKey::parse(&sftp.host_key) {
            return bad("sftp.host_key", e.to_string());
        }
        if sftp.step_timeout_secs == 0 || sftp.step_timeout_secs > 300 {
            return bad("sftp.step_timeout_secs", "must be between 1 and 300".into());
        }
        Ok(())
    }

    /// Where and how the bulk import's files are uploaded: `None` without `sftp`. The login
    /// comes from the credentials (their `sftp_*` keys, else the API user's).
    pub fn sftp_target(
        &self,
        credentials: &SilverpopCredentials,
    ) -> Result<Option<SftpTarget>, AdapterError> {
        let Some(sftp) = &self.sftp else {
            return Ok(None);
        };
        self.validate_bulk()?;
        let config = |field: &'static str, detail: String| {
            AdapterError::config(espbridge_core::EspKind::Silverpop, field, detail)
        };
        let host_key =
            HostKey::parse(&sftp.host_key).map_err(|e| config("sftp.host_key", e.to_string()))?;
        let auth = match &credentials.sftp_private_key {
            Some(pem) => SftpAuth::private_key(
                pem.expose_secret(),
                credentials
                    .sftp_private_key_passphrase
                    .as_ref()
                    .map(|p| p.expose_secret()),
            )
            .map_err(|e| config("credentials.sftp_private_key", e.to_string()))?,
            None => SftpAuth::Password(
                credentials
                    .sftp_password
                    .clone()
                    .unwrap_or_else(|| credentials.password.clone()),
            ),
        };
        let username = credentials
            .sftp_username
            .clone()
            .unwrap_or_else(|| credentials.username.clone());
        let mut target = SftpTarget::new(sftp.host.trim(), sftp.port, username, auth, host_key);
        target.step_timeout = std::time::Duration::from_secs(sftp.step_timeout_secs);
        Ok(Some(target))
    }
}

/// The API user's login (both parts never printed: the user name is an e-mail address), and
/// the SFTP login of the bulk import. The secret's JSON keys: `username`, `password`, and
/// optionally `sftp_username` (default: `username`), `sftp_password` (default: `password`),
/// `sftp_private_key` (an OpenSSH private key, PEM text; used instead of a password when
/// present) and `sftp_private_key_passphrase` (when that key is encrypted).
#[derive(Debug, Clone, Deserialize)]
pub struct SilverpopCredentials {
    pub username: Secret,
    pub password: Secret,
    #[serde(default)]
    pub sftp_username: Option<Secret>,
    #[serde(default)]
    pub sftp_password: Option<Secret>,
    #[serde(default)]
    pub sftp_private_key: Option<Secret>,
    #[serde(default)]
    pub sftp_private_key_passphrase: Option<Secret>,
}

impl SilverpopCredentials {
    /// The API login; SFTP logs in with the same user and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: Secret::from(username.into()),
            password: Secret::from(password.into()),
            sftp_username: None,
            sftp_password: None,
            sftp_private_key: None,
            sftp_private_key_passphrase: None,
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

    const HOST_KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC/Ar3Fm2s7NF1zKMeNDxWAnLRH0e/dPZAuj3mMWI4nE";

    #[test]
    fn sftp_and_bulk_settings_parse_with_defaults() {
        let c: SilverpopConfig = serde_json::from_str(&format!(
            r#"{{"account":"sp","sftp":{{"host":"transfer2.silverpop.com","host_key":"{HOST_KEY}"}}}}"#
        ))
        .unwrap();
        let sftp = c.sftp.clone().unwrap();
        assert_eq!((sftp.port, sftp.step_timeout_secs), (22, 60));
        assert_eq!(
            (c.bulk_import_threshold, c.bulk_batch_size),
            (5_000, 100_000)
        );
        assert_eq!(
            (c.import_poll_interval_ms, c.import_timeout_secs),
            (5_000, 600)
        );
        assert!(c.validate().is_ok());
        // The login: the API user's by default, the sftp_* keys of the secret when given.
        let creds: SilverpopCredentials =
            serde_json::from_str(r#"{"username":"api@org.example","password":"s3cret"}"#).unwrap();
        let t = c.sftp_target(&creds).unwrap().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("transfer2.silverpop.com", 22));
        assert_eq!(t.username.expose_secret(), "api@org.example");
        assert!(matches!(&t.auth, SftpAuth::Password(p) if p.expose_secret() == "s3cret"));
        let creds: SilverpopCredentials = serde_json::from_str(
            r#"{"username":"api@org.example","password":"s3cret","sftp_username":"ftp@org.example","sftp_password":"ftp-pass"}"#,
        )
        .unwrap();
        let t = c.sftp_target(&creds).unwrap().unwrap();
        assert_eq!(t.username.expose_secret(), "ftp@org.example");
        assert!(matches!(&t.auth, SftpAuth::Password(p) if p.expose_secret() == "ftp-pass"));
        let key = russh::keys::PrivateKey::from(
            russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[5; 32]),
        )
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .unwrap();
        let creds: SilverpopCredentials = serde_json::from_value(serde_json::json!({
            "username": "u", "password": "p", "sftp_private_key": key.as_str()
        }))
        .unwrap();
        let t = c.sftp_target(&creds).unwrap().unwrap();
        assert!(matches!(t.auth, SftpAuth::PrivateKey(_)));
        // A key that does not decode is refused by name, without its text.
        let creds: SilverpopCredentials = serde_json::from_value(serde_json::json!({
            "username": "u", "password": "p", "sftp_private_key": "-----BEGIN nonsense-----"
        }))
        .unwrap();
        let e = c.sftp_target(&creds).unwrap_err();
        assert_eq!(e.field(), Some("credentials.sftp_private_key"));
        assert!(!e.to_string().contains("nonsense"), "{e}");
        // Without sftp, no target.
        let plain = SilverpopConfig::new(AccountId::parse("sp").unwrap());
        assert!(plain.sftp_target(&creds).unwrap().is_none());
    }

    #[test]
    fn bad_sftp_and_bulk_settings_are_refused_by_name() {
        let with = |sftp: serde_json::Value, extra: serde_json::Value| {
            let mut v = serde_json::json!({"account": "sp", "sftp": sftp});
            if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                m.extend(e.clone());
            }
            let c: SilverpopConfig = serde_json::from_value(v).unwrap();
            c.validate().err().and_then(|e| e.field())
        };
        let good = serde_json::json!({"host": "transfer2.silverpop.com", "host_key": HOST_KEY});
        let none = serde_json::json!({});
        assert_eq!(with(good.clone(), none.clone()), None);
        // No host key: refused, never trusted on first use.
        assert_eq!(
            with(
                serde_json::json!({"host": "transfer2.silverpop.com"}),
                none.clone()
            ),
            Some("sftp.host_key")
        );
        assert_eq!(
            with(
                serde_json::json!({"host": "h", "host_key": "SHA256:not base64!"}),
                none.clone()
            ),
            Some("sftp.host_key")
        );
        assert_eq!(
            with(
                serde_json::json!({"host": "", "host_key": HOST_KEY}),
                none.clone()
            ),
            Some("sftp.host")
        );
        assert_eq!(
            with(
                serde_json::json!({"host": "user@h", "host_key": HOST_KEY}),
                none.clone()
            ),
            Some("sftp.host")
        );
        assert_eq!(
            with(
                serde_json::json!({"host": "h", "port": 0, "host_key": HOST_KEY}),
                none.clone()
            ),
            Some("sftp.port")
        );
        for (extra, field) in [
            (
                serde_json::json!({"bulk_import_threshold": 0}),
                "bulk_import_threshold",
            ),
            (
                serde_json::json!({"bulk_batch_size": 4_999}),
                "bulk_batch_size",
            ),
            (
                serde_json::json!({"bulk_batch_size": 250_001}),
                "bulk_batch_size",
            ),
            (
                serde_json::json!({"import_poll_interval_ms": 0}),
                "import_poll_interval_ms",
            ),
            (
                serde_json::json!({"import_timeout_secs": 841}),
                "import_timeout_secs",
            ),
            (
                serde_json::json!({"import_timeout_secs": 1, "import_poll_interval_ms": 1_001}),
                "import_poll_interval_ms",
            ),
        ] {
            assert_eq!(with(good.clone(), extra.clone()), Some(field), "{extra}");
        }
        // A port that is not a number is a parse error, not a panic.
        let v = serde_json::json!({"account": "sp", "sftp": {"host": "h", "port": "x", "host_key": HOST_KEY}});
        assert!(serde_json::from_value::<SilverpopConfig>(v).is_err());
    }

    #[test]
    fn debug_redacts_credentials() {
        let c = SilverpopCredentials::new("api@example.org", "s3cret");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("example.org"),
            "{shown}"
        );
        let c: SilverpopCredentials = serde_json::from_str(
            r#"{"username":"u","password":"p","sftp_password":"ftp-s3cret","sftp_private_key":"PEMTEXT"}"#,
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("ftp-s3cret") && !shown.contains("PEMTEXT"),
            "{shown}"
        );
    }
}
