//! The GCRA decision on one atomic word: the bucket's theoretical arrival time (TAT).
//!
//! With emission interval `T` and tolerance `tau = T * burst`, a check for `n` cells at
//! `now` computes `new_tat = max(tat, now) + n*T` and admits iff `new_tat - now <= tau`,
//! storing `new_tat` with a compare-and-swap. A bucket is full (and safe to forget) when
//! `tat <= now`. All times are nanoseconds on the limiter's clock.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Denied, NotUntil, Quota};

/// Upper bound on the tolerance, so `now + tau` cannot overflow for ~146 years of uptime.
/// A quota whose `T * burst` exceeds it gets a smaller effective burst (never a larger one).
const MAX_TOLERANCE_NANOS: u64 = 1 << 62;

/// The quota turned into GCRA constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Emission interval, nanoseconds per cell.
    t: u64,
    /// Tolerance, `t * capacity`.
    tau: u64,
    /// Most cells one check can take.
    capacity: u32,
}

impl Gcra {
    pub(crate) fn new(quota: &Quota) -> Self {
        let t = quota.emission_nanos();
        let capacity = u64::from(quota.burst().get()).min(MAX_TOLERANCE_NANOS / t);
        // t <= u64::MAX and capacity <= MAX_TOLERANCE / t, so capacity >= 0; a quota with
        // t > MAX_TOLERANCE (a period over 146 years at rate 1) still admits one cell.
        let capacity = u32::try_from(capacity.max(1)).unwrap_or(u32::MAX);
        Self { t, tau: t.saturating_mul(u64::from(capacity)), capacity }
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Checks `n` cells at `now` against `bucket`, updating it when admitted.
    #[inline]
    pub(crate) fn check_n(&self, bucket: &Bucket, now: u64, n: u32) -> Result<(), Denied> {
        if n == 0 {
            return Ok(());
        }
        if n > self.capacity {
            return Err(Denied::InsufficientCapacity { requested: n, capacity: self.capacity });
        }
        // n <= capacity, so increment <= tau <= u64::MAX.
        let increment = u64::from(n) * self.t;
        let limit = now.saturating_add(self.tau);
        let mut tat = bucket.tat.load(Ordering::Relaxed);
        loop {
            let new_tat = tat.max(now).saturating_add(increment);
            if new_tat > limit {
                return Err(Denied::NotUntil(NotUntil::new(now, new_tat - self.tau)));
            }
            // Relaxed suffices: the bucket is a single word, and CAS on one location is
            // totally ordered; nothing else is published through it.
            match bucket.tat.compare_exchange_weak(tat, new_tat, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }

    /// Cells a check at `now` could take from `bucket`.
    pub(crate) fn remaining(&self, bucket: &Bucket, now: u64) -> u32 {
        let tat = bucket.tat().max(now);
        let used = tat - now;
        let free = self.tau.saturating_sub(used) / self.t;
        u32::try_from(free).unwrap_or(u32::MAX)
    }
}

/// One bucket: its TAT in nanoseconds (0 = full).
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    tat: AtomicU64,
}

impl Bucket {
    pub(crate) fn tat(&self) -> u64 {
        self.tat.load(Ordering::Relaxed)
    }

    /// Whether the bucket is full at `now`, so forgetting it changes no decision.
    pub(crate) fn is_idle(&self, now: u64) -> bool {
        self.tat() <= now
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use super::*;

    fn gcra(rate: u32, period: Duration, burst: u32) -> Gcra {
        let q = Quota::new(NonZeroU32::new(rate).unwrap(), period)
            .unwrap()
            .allow_burst(NonZeroU32::new(burst).unwrap());
        Gcra::new(&q)
    }

    #[test]
    fn burst_then_rate() {
        let g = gcra(10, Duration::from_secs(1), 3);
        let b = Bucket::default();
        let now = 1_000;
        for _ in 0..3 {
            g.check_n(&b, now, 1).unwrap();
        }
        let Err(Denied::NotUntil(nu)) = g.check_n(&b, now, 1) else { panic!("4th cell must wait") };
        assert_eq!(nu.retry_after(), Duration::from_millis(100));
        assert_eq!(g.remaining(&b, now), 0);
        assert!(g.check_n(&b, now + 100_000_000, 1).is_ok());
        assert!(!b.is_idle(now + 100_000_000));
        assert!(b.is_idle(now + 400_000_000));
    }

    #[test]
    fn n_over_capacity_is_distinct() {
        let g = gcra(10, Duration::from_secs(1), 3);
        let b = Bucket::default();
        assert_eq!(g.check_n(&b, 0, 4), Err(Denied::InsufficientCapacity { requested: 4, capacity: 3 }));
        assert_eq!(g.check_n(&b, 0, 0), Ok(()));
        assert_eq!(b.tat(), 0, "refused and empty checks leave the bucket alone");
    }

    #[test]
    fn huge_quota_caps_capacity_without_overflow() {
        let g = gcra(1, Duration::from_secs(3600), u32::MAX);
        assert!(g.capacity() < u32::MAX);
        assert!(g.tau <= MAX_TOLERANCE_NANOS);
        let b = Bucket::default();
        assert!(g.check_n(&b, u64::MAX - 5, g.capacity()).is_ok());
        let g = gcra(1, Duration::from_nanos(u64::MAX), 1);
        assert_eq!(g.capacity(), 1);
        assert!(g.check_n(&Bucket::default(), 7, 1).is_ok());
    }
}
