//! `infra/checks/function-s3.json` says what each Lambda function does in the drop bucket: the
//! key prefixes it reads and writes, and whether it acts on a missing object. `verify_sam.py`
//! checks the template grants each function's role exactly that; this test checks the code
//! does exactly that:
//! - upload-audience: its use case ([`UploadService`], as `espbridge_app::aws::Bootstrap::upload`
//!   builds it) runs every path that touches the bucket on a recording bucket: a drop with a
//!   rejected row and a control-group file (manifest, audience, control file, rejects report
//!   written then read back), its continuations, and conversions files of both layouts, one of
//!   them recomputed after an earlier source has gone. The prefixes it used (the key's first
//!   segment) must be those the file lists;
//! - schedule-send, poll-metrics, http-api, sweep: their use cases hold no bucket at all
//!   ([`no_use_case_but_upload_holds_the_drop_bucket`]), so the file must list nothing for them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use espbridge_core::ports::source::ByteStream;
use espbridge_core::ports::{AudienceSource, ObjectRef, SourceError, WorkItem};
use espbridge_core::service::conversions::ConversionOutcome;
use espbridge_core::service::intake::ObjectOutcome;
use espbridge_core::service::{
    ApiService, Deadline, EspRegistry, PollService, ScheduleService, Services, SweepService,
    UploadSettings,
};
use espbridge_core::testkit::{
    FakeEsp, MemAlerts, MemMetrics, MemQueue, MemScheduler, MemSource, MemStore,
};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

const BUCKET: &str = "drop-bucket";
const FOLDER: &str = "campaigns/2026-11-24/c1/";

/// What a function does in the bucket, by key prefix (`campaigns/*`).
#[derive(Debug, Default, PartialEq, Eq)]
struct Access {
    read: BTreeSet<String>,
    write: BTreeSet<String>,
    /// A read answered "no such object" that the code went on from.
    not_found: bool,
}

/// The prefix a key falls under in an IAM resource: its first segment, then `*`.
fn prefix(key: &str) -> String {
    let (first, _) = key.split_once('/').expect("a key in a folder");
    format!("{first}/*")
}

/// A drop bucket that records every access, and can lose an object.
#[derive(Default)]
struct Recording {
    objects: MemSource,
    gone: Mutex<BTreeSet<String>>,
    access: Mutex<Access>,
}

impl Recording {
    fn read(&self, key: &str) -> Result<(), SourceError> {
        let mut a = self.access.lock().unwrap();
        a.read.insert(prefix(key));
        if self.gone.lock().unwrap().contains(key) {
            a.not_found = true;
            return Err(SourceError::NotFound { key: key.into() });
        }
        Ok(())
    }

    /// Puts an object and returns its ObjectCreated event.
    async fn put(&self, key: &str, body: impl Into<Vec<u8>>) -> ObjectRef {
        self.objects.put(key, body);
        let (_, etag) = self.objects.read_small(BUCKET, key).await.unwrap();
        ObjectRef {
            bucket: BUCKET.into(),
            key: key.into(),
            etag: etag.trim_matches('"').into(),
        }
    }
}

#[async_trait]
impl AudienceSource for Recording {
    async fn read_small(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, String), SourceError> {
        self.read(key)?;
        self.objects.read_small(bucket, key).await
    }
    async fn open(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<(ByteStream, String), SourceError> {
        self.read(key)?;
        self.objects.open(bucket, key, etag).await
    }
    async fn put_file(&self, bucket: &str, key: &str, path: &Path) -> Result<(), SourceError> {
        self.access.lock().unwrap().write.insert(prefix(key));
        self.objects.put_file(bucket, key, path).await
    }
}

fn attributed_to_c1(out: ObjectOutcome) {
    let c1 = CampaignId::parse("c1").unwrap();
    match out {
        ObjectOutcome::Conversions(ConversionOutcome::Attributed {
            updated, failed, ..
        }) => assert_eq!((updated, failed), (vec![c1], vec![])),
        other => panic!("not attributed: {other:?}"),
    }
}

/// Runs every path of upload-audience that touches the bucket; returns what it did there.
async fn upload_audience_access() -> Access {
    let bucket = Arc::new(Recording::default());
    let queue = Arc::new(MemQueue::default());
    let services = Services {
        store: Arc::new(MemStore::default()),
        source: bucket.clone(),
        queue: queue.clone(),
        scheduler: Arc::new(MemScheduler::default()),
        esps: EspRegistry::new(vec![Arc::new(FakeEsp {
            account: Some(AccountId::parse("default").unwrap()),
            ..Default::default()
        })]),
        clock: Arc::new(ManualClock::new("2026-11-24T02:00:00Z".parse().unwrap())),
        alerts: Arc::new(MemAlerts::default()),
        metrics: Arc::new(MemMetrics::default()),
        upload_settings: UploadSettings::default(),
    };
    let upload = services.upload();

    // A drop: 20 customers and a rejected row, a control-group file.
    let mut audience = String::from("customer_id,first_name\n");
    for i in 0..20 {
        audience.push_str(&format!("C{i},N{i}\n"));
    }
    audience.push_str(",no id\n");
    bucket.put(&format!("{FOLDER}a.csv"), audience).await;
    bucket
        .put(&format!("{FOLDER}control.csv"), "customer_id\nC1\nC2\n")
        .await;
    let manifest = serde_json::json!({
        "schema_version": "1", "campaign_id": "c1", "esp": "emarsys", "template_id": "t1",
        "send_at": "2026-11-25T09:00:00+01:00",
        "audience": {"files": ["a.csv"], "columns": {"customer_id": "customer_id", "fields": ["first_name"]}},
        "control_group": {"file": "control.csv"}
    });
    let drop = bucket
        .put(&format!("{FOLDER}manifest.json"), manifest.to_string())
        .await;
    upload
        .handle_object(&drop, Deadline::none(), false)
        .await
        .unwrap();
    // Its continuations, then schedule-send (conversions go to scheduled campaigns only).
    loop {
        let item = queue.0.lock().unwrap().pop_front().expect("a queued item");
        match item {
            WorkItem::ContinueUpload { campaign_id } => {
                upload
                    .continue_upload(&campaign_id, Deadline::none(), false)
                    .await
                    .unwrap();
            }
            WorkItem::ScheduleSend { campaign_id } => {
                services
                    .schedule()
                    .schedule_send(&campaign_id, false)
                    .await
                    .unwrap();
                break;
            }
        }
    }

    // Conversions: by campaign, by date, and by date again after the first file has gone.
    let rows = "customer_id,amount,timestamp\nC3,12.5,2026-11-26T10:00:00Z\n";
    let by_campaign = bucket.put(&format!("{FOLDER}conversions.csv"), rows).await;
    attributed_to_c1(
        upload
            .handle_object(&by_campaign, Deadline::none(), false)
            .await
            .unwrap(),
    );
    let by_date = bucket.put("conversions/2026-11-26/shop.csv", rows).await;
    attributed_to_c1(
        upload
            .handle_object(&by_date, Deadline::none(), false)
            .await
            .unwrap(),
    );
    assert!(!bucket.access.lock().unwrap().not_found);
    bucket.gone.lock().unwrap().insert(by_campaign.key.clone());
    let later = bucket.put("conversions/2026-11-27/shop.csv", rows).await;
    attributed_to_c1(
        upload
            .handle_object(&later, Deadline::none(), false)
            .await
            .unwrap(),
    );
    std::mem::take(&mut *bucket.access.lock().unwrap())
}

/// The use cases of schedule-send, poll-metrics, http-api and sweep (as `espbridge_app::aws::Bootstrap`
/// builds them) hold no drop bucket: these patterns name every port they have, so a bucket
/// added to one stops this test from compiling. Then list what it does in
/// infra/checks/function-s3.json, grant it in infra/template.yaml, and add it here.
#[allow(dead_code)]
fn no_use_case_but_upload_holds_the_drop_bucket(
    s: ScheduleService,
    p: PollService,
    a: ApiService,
    w: SweepService,
) {
    let ScheduleService {
        store: _,
        esps: _,
        scheduler: _,
        clock: _,
        alerts: _,
        metrics: _,
    } = s;
    let PollService {
        store: _,
        esps: _,
        scheduler: _,
        clock: _,
    } = p;
    let ApiService {
        store: _,
        esps: _,
        queue: _,
        scheduler: _,
        clock: _,
    } = a;
    let SweepService {
        store: _,
        queue: _,
        scheduler: _,
        alerts: _,
        metrics: _,
        policies: _,
        clock: _,
    } = w;
}

/// infra/checks/function-s3.json, as [`Access`] per function.
fn listed() -> BTreeMap<String, Access> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/checks/function-s3.json"
    );
    let file: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let set = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect()
    };
    file.into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(function, v)| {
            let access = Access {
                read: set(&v["read"]),
                write: set(&v["write"]),
                not_found: v["not_found"].as_bool().unwrap(),
            };
            (function, access)
        })
        .collect()
}

#[tokio::test]
async fn the_infrastructure_check_knows_what_each_function_does_in_the_drop_bucket() {
    let listed = listed();
    let functions: Vec<&str> = listed.keys().map(String::as_str).collect();
    assert_eq!(
        functions,
        [
            "http-api",
            "poll-metrics",
            "schedule-send",
            "sweep",
            "upload-audience"
        ]
    );
    let observed = upload_audience_access().await;
    assert_eq!(
        listed["upload-audience"], observed,
        "infra/checks/function-s3.json must list what upload-audience's code does in the drop bucket"
    );
    for function in ["schedule-send", "poll-metrics", "http-api", "sweep"] {
        assert_eq!(
            listed[function],
            Access::default(),
            "{function} holds no drop bucket"
        );
    }
}
