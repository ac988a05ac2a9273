//! JSON secrets (ESP credentials) from Secrets Manager.
//!
//! Errors name the secret id and never its value. Parse errors keep only their category and
//! position: serde's own message can quote the offending value.

use crate::error::AwsError;
use aws_sdk_secretsmanager::Client;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {secret_id} not found")]
    NotFound { secret_id: String },
    #[error("secret {secret_id} has no string value (binary secrets are not supported)")]
    NotText { secret_id: String },
    #[error("secret {secret_id} is not the expected JSON: {reason}")]
    Invalid { secret_id: String, reason: String },
    #[error("secret {secret_id}: {source}")]
    Unavailable {
        secret_id: String,
        #[source]
        source: AwsError,
    },
}

impl SecretsError {
    /// Only a failed call may succeed when tried again; a missing or malformed secret will not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SecretsError::Unavailable { source, .. } if source.retryable)
    }
}

/// Reads secrets by id or ARN.
#[derive(Debug, Clone)]
pub struct SecretsReader {
    client: Client,
}

impl SecretsReader {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The secret's current string value, parsed as JSON into `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, secret_id: &str) -> Result<T, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception())
                {
                    SecretsError::NotFound {
                        secret_id: secret_id.to_owned(),
                    }
                } else {
                    SecretsError::Unavailable {
                        secret_id: secret_id.to_owned(),
                        source: crate::error::from_sdk("GetSecretValue", e),
                    }
                }
            })?;
        let text = out.secret_string().ok_or_else(|| SecretsError::NotText {
            secret_id: secret_id.to_owned(),
        })?;
        serde_json::from_str(text).map_err(|e| SecretsError::Invalid {
            secret_id: secret_id.to_owned(),
            reason: safe_reason(&e),
        })
    }
}

/// What went wrong in a secret's JSON without quoting any of it. A missing field's name comes
/// from `T`, not from the secret, so it is kept.
fn safe_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if let Some(field) = msg.strip_prefix("missing field ") {
        let field = field.split(" at line").next().unwrap_or(field);
        return format!("missing field {field}");
    }
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "a value has the wrong type or form",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Creds {
        user: String,
        port: u16,
    }

    #[test]
    fn reasons_never_quote_the_secret() {
        let e = serde_json::from_str::<Creds>(r#"{"user": "u", "port": "hunter2"}"#).unwrap_err();
        let r = safe_reason(&e);
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.starts_with("a value has the wrong type"), "{r}");

        let e = serde_json::from_str::<Creds>("hunter2").unwrap_err();
        assert!(!safe_reason(&e).contains("hunter2"));
    }

    #[test]
    fn missing_field_is_named() {
        let e = serde_json::from_str::<Creds>(r#"{"user": "secret-user"}"#).unwrap_err();
        let r = safe_reason(&e);
        assert_eq!(r, "missing field `port`");
    }
}
