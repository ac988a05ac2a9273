//! Exact-enough duplicate detection for tens of millions of ids in a bounded memory.
//!
//! Each id is reduced to its 64-bit xxh3 hash and kept in a linear-probing table of bare `u64`s
//! at a load of at most 0.85, with any number of slots (not a power of two: the home slot is a
//! multiply-shift of the hash). The validation reads a drop once, so the table starts at a
//! guess and doubles: a 10-million-row audience ends in 158 MB (237 MB while the last doubling
//! copies), against the 1 GB a `HashSet<String>` would take. Two different ids
//! collide with probability about n²/2⁶⁵ (3·10⁻⁶ for 10 million rows); the hash is seedless and
//! stable, so every pass over a drop makes the same decisions.

use xxhash_rust::xxh3::xxh3_64;

const MAX_LOAD_NUM: usize = 17;
const MAX_LOAD_DEN: usize = 20;

#[derive(Debug)]
pub struct IdSet {
    slots: Vec<u64>,
    len: usize,
}

impl IdSet {
    /// A set that holds `expected` ids without growing.
    pub fn with_capacity(expected: usize) -> Self {
        let cap = Self::with_capacity_slots(expected);
        Self {
            slots: zeroed_table(cap),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ids the table holds without passing its maximum load.
    pub fn capacity(&self) -> usize {
        self.slots.len() * MAX_LOAD_NUM / MAX_LOAD_DEN
    }

    /// Bytes held by the table.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u64>()
    }

    /// The most ids a set starting at `start` ids can take while its memory, the old and the
    /// new table together while it doubles, stays within `budget` bytes.
    pub fn max_ids_within(start: usize, budget: u64) -> u64 {
        // Doubling holds both tables: one slot's bytes in the old, two in the new.
        const DOUBLING_BYTES_PER_SLOT: u64 = 3 * std::mem::size_of::<u64>() as u64;
        let mut slots = Self::with_capacity_slots(start) as u64;
        loop {
            let ids = slots * MAX_LOAD_NUM as u64 / MAX_LOAD_DEN as u64;
            if slots * DOUBLING_BYTES_PER_SLOT > budget {
                return ids;
            }
            slots *= 2;
        }
    }

    fn with_capacity_slots(expected: usize) -> usize {
        expected.max(16) * MAX_LOAD_DEN / MAX_LOAD_NUM + 1
    }

    /// Adds `id`; false when it was already there.
    pub fn insert(&mut self, id: &[u8]) -> bool {
        self.insert_hash(Self::hash(id))
    }

    /// The key an id is kept under (never 0, which marks an empty slot).
    pub fn hash(id: &[u8]) -> u64 {
        xxh3_64(id).max(1)
    }

    /// Starts loading the slot `h` will probe first, so a later [`insert_hash`](Self::insert_hash)
    /// finds it in cache: callers that know a few keys ahead overlap the memory latency.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        let i = home(h, self.slots.len());
        prefetch_read(self.slots[i..].as_ptr());
    }

    /// [`insert`](Self::insert) by key ([`hash`](Self::hash)).
    pub fn insert_hash(&mut self, h: u64) -> bool {
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow();
        }
        let cap = self.slots.len();
        let mut i = home(h, cap);
        loop {
            let s = self.slots[i];
            if s == 0 {
                self.slots[i] = h;
                self.len += 1;
                return true;
            }
            if s == h {
                return false;
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    /// Doubles the table: the validation reads a drop once, so the count is not known ahead.
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.slots = zeroed_table(old.len() * 2);
        let cap = self.slots.len();
        for h in old.into_iter().filter(|&h| h != 0) {
            let mut i = home(h, cap);
            while self.slots[i] != 0 {
                i = if i + 1 == cap { 0 } else { i + 1 };
            }
            self.slots[i] = h;
        }
    }
}

#[inline]
fn prefetch_read(p: *const u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast::<i8>(), core::arch::x86_64::_MM_HINT_T0)
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above; `prfm` only warms the cache.
    unsafe {
        core::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags))
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// A zeroed table. Large tables ask Linux for transparent huge pages: every insert is a random
/// access, and with 4 KiB pages most of them also miss the TLB (see the parse benchmark).
fn zeroed_table(cap: usize) -> Vec<u64> {
    let v = vec![0u64; cap];
    #[cfg(target_os = "linux")]
    if v.len() * 8 >= 4 << 20 {
        let start = v.as_ptr() as usize;
        let page = 2 << 20;
        let aligned = start.div_ceil(page) * page;
        let end = start + v.len() * 8;
        if end > aligned {
            // SAFETY: the range lies inside the vector's own allocation; MADV_HUGEPAGE is only
            // advice and changes no contents. A failure is harmless and ignored.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    v
}

/// Maps a hash uniformly onto `0..cap` (Lemire's multiply-shift).
fn home(h: u64, cap: usize) -> usize {
    ((h as u128 * cap as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_and_grows_when_underestimated() {
        let mut s = IdSet::with_capacity(4);
        for i in 0..10_000u32 {
            assert!(s.insert(format!("C{i}").as_bytes()), "first C{i}");
        }
        for i in (0..10_000u32).step_by(7) {
            assert!(!s.insert(format!("C{i}").as_bytes()), "second C{i}");
        }
        assert_eq!(s.len(), 10_000);
    }

    #[test]
    fn the_ids_a_memory_budget_holds_count_both_tables_of_a_doubling() {
        let start = 1 << 20;
        let first = IdSet::with_capacity(start);
        let slots = first.memory_bytes() as u64 / 8;
        // Too little to double even once: the first table's ids.
        assert_eq!(IdSet::max_ids_within(start, 0), first.capacity() as u64);
        assert_eq!(
            IdSet::max_ids_within(start, slots * 24 - 1),
            first.capacity() as u64
        );
        // Exactly one doubling's worth: twice the slots, and so (near) twice the ids.
        let once = IdSet::max_ids_within(start, slots * 24);
        assert_eq!(once, slots * 2 * MAX_LOAD_NUM as u64 / MAX_LOAD_DEN as u64);
        // A table grown to that many ids never held more than the budget.
        let mut s = IdSet::with_capacity(start);
        let mut peak = 0;
        for i in 0..once {
            let before = s.memory_bytes();
            s.insert(&i.to_le_bytes());
            if s.memory_bytes() != before {
                peak = peak.max(before + s.memory_bytes());
            }
        }
        assert!(peak as u64 <= slots * 24, "{peak}");
        assert_eq!(s.len() as u64, once);
    }

    #[test]
    fn sized_up_front_it_stays_within_load() {
        let s = IdSet::with_capacity(10_000_000);
        assert!(s.memory_bytes() < 95_000_000, "{}", s.memory_bytes());
    }
}
