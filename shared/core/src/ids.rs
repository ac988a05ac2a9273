//! Identifier newtypes. Each is parsed once at the edge and is valid by construction afterwards.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(pub String);

/// A campaign id as the segmentation engine names it in the drop path: 1 to 64 characters of
/// `[A-Za-z0-9_-]`. It is used in ESP object names, S3 keys and schedule names, hence the
/// conservative alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CampaignId(String);

impl CampaignId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > 64 {
            return Err(IdError(format!(
                "campaign id must be 1 to 64 characters, got {}",
                s.len()
            )));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(IdError(format!(
                "campaign id may hold only letters, digits, '-' and '_', found {c:?}"
            )));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CampaignId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}
impl From<CampaignId> for String {
    fn from(c: CampaignId) -> String {
        c.0
    }
}
impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ESP account name from configuration (e.g. `default`, `eu`, `us`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty()
            || s.len() > 64
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(IdError(format!(
                "account id must be 1 to 64 characters of letters, digits, '-' and '_', got {s:?}"
            )));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `default`: the account of an ESP configured once (the simulators', the demo's).
    pub fn default_name() -> Self {
        Self("default".to_owned())
    }
}
impl TryFrom<String> for AccountId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}
impl From<AccountId> for String {
    fn from(c: AccountId) -> String {
        c.0
    }
}
impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ESPs espbridge speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EspKind {
    Emarsys,
    Smartfocus,
    Silverpop,
    Bronto,
}

impl EspKind {
    pub const ALL: [EspKind; 4] = [
        EspKind::Emarsys,
        EspKind::Smartfocus,
        EspKind::Silverpop,
        EspKind::Bronto,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            EspKind::Emarsys => "emarsys",
            EspKind::Smartfocus => "smartfocus",
            EspKind::Silverpop => "silverpop",
            EspKind::Bronto => "bronto",
        }
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                IdError(format!(
                    "unknown ESP {s:?}; expected one of emarsys, smartfocus, silverpop, bronto"
                ))
            })
    }
}
impl fmt::Display for EspKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_id_rules() {
        assert!(CampaignId::parse("spring-sale_2026").is_ok());
        assert!(CampaignId::parse("").is_err());
        assert!(CampaignId::parse(&"a".repeat(65)).is_err());
        let e = CampaignId::parse("a/b").unwrap_err();
        assert!(e.0.contains("'/'"), "{e}");
    }

    #[test]
    fn esp_kind_round_trip() {
        for k in EspKind::ALL {
            assert_eq!(EspKind::parse(k.as_str()).unwrap(), k);
        }
        assert_eq!(EspKind::parse("Emarsys").unwrap(), EspKind::Emarsys);
        assert!(EspKind::parse("mailchimp").is_err());
    }
}
