//! One drop's folder, wherever it sits, as the drop bucket's `campaigns/<run date>/<campaign
//! id>/` prefix, read-only: what `espbridge check` reads a drop through before it is dropped.
//!
//! Keys under the prefix are the folder's files, read by a [`FolderSource`] rooted at the
//! folder (so its key checks and its refusal of symbolic links hold); any other key names no
//! object. Writes are refused: a check leaves the folder as it found it.

use crate::source::FolderSource;
use async_trait::async_trait;
use espbridge_core::ports::BackendError;
use espbridge_core::ports::source::{AudienceSource, ByteStream, SourceError};
use std::path::{Path, PathBuf};

/// A drop folder seen as one drop of the bucket, read-only.
#[derive(Debug, Clone)]
pub struct DropFolder {
    files: FolderSource,
    prefix: String,
}

impl DropFolder {
    /// `folder` as the drop `campaigns/<run_date>/<campaign>/`. Both names are used as given:
    /// the manifest's checks judge them.
    pub fn new(folder: impl Into<PathBuf>, run_date: &str, campaign: &str) -> Self {
        Self {
            files: FolderSource::new(folder),
            prefix: format!("campaigns/{run_date}/{campaign}/"),
        }
    }

    /// The drop's folder key, `campaigns/<run date>/<campaign id>/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of the drop's manifest.
    pub fn manifest_key(&self) -> String {
        format!("{}{}", self.prefix, espbridge_core::manifest::MANIFEST_FILE)
    }

    pub fn folder(&self) -> &Path {
        self.files.root()
    }

    /// The file's key inside the folder, or `NotFound` for a key outside the drop.
    fn inner<'k>(&self, key: &'k str) -> Result<&'k str, SourceError> {
        key.strip_prefix(self.prefix.as_str())
            .ok_or_else(|| SourceError::NotFound {
                key: key.to_owned(),
            })
    }
}

/// Errors name the bucket's key, as the real source's do.
fn rekey(key: &str, e: SourceError) -> SourceError {
    match e {
        SourceError::NotFound { .. } => SourceError::NotFound {
            key: key.to_owned(),
        },
        SourceError::Changed { etag, .. } => SourceError::Changed {
            key: key.to_owned(),
            etag,
        },
        SourceError::NotAFile { reason, .. } => SourceError::NotAFile {
            key: key.to_owned(),
            reason,
        },
        SourceError::TooLarge { limit, .. } => SourceError::TooLarge {
            key: key.to_owned(),
            limit,
        },
        SourceError::Backend { source, .. } => SourceError::Backend {
            key: key.to_owned(),
            source,
        },
    }
}

#[async_trait]
impl AudienceSource for DropFolder {
    async fn read_small(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, String), SourceError> {
        let inner = self.inner(key)?;
        self.files
            .read_small(bucket, inner)
            .await
            .map_err(|e| rekey(key, e))
    }

    async fn open(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<(ByteStream, String), SourceError> {
        let inner = self.inner(key)?;
        self.files
            .open(bucket, inner, etag)
            .await
            .map_err(|e| rekey(key, e))
    }

    async fn put_file(&self, _bucket: &str, key: &str, _path: &Path) -> Result<(), SourceError> {
        Err(SourceError::backend(
            key,
            BackendError {
                operation: "write",
                code: None,
                detail: "the drop folder is read-only here".to_owned(),
                retryable: false,
                source: None,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn keys_under_the_prefix_are_the_folders_files_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), b"customer_id\n1\n").unwrap();
        let src = DropFolder::new(dir.path(), "2026-11-24", "c1");
        assert_eq!(src.manifest_key(), "campaigns/2026-11-24/c1/manifest.json");
        let (mut s, _) = src
            .open("drops", "campaigns/2026-11-24/c1/a.csv", None)
            .await
            .unwrap();
        let mut body = Vec::new();
        s.read_to_end(&mut body).await.unwrap();
        assert_eq!(body, b"customer_id\n1\n");

        match src
            .read_small("drops", "campaigns/2026-11-24/c1/none.json")
            .await
        {
            Err(SourceError::NotFound { key }) => {
                assert_eq!(key, "campaigns/2026-11-24/c1/none.json")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Outside the drop, or leaving the folder: no such object.
        for key in [
            "campaigns/2026-11-24/c2/a.csv",
            "campaigns/2026-11-24/c1/../c1/a.csv",
        ] {
            assert!(
                matches!(
                    src.open("drops", key, None).await,
                    Err(SourceError::NotFound { .. })
                ),
                "{key}"
            );
        }
        let tmp = dir.path().join("a.csv");
        let refused = src
            .put_file("drops", "campaigns/2026-11-24/c1/rejects.csv", &tmp)
            .await
            .unwrap_err();
        assert!(!refused.is_retryable());
        assert!(!dir.path().join("rejects.csv").exists());
    }
}
