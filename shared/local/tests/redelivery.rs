//! The local queue redelivers as SQS does: an interrupted step comes back after a back-off with
//! its receive count up, the last allowed receive is the final attempt, a step that failed for
//! good is not redelivered, and a message waiting to come back holds up no worker. First with
//! a scripted consumer (exact receives), then through the real services with the testkit's ESP
//! double told to fail (the campaigns' end states).
//!
//! Back-offs are milliseconds; nothing here asserts how fast anything is: every wait is a poll
//! with a generous timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use espbridge_core::campaign::State;
use espbridge_core::ports::queue::MAX_RECEIVES;
use espbridge_core::ports::{ObjectRef, WorkItem};
use espbridge_core::service::{EspRegistry, ServiceError, Services, UploadSettings};
use espbridge_core::testkit::{FakeEsp, MemSource};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_local::worker::run_workers;
use espbridge_local::{Consumer, LocalQueue, LocalScheduler, Message, Redelivery, SqliteStore};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(60);

fn fast() -> Redelivery {
    Redelivery {
        first: Duration::from_millis(2),
        max: Duration::from_millis(10),
    }
}

/// Waits for `f` (a queue settling, a condition polled), failing the test after [`PATIENCE`].
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}"))
}

fn id(s: &str) -> CampaignId {
    CampaignId::parse(s).unwrap()
}

fn work(campaign: &str) -> Message {
    Message::Work(WorkItem::ContinueUpload {
        campaign_id: id(campaign),
    })
}

// ---- a scripted consumer: exact receives ----

/// What a campaign's step does on each receive.
#[derive(Clone, Copy)]
enum Script {
    /// A retryable error on the first `n` receives, then success.
    InterruptedTimes(u32),
    /// A retryable error on every receive.
    AlwaysInterrupted,
    /// An error no retry fixes.
    Broken,
}

/// Runs each campaign's [`Script`] and records every receive's `final_attempt`.
#[derive(Default)]
struct Scripted {
    scripts: BTreeMap<CampaignId, Script>,
    receives: Mutex<BTreeMap<CampaignId, Vec<bool>>>,
}

impl Scripted {
    fn new(scripts: &[(&str, Script)]) -> Arc<Self> {
        Arc::new(Self {
            scripts: scripts.iter().map(|(c, s)| (id(c), *s)).collect(),
            ..Default::default()
        })
    }

    /// The `final_attempt` of each receive of `campaign`'s message so far.
    fn receives(&self, campaign: &str) -> Vec<bool> {
        self.receives
            .lock()
            .unwrap()
            .get(&id(campaign))
            .cloned()
            .unwrap_or_default()
    }
}

#[async_trait]
impl Consumer for Scripted {
    async fn consume(&self, message: &Message, final_attempt: bool) -> Result<(), ServiceError> {
        let Message::Work(item) = message else {
            panic!("only work items are scripted")
        };
        let campaign = item.campaign_id().clone();
        let receive = {
            let mut all = self.receives.lock().unwrap();
            let mine = all.entry(campaign.clone()).or_default();
            mine.push(final_attempt);
            mine.len() as u32
        };
        match self.scripts[&campaign] {
            Script::InterruptedTimes(n) if receive <= n => Err(ServiceError::Contended(campaign)),
            Script::InterruptedTimes(_) => Ok(()),
            Script::AlwaysInterrupted => Err(ServiceError::Contended(campaign)),
            Script::Broken => Err(ServiceError::NoSendTime(campaign)),
        }
    }
}

/// Starts `workers` workers of a fresh queue with `redelivery` on `consumer`.
fn start<C: Consumer + 'static>(
    consumer: Arc<C>,
    redelivery: Redelivery,
    workers: usize,
) -> (LocalQueue, tokio::task::JoinHandle<()>) {
    let (queue, inbox) = LocalQueue::with_redelivery(redelivery);
    let task = tokio::spawn(run_workers(consumer, queue.clone(), inbox, workers));
    (queue, task)
}

#[tokio::test]
async fn a_step_interrupted_twice_completes_on_its_third_receive() {
    let consumer = Scripted::new(&[("c1", Script::InterruptedTimes(2))]);
    let (queue, workers) = start(Arc::clone(&consumer), fast(), 2);
    queue.send(work("c1")).unwrap();
    within("the queue settles", queue.settled()).await;
    assert_eq!(
        consumer.receives("c1"),
        [false, false, false],
        "received three times, none of them the last allowed"
    );
    assert_eq!((queue.outstanding(), queue.waiting()), (0, 0));
    workers.abort();
}

#[tokio::test]
async fn a_step_always_interrupted_runs_max_receives_times_the_last_as_its_final_attempt() {
    let consumer = Scripted::new(&[("c1", Script::AlwaysInterrupted)]);
    let (queue, workers) = start(Arc::clone(&consumer), fast(), 2);
    queue.send(work("c1")).unwrap();
    within("the queue settles", queue.settled()).await;
    let mut expected = vec![false; MAX_RECEIVES as usize - 1];
    expected.push(true);
    assert_eq!(consumer.receives("c1"), expected);
    // Settled means nothing is queued or waiting: no receive after the last.
    assert_eq!((queue.outstanding(), queue.waiting()), (0, 0));
    workers.abort();
}

#[tokio::test]
async fn a_step_failing_for_good_is_not_redelivered() {
    let consumer = Scripted::new(&[("c1", Script::Broken), ("c2", Script::InterruptedTimes(0))]);
    let (queue, workers) = start(Arc::clone(&consumer), fast(), 1);
    queue.send(work("c1")).unwrap();
    queue.send(work("c2")).unwrap();
    within("the queue settles", queue.settled()).await;
    assert_eq!(consumer.receives("c1"), [false], "received once, dropped");
    assert_eq!(consumer.receives("c2"), [false]);
    workers.abort();
}

#[tokio::test]
async fn a_message_waiting_for_redelivery_holds_up_no_worker() {
    // One worker, and a back-off far longer than the test's patience: the second message can
    // only be handled if the worker does not wait out the first one's back-off.
    let consumer = Scripted::new(&[
        ("waits", Script::AlwaysInterrupted),
        ("flows", Script::InterruptedTimes(0)),
    ]);
    let hour = Duration::from_secs(3600);
    let slow = Redelivery {
        first: hour,
        max: hour,
    };
    let (queue, workers) = start(Arc::clone(&consumer), slow, 1);
    queue.send(work("waits")).unwrap();
    queue.send(work("flows")).unwrap();
    // Done with the second message: only the first is left, waiting for its redelivery.
    within("the second message is handled", async {
        while consumer.receives("flows").is_empty() || queue.outstanding() > 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(consumer.receives("flows"), [false]);
    assert_eq!(consumer.receives("waits"), [false]);
    assert_eq!(
        (queue.outstanding(), queue.waiting()),
        (1, 1),
        "the first message waits for its redelivery"
    );
    workers.abort();
}

// ---- the real services: campaigns resume, or fail with their reason ----

const PREFIX: &str = "campaigns/2026-11-24/c1/";
const ROWS: usize = 250;

/// The local stack's store, queue and scheduler, the testkit's ESP double and an in-memory
/// drop bucket holding one campaign's drop (`ROWS` customers, batches of 100).
struct World {
    services: Services,
    queue: LocalQueue,
    esp: Arc<FakeEsp>,
    workers: tokio::task::JoinHandle<()>,
}

impl World {
    fn start(esp: FakeEsp) -> (World, ObjectRef) {
        let src = MemSource::default();
        let mut audience = String::from("customer_id\n");
        for i in 0..ROWS {
            audience.push_str(&format!("C{i}\n"));
        }
        src.put(&format!("{PREFIX}a.csv"), audience);
        let manifest = serde_json::json!({
            "schema_version": "1", "campaign_id": "c1", "esp": "emarsys", "template_id": "t1",
            "send_at": "2026-11-25T09:00:00+01:00",
            "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id"}}
        });
        src.put(&format!("{PREFIX}manifest.json"), manifest.to_string());
        let esp = Arc::new(FakeEsp {
            account: Some(AccountId::parse("default").unwrap()),
            ..esp
        });
        let (queue, inbox) = LocalQueue::with_redelivery(fast());
        let services = Services {
            store: Arc::new(SqliteStore::in_memory().unwrap()),
            source: Arc::new(src),
            queue: Arc::new(queue.clone()),
            scheduler: Arc::new(LocalScheduler::new()),
            esps: EspRegistry::new(vec![esp.clone()]),
            clock: Arc::new(ManualClock::new("2026-11-24T02:00:00Z".parse().unwrap())),
            alerts: Arc::new(espbridge_core::ports::LogAlerts),
            metrics: Arc::new(espbridge_core::ports::LogMetrics),
            // Two batches per receive: the campaign also goes through a continuation.
            upload_settings: UploadSettings {
                max_batches_per_run: Some(2),
                ..Default::default()
            },
        };
        let workers = tokio::spawn(run_workers(
            Arc::new(services.clone()),
            queue.clone(),
            inbox,
            2,
        ));
        let drop = ObjectRef {
            bucket: "local-drops".into(),
            key: format!("{PREFIX}manifest.json"),
            etag: "e1".into(),
        };
        let world = World {
            services,
            queue,
            esp,
            workers,
        };
        (world, drop)
    }

    /// The outcomes of the campaign's upload runs, in order.
    async fn upload_runs(&self) -> Vec<String> {
        let runs = self.services.store.runs(&id("c1")).await.unwrap();
        runs.into_iter()
            .filter(|r| r.step == "upload")
            .map(|r| r.outcome)
            .collect()
    }
}

#[tokio::test]
async fn a_drop_interrupted_twice_resumes_and_its_campaign_gets_its_audience() {
    let (w, drop) = World::start(FakeEsp {
        fail_next_uploads: 2.into(),
        ..Default::default()
    });
    // As the folder watcher does in `serve`: the drop is a message, not a task of its own.
    w.queue.send(Message::Object(drop)).unwrap();
    within("the queue settles", w.queue.settled()).await;

    let c = w.services.store.get(&id("c1")).await.unwrap().unwrap();
    assert_eq!(
        c.state,
        State::Scheduled,
        "audience ready, then scheduled: {:?}",
        c.failure
    );
    assert_eq!(c.audience.uploaded, ROWS as u64);
    assert_eq!(
        w.upload_runs().await,
        ["retry", "retry", "continued", "done"],
        "the drop's message came back twice, then a continuation finished the upload"
    );
    assert_eq!(w.esp.lists.lock().unwrap()["espbridge_c1"].len(), ROWS);
    assert_eq!(
        *w.esp.ids_sent.lock().unwrap(),
        ROWS as u64,
        "no batch sent twice"
    );
    w.workers.abort();
}

#[tokio::test]
async fn an_upload_interrupted_on_every_receive_fails_with_its_reason_on_the_last() {
    let (w, drop) = World::start(FakeEsp {
        fail_next_uploads: u32::MAX.into(),
        ..Default::default()
    });
    w.queue.send(Message::Object(drop)).unwrap();
    within("the queue settles", w.queue.settled()).await;

    let c = w.services.store.get(&id("c1")).await.unwrap().unwrap();
    assert_eq!(c.state, State::Failed, "not left `uploading`");
    let failure = c.failure.unwrap();
    assert_eq!(failure.step, "upload");
    assert!(failure.reason.contains("HTTP 503"), "{}", failure.reason);
    let mut expected = vec!["retry"; MAX_RECEIVES as usize - 1];
    expected.push("failed");
    assert_eq!(
        w.upload_runs().await,
        expected,
        "one upload per receive; the last allowed one fails the campaign"
    );
    assert_eq!(*w.esp.ids_sent.lock().unwrap(), 0);
    w.workers.abort();
}
