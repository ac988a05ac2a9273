//! HTTP settings every ESP account has, each a newtype checked while the configuration is
//! deserialized: a bad value is refused at start with the field named, never at the first call.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use url::Url;

/// The API root of an ESP account: `https://…`, or `http://` to a loopback address (the
/// simulators, a local proxy). Always ends in `/`, so relative paths join below it.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(Url);

/// Why a setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingError(String);

impl BaseUrl {
    pub fn parse(s: &str) -> Result<Self, SettingError> {
        let mut url = Url::parse(s).map_err(|e| SettingError(format!("not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(SettingError(
                    "must be https:// (plain http:// only to a loopback address)".into(),
                ));
            }
            other => return Err(SettingError(format!("unsupported scheme {other:?}"))),
        }
        if url.host().is_none() {
            return Err(SettingError("has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials belong in the secret, not in a URL that ends up in logs.
            return Err(SettingError("must not carry a user or password".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(SettingError("must not carry a query or fragment".into()));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self(url))
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    /// `path` (relative, no leading slash) below the root.
    pub fn join(&self, path: &str) -> Result<Url, url::ParseError> {
        self.0.join(path)
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.0)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BaseUrl::parse(&s).map_err(|e| serde::de::Error::custom(format!("base_url: {e}")))
    }
}

impl serde::Serialize for BaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// Whole seconds one request may take, 1 to 600.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct RequestTimeout(u64);

impl RequestTimeout {
    pub const fn secs(secs: u64) -> Self {
        Self(secs)
    }
    pub fn duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

impl<'de> Deserialize<'de> for RequestTimeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        if (1..=600).contains(&n) {
            Ok(Self(n))
        } else {
            Err(serde::de::Error::custom(format!(
                "request_timeout_secs: must be 1 to 600, got {n}"
            )))
        }
    }
}

/// Attempts of one call for failures worth another try, 1 to 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Attempts(u32);

impl Attempts {
    pub const fn new(n: u32) -> Self {
        Self(n)
    }
    pub fn get(self) -> u32 {
        self.0.max(1)
    }
}

impl<'de> Deserialize<'de> for Attempts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if (1..=20).contains(&n) {
            Ok(Self(n))
        } else {
            Err(serde::de::Error::custom(format!(
                "max_attempts: must be 1 to 20, got {n}"
            )))
        }
    }
}

/// Largest response body read, in bytes (32 MB by default); a longer answer is an error,
/// never a buffer that grows with whatever the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct BodyLimit(usize);

impl BodyLimit {
    pub const DEFAULT: BodyLimit = BodyLimit(32 * 1024 * 1024);
    pub const fn bytes(n: usize) -> Self {
        Self(n)
    }
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for BodyLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl<'de> Deserialize<'de> for BodyLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = usize::deserialize(d)?;
        if (1024..=1024 * 1024 * 1024).contains(&n) {
            Ok(Self(n))
        } else {
            Err(serde::de::Error::custom(format!(
                "max_response_bytes: must be 1 KiB to 1 GiB, got {n}"
            )))
        }
    }
}

/// The HTTP knobs an account entry may set (`base_url`, `request_timeout_secs`,
/// `max_attempts`, `max_response_bytes`); each ESP's configuration flattens it in, and unset
/// ones take that ESP's [`HttpDefaults`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct HttpOptions {
    /// The account's API root (a pod, a region, or a simulator on loopback).
    #[serde(default)]
    pub base_url: Option<BaseUrl>,
    #[serde(default)]
    pub request_timeout_secs: Option<RequestTimeout>,
    /// Attempts per call for failures worth another try (transport errors, 5xx, throttling).
    #[serde(default)]
    pub max_attempts: Option<Attempts>,
    #[serde(default)]
    pub max_response_bytes: Option<BodyLimit>,
    /// How long one call waits out throttling answers (which spend no attempts) before it
    /// gives up and the upload continues in a new invocation; default 180 s.
    #[serde(default)]
    pub throttle_patience_secs: Option<u64>,
}

/// [`HttpOptions::throttle_patience_secs`] when unset.
pub const DEFAULT_THROTTLE_PATIENCE: Duration = Duration::from_secs(180);

/// An ESP's own defaults for [`HttpOptions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpDefaults {
    /// The ESP's public API root.
    pub base_url: &'static str,
    pub timeout: RequestTimeout,
    pub attempts: Attempts,
}

impl HttpOptions {
    /// The settings, unset knobs taken from `defaults`.
    pub fn settings(&self, defaults: HttpDefaults) -> Result<HttpSettings, SettingError> {
        let base_url = match &self.base_url {
            Some(u) => u.clone(),
            None => BaseUrl::parse(defaults.base_url)?,
        };
        Ok(HttpSettings {
            base_url,
            timeout: self.request_timeout_secs.unwrap_or(defaults.timeout),
            attempts: self.max_attempts.unwrap_or(defaults.attempts),
            max_response: self.max_response_bytes.unwrap_or_default(),
            throttle_patience: self
                .throttle_patience_secs
                .map_or(DEFAULT_THROTTLE_PATIENCE, Duration::from_secs),
        })
    }

    /// Points the account at `url` (a simulator, in tests).
    pub fn with_base_url(mut self, url: &str) -> Result<Self, SettingError> {
        self.base_url = Some(BaseUrl::parse(url)?);
        Ok(self)
    }
}

/// What [`crate::EspHttp`] is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub base_url: BaseUrl,
    pub timeout: RequestTimeout,
    pub attempts: Attempts,
    pub max_response: BodyLimit,
    pub throttle_patience: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_or_loopback_only() {
        assert_eq!(
            BaseUrl::parse("https://api.emarsys.net/api/v2")
                .unwrap()
                .to_string(),
            "https://api.emarsys.net/api/v2/"
        );
        for ok in [
            "http://127.0.0.1:8080/api/v2/",
            "http://localhost:1/",
            "http://[::1]:9/",
            "http://127.8.0.1/",
        ] {
            assert!(BaseUrl::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http://api.bronto.com/", "https"),
            ("ftp://x/", "scheme"),
            ("https://user:pw@api.bronto.com/", "user or password"),
            ("https://api.bronto.com/?token=1", "query"),
            ("not a url", "not a URL"),
            ("http://10.0.0.1/", "https"),
        ] {
            let e = BaseUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("pw"), "{e}");
        }
    }

    #[test]
    fn numbers_are_checked_while_deserializing() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct C {
            base_url: BaseUrl,
            request_timeout_secs: RequestTimeout,
            max_attempts: Attempts,
        }
        let ok: C = serde_json::from_str(
            r#"{"base_url":"https://x.example/a","request_timeout_secs":30,"max_attempts":3}"#,
        )
        .unwrap();
        assert_eq!(ok.max_attempts.get(), 3);
        assert_eq!(ok.request_timeout_secs.duration(), Duration::from_secs(30));
        for (json, field) in [
            (
                r#"{"base_url":"http://x.example/","request_timeout_secs":30,"max_attempts":3}"#,
                "base_url",
            ),
            (
                r#"{"base_url":"https://x.example/","request_timeout_secs":0,"max_attempts":3}"#,
                "request_timeout_secs",
            ),
            (
                r#"{"base_url":"https://x.example/","request_timeout_secs":5,"max_attempts":0}"#,
                "max_attempts",
            ),
        ] {
            let e = serde_json::from_str::<C>(json).unwrap_err().to_string();
            assert!(e.contains(field), "{json}: {e}");
        }
    }
}
