//! Account configuration and credentials; plain serde so the loader decides the format.

use espbridge_core::AccountId;
use espbridge_core::ports::SenderHeaders;
use espbridge_esp_kit::{
    AdapterError, Attempts, HttpDefaults, HttpOptions, HttpSettings, RequestTimeout, Secret,
};
use serde::Deserialize;
use std::time::Duration;

/// Bronto's cap on contacts per `addToList` call (and per read page).
pub const MAX_PER_CALL: usize = 5000;

/// One Bronto account. Every field but `account` has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BrontoConfig {
    pub account: AccountId,
    /// Message folder whose messages are the templates marketers may choose.
    #[serde(default = "default_message_folder")]
    pub message_folder: String,
    /// The account's default From address (Bronto keeps no sender in the message).
    #[serde(default)]
    pub from_email: String,
    #[serde(default)]
    pub from_name: String,
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Addresses `addToList` may carry per `rate_window_ms` (undocumented limit; see the lib docs).
    #[serde(default = "default_addresses_per_minute")]
    pub addresses_per_minute: u32,
    /// Length of the rate "minute": the time-scale knob tests shorten.
    #[serde(default = "default_rate_window_ms")]
    pub rate_window_ms: u64,
    /// Contacts per `upload_batch` call (`Esp::max_batch`), 1..=5000.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Days a campaign's list is kept after completion; 0 deletes it at completion.
    #[serde(default = "default_list_retention_days")]
    pub list_retention_days: u32,
    /// `base_url`, timeout, attempts and response cap of the HTTP layer (defaults:
    /// [`HTTP_DEFAULTS`]).
    #[serde(flatten)]
    pub http: HttpOptions,
}

/// API root, request timeout and attempts when the account sets none.
pub const HTTP_DEFAULTS: HttpDefaults = HttpDefaults {
    base_url: "https://api.bronto.com/",
    timeout: RequestTimeout::secs(60),
    attempts: Attempts::new(4),
};

fn default_message_folder() -> String {
    "Optimove".to_owned()
}
fn default_addresses_per_minute() -> u32 {
    50_000
}
fn default_rate_window_ms() -> u64 {
    60_000
}
fn default_batch_size() -> usize {
    MAX_PER_CALL
}
fn default_list_retention_days() -> u32 {
    30
}

impl BrontoConfig {
    /// The defaults for `account` (sender headers empty: set them before use).
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            message_folder: default_message_folder(),
            from_email: String::new(),
            from_name: String::new(),
            reply_to: None,
            addresses_per_minute: default_addresses_per_minute(),
            rate_window_ms: default_rate_window_ms(),
            batch_size: default_batch_size(),
            list_retention_days: default_list_retention_days(),
            http: HttpOptions::default(),
        }
    }

    /// The HTTP layer's settings.
    pub fn http_settings(&self) -> Result<HttpSettings, AdapterError> {
        self.http.settings(HTTP_DEFAULTS).map_err(|e| {
            AdapterError::config(espbridge_core::EspKind::Bronto, "base_url", e.to_string())
        })
    }

    /// The account's default sender headers.
    pub fn headers(&self) -> SenderHeaders {
        SenderHeaders {
            from_email: self.from_email.clone(),
            from_name: self.from_name.clone(),
            reply_to: self.reply_to.clone(),
        }
    }

    pub fn rate_window(&self) -> Duration {
        Duration::from_millis(self.rate_window_ms)
    }

    /// Addresses one `addToList` call carries at most: `batch_size`, and a tenth of the
    /// allowance (see [`Self::address_pace`]).
    pub fn addresses_per_call(&self) -> usize {
        self.batch_size
            .min(self.addresses_per_minute as usize / 10)
            .max(1)
    }

    /// The pace of addresses per real minute the account's calls keep together: the allowance
    /// (`addresses_per_minute` per `rate_window_ms`) less one call's worth, at `share`. A
    /// window counts a call when it arrives, so calls paced at the whole allowance could put
    /// one call more than the allowance in some window; one call less never does.
    pub fn address_pace(&self, share: f64) -> f64 {
        let room = self
            .addresses_per_minute
            .saturating_sub(self.addresses_per_call() as u32)
            .max(1);
        f64::from(room) * share * 60_000.0 / self.rate_window_ms.max(1) as f64
    }

    /// Refuses settings the adapter cannot work with, naming the field.
    pub fn validate(&self) -> Result<(), AdapterError> {
        let bad = |field: &'static str, detail: &str| {
            Err(AdapterError::Config {
                esp: espbridge_core::EspKind::Bronto,
                field,
                detail: detail.to_owned(),
            })
        };
        if self.message_folder.trim().is_empty() {
            return bad("message_folder", "must not be empty");
        }
        if let Err(errors) = self.headers().validate() {
            // Field names and reasons only: the addresses themselves stay out of messages.
            let (field, detail) = &errors[0];
            let field = match field.as_str() {
                "from_email" => "from_email",
                "reply_to" => "reply_to",
                _ => "from_name",
            };
            return bad(field, detail);
        }
        if self.addresses_per_minute == 0 {
            return bad("addresses_per_minute", "must be at least 1");
        }
        if self.rate_window_ms == 0 {
            return bad("rate_window_ms", "must be at least 1");
        }
        if !(1..=MAX_PER_CALL).contains(&self.batch_size) {
            return bad("batch_size", "must be between 1 and 5000");
        }
        Ok(())
    }
}

/// The account's API token (never printed).
#[derive(Debug, Clone, Deserialize)]
pub struct BrontoCredentials {
    pub api_token: Secret,
}

impl BrontoCredentials {
    pub fn new(api_token: impl Into<String>) -> Self {
        Self {
            api_token: Secret::from(api_token.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> BrontoConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let c = config(r#"{"account":"br","from_email":"news@brand.example","from_name":"Brand"}"#);
        assert_eq!(
            c.http_settings().unwrap().base_url.to_string(),
            "https://api.bronto.com/"
        );
        assert_eq!(c.message_folder, "Optimove");
        assert_eq!(c.addresses_per_minute, 50_000);
        assert_eq!(c.rate_window(), Duration::from_secs(60));
        assert_eq!(c.batch_size, 5000);
        assert_eq!(c.list_retention_days, 30);
        assert_eq!(c.reply_to, None);
        assert!(c.validate().is_ok());
        let mut d = BrontoConfig::new(c.account.clone());
        d.from_email = c.from_email.clone();
        d.from_name = c.from_name.clone();
        assert_eq!(c, d);
    }

    #[test]
    fn validation_names_the_field() {
        let field_of = |c: &BrontoConfig| match c.validate() {
            Err(AdapterError::Config {
                esp: espbridge_core::EspKind::Bronto,
                field,
                ..
            }) => field,
            other => panic!("{other:?}"),
        };
        let mut c =
            config(r#"{"account":"br","from_email":"news@brand.example","from_name":"Brand"}"#);
        c.batch_size = 5001;
        assert_eq!(field_of(&c), "batch_size");
        c.batch_size = 0;
        assert_eq!(field_of(&c), "batch_size");
        c.batch_size = 10;
        c.reply_to = Some("not-an-address".into());
        assert_eq!(field_of(&c), "reply_to");
        c.reply_to = None;
        c.from_name = " ".into();
        assert_eq!(field_of(&c), "from_name");
        c.from_name = "Brand".into();
        c.from_email = "nobody".into();
        assert_eq!(field_of(&c), "from_email");
        let err = c.validate().unwrap_err().to_string();
        assert!(!err.contains("nobody"), "{err}");
        c.from_email = "news@brand.example".into();
        let e = serde_json::from_str::<BrontoConfig>(
            r#"{"account":"br","from_email":"news@brand.example","from_name":"B","base_url":"no url"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("base_url"), "{e}");
        let c = config(r#"{"account":"br"}"#);
        assert_eq!(field_of(&c), "from_email");
    }

    #[test]
    fn debug_redacts_the_token() {
        let c = BrontoCredentials::new("6F1A-SECRET");
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
