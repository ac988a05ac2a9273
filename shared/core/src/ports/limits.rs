//! Limits an ESP account sets for the whole deployment (requests or addresses per minute,
//! concurrent requests, sessions, pending uploads, tag fields), held where every function
//! instance sees them: a DynamoDB item per limit in AWS, memory in the one local process.
//!
//! Two primitives cover every ESP:
//! - a **rate**: a per-minute allowance handed out as reservations in order of arrival (GCRA:
//!   one "theoretical arrival time" per limit, moved forward by each reservation), so callers
//!   of every instance share it fairly and together never exceed it;
//! - **slots**: `max` numbered leases per limit, each held by one owner until it is released or
//!   its lease ends (so a crashed holder frees its slot by itself).

use crate::ports::backend::BackendError;
use async_trait::async_trait;
use std::time::Duration;

/// Milliseconds since the Unix epoch: limits are shared between machines, so they run on wall
/// time, not on a process's monotonic clock.
pub type EpochMillis = i64;

/// A slot lease held by an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub index: u32,
    pub owner: String,
    pub until: EpochMillis,
}

#[derive(Debug, thiserror::Error)]
#[error("account limit {key}")]
pub struct LimitError {
    pub key: String,
    #[source]
    pub source: BackendError,
}

impl LimitError {
    pub fn is_retryable(&self) -> bool {
        self.source.retryable
    }
}

#[async_trait]
pub trait AccountLimits: Send + Sync {
    /// Reserves `cost` units of the allowance `key` (`per_minute` units a minute) and returns how
    /// long the caller must wait before using them (zero when the allowance has room now).
    async fn reserve(
        &self,
        key: &str,
        per_minute: f64,
        cost: u64,
        now: EpochMillis,
    ) -> Result<Duration, LimitError>;

    /// Nothing more of `key` before `until` (the ESP said its window is spent).
    async fn hold_until(&self, key: &str, until: EpochMillis) -> Result<(), LimitError>;

    /// One of the `max` slots of `key` for `owner` until `until`: the one it already holds, or a
    /// free (or expired) one; `None` when all are held by others.
    async fn acquire(
        &self,
        key: &str,
        max: u32,
        owner: &str,
        until: EpochMillis,
        now: EpochMillis,
    ) -> Result<Option<Slot>, LimitError>;

    /// Extends a held slot's lease; false when the owner no longer holds it.
    async fn renew(&self, key: &str, slot: &Slot, until: EpochMillis) -> Result<bool, LimitError>;

    /// Frees a slot the owner holds (a slot held by someone else is left alone).
    async fn release(&self, key: &str, slot: &Slot) -> Result<(), LimitError>;

    /// The slots of `key` held now (leases not yet ended), for reports and fair sharing.
    async fn holders(&self, key: &str, now: EpochMillis) -> Result<Vec<Slot>, LimitError>;
}

/// The wait a rate reservation implies, computed the same way by every implementation:
/// `start = max(tat, now)`, the caller waits `start - now`, and the allowance moves on to
/// `start + cost / rate`. Returns (wait, new tat).
pub fn gcra(tat: Option<f64>, per_minute: f64, cost: u64, now: EpochMillis) -> (Duration, f64) {
    let now = now as f64;
    let interval_ms = 60_000.0 / per_minute.max(f64::MIN_POSITIVE);
    let start = tat.unwrap_or(now).max(now);
    let next = start + interval_ms * cost as f64;
    let wait_ms = (start - now).max(0.0);
    (Duration::from_micros((wait_ms * 1000.0) as u64), next)
}

/// Wall time now, in epoch milliseconds.
pub fn epoch_millis_now() -> EpochMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_queue_at_the_rate_and_never_wait_when_idle() {
        // 600 a minute: one every 100 ms.
        let (w, tat) = gcra(None, 600.0, 1, 1_000);
        assert_eq!(w, Duration::ZERO);
        assert_eq!(tat, 1_100.0);
        let (w, tat) = gcra(Some(tat), 600.0, 1, 1_000);
        assert_eq!(w, Duration::from_millis(100));
        let (w, _) = gcra(Some(tat), 600.0, 5, 1_000);
        assert_eq!(w, Duration::from_millis(200));
        // Long idle: the allowance does not bank up a burst.
        let (w, tat) = gcra(Some(1_000.0), 600.0, 10, 60_000);
        assert_eq!(w, Duration::ZERO);
        assert_eq!(tat, 61_000.0);
    }
}
