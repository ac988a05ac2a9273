//! ESP account configuration: one entry per account, tagged by ESP. The same shape is read from
//! the `ESPBRIDGE_ACCOUNTS` environment variable (JSON, in Lambda, credentials named by secret)
//! and from the local configuration file (TOML or JSON, credentials inline or by secret). Each
//! entry is built by its ESP's driver from the [registry](crate::registry).

use crate::registry;
use espbridge_core::service::EspRegistry;
use espbridge_core::{AccountId, EspKind};
use espbridge_esp_kit::{AccountEntry, AccountError, BuildContext, SecretSource};
use serde_json::Value;

/// One ESP account's configuration entry.
pub type AccountConfig = AccountEntry;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: {detail}")]
    Parse { origin: String, detail: String },
    #[error("{origin}: account #{index}: {detail}")]
    Entry {
        origin: String,
        index: usize,
        detail: String,
    },
    #[error("{origin}: {esp} account {account} is configured twice")]
    Duplicate {
        origin: String,
        esp: EspKind,
        account: AccountId,
    },
    #[error("{esp}: no driver in this build (known: {known})")]
    NoDriver { esp: EspKind, known: String },
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("environment variable {name}: {detail}")]
    Env { name: String, detail: String },
}

impl ConfigError {
    /// Whether starting again may help (a secret store that did not answer).
    pub fn is_retryable(&self) -> bool {
        matches!(self, ConfigError::Account(e) if e.is_retryable())
    }
}

/// Parses an account list (`[...]` JSON, or TOML/JSON with an `accounts` array) from `origin`.
pub fn parse_accounts(text: &str, origin: &str) -> Result<Vec<AccountConfig>, ConfigError> {
    let parse_err = |detail: String| ConfigError::Parse {
        origin: origin.to_owned(),
        detail,
    };
    let trimmed = text.trim_start();
    let value: Value = if trimmed.starts_with('[') && !trimmed.starts_with("[[") {
        serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?
    } else if trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        v.get("accounts").cloned().unwrap_or(Value::Null)
    } else {
        let v: toml::Value = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        let v = serde_json::to_value(v).map_err(|e| parse_err(e.to_string()))?;
        v.get("accounts").cloned().unwrap_or(Value::Null)
    };
    let Value::Array(items) = value else {
        return Err(parse_err("expected a list of accounts (`accounts`)".into()));
    };
    let mut accounts = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let entry = AccountEntry::from_value(item).map_err(|detail| ConfigError::Entry {
            origin: origin.to_owned(),
            index: i + 1,
            detail,
        })?;
        entry.send_policy().map_err(|detail| ConfigError::Entry {
            origin: origin.to_owned(),
            index: i + 1,
            detail,
        })?;
        if registry::driver(entry.esp).is_none() {
            return Err(ConfigError::NoDriver {
                esp: entry.esp,
                known: registry::names(),
            });
        }
        if !seen.insert((entry.esp, entry.account.clone())) {
            return Err(ConfigError::Duplicate {
                origin: origin.to_owned(),
                esp: entry.esp,
                account: entry.account,
            });
        }
        accounts.push(entry);
    }
    Ok(accounts)
}

/// Builds one ESP client per account with its ESP's driver, reading credentials from `secrets`
/// where the account names a secret. Makes no call to any ESP.
pub async fn build_registry(
    accounts: &[AccountConfig],
    secrets: Option<&dyn SecretSource>,
    ctx: &BuildContext,
) -> Result<EspRegistry, ConfigError> {
    let mut built = Vec::with_capacity(accounts.len());
    let mut policies = Vec::new();
    for entry in accounts {
        let driver = registry::driver(entry.esp).ok_or_else(|| ConfigError::NoDriver {
            esp: entry.esp,
            known: registry::names(),
        })?;
        built.push(driver.connect(entry, secrets, ctx).await?);
        // Checked when the accounts were parsed.
        policies.push((
            entry.esp,
            entry.account.clone(),
            entry.send_policy().unwrap_or_default(),
        ));
    }
    Ok(policies
        .into_iter()
        .fold(EspRegistry::new(built), |r, (esp, account, p)| {
            r.with_policy(esp, account, p)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use espbridge_core::SystemClock;
    use espbridge_esp_kit::SecretError;

    fn local_ctx() -> BuildContext {
        BuildContext::in_memory(std::sync::Arc::new(SystemClock))
    }

    struct OneSecret;
    #[async_trait]
    impl SecretSource for OneSecret {
        async fn get_json(&self, id: &str) -> Result<Value, SecretError> {
            match id {
                "espbridge/emarsys/eu" => Ok(serde_json::json!({"user": "u", "secret": "s3cr3t"})),
                "espbridge/emarsys/bad" => Ok(serde_json::json!({"token": "s3cr3t"})),
                "espbridge/silverpop/eu" => Ok(serde_json::json!({
                    "username": "api@brand.example", "password": "s3cr3t",
                    "sftp_password": "ftp-s3cr3t"
                })),
                _ => Err(SecretError::NotFound { id: id.to_owned() }),
            }
        }
    }

    #[test]
    fn json_and_toml_forms_parse() {
        let json = r#"[{"esp":"emarsys","account":"eu","template_prefix":"eu_","credentials_secret":"x"}]"#;
        let a = parse_accounts(json, "ESPBRIDGE_ACCOUNTS").unwrap();
        assert_eq!(a[0].account.as_str(), "eu");
        let toml = "[[accounts]]\nesp = \"emarsys\"\naccount = \"us\"\nbase_url = \"http://127.0.0.1:1/api/v2/\"\n[accounts.credentials]\nuser = \"u\"\nsecret = \"s\"\n";
        let a = parse_accounts(toml, "espbridge.toml").unwrap();
        assert_eq!(a[0].esp, EspKind::Emarsys);
        let wrapped = r#"{"accounts":[{"esp":"bronto","account":"b"}]}"#;
        assert_eq!(
            parse_accounts(wrapped, "f").unwrap()[0].esp,
            EspKind::Bronto
        );
    }

    #[tokio::test]
    async fn a_bronto_account_builds_and_its_defaults_are_checked() {
        let toml = "[[accounts]]\nesp = \"bronto\"\naccount = \"eu\"\nfrom_email = \"news@brand.example\"\nfrom_name = \"Brand\"\n[accounts.credentials]\napi_token = \"t0ken\"\n";
        let a = parse_accounts(toml, "espbridge.toml").unwrap();
        assert_eq!(a[0].esp, EspKind::Bronto);
        let reg = build_registry(&a, None, &local_ctx()).await.unwrap();
        let esp = reg.choose(EspKind::Bronto, None, None).unwrap();
        assert!(esp.needs_email());
        assert_eq!(
            esp.default_headers().unwrap().from_email,
            "news@brand.example"
        );
        // A bad default address is named at start, before any campaign uses it.
        let bad = toml.replace("news@brand.example", "not-an-address");
        let a = parse_accounts(&bad, "espbridge.toml").unwrap();
        let e = build_registry(&a, None, &local_ctx())
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

    #[tokio::test]
    async fn a_silverpop_account_with_sftp_settings_takes_the_bulk_route() {
        let toml = "[[accounts]]\nesp = \"silverpop\"\naccount = \"eu\"\ndatabase_id = \"2740754\"\n\
                    credentials_secret = \"espbridge/silverpop/eu\"\nbulk_import_threshold = 2000\n\
                    [accounts.sftp]\nhost = \"transfer2.silverpop.com\"\n\
                    host_key = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\n";
        let a = parse_accounts(toml, "espbridge.toml").unwrap();
        let reg = build_registry(&a, Some(&OneSecret), &local_ctx())
            .await
            .unwrap();
        let esp = reg.choose(EspKind::Silverpop, None, None).unwrap();
        // Batches are bulk-import jobs of `bulk_batch_size` rows (default 100,000); an audience
        // under the threshold goes by the call, in `batch_size` batches (default 1,000).
        assert_eq!(esp.max_batch(), 100_000);
        assert_eq!(
            (esp.max_batch_for(1_999), esp.max_batch_for(2_000)),
            (1_000, 100_000)
        );
        // Without a host key the account is refused by name (never trusted on first use), and
        // no secret shows in the error.
        let no_key = toml.replace("host_key", "# host_key");
        let a = parse_accounts(&no_key, "espbridge.toml").unwrap();
        let e = build_registry(&a, Some(&OneSecret), &local_ctx())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("silverpop account eu") && e.contains("sftp.host_key"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn errors_name_their_origin_and_duplicates_are_refused() {
        let e = parse_accounts(
            r#"[{"esp":"mailchimp","account":"x"}]"#,
            "ESPBRIDGE_ACCOUNTS",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ESPBRIDGE_ACCOUNTS: account #1: esp:"),
            "{e}"
        );
        let dup = r#"[{"esp":"emarsys","account":"a"},{"esp":"emarsys","account":"a"}]"#;
        let e = parse_accounts(dup, "f").unwrap_err();
        assert!(e.to_string().contains("configured twice"), "{e}");
        let e = parse_accounts("accounts = 3", "f.toml").unwrap_err();
        assert!(e.to_string().contains("list of accounts"), "{e}");
    }

    #[tokio::test]
    async fn settings_are_checked_when_the_account_is_built() {
        let a = parse_accounts(
            r#"[{"esp":"emarsys","account":"eu","base_url":"http://api.example/","credentials":{"user":"u","secret":"s"}}]"#,
            "t",
        )
        .unwrap();
        let e = build_registry(&a, None, &local_ctx())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("emarsys account eu") && e.contains("base_url") && e.contains("https"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn credentials_come_from_the_secret_and_never_leak_into_errors() {
        let ok = parse_accounts(
            r#"[{"esp":"emarsys","account":"eu","credentials_secret":"espbridge/emarsys/eu"}]"#,
            "t",
        )
        .unwrap();
        let reg = build_registry(&ok, Some(&OneSecret), &local_ctx())
            .await
            .unwrap();
        assert_eq!(reg.all().len(), 1);
        let bad = parse_accounts(
            r#"[{"esp":"emarsys","account":"eu","credentials_secret":"espbridge/emarsys/bad"}]"#,
            "t",
        )
        .unwrap();
        let e = build_registry(&bad, Some(&OneSecret), &local_ctx())
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("espbridge/emarsys/bad"), "{e}");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let none = parse_accounts(r#"[{"esp":"emarsys","account":"eu"}]"#, "t").unwrap();
        let e = build_registry(&none, None, &local_ctx())
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("neither credentials"), "{e}");
    }
}
