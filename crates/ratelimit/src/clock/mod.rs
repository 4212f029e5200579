//! Time as a seam: [`Clock`], the default [`MonotonicClock`], [`StdClock`], [`TokioClock`] and
//! [`FakeClock`] for tests.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of monotonic time for the limiters.
///
/// Readings are nanoseconds since the clock's own origin; they must never decrease.
pub trait Clock: Send + Sync + Debug {
    /// Nanoseconds since this clock's origin.
    fn now_nanos(&self) -> u64;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

fn nanos_u64(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The default clock: [`quanta`]'s monotonic clock (the CPU's invariant TSC where it has
/// one, the OS monotonic clock otherwise), measured from when the clock was created.
///
/// Reading the TSC costs a few nanoseconds where `std::time::Instant::now` may cost tens
/// (it is most of a check's cost). Clones share the origin, so their readings agree.
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    clock: quanta::Clock,
    /// Raw (unscaled) reading at creation.
    origin: u64,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        Self { clock, origin }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        // Scaling the raw delta skips the Duration round trip `now()` would take.
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }
}

/// A clock on [`std::time::Instant`], measured from when the clock was created.
#[derive(Debug, Clone, Copy)]
pub struct StdClock {
    origin: Instant,
}

impl StdClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now_nanos(&self) -> u64 {
        nanos_u64(self.origin.elapsed())
    }
}

/// A clock on tokio's time ([`tokio::time::Instant`]), so that a limiter follows tokio's
/// paused and advanced clock in tests (`#[tokio::test(start_paused = true)]`).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is tokio's now.
    pub fn new() -> Self {
        Self { origin: tokio::time::Instant::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_nanos(&self) -> u64 {
        nanos_u64(self.origin.elapsed())
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use mltb_ratelimit::{Clock, FakeClock};
///
/// let clock = FakeClock::new();
/// let view = clock.clone();
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(view.now_nanos(), 5_000_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    nanos: Arc<AtomicU64>,
}

impl FakeClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by` (saturating at `u64::MAX` nanoseconds).
    pub fn advance(&self, by: Duration) {
        self.advance_nanos(nanos_u64(by));
    }

    /// Moves the clock forward by `by` nanoseconds (saturating).
    pub fn advance_nanos(&self, by: u64) {
        let _ = self.nanos.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_add(by)));
    }

    /// Sets the clock to `nanos`, if that is not earlier than now (clocks never go back).
    pub fn set_nanos(&self, nanos: u64) {
        self.nanos.fetch_max(nanos, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_forward() {
        let clock = FakeClock::new();
        clock.advance(Duration::from_nanos(10));
        clock.set_nanos(5);
        assert_eq!(clock.now_nanos(), 10);
        clock.set_nanos(20);
        assert_eq!(clock.clone().now_nanos(), 20);
        clock.advance_nanos(u64::MAX);
        assert_eq!(clock.now_nanos(), u64::MAX);
    }

    #[test]
    fn real_clocks_do_not_go_back_and_agree_with_std() {
        let std_start = Instant::now();
        let (mono, std) = (MonotonicClock::new(), StdClock::new());
        let (a, b) = (mono.now_nanos(), std.now_nanos());
        let spin_until = Instant::now() + Duration::from_millis(20);
        while Instant::now() < spin_until {
            std::hint::spin_loop();
        }
        let (a2, b2) = (mono.clone().now_nanos(), std.now_nanos());
        assert!(a2 >= a && b2 >= b);
        let elapsed = std_start.elapsed().as_nanos() as u64;
        // Both measured at least the 20ms spun, and no more than the whole test took.
        for d in [a2 - a, b2 - b] {
            assert!((19_000_000..=elapsed + 1_000_000).contains(&d), "{d} vs {elapsed}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(clock.now_nanos(), 3_000_000_000);
    }
}
