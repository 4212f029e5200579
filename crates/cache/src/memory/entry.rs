//! One cached value with its weight and deadline.

use crate::Clock;

use super::stats::Counters;

/// The deadline of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) struct Entry<V> {
    pub(crate) value: V,
    pub(crate) weight: usize,
    /// When the entry expires, in nanoseconds on the cache's clock; [`NEVER`] for no TTL.
    /// A `u64` rather than an `Option<Instant>`: half the size, and compared without
    /// converting the clock's reading.
    pub(crate) expires: u64,
}

impl<V> Entry<V> {
    /// Reads the clock only for an entry with a TTL.
    #[inline]
    pub(crate) fn is_expired(&self, clock: &dyn Clock) -> bool {
        self.expires != NEVER && clock.now_nanos() >= self.expires
    }

    /// Whether the entry has expired at `now` (nanoseconds on the cache's clock).
    #[inline]
    pub(crate) fn is_expired_at(&self, now: u64) -> bool {
        self.expires != NEVER && now >= self.expires
    }
}

/// Counts an entry pushed out for room: as expired if it already was, else as size.
#[inline]
pub(crate) fn count_eviction<V>(e: &Entry<V>, clock: &dyn Clock, c: &mut Counters) {
    if e.is_expired(clock) {
        c.evictions.expired += 1;
    } else {
        c.evictions.size += 1;
    }
}
