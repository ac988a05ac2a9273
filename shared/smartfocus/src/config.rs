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

/// How the template listing finds the account's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageListing {
    /// `getMessageSummaryList` on the `apiccmd` SOAP binding, searched by name (the prefix) and
    /// type `email`, in pages of `summary_page_size`: every summary holds the id, name, type,
    /// subject and creation date, so a listing costs one call per page of prefixed messages,
    /// whatever the number of other messages and clones (reference Part B.4; the REST form of
    /// this operation is unknown).
    #[default]
    Summary,
    /// REST `getMessagesByPeriod` over the whole history, then `getMessage` for every id: lists
    /// every message too, but costs one call per message of the account (clones included). For
    /// an account whose SOAP binding refuses the session token.
    ByPeriod,
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
    /// The pool of text member fields campaign tags are written to (default `CAMPAIGN_TAG_1` …
    /// `CAMPAIGN_TAG_10`). Each pending campaign (or A/B variant) holds one of them from its
    /// audience upload until `tag_hold_after_send_mins` after its send time: SmartFocus evaluates
    /// a segment when the campaign sends, so a field shared by two pending campaigns would select
    /// only the later one's customers. The number of fields is the number of campaigns the
    /// account can have pending at once; one more fails with a capacity error naming this
    /// setting. The marketer creates the fields (text) in the member table.
    #[serde(default = "default_tag_fields")]
    pub tag_fields: Vec<String>,
    /// How long after its send time a campaign keeps its tag field (default 120: the segment is
    /// evaluated when the send starts and a send runs up to an hour).
    #[serde(default = "default_tag_hold")]
    pub tag_hold_after_send_mins: u64,
    /// Member field holding the e-mail address (default `EMAIL`). Segments require it to be
    /// non-empty, which leaves out the members a merge created for customer ids SmartFocus did
    /// not know (they have no address).
    #[serde(default = "default_email_field")]
    pub email_field: String,
    /// The retired single-field setting: refused with a pointer to `tag_fields`, so an old
    /// configuration is not silently run on fields the account lacks.
    #[serde(default, rename = "tag_field")]
    retired_tag_field: Option<String>,
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
    /// The account's zone at SmartFocus: `sendDate` is written as local time in it, dates the
    /// API returns without an offset are read in it, and every timestamp the adapter hands out
    /// (`created`, `send_at`) is RFC 3339 with its offset. Default `UTC`: the reference names no
    /// account zone.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub send_date_format: SendDateFormat,
    /// How many recent campaigns/segments are read, and how many message ids a search by name
    /// may return, when finding an object by name (the template listing pages instead).
    #[serde(default = "default_list_limit")]
    pub list_limit: u32,
    /// How the template listing reads the account's messages (default `summary`).
    #[serde(default)]
    pub message_listing: MessageListing,
    /// Summaries asked for per `getMessageSummaryList` page (default 100; the reference gives
    /// no maximum, and a server that answers fewer is paged by what it answers).
    #[serde(default = "default_summary_page_size")]
    pub summary_page_size: u32,
    /// REST path (under `apiccmd/services/rest/`) of the campaign snapshot report.
    #[serde(default = "default_snapshot_path")]
    pub snapshot_path: String,
    /// REST path (under `apiccmd/services/rest/`) of the segment count (SOAP
    /// `segmentationCount`, whose REST spelling the reference does not give), with `{token}` and
    /// `{id}` placeholders. HTTP 404 on it leaves `not_in_esp` uncounted (with a warning).
    #[serde(default = "default_segment_count_path")]
    pub segment_count_path: String,
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
fn default_tag_fields() -> Vec<String> {
    (1..=10).map(|i| format!("CAMPAIGN_TAG_{i}")).collect()
}
fn default_tag_hold() -> u64 {
    120
}
fn default_email_field() -> String {
    "EMAIL".to_owned()
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
fn default_summary_page_size() -> u32 {
    100
}
fn default_snapshot_path() -> String {
    "campaign/getCampaignSnapshotReport".to_owned()
}
fn default_segment_count_path() -> String {
    "segmentationservice/{token}/segment/{id}/count".to_owned()
}

/// Whether `name` can be a member-table field name.
fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl SmartFocusConfig {
    /// The defaults for `account`.
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            message_prefix: default_message_prefix(),
            customer_id_field: default_customer_id_field(),
            customer_id_field_type: default_text(),
            tag_fields: default_tag_fields(),
            tag_hold_after_send_mins: default_tag_hold(),
            email_field: default_email_field(),
            retired_tag_field: None,
            max_pending_uploads: default_max_pending(),
            max_upload_bytes: default_max_upload_bytes(),
            upload_poll_interval_ms: default_poll_ms(),
            upload_timeout_secs: default_upload_timeout(),
            timezone: default_timezone(),
            send_date_format: SendDateFormat::default(),
            list_limit: default_list_limit(),
            message_listing: MessageListing::default(),
            summary_page_size: default_summary_page_size(),
            snapshot_path: default_snapshot_path(),
            segment_count_path: default_segment_count_path(),
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
        if self.retired_tag_field.is_some() {
            return bad(
                "tag_field",
                "replaced by tag_fields: list one text member field per campaign the account may \
                 have pending at once (e.g. [\"CAMPAIGN_TAG_1\", ..., \"CAMPAIGN_TAG_10\"])"
                    .to_owned(),
            );
        }
        for (field, value) in [
            ("customer_id_field", &self.customer_id_field),
            ("email_field", &self.email_field),
        ] {
            if !is_field_name(value) {
                return bad(field, format!("{value:?} is not a member-table field name"));
            }
        }
        if self
            .email_field
            .eq_ignore_ascii_case(&self.customer_id_field)
        {
            return bad(
                "email_field",
                "must differ from customer_id_field".to_owned(),
            );
        }
        if self.tag_fields.is_empty() {
            return bad(
                "tag_fields",
                "must list at least one text member field (one per campaign pending at once)"
                    .to_owned(),
            );
        }
        for (i, name) in self.tag_fields.iter().enumerate() {
            if !is_field_name(name) {
                return bad(
                    "tag_fields",
                    format!("{name:?} is not a member-table field name"),
                );
            }
            for other in [&self.customer_id_field, &self.email_field] {
                if name.eq_ignore_ascii_case(other) {
                    return bad(
                        "tag_fields",
                        format!("{name:?} is also the customer id or e-mail field"),
                    );
                }
            }
            if self.tag_fields[..i]
                .iter()
                .any(|earlier| earlier.eq_ignore_ascii_case(name))
            {
                return bad("tag_fields", format!("{name:?} is listed twice"));
            }
        }
        if u32::try_from(self.tag_fields.len()).is_err() {
            return bad("tag_fields", "too many fields".to_owned());
        }
        if !(self.segment_count_path.contains("{token}")
            && self.segment_count_path.contains("{id}"))
        {
            return bad(
                "segment_count_path",
                "must hold the {token} and {id} placeholders".to_owned(),
            );
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
        if !(1..=10_000).contains(&self.summary_page_size) {
            return bad(
                "summary_page_size",
                "must be between 1 and 10000".to_owned(),
            );
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
        assert_eq!(c.tag_fields.len(), 10);
        assert_eq!(c.tag_fields[0], "CAMPAIGN_TAG_1");
        assert_eq!(c.tag_fields[9], "CAMPAIGN_TAG_10");
        assert_eq!(c.tag_hold_after_send_mins, 120);
        assert_eq!(c.email_field, "EMAIL");
        assert_eq!(
            c.segment_count_path,
            "segmentationservice/{token}/segment/{id}/count"
        );
        assert_eq!(c.max_pending_uploads, 5);
        assert_eq!(c.send_date_format, SendDateFormat::IsoLocal);
        assert_eq!(c.message_listing, MessageListing::Summary);
        assert_eq!(c.summary_page_size, 100);
        assert_eq!(c.timezone, "UTC");
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
        let sf = || SmartFocusConfig::new(AccountId::parse("sf").unwrap());
        let refused = |c: SmartFocusConfig| c.validate().unwrap_err().to_string();
        let mut c = sf();
        c.tag_fields = vec!["TAG_A".into(), "a b".into()];
        let err = refused(c);
        assert!(
            err.contains("tag_fields") && err.contains("\"a b\""),
            "{err}"
        );
        let mut c = sf();
        c.tag_fields = Vec::new();
        assert!(refused(c).contains("tag_fields"));
        let mut c = sf();
        c.tag_fields = vec!["TAG_A".into(), "TAG_B".into(), "tag_a".into()];
        let err = refused(c);
        assert!(
            err.contains("tag_fields") && err.contains("listed twice"),
            "{err}"
        );
        assert!(err.contains("\"tag_a\""), "{err}");
        let mut c = sf();
        c.tag_fields = vec!["TAG_A".into(), "customer_id".into()];
        assert!(refused(c).contains("tag_fields"));
        let mut c = sf();
        c.email_field = "E MAIL".into();
        assert!(refused(c).contains("email_field"));
        let mut c = sf();
        c.segment_count_path = "segmentationservice/segment/count".into();
        assert!(refused(c).contains("segment_count_path"));
        // The retired single field is refused with a pointer to its replacement.
        let c: SmartFocusConfig =
            serde_json::from_str(r#"{"account":"sf","tag_field":"CAMPAIGN_TAG"}"#).unwrap();
        let err = refused(c);
        assert!(
            err.contains("tag_field") && err.contains("tag_fields"),
            "{err}"
        );
        let c: SmartFocusConfig = serde_json::from_str(
            r#"{"account":"sf","tag_fields":["T1","T2"],"tag_hold_after_send_mins":30}"#,
        )
        .unwrap();
        assert_eq!(c.tag_fields, ["T1", "T2"]);
        assert_eq!(c.tag_hold_after_send_mins, 30);
        assert!(c.validate().is_ok());
        let mut c = SmartFocusConfig::new(AccountId::parse("sf").unwrap());
        c.timezone = "Mars/Olympus".into();
        assert!(c.validate().unwrap_err().to_string().contains("timezone"));
        let c: SmartFocusConfig =
            serde_json::from_str(r#"{"account":"sf","send_date_format":"space_local"}"#).unwrap();
        assert_eq!(c.send_date_format, SendDateFormat::SpaceLocal);
        let c: SmartFocusConfig = serde_json::from_str(
            r#"{"account":"sf","message_listing":"by_period","summary_page_size":50}"#,
        )
        .unwrap();
        assert_eq!(c.message_listing, MessageListing::ByPeriod);
        assert_eq!(c.summary_page_size, 50);
        let mut c = sf();
        c.summary_page_size = 0;
        assert!(refused(c).contains("summary_page_size"));
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
