//! [`AccountLimits`] in one process (local mode, tests): the same rules as the DynamoDB items (GCRA
//! reservations, leased slots), held in memory and shared by every worker of the process.

use async_trait::async_trait;
use espbridge_core::ports::limits::{AccountLimits, EpochMillis, LimitError, Slot, gcra};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Default)]
struct Books {
    /// key → theoretical arrival time (epoch ms).
    rates: HashMap<String, f64>,
    /// key → slot index → lease.
    slots: HashMap<String, BTreeMap<u32, Slot>>,
}

/// In-process limits; clones share them.
#[derive(Debug, Clone, Default)]
pub struct MemoryLimits(Arc<Mutex<Books>>);

impl MemoryLimits {
    pub fn new() -> Self {
        Self::default()
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        // Every update below leaves the books consistent, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl AccountLimits for MemoryLimits {
    async fn reserve(
        &self,
        key: &str,
        per_minute: f64,
        cost: u64,
        now: EpochMillis,
    ) -> Result<Duration, LimitError> {
        let mut books = self.books();
        let (wait, next) = gcra(books.rates.get(key).copied(), per_minute, cost, now);
        books.rates.insert(key.to_owned(), next);
        Ok(wait)
    }

    async fn hold_until(&self, key: &str, until: EpochMillis) -> Result<(), LimitError> {
        let mut books = self.books();
        let tat = books.rates.entry(key.to_owned()).or_insert(until as f64);
        *tat = tat.max(until as f64);
        Ok(())
    }

    async fn acquire(
        &self,
        key: &str,
        max: u32,
        owner: &str,
        until: EpochMillis,
        now: EpochMillis,
    ) -> Result<Option<Slot>, LimitError> {
        let mut books = self.books();
        let slots = books.slots.entry(key.to_owned()).or_default();
        if let Some(mine) = slots.values_mut().find(|s| s.owner == owner) {
            mine.until = until;
            return Ok(Some(mine.clone()));
        }
        let free = (0..max).find(|i| slots.get(i).is_none_or(|s| s.until < now));
        Ok(free.map(|index| {
            let slot = Slot {
                index,
                owner: owner.to_owned(),
                until,
            };
            slots.insert(index, slot.clone());
            slot
        }))
    }

    async fn renew(&self, key: &str, slot: &Slot, until: EpochMillis) -> Result<bool, LimitError> {
        let mut books = self.books();
        match books
            .slots
            .get_mut(key)
            .and_then(|s| s.get_mut(&slot.index))
        {
            Some(held) if held.owner == slot.owner => {
                held.until = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &str, slot: &Slot) -> Result<(), LimitError> {
        let mut books = self.books();
        if let Some(slots) = books.slots.get_mut(key)
            && slots
                .get(&slot.index)
                .is_some_and(|s| s.owner == slot.owner)
        {
            slots.remove(&slot.index);
        }
        Ok(())
    }

    async fn holders(&self, key: &str, now: EpochMillis) -> Result<Vec<Slot>, LimitError> {
        Ok(self
            .books()
            .slots
            .get(key)
            .map(|s| s.values().filter(|s| s.until >= now).cloned().collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::testkit::run_limits_contract;

    #[tokio::test]
    async fn memory_limits_pass_the_limits_contract() {
        run_limits_contract(Arc::new(MemoryLimits::new()), "memory").await;
    }
}
