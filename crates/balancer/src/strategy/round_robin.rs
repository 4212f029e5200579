//! Round robin.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Request, Strategy};
use crate::backend::Endpoint;

/// Each available endpoint in turn, ignoring weights.
///
/// The cursor lives in the strategy, so it keeps going when the set changes.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// A round robin starting at the first endpoint.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Strategy for RoundRobin {
    type State = ();

    fn build(&self, _: &[Arc<Endpoint>]) {}

    #[inline]
    fn pick(&self, _: &(), endpoints: &[Arc<Endpoint>], _: &Request<'_>) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % endpoints.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::strategy::test_support::endpoints;

    #[test]
    fn cycles_through_all() {
        let eps = endpoints(&[1, 5, 1]);
        let rr = RoundRobin::new();
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        let picks: Vec<usize> = (0..6).map(|_| rr.pick(&(), &eps, &req)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }
}
