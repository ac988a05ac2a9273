//! What tests of the domain and of the adapters share:
//! - the store contract: one suite every [`CampaignStore`] adapter runs in its own tests, so the
//!   DynamoDB table and the embedded SQLite store behave the same; likewise the account-limits
//!   contract ([`run_limits_contract`]);
//! - in-memory ports ([`MemStore`], [`MemSource`], [`MemQueue`], [`MemScheduler`]) and an ESP
//!   double ([`FakeEsp`]) that the services' tests run on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hooked;
mod limits;

pub use hooked::{HookedStore, SaveHook};
pub use limits::run_limits_contract;

use crate::campaign::{Campaign, MetricSnapshot, RunRecord, State};
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::esp::{
    self, AudienceBatch, AudienceRequest, BatchJob, BatchOutcome, Esp, EspError, EspIds,
    MetricCounts, Preview, SendRequest, SenderHeaders, Template,
};
use crate::ports::listing::{CampaignFilter, CampaignPage, Cursor, MAX_PAGE, Position, RunDate};
use crate::ports::queue::{QueueError, WorkItem, WorkQueue};
use crate::ports::scheduler::{PollSchedule, Scheduler, SchedulerError};
use crate::ports::source::ObjectRef;
use crate::ports::store::{CampaignStore, Created, StoreError};
use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

/// A fresh campaign in `received`, with a unique id derived from `tag`.
pub fn sample_campaign(tag: &str) -> Campaign {
    let now: Timestamp = "2026-11-24T02:00:00Z".parse().expect("valid timestamp");
    let id = CampaignId::parse(tag).expect("test campaign ids are valid");
    let drop = ObjectRef {
        bucket: "drops".into(),
        key: format!("campaigns/2026-11-24/{tag}/manifest.json"),
        etag: "\"etag-1\"".into(),
    };
    let mut c = Campaign::received(id, "2026-11-24", drop, now);
    c.esp = Some(EspKind::Emarsys);
    c.account = Some(AccountId::parse("default").expect("valid account"));
    c.template_id = "81001".into();
    c.send_at = Some("2026-11-25T08:30:00Z".parse().expect("valid timestamp"));
    c.timezone = Some("Europe/Berlin".into());
    c.manifest = serde_json::json!({"schema_version": "1"});
    c
}

/// Runs every contract check against `store`. `tag` keeps campaign ids unique per run when
/// several runs share one backend.
pub async fn run_store_contract<S: CampaignStore>(store: &S, tag: &str) {
    create_is_idempotent_on_the_drop(store, &format!("{tag}-a")).await;
    other_drop_for_same_campaign_is_refused(store, &format!("{tag}-b")).await;
    save_is_conditional_on_version(store, &format!("{tag}-c")).await;
    snapshots_are_stored_once_per_day(store, &format!("{tag}-d")).await;
    runs_keep_their_order(store, &format!("{tag}-e")).await;
    list_by_state_finds_campaigns(store, &format!("{tag}-f")).await;
    missing_campaign_reads_as_none(store, &format!("{tag}-g")).await;
    template_headers_round_trip(store, &format!("{tag}-h")).await;
    listing_filters_and_pages(store, &format!("{tag}-i")).await;
}

/// A run date of its own for `tag` (so listings by run date see only this run's campaigns on a
/// shared backend).
pub fn run_date_for(tag: &str) -> RunDate {
    let days = (xxhash_rust::xxh3::xxh3_64(tag.as_bytes()) % 30_000) as i64;
    let date = jiff::civil::date(2030, 1, 1)
        .checked_add(jiff::Span::new().days(days))
        .expect("a date within range");
    RunDate::parse(&date.to_string()).expect("a valid run date")
}

/// Every page of a listing, followed through its cursors (made and parsed as callers do).
/// Checks that pages respect the limit and that the order only moves forward.
pub async fn list_all<S: CampaignStore + ?Sized>(
    store: &S,
    filter: &CampaignFilter,
    limit: usize,
) -> Vec<Campaign> {
    let mut out: Vec<Campaign> = Vec::new();
    let mut after: Option<Position> = None;
    for _ in 0..10_000 {
        let page = store
            .list(filter, after.as_ref(), limit)
            .await
            .expect("list");
        assert!(
            page.campaigns.len() <= limit,
            "a page holds at most the limit"
        );
        out.extend(page.campaigns);
        let Some(next) = page.next else {
            let keys: Vec<_> = out
                .iter()
                .map(|c| (c.state.as_str(), c.id.as_str()))
                .collect();
            assert!(
                keys.windows(2).all(|w| w[0] < w[1]),
                "listed in (state, id) order without repeats: {keys:?}"
            );
            return out;
        };
        if let Some(prev) = &after {
            assert!(
                (prev.state.as_str(), prev.id.as_str()) < (next.state.as_str(), next.id.as_str()),
                "the cursor moves forward"
            );
        }
        let cursor = Cursor::new(filter, &next);
        after = Some(Cursor::parse(filter, cursor.as_str()).expect("own cursor parses"));
    }
    panic!("the listing did not end after 10,000 pages");
}

async fn listing_filters_and_pages<S: CampaignStore>(store: &S, tag: &str) {
    let night = run_date_for(tag);
    let other_night = run_date_for(&format!("{tag}-other"));
    // (suffix, night, state, esp/account)
    let plan = [
        ("n0", &night, State::Received, None),
        ("n1", &night, State::Failed, None),
        ("n2", &night, State::Collecting, Some("eu")),
        ("n3", &night, State::Received, Some("eu")),
        ("n4", &night, State::Failed, Some("us")),
        ("n5", &night, State::Collecting, None),
        ("n6", &night, State::Received, None),
        ("o1", &other_night, State::Failed, None),
        ("o2", &other_night, State::Received, Some("eu")),
    ];
    for (suffix, date, state, bronto) in &plan {
        let mut c = sample_campaign(&format!("{tag}-{suffix}"));
        c.run_date = date.to_string();
        if let Some(account) = bronto {
            c.esp = Some(EspKind::Bronto);
            c.account = Some(AccountId::parse(account).expect("account"));
        }
        let Created::New(mut c) = store.create_from_drop(&c.drop, &c).await.expect("create") else {
            panic!("expected New")
        };
        match state {
            State::Failed => c.fail("upload", "HTTP 400 from the ESP", c.updated_at),
            State::Collecting => {
                for s in [State::Uploading, State::AudienceReady, State::Scheduled] {
                    c.transition(s, c.updated_at).expect("forward");
                    c = store.save(&c).await.expect("save");
                }
                c.transition(State::Collecting, c.updated_at)
                    .expect("forward");
            }
            _ => continue,
        }
        store.save(&c).await.expect("save");
    }
    let ids = |cs: &[Campaign]| -> Vec<String> {
        cs.iter()
            .map(|c| {
                c.id.as_str()
                    .trim_start_matches(&format!("{tag}-"))
                    .to_owned()
            })
            .collect()
    };
    let by_night = CampaignFilter {
        run_date: Some(night.clone()),
        ..Default::default()
    };
    let all = list_all(store, &by_night, 3).await;
    assert_eq!(
        ids(&all),
        ["n2", "n5", "n1", "n4", "n0", "n3", "n6"],
        "the night's campaigns, by state then id, over three pages"
    );
    let failed = all
        .iter()
        .find(|c| c.state == State::Failed)
        .expect("a failed one");
    assert_eq!(
        failed.failure.as_ref().map(|f| f.reason.as_str()),
        Some("HTTP 400 from the ESP"),
        "listed campaigns are whole records"
    );
    let one_page = store.list(&by_night, None, 100).await.expect("list");
    assert_eq!(ids(&one_page.campaigns), ids(&all));
    assert_eq!(one_page.next, None, "a page holding the rest has no next");

    let filtered =
        |state: Option<State>, esp: Option<EspKind>, account: Option<&str>| CampaignFilter {
            run_date: Some(night.clone()),
            state,
            esp,
            account: account.map(|a| AccountId::parse(a).expect("account")),
        };
    let cases: [(CampaignFilter, &[&str]); 5] = [
        (filtered(Some(State::Failed), None, None), &["n1", "n4"]),
        (
            filtered(Some(State::Received), None, None),
            &["n0", "n3", "n6"],
        ),
        (
            filtered(None, Some(EspKind::Bronto), None),
            &["n2", "n4", "n3"],
        ),
        (filtered(None, None, Some("eu")), &["n2", "n3"]),
        (
            filtered(Some(State::Received), Some(EspKind::Bronto), Some("eu")),
            &["n3"],
        ),
    ];
    for (filter, want) in cases {
        for limit in [1, 2, 100] {
            assert_eq!(
                ids(&list_all(store, &filter, limit).await),
                want,
                "{filter:?} by {limit}"
            );
        }
    }
    let none = filtered(Some(State::Cancelled), None, None);
    assert!(list_all(store, &none, 2).await.is_empty());

    // Without a run date: still paged, in order, across nights.
    let failed_anywhere = CampaignFilter {
        state: Some(State::Failed),
        ..Default::default()
    };
    let mine = |cs: Vec<Campaign>| -> Vec<String> {
        ids(&cs
            .into_iter()
            .filter(|c| c.id.as_str().starts_with(&format!("{tag}-")))
            .collect::<Vec<_>>())
    };
    assert_eq!(
        mine(list_all(store, &failed_anywhere, 1).await),
        ["n1", "n4", "o1"]
    );
    let eu_anywhere = CampaignFilter {
        account: Some(AccountId::parse("eu").expect("account")),
        ..Default::default()
    };
    assert_eq!(
        mine(list_all(store, &eu_anywhere, 2).await),
        ["n2", "n3", "o2"]
    );
    let everything = list_all(store, &CampaignFilter::default(), 4).await;
    assert_eq!(
        mine(everything),
        ["n2", "n5", "n1", "n4", "o1", "n0", "n3", "n6", "o2"]
    );

    // A position is a place, not a campaign: one naming no campaign still resumes after it.
    let between = Position {
        state: State::Received,
        id: CampaignId::parse(&format!("{tag}-n0a")).expect("id"),
    };
    let rest = list_all_after(store, &by_night, &between).await;
    assert_eq!(ids(&rest), ["n3", "n6"]);
    let past_failed_state = Position {
        state: State::Failed,
        id: CampaignId::parse("zzz").expect("id"),
    };
    let received = filtered(Some(State::Received), None, None);
    assert_eq!(
        ids(&list_all_after(store, &received, &past_failed_state).await),
        ["n0", "n3", "n6"]
    );
    let past_received = Position {
        state: State::Scheduled,
        id: CampaignId::parse("a").expect("id"),
    };
    assert!(
        list_all_after(store, &received, &past_received)
            .await
            .is_empty()
    );
}

async fn list_all_after<S: CampaignStore>(
    store: &S,
    filter: &CampaignFilter,
    after: &Position,
) -> Vec<Campaign> {
    let page = store
        .list(filter, Some(after), MAX_PAGE)
        .await
        .expect("list");
    assert_eq!(page.next, None);
    page.campaigns
}

async fn template_headers_round_trip<S: CampaignStore>(store: &S, tag: &str) {
    use crate::ports::esp::SenderHeaders;
    let account = AccountId::parse("default").expect("account");
    let template = format!("tpl-{tag}");
    assert_eq!(
        store
            .template_headers(EspKind::Bronto, &account, &template)
            .await
            .expect("read"),
        None
    );
    let h = SenderHeaders {
        from_email: "news@shop.example".into(),
        from_name: "Shop & Co".into(),
        reply_to: Some("care@shop.example".into()),
    };
    store
        .put_template_headers(EspKind::Bronto, &account, &template, &h)
        .await
        .expect("put");
    let h2 = SenderHeaders {
        reply_to: None,
        ..h.clone()
    };
    store
        .put_template_headers(EspKind::Bronto, &account, &template, &h2)
        .await
        .expect("replace");
    assert_eq!(
        store
            .template_headers(EspKind::Bronto, &account, &template)
            .await
            .expect("read"),
        Some(h2),
        "the second put replaces the first"
    );
    let other = AccountId::parse("other").expect("account");
    assert_eq!(
        store
            .template_headers(EspKind::Bronto, &other, &template)
            .await
            .expect("read"),
        None,
        "overrides are per account"
    );
}

async fn create_is_idempotent_on_the_drop<S: CampaignStore>(store: &S, id: &str) {
    let c = sample_campaign(id);
    let first = store.create_from_drop(&c.drop, &c).await.expect("create");
    let Created::New(created) = first else {
        panic!("first create must be New, got {first:?}")
    };
    assert_eq!(created.version, 1, "a created record has version 1");
    assert_eq!(created.state, State::Received);
    let again = store
        .create_from_drop(&c.drop, &c)
        .await
        .expect("create again");
    match again {
        Created::Existing(e) => assert_eq!(e.id, c.id),
        other => panic!("second create of the same drop must be Existing, got {other:?}"),
    }
}

async fn other_drop_for_same_campaign_is_refused<S: CampaignStore>(store: &S, id: &str) {
    let c = sample_campaign(id);
    store.create_from_drop(&c.drop, &c).await.expect("create");
    let mut other = c.clone();
    other.drop.etag = "\"etag-2\"".into();
    match store.create_from_drop(&other.drop, &other).await {
        Err(StoreError::CampaignExists { campaign_id, .. }) => assert_eq!(campaign_id, c.id),
        other => panic!("a second drop for one campaign id must be refused, got {other:?}"),
    }
}

async fn save_is_conditional_on_version<S: CampaignStore>(store: &S, id: &str) {
    let c = sample_campaign(id);
    let Created::New(mut stored) = store.create_from_drop(&c.drop, &c).await.expect("create")
    else {
        panic!("expected New")
    };
    let stale = stored.clone();
    stored
        .transition(State::Uploading, stored.updated_at)
        .expect("received -> uploading");
    stored.audience.uploaded = 10_000;
    stored.esp_ids = EspIds::default().with("contact_list_id", "123");
    let saved = store.save(&stored).await.expect("save");
    assert_eq!(saved.version, stored.version + 1);
    let read = store.get(&c.id).await.expect("get").expect("exists");
    assert_eq!(read, saved, "what get returns is what save returned");
    assert_eq!(read.state, State::Uploading);
    assert_eq!(read.audience.uploaded, 10_000);
    assert_eq!(read.esp_ids.get("contact_list_id"), Some("123"));

    match store.save(&stale).await {
        Err(StoreError::Conflict { expected, .. }) => assert_eq!(expected, stale.version),
        other => panic!("a stale save must conflict, got {other:?}"),
    }
    let still = store.get(&c.id).await.expect("get").expect("exists");
    assert_eq!(
        still.state,
        State::Uploading,
        "the stale save wrote nothing"
    );
}

async fn snapshots_are_stored_once_per_day<S: CampaignStore>(store: &S, id: &str) {
    let c = sample_campaign(id);
    store.create_from_drop(&c.drop, &c).await.expect("create");
    let counts = |opens: u64| MetricCounts {
        sent: 100,
        delivered: 98,
        opens,
        clicks: 5,
        unsubscribes: 1,
        bounces: 2,
        complaints: 0,
    };
    // Per-variant counts (A/B campaigns) round-trip with the total.
    let snap = |day: u32, opens: u64| MetricSnapshot {
        day,
        taken_at: "2026-11-26T09:00:00Z".parse().expect("ts"),
        counts: counts(opens),
        by_variant: [
            ("A".to_owned(), counts(opens / 2)),
            ("B".to_owned(), counts(opens - opens / 2)),
        ]
        .into_iter()
        .collect(),
    };
    assert!(store.put_snapshot(&c.id, &snap(2, 30)).await.expect("put"));
    assert!(store.put_snapshot(&c.id, &snap(1, 20)).await.expect("put"));
    assert!(
        !store
            .put_snapshot(&c.id, &snap(1, 99))
            .await
            .expect("put again"),
        "a second snapshot for one day is refused"
    );
    let all = store.snapshots(&c.id).await.expect("list");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].day, 1);
    assert_eq!(
        all[0].counts.opens, 20,
        "the first snapshot of a day is kept"
    );
    assert_eq!(all[1], snap(2, 30));
}

async fn runs_keep_their_order<S: CampaignStore>(store: &S, id: &str) {
    let c = sample_campaign(id);
    store.create_from_drop(&c.drop, &c).await.expect("create");
    let t0: Timestamp = "2026-11-24T03:00:00Z".parse().expect("ts");
    for (i, outcome) in ["continued", "continued", "done"].iter().enumerate() {
        let at = t0
            .checked_add(jiff::SignedDuration::from_secs(i as i64))
            .expect("ts");
        let run = RunRecord {
            step: "upload".into(),
            started_at: at,
            finished_at: at,
            outcome: (*outcome).into(),
            rows_uploaded: 10 * i as u64,
            batches: i as u64,
            detail: None,
        };
        store.add_run(&c.id, &run).await.expect("add run");
    }
    let runs = store.runs(&c.id).await.expect("runs");
    let outcomes: Vec<_> = runs.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["continued", "continued", "done"]);
    assert_eq!(runs[2].rows_uploaded, 20);
}

async fn list_by_state_finds_campaigns<S: CampaignStore>(store: &S, id: &str) {
    let c = sample_campaign(id);
    let Created::New(mut stored) = store.create_from_drop(&c.drop, &c).await.expect("create")
    else {
        panic!("expected New")
    };
    for s in [
        State::Uploading,
        State::AudienceReady,
        State::Scheduled,
        State::Collecting,
    ] {
        stored.transition(s, stored.updated_at).expect("forward");
        stored = store.save(&stored).await.expect("save");
    }
    let collecting = store
        .list_by_state(State::Collecting, 10_000)
        .await
        .expect("list");
    assert!(
        collecting.iter().any(|x| x.id == c.id),
        "collecting campaign listed"
    );
    let received = store
        .list_by_state(State::Received, 10_000)
        .await
        .expect("list");
    assert!(
        !received.iter().any(|x| x.id == c.id),
        "not listed under its old state"
    );
}

async fn missing_campaign_reads_as_none<S: CampaignStore>(store: &S, id: &str) {
    let missing = CampaignId::parse(&format!("{id}-missing")).expect("id");
    assert!(store.get(&missing).await.expect("get").is_none());
    assert!(store.snapshots(&missing).await.expect("list").is_empty());
}

/// An in-memory [`AudienceSource`](crate::ports::AudienceSource) for unit tests of the domain.
#[derive(Debug, Default, Clone)]
pub struct MemSource {
    objects: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>>,
    /// Streams opened, by key.
    opened: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u32>>>,
}

impl MemSource {
    /// Times `key` was opened as a stream (each a read of the object).
    pub fn opens(&self, key: &str) -> u32 {
        let opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        opened.get(key).copied().unwrap_or(0)
    }
    pub fn put(&self, key: &str, body: impl Into<Vec<u8>>) {
        self.lock().insert(key.to_owned(), body.into());
    }
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key).cloned()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Vec<u8>>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn etag(body: &[u8]) -> String {
        format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(body))
    }
}

#[async_trait::async_trait]
impl crate::ports::AudienceSource for MemSource {
    async fn read_small(
        &self,
        _bucket: &str,
        key: &str,
    ) -> Result<(Vec<u8>, String), crate::ports::SourceError> {
        let body = self
            .get(key)
            .ok_or_else(|| crate::ports::SourceError::NotFound {
                key: key.to_owned(),
            })?;
        if body.len() > crate::ports::source::SMALL_OBJECT_LIMIT {
            return Err(crate::ports::SourceError::TooLarge {
                key: key.to_owned(),
                limit: crate::ports::source::SMALL_OBJECT_LIMIT,
            });
        }
        let etag = Self::etag(&body);
        Ok((body, etag))
    }
    async fn open(
        &self,
        _bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<(crate::ports::source::ByteStream, String), crate::ports::SourceError> {
        let body = self
            .get(key)
            .ok_or_else(|| crate::ports::SourceError::NotFound {
                key: key.to_owned(),
            })?;
        let actual = Self::etag(&body);
        if let Some(want) = etag
            && want != actual
        {
            return Err(crate::ports::SourceError::Changed {
                key: key.to_owned(),
                etag: want.to_owned(),
            });
        }
        *self
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_owned())
            .or_default() += 1;
        Ok((Box::new(std::io::Cursor::new(body)), actual))
    }
    async fn put_file(
        &self,
        _bucket: &str,
        key: &str,
        path: &std::path::Path,
    ) -> Result<(), crate::ports::SourceError> {
        let body = std::fs::read(path).map_err(|e| {
            crate::ports::SourceError::backend(key, crate::ports::BackendError::io("read", e))
        })?;
        self.put(key, body);
        Ok(())
    }
}

// ---- in-memory ports and an ESP double, for the services' tests ----

#[derive(Default)]
/// A [`CampaignStore`] in memory, with the same conditional-write rules as the real ones.
pub struct MemStore {
    headers: Mutex<BTreeMap<String, SenderHeaders>>,
    campaigns: Mutex<BTreeMap<String, Campaign>>,
    drops: Mutex<BTreeMap<String, String>>,
    runs: Mutex<Vec<(String, RunRecord)>>,
    snaps: Mutex<BTreeMap<(String, u32), MetricSnapshot>>,
}

#[async_trait]
impl CampaignStore for MemStore {
    async fn create_from_drop(
        &self,
        drop: &ObjectRef,
        c: &Campaign,
    ) -> Result<Created, StoreError> {
        let key = format!("{}/{}#{}", drop.bucket, drop.key, drop.etag);
        let mut drops = self.drops.lock().unwrap();
        let mut cs = self.campaigns.lock().unwrap();
        if let Some(id) = drops.get(&key) {
            return Ok(Created::Existing(cs[id].clone()));
        }
        if let Some(existing) = cs.get(c.id.as_str()) {
            return Err(StoreError::CampaignExists {
                campaign_id: c.id.clone(),
                existing_key: existing.drop.key.clone(),
            });
        }
        let mut stored = c.clone();
        stored.version = 1;
        drops.insert(key, c.id.to_string());
        cs.insert(c.id.to_string(), stored.clone());
        Ok(Created::New(stored))
    }
    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, StoreError> {
        Ok(self.campaigns.lock().unwrap().get(id.as_str()).cloned())
    }
    async fn save(&self, next: &Campaign) -> Result<Campaign, StoreError> {
        let mut cs = self.campaigns.lock().unwrap();
        let cur = cs
            .get(next.id.as_str())
            .ok_or_else(|| StoreError::NotFound(next.id.clone()))?;
        if cur.version != next.version {
            return Err(StoreError::Conflict {
                campaign_id: next.id.clone(),
                expected: next.version,
            });
        }
        let mut stored = next.clone();
        stored.version += 1;
        cs.insert(next.id.to_string(), stored.clone());
        Ok(stored)
    }
    async fn add_run(&self, id: &CampaignId, run: &RunRecord) -> Result<(), StoreError> {
        self.runs
            .lock()
            .unwrap()
            .push((id.to_string(), run.clone()));
        Ok(())
    }
    async fn runs(&self, id: &CampaignId) -> Result<Vec<RunRecord>, StoreError> {
        Ok(self
            .runs
            .lock()
            .unwrap()
            .iter()
            .filter(|(i, _)| i == id.as_str())
            .map(|(_, r)| r.clone())
            .collect())
    }
    async fn put_snapshot(&self, id: &CampaignId, s: &MetricSnapshot) -> Result<bool, StoreError> {
        let mut snaps = self.snaps.lock().unwrap();
        let k = (id.to_string(), s.day);
        if snaps.contains_key(&k) {
            return Ok(false);
        }
        snaps.insert(k, s.clone());
        Ok(true)
    }
    async fn snapshots(&self, id: &CampaignId) -> Result<Vec<MetricSnapshot>, StoreError> {
        Ok(self
            .snaps
            .lock()
            .unwrap()
            .iter()
            .filter(|((i, _), _)| i == id.as_str())
            .map(|(_, s)| s.clone())
            .collect())
    }
    async fn template_headers(
        &self,
        esp: EspKind,
        a: &AccountId,
        t: &str,
    ) -> Result<Option<SenderHeaders>, StoreError> {
        Ok(self
            .headers
            .lock()
            .unwrap()
            .get(&format!("{esp}/{a}/{t}"))
            .cloned())
    }
    async fn put_template_headers(
        &self,
        esp: EspKind,
        a: &AccountId,
        t: &str,
        h: &SenderHeaders,
    ) -> Result<(), StoreError> {
        self.headers
            .lock()
            .unwrap()
            .insert(format!("{esp}/{a}/{t}"), h.clone());
        Ok(())
    }
    async fn list_by_state(&self, state: State, limit: usize) -> Result<Vec<Campaign>, StoreError> {
        Ok(self
            .campaigns
            .lock()
            .unwrap()
            .values()
            .filter(|c| c.state == state)
            .take(limit)
            .cloned()
            .collect())
    }
    async fn list(
        &self,
        filter: &CampaignFilter,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<CampaignPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut matching: Vec<Campaign> = self
            .campaigns
            .lock()
            .unwrap()
            .values()
            .filter(|c| filter.matches(c) && after.is_none_or(|p| p.is_before(c)))
            .cloned()
            .collect();
        matching.sort_by(|a, b| {
            (a.state.as_str(), a.id.as_str()).cmp(&(b.state.as_str(), b.id.as_str()))
        });
        let more = matching.len() > limit;
        matching.truncate(limit);
        Ok(CampaignPage {
            next: more.then(|| matching.last().map(Position::of)).flatten(),
            campaigns: matching,
        })
    }
}

#[derive(Default)]
/// A [`WorkQueue`] in memory: items in order, for a test to run.
pub struct MemQueue(pub Mutex<VecDeque<WorkItem>>);
#[async_trait]
impl WorkQueue for MemQueue {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError> {
        self.0.lock().unwrap().push_back(item.clone());
        Ok(())
    }
}

#[derive(Default)]
/// A [`Scheduler`] in memory: the schedules by name.
pub struct MemScheduler(pub Mutex<BTreeMap<String, PollSchedule>>);
#[async_trait]
impl Scheduler for MemScheduler {
    async fn create(&self, s: &PollSchedule) -> Result<(), SchedulerError> {
        self.0
            .lock()
            .unwrap()
            .entry(s.name.clone())
            .or_insert_with(|| s.clone());
        Ok(())
    }
    async fn delete(&self, name: &str) -> Result<(), SchedulerError> {
        self.0.lock().unwrap().remove(name);
        Ok(())
    }
}

/// An [`Esp`] double that keeps a set per list, counts clones and launches, and can be told to
/// fail the next calls.
#[derive(Default)]
pub struct FakeEsp {
    pub lists: Mutex<BTreeMap<String, BTreeSet<String>>>,
    pub ids_sent: Mutex<u64>,
    pub launches: Mutex<BTreeSet<String>>,
    pub fail_next_uploads: Mutex<u32>,
    /// The next uploads end as the HTTP layer ends a call the ESP kept throttling.
    pub throttle_next_uploads: Mutex<u32>,
    pub refuse_send: Mutex<bool>,
    pub account: Option<AccountId>,
    pub prefix: Option<String>,
    /// Acts as an ESP with per-send headers (Bronto) when set.
    pub headers: Option<SenderHeaders>,
    pub retention: Option<SignedDuration>,
    pub sent_headers: Mutex<Vec<Option<SenderHeaders>>>,
    pub cleanups: Mutex<u32>,
    pub fail_cleanups: Mutex<u32>,
    /// Acts as an ESP (or mode) that cannot carry personalization fields.
    pub drops_fields: bool,
    /// `upload_batch` calls that reached the ESP (refused ones included).
    pub batch_calls: Mutex<u64>,
    /// `schedule_send` calls that booked (a repeated booking counts again).
    pub bookings: Mutex<u64>,
    /// Sends unscheduled by `cancel_send`, by name.
    pub cancelled: Mutex<BTreeSet<String>>,
    /// Acts as an ESP whose API cannot unschedule a send.
    pub cannot_cancel: bool,
    /// Acts as an ESP that has no figures for any send.
    pub no_figures: bool,
    /// [`Esp::batches_in_flight`] (0: the default, one).
    pub in_flight: usize,
    /// Each `upload_batch` call takes this long (a real call's round trip).
    pub call_time: Option<std::time::Duration>,
    /// `upload_batch` calls running now, and the most that ever ran at once.
    pub calls_running: Mutex<(usize, usize)>,
    /// Batches of at least this many contacts run as jobs ([`Esp::start_batch_job`]).
    pub jobs_from: Option<usize>,
    /// Jobs started, and what each will add: its list and its ids.
    pub jobs: Mutex<BTreeMap<String, (String, Vec<String>)>>,
    /// The next `finish_batch_job` calls fail (the invocation dies while the job runs).
    pub fail_next_job_waits: Mutex<u32>,
    /// Each `finish_batch_job` waits this long for its job.
    pub job_time: Option<std::time::Duration>,
    /// [`Esp::max_batch`] (0: the default, 100).
    pub batch: usize,
    /// [`Esp::max_batch_for`] below this many rows: audiences this small go in batches of 10
    /// (an ESP whose route depends on the audience's size, like Silverpop's bulk import).
    pub small_below: Option<u64>,
}

/// Counts one running `upload_batch` call while it lives.
struct Running<'a>(&'a Mutex<(usize, usize)>);

impl<'a> Running<'a> {
    fn start(m: &'a Mutex<(usize, usize)>) -> Self {
        let mut r = m.lock().unwrap();
        r.0 += 1;
        r.1 = r.1.max(r.0);
        Self(m)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap().0 -= 1;
    }
}

#[async_trait]
impl Esp for FakeEsp {
    fn kind(&self) -> EspKind {
        if self.headers.is_some() {
            EspKind::Bronto
        } else {
            EspKind::Emarsys
        }
    }
    fn default_headers(&self) -> Option<SenderHeaders> {
        self.headers.clone()
    }
    fn cleanup_after(&self) -> Option<SignedDuration> {
        self.retention
    }
    fn carries_fields(&self, _options: &serde_json::Value) -> bool {
        !self.drops_fields
    }
    async fn cleanup(&self, _ids: &EspIds) -> Result<(), EspError> {
        let mut fail = self.fail_cleanups.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Err(EspError::Transient {
                esp: self.kind(),
                detail: "HTTP 503".into(),
            });
        }
        *self.cleanups.lock().unwrap() += 1;
        Ok(())
    }
    fn account(&self) -> &AccountId {
        self.account.as_ref().expect("account set")
    }
    fn max_batch(&self) -> usize {
        if self.batch == 0 { 100 } else { self.batch }
    }
    fn max_batch_for(&self, valid_rows: u64) -> usize {
        match self.small_below {
            Some(n) if valid_rows < n => 10,
            _ => self.max_batch(),
        }
    }
    fn claims_template_name(&self, name: &str) -> bool {
        self.prefix.as_deref().is_some_and(|p| name.starts_with(p))
    }
    /// `t1` and `t2` (the ids the service tests' manifests name).
    async fn list_templates(&self) -> Result<Vec<Template>, EspError> {
        Ok(["t1", "t2"]
            .into_iter()
            .map(|id| Template {
                esp: self.kind(),
                account: self.account().clone(),
                id: id.into(),
                name: id.into(),
                display_name: id.into(),
                subject: None,
                kind: None,
                created: None,
            })
            .collect())
    }
    async fn preview(&self, t: &str) -> Result<Preview, EspError> {
        if t == "t1" {
            return Ok(Preview {
                template_id: t.into(),
                content_type: "text/html".into(),
                body: "<p>hi</p>".into(),
                subject: None,
            });
        }
        Err(EspError::NotFound {
            esp: EspKind::Emarsys,
            what: "template".into(),
        })
    }
    async fn create_audience(&self, req: &AudienceRequest<'_>) -> Result<EspIds, EspError> {
        let name = esp::object_name(req.campaign_id, req.variant);
        self.lists.lock().unwrap().entry(name.clone()).or_default();
        Ok(EspIds::default().with("list", name))
    }
    fn batches_in_flight(&self) -> usize {
        self.in_flight.max(1)
    }
    async fn start_batch_job(
        &self,
        a: &EspIds,
        b: &AudienceBatch,
    ) -> Result<Option<BatchJob>, EspError> {
        if self.jobs_from.is_none_or(|n| b.contacts.len() < n) {
            return Ok(None);
        }
        let mut jobs = self.jobs.lock().unwrap();
        let reference = format!("job-{}", jobs.len() + 1);
        let ids = b.contacts.iter().map(|c| c.customer_id.clone()).collect();
        let list = a.get("list").unwrap_or_default().to_owned();
        jobs.insert(reference.clone(), (list, ids));
        Ok(Some(BatchJob {
            reference,
            rows: b.contacts.len() as u64,
        }))
    }
    async fn finish_batch_job(
        &self,
        _a: &EspIds,
        job: &BatchJob,
    ) -> Result<BatchOutcome, EspError> {
        {
            let mut f = self.fail_next_job_waits.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return Err(EspError::Transient {
                    esp: EspKind::Emarsys,
                    detail: "HTTP 503".into(),
                });
            }
        }
        if let Some(t) = self.job_time {
            tokio::time::sleep(t).await;
        }
        let (list, ids) = self.jobs.lock().unwrap()[&job.reference].clone();
        *self.ids_sent.lock().unwrap() += ids.len() as u64;
        let mut lists = self.lists.lock().unwrap();
        let members = lists.get_mut(&list).expect("list exists");
        members.extend(ids);
        Ok(BatchOutcome {
            accepted: job.rows,
            ..Default::default()
        })
    }
    async fn upload_batch(&self, a: &EspIds, b: &AudienceBatch) -> Result<BatchOutcome, EspError> {
        *self.batch_calls.lock().unwrap() += 1;
        let _running = Running::start(&self.calls_running);
        if let Some(t) = self.call_time {
            tokio::time::sleep(t).await;
        }
        {
            let mut f = self.fail_next_uploads.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return Err(EspError::Transient {
                    esp: EspKind::Emarsys,
                    detail: "HTTP 503".into(),
                });
            }
            let mut t = self.throttle_next_uploads.lock().unwrap();
            if *t > 0 {
                *t -= 1;
                return Err(EspError::RateLimited {
                    esp: EspKind::Emarsys,
                    attempts: 9,
                    waited_secs: 180,
                });
            }
        }
        *self.ids_sent.lock().unwrap() += b.contacts.len() as u64;
        let mut lists = self.lists.lock().unwrap();
        let list = lists
            .get_mut(a.get("list").unwrap_or_default())
            .expect("list exists");
        for c in &b.contacts {
            list.insert(c.customer_id.clone());
        }
        Ok(BatchOutcome {
            accepted: b.contacts.len() as u64,
            ..Default::default()
        })
    }
    async fn schedule_send(&self, r: &SendRequest<'_>) -> Result<EspIds, EspError> {
        if *self.refuse_send.lock().unwrap() {
            return Err(EspError::Api {
                esp: EspKind::Emarsys,
                status: 400,
                code: "6032".into(),
                text: "no contact list".into(),
                retryable: false,
            });
        }
        let name = esp::object_name(r.campaign_id, r.variant);
        self.launches.lock().unwrap().insert(name.clone());
        *self.bookings.lock().unwrap() += 1;
        self.sent_headers.lock().unwrap().push(r.headers.cloned());
        Ok(EspIds::default().with("email", "e1").with("send", name))
    }
    async fn cancel_send(&self, sent: &EspIds) -> Result<(), EspError> {
        if self.cannot_cancel {
            return Err(EspError::CannotCancel {
                esp: self.kind(),
                why: esp::CannotCancel::Unsupported,
                detail: "the fake's API has no unschedule call".into(),
            });
        }
        let name = sent.require(self.kind(), "send")?.to_owned();
        self.cancelled.lock().unwrap().insert(name);
        Ok(())
    }
    async fn fetch_metrics(&self, _s: &EspIds) -> Result<Option<MetricCounts>, EspError> {
        if self.no_figures {
            return Ok(None);
        }
        Ok(Some(MetricCounts {
            sent: 10,
            delivered: 9,
            opens: 3,
            clicks: 1,
            unsubscribes: 0,
            bounces: 1,
            complaints: 0,
        }))
    }
}

/// Alerts kept in memory, in the order raised.
#[derive(Debug, Default)]
pub struct MemAlerts(pub Mutex<Vec<crate::ports::Alert>>);

impl MemAlerts {
    pub fn raised(&self) -> Vec<crate::ports::Alert> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl crate::ports::Alerts for MemAlerts {
    async fn raise(&self, alert: &crate::ports::Alert) -> Result<(), crate::ports::BackendError> {
        self.0.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

/// Measurements kept in memory, in the order recorded.
#[derive(Debug, Default)]
pub struct MemMetrics(pub Mutex<Vec<crate::ports::Measurement>>);

impl MemMetrics {
    pub fn recorded(&self) -> Vec<crate::ports::Measurement> {
        self.0.lock().unwrap().clone()
    }
}

impl crate::ports::Metrics for MemMetrics {
    fn record(&self, measurements: &[crate::ports::Measurement]) {
        self.0.lock().unwrap().extend_from_slice(measurements);
    }
}
