//! The services end to end on in-memory ports: the testkit's recording ESP double, memory
//! source, store, queue and scheduler. (The same flows run on DynamoDB, S3, SQS, EventBridge
//! Scheduler and the ESP simulators in the workspace's `tests` crate.) One file per use case;
//! the world and the drivers they share are here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ab;
mod accounts;
mod alerts;
mod api;
mod cancel;
mod check;
mod conversions;
mod hostile;
mod night;
mod pipeline;
mod poll;
mod retry;
mod send_window;
mod sweep;
mod upload;

use super::schedule::ScheduleOutcome;
use super::{Deadline, EspRegistry, Services, UploadSettings};
use crate::clock::ManualClock;
use crate::ids::{AccountId, CampaignId};
use crate::ports::*;
use crate::testkit::{FakeEsp, MemAlerts, MemMetrics, MemQueue, MemScheduler, MemSource, MemStore};
use jiff::SignedDuration;
use std::sync::Arc;

pub(super) struct World {
    pub services: Services,
    pub src: MemSource,
    pub esp: Arc<FakeEsp>,
    pub queue: Arc<MemQueue>,
    pub scheduler: Arc<MemScheduler>,
    pub clock: ManualClock,
    pub alerts: Arc<MemAlerts>,
    pub metrics: Arc<MemMetrics>,
}

pub(super) fn world() -> World {
    world_with(FakeEsp::default())
}

/// A Bronto-like ESP: per-send headers with account defaults, lists kept 30 days.
pub(super) fn bronto_world() -> World {
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

pub(super) fn world_with(esp: FakeEsp) -> World {
    let clock = ManualClock::new("2026-11-24T02:00:00Z".parse().unwrap());
    let src = MemSource::default();
    let esp = Arc::new(FakeEsp {
        account: Some(AccountId::parse("default").unwrap()),
        ..esp
    });
    let queue = Arc::new(MemQueue::default());
    let scheduler = Arc::new(MemScheduler::default());
    let alerts = Arc::new(MemAlerts::default());
    let metrics = Arc::new(MemMetrics::default());
    let services = Services {
        store: Arc::new(MemStore::default()),
        source: Arc::new(src.clone()),
        queue: queue.clone(),
        scheduler: scheduler.clone(),
        esps: EspRegistry::new(vec![esp.clone()]),
        clock: Arc::new(clock.clone()),
        alerts: alerts.clone(),
        metrics: metrics.clone(),
        upload_settings: UploadSettings::default(),
    };
    World {
        services,
        src,
        esp,
        queue,
        scheduler,
        clock,
        alerts,
        metrics,
    }
}

pub(super) const PREFIX: &str = "campaigns/2026-11-24/c1/";

pub(super) fn drop_files(w: &World, rows: usize, manifest_extra: serde_json::Value) -> ObjectRef {
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

pub(super) fn id() -> CampaignId {
    CampaignId::parse("c1").unwrap()
}

/// Drives a dropped campaign through upload and schedule-send.
pub(super) async fn upload_and_schedule(w: &World) {
    let drop = drop_files(w, 10, serde_json::json!({"esp": w.esp.kind().as_str()}));
    run_to_scheduled(w, &drop).await;
}

/// Handles the drop, then every queued continuation, then schedule-send.
pub(super) async fn run_to_scheduled(w: &World, drop: &ObjectRef) {
    w.services
        .upload()
        .handle_drop(drop, Deadline::none(), false)
        .await
        .unwrap();
    drain_to_scheduled(w).await;
}

/// Runs queued continuations until schedule-send is queued, then schedules; returns the number
/// of continuations run.
pub(super) async fn drain_to_scheduled(w: &World) -> u32 {
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
                    .upload()
                    .continue_upload(&campaign_id, Deadline::none(), false)
                    .await
                    .unwrap();
            }
            WorkItem::ScheduleSend { campaign_id } => {
                assert_eq!(
                    w.services
                        .schedule()
                        .schedule_send(&campaign_id, false)
                        .await
                        .unwrap(),
                    ScheduleOutcome::Scheduled(id())
                );
                return continuations;
            }
        }
    }
}

/// A 50-row campaign whose control group is a file of C1, C2, C3 (in the audience) and the
/// `outsiders` (not in it), run to scheduled.
pub(super) async fn control_file_campaign(outsiders: &[&str]) -> World {
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
