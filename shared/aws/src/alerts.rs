//! Alerts on an SNS topic: the alert as a JSON message, its one-line summary as the subject
//! (what an e-mail subscription shows in the inbox).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sns::Client;
use aws_sdk_sns::config::timeout::TimeoutConfig;
use espbridge_core::ports::{Alert, Alerts, BackendError};
use std::time::Duration;

/// SNS takes a subject of fewer than 100 ASCII characters, with no control characters.
pub const MAX_SUBJECT: usize = 99;
/// Longest a publish may take, retries included: an alert is raised after the campaign's
/// state is saved and must not hold up the step much longer.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// [`Alerts`] published to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsAlerts {
    client: Client,
    topic_arn: String,
}

impl SnsAlerts {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// On a client of `conf` whose publish gives up after [`PUBLISH_TIMEOUT`].
    pub fn connect(conf: &SdkConfig, topic_arn: impl Into<String>) -> Self {
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(PUBLISH_TIMEOUT)
            .build();
        let sns = aws_sdk_sns::config::Builder::from(conf)
            .timeout_config(timeouts)
            .build();
        Self::new(Client::from_conf(sns), topic_arn)
    }
}

#[async_trait]
impl Alerts for SnsAlerts {
    async fn raise(&self, alert: &Alert) -> Result<(), BackendError> {
        let message = serde_json::to_string(alert)
            .map_err(|e| crate::error::local("Publish", format!("cannot serialize: {e}")))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(&alert.subject()))
            .message(message)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("Publish", e))?;
        Ok(())
    }
}

/// `text` as SNS accepts a subject: ASCII, no control characters (anything else becomes `?`),
/// at most [`MAX_SUBJECT`] characters (a longer one ends in `...`).
pub fn subject(text: &str) -> String {
    let clean: Vec<char> = text
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.len() <= MAX_SUBJECT {
        return clean.into_iter().collect();
    }
    let mut cut: String = clean[..MAX_SUBJECT - 3].iter().collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_short_printable_ascii() {
        assert_eq!(subject("  espbridge: ok  "), "espbridge: ok");
        assert_eq!(subject("caf\u{e9}\nbar\t"), "caf??bar");
        let long = format!("espbridge: campaign {} failed", "x".repeat(200));
        let s = subject(&long);
        assert_eq!(s.len(), MAX_SUBJECT);
        assert!(s.starts_with("espbridge: campaign xxx") && s.ends_with("..."));
        // Multi-byte characters are counted and replaced, never split.
        let wide = "\u{1F600}".repeat(150);
        let s = subject(&wide);
        assert_eq!(s.len(), MAX_SUBJECT);
        assert!(s.chars().all(|c| c == '?' || c == '.'));
        assert_eq!(subject(&"y".repeat(MAX_SUBJECT)), "y".repeat(MAX_SUBJECT));
    }
}
