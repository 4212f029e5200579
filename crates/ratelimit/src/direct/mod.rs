//! [`DirectLimiter`]: one bucket for everything.

use crate::gcra::{Bucket, Gcra};
use crate::{Clock, Denied, MonotonicClock, Quota, RateLimiter};

/// One GCRA bucket shared by all callers; a check is one atomic compare-and-swap.
///
/// ```
/// use mltb_ratelimit::{DirectLimiter, FakeClock, RateLimiter};
/// use std::time::Duration;
///
/// let clock = FakeClock::new();
/// let limiter = DirectLimiter::with_clock("1/s".parse()?, clock.clone());
/// assert!(limiter.check(&()).is_ok());
/// let wait = limiter.check(&()).unwrap_err().retry_after().unwrap();
/// assert_eq!(wait, Duration::from_secs(1));
/// clock.advance(wait);
/// assert!(limiter.check(&()).is_ok());
/// # Ok::<(), mltb_ratelimit::Error>(())
/// ```
#[derive(Debug)]
pub struct DirectLimiter<C = MonotonicClock> {
    gcra: Gcra,
    quota: Quota,
    bucket: Bucket,
    clock: C,
}

impl DirectLimiter {
    /// A limiter for `quota` on the default clock, starting full.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, MonotonicClock::new())
    }
}

impl<C: Clock> DirectLimiter<C> {
    /// A limiter for `quota` reading time from `clock`, starting full.
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self { gcra: Gcra::new(&quota), quota, bucket: Bucket::default(), clock }
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Cells a check could take right now.
    pub fn remaining(&self) -> u32 {
        self.gcra.remaining(&self.bucket, self.clock.now_nanos())
    }
}

impl<C: Clock> RateLimiter for DirectLimiter<C> {
    type Key = ();

    #[inline]
    fn check_n(&self, _key: &(), n: u32) -> Result<(), Denied> {
        self.gcra.check_n(&self.bucket, self.clock.now_nanos(), n)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::{FakeClock, RateLimiterExt, TokioClock};

    fn quota(rate: u32, period_nanos: u64, burst: u32) -> Quota {
        Quota::new(NonZeroU32::new(rate).unwrap(), Duration::from_nanos(period_nanos))
            .unwrap()
            .allow_burst(NonZeroU32::new(burst).unwrap())
    }

    proptest! {
        /// In every window [a, b] of the run, admitted cells <= burst + rate * (b - a) / period.
        #[test]
        fn never_admits_more_than_burst_plus_rate_times_t(
            rate in 1u32..50,
            period_nanos in 1u64..5_000_000_000,
            burst in 1u32..20,
            steps in proptest::collection::vec((0u64..400_000_000, 1u32..5), 1..120),
        ) {
            let q = quota(rate, period_nanos, burst);
            let clock = FakeClock::new();
            let limiter = DirectLimiter::with_clock(q, clock.clone());
            let mut admitted: Vec<(u64, u32)> = Vec::new();
            for (gap, n) in steps {
                clock.advance_nanos(gap);
                if limiter.check_n(&(), n).is_ok() {
                    admitted.push((clock.now_nanos(), n));
                }
            }
            for i in 0..admitted.len() {
                let mut cells = 0u128;
                for j in i..admitted.len() {
                    cells += u128::from(admitted[j].1);
                    let window = u128::from(admitted[j].0 - admitted[i].0);
                    // cells <= burst + rate * window / period, in integers.
                    prop_assert!(
                        cells * u128::from(period_nanos)
                            <= u128::from(burst) * u128::from(period_nanos) + u128::from(rate) * window,
                        "{} cells in {}ns with quota {}", cells, window, q
                    );
                }
            }
        }

        /// Retrying exactly at `retry_after` succeeds; one nanosecond earlier fails.
        #[test]
        fn retry_after_is_exact(
            rate in 1u32..1000,
            period_nanos in 1u64..10_000_000_000,
            burst in 1u32..20,
            steps in proptest::collection::vec((0u64..100_000_000, 1u32..5), 1..60),
        ) {
            let q = quota(rate, period_nanos, burst);
            let clock = FakeClock::new();
            let limiter = DirectLimiter::with_clock(q, clock.clone());
            for (gap, n) in steps {
                clock.advance_nanos(gap);
                match limiter.check_n(&(), n) {
                    Ok(()) => {}
                    Err(Denied::NotUntil(not_until)) => {
                        let wait = u64::try_from(not_until.retry_after().as_nanos()).unwrap();
                        prop_assert!(wait > 0);
                        clock.advance_nanos(wait - 1);
                        prop_assert!(limiter.check_n(&(), n).is_err(), "admitted 1ns early");
                        clock.advance_nanos(1);
                        prop_assert!(limiter.check_n(&(), n).is_ok(), "refused at retry_after");
                    }
                    Err(Denied::InsufficientCapacity { requested, capacity }) => {
                        prop_assert!(requested > burst);
                        prop_assert_eq!(capacity, burst);
                    }
                    Err(other) => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
    }

    #[test]
    fn remaining_counts_down_and_refills() {
        let clock = FakeClock::new();
        let limiter = DirectLimiter::with_clock("10/s burst 3".parse().unwrap(), clock.clone());
        assert_eq!(limiter.remaining(), 3);
        limiter.check_n(&(), 2).unwrap();
        assert_eq!(limiter.remaining(), 1);
        clock.advance(Duration::from_millis(100));
        assert_eq!(limiter.remaining(), 2);
        assert_eq!(limiter.quota().to_string(), "10/s burst 3");
    }

    #[tokio::test(start_paused = true)]
    async fn until_ready_waits_exactly_as_long_as_needed() {
        let limiter = DirectLimiter::with_clock("4/s burst 1".parse().unwrap(), TokioClock::new());
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            limiter.until_ready(&()).await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1), "4 waits of 250ms after the first cell");
        let err = limiter.until_ready_n(&(), 2).await.unwrap_err();
        assert_eq!(err, Denied::InsufficientCapacity { requested: 2, capacity: 1 });
    }

    #[test]
    fn concurrent_checks_admit_exactly_the_burst() {
        let clock = FakeClock::new();
        let limiter = DirectLimiter::with_clock("1000/h".parse().unwrap(), clock);
        let admitted = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if limiter.check(&()).is_ok() {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 1000);
    }
}
