//! [`CampaignStore`] on SQLite: the embedded counterpart of the DynamoDB single table.
//!
//! The tables mirror the single-table items (campaign, drop idempotency record, run history,
//! daily snapshots) and the same conditional writes: a drop is recorded and its campaign created
//! in one transaction, and a save only lands if the stored version is the one that was read.
//!
//! One connection sits behind a `std::sync::Mutex`; every query runs on tokio's blocking pool so
//! a slow disk never stalls the async workers. Local mode has a handful of writers, so one
//! connection is plenty, and it makes each method trivially serialisable.

use async_trait::async_trait;
use espbridge_core::campaign::{Campaign, MetricSnapshot, RunRecord, State};
use espbridge_core::ids::{AccountId, CampaignId, EspKind};
use espbridge_core::ports::BackendError;
use espbridge_core::ports::esp::SenderHeaders;
use espbridge_core::ports::listing::{CampaignFilter, CampaignPage, MAX_PAGE, Position};
use espbridge_core::ports::source::ObjectRef;
use espbridge_core::ports::store::{CampaignStore, Created, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The schema version this code writes; stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS campaigns (
    id       TEXT PRIMARY KEY NOT NULL,
    state    TEXT NOT NULL,
    version  INTEGER NOT NULL,
    drop_bucket TEXT NOT NULL,
    drop_key TEXT NOT NULL,
    drop_etag TEXT NOT NULL,
    record   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS campaigns_by_state ON campaigns (state, id);
CREATE TABLE IF NOT EXISTS drops (
    bucket TEXT NOT NULL,
    key    TEXT NOT NULL,
    etag   TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    PRIMARY KEY (bucket, key, etag)
);
CREATE TABLE IF NOT EXISTS runs (
    campaign_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (campaign_id, seq)
);
CREATE TABLE IF NOT EXISTS template_headers (
    esp      TEXT NOT NULL,
    account  TEXT NOT NULL,
    template TEXT NOT NULL,
    record   TEXT NOT NULL,
    PRIMARY KEY (esp, account, template)
);
CREATE TABLE IF NOT EXISTS snapshots (
    campaign_id TEXT NOT NULL,
    day    INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (campaign_id, day)
);
";

/// Version 2: the listing's filter columns, filled from the records already stored, and its
/// index (run date, then the listing order).
const MIGRATE_TO_2: &str = "
ALTER TABLE campaigns ADD COLUMN run_date TEXT;
ALTER TABLE campaigns ADD COLUMN esp TEXT;
ALTER TABLE campaigns ADD COLUMN account TEXT;
UPDATE campaigns SET
    run_date = json_extract(record, '$.run_date'),
    esp = json_extract(record, '$.esp'),
    account = json_extract(record, '$.account');
CREATE INDEX IF NOT EXISTS campaigns_by_run ON campaigns (run_date, state, id);
";

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open campaign store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "campaign store {path} has schema version {found}, newer than this build's {SCHEMA_VERSION}"
    )]
    NewerSchema { path: PathBuf, found: i64 },
}

/// The embedded campaign store. Cloning shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, in WAL mode so a reader (the CLI's
    /// report) never blocks the server's writes.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let err = |source| OpenError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        // journal_mode returns the resulting mode as a row.
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(err)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(err)?;
        Self::init(conn, path)
    }

    /// A private database that lives as long as the store (tests, one-shot runs).
    pub fn in_memory() -> Result<Self, OpenError> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| OpenError::Sqlite {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, path)
    }

    fn init(conn: Connection, path: &Path) -> Result<Self, OpenError> {
        let err = |source| OpenError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if found > SCHEMA_VERSION {
            return Err(OpenError::NewerSchema {
                path: path.to_owned(),
                found,
            });
        }
        conn.execute_batch(SCHEMA).map_err(err)?;
        if found < 2 {
            // One transaction with the version bump: a crash leaves version 1 and no new column.
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {MIGRATE_TO_2} PRAGMA user_version = 2; COMMIT;"
            ))
            .map_err(err)?;
        }
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .map_err(err)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock rolled back its transaction when the
            // Transaction dropped, so the connection is still consistent.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| {
            StoreError::Backend(
                BackendError::transient("sqlite", "the store task stopped").with_source(e),
            )
        })?
    }
}

/// SQLite's busy and locked answers are worth another try; every other one is not.
fn db(e: rusqlite::Error) -> StoreError {
    let code = e.sqlite_error_code();
    let retryable = matches!(
        code,
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    StoreError::Backend(BackendError {
        operation: "sqlite",
        code: code.map(|c| format!("{c:?}")),
        detail: e.to_string(),
        retryable,
        source: Some(Box::new(e)),
    })
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("cannot encode record: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn read_campaign(conn: &Connection, id: &str) -> Result<Option<Campaign>, StoreError> {
    let json: Option<String> = conn
        .query_row(
            "SELECT record FROM campaigns WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    json.as_deref().map(decode).transpose()
}

fn version_param(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("version {v} out of range")))
}

#[async_trait]
impl CampaignStore for SqliteStore {
    async fn create_from_drop(
        &self,
        drop: &ObjectRef,
        campaign: &Campaign,
    ) -> Result<Created, StoreError> {
        let drop = drop.clone();
        let mut record = campaign.clone();
        record.version = 1;
        self.with_conn(move |conn| {
            // IMMEDIATE takes the write lock up front, so the check-then-insert is atomic
            // against other processes on the same file too.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let seen: Option<String> = tx
                .query_row(
                    "SELECT campaign_id FROM drops WHERE bucket = ?1 AND key = ?2 AND etag = ?3",
                    params![drop.bucket, drop.key, drop.etag],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            if let Some(id) = seen {
                let existing = read_campaign(&tx, &id)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("drop record points at missing campaign {id}"))
                })?;
                return Ok(Created::Existing(existing));
            }
            let other_key: Option<String> = tx
                .query_row(
                    "SELECT drop_key FROM campaigns WHERE id = ?1",
                    params![record.id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            if let Some(existing_key) = other_key {
                return Err(StoreError::CampaignExists {
                    campaign_id: record.id.clone(),
                    existing_key,
                });
            }
            tx.execute(
                "INSERT INTO drops (bucket, key, etag, campaign_id) VALUES (?1, ?2, ?3, ?4)",
                params![drop.bucket, drop.key, drop.etag, record.id.as_str()],
            )
            .map_err(db)?;
            tx.execute(
                "INSERT INTO campaigns (id, state, version, drop_bucket, drop_key, drop_etag, record,
                                        run_date, esp, account)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    record.id.as_str(),
                    record.state.as_str(),
                    version_param(record.version)?,
                    drop.bucket,
                    drop.key,
                    drop.etag,
                    encode(&record)?,
                    record.run_date,
                    record.esp.map(|e| e.as_str()),
                    record.account.as_ref().map(|a| a.as_str()),
                ],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(Created::New(record))
        })
        .await
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn| read_campaign(conn, id.as_str()))
            .await
    }

    async fn save(&self, next: &Campaign) -> Result<Campaign, StoreError> {
        let expected = next.version;
        let mut record = next.clone();
        record.version = expected
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt(format!("version {expected} cannot grow")))?;
        self.with_conn(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE campaigns SET state = ?1, version = ?2, record = ?3,
                            run_date = ?6, esp = ?7, account = ?8
                     WHERE id = ?4 AND version = ?5",
                    params![
                        record.state.as_str(),
                        version_param(record.version)?,
                        encode(&record)?,
                        record.id.as_str(),
                        version_param(expected)?,
                        record.run_date,
                        record.esp.map(|e| e.as_str()),
                        record.account.as_ref().map(|a| a.as_str()),
                    ],
                )
                .map_err(db)?;
            if changed == 1 {
                return Ok(record);
            }
            let exists: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = ?1)",
                    params![record.id.as_str()],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if exists {
                Err(StoreError::Conflict {
                    campaign_id: record.id.clone(),
                    expected,
                })
            } else {
                Err(StoreError::NotFound(record.id.clone()))
            }
        })
        .await
    }

    async fn add_run(&self, id: &CampaignId, run: &RunRecord) -> Result<(), StoreError> {
        let id = id.clone();
        let json = encode(run)?;
        self.with_conn(move |conn| {
            // The seq is computed inside the INSERT, so concurrent adds cannot take the same one.
            conn.execute(
                "INSERT INTO runs (campaign_id, seq, record)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM runs WHERE campaign_id = ?1), ?2)",
                params![id.as_str(), json],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn runs(&self, id: &CampaignId) -> Result<Vec<RunRecord>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn| {
            collect_json(
                conn,
                "SELECT record FROM runs WHERE campaign_id = ?1 ORDER BY seq",
                id.as_str(),
            )
        })
        .await
    }

    async fn put_snapshot(
        &self,
        id: &CampaignId,
        snapshot: &MetricSnapshot,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        let day = snapshot.day;
        let json = encode(snapshot)?;
        self.with_conn(move |conn| {
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO snapshots (campaign_id, day, record) VALUES (?1, ?2, ?3)",
                    params![id.as_str(), day, json],
                )
                .map_err(db)?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn snapshots(&self, id: &CampaignId) -> Result<Vec<MetricSnapshot>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn| {
            collect_json(
                conn,
                "SELECT record FROM snapshots WHERE campaign_id = ?1 ORDER BY day",
                id.as_str(),
            )
        })
        .await
    }

    async fn template_headers(
        &self,
        esp: EspKind,
        account: &AccountId,
        template_id: &str,
    ) -> Result<Option<SenderHeaders>, StoreError> {
        let (account, template) = (account.to_string(), template_id.to_owned());
        self.with_conn(move |conn| {
            let json: Option<String> = conn
                .query_row(
                    "SELECT record FROM template_headers WHERE esp = ?1 AND account = ?2 AND template = ?3",
                    params![esp.as_str(), account, template],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            json.map(|s| decode(&s)).transpose()
        })
        .await
    }

    async fn put_template_headers(
        &self,
        esp: EspKind,
        account: &AccountId,
        template_id: &str,
        headers: &SenderHeaders,
    ) -> Result<(), StoreError> {
        let (account, template) = (account.to_string(), template_id.to_owned());
        let json = encode(headers)?;
        self.with_conn(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO template_headers (esp, account, template, record) VALUES (?1, ?2, ?3, ?4)",
                params![esp.as_str(), account, template, json],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn list_by_state(&self, state: State, limit: usize) -> Result<Vec<Campaign>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT record FROM campaigns WHERE state = ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![state.as_str(), limit], |r| r.get::<_, String>(0))
                .map_err(db)?;
            rows.map(|r| r.map_err(db).and_then(|s| decode(&s)))
                .collect()
        })
        .await
    }

    async fn list(
        &self,
        filter: &CampaignFilter,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<CampaignPage, StoreError> {
        let (filter, after) = (filter.clone(), after.cloned());
        let limit = limit.clamp(1, MAX_PAGE);
        self.with_conn(move |conn| list_page(conn, &filter, after.as_ref(), limit))
            .await
    }
}

/// The listing's query: the filters that are given, then past `after`, in listing order.
/// SQLite compares text bytewise (BINARY), as DynamoDB orders its sort keys.
fn list_page(
    conn: &Connection,
    filter: &CampaignFilter,
    after: Option<&Position>,
    limit: usize,
) -> Result<CampaignPage, StoreError> {
    let mut sql = String::from("SELECT record FROM campaigns WHERE 1 = 1");
    let mut args: Vec<String> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: String| {
        args.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(d) = &filter.run_date {
        arg(&mut sql, " AND run_date = ?", d.to_string());
    }
    if let Some(s) = filter.state {
        arg(&mut sql, " AND state = ?", s.as_str().to_owned());
    }
    if let Some(e) = filter.esp {
        arg(&mut sql, " AND esp = ?", e.as_str().to_owned());
    }
    if let Some(a) = &filter.account {
        arg(&mut sql, " AND account = ?", a.to_string());
    }
    if let Some(p) = after {
        arg(&mut sql, " AND (state > ?", p.state.as_str().to_owned());
        arg(&mut sql, " OR (state = ?", p.state.as_str().to_owned());
        arg(&mut sql, " AND id > ?))", p.id.to_string());
    }
    // One more than the page, to know whether another page follows.
    sql.push_str(&format!(" ORDER BY state, id LIMIT {}", limit + 1));
    let mut stmt = conn.prepare(&sql).map_err(db)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            r.get::<_, String>(0)
        })
        .map_err(db)?;
    let mut campaigns: Vec<Campaign> = rows
        .map(|r| r.map_err(db).and_then(|s| decode(&s)))
        .collect::<Result<_, _>>()?;
    let more = campaigns.len() > limit;
    campaigns.truncate(limit);
    Ok(CampaignPage {
        next: more.then(|| campaigns.last().map(Position::of)).flatten(),
        campaigns,
    })
}

/// Decodes the JSON column of every row `sql` returns for one campaign id.
fn collect_json<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    id: &str,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let rows = stmt
        .query_map(params![id], |r| r.get::<_, String>(0))
        .map_err(db)?;
    rows.map(|r| r.map_err(db).and_then(|s| decode(&s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::testkit::{run_store_contract, sample_campaign};

    #[tokio::test]
    async fn contract_in_memory() {
        let store = SqliteStore::in_memory().unwrap();
        run_store_contract(&store, "mem").await;
    }

    #[tokio::test]
    async fn contract_on_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("espbridge.db")).unwrap();
        run_store_contract(&store, "file").await;
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("espbridge.db");
        let c = sample_campaign("reopen");
        let saved = {
            let store = SqliteStore::open(&path).unwrap();
            let Created::New(mut stored) = store.create_from_drop(&c.drop, &c).await.unwrap()
            else {
                panic!("expected New")
            };
            stored
                .transition(State::Uploading, stored.updated_at)
                .unwrap();
            store.save(&stored).await.unwrap()
        };
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get(&c.id).await.unwrap(), Some(saved.clone()));
        // The drop record survived too: the re-delivered event is recognised.
        match store.create_from_drop(&c.drop, &c).await.unwrap() {
            Created::Existing(e) => assert_eq!(e, saved),
            other => panic!("expected Existing, got {other:?}"),
        }
        let uploading = store.list_by_state(State::Uploading, 10).await.unwrap();
        assert_eq!(uploading.len(), 1);
    }

    /// Two processes on one file (two connections) racing on one drop and one save: exactly one
    /// of each wins, as with two deliveries of one S3 event.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_connections_cannot_both_act() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("espbridge.db");
        let stores = [
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        ];
        let c = sample_campaign("race");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = stores[i % 2].clone();
                let c = c.clone();
                tokio::spawn(async move { store.create_from_drop(&c.drop, &c).await })
            })
            .collect();
        let mut new = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Created::New(_) => new += 1,
                Created::Existing(e) => assert_eq!(e.id, c.id),
            }
        }
        assert_eq!(new, 1, "exactly one delivery creates the campaign");

        let read = stores[0].get(&c.id).await.unwrap().unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = stores[i % 2].clone();
                let mut next = read.clone();
                next.audience.uploaded = i as u64;
                tokio::spawn(async move { store.save(&next).await })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(saved) => winners.push(saved),
                Err(StoreError::Conflict { expected, .. }) => assert_eq!(expected, read.version),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one save of a version lands");
        assert_eq!(stores[1].get(&c.id).await.unwrap(), winners.pop());
    }

    #[tokio::test]
    async fn save_of_unknown_campaign_is_not_found() {
        let store = SqliteStore::in_memory().unwrap();
        let c = sample_campaign("never-created");
        match store.save(&c).await {
            Err(StoreError::NotFound(id)) => assert_eq!(id, c.id),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn list_by_state_honours_the_limit() {
        let store = SqliteStore::in_memory().unwrap();
        for i in 0..5 {
            let c = sample_campaign(&format!("lim-{i}"));
            store.create_from_drop(&c.drop, &c).await.unwrap();
        }
        assert_eq!(
            store.list_by_state(State::Received, 3).await.unwrap().len(),
            3
        );
        assert_eq!(
            store
                .list_by_state(State::Received, 100)
                .await
                .unwrap()
                .len(),
            5
        );
    }

    /// A store written by schema 1 (no listing columns) is migrated on open: its campaigns are
    /// listed by run date, ESP and account.
    #[tokio::test]
    async fn a_version_1_store_is_migrated_for_listing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let c = sample_campaign("from-v1");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch("PRAGMA user_version = 1").unwrap();
            conn.execute(
                "INSERT INTO campaigns (id, state, version, drop_bucket, drop_key, drop_etag, record)
                 VALUES (?1, 'received', 1, 'b', 'k', 'e', ?2)",
                params![c.id.as_str(), encode(&c).unwrap()],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let filter = CampaignFilter {
            run_date: Some(espbridge_core::ports::RunDate::parse(&c.run_date).unwrap()),
            esp: c.esp,
            account: c.account.clone(),
            ..Default::default()
        };
        let page = store.list(&filter, None, 10).await.unwrap();
        assert_eq!(page.campaigns, vec![c]);
        drop(store);
        // Opening again runs no migration twice.
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.list(&filter, None, 10).await.unwrap().campaigns.len(),
            1
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        match SqliteStore::open(&path) {
            Err(OpenError::NewerSchema { found, .. }) => assert_eq!(found, 99),
            other => panic!("expected NewerSchema, got {other:?}"),
        }
    }
}
