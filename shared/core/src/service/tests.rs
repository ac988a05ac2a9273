//! The services end to end on in-memory ports: a recording ESP double, the testkit's memory
//! source, and in-memory store, queue and scheduler. (The same flow runs on DynamoDB, S3, SQS,
//! EventBridge Scheduler and the Emarsys simulator in the workspace's `tests` crate.)

use super::poll::PollOutcome;
use super::schedule::ScheduleOutcome;
use super::upload::UploadOutcome;
use super::{Deadline, EspRegistry, Services, UploadSettings};
use crate::campaign::{Campaign, MetricSnapshot, RunRecord, State};
use crate::clock::ManualClock;
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::scheduler::PollSchedule;
use crate::ports::*;
use crate::testkit::MemSource;
use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct MemStore {
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
}

#[derive(Default)]
struct MemQueue(Mutex<VecDeque<WorkItem>>);
#[async_trait]
impl WorkQueue for MemQueue {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError> {
        self.0.lock().unwrap().push_back(item.clone());
        Ok(())
    }
}

#[derive(Default)]
struct MemScheduler(Mutex<BTreeMap<String, PollSchedule>>);
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

/// An ESP double that keeps a set per list, counts clones and launches, and can be told to
/// fail the next calls.
#[derive(Default)]
struct FakeEsp {
    lists: Mutex<BTreeMap<String, BTreeSet<String>>>,
    ids_sent: Mutex<u64>,
    launches: Mutex<BTreeSet<String>>,
    fail_next_uploads: Mutex<u32>,
    refuse_send: Mutex<bool>,
    account: Option<AccountId>,
    prefix: Option<String>,
    /// Acts as an ESP with per-send headers (Bronto) when set.
    headers: Option<SenderHeaders>,
    retention: Option<SignedDuration>,
    sent_headers: Mutex<Vec<Option<SenderHeaders>>>,
    cleanups: Mutex<u32>,
    fail_cleanups: Mutex<u32>,
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
        100
    }
    fn claims_template_name(&self, name: &str) -> bool {
        self.prefix.as_deref().is_some_and(|p| name.starts_with(p))
    }
    async fn list_templates(&self) -> Result<Vec<Template>, EspError> {
        Ok(vec![])
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
    async fn create_audience(&self, c: &CampaignId, v: Option<&str>) -> Result<EspIds, EspError> {
        let name = esp::object_name(c, v);
        self.lists.lock().unwrap().entry(name.clone()).or_default();
        Ok(EspIds::default().with("list", name))
    }
    async fn upload_batch(&self, a: &EspIds, b: &AudienceBatch) -> Result<BatchOutcome, EspError> {
        {
            let mut f = self.fail_next_uploads.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return Err(EspError::Transient {
                    esp: EspKind::Emarsys,
                    detail: "HTTP 503".into(),
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
        self.launches
            .lock()
            .unwrap()
            .insert(esp::object_name(r.campaign_id, r.variant));
        self.sent_headers.lock().unwrap().push(r.headers.cloned());
        Ok(EspIds::default().with("email", "e1"))
    }
    async fn fetch_metrics(&self, _s: &EspIds) -> Result<Option<MetricCounts>, EspError> {
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

struct World {
    services: Services,
    src: MemSource,
    esp: Arc<FakeEsp>,
    queue: Arc<MemQueue>,
    scheduler: Arc<MemScheduler>,
    clock: ManualClock,
}

fn world() -> World {
    world_with(FakeEsp::default())
}

/// A Bronto-like ESP: per-send headers with account defaults, lists kept 30 days.
fn bronto_world() -> World {
    world_with(FakeEsp {
        headers: Some(SenderHeaders {
            from_email: "news@brand.example".into(),
            from_name: "Brand".into(),
            reply_to: None,
        }),
        retention: Some(SignedDuration::from_hours(24 * 30)),
        ..Default::default()
    })
}

fn world_with(esp: FakeEsp) -> World {
    let clock = ManualClock::new("2026-11-24T02:00:00Z".parse().unwrap());
    let src = MemSource::default();
    let esp = Arc::new(FakeEsp {
        account: Some(AccountId::parse("default").unwrap()),
        ..esp
    });
    let queue = Arc::new(MemQueue::default());
    let scheduler = Arc::new(MemScheduler::default());
    let services = Services {
        store: Arc::new(MemStore::default()),
        source: Arc::new(src.clone()),
        queue: queue.clone(),
        scheduler: scheduler.clone(),
        esps: EspRegistry::new(vec![esp.clone()]),
        clock: Arc::new(clock.clone()),
        upload: UploadSettings::default(),
    };
    World {
        services,
        src,
        esp,
        queue,
        scheduler,
        clock,
    }
}

const PREFIX: &str = "campaigns/2026-11-24/c1/";

fn drop_files(w: &World, rows: usize, manifest_extra: serde_json::Value) -> ObjectRef {
    let mut body = String::from("customer_id,first_name\n");
    for i in 0..rows {
        body.push_str(&format!("C{i},N{i}\n"));
    }
    body.push_str(",empty\nC0,dup\n");
    w.src.put(&format!("{PREFIX}a.csv"), body);
    let mut m = serde_json::json!({
        "schema_version": "1", "campaign_id": "c1", "esp": "emarsys", "template_id": "t1",
        "send_at": "2026-11-25T09:00:00+01:00",
        "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id", "fields": ["first_name"]}}
    });
    if let (Some(m), Some(extra)) = (m.as_object_mut(), manifest_extra.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    w.src.put(&format!("{PREFIX}manifest.json"), m.to_string());
    ObjectRef {
        bucket: "b".into(),
        key: format!("{PREFIX}manifest.json"),
        etag: "e1".into(),
    }
}

fn id() -> CampaignId {
    CampaignId::parse("c1").unwrap()
}

#[tokio::test]
async fn drop_to_completed_with_continuations() {
    let mut w = world();
    w.services.upload.max_batches_per_run = Some(2);
    let drop = drop_files(&w, 450, serde_json::json!({}));
    let out = w
        .services
        .handle_drop(&drop, Deadline::none())
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Continued(id()));
    // Feed continuations back until the audience is ready.
    let rounds = 1 + drain_to_scheduled(&w).await;
    assert_eq!(
        rounds, 3,
        "450 rows in batches of 100, two per run: three runs"
    );
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Scheduled);
    assert_eq!(
        (
            c.audience.rows,
            c.audience.valid,
            c.audience.rejected,
            c.audience.uploaded
        ),
        (452, 450, 2, 450)
    );
    assert_eq!(c.audience.rejected_by_reason["duplicate_customer_id"], 1);
    let rejects = String::from_utf8(w.src.get(&format!("{PREFIX}rejects.csv")).unwrap()).unwrap();
    assert_eq!(rejects.lines().count(), 3, "{rejects}");
    assert!(rejects.contains("a.csv,453,"), "{rejects}");
    assert_eq!(w.esp.lists.lock().unwrap()["espbridge_c1"].len(), 450);
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 450, "no batch sent twice");
    assert_eq!(w.scheduler.0.lock().unwrap().len(), 1);

    // Polls: too early, then days 1..7, then the schedule is gone.
    assert_eq!(
        w.services.poll_metrics(&id()).await.unwrap(),
        PollOutcome::TooEarly
    );
    let send_at: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
    for day in 1..=7 {
        w.clock
            .set(send_at + SignedDuration::from_hours(24 * day) + SignedDuration::from_mins(1));
        let out = w.services.poll_metrics(&id()).await.unwrap();
        if day < 7 {
            assert_eq!(
                out,
                PollOutcome::Stored {
                    day: day as u32,
                    new: true
                }
            );
        } else {
            assert_eq!(out, PollOutcome::Completed { day: 7 });
        }
    }
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Completed);
    assert_eq!(w.services.store.snapshots(&id()).await.unwrap().len(), 7);
    assert!(
        w.scheduler.0.lock().unwrap().is_empty(),
        "schedule deleted after day 7"
    );
    let doc = w.services.campaign_document(&id()).await.unwrap().unwrap();
    assert_eq!(doc["daily_metrics"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn a_redelivered_drop_and_a_failed_batch_resume_without_duplicates() {
    let w = world();
    let drop = drop_files(&w, 350, serde_json::json!({}));
    // Two batches in the first run, then the third batch fails transiently: the call errors
    // (SQS will redeliver) and the checkpoint stands.
    let mut svc = w.services.clone();
    svc.upload.max_batches_per_run = Some(2);
    assert_eq!(
        svc.handle_drop(&drop, Deadline::none()).await.unwrap(),
        UploadOutcome::Continued(id())
    );
    *w.esp.fail_next_uploads.lock().unwrap() = 1;
    let err = w
        .services
        .handle_drop(&drop, Deadline::none())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!((c.state, c.audience.uploaded), (State::Uploading, 200));
    // Redelivery of the same S3 event finishes the job.
    let out = w
        .services
        .handle_drop(&drop, Deadline::none())
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::AudienceReady(id()));
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 350);
    assert_eq!(w.esp.lists.lock().unwrap()["espbridge_c1"].len(), 350);
    // And once more: nothing is uploaded again; schedule-send is (re)queued, and runs once.
    let again = w
        .services
        .handle_drop(&drop, Deadline::none())
        .await
        .unwrap();
    assert_eq!(again, UploadOutcome::AudienceReady(id()));
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 350);
    assert_eq!(
        w.services.schedule_send(&id(), false).await.unwrap(),
        ScheduleOutcome::Scheduled(id())
    );
    let second = w.services.schedule_send(&id(), false).await.unwrap();
    assert_eq!(second, ScheduleOutcome::Skipped(id(), State::Scheduled));
    assert_eq!(w.esp.launches.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_manifests_and_refusals_fail_the_campaign_with_their_reason() {
    let w = world();
    let drop = drop_files(
        &w,
        5,
        serde_json::json!({"send_at": "tomorrow", "account": "nope"}),
    );
    let out = w
        .services
        .handle_drop(&drop, Deadline::none())
        .await
        .unwrap();
    assert_eq!(out, UploadOutcome::Failed(id()));
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    let f = c.failure.unwrap();
    assert_eq!(f.step, "manifest");
    assert!(f.reason.contains("/send_at"), "{}", f.reason);
    assert!(
        w.src.get(&format!("{PREFIX}a.csv")).is_some(),
        "the drop is kept"
    );
    assert!(
        w.esp.lists.lock().unwrap().is_empty(),
        "nothing reached the ESP"
    );

    let w = world();
    let drop = drop_files(&w, 5, serde_json::json!({"account": "nope"}));
    w.services
        .handle_drop(&drop, Deadline::none())
        .await
        .unwrap();
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert!(
        c.failure
            .unwrap()
            .reason
            .contains("no emarsys account named")
    );

    let w = world();
    let drop = drop_files(&w, 5, serde_json::json!({}));
    w.services
        .handle_drop(&drop, Deadline::none())
        .await
        .unwrap();
    *w.esp.refuse_send.lock().unwrap() = true;
    assert_eq!(
        w.services.schedule_send(&id(), false).await.unwrap(),
        ScheduleOutcome::Failed(id())
    );
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Failed);
    assert!(c.failure.unwrap().reason.contains("6032"));
}

#[test]
fn the_account_is_named_or_chosen_by_template_prefix_or_the_only_one() {
    let acct = |a: &str, p: &str| -> Arc<dyn Esp> {
        Arc::new(FakeEsp {
            account: Some(AccountId::parse(a).unwrap()),
            prefix: Some(p.into()),
            ..Default::default()
        })
    };
    let two = EspRegistry::new(vec![acct("eu", "eu_"), acct("us", "us_")]);
    let us = AccountId::parse("us").unwrap();
    let pick = |a: Option<&AccountId>, name: Option<&str>| {
        two.choose(EspKind::Emarsys, a, name)
            .map(|e| e.account().to_string())
    };
    assert_eq!(pick(Some(&us), None).unwrap(), "us");
    assert_eq!(pick(None, Some("eu_spring")).unwrap(), "eu");
    let e = pick(None, Some("spring")).unwrap_err();
    assert!(e.contains("2 emarsys accounts"), "{e}");
    let e = pick(Some(&AccountId::parse("asia").unwrap()), None).unwrap_err();
    assert!(e.contains("no emarsys account named"), "{e}");
    let one = EspRegistry::new(vec![acct("eu", "eu_")]);
    assert_eq!(
        one.choose(EspKind::Emarsys, None, None)
            .unwrap()
            .account()
            .as_str(),
        "eu"
    );
    let e = one.choose(EspKind::Bronto, None, None).err().unwrap();
    assert!(e.contains("no bronto account"), "{e}");
}

/// Drives a dropped campaign through upload and schedule-send.
async fn upload_and_schedule(w: &World) {
    let drop = drop_files(w, 10, serde_json::json!({"esp": w.esp.kind().as_str()}));
    run_to_scheduled(w, &drop).await;
}

/// Handles the drop, then every queued continuation, then schedule-send.
async fn run_to_scheduled(w: &World, drop: &ObjectRef) {
    w.services
        .handle_drop(drop, Deadline::none())
        .await
        .unwrap();
    drain_to_scheduled(w).await;
}

/// Runs queued continuations until schedule-send is queued, then schedules; returns the number
/// of continuations run.
async fn drain_to_scheduled(w: &World) -> u32 {
    let mut continuations = 0;
    loop {
        let item = w
            .queue
            .0
            .lock()
            .unwrap()
            .pop_front()
            .expect("a queued item");
        match item {
            WorkItem::ContinueUpload { campaign_id } => {
                continuations += 1;
                w.services
                    .continue_upload(&campaign_id, Deadline::none(), false)
                    .await
                    .unwrap();
            }
            WorkItem::ScheduleSend { campaign_id } => {
                assert_eq!(
                    w.services.schedule_send(&campaign_id, false).await.unwrap(),
                    ScheduleOutcome::Scheduled(id())
                );
                return continuations;
            }
        }
    }
}

fn api_req(method: &str, path: &str, body: Option<&str>) -> super::api::ApiRequest {
    super::api::ApiRequest {
        method: method.into(),
        path: path.into(),
        query: BTreeMap::new(),
        body: body.map(|b| b.as_bytes().to_vec()),
    }
}

#[tokio::test]
async fn sender_headers_are_managed_per_template_and_go_with_the_send() {
    let w = bronto_world();
    let path = "/templates/bronto/t1/headers";
    let r = w.services.api(&api_req("GET", path, None)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["source"], "account_default");
    assert_eq!(v["headers"]["from_email"], "news@brand.example");

    let bad = r#"{"from_email": "not-an-address", "from_name": " ", "reply_to": "x@"}"#;
    let r = w.services.api(&api_req("PUT", path, Some(bad))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_headers");
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["from_email", "reply_to", "from_name"]);
    let r = w
        .services
        .api(&api_req("PUT", path, Some("{not json")))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);

    let good = r#"{"from_email": "sale@brand.example", "from_name": "Brand Sale", "reply_to": "care@brand.example"}"#;
    let r = w
        .services
        .api(&api_req(
            "PUT",
            "/templates/bronto/unknown/headers",
            Some(good),
        ))
        .await;
    assert_eq!(
        r.status, 404,
        "a template the ESP does not have: {}",
        r.body
    );
    let r = w.services.api(&api_req("PUT", path, Some(good))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = w.services.api(&api_req("GET", path, None)).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["source"], "template");
    assert_eq!(v["headers"]["reply_to"], "care@brand.example");
    let r = w.services.api(&api_req("DELETE", path, None)).await;
    assert_eq!(r.status, 405);

    upload_and_schedule(&w).await;
    let sent = w.esp.sent_headers.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].as_ref().unwrap().from_email, "sale@brand.example");

    // ESPs whose messages carry their own headers have none to manage.
    let e = world();
    let r = e
        .services
        .api(&api_req("GET", "/templates/emarsys/t1/headers", None))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
}

#[tokio::test]
async fn esp_objects_are_cleaned_up_after_the_retention_and_only_once() {
    let w = bronto_world();
    upload_and_schedule(&w).await;
    let send_at: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
    for day in 1..=7 {
        w.clock
            .set(send_at + SignedDuration::from_hours(24 * day) + SignedDuration::from_mins(1));
        w.services.poll_metrics(&id()).await.unwrap();
    }
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Completed);
    let due = c.cleanup_due_at.expect("a clean-up date");
    let completed_at = send_at + SignedDuration::from_hours(24 * 7) + SignedDuration::from_mins(1);
    assert_eq!(due, completed_at + SignedDuration::from_hours(24 * 30));
    assert_eq!(
        *w.esp.cleanups.lock().unwrap(),
        0,
        "kept during the retention"
    );
    let pending: Vec<PollSchedule> = w.scheduler.0.lock().unwrap().values().cloned().collect();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(pending[0].is_once() && pending[0].first_at == due);

    // A stray trigger before the due time changes nothing.
    w.clock.set(due - SignedDuration::from_hours(1));
    assert_eq!(
        w.services.poll_metrics(&id()).await.unwrap(),
        PollOutcome::Skipped(State::Completed)
    );
    assert_eq!(*w.esp.cleanups.lock().unwrap(), 0);

    // Due: the ESP refuses once (a retry is scheduled an hour later), then it works.
    w.clock.set(due);
    *w.esp.fail_cleanups.lock().unwrap() = 1;
    assert!(w.services.poll_metrics(&id()).await.is_err());
    let retry = w
        .scheduler
        .0
        .lock()
        .unwrap()
        .values()
        .next()
        .cloned()
        .unwrap();
    assert_eq!(retry.first_at, due + SignedDuration::from_hours(1));
    w.clock.set(retry.first_at);
    assert_eq!(
        w.services.poll_metrics(&id()).await.unwrap(),
        PollOutcome::CleanedUp
    );
    assert_eq!(*w.esp.cleanups.lock().unwrap(), 1);
    assert!(w.scheduler.0.lock().unwrap().is_empty());
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.cleaned_up_at, Some(retry.first_at));
    // A redelivered trigger does not clean up twice.
    assert_eq!(
        w.services.poll_metrics(&id()).await.unwrap(),
        PollOutcome::Skipped(State::Completed)
    );
    assert_eq!(*w.esp.cleanups.lock().unwrap(), 1);
}

#[tokio::test]
async fn without_a_retention_the_clean_up_runs_at_completion() {
    let w = world();
    upload_and_schedule(&w).await;
    let send_at: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
    w.clock
        .set(send_at + SignedDuration::from_hours(24 * 7) + SignedDuration::from_mins(1));
    assert_eq!(
        w.services.poll_metrics(&id()).await.unwrap(),
        PollOutcome::Completed { day: 7 }
    );
    assert_eq!(*w.esp.cleanups.lock().unwrap(), 1);
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert!(c.cleaned_up_at.is_some());
    assert!(w.scheduler.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ab_variants_and_a_holdout_are_assigned_stably_and_sent_separately() {
    use crate::audience::assign::{Assigner, Group};
    let mut w = world();
    w.services.upload.max_batches_per_run = Some(1);
    let drop = drop_files(
        &w,
        1000,
        serde_json::json!({
            "variants": [
                {"name": "A", "template_id": "t1", "share": 0.5},
                {"name": "B", "template_id": "t2", "share": 0.5}
            ],
            "control_group": {"holdout_share": 0.2}
        }),
    );
    run_to_scheduled(&w, &drop).await;
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Scheduled);
    assert_eq!(c.audience.uploaded, 1000, "every valid row processed");
    let (a, b) = {
        let lists = w.esp.lists.lock().unwrap();
        (
            lists["espbridge_c1_A"].clone(),
            lists["espbridge_c1_B"].clone(),
        )
    };
    assert!(a.is_disjoint(&b));
    assert_eq!(a.len() as u64, c.variants[0].assigned);
    assert_eq!(b.len() as u64, c.variants[1].assigned);
    assert_eq!(
        c.audience.held_out + c.variants[0].assigned + c.variants[1].assigned,
        1000
    );
    assert!(
        (120..=280).contains(&c.audience.held_out),
        "about 20%: {}",
        c.audience.held_out
    );
    assert_eq!(
        *w.esp.ids_sent.lock().unwrap(),
        1000 - c.audience.held_out,
        "held out never sent"
    );
    // Everyone is where the seeded hash says, whatever the batch and continuation boundaries.
    let rule = Assigner::new("c1", &[0.5, 0.5], 0.2);
    for i in 0..1000 {
        let customer = format!("C{i}");
        let expected = match rule.assign(&customer) {
            Group::Holdout => None,
            Group::Variant(0) => Some("A"),
            Group::Variant(_) => Some("B"),
        };
        let got = match (a.contains(&customer), b.contains(&customer)) {
            (true, false) => Some("A"),
            (false, true) => Some("B"),
            (false, false) => None,
            (true, true) => panic!("{customer} in both"),
        };
        assert_eq!(got, expected, "{customer}");
    }
    // One send per variant, each with its own template.
    let launches = w.esp.launches.lock().unwrap().clone();
    assert_eq!(
        launches.into_iter().collect::<Vec<_>>(),
        ["espbridge_c1_A", "espbridge_c1_B"]
    );
    assert!(c.variants.iter().all(|v| v.esp_ids.get("email").is_some()));

    // Polls record each variant and their sum.
    let send_at: Timestamp = "2026-11-25T08:00:00Z".parse().unwrap();
    w.clock
        .set(send_at + SignedDuration::from_hours(24) + SignedDuration::from_mins(1));
    w.services.poll_metrics(&id()).await.unwrap();
    let snaps = w.services.store.snapshots(&id()).await.unwrap();
    assert_eq!(snaps[0].by_variant.len(), 2);
    assert_eq!(snaps[0].counts.sent, 20, "the fake reports 10 per variant");
    assert_eq!(snaps[0].by_variant["B"].sent, 10);
}

/// A 50-row campaign whose control group is a file of C1, C2, C3 (in the audience) and the
/// `outsiders` (not in it), run to scheduled.
async fn control_file_campaign(outsiders: &[&str]) -> World {
    let w = world();
    let mut control = String::from("customer_id\nC1\nC2\nC3\n");
    for o in outsiders {
        control.push_str(o);
        control.push('\n');
    }
    w.src.put(&format!("{PREFIX}control.csv"), control);
    let drop = drop_files(
        &w,
        50,
        serde_json::json!({"control_group": {"file": "control.csv"}}),
    );
    run_to_scheduled(&w, &drop).await;
    w
}

#[tokio::test]
async fn a_control_group_file_holds_its_customers_out() {
    let w = control_file_campaign(&["X-not-in-audience"]).await;
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.control.as_ref().unwrap().file_ids, 4);
    assert_eq!(
        c.audience.held_out, 3,
        "the file's customers found in the audience"
    );
    let list = w.esp.lists.lock().unwrap()["espbridge_c1"].clone();
    assert_eq!(list.len(), 47);
    assert!(!list.contains("C1") && !list.contains("C2") && !list.contains("C3"));
}

#[tokio::test]
async fn a_missing_control_group_file_fails_the_campaign_naming_it() {
    let w = world();
    let drop = drop_files(
        &w,
        5,
        serde_json::json!({"control_group": {"file": "absent.csv"}}),
    );
    w.services.handle_drop(&drop, Deadline::none()).await.ok();
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(c.state, State::Failed);
    let reason = c.failure.unwrap().reason;
    assert!(reason.contains("absent.csv"), "{reason}");
    assert!(w.esp.lists.lock().unwrap().is_empty(), "nothing sent");
}

// ---- conversions ----

mod conversions {
    use super::*;
    use crate::audience::assign::{Assigner, Group};
    use crate::campaign::GroupConversionTotals;
    use crate::service::conversions::{ConversionOutcome, ObjectOutcome};

    /// Puts a conversions file and returns its event (tagged with the version the source reports).
    async fn put_conversions(w: &World, key: &str, body: impl Into<Vec<u8>>) -> ObjectRef {
        w.src.put(key, body);
        let (_, etag) = w.src.read_small("b", key).await.unwrap();
        ObjectRef {
            bucket: "b".into(),
            key: key.into(),
            etag: etag.trim_matches('"').into(),
        }
    }

    /// The totals computed independently: the audience C0..C{n-1}, assigned with `rule`, plus
    /// control-file ids outside the audience, against each customer's summed revenue.
    fn expected(
        n: usize,
        rule: &Assigner,
        names: &[&str],
        outside_control: &[&str],
        revenue: &[(&str, f64)],
    ) -> BTreeMap<String, GroupConversionTotals> {
        let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
        for (id, r) in revenue {
            *sums.entry(id).or_default() += r;
        }
        let mut out: BTreeMap<String, GroupConversionTotals> = BTreeMap::new();
        let mut add = |group: &str, id: &str| {
            let g = out.entry(group.to_owned()).or_default();
            g.customers += 1;
            if let Some(r) = sums.get(id) {
                g.converters += 1;
                g.revenue += r;
                g.revenue_sq += r * r;
            }
        };
        for i in 0..n {
            let id = format!("C{i}");
            match rule.assign(&id) {
                Group::Holdout => add("control", &id),
                Group::Variant(v) => add(names[v], &id),
            }
        }
        for id in outside_control {
            add("control", id);
        }
        out
    }

    /// The first audience customers (from `skip`) the rule puts in `group`.
    fn in_group(rule: &Assigner, group: Group, skip: usize) -> String {
        (skip..)
            .map(|i| format!("C{i}"))
            .find(|id| rule.assign(id) == group)
            .unwrap()
    }

    fn ab_world() -> (World, Assigner, ObjectRef) {
        let w = world();
        let drop = drop_files(
            &w,
            200,
            serde_json::json!({
                "variants": [
                    {"name": "A", "template_id": "t1", "share": 0.5},
                    {"name": "B", "template_id": "t2", "share": 0.5}
                ],
                "control_group": {"holdout_share": 0.2}
            }),
        );
        (w, Assigner::new("c1", &[0.5, 0.5], 0.2), drop)
    }

    #[tokio::test]
    async fn by_campaign_files_are_attributed_per_group_and_add_up_without_double_counting() {
        let (w, rule, drop) = ab_world();
        // Not scheduled yet: acknowledged and recorded nowhere.
        let early = put_conversions(
            &w,
            &format!("{PREFIX}early-conversions.csv"),
            "customer_id,amount,timestamp\nC1,1,2026-11-26T00:00:00Z\n",
        )
        .await;
        assert!(matches!(
            w.services.attribute_conversions(&early).await.unwrap(),
            ConversionOutcome::Ignored(_)
        ));
        run_to_scheduled(&w, &drop).await;

        let a = in_group(&rule, Group::Variant(0), 0);
        let a2 = in_group(
            &rule,
            Group::Variant(0),
            a[1..].parse::<usize>().unwrap() + 1,
        );
        let a3 = in_group(
            &rule,
            Group::Variant(0),
            a2[1..].parse::<usize>().unwrap() + 1,
        );
        let b = in_group(&rule, Group::Variant(1), 0);
        let h = in_group(&rule, Group::Holdout, 0);
        let first = put_conversions(
            &w,
            &format!("{PREFIX}conversions.csv"),
            format!(
                "timestamp,amount,customer_id,channel\n\
                 2026-11-26T10:00:00+01:00,20.00,{a},web\n\
                 2026-11-26T11:00:00Z,10,{b},web\n\
                 2026-11-27T11:00:00Z,5.5,{b},shop\n\
                 2026-11-28T00:00:00Z,7,{h},web\n\
                 2026-11-28T00:00:00Z,99,X-outside,web\n\
                 2026-12-03T00:00:00Z,50,{a2},web\n\
                 2026-11-28T00:00:00Z,abc,{a3},web\n\
                 2026-11-28,3,{a3},web\n"
            ),
        )
        .await;
        let out = w.services.attribute_conversions(&first).await.unwrap();
        assert_eq!(
            out,
            ConversionOutcome::Attributed {
                updated: vec![id()],
                unchanged: vec![],
                failed: vec![]
            }
        );
        let c = w.services.store.get(&id()).await.unwrap().unwrap();
        let s = c.conversions.clone().unwrap();
        assert_eq!((s.rows, s.rows_in_window, s.rejected), (8, 5, 2));
        assert_eq!(s.window_days, 7);
        let lines: Vec<u64> = s.reject_samples.iter().map(|r| r.line).collect();
        assert_eq!(lines, [8, 9]);
        assert!(s.reject_samples[0].reason.contains("amount"));
        assert!(s.reject_samples[1].reason.contains("timestamp"));
        assert!(
            s.reject_samples
                .iter()
                .all(|r| r.file.ends_with("conversions.csv") && !r.reason.contains(&a3))
        );
        let revenue = [
            (a.as_str(), 20.0),
            (b.as_str(), 10.0),
            (b.as_str(), 5.5),
            (h.as_str(), 7.0),
        ];
        let want = expected(200, &rule, &["A", "B"], &[], &revenue);
        assert_eq!(s.groups, want);
        assert_eq!(s.groups["B"].converters, 1, "two rows, one converter");
        assert_eq!(s.groups["B"].revenue, 15.5);
        assert_eq!(s.groups["control"].revenue, 7.0);
        assert_eq!(
            s.groups.values().map(|g| g.customers).sum::<u64>(),
            200,
            "the outsider is nobody's customer"
        );

        // A second file: the totals are recomputed over both; b is still one converter.
        let body = format!(
            "customer_id,amount,timestamp\n{b},4.5,2026-11-29T00:00:00Z\n{a3},2,2026-11-29T00:00:00Z\n"
        );
        let second = put_conversions(
            &w,
            &format!("{PREFIX}2-conversions.csv.gz"),
            gzip(body.as_bytes()),
        )
        .await;
        w.services.attribute_conversions(&second).await.unwrap();
        let s2 = w
            .services
            .store
            .get(&id())
            .await
            .unwrap()
            .unwrap()
            .conversions
            .unwrap();
        assert_eq!(s2.sources.len(), 2);
        assert_eq!((s2.rows, s2.rows_in_window, s2.rejected), (10, 7, 2));
        let mut revenue2 = revenue.to_vec();
        revenue2.extend([(b.as_str(), 4.5), (a3.as_str(), 2.0)]);
        assert_eq!(s2.groups, expected(200, &rule, &["A", "B"], &[], &revenue2));
        assert_eq!(s2.groups["B"].converters, s.groups["B"].converters);
        assert_eq!(s2.groups["A"].converters, s.groups["A"].converters + 1);

        // Redelivery of the first file changes nothing, not even the record's version.
        let before = w.services.store.get(&id()).await.unwrap().unwrap();
        assert_eq!(
            w.services.attribute_conversions(&first).await.unwrap(),
            ConversionOutcome::Attributed {
                updated: vec![],
                unchanged: vec![id()],
                failed: vec![]
            }
        );
        assert_eq!(w.services.store.get(&id()).await.unwrap().unwrap(), before);
    }

    fn gzip(body: &[u8]) -> Vec<u8> {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn a_by_date_file_reaches_the_campaigns_sent_in_its_window_only() {
        let (w, rule, drop) = ab_world();
        run_to_scheduled(&w, &drop).await;
        // Two more records on the same drop: one sent later, one not scheduled yet.
        let c1 = w.services.store.get(&id()).await.unwrap().unwrap();
        for (name, send_at, state) in [
            ("late", "2026-12-10T08:00:00Z", State::Scheduled),
            ("pending", "2026-11-26T08:00:00Z", State::AudienceReady),
        ] {
            let mut c = c1.clone();
            c.id = CampaignId::parse(name).unwrap();
            c.send_at = Some(send_at.parse().unwrap());
            c.state = state;
            let mut drop = c.drop.clone();
            drop.etag = name.into();
            w.services.store.create_from_drop(&drop, &c).await.unwrap();
        }
        let c = in_group(&rule, Group::Variant(1), 0);
        let file = put_conversions(
            &w,
            "conversions/2026-11-30/shop.csv",
            format!("customer_id,amount,timestamp\n{c},12,2026-11-30T12:00:00Z\n"),
        )
        .await;
        assert_eq!(
            w.services.attribute_conversions(&file).await.unwrap(),
            ConversionOutcome::Attributed {
                updated: vec![id()],
                unchanged: vec![],
                failed: vec![]
            }
        );
        let s = w
            .services
            .store
            .get(&id())
            .await
            .unwrap()
            .unwrap()
            .conversions
            .unwrap();
        assert_eq!(s.groups["B"].revenue, 12.0);
        for other in ["late", "pending"] {
            let o = w
                .services
                .store
                .get(&CampaignId::parse(other).unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(o.conversions, None, "{other}");
        }
        // A date whose window holds no send is acknowledged, not retried.
        let none = put_conversions(
            &w,
            "conversions/2026-12-04/shop.csv",
            "customer_id,amount,timestamp\n",
        )
        .await;
        assert!(matches!(
            w.services.attribute_conversions(&none).await.unwrap(),
            ConversionOutcome::Ignored(_)
        ));
        // The late campaign's window.
        let late = put_conversions(
            &w,
            "conversions/2026-12-12/shop.csv",
            format!("customer_id,amount,timestamp\n{c},3,2026-12-11T00:00:00Z\n"),
        )
        .await;
        assert_eq!(
            w.services.attribute_conversions(&late).await.unwrap(),
            ConversionOutcome::Attributed {
                updated: vec![CampaignId::parse("late").unwrap()],
                unchanged: vec![],
                failed: vec![]
            }
        );
    }

    #[tokio::test]
    async fn control_file_ids_outside_the_audience_count_as_control() {
        let w = control_file_campaign(&["X-not-in-audience", "X-other"]).await;
        let file = put_conversions(
            &w,
            &format!("{PREFIX}conversions.csv"),
            "customer_id,amount,timestamp\n\
             C1,5,2026-11-26T00:00:00Z\n\
             X-not-in-audience,8,2026-11-26T00:00:00Z\n\
             C10,3,2026-11-26T00:00:00Z\n",
        )
        .await;
        // Through the router the handlers use.
        let out = w
            .services
            .handle_object(&file, Deadline::none())
            .await
            .unwrap();
        assert!(matches!(
            out,
            ObjectOutcome::Conversions(ConversionOutcome::Attributed { .. })
        ));
        let s = w
            .services
            .store
            .get(&id())
            .await
            .unwrap()
            .unwrap()
            .conversions
            .unwrap();
        let control = s.groups["control"];
        assert_eq!(control.customers, 5, "3 in the audience, 2 outside it");
        assert_eq!((control.converters, control.revenue), (2, 13.0));
        assert_eq!(control.revenue_sq, 25.0 + 64.0);
        let all = s.groups["all"];
        assert_eq!((all.customers, all.converters, all.revenue), (47, 1, 3.0));
    }

    #[tokio::test]
    async fn an_unreadable_file_is_recorded_at_line_1_naming_the_column() {
        let w = world();
        let drop = drop_files(&w, 20, serde_json::json!({}));
        run_to_scheduled(&w, &drop).await;
        let file = put_conversions(
            &w,
            &format!("{PREFIX}conversions.csv"),
            "customer_id,value,timestamp\nC1,5,2026-11-26T00:00:00Z\n",
        )
        .await;
        w.services.attribute_conversions(&file).await.unwrap();
        let s = w
            .services
            .store
            .get(&id())
            .await
            .unwrap()
            .unwrap()
            .conversions
            .unwrap();
        assert_eq!((s.rows, s.rejected), (0, 1));
        assert_eq!(s.reject_samples[0].line, 1);
        assert!(s.reject_samples[0].file.ends_with("conversions.csv"));
        assert!(
            s.reject_samples[0].reason.contains("\"amount\""),
            "{:?}",
            s.reject_samples
        );
        assert_eq!(s.groups["all"].customers, 20);
        assert_eq!(s.groups["all"].converters, 0);
        // An audience replaced since the upload cannot be regrouped: acknowledged, not retried.
        w.src
            .put(&format!("{PREFIX}a.csv"), "customer_id,first_name\nZ,z\n");
        let next = put_conversions(
            &w,
            &format!("{PREFIX}2-conversions.csv"),
            "customer_id,amount,timestamp\nC1,5,2026-11-26T00:00:00Z\n",
        )
        .await;
        assert_eq!(
            w.services.attribute_conversions(&next).await.unwrap(),
            ConversionOutcome::Attributed {
                updated: vec![],
                unchanged: vec![],
                failed: vec![id()]
            }
        );
        // A by-campaign file of an unknown campaign is acknowledged.
        let stray = put_conversions(
            &w,
            "campaigns/2026-11-24/nobody/conversions.csv",
            "customer_id,amount,timestamp\n",
        )
        .await;
        assert!(matches!(
            w.services.attribute_conversions(&stray).await.unwrap(),
            ConversionOutcome::Ignored(_)
        ));
    }
}
