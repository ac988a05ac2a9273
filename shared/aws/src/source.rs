//! The drop bucket as an [`AudienceSource`] on S3.
//!
//! Audience files are streamed (`GetObject` body as an `AsyncRead`), never collected, and pinned
//! to the ETag the drop was received with: S3 answers `412 PreconditionFailed` when the object
//! was replaced, which becomes [`SourceError::Changed`].

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::primitives::ByteStream as S3ByteStream;
use espbridge_core::ports::BackendError;
use espbridge_core::ports::source::{AudienceSource, ByteStream, SMALL_OBJECT_LIMIT, SourceError};
use std::path::Path;
use tokio::io::AsyncReadExt;

/// [`AudienceSource`] over S3. Build the client with [`crate::s3_client`] so emulator endpoints
/// get path-style addressing.
#[derive(Debug, Clone)]
pub struct S3Source {
    client: Client,
}

impl S3Source {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<(GetObjectOutput, String), SourceError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_if_match(etag.map(str::to_owned))
            .send()
            .await
            .map_err(|e| get_error(key, etag, e))?;
        let tag = out.e_tag().map(str::to_owned).ok_or_else(|| {
            SourceError::backend(
                key,
                crate::error::local("GetObject", "no ETag in the answer"),
            )
        })?;
        Ok((out, tag))
    }
}

#[async_trait]
impl AudienceSource for S3Source {
    async fn read_small(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, String), SourceError> {
        let (out, etag) = self.get(bucket, key, None).await?;
        if out
            .content_length()
            .is_some_and(|n| n > SMALL_OBJECT_LIMIT as i64)
        {
            return Err(SourceError::TooLarge {
                key: key.to_owned(),
                limit: SMALL_OBJECT_LIMIT,
            });
        }
        let mut bytes = Vec::new();
        out.body
            .into_async_read()
            .take(SMALL_OBJECT_LIMIT as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| {
                SourceError::backend(
                    key,
                    BackendError::transient("GetObject", "the body could not be read")
                        .with_source(e),
                )
            })?;
        if bytes.len() > SMALL_OBJECT_LIMIT {
            return Err(SourceError::TooLarge {
                key: key.to_owned(),
                limit: SMALL_OBJECT_LIMIT,
            });
        }
        Ok((bytes, etag))
    }

    async fn open(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<(ByteStream, String), SourceError> {
        let (out, tag) = self.get(bucket, key, etag).await?;
        Ok((Box::new(Box::pin(out.body.into_async_read())), tag))
    }

    async fn put_file(&self, bucket: &str, key: &str, path: &Path) -> Result<(), SourceError> {
        let body = S3ByteStream::from_path(path).await.map_err(|e| {
            SourceError::backend(
                key,
                BackendError::permanent("PutObject", "the local file could not be read")
                    .with_source(e),
            )
        })?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map_err(|e| SourceError::backend(key, crate::error::from_sdk("PutObject", e)))?;
        Ok(())
    }
}

fn get_error(
    key: &str,
    etag: Option<&str>,
    err: SdkError<GetObjectError, HttpResponse>,
) -> SourceError {
    let status = err.raw_response().map(|r| r.status().as_u16());
    let not_found = err.as_service_error().is_some_and(|e| e.is_no_such_key())
        || matches!(err.code(), Some("NoSuchKey" | "NotFound"));
    let changed = status == Some(412) || err.code() == Some("PreconditionFailed");
    match etag {
        Some(etag) if changed => SourceError::Changed {
            key: key.to_owned(),
            etag: etag.to_owned(),
        },
        _ if not_found => SourceError::NotFound {
            key: key.to_owned(),
        },
        _ => SourceError::backend(key, crate::error::from_sdk("GetObject", err)),
    }
}
