//! One cached value with its weight and deadline.

use std::time::Instant;

use crate::clock::Clock;

use super::stats::Counters;

#[derive(Debug)]
pub(crate) struct Entry<V> {
    pub(crate) value: V,
    pub(crate) weight: usize,
    pub(crate) expires: Option<Instant>,
}

impl<V> Entry<V> {
    #[inline]
    pub(crate) fn is_expired(&self, clock: &dyn Clock) -> bool {
        self.expires.is_some_and(|at| clock.now() >= at)
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
