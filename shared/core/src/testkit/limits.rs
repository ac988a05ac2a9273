//! The account-limits contract: one suite every [`AccountLimits`] adapter runs in its own
//! tests, so the DynamoDB items and the in-memory books hand out the same leases and waits.

use crate::ports::limits::AccountLimits;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Runs every contract check against `limits`; `tag` keeps keys unique per run when several
/// runs share one backend.
pub async fn run_limits_contract(limits: Arc<dyn AccountLimits>, tag: &str) {
    slots_are_leased_to_one_owner_at_a_time_and_expire(limits.as_ref(), &format!("{tag}-a")).await;
    reservations_share_one_allowance(limits.as_ref(), &format!("{tag}-b")).await;
    concurrent_claims_never_exceed_the_limit(&limits, &format!("{tag}-c")).await;
    concurrent_reservations_are_spaced_at_the_rate(&limits, &format!("{tag}-d")).await;
}

async fn slots_are_leased_to_one_owner_at_a_time_and_expire(l: &dyn AccountLimits, k: &str) {
    let a = l.acquire(k, 2, "a", 1_000, 0).await.unwrap().unwrap();
    let b = l.acquire(k, 2, "b", 1_000, 0).await.unwrap().unwrap();
    assert_ne!(a.index, b.index);
    assert_eq!(l.acquire(k, 2, "c", 1_000, 10).await.unwrap(), None);
    // The same owner gets its own slot back, with the new lease.
    let again = l.acquire(k, 2, "a", 2_000, 10).await.unwrap().unwrap();
    assert_eq!((again.index, again.until), (a.index, 2_000));
    l.release(k, &b).await.unwrap();
    let c = l.acquire(k, 2, "c", 10_000, 10).await.unwrap().unwrap();
    assert_eq!(c.index, b.index, "b's slot, freed");
    // Releasing a slot someone else holds now changes nothing.
    l.release(k, &b).await.unwrap();
    assert_eq!(l.holders(k, 10).await.unwrap().len(), 2);
    // After a's lease ends (c's runs on), d takes a's slot; a can no longer renew it.
    let d = l.acquire(k, 2, "d", 5_000, 3_000).await.unwrap().unwrap();
    assert_eq!(d.index, a.index);
    assert!(!l.renew(k, &a, 9_000).await.unwrap());
    assert!(l.renew(k, &d, 9_000).await.unwrap());
    let mut owners: Vec<String> = l
        .holders(k, 3_000)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.owner)
        .collect();
    owners.sort();
    assert_eq!(owners, ["c", "d"]);
    let late = l.holders(k, 9_500).await.unwrap();
    assert_eq!(late.len(), 1, "only c's lease runs past 9 500: {late:?}");
    assert_eq!(late[0].owner, "c");
}

async fn reservations_share_one_allowance(l: &dyn AccountLimits, k: &str) {
    assert_eq!(l.reserve(k, 60.0, 1, 0).await.unwrap(), Duration::ZERO);
    assert_eq!(
        l.reserve(k, 60.0, 1, 0).await.unwrap(),
        Duration::from_secs(1)
    );
    assert_eq!(
        l.reserve(k, 60.0, 3, 0).await.unwrap(),
        Duration::from_secs(2)
    );
    // The ESP said the window is spent: nobody before 10 s.
    l.hold_until(k, 10_000).await.unwrap();
    assert_eq!(
        l.reserve(k, 60.0, 1, 0).await.unwrap(),
        Duration::from_secs(10)
    );
    // An earlier hold does not pull the allowance back.
    l.hold_until(k, 1_000).await.unwrap();
    assert_eq!(
        l.reserve(k, 60.0, 1, 0).await.unwrap(),
        Duration::from_secs(11)
    );
}

async fn concurrent_claims_never_exceed_the_limit(l: &Arc<dyn AccountLimits>, k: &str) {
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (l, k) = (Arc::clone(l), k.to_owned());
            tokio::spawn(async move { l.acquire(&k, 3, &format!("o{i}"), 60_000, 0).await })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        if let Some(slot) = t.await.unwrap().unwrap() {
            won.push(slot);
        }
    }
    assert_eq!(won.len(), 3, "12 contenders for 3 slots: {won:?}");
    let indexes: BTreeSet<u32> = won.iter().map(|s| s.index).collect();
    assert_eq!(indexes.len(), 3);
}

async fn concurrent_reservations_are_spaced_at_the_rate(l: &Arc<dyn AccountLimits>, k: &str) {
    // 600 a minute: one every 100 ms; ten callers at once get ten distinct turns.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (l, k) = (Arc::clone(l), k.to_owned());
            tokio::spawn(async move { l.reserve(&k, 600.0, 1, 0).await })
        })
        .collect();
    let mut waits = Vec::new();
    for t in tasks {
        waits.push(t.await.unwrap().unwrap().as_millis());
    }
    waits.sort_unstable();
    let expected: Vec<u128> = (0..10).map(|i| i * 100).collect();
    assert_eq!(waits, expected);
}
