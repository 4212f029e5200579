//! Built-in counters, cheap enough to keep always on.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::FlushReason;

/// A snapshot of a batcher's counters, from [`Batcher::stats`](crate::Batcher::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Items accepted into the queue.
    pub submitted: u64,
    /// Items handed to the handler.
    pub dispatched: u64,
    /// Handler calls made.
    pub batches: u64,
    /// Handler calls that returned an error or the wrong number of results.
    pub failed_batches: u64,
    /// Handler calls that panicked.
    pub panicked_batches: u64,
    /// Items accepted and not yet handed to the handler.
    pub queue_depth: usize,
    /// Handler calls in flight.
    pub in_flight: usize,
    /// Batches cut for each [`FlushReason`], indexed in [`FlushReason::ALL`] order.
    pub by_reason: [u64; 5],
}

impl Stats {
    /// Batches cut for `reason`.
    pub fn batches_for(&self, reason: FlushReason) -> u64 {
        self.by_reason[reason.index()]
    }

    /// Items per handler call on average, or 0 before the first call.
    pub fn mean_batch_size(&self) -> f64 {
        if self.batches == 0 { 0.0 } else { self.dispatched as f64 / self.batches as f64 }
    }
}

/// The live counters, shared by the handles and the worker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) submitted: AtomicU64,
    pub(crate) dispatched: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) panicked_batches: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) by_reason: [AtomicU64; 5],
}

impl Counters {
    pub(crate) fn snapshot(&self, queue_depth: usize) -> Stats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            submitted: load(&self.submitted),
            dispatched: load(&self.dispatched),
            batches: load(&self.batches),
            failed_batches: load(&self.failed_batches),
            panicked_batches: load(&self.panicked_batches),
            queue_depth,
            in_flight: usize::try_from(load(&self.in_flight)).unwrap_or(usize::MAX),
            by_reason: self.by_reason.each_ref().map(load),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_batch_size_and_reasons() {
        let c = Counters::default();
        assert_eq!(c.snapshot(0).mean_batch_size(), 0.0);
        Counters::add(&c.batches, 2);
        Counters::add(&c.dispatched, 5);
        Counters::add(&c.by_reason[FlushReason::Idle.index()], 2);
        let s = c.snapshot(3);
        assert_eq!(s.mean_batch_size(), 2.5);
        assert_eq!(s.batches_for(FlushReason::Idle), 2);
        assert_eq!(s.batches_for(FlushReason::Full), 0);
        assert_eq!(s.queue_depth, 3);
    }
}
