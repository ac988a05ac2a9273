//! Where drops live (S3 in AWS, a folder locally).

use crate::ports::backend::BackendError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tokio::io::AsyncRead;

/// An object at a given version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    /// Version tag (S3 ETag; locally a hash of size and mtime). Pins reads to the object that
    /// started the work, so a file replaced mid-upload is detected rather than mixed in.
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{key}: no such object")]
    NotFound { key: String },
    #[error("{key}: the object changed since the drop was received (expected version {etag})")]
    Changed { key: String, etag: String },
    /// Not a regular object of the bucket (locally: a symbolic link, which could reach any
    /// file of the machine).
    #[error("{key}: {reason}")]
    NotAFile { key: String, reason: &'static str },
    /// A small object (a manifest) larger than [`SMALL_OBJECT_LIMIT`]; only that much was read.
    #[error("{key}: larger than {limit} bytes")]
    TooLarge { key: String, limit: usize },
    /// The store behind the source failed the call (it says whether a retry may help).
    #[error("{key}: {source}")]
    Backend {
        key: String,
        #[source]
        source: BackendError,
    },
}

impl SourceError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SourceError::Backend { source, .. } if source.retryable)
    }

    pub fn backend(key: &str, source: BackendError) -> Self {
        SourceError::Backend {
            key: key.to_owned(),
            source,
        }
    }
}

pub type ByteStream = Box<dyn AsyncRead + Send + Unpin>;

/// Most bytes [`AudienceSource::read_small`] reads: a manifest is a few kilobytes; anything
/// past 256 KiB is refused without being read further.
pub const SMALL_OBJECT_LIMIT: usize = 256 * 1024;

#[async_trait]
pub trait AudienceSource: Send + Sync {
    /// Reads a small object whole (the manifest), with its current version tag; one larger than
    /// [`SMALL_OBJECT_LIMIT`] is [`SourceError::TooLarge`], read no further than that.
    async fn read_small(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, String), SourceError>;
    /// Streams an object's raw bytes (still compressed for `.gz`). With `etag`, fails with
    /// [`SourceError::Changed`] if the object is no longer that version.
    async fn open(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<(ByteStream, String), SourceError>;
    /// Writes a file (e.g. the rejects report) to `key`.
    async fn put_file(&self, bucket: &str, key: &str, path: &Path) -> Result<(), SourceError>;
}
