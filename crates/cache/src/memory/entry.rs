//! One cached value with its weight and deadline, and the lazily read time of one
//! operation.

use std::cell::Cell;

use crate::Clock;

use super::stats::Counters;

/// The deadline of an entry that never expires.
/// Deadlines stop below 2^62 ns (146 years on the cache's clock), so that the arena can
/// keep a node's marks in the top two bits of its deadline.
pub(crate) const NEVER: u64 = u64::MAX >> 2;

#[derive(Debug)]
pub(crate) struct Entry<V> {
    pub(crate) value: V,
    pub(crate) weight: usize,
    /// When the entry expires, in nanoseconds on the cache's clock; [`NEVER`] for no TTL.
    /// A `u64` is half an `Instant` and compares with the clock's reading as it is.
    pub(crate) expires: u64,
}

impl<V> Entry<V> {
    /// Reads the clock only for an entry with a TTL.
    #[inline]
    pub(crate) fn is_expired(&self, now: &Now<'_>) -> bool {
        is_expired(self.expires, now)
    }
}

/// Whether a deadline of `expires` (nanoseconds on the cache's clock, [`NEVER`] for no
/// TTL) has passed at `now`, reading the clock only for a real deadline.
#[inline]
pub(crate) fn is_expired(expires: u64, now: &Now<'_>) -> bool {
    expires != NEVER && now.nanos() >= expires
}

/// The time of one operation, read from the cache's clock when first needed and then
/// reused: an operation reads the clock at most once, and not at all if nothing needs it.
#[derive(Debug)]
pub(crate) struct Now<'a> {
    clock: &'a dyn Clock,
    at: Cell<Option<u64>>,
}

impl<'a> Now<'a> {
    #[inline]
    pub(crate) fn new(clock: &'a dyn Clock) -> Self {
        Self { clock, at: Cell::new(None) }
    }

    /// Another `Now` of the same operation: the same clock, and the time if this one
    /// has read it (so that the operation still reads the clock at most once).
    #[inline]
    pub(crate) fn carried(&self) -> Self {
        Self { clock: self.clock, at: Cell::new(self.at.get()) }
    }

    /// Nanoseconds on the cache's clock at this operation.
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        match self.at.get() {
            Some(at) => at,
            None => {
                let at = self.clock.now_nanos();
                self.at.set(Some(at));
                at
            }
        }
    }
}

/// Counts an entry pushed out for room: as expired if it already was, else as size.
#[inline]
pub(crate) fn count_eviction<V>(e: &Entry<V>, now: &Now<'_>, c: &mut Counters) {
    if e.is_expired(now) {
        c.evictions.expired += 1;
    } else {
        c.evictions.size += 1;
    }
}
