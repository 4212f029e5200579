//! Hits and misses over a sliding window of the cache's clock: a ring of buckets per
//! shard, each counting the reads of one tenth of the window.
//!
//! A read adds to the bucket of its time; a bucket is reset when the ring comes round to
//! it again. Summing the current bucket and the ten before it covers the last `window`
//! and at most a tenth more, whatever the read rate: no read is ever counted in the wrong
//! bucket, and an idle shard's old buckets are left out by their time, not by a sweep.

use std::time::Duration;

use super::entry::Now;

/// Buckets a window is divided into.
pub(crate) const BUCKETS: u64 = 10;
/// Slots in the ring: the window's buckets and the current, partly elapsed one.
const SLOTS: usize = BUCKETS as usize + 1;

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    /// Which bucket of the clock's time this slot counts (`time / width`).
    epoch: u64,
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
pub(crate) struct HitWindow {
    /// Nanoseconds per bucket.
    width: u64,
    /// Where the current bucket ends (exclusive), on the cache's clock.
    end: u64,
    /// The current slot.
    slot: usize,
    ring: [Bucket; SLOTS],
}

impl HitWindow {
    /// `window` must be at least [`BUCKETS`] nanoseconds (the builder checks).
    pub(crate) fn new(window: Duration) -> Self {
        let width = (mltb_clock::nanos(window) / BUCKETS).max(1);
        Self { width, end: width, slot: 0, ring: [Bucket::default(); SLOTS] }
    }

    #[inline]
    pub(crate) fn record(&mut self, now: &Now<'_>, hit: bool) {
        let t = now.nanos();
        if t >= self.end {
            self.advance(t);
        }
        let b = &mut self.ring[self.slot];
        if hit {
            b.hits += 1;
        } else {
            b.misses += 1;
        }
    }

    /// Moves to the bucket of time `t` (once a bucket, so a division is affordable).
    #[cold]
    fn advance(&mut self, t: u64) {
        let epoch = t / self.width;
        self.slot = (epoch % SLOTS as u64) as usize;
        self.end = epoch.saturating_add(1).saturating_mul(self.width);
        let b = &mut self.ring[self.slot];
        if b.epoch != epoch {
            *b = Bucket { epoch, hits: 0, misses: 0 };
        }
    }

    /// Hits and misses of the buckets that end within the window before `t`.
    pub(crate) fn sum(&self, t: u64) -> (u64, u64) {
        let epoch = t / self.width;
        self.ring
            .iter()
            .filter(|b| b.epoch <= epoch && epoch - b.epoch <= BUCKETS)
            .fold((0, 0), |(h, m), b| (h + b.hits, m + b.misses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, FakeClock};

    fn read(w: &mut HitWindow, clock: &FakeClock, hits: u64, misses: u64) {
        for _ in 0..hits {
            w.record(&Now::new(clock), true);
        }
        for _ in 0..misses {
            w.record(&Now::new(clock), false);
        }
    }

    #[test]
    fn counts_the_last_window_and_forgets_older_reads() {
        let clock = FakeClock::new();
        let mut w = HitWindow::new(Duration::from_secs(10));
        read(&mut w, &clock, 5, 5);
        assert_eq!(w.sum(0), (5, 5));
        clock.advance(Duration::from_secs(5));
        read(&mut w, &clock, 3, 0);
        assert_eq!(w.sum(clock.now_nanos()), (8, 5));
        // 10.5 s after the first reads they are still within the window and a tenth.
        clock.advance(Duration::from_millis(5_500));
        assert_eq!(w.sum(clock.now_nanos()), (8, 5));
        // At 11 s they have left it; the reads at 5 s have not.
        clock.advance(Duration::from_millis(500));
        assert_eq!(w.sum(clock.now_nanos()), (3, 0));
        // Long idle: everything has left, and a new read starts afresh in a reused slot.
        clock.advance(Duration::from_secs(3600));
        assert_eq!(w.sum(clock.now_nanos()), (0, 0));
        read(&mut w, &clock, 0, 2);
        assert_eq!(w.sum(clock.now_nanos()), (0, 2));
    }
}
