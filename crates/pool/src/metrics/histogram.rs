//! A fixed log-scale latency histogram on atomics: powers of two from 1 µs to ~18 min.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Buckets: `< 1 µs`, `< 2 µs`, `< 4 µs`, … `< 2^30 µs`, then everything longer.
const BUCKETS: usize = 32;

/// Lock-free recorder of durations; recording is three relaxed adds and a max.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            count: self.count.load(Relaxed),
            sum: Duration::from_nanos(self.sum_ns.load(Relaxed)),
            max: Duration::from_nanos(self.max_ns.load(Relaxed)),
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    let us = ns / 1_000;
    // Bucket k holds [2^(k-1), 2^k) µs; bucket 0 holds < 1 µs.
    let k = (u64::BITS - us.leading_zeros()) as usize;
    k.min(BUCKETS - 1)
}

/// A point-in-time copy of a latency histogram (wait time or use time).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    buckets: [u64; BUCKETS],
    /// Samples recorded.
    pub count: u64,
    /// Sum of all samples.
    pub sum: Duration,
    /// Largest sample.
    pub max: Duration,
}

impl HistogramSnapshot {
    /// `(upper bound, count)` per bucket, upper bounds exclusive and doubling from 1 µs;
    /// the last bucket's bound is `Duration::MAX` (everything longer than ~18 min).
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.buckets.iter().enumerate().map(|(k, &n)| (upper_bound(k), n))
    }

    /// Mean of the samples, `None` when there are none.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(nanos(self.sum) / self.count))
    }

    /// An upper bound for quantile `q` (in [0, 1]): the bound of the bucket holding it,
    /// capped at the largest sample. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        // Rank of the sample, 1-based; float to int saturates.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (k, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(upper_bound(k).min(self.max));
            }
        }
        Some(self.max)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn upper_bound(k: usize) -> Duration {
    if k + 1 >= BUCKETS { Duration::MAX } else { Duration::from_micros(1 << k) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_double_from_one_microsecond() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(999), 0);
        assert_eq!(bucket_of(1_000), 1);
        assert_eq!(bucket_of(1_999), 1);
        assert_eq!(bucket_of(2_000), 2);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_and_mean() {
        let h = Histogram::new();
        assert_eq!(h.snapshot().quantile(0.5), None);
        assert_eq!(h.snapshot().mean(), None);
        for _ in 0..90 {
            h.record(Duration::from_micros(3)); // bucket < 4 µs
        }
        for _ in 0..10 {
            h.record(Duration::from_millis(5)); // bucket < 8192 µs
        }
        let s = h.snapshot();
        assert_eq!(s.count, 100);
        assert_eq!(s.quantile(0.5), Some(Duration::from_micros(4)));
        assert_eq!(s.quantile(0.9), Some(Duration::from_micros(4)));
        assert_eq!(s.quantile(0.95), Some(Duration::from_millis(5)), "capped at the max");
        assert_eq!(s.max, Duration::from_millis(5));
        assert_eq!(s.mean(), Some((Duration::from_micros(3) * 90 + Duration::from_millis(5) * 10) / 100));
        assert_eq!(s.buckets().map(|(_, n)| n).sum::<u64>(), 100);
    }

    proptest! {
        #[test]
        fn every_sample_is_under_its_bucket_bound(ns in 0u64..u64::MAX / 2) {
            let k = bucket_of(ns);
            prop_assert!(Duration::from_nanos(ns) < upper_bound(k));
            if k > 0 {
                prop_assert!(Duration::from_nanos(ns) >= upper_bound(k - 1));
            }
        }
    }
}
