//! A/B variants and a hold-out: stable assignment, one audience and one send per variant.

use super::*;
use crate::campaign::State;
use jiff::Timestamp;

#[tokio::test]
async fn ab_variants_and_a_holdout_are_assigned_stably_and_sent_separately() {
    use crate::audience::assign::{Assigner, Group};
    let mut w = world();
    w.services.upload_settings.max_batches_per_run = Some(1);
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
    w.services.poll().poll_metrics(&id()).await.unwrap();
    let snaps = w.services.store.snapshots(&id()).await.unwrap();
    assert_eq!(snaps[0].by_variant.len(), 2);
    assert_eq!(snaps[0].counts.sent, 20, "the fake reports 10 per variant");
    assert_eq!(snaps[0].by_variant["B"].sent, 10);
}
