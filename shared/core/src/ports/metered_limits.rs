//! The account limits, measured: how long calls wait for their turn of an ESP account's rate,
//! and how often a slot is asked for while all are held. A decorator over any
//! [`AccountLimits`], so the ESP adapters (which only see the port) need know nothing of
//! metrics: the bootstrap wraps the limits it hands them.

use crate::ports::limits::{AccountLimits, EpochMillis, LimitError, Slot};
use crate::ports::metrics::{Measurement, Metrics, name};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// [`AccountLimits`] that record [`name::LIMIT_WAIT`] and [`name::LIMIT_BUSY`].
pub struct MeteredLimits {
    inner: Arc<dyn AccountLimits>,
    metrics: Arc<dyn Metrics>,
}

impl MeteredLimits {
    pub fn new(inner: Arc<dyn AccountLimits>, metrics: Arc<dyn Metrics>) -> Self {
        Self { inner, metrics }
    }
}

/// A limit's key (`<esp>/<account>/<limit>`, e.g. `emarsys/eu/requests`) as dimensions. A key
/// of another shape is counted under `limit` alone.
fn dimensions(m: Measurement, key: &str) -> Measurement {
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(esp), Some(account), Some(limit)) => m
            .with("esp", esp)
            .with("account", account)
            .with("limit", limit),
        _ => m.with("limit", key),
    }
}

#[async_trait]
impl AccountLimits for MeteredLimits {
    async fn reserve(
        &self,
        key: &str,
        per_minute: f64,
        cost: u64,
        now: EpochMillis,
    ) -> Result<Duration, LimitError> {
        let wait = self.inner.reserve(key, per_minute, cost, now).await?;
        if !wait.is_zero() {
            let m = Measurement::seconds(name::LIMIT_WAIT, wait.as_secs_f64());
            self.metrics.record(&[dimensions(m, key)]);
        }
        Ok(wait)
    }

    async fn hold_until(&self, key: &str, until: EpochMillis) -> Result<(), LimitError> {
        self.inner.hold_until(key, until).await
    }

    async fn acquire(
        &self,
        key: &str,
        max: u32,
        owner: &str,
        until: EpochMillis,
        now: EpochMillis,
    ) -> Result<Option<Slot>, LimitError> {
        let slot = self.inner.acquire(key, max, owner, until, now).await?;
        if slot.is_none() {
            self.metrics
                .record(&[dimensions(Measurement::count(name::LIMIT_BUSY, 1), key)]);
        }
        Ok(slot)
    }

    async fn renew(&self, key: &str, slot: &Slot, until: EpochMillis) -> Result<bool, LimitError> {
        self.inner.renew(key, slot, until).await
    }

    async fn release(&self, key: &str, slot: &Slot) -> Result<(), LimitError> {
        self.inner.release(key, slot).await
    }

    async fn holders(&self, key: &str, now: EpochMillis) -> Result<Vec<Slot>, LimitError> {
        self.inner.holders(key, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::MemMetrics;
    use std::sync::Mutex;

    /// Limits that answer with the waits and slots they are given, in order.
    #[derive(Default)]
    struct Scripted {
        waits: Mutex<Vec<Duration>>,
        slots: Mutex<Vec<Option<Slot>>>,
    }

    #[async_trait]
    impl AccountLimits for Scripted {
        async fn reserve(
            &self,
            _: &str,
            _: f64,
            _: u64,
            _: EpochMillis,
        ) -> Result<Duration, LimitError> {
            Ok(self.waits.lock().unwrap().remove(0))
        }
        async fn hold_until(&self, _: &str, _: EpochMillis) -> Result<(), LimitError> {
            Ok(())
        }
        async fn acquire(
            &self,
            _: &str,
            _: u32,
            _: &str,
            _: EpochMillis,
            _: EpochMillis,
        ) -> Result<Option<Slot>, LimitError> {
            Ok(self.slots.lock().unwrap().remove(0))
        }
        async fn renew(&self, _: &str, _: &Slot, _: EpochMillis) -> Result<bool, LimitError> {
            Ok(true)
        }
        async fn release(&self, _: &str, _: &Slot) -> Result<(), LimitError> {
            Ok(())
        }
        async fn holders(&self, _: &str, _: EpochMillis) -> Result<Vec<Slot>, LimitError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn waits_for_a_turn_and_busy_slots_are_counted_under_the_limits_key() {
        let slot = Slot {
            index: 0,
            owner: "o".into(),
            until: 10,
        };
        let inner = Scripted {
            waits: Mutex::new(vec![Duration::ZERO, Duration::from_millis(1500)]),
            slots: Mutex::new(vec![Some(slot.clone()), None]),
        };
        let metrics = Arc::new(MemMetrics::default());
        let limits = MeteredLimits::new(Arc::new(inner), metrics.clone());
        let key = "emarsys/eu/requests";
        assert_eq!(
            limits.reserve(key, 980.0, 1, 0).await.unwrap(),
            Duration::ZERO
        );
        assert!(metrics.recorded().is_empty(), "no wait, nothing counted");
        let wait = limits.reserve(key, 980.0, 1, 0).await.unwrap();
        assert_eq!(wait, Duration::from_millis(1500), "the wait is passed on");
        let got = limits
            .acquire("silverpop/us/requests", 10, "o", 10, 0)
            .await
            .unwrap();
        assert_eq!(got, Some(slot));
        assert_eq!(limits.acquire("odd", 10, "o", 10, 0).await.unwrap(), None);
        let recorded = metrics.recorded();
        assert_eq!(recorded.len(), 2, "{recorded:?}");
        assert_eq!(
            recorded[0],
            Measurement::seconds(name::LIMIT_WAIT, 1.5)
                .with("esp", "emarsys")
                .with("account", "eu")
                .with("limit", "requests")
        );
        assert_eq!(
            recorded[1],
            Measurement::count(name::LIMIT_BUSY, 1).with("limit", "odd")
        );
    }
}
