#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use crate::common::{emulator, unique};
use espbridge_aws::{SecretsError, SecretsReader};
use serde::Deserialize;

#[derive(Debug, PartialEq, Deserialize)]
struct EmarsysCreds {
    user: String,
    secret: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct WithPort {
    port: u16,
}

#[tokio::test]
async fn get_json_reads_and_parses_a_secret() {
    let Some(conf) = emulator("get_json_reads_and_parses_a_secret").await else {
        return;
    };
    let client = aws_sdk_secretsmanager::Client::new(&conf);
    let id = unique("espbridge/emarsys");
    client
        .create_secret()
        .name(&id)
        .secret_string(r#"{"user": "acme001", "secret": "s3cr3t-value"}"#)
        .send()
        .await
        .expect("create secret");
    let reader = SecretsReader::new(client.clone());
    let creds: EmarsysCreds = reader.get_json(&id).await.expect("get_json");
    assert_eq!(
        creds,
        EmarsysCreds {
            user: "acme001".into(),
            secret: "s3cr3t-value".into()
        }
    );

    // The right secret in the wrong shape: the error names the secret, not its value.
    let bad = unique("espbridge/bad");
    client
        .create_secret()
        .name(&bad)
        .secret_string(r#"{"port": "s3cr3t-port"}"#)
        .send()
        .await
        .expect("create secret");
    let err = reader
        .get_json::<WithPort>(&bad)
        .await
        .expect_err("wrong shape");
    assert!(matches!(err, SecretsError::Invalid { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&bad), "{msg}");
    assert!(!msg.contains("s3cr3t"), "{msg}");
}

#[tokio::test]
async fn missing_secret_is_not_found_by_name() {
    let Some(conf) = emulator("missing_secret_is_not_found_by_name").await else {
        return;
    };
    let reader = SecretsReader::new(aws_sdk_secretsmanager::Client::new(&conf));
    let id = unique("espbridge/missing");
    match reader.get_json::<serde_json::Value>(&id).await {
        Err(SecretsError::NotFound { secret_id }) => assert_eq!(secret_id, id),
        other => panic!("expected NotFound, got {other:?}"),
    }
}
