//! Monotonic time as a seam: one [`Clock`] trait for the mltb crates, with a TSC-backed
//! default, a std clock, a tokio clock and a fake clock for tests.
//!
//! # Example
//!
//! A component takes any `C: Clock`; production code passes [`MonotonicClock`], tests pass
//! a [`FakeClock`] and move it explicitly instead of sleeping.
//!
//! ```
//! use std::time::Duration;
//! use mltb_clock::{Clock, FakeClock, MonotonicClock};
//!
//! /// Says whether `ttl` has passed since it was created.
//! #[derive(Debug)]
//! struct Deadline<C: Clock> {
//!     clock: C,
//!     at: u64,
//! }
//!
//! impl<C: Clock> Deadline<C> {
//!     fn new(clock: C, ttl: Duration) -> Self {
//!         let at = clock.now_nanos().saturating_add(ttl.as_nanos() as u64);
//!         Self { clock, at }
//!     }
//!     fn expired(&self) -> bool {
//!         self.clock.now_nanos() >= self.at
//!     }
//! }
//!
//! let clock = FakeClock::new();
//! let deadline = Deadline::new(clock.clone(), Duration::from_secs(30));
//! assert!(!deadline.expired());
//! clock.advance(Duration::from_secs(30));
//! assert!(deadline.expired());
//!
//! // The real clock never goes back.
//! let real = MonotonicClock::new();
//! let a = real.now_nanos();
//! assert!(real.now_nanos() >= a);
//! ```
//!
//! # Features
//!
//! - `tokio`: [`TokioClock`], whose readings follow tokio's clock, so that
//!   `#[tokio::test(start_paused = true)]` and `tokio::time::advance` control it.
//!
//! # Design
//!
//! - **Nanoseconds as `u64`**, not `Instant`: a reading fits one atomic, so lock-free
//!   code (a GCRA cell, a TTL deadline in a cache entry) can store and compare it
//!   directly, and a fake clock can start at 0. `u64` nanoseconds last 584 years.
//! - **Each clock has its own origin** (the moment it was created); readings of two
//!   clocks are not comparable, while clones share their origin.
//! - **The default reads the TSC** through [`quanta`]: a few nanoseconds where
//!   `Instant::now` may cost tens, which matters to code that reads the clock on every
//!   call (a rate-limit check, a P2C pick).
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of monotonic time.
///
/// Readings are nanoseconds since the clock's own origin; they never decrease.
pub trait Clock: Send + Sync + Debug {
    /// Nanoseconds since this clock's origin.
    fn now_nanos(&self) -> u64;

    /// The time since this clock's origin.
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

/// `d` in nanoseconds, saturating at `u64::MAX` (584 years).
#[inline]
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The default clock: [`quanta`]'s monotonic clock (the CPU's invariant TSC where it has
/// one, the OS monotonic clock otherwise), measured from when the clock was created.
///
/// Clones share the origin, so their readings agree.
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
        nanos(self.origin.elapsed())
    }
}

/// A clock on tokio's time ([`tokio::time::Instant`]), so that code under test follows
/// tokio's paused and advanced clock (`#[tokio::test(start_paused = true)]`).
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

#[cfg(feature = "tokio")]
impl TokioClock {
    /// A clock whose origin is tokio's now.
    pub fn new() -> Self {
        Self { origin: tokio::time::Instant::now() }
    }
}

#[cfg(feature = "tokio")]
impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    fn now_nanos(&self) -> u64 {
        nanos(self.origin.elapsed())
    }
}

/// A clock that moves only when told to; clones share the same time. It starts at 0.
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
        self.advance_nanos(nanos(by));
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

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

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
        assert_eq!(clock.now(), Duration::from_nanos(20));
        clock.advance_nanos(u64::MAX);
        assert_eq!(clock.now_nanos(), u64::MAX);
    }

    #[test]
    fn blanket_impls_read_through() {
        let clock = FakeClock::new();
        clock.advance(Duration::from_micros(3));
        let boxed: Box<dyn Clock> = Box::new(clock.clone());
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        assert_eq!(boxed.now_nanos(), 3_000);
        assert_eq!(shared.now_nanos(), 3_000);
        fn read<C: Clock>(clock: C) -> u64 {
            clock.now_nanos()
        }
        assert_eq!(read(&clock), 3_000);
    }

    #[test]
    fn nanos_saturates() {
        assert_eq!(nanos(Duration::from_secs(2)), 2_000_000_000);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
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
        let elapsed = nanos(std_start.elapsed());
        // Both measured at least the 20ms spun, and no more than the whole test took.
        for d in [a2 - a, b2 - b] {
            assert!((19_000_000..=elapsed + 1_000_000).contains(&d), "{d} vs {elapsed}");
        }
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(clock.now_nanos(), 3_000_000_000);
    }
}
