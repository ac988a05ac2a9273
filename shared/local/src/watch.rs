//! Finds new drops in the local drop folder: local mode's stand-in for the S3 `ObjectCreated`
//! notifications on `manifest.json` and on conversions files.
//!
//! Reported: `campaigns/<run date>/<campaign id>/manifest.json`, and the conversions files of
//! both layouts ([`ConversionsPath`]): `campaigns/<run date>/<campaign id>/*conversions.csv[.gz]`
//! and `conversions/<YYYY-MM-DD>/<name>.csv[.gz]`. The caller routes each key (the services'
//! `handle_object` does). Audience files and rejects reports are never reported.
//!
//! The long-lived local server calls [`DropWatcher::scan`] every few seconds. Each object
//! version (key and tag) is reported once; a manifest rewritten in place gets a new tag and is
//! reported again, as S3 would notify an overwrite. What was reported is kept in memory only: after
//! a restart every manifest is reported once more, and the store's drop record
//! (`create_from_drop`) answers those with `Existing`, as it does for SQS redeliveries; a
//! conversions file already attributed is recognised by its `key#tag` in the campaign record.

use crate::source::etag_of;
use espbridge_core::conversions::{BY_DATE_ROOT, ConversionsPath};
use espbridge_core::ports::source::ObjectRef;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const MANIFEST: &str = "manifest.json";

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot scan drop folder {path}: {source}")]
pub struct WatchError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Watches `root/campaigns/<run date>/<campaign id>/manifest.json`.
#[derive(Debug)]
pub struct DropWatcher {
    root: PathBuf,
    bucket: String,
    settle: Duration,
    /// Key → tag last reported.
    reported: HashMap<String, String>,
}

impl DropWatcher {
    /// Reports drops under `root` as objects of `bucket` (the name the rest of the system uses
    /// for the drop bucket).
    pub fn new(root: impl Into<PathBuf>, bucket: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            bucket: bucket.into(),
            settle: Duration::ZERO,
            reported: HashMap::new(),
        }
    }

    /// Skips manifests modified less than `settle` ago (they are picked up by a later scan).
    /// For writers that cannot write-then-rename: a half-written manifest would otherwise be
    /// reported, then reported again under a new tag once complete.
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Manifests and conversions files not reported before, by key.
    pub async fn scan(&mut self) -> Result<Vec<ObjectRef>, WatchError> {
        let campaigns = self.root.join("campaigns");
        let mut found = Vec::new();
        for (date, date_dir) in subdirs(&campaigns).await? {
            for (campaign, campaign_dir) in subdirs(&date_dir).await? {
                let folder = format!("campaigns/{date}/{campaign}/");
                self.consider(
                    &campaign_dir.join(MANIFEST),
                    format!("{folder}{MANIFEST}"),
                    &mut found,
                )
                .await?;
                for (name, path) in files(&campaign_dir).await? {
                    let key = format!("{folder}{name}");
                    if ConversionsPath::parse(&key).is_some() {
                        self.consider(&path, key, &mut found).await?;
                    }
                }
            }
        }
        for (date, date_dir) in subdirs(&self.root.join(BY_DATE_ROOT)).await? {
            for (name, path) in files(&date_dir).await? {
                let key = format!("{BY_DATE_ROOT}/{date}/{name}");
                if ConversionsPath::parse(&key).is_some() {
                    self.consider(&path, key, &mut found).await?;
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        if !found.is_empty() {
            tracing::debug!(objects = found.len(), "new drop objects found");
        }
        Ok(found)
    }

    /// Adds the file at `path` to `found` unless it is absent, unsettled or already reported at
    /// this version.
    async fn consider(
        &mut self,
        path: &Path,
        key: String,
        found: &mut Vec<ObjectRef>,
    ) -> Result<(), WatchError> {
        let meta = match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(WatchError {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if !self.settled(&meta) {
            return Ok(());
        }
        let etag = etag_of(&meta);
        if self.reported.get(&key) == Some(&etag) {
            return Ok(());
        }
        self.reported.insert(key.clone(), etag.clone());
        found.push(ObjectRef {
            bucket: self.bucket.clone(),
            key,
            etag,
        });
        Ok(())
    }

    fn settled(&self, meta: &std::fs::Metadata) -> bool {
        if self.settle.is_zero() {
            return true;
        }
        match meta.modified().map(|t| SystemTime::now().duration_since(t)) {
            Ok(Ok(age)) => age >= self.settle,
            // Modified "in the future" (clock skew) counts as not settled yet.
            Ok(Err(_)) => false,
            // No mtime on this file system: nothing to wait on.
            Err(_) => true,
        }
    }
}

/// The sub-folders of `dir` with UTF-8 names (keys are UTF-8), or none if `dir` does not exist.
async fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, WatchError> {
    entries(dir, true).await
}

/// The regular files of `dir` with UTF-8 names, or none if `dir` does not exist.
async fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, WatchError> {
    entries(dir, false).await
}

/// The folders (`dirs`) or files of `dir`, hidden ones left out.
async fn entries(dir: &Path, dirs: bool) -> Result<Vec<(String, PathBuf)>, WatchError> {
    let err = |source| WatchError {
        path: dir.to_owned(),
        source,
    };
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(err)? {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // Hidden entries are not drops (and keep temporary files out of sight).
        if name.starts_with('.') {
            continue;
        }
        // file_type does not follow symlinks; a symlink is followed by metadata() so local
        // setups may link a drop in.
        let is_dir = match entry.file_type().await.map_err(err)? {
            t if t.is_dir() => true,
            t if t.is_symlink() => tokio::fs::metadata(entry.path())
                .await
                .map(|m| m.is_dir())
                .unwrap_or(false),
            _ => false,
        };
        if is_dir == dirs {
            out.push((name, entry.path()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FolderSource;
    use espbridge_core::ports::source::AudienceSource;

    fn write(root: &Path, key: &str, body: &[u8]) {
        let p = root.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    #[tokio::test]
    async fn reports_each_manifest_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DropWatcher::new(dir.path(), "drops");
        assert!(
            w.scan().await.unwrap().is_empty(),
            "no campaigns folder yet"
        );

        write(
            dir.path(),
            "campaigns/2026-11-24/c1/audience.csv",
            b"id\n1\n",
        );
        assert!(w.scan().await.unwrap().is_empty(), "no manifest, no drop");

        write(dir.path(), "campaigns/2026-11-24/c1/manifest.json", b"{}");
        write(dir.path(), "campaigns/2026-11-24/c2/manifest.json", b"{ }");
        write(dir.path(), "campaigns/2026-11-24/manifest.json", b"{}");
        let found = w.scan().await.unwrap();
        let keys: Vec<_> = found.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "campaigns/2026-11-24/c1/manifest.json",
                "campaigns/2026-11-24/c2/manifest.json"
            ]
        );
        assert!(found.iter().all(|o| o.bucket == "drops"));
        assert!(w.scan().await.unwrap().is_empty(), "already reported");

        // The tag is the one the folder source reads, so the drop can be pinned to it.
        let src = FolderSource::new(dir.path());
        let (_, tag) = src.read_small("drops", &found[0].key).await.unwrap();
        assert_eq!(tag, found[0].etag);

        write(dir.path(), "campaigns/2026-11-25/c3/manifest.json", b"{}");
        let next = w.scan().await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].key, "campaigns/2026-11-25/c3/manifest.json");
    }

    #[tokio::test]
    async fn a_rewritten_manifest_is_reported_again() {
        let dir = tempfile::tempdir().unwrap();
        let key = "campaigns/2026-11-24/c1/manifest.json";
        write(dir.path(), key, b"{}");
        let mut w = DropWatcher::new(dir.path(), "drops");
        let first = w.scan().await.unwrap();
        write(dir.path(), key, b"{\"changed\": true}");
        let second = w.scan().await.unwrap();
        assert_eq!(second.len(), 1);
        assert_ne!(second[0].etag, first[0].etag);
    }

    #[tokio::test]
    async fn fresh_manifests_wait_for_the_settle_time() {
        let dir = tempfile::tempdir().unwrap();
        let key = "campaigns/2026-11-24/c1/manifest.json";
        write(dir.path(), key, b"{}");
        let mut w = DropWatcher::new(dir.path(), "drops").with_settle(Duration::from_secs(60));
        assert!(w.scan().await.unwrap().is_empty(), "written just now");

        let f = std::fs::File::options()
            .write(true)
            .open(dir.path().join(key))
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(120))
            .unwrap();
        drop(f);
        assert_eq!(w.scan().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn conversions_files_of_both_layouts_are_reported_once_per_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DropWatcher::new(dir.path(), "drops");
        write(dir.path(), "campaigns/2026-11-24/c1/manifest.json", b"{}");
        write(
            dir.path(),
            "campaigns/2026-11-24/c1/audience.csv",
            b"id\n1\n",
        );
        write(
            dir.path(),
            "campaigns/2026-11-24/c1/rejects.csv",
            b"file,line,reason\n",
        );
        assert_eq!(w.scan().await.unwrap().len(), 1, "the manifest only");

        let by_campaign = "campaigns/2026-11-24/c1/conversions.csv.gz";
        let by_date = "conversions/2026-11-30/shop.csv";
        write(dir.path(), by_campaign, b"x");
        write(dir.path(), by_date, b"customer_id,amount,timestamp\n");
        write(dir.path(), "conversions/2026-11-30/notes.txt", b"not csv");
        write(dir.path(), "conversions/someday/shop.csv", b"bad date");
        let found = w.scan().await.unwrap();
        let keys: Vec<_> = found.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, [by_campaign, by_date]);
        assert!(w.scan().await.unwrap().is_empty(), "already reported");

        // A new version of a conversions file is a new event.
        write(
            dir.path(),
            by_date,
            b"customer_id,amount,timestamp\nC1,1,2026-11-30T00:00:00Z\n",
        );
        let again = w.scan().await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].key, by_date);
        let src = FolderSource::new(dir.path());
        let (_, tag) = src.read_small("drops", by_date).await.unwrap();
        assert_eq!(tag, again[0].etag);
    }
}
