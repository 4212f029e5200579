//! Smooth weighted round robin (nginx's algorithm).

use std::sync::Arc;

use parking_lot::Mutex;

use super::{Request, Strategy, weight_gcd};
use crate::backend::Endpoint;
use crate::load::Cursors;

/// The longest cycle precomputed; above it picks run nginx's loop under a lock.
const MAX_SEQUENCE: u64 = 1 << 16;
/// The most work (cycle length × endpoints) spent precomputing a cycle.
const MAX_BUILD_WORK: u64 = 1 << 24;

/// nginx's smooth weighted round robin: over a cycle of Σweight picks each endpoint is
/// chosen exactly `weight` times, spread out (weights 5, 1, 1 give `a a b a c a a`).
///
/// nginx runs an O(n) loop per pick under a lock. The sequence is periodic with period
/// Σweight/gcd, so this strategy runs that loop once at build time and picks by indexing
/// the cycle with an atomic cursor: O(1), lock-free. When the cycle would be longer than
/// 65 536 picks (or cost more than 2²⁴ steps to build) it falls back to nginx's loop
/// under a mutex.
///
/// As with [`RoundRobin`](crate::RoundRobin), there is one cursor per thread stripe, each
/// walking the cycle from its start: each thread's picks follow nginx's sequence exactly,
/// and every full cycle of them gives each endpoint exactly its weight.
#[derive(Debug, Default)]
pub struct SmoothWeighted {
    cursors: Cursors,
}

impl SmoothWeighted {
    /// A smooth weighted round robin.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The precomputed cycle, or nginx's running state.
pub enum WeightedState {
    /// One period of the sequence, as endpoint indices.
    Cycle(Vec<u32>),
    /// nginx's per-endpoint current weights and the (gcd-reduced) weights.
    Live(Mutex<Vec<i64>>, Vec<i64>),
}

impl std::fmt::Debug for WeightedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WeightedState::Cycle(c) => f.debug_struct("Cycle").field("len", &c.len()).finish(),
            WeightedState::Live(_, w) => f.debug_struct("Live").field("endpoints", &w.len()).finish(),
        }
    }
}

fn nginx_step(current: &mut [i64], weights: &[i64], total: i64) -> usize {
    let mut best = 0;
    for i in 0..current.len() {
        current[i] += weights[i];
        if current[i] > current[best] {
            best = i;
        }
    }
    current[best] -= total;
    best
}

impl Strategy for SmoothWeighted {
    type State = WeightedState;

    fn build(&self, endpoints: &[Arc<Endpoint>]) -> WeightedState {
        let g = weight_gcd(endpoints);
        let weights: Vec<i64> = endpoints.iter().map(|e| i64::from(e.weight() / g)).collect();
        let total: i64 = weights.iter().sum();
        let period = total as u64;
        if period <= MAX_SEQUENCE && period.saturating_mul(weights.len() as u64) <= MAX_BUILD_WORK {
            let mut current = vec![0; weights.len()];
            let cycle = (0..period).map(|_| nginx_step(&mut current, &weights, total) as u32).collect();
            WeightedState::Cycle(cycle)
        } else {
            WeightedState::Live(Mutex::new(vec![0; weights.len()]), weights)
        }
    }

    #[inline]
    fn pick(&self, state: &WeightedState, _: &[Arc<Endpoint>], _: &Request<'_>) -> usize {
        match state {
            WeightedState::Cycle(cycle) => cycle[self.cursors.next() % cycle.len()] as usize,
            WeightedState::Live(current, weights) => {
                let total = weights.iter().sum();
                nginx_step(&mut current.lock(), weights, total)
            }
        }
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

    fn run(weights: &[u32], n: usize) -> Vec<usize> {
        let eps = endpoints(weights);
        let s = SmoothWeighted::new();
        let state = s.build(&eps);
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        (0..n).map(|_| s.pick(&state, &eps, &req)).collect()
    }

    #[test]
    fn nginx_sequence_for_5_1_1() {
        assert_eq!(run(&[5, 1, 1], 14), [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn gcd_reduction_keeps_the_sequence() {
        assert_eq!(run(&[10, 2, 2], 7), run(&[5, 1, 1], 7));
    }

    #[test]
    fn live_fallback_matches_the_cycle() {
        // Weights too large to precompute still follow nginx's sequence.
        let eps = endpoints(&[100_000, 1, 1]);
        let s = SmoothWeighted::new();
        let state = s.build(&eps);
        assert!(matches!(state, WeightedState::Live(..)));
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        let picks: Vec<usize> = (0..100_002).map(|_| s.pick(&state, &eps, &req)).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 1);
        assert_eq!(picks.iter().filter(|&&i| i == 2).count(), 1);
    }
}
