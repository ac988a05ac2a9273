//! [`AudienceSource`] on a local folder: the folder plays the drop bucket, object `key` lives at
//! `root/<key>`.
//!
//! Keys come from manifests and events, so they are checked before they touch the file system:
//! only plain relative segments are accepted, never `..`, `.`, an absolute path or a backslash.
//! The version tag stands in for S3's ETag: a hash of the file's length, modification time and
//! (on Unix) inode, so rewriting or replacing a file changes it.

use async_trait::async_trait;
use espbridge_core::ports::BackendError;
use espbridge_core::ports::source::{AudienceSource, ByteStream, SMALL_OBJECT_LIMIT, SourceError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;
use tokio::io::AsyncReadExt;

/// Why a bucket name or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("bucket name must not be empty or contain a path separator")]
    Bucket,
    #[error("key must be a non-empty relative path")]
    Empty,
    #[error("key must be relative, not absolute")]
    Absolute,
    #[error("key segment {0:?} is not allowed")]
    Segment(String),
}

/// The drop bucket as a folder.
#[derive(Debug, Clone)]
pub struct FolderSource {
    root: PathBuf,
}

impl FolderSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind `bucket`/`key`, or why that pair is refused.
    pub fn path_of(&self, bucket: &str, key: &str) -> Result<PathBuf, KeyError> {
        if bucket.is_empty() || bucket.contains(['/', '\\']) {
            return Err(KeyError::Bucket);
        }
        resolve_key(&self.root, key)
    }

    fn checked_path(&self, bucket: &str, key: &str) -> Result<PathBuf, SourceError> {
        // The port has no "invalid key" variant; a refused key names no object this bucket
        // can hold, and NotFound is the non-retryable answer closest to that.
        let path = self
            .path_of(bucket, key)
            .map_err(|e| SourceError::NotFound {
                key: format!("{key} ({e})"),
            })?;
        // No component below the root may be a symbolic link: S3 has none, and locally one
        // would let a drop read any file of the machine into an ESP.
        let mut at = self.root.clone();
        for part in path.strip_prefix(&self.root).unwrap_or(&path).components() {
            at.push(part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(SourceError::NotAFile {
                    key: key.to_owned(),
                    reason: "a symbolic link (local mode reads only regular files inside the drop folder)",
                });
            }
        }
        Ok(path)
    }
}

/// Joins `key` under `root`, refusing anything that could leave `root`.
pub(crate) fn resolve_key(root: &Path, key: &str) -> Result<PathBuf, KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.starts_with('/') || Path::new(key).is_absolute() {
        return Err(KeyError::Absolute);
    }
    let mut path = root.to_path_buf();
    for segment in key.split('/') {
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.contains(['\\', '\0', ':'])
        {
            return Err(KeyError::Segment(segment.to_owned()));
        }
        path.push(segment);
    }
    Ok(path)
}

/// The version tag of a file: quoted hex of a hash over its length, modification time and inode.
pub(crate) fn etag_of(meta: &std::fs::Metadata) -> String {
    let mut buf = Vec::with_capacity(32);
    buf.extend_from_slice(&meta.len().to_le_bytes());
    // A file system without mtimes still gets a tag from length (and inode) alone.
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    buf.extend_from_slice(&mtime.to_le_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        buf.extend_from_slice(&meta.ino().to_le_bytes());
    }
    format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&buf))
}

fn io_error(key: &str, e: io::Error) -> SourceError {
    if e.kind() == io::ErrorKind::NotFound {
        SourceError::NotFound {
            key: key.to_owned(),
        }
    } else {
        SourceError::backend(key, BackendError::io("read", e))
    }
}

/// Opens `path` and tags it from the open handle, so the tag describes the bytes read.
async fn open_tagged(path: &Path, key: &str) -> Result<(tokio::fs::File, String), SourceError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_error(key, e))?;
    let meta = file.metadata().await.map_err(|e| io_error(key, e))?;
    if !meta.is_file() {
        return Err(SourceError::NotFound {
            key: key.to_owned(),
        });
    }
    Ok((file, etag_of(&meta)))
}

#[async_trait]
impl AudienceSource for FolderSource {
    async fn read_small(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, String), SourceError> {
        let path = self.checked_path(bucket, key)?;
        let (file, etag) = open_tagged(&path, key).await?;
        let mut bytes = Vec::new();
        file.take(SMALL_OBJECT_LIMIT as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| io_error(key, e))?;
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
        let path = self.checked_path(bucket, key)?;
        let (file, current) = open_tagged(&path, key).await?;
        if let Some(expected) = etag
            && expected != current
        {
            return Err(SourceError::Changed {
                key: key.to_owned(),
                etag: expected.to_owned(),
            });
        }
        Ok((Box::new(file), current))
    }

    async fn put_file(&self, bucket: &str, key: &str, path: &Path) -> Result<(), SourceError> {
        let dest = self.checked_path(bucket, key)?;
        let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
            return Err(SourceError::NotFound {
                key: key.to_owned(),
            });
        };
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io_error(key, e))?;
        // Copy beside the target and rename into place, so a reader (or the drop watcher)
        // never sees a half-written object, as with S3's atomic PUT.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tmp = parent.join(format!(
            ".{}.partial-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(e) = tokio::fs::copy(path, &tmp).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(key, e));
        }
        if let Err(e) = tokio::fs::rename(&tmp, &dest).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(key, e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};
    use tokio::io::AsyncReadExt;

    const KEY: &str = "campaigns/2026-11-24/c1/audience.csv";

    fn source_with(content: &[u8]) -> (tempfile::TempDir, FolderSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        let src = FolderSource::new(dir.path());
        (dir, src)
    }

    async fn read_all(mut s: ByteStream) -> Vec<u8> {
        let mut v = Vec::new();
        s.read_to_end(&mut v).await.unwrap();
        v
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symbolic_link_is_refused_whatever_it_points_at() {
        let (dir, src) = source_with(b"customer_id\n1\n");
        let secret = dir.path().join("outside.csv");
        std::fs::write(&secret, b"customer_id\nSECRET\n").unwrap();
        let link = "campaigns/2026-11-24/c1/link.csv";
        std::os::unix::fs::symlink(&secret, dir.path().join(link)).unwrap();
        for result in [
            src.open("drops", link, None).await.map(|_| ()),
            src.read_small("drops", link).await.map(|_| ()),
        ] {
            match result {
                Err(e @ SourceError::NotAFile { .. }) => assert_eq!(
                    e.to_string(),
                    "campaigns/2026-11-24/c1/link.csv: a symbolic link (local mode reads only regular files inside the drop folder)"
                ),
                other => panic!("{:?}", other.map_err(|e| e.to_string())),
            }
        }
        // A linked folder too.
        std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
        std::fs::write(dir.path().join("elsewhere/a.csv"), b"customer_id\n1\n").unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("elsewhere"),
            dir.path().join("campaigns/2026-11-24/c2"),
        )
        .unwrap();
        assert!(matches!(
            src.open("drops", "campaigns/2026-11-24/c2/a.csv", None)
                .await,
            Err(SourceError::NotAFile { .. })
        ));
    }

    #[tokio::test]
    async fn reads_and_streams_with_a_stable_tag() {
        let (_dir, src) = source_with(b"customer_id\n1\n2\n");
        let (bytes, tag) = src.read_small("drops", KEY).await.unwrap();
        assert_eq!(bytes, b"customer_id\n1\n2\n");
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() == 18,
            "{tag}"
        );
        let (stream, tag2) = src.open("drops", KEY, Some(&tag)).await.unwrap();
        assert_eq!(tag2, tag);
        assert_eq!(read_all(stream).await, bytes);
    }

    #[tokio::test]
    async fn a_rewritten_file_is_detected() {
        let (dir, src) = source_with(b"customer_id\n1\n");
        let (_, tag) = src.read_small("drops", KEY).await.unwrap();
        let path = dir.path().join(KEY);

        // Same length, new modification time.
        std::fs::write(&path, b"customer_id\n2\n").unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(10))
            .unwrap();
        drop(f);
        match src.open("drops", KEY, Some(&tag)).await {
            Err(SourceError::Changed { key, etag }) => {
                assert_eq!(key, KEY);
                assert_eq!(etag, tag);
            }
            Err(e) => panic!("expected Changed, got {e:?}"),
            Ok(_) => panic!("expected Changed, got a stream"),
        }
        // Without a pin the new version opens, under a new tag.
        let (_, new_tag) = src.open("drops", KEY, None).await.unwrap();
        assert_ne!(new_tag, tag);
    }

    #[tokio::test]
    async fn a_file_of_another_length_is_detected() {
        let (dir, src) = source_with(b"customer_id\n1\n");
        let (_, tag) = src.read_small("drops", KEY).await.unwrap();
        std::fs::write(dir.path().join(KEY), b"customer_id\n1\n2\n").unwrap();
        assert!(matches!(
            src.open("drops", KEY, Some(&tag)).await,
            Err(SourceError::Changed { .. })
        ));
    }

    #[tokio::test]
    async fn path_traversal_is_refused() {
        let (dir, src) = source_with(b"x");
        // A file beside the bucket folder must stay out of reach.
        std::fs::write(dir.path().join("campaigns/secret.txt"), b"s").unwrap();
        for key in [
            "campaigns/2026-11-24/../secret.txt",
            "campaigns/2026-11-24/c1/../../secret.txt",
            "/etc/passwd",
            "campaigns//x",
            "./campaigns/x",
            "campaigns\\..\\x",
            "",
        ] {
            match src.read_small("drops", key).await {
                Err(SourceError::NotFound { .. }) => {}
                other => panic!("{key:?} must be refused, got {other:?}"),
            }
        }
        assert_eq!(
            src.path_of("drops", "../x").unwrap_err(),
            KeyError::Segment("..".into())
        );
        assert_eq!(src.path_of("drops", "/x").unwrap_err(), KeyError::Absolute);
        assert_eq!(src.path_of("a/b", KEY).unwrap_err(), KeyError::Bucket);
        assert!(matches!(
            src.open("../drops", KEY, None).await,
            Err(SourceError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn missing_object_is_not_found() {
        let (_dir, src) = source_with(b"x");
        match src.read_small("drops", "campaigns/none.csv").await {
            Err(SourceError::NotFound { key }) => assert_eq!(key, "campaigns/none.csv"),
            other => panic!("expected NotFound, got {other:?}"),
        }
        // A folder is not an object.
        assert!(matches!(
            src.read_small("drops", "campaigns").await,
            Err(SourceError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn put_file_creates_parents_and_copies() {
        let (dir, src) = source_with(b"x");
        let report = dir.path().join("local-report.csv");
        std::fs::write(&report, b"line,reason\n3,bad id\n").unwrap();
        let key = "campaigns/2026-11-24/c9/rejects/rejects.csv";
        src.put_file("drops", key, &report).await.unwrap();
        let (bytes, _) = src.read_small("drops", key).await.unwrap();
        assert_eq!(bytes, b"line,reason\n3,bad id\n");
        // No temporary file is left beside it.
        let entries: Vec<_> = std::fs::read_dir(dir.path().join(key).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("rejects.csv")]);
        assert!(matches!(
            src.put_file("drops", "../escape.csv", &report).await,
            Err(SourceError::NotFound { .. })
        ));
        assert!(!dir.path().parent().unwrap().join("escape.csv").exists());
    }
}
