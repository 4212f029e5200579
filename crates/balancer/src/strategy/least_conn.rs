//! Least connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Request, Strategy};
use crate::backend::Endpoint;
use crate::hash::{Rng, reduce, thread_rng};
use crate::load::{Chunk, DEFAULT_LOAD_VIEW_AGE, LANES, Padded, Reader};

/// The endpoint with the fewest requests in flight relative to its weight (nginx's
/// `least_conn`: minimises `in_flight / weight`).
///
/// Requests in flight are counted by the [`Pick`](crate::Pick) guard. By default every
/// pick scans all available endpoints (O(n)); the scan starts at a random endpoint so
/// that ties are spread instead of piling on the first. The counts are `u32`s packed 16
/// to a cache line, so a full scan of 256 endpoints reads 16 lines; and most scans stop
/// early: the state keeps a *floor*, a lower bound on the least load (0 after a rebuild;
/// lowered when a release takes a count below it; raised to the least load a full scan
/// found), and a scan stops at the first endpoint whose load is at the floor, which is
/// the one a full scan would have returned.
///
/// A thread sees its own picks' counts at once and other threads' through a view no older
/// than [`load_view_age`](Self::load_view_age) (100 µs by default): reading counts that
/// another core has just written costs a cache miss each, which on two busy cores more
/// than doubled the time of a pick. Picks made and released on one thread are therefore
/// exactly those of a full scan; with several threads, a pick may land above the least
/// loaded by what the other threads changed in the last 100 µs (or, with a view age of
/// 0, by what they change during the scan itself, as any scan racing with updates may).
///
/// [`sampled`](Self::sampled) compares only `k` endpoints drawn at random (Envoy's
/// `LEAST_REQUEST` with `choice_count`), O(k), for large sets where a full scan costs
/// too much.
#[derive(Debug)]
pub struct LeastConnections {
    /// `None`: exact scan; `Some(k)`: best of `k` random draws.
    choices: Option<usize>,
    rng: Option<Rng>,
    view_age: Duration,
}

impl Default for LeastConnections {
    fn default() -> Self {
        Self { choices: None, rng: None, view_age: DEFAULT_LOAD_VIEW_AGE }
    }
}

impl LeastConnections {
    /// Exact least connections: scans every available endpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Best of `choices` endpoints drawn at random (with replacement, as Envoy does); at
    /// least 1 (1 is a random pick). Envoy's default is 2.
    pub fn sampled(choices: usize) -> Self {
        Self { choices: Some(choices.max(1)), ..Self::default() }
    }

    /// Like [`sampled`](Self::sampled), drawing from one seeded generator shared by all
    /// threads, so a single-threaded run is reproducible.
    pub fn sampled_seeded(choices: usize, seed: u64) -> Self {
        Self { choices: Some(choices.max(1)), rng: Some(Rng::new(Some(seed))), ..Self::default() }
    }

    /// How old a thread's view of the other threads' counts in flight may be (default
    /// [`DEFAULT_LOAD_VIEW_AGE`](crate::DEFAULT_LOAD_VIEW_AGE), 100 µs). Zero reads every
    /// thread's counts on every pick: exact at that instant, and a cache miss for each
    /// count another core has changed since this one last read it.
    ///
    /// ```
    /// use std::sync::{Barrier, mpsc};
    /// use std::time::Duration;
    /// use mltb_balancer::{Backend, Balancer, LeastConnections};
    ///
    /// let exact = LeastConnections::new().load_view_age(Duration::ZERO);
    /// let b = Balancer::new(exact, [Backend::new("a", "10.0.0.1:80"), Backend::new("b", "10.0.0.2:80")])?;
    /// let (tx, rx) = mpsc::channel();
    /// let done = Barrier::new(2);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let held = b.pick().expect("a backend");
    ///         tx.send(held.id().to_owned()).expect("receiver");
    ///         done.wait(); // holds its pick until the main thread has picked
    ///     });
    ///     let theirs = rx.recv().expect("a pick");
    ///     let mine = b.pick().expect("a backend");
    ///     assert_ne!(mine.id(), theirs, "the other thread's request in flight is seen");
    ///     done.wait();
    /// });
    /// # Ok::<(), mltb_balancer::Error>(())
    /// ```
    #[must_use]
    pub fn load_view_age(mut self, age: Duration) -> Self {
        self.view_age = age;
        self
    }

    #[inline]
    fn random(&self) -> u64 {
        self.rng.as_ref().map_or_else(thread_rng, Rng::next)
    }

    /// Whether `(load, weight)` is less loaded than `(best_load, best_weight)`:
    /// `load / weight < best_load / best_weight`, without division (exact: both products
    /// fit in 64 bits).
    #[inline]
    fn lighter(load: u32, weight: u32, best_load: u32, best_weight: u32) -> bool {
        u64::from(load) * u64::from(best_weight) < u64::from(best_load) * u64::from(weight)
    }

    fn pick_sampled(&self, choices: usize, state: &LeastConnState) -> usize {
        let n = state.len();
        let reader = Reader::new(self.view_age);
        let mut best = reduce(self.random(), n);
        let (mut best_load, mut best_weight) = (state.load(best, &reader), state.weight(best));
        for _ in 1..choices {
            let i = reduce(self.random(), n);
            let (load, w) = (state.load(i, &reader), state.weight(i));
            if Self::lighter(load, w, best_load, best_weight) {
                best = i;
                best_load = load;
                best_weight = w;
            }
        }
        best
    }

    /// The exact scan, from a random start, wrapping around; the first strictly lighter
    /// endpoint replaces the best so far, and one at the floor ends the scan.
    fn pick_exact(&self, state: &LeastConnState) -> usize {
        let n = state.len();
        let reader = Reader::new(self.view_age);
        let start = reduce(self.random(), n);
        let floor = state.floor.0.load(Ordering::SeqCst);
        let (floor_load, floor_weight) = unpack(floor);
        let mut best = start;
        let (mut best_load, mut best_weight) = (state.load(start, &reader), state.weight(start));
        if !Self::lighter(floor_load, floor_weight, best_load, best_weight) {
            return best;
        }
        let order = (start + 1..n).chain(0..start);
        match &state.weights {
            None => {
                for i in order {
                    let load = state.load(i, &reader);
                    if load < best_load {
                        best = i;
                        best_load = load;
                        if load <= floor_load {
                            return best;
                        }
                    }
                }
            }
            Some(weights) => {
                for i in order {
                    let (load, weight) = (state.load(i, &reader), weights.get(i).copied().unwrap_or(1));
                    if Self::lighter(load, weight, best_load, best_weight) {
                        best = i;
                        best_load = load;
                        best_weight = weight;
                        if !Self::lighter(floor_load, floor_weight, load, weight) {
                            return best;
                        }
                    }
                }
            }
        }
        // A full scan: what it found is the least load, unless a release raced with it
        // (then the exchange fails or the floor ends up one request too high, until the
        // next release or full scan moves it).
        let _ = state.floor.0.compare_exchange(
            floor,
            pack(best_load, best_weight),
            Ordering::SeqCst,
            Ordering::Relaxed,
        );
        best
    }
}

fn pack(load: u32, weight: u32) -> u64 {
    (u64::from(load) << 32) | u64::from(weight)
}

fn unpack(floor: u64) -> (u32, u32) {
    ((floor >> 32) as u32, floor as u32)
}

/// What a pick reads, in contiguous arrays: where each endpoint's count in flight is,
/// and the weights.
pub struct LeastConnState {
    /// `None` when all weights are equal, which allows comparing counts alone.
    weights: Option<Vec<u32>>,
    /// The chunks holding the endpoints' counts, each once.
    chunks: Vec<Arc<Chunk>>,
    /// Per endpoint: its chunk's position in `chunks` × `LANES` + its lane.
    lanes: Vec<u32>,
    /// A lower bound on the least `load / weight`, packed as `load << 32 | weight`.
    floor: Padded<AtomicU64>,
}

impl std::fmt::Debug for LeastConnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeastConnState")
            .field("endpoints", &self.lanes.len())
            .field("chunks", &self.chunks.len())
            .field("weighted", &self.weights.is_some())
            .finish()
    }
}

impl LeastConnState {
    fn len(&self) -> usize {
        self.lanes.len()
    }

    #[inline]
    fn load(&self, i: usize, reader: &Reader) -> u32 {
        let at = self.lanes.get(i).map_or(0, |&l| l as usize);
        self.chunks.get(at / LANES).map_or(u32::MAX, |c| c.in_flight_seen(at % LANES, reader))
    }

    #[inline]
    fn weight(&self, i: usize) -> u32 {
        self.weights.as_ref().and_then(|w| w.get(i)).copied().unwrap_or(1)
    }
}

impl Strategy for LeastConnections {
    type State = LeastConnState;

    fn build(&self, endpoints: &[Arc<Endpoint>]) -> LeastConnState {
        let uniform = endpoints.windows(2).all(|w| w[0].weight() == w[1].weight());
        let weights = (!uniform).then(|| endpoints.iter().map(|e| e.weight()).collect());
        let mut chunks: Vec<Arc<Chunk>> = Vec::new();
        // Slab chunk index → position in `chunks`.
        let mut position: Vec<Option<usize>> = Vec::new();
        let mut lanes = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            let slot = e.slot();
            let index = slot.chunk_index();
            if position.len() <= index {
                position.resize(index + 1, None);
            }
            let at = *position[index].get_or_insert_with(|| {
                chunks.push(Arc::clone(slot.chunk()));
                chunks.len() - 1
            });
            lanes.push((at * LANES + slot.lane()) as u32);
        }
        LeastConnState { weights, chunks, lanes, floor: Padded(AtomicU64::new(pack(0, 1))) }
    }

    #[inline]
    fn pick(&self, state: &LeastConnState, endpoints: &[Arc<Endpoint>], _: &Request<'_>) -> usize {
        if state.len() != endpoints.len() || state.len() == 0 {
            return 0;
        }
        match self.choices {
            Some(choices) => self.pick_sampled(choices, state),
            None => self.pick_exact(state),
        }
    }

    #[inline]
    fn released(&self, state: &LeastConnState, endpoint: &Endpoint) {
        if self.choices.is_some() {
            return;
        }
        let floor = state.floor.0.load(Ordering::SeqCst);
        let (floor_load, floor_weight) = unpack(floor);
        if floor_load == 0 {
            // Nothing is below a floor of 0: spare reading the count.
            return;
        }
        let load = endpoint.slot().in_flight_seen(&Reader::new(self.view_age));
        let weight = if state.weights.is_some() { endpoint.weight() } else { 1 };
        if Self::lighter(load, weight, floor_load, floor_weight) {
            // Below the floor: lower it (bounded; each failure means it moved).
            let mut current = floor;
            for _ in 0..8 {
                match state.floor.0.compare_exchange_weak(
                    current,
                    pack(load, weight),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(_) => break,
                    Err(now) => {
                        let (l, w) = unpack(now);
                        if !Self::lighter(load, weight, l, w) {
                            break;
                        }
                        current = now;
                    }
                }
            }
        }
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
