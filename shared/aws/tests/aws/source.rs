#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use crate::common::{emulator, unique};
use espbridge_aws::{S3Source, s3_client};
use espbridge_core::ports::source::{AudienceSource, SourceError};
use tokio::io::AsyncReadExt;

async fn bucket_with(conf: &aws_config::SdkConfig, key: &str, body: &[u8]) -> (S3Source, String) {
    let client = s3_client(conf);
    let bucket = unique("drops");
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    client
        .put_object()
        .bucket(&bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .expect("put object");
    (S3Source::new(client), bucket)
}

#[tokio::test]
async fn read_small_and_open_pin_the_etag() {
    let Some(conf) = emulator("read_small_and_open_pin_the_etag").await else {
        return;
    };
    let key = "campaigns/2026-11-24/c1/audience.csv";
    let body = b"customer_id,email\n1,a@example.com\n";
    let (source, bucket) = bucket_with(&conf, key, body).await;

    let (bytes, etag) = source.read_small(&bucket, key).await.expect("read_small");
    assert_eq!(bytes, body);
    assert!(!etag.is_empty());

    let (mut reader, etag2) = source.open(&bucket, key, Some(&etag)).await.expect("open");
    assert_eq!(etag2, etag);
    let mut streamed = Vec::new();
    reader.read_to_end(&mut streamed).await.expect("stream");
    assert_eq!(streamed, body);

    let (mut unpinned, _) = source
        .open(&bucket, key, None)
        .await
        .expect("open unpinned");
    let mut again = Vec::new();
    unpinned.read_to_end(&mut again).await.expect("stream");
    assert_eq!(again, body);

    match source
        .open(&bucket, key, Some("\"0123456789abcdef\""))
        .await
    {
        Err(SourceError::Changed { key: k, etag: e }) => {
            assert_eq!(k, key);
            assert_eq!(e, "\"0123456789abcdef\"");
        }
        Err(other) => panic!("a wrong etag must be Changed, got {other:?}"),
        Ok(_) => panic!("a wrong etag must be Changed, got a stream"),
    }
}

#[tokio::test]
async fn missing_object_is_not_found() {
    let Some(conf) = emulator("missing_object_is_not_found").await else {
        return;
    };
    let (source, bucket) = bucket_with(&conf, "present", b"x").await;
    match source.read_small(&bucket, "absent/manifest.json").await {
        Err(SourceError::NotFound { key }) => assert_eq!(key, "absent/manifest.json"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match source.open(&bucket, "absent.csv", Some("\"abc\"")).await {
        Err(SourceError::NotFound { .. }) => {}
        Err(other) => panic!("expected NotFound, got {other:?}"),
        Ok(_) => panic!("expected NotFound, got a stream"),
    }
}

#[tokio::test]
async fn put_file_round_trips() {
    let Some(conf) = emulator("put_file_round_trips").await else {
        return;
    };
    let (source, bucket) = bucket_with(&conf, "present", b"x").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rejects.csv");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).expect("write");
    let key = "campaigns/2026-11-24/c1/rejects.csv";
    source
        .put_file(&bucket, key, &path)
        .await
        .expect("put_file");
    let (bytes, _) = source.read_small(&bucket, key).await.expect("read back");
    assert_eq!(bytes, content);

    match source
        .put_file(&bucket, key, &dir.path().join("missing.csv"))
        .await
    {
        Err(SourceError::Backend { key: k, source }) => {
            assert_eq!(k, key);
            assert!(!source.retryable, "a missing local file stays missing");
        }
        other => panic!("a missing local file must be a backend error, got {other:?}"),
    }
}
