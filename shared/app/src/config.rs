//! ESP account configuration: one entry per account, tagged by ESP. The same shape is read from
//! the `ESPBRIDGE_ACCOUNTS` environment variable (JSON, in Lambda, credentials named by secret)
//! and from the local configuration file (TOML or JSON, credentials inline or by secret).

use async_trait::async_trait;
use espbridge_bronto::{BrontoConfig, BrontoCredentials, BrontoEsp};
use espbridge_core::service::EspRegistry;
use espbridge_core::{AccountId, Clock, EspKind};
use espbridge_emarsys::{EmarsysConfig, EmarsysCredentials, EmarsysEsp};
use espbridge_silverpop::{SilverpopConfig, SilverpopCredentials, SilverpopEsp};
use espbridge_smartfocus::{SmartFocusConfig, SmartFocusCredentials, SmartFocusEsp};
use serde::Deserialize;
use std::sync::Arc;

/// One ESP account.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "esp", rename_all = "lowercase")]
pub enum AccountConfig {
    Emarsys {
        #[serde(flatten)]
        config: EmarsysConfig,
        #[serde(default)]
        credentials: Option<EmarsysCredentials>,
        /// Secrets Manager id of a JSON secret `{"user": "...", "secret": "..."}`.
        #[serde(default)]
        credentials_secret: Option<String>,
    },
    Smartfocus {
        #[serde(flatten)]
        config: SmartFocusConfig,
        #[serde(default)]
        credentials: Option<SmartFocusCredentials>,
        /// Secrets Manager id of a JSON secret `{"login": "...", "password": "...", "key": "..."}`.
        #[serde(default)]
        credentials_secret: Option<String>,
    },
    Silverpop {
        #[serde(flatten)]
        config: SilverpopConfig,
        #[serde(default)]
        credentials: Option<SilverpopCredentials>,
        /// Secrets Manager id of a JSON secret `{"username": "...", "password": "..."}`.
        #[serde(default)]
        credentials_secret: Option<String>,
    },
    Bronto {
        #[serde(flatten)]
        config: BrontoConfig,
        #[serde(default)]
        credentials: Option<BrontoCredentials>,
        /// Secrets Manager id of a JSON secret `{"api_token": "..."}`.
        #[serde(default)]
        credentials_secret: Option<String>,
    },
}

impl AccountConfig {
    pub fn esp(&self) -> EspKind {
        match self {
            AccountConfig::Emarsys { .. } => EspKind::Emarsys,
            AccountConfig::Smartfocus { .. } => EspKind::Smartfocus,
            AccountConfig::Silverpop { .. } => EspKind::Silverpop,
            AccountConfig::Bronto { .. } => EspKind::Bronto,
        }
    }
    pub fn account(&self) -> &AccountId {
        match self {
            AccountConfig::Emarsys { config, .. } => &config.account,
            AccountConfig::Smartfocus { config, .. } => &config.account,
            AccountConfig::Silverpop { config, .. } => &config.account,
            AccountConfig::Bronto { config, .. } => &config.account,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: {detail}")]
    Parse { origin: String, detail: String },
    #[error("{esp} account {account}: {detail}")]
    Account {
        esp: EspKind,
        account: AccountId,
        detail: String,
    },
    #[error("environment variable {name}: {detail}")]
    Env { name: String, detail: String },
}

/// Reads a secret's JSON value (Secrets Manager in AWS).
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn get_json(&self, id: &str) -> Result<serde_json::Value, String>;
}

/// Parses an account list (`[...]` JSON, or TOML/JSON with an `accounts` array) from `origin`.
pub fn parse_accounts(text: &str, origin: &str) -> Result<Vec<AccountConfig>, ConfigError> {
    #[derive(Deserialize)]
    struct Wrapped {
        accounts: Vec<AccountConfig>,
    }
    let parse_err = |detail: String| ConfigError::Parse {
        origin: origin.to_owned(),
        detail,
    };
    let trimmed = text.trim_start();
    let accounts = if trimmed.starts_with('[') && !trimmed.starts_with("[[") {
        serde_json::from_str::<Vec<AccountConfig>>(text).map_err(|e| parse_err(e.to_string()))?
    } else if trimmed.starts_with('{') {
        serde_json::from_str::<Wrapped>(text)
            .map_err(|e| parse_err(e.to_string()))?
            .accounts
    } else {
        toml::from_str::<Wrapped>(text)
            .map_err(|e| parse_err(e.to_string()))?
            .accounts
    };
    let mut seen = std::collections::HashSet::new();
    for a in &accounts {
        if !seen.insert((a.esp(), a.account().clone())) {
            return Err(parse_err(format!(
                "{} account {} is configured twice",
                a.esp(),
                a.account()
            )));
        }
    }
    Ok(accounts)
}

/// Builds one ESP client per account, reading credentials from `secrets` where the account
/// names a secret. Makes no call to any ESP.
pub async fn build_registry(
    accounts: &[AccountConfig],
    secrets: Option<&dyn SecretSource>,
    clock: Arc<dyn Clock>,
) -> Result<EspRegistry, ConfigError> {
    let mut built: Vec<Arc<dyn espbridge_core::ports::Esp>> = Vec::new();
    for a in accounts {
        let fail = |detail: String| ConfigError::Account {
            esp: a.esp(),
            account: a.account().clone(),
            detail,
        };
        match a {
            AccountConfig::Emarsys {
                config,
                credentials,
                credentials_secret,
            } => {
                let creds: EmarsysCredentials =
                    credentials_for(credentials.clone(), credentials_secret.as_deref(), secrets)
                        .await
                        .map_err(fail)?;
                let esp = EmarsysEsp::new(config.clone(), creds, Arc::clone(&clock))
                    .map_err(|e| fail(e.to_string()))?;
                built.push(Arc::new(esp));
            }
            AccountConfig::Smartfocus {
                config,
                credentials,
                credentials_secret,
            } => {
                let creds: SmartFocusCredentials =
                    credentials_for(credentials.clone(), credentials_secret.as_deref(), secrets)
                        .await
                        .map_err(fail)?;
                let esp = SmartFocusEsp::new(config.clone(), creds, Arc::clone(&clock))
                    .map_err(|e| fail(e.to_string()))?;
                built.push(Arc::new(esp));
            }
            AccountConfig::Silverpop {
                config,
                credentials,
                credentials_secret,
            } => {
                let creds: SilverpopCredentials =
                    credentials_for(credentials.clone(), credentials_secret.as_deref(), secrets)
                        .await
                        .map_err(fail)?;
                let esp = SilverpopEsp::new(config.clone(), creds, Arc::clone(&clock))
                    .map_err(|e| fail(e.to_string()))?;
                built.push(Arc::new(esp));
            }
            AccountConfig::Bronto {
                config,
                credentials,
                credentials_secret,
            } => {
                let creds: BrontoCredentials =
                    credentials_for(credentials.clone(), credentials_secret.as_deref(), secrets)
                        .await
                        .map_err(fail)?;
                let esp = BrontoEsp::new(config.clone(), creds).map_err(|e| fail(e.to_string()))?;
                built.push(Arc::new(esp));
            }
        }
    }
    Ok(EspRegistry::new(built))
}

async fn credentials_for<T: serde::de::DeserializeOwned>(
    inline: Option<T>,
    secret: Option<&str>,
    secrets: Option<&dyn SecretSource>,
) -> Result<T, String> {
    if let Some(c) = inline {
        return Ok(c);
    }
    let Some(id) = secret else {
        return Err("neither credentials nor credentials_secret is set".into());
    };
    let Some(secrets) = secrets else {
        return Err(format!(
            "credentials_secret {id:?} is set but no secret store is available here"
        ));
    };
    let v = secrets.get_json(id).await?;
    // The secret's value never goes into the message.
    serde_json::from_value(v)
        .map_err(|_| format!("secret {id:?} does not hold the expected JSON fields"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::SystemClock;

    struct OneSecret;
    #[async_trait]
    impl SecretSource for OneSecret {
        async fn get_json(&self, id: &str) -> Result<serde_json::Value, String> {
            match id {
                "espbridge/emarsys/eu" => Ok(serde_json::json!({"user": "u", "secret": "s3cr3t"})),
                "espbridge/emarsys/bad" => Ok(serde_json::json!({"token": "s3cr3t"})),
                _ => Err(format!("secret {id:?} not found")),
            }
        }
    }

    #[test]
    fn json_and_toml_forms_parse() {
        let json = r#"[{"esp":"emarsys","account":"eu","template_prefix":"eu_","credentials_secret":"x"}]"#;
        let a = parse_accounts(json, "ESPBRIDGE_ACCOUNTS").unwrap();
        assert_eq!(a[0].account().as_str(), "eu");
        let toml = "[[accounts]]\nesp = \"emarsys\"\naccount = \"us\"\nbase_url = \"http://127.0.0.1:1/api/v2/\"\n[accounts.credentials]\nuser = \"u\"\nsecret = \"s\"\n";
        let a = parse_accounts(toml, "espbridge.toml").unwrap();
        assert_eq!(a[0].esp(), EspKind::Emarsys);
    }

    #[tokio::test]
    async fn a_bronto_account_builds_and_its_defaults_are_checked() {
        let toml = "[[accounts]]\nesp = \"bronto\"\naccount = \"eu\"\nfrom_email = \"news@brand.example\"\nfrom_name = \"Brand\"\n[accounts.credentials]\napi_token = \"t0ken\"\n";
        let a = parse_accounts(toml, "espbridge.toml").unwrap();
        assert_eq!(a[0].esp(), EspKind::Bronto);
        let reg = build_registry(&a, None, Arc::new(SystemClock))
            .await
            .unwrap();
        let esp = reg.choose(EspKind::Bronto, None, None).unwrap();
        assert!(esp.needs_email());
        assert_eq!(
            esp.default_headers().unwrap().from_email,
            "news@brand.example"
        );
        // A bad default address is named at start, before any campaign uses it.
        let bad = toml.replace("news@brand.example", "not-an-address");
        let a = parse_accounts(&bad, "espbridge.toml").unwrap();
        let e = build_registry(&a, None, Arc::new(SystemClock))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("bronto account eu") && e.contains("from_email"),
            "{e}"
        );
        assert!(!e.contains("t0ken"), "{e}");
    }

    #[test]
    fn errors_name_their_origin_and_duplicates_are_refused() {
        let e = parse_accounts(
            r#"[{"esp":"mailchimp","account":"x"}]"#,
            "ESPBRIDGE_ACCOUNTS",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("ESPBRIDGE_ACCOUNTS: "), "{e}");
        let dup = r#"[{"esp":"emarsys","account":"a"},{"esp":"emarsys","account":"a"}]"#;
        let e = parse_accounts(dup, "f").unwrap_err();
        assert!(e.to_string().contains("configured twice"), "{e}");
    }

    #[tokio::test]
    async fn credentials_come_from_the_secret_and_never_leak_into_errors() {
        let ok = parse_accounts(
            r#"[{"esp":"emarsys","account":"eu","credentials_secret":"espbridge/emarsys/eu"}]"#,
            "t",
        )
        .unwrap();
        let reg = build_registry(&ok, Some(&OneSecret), Arc::new(SystemClock))
            .await
            .unwrap();
        assert_eq!(reg.all().len(), 1);
        let bad = parse_accounts(
            r#"[{"esp":"emarsys","account":"eu","credentials_secret":"espbridge/emarsys/bad"}]"#,
            "t",
        )
        .unwrap();
        let e = build_registry(&bad, Some(&OneSecret), Arc::new(SystemClock))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("espbridge/emarsys/bad"), "{e}");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let none = parse_accounts(r#"[{"esp":"emarsys","account":"eu"}]"#, "t").unwrap();
        let e = build_registry(&none, None, Arc::new(SystemClock))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("neither credentials"), "{e}");
    }
}
