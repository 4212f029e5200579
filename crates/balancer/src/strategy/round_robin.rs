//! Round robin.

use std::sync::Arc;

use super::{Request, Strategy};
use crate::backend::Endpoint;
use crate::load::Cursors;

/// Each available endpoint in turn, ignoring weights.
///
/// The cursor lives in the strategy, so it keeps going when the set changes. There is one
/// cursor per thread stripe (8 stripes; each thread keeps its stripe): each starts at the
/// first endpoint and walks the whole cycle, so every thread's picks are exactly even over
/// each cycle of its own, and threads do not contend on one shared counter. Threads picking
/// at once may therefore pick the same endpoint at the same moment.
#[derive(Debug, Default)]
pub struct RoundRobin {
    cursors: Cursors,
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
        self.cursors.next() % endpoints.len()
    }

    fn reads_in_flight(&self) -> bool {
        false
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
