//! An ESP account's limits as its adapter uses them, over the deployment-wide
//! [`AccountLimits`] port: a [`RateGate`] (requests or addresses per minute) and a [`SlotPool`]
//! (concurrent requests, sessions, pending uploads, tag fields). Whatever the number of function
//! instances, together they stay within the account's limits.

mod aimd;
mod memory;

pub use aimd::{Aimd, Change};
pub use memory::MemoryLimits;

use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use espbridge_core::ports::limits::{
    AccountLimits, EpochMillis, LimitError, Slot, epoch_millis_now,
};
use espbridge_core::service::chain;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn unavailable(esp: EspKind, e: LimitError) -> EspError {
    EspError::Transient {
        esp,
        detail: format!("account limits unavailable: {}", chain(&e)),
    }
}

fn plus(now: EpochMillis, d: Duration) -> EpochMillis {
    now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Longest wait for a turn of a [`RateGate`].
pub const MAX_TURN_WAIT: Duration = Duration::from_secs(300);

/// A per-minute allowance of one account, shared by the deployment. Reservations are granted in
/// order of arrival, so concurrent campaigns of one account take turns call by call.
#[derive(Clone)]
pub struct RateGate {
    esp: EspKind,
    limits: Arc<dyn AccountLimits>,
    key: String,
    /// Units a minute, as `f64` bits (the pace can be lowered while running).
    per_minute: Arc<AtomicU64>,
}

impl RateGate {
    pub fn new(esp: EspKind, limits: Arc<dyn AccountLimits>, key: String, per_minute: f64) -> Self {
        Self {
            esp,
            limits,
            key,
            per_minute: Arc::new(AtomicU64::new(per_minute.to_bits())),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn per_minute(&self) -> f64 {
        f64::from_bits(self.per_minute.load(Ordering::Relaxed))
    }

    /// Sets the pace (units a minute) for this instance's reservations.
    pub fn set_per_minute(&self, per_minute: f64) {
        self.per_minute
            .store(per_minute.max(1.0).to_bits(), Ordering::Relaxed);
    }

    /// Waits until `cost` units may be used; a turn further off than [`MAX_TURN_WAIT`] ends the
    /// call with a retryable error instead (no wait without a deadline).
    pub async fn acquire(&self, cost: u64) -> Result<(), EspError> {
        let wait = self
            .limits
            .reserve(&self.key, self.per_minute(), cost, epoch_millis_now())
            .await
            .map_err(|e| unavailable(self.esp, e))?;
        if wait > MAX_TURN_WAIT {
            return Err(EspError::Transient {
                esp: self.esp,
                detail: format!(
                    "{}: the allowance is booked {} s ahead",
                    self.key,
                    wait.as_secs()
                ),
            });
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Nothing more before `wait` from now, for every instance (the ESP said the window is spent).
    pub async fn hold_for(&self, wait: Duration) -> Result<(), EspError> {
        self.limits
            .hold_until(&self.key, plus(epoch_millis_now(), wait))
            .await
            .map_err(|e| unavailable(self.esp, e))
    }
}

/// `max` slots of one account, each leased to one holder at a time across the deployment.
#[derive(Clone)]
pub struct SlotPool {
    esp: EspKind,
    limits: Arc<dyn AccountLimits>,
    key: String,
    max: u32,
    /// How long a slot stays held without renewal (a crashed holder's slot frees itself).
    lease: Duration,
    /// This pool's instance, so each holder's name is unique.
    instance: u64,
    next: Arc<AtomicU64>,
}

impl SlotPool {
    pub fn new(
        esp: EspKind,
        limits: Arc<dyn AccountLimits>,
        key: String,
        max: u32,
        lease: Duration,
    ) -> Self {
        Self {
            esp,
            limits,
            key,
            max: max.max(1),
            lease,
            instance: rand::random(),
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// A holder name unique to this call.
    pub fn fresh_owner(&self) -> String {
        format!(
            "{:016x}-{}",
            self.instance,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The slot `owner` holds or a free one, until `until`, without waiting.
    pub async fn try_acquire(
        &self,
        owner: &str,
        until: EpochMillis,
    ) -> Result<Option<SlotGuard>, EspError> {
        self.try_acquire_at(owner, until, epoch_millis_now()).await
    }

    /// [`try_acquire`](Self::try_acquire) judged at `now` rather than the wall clock: for leases
    /// that follow the deployment's clock (a tag field held until a send time has passed).
    pub async fn try_acquire_at(
        &self,
        owner: &str,
        until: EpochMillis,
        now: EpochMillis,
    ) -> Result<Option<SlotGuard>, EspError> {
        let slot = self
            .limits
            .acquire(&self.key, self.max, owner, until, now)
            .await
            .map_err(|e| unavailable(self.esp, e))?;
        Ok(slot.map(|slot| SlotGuard {
            pool: self.clone(),
            slot: Some(slot),
        }))
    }

    /// Holds a slot for `owner` for one lease, waiting up to `wait` for one to free.
    pub async fn acquire(&self, owner: &str, wait: Duration) -> Result<SlotGuard, EspError> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            let until = plus(epoch_millis_now(), self.lease);
            if let Some(guard) = self.try_acquire(owner, until).await? {
                return Ok(guard);
            }
            if started.elapsed() >= wait {
                return Err(EspError::Transient {
                    esp: self.esp,
                    detail: format!(
                        "all {} slots of {} stayed busy for {} s",
                        self.max,
                        self.key,
                        wait.as_secs()
                    ),
                });
            }
            let jitter = Duration::from_millis(rand::random_range(0..=pause.as_millis() as u64));
            tokio::time::sleep(pause + jitter).await;
            pause = (pause * 3 / 2).min(Duration::from_millis(500));
        }
    }

    /// Who holds slots now.
    pub async fn holders(&self) -> Result<Vec<Slot>, EspError> {
        self.limits
            .holders(&self.key, epoch_millis_now())
            .await
            .map_err(|e| unavailable(self.esp, e))
    }
}

/// A held slot. [`release`](Self::release) frees it; dropped unreleased, it is freed in the
/// background (or when its lease ends).
pub struct SlotGuard {
    pool: SlotPool,
    slot: Option<Slot>,
}

impl SlotGuard {
    pub fn index(&self) -> u32 {
        self.slot.as_ref().map_or(0, |s| s.index)
    }

    /// Extends the lease by the pool's lease time; false when the slot was lost (its lease
    /// ended and another holder took it).
    pub async fn renew(&mut self) -> Result<bool, EspError> {
        let Some(slot) = &mut self.slot else {
            return Ok(false);
        };
        let until = plus(epoch_millis_now(), self.pool.lease);
        let kept = self
            .pool
            .limits
            .renew(&self.pool.key, slot, until)
            .await
            .map_err(|e| unavailable(self.pool.esp, e))?;
        if kept {
            slot.until = until;
        }
        Ok(kept)
    }

    /// Keeps the slot past the guard (a reservation that outlives the call, such as a tag
    /// field held until a send time); it frees itself when its lease ends.
    pub fn keep(mut self) -> Slot {
        self.slot.take().unwrap_or(Slot {
            index: 0,
            owner: String::new(),
            until: 0,
        })
    }

    pub async fn release(mut self) {
        if let Some(slot) = self.slot.take()
            && let Err(e) = self.pool.limits.release(&self.pool.key, &slot).await
        {
            tracing::debug!(key = %self.pool.key, error = %chain(&e), "slot left to its lease");
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let (limits, key) = (Arc::clone(&self.pool.limits), self.pool.key.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = limits.release(&key, &slot).await;
            });
        }
    }
}
