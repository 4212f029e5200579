//! Power of two choices on peak-EWMA latency.

use std::sync::Arc;
use std::time::Duration;

use super::{Request, Strategy};
use crate::backend::Endpoint;
use crate::hash::{Rng, reduce};
use crate::load::{DEFAULT_LOAD_VIEW_AGE, Reader};

/// Power of two choices (Finagle's and linkerd's `p2c` + peak EWMA): draw two distinct
/// endpoints at random and take the one with the lower cost,
/// `peak_ewma_latency × (in_flight + 1) / weight`.
///
/// The latency estimate ([`Endpoint::peak_ewma_nanos`]) jumps to peaks at once and
/// decays toward zero when an endpoint is not used, so a slow endpoint is avoided but
/// probed again later. Latencies come from [`Pick::report`](crate::Pick::report).
///
/// Requests in flight are read as [`LeastConnections`](crate::LeastConnections) reads
/// them: this thread's at once, other threads' through a view no older than
/// [`load_view_age`](Self::load_view_age).
#[derive(Debug)]
pub struct PeakEwmaP2c {
    rng: Rng,
    view_age: Duration,
}

impl PeakEwmaP2c {
    /// A P2C strategy drawing from a per-thread random generator.
    pub fn new() -> Self {
        Self { rng: Rng::new(None), view_age: DEFAULT_LOAD_VIEW_AGE }
    }

    /// A P2C strategy drawing from one seeded generator shared by all threads, so a
    /// single-threaded run is reproducible (simulations, tests).
    pub fn seeded(seed: u64) -> Self {
        Self { rng: Rng::new(Some(seed)), view_age: DEFAULT_LOAD_VIEW_AGE }
    }

    /// How old a thread's view of the other threads' counts in flight may be (default
    /// [`DEFAULT_LOAD_VIEW_AGE`](crate::DEFAULT_LOAD_VIEW_AGE), 100 µs); zero reads them
    /// all on every pick. See [`LeastConnections::load_view_age`](crate::LeastConnections::load_view_age).
    #[must_use]
    pub fn load_view_age(mut self, age: Duration) -> Self {
        self.view_age = age;
        self
    }
}

impl Default for PeakEwmaP2c {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for PeakEwmaP2c {
    type State = ();

    fn build(&self, _: &[Arc<Endpoint>]) {}

    #[inline]
    fn pick(&self, _: &(), endpoints: &[Arc<Endpoint>], request: &Request<'_>) -> usize {
        let n = endpoints.len();
        if n == 1 {
            return 0;
        }
        let r = self.rng.next();
        let a = reduce(r, n);
        let mut b = reduce(r.rotate_left(32), n - 1);
        if b >= a {
            b += 1;
        }
        let now = request.now_nanos();
        let (ea, eb) = (&endpoints[a], &endpoints[b]);
        if eb.weighted_cost_below(ea, now, &Reader::new(self.view_age)) { b } else { a }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::strategy::test_support::endpoints;
    use std::time::Duration;

    #[test]
    fn avoids_the_slow_one_of_two() {
        let eps = endpoints(&[1, 1]);
        eps[1].observe_latency(0, Duration::from_millis(500));
        let s = PeakEwmaP2c::seeded(1);
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        for _ in 0..50 {
            assert_eq!(s.pick(&(), &eps, &req), 0);
        }
    }

    #[test]
    fn draws_two_distinct_and_spreads() {
        let eps = endpoints(&[1; 5]);
        let s = PeakEwmaP2c::new();
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        let mut counts = [0; 5];
        for _ in 0..5_000 {
            counts[s.pick(&(), &eps, &req)] += 1;
        }
        // Equal costs: the first draw wins, which is uniform.
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
