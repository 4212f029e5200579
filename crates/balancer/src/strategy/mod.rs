//! The [`Strategy`] seam and the built-in strategies.

use std::fmt::Debug;
use std::sync::Arc;

use crate::backend::Endpoint;
use crate::clock::Clock;

mod any;
mod ketama;
mod least_conn;
mod maglev;
mod p2c;
mod round_robin;
mod weighted;

pub use any::{AnyState, AnyStrategy};
pub use ketama::{Ketama, POINTS_PER_WEIGHT, Ring};
pub use least_conn::{LeastConnState, LeastConnections};
pub use maglev::{DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE, Maglev, Table};
pub use p2c::PeakEwmaP2c;
pub use round_robin::RoundRobin;
pub use weighted::{SmoothWeighted, WeightedState};

/// How a balancer chooses among its available (healthy, not ejected) endpoints.
///
/// [`build`](Strategy::build) runs whenever the available set changes (membership,
/// weight, health or ejection) and precomputes whatever the strategy needs — a ring, a
/// lookup table, a weighted sequence. [`pick`](Strategy::pick) runs on every request and
/// is given the same endpoints, in the same order, as the last `build`; it is never called
/// with an empty slice.
pub trait Strategy: Send + Sync + Debug + 'static {
    /// What `build` precomputes for `pick`.
    type State: Send + Sync + Debug + 'static;

    /// Precomputes the state for this set of available endpoints (possibly empty).
    fn build(&self, endpoints: &[Arc<Endpoint>]) -> Self::State;

    /// Returns the index into `endpoints` of the one to use. An index out of range is
    /// treated as 0.
    fn pick(&self, state: &Self::State, endpoints: &[Arc<Endpoint>], request: &Request<'_>) -> usize;

    /// Whether `pick` reads [`Endpoint::in_flight`]. Counting requests in flight costs
    /// every pick two writes to a counter that other threads' picks also write, so the
    /// balancer counts them only for strategies that say they read them (or when built
    /// with [`track_in_flight`](crate::BalancerBuilder::track_in_flight)).
    ///
    /// Defaults to `true`, which is always correct; the built-in round robins and
    /// hashing strategies say `false`.
    fn reads_in_flight(&self) -> bool {
        true
    }

    /// Called when a pick of `endpoint` is reported or dropped, after its count in flight
    /// went down, with the latest state (only for strategies that read in flight). A
    /// hook for strategies that keep a summary of the counts; does nothing by default.
    #[inline]
    fn released(&self, state: &Self::State, endpoint: &Endpoint) {
        let _ = (state, endpoint);
    }
}

/// What a strategy knows about the request being balanced.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    key_hash: Option<u64>,
    clock: &'a dyn Clock,
}

impl<'a> Request<'a> {
    /// A request with an optional key hash (see [`key_hash`](crate::key_hash)), reading
    /// time from `clock`. Useful to test a strategy on its own.
    pub fn new(key_hash: Option<u64>, clock: &'a dyn Clock) -> Self {
        Self { key_hash, clock }
    }

    /// The hash of the request's key, for hashing strategies; `None` for keyless picks.
    #[inline]
    pub fn key_hash(&self) -> Option<u64> {
        self.key_hash
    }

    /// The balancer's clock, in nanoseconds.
    #[inline]
    pub fn now_nanos(&self) -> u64 {
        self.clock.now_nanos()
    }
}

/// Greatest common divisor of the weights (1 for an empty list).
pub(crate) fn weight_gcd(endpoints: &[Arc<Endpoint>]) -> u32 {
    fn gcd(mut a: u32, mut b: u32) -> u32 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
    endpoints.iter().fold(0, |g, e| gcd(g, e.weight())).max(1)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::backend::Backend;
    use crate::load::Slab;
    use std::time::Duration;

    pub(crate) fn endpoints(weights: &[u32]) -> Vec<Arc<Endpoint>> {
        let slab = Slab::new();
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let b = Backend::new(format!("node-{i}"), format!("10.0.0.{i}:80")).with_weight(w);
                Arc::new(Endpoint::new(
                    b,
                    Duration::from_millis(10),
                    Duration::from_secs(10),
                    0,
                    slab.alloc(),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::endpoints;
    use super::*;

    #[test]
    fn gcd_of_weights() {
        assert_eq!(weight_gcd(&endpoints(&[4, 6, 10])), 2);
        assert_eq!(weight_gcd(&endpoints(&[3])), 3);
        assert_eq!(weight_gcd(&[]), 1);
    }
}
