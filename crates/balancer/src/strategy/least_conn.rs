//! Least connections.

use std::sync::Arc;

use super::{Request, Strategy};
use crate::backend::Endpoint;
use crate::hash::{Rng, reduce, thread_rng};

/// The endpoint with the fewest requests in flight relative to its weight (nginx's
/// `least_conn`: minimises `in_flight / weight`).
///
/// Requests in flight are counted by the [`Pick`](crate::Pick) guard. By default every
/// pick scans all available endpoints (O(n)); the scan starts at a random endpoint so
/// that ties are spread instead of piling on the first. [`sampled`](Self::sampled)
/// compares only `k` endpoints drawn at random (Envoy's `LEAST_REQUEST` with
/// `choice_count`), O(k), for large sets where a full scan costs too much.
#[derive(Debug, Default)]
pub struct LeastConnections {
    /// `None`: exact scan; `Some(k)`: best of `k` random draws.
    choices: Option<usize>,
    rng: Option<Rng>,
}

impl LeastConnections {
    /// Exact least connections: scans every available endpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Best of `choices` endpoints drawn at random (with replacement, as Envoy does); at
    /// least 1 (1 is a random pick). Envoy's default is 2.
    pub fn sampled(choices: usize) -> Self {
        Self { choices: Some(choices.max(1)), rng: None }
    }

    /// Like [`sampled`](Self::sampled), drawing from one seeded generator shared by all
    /// threads, so a single-threaded run is reproducible.
    pub fn sampled_seeded(choices: usize, seed: u64) -> Self {
        Self { choices: Some(choices.max(1)), rng: Some(Rng::new(Some(seed))) }
    }

    #[inline]
    fn random(&self) -> u64 {
        self.rng.as_ref().map_or_else(thread_rng, Rng::next)
    }

    /// Whether `(load, weight)` is less loaded than `(best_load, best_weight)`:
    /// `load / weight < best_load / best_weight`, without division.
    #[inline]
    fn lighter(load: u64, weight: u64, best_load: u64, best_weight: u64) -> bool {
        u128::from(load) * u128::from(best_weight) < u128::from(best_load) * u128::from(weight)
    }

    fn pick_sampled(&self, choices: usize, state: &LeastConnState, endpoints: &[Arc<Endpoint>]) -> usize {
        let n = endpoints.len();
        let weight = |i: usize| state.weights.as_ref().and_then(|w| w.get(i)).copied().unwrap_or(1);
        let mut best = reduce(self.random(), n);
        let (mut best_load, mut best_weight) = (endpoints[best].in_flight(), weight(best));
        for _ in 1..choices {
            let i = reduce(self.random(), n);
            let (load, w) = (endpoints[i].in_flight(), weight(i));
            if Self::lighter(load, w, best_load, best_weight) {
                best = i;
                best_load = load;
                best_weight = w;
            }
        }
        best
    }
}

/// The weights, copied at build so a scan reads them from one contiguous array.
#[derive(Debug)]
pub struct LeastConnState {
    /// `None` when all weights are equal, which allows comparing counts alone.
    weights: Option<Vec<u64>>,
}

impl Strategy for LeastConnections {
    type State = LeastConnState;

    fn build(&self, endpoints: &[Arc<Endpoint>]) -> LeastConnState {
        let uniform = endpoints.windows(2).all(|w| w[0].weight() == w[1].weight());
        let weights = (!uniform).then(|| endpoints.iter().map(|e| u64::from(e.weight())).collect());
        LeastConnState { weights }
    }

    #[inline]
    fn pick(&self, state: &LeastConnState, endpoints: &[Arc<Endpoint>], _: &Request<'_>) -> usize {
        if let Some(choices) = self.choices {
            return self.pick_sampled(choices, state, endpoints);
        }
        let n = endpoints.len();
        let start = reduce(self.random(), n);
        let mut best = start;
        let mut best_load = endpoints[start].in_flight();
        match &state.weights {
            None => {
                for off in 1..n {
                    if best_load == 0 {
                        break;
                    }
                    let i = if start + off >= n { start + off - n } else { start + off };
                    let load = endpoints[i].in_flight();
                    if load < best_load {
                        best = i;
                        best_load = load;
                    }
                }
            }
            Some(weights) if weights.len() == n => {
                let mut best_weight = weights[start];
                for off in 1..n {
                    let i = if start + off >= n { start + off - n } else { start + off };
                    let (load, weight) = (endpoints[i].in_flight(), weights[i]);
                    // load / weight < best_load / best_weight, without division; loads
                    // and weights fit in 32 bits in practice, u128 makes it exact anyway.
                    if u128::from(load) * u128::from(best_weight) < u128::from(best_load) * u128::from(weight)
                    {
                        best = i;
                        best_load = load;
                        best_weight = weight;
                    }
                }
            }
            Some(_) => {}
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::strategy::test_support::endpoints;

    #[test]
    fn picks_the_least_loaded() {
        let eps = endpoints(&[1, 1, 1]);
        let s = LeastConnections::new();
        let state = s.build(&eps);
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        eps[0].acquire();
        eps[2].acquire();
        eps[2].acquire();
        for _ in 0..20 {
            assert_eq!(s.pick(&state, &eps, &req), 1);
        }
    }

    #[test]
    fn weights_scale_the_load() {
        let eps = endpoints(&[1, 4]);
        let s = LeastConnections::new();
        let state = s.build(&eps);
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        eps[0].acquire();
        for _ in 0..3 {
            eps[1].acquire();
        }
        // 1/1 against 3/4: the heavier endpoint is less loaded.
        for _ in 0..20 {
            assert_eq!(s.pick(&state, &eps, &req), 1);
        }
    }

    #[test]
    fn sampled_prefers_the_lighter_of_its_draws() {
        let eps = endpoints(&[1, 1]);
        for _ in 0..10 {
            eps[0].acquire();
        }
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        let count_loaded = |s: &LeastConnections| {
            let state = s.build(&eps);
            (0..4_000).filter(|_| s.pick(&state, &eps, &req) == 0).count()
        };
        // The loaded endpoint wins only when every draw lands on it: (1/2)^k.
        let one = count_loaded(&LeastConnections::sampled_seeded(1, 5));
        let two = count_loaded(&LeastConnections::sampled_seeded(2, 5));
        let four = count_loaded(&LeastConnections::sampled_seeded(4, 5));
        assert!((1_800..2_200).contains(&one), "{one}");
        assert!((850..1_150).contains(&two), "{two}");
        assert!((150..350).contains(&four), "{four}");
        assert_eq!(count_loaded(&LeastConnections::new()), 0, "the exact scan never picks it");
    }

    #[test]
    fn sampled_respects_weights() {
        let eps = endpoints(&[1, 4]);
        eps[0].acquire();
        for _ in 0..3 {
            eps[1].acquire();
        }
        let s = LeastConnections::sampled_seeded(64, 1);
        let state = s.build(&eps);
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        // 64 draws include both endpoints (all but surely with this seed); 3/4 < 1/1.
        assert!((0..100).all(|_| s.pick(&state, &eps, &req) == 1));
    }

    #[test]
    fn ties_are_spread() {
        let eps = endpoints(&[1; 4]);
        let s = LeastConnections::new();
        let state = s.build(&eps);
        let clock = FakeClock::new();
        let req = Request::new(None, &clock);
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[s.pick(&state, &eps, &req)] = true;
        }
        assert_eq!(seen, [true; 4]);
    }
}
