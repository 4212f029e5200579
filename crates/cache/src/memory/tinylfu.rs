//! W-TinyLFU: a small LRU window in front of a segmented LRU main space, where a
//! newcomer pushed out of the window enters main only if the frequency sketch says it is
//! seen more often than main's eviction victim. The window's share adapts: a larger
//! window suits recency-biased traces, a smaller one frequency-biased traces. Small
//! W-TinyLFU caches with fixed windows, run on a sample of the requests, say which share
//! would be hitting most (see `sims`).
//!
//! The three segments are the three lists of one [`Arena`]: moving an entry between
//! segments relinks it (no lookup, no allocation). The policy's state (sketch,
//! simulations, segment sizes) lives with the lists, in the arena's order, under a lock
//! of its own: a hit served under the shard's shared lock leaves itself in a
//! [`ReadRing`](super::ring::ReadRing) (the batch owner's, or the shared one), which
//! the reader whose hit fills it replays if no other reader holds the policy (see
//! `ring`); a miss is replayed at once on the same condition. Reads never wait for one
//! another's replays.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use super::arena::{Arena, Recency};
use super::entry::{Entry, Now, count_eviction};
use super::reads::{Read, ReadLine};
use super::ring::{Pushed, ReadRings};
use super::sims::WindowSims;
use super::sketch::FrequencySketch;
use super::stats::Counters;
use super::tally::Tally;

/// The sketch's hash has fixed keys, as Caffeine's rehash of `hashCode` does, so a
/// replay gives the same figures every run; the admission streak (see `admit`) is what
/// blunts an attacker who crafts collisions. foldhash, as the tables use (SipHash
/// cost a hit about a third of its time).
type SketchHasher = foldhash::fast::FixedState;
/// The sketch hash's default seed (any constant: it fixes the figures of a replay; the
/// builder's `sketch_seed` replaces it).
pub(crate) const DEFAULT_SKETCH_SEED: u64 = 0x51_7cc1_b727_220a;

/// Share of main space given to the protected segment.
const PROTECTED_SHARE: f64 = 0.8;
/// Share of the budget given to the window when it is fixed and no share is given
/// (Caffeine's initial 1 %).
pub(crate) const FIXED_WINDOW: f64 = 0.01;
/// A candidate seen this often is warm (Caffeine's hash-flooding threshold).
const WARM: u8 = 6;

/// The segments, as lists of the arena.
const WINDOW: usize = 0;
const PROBATION: usize = 1;
const PROTECTED: usize = 2;

/// The policy's state, kept in the arena's order beside the lists.
#[derive(Debug)]
pub(crate) struct Policy {
    budget: usize,
    window_max: usize,
    protected_max: usize,
    sketch: FrequencySketch,
    /// Whether this store counts its reads and writes in `sketch` (a simulation that
    /// borrows another's sketch does not; see `sims`).
    counts: bool,
    hasher: SketchHasher,
    /// The sketch hash of the last victim that refused a candidate, and how many warm
    /// candidates in a row it has refused.
    streak: (u64, usize),
    /// The simulations that choose the window's share; only with an adaptive window.
    sims: Option<Box<WindowSims>>,
    /// Reads replayed under the shard's shared lock, not yet in the shard's counters.
    hits: u64,
    misses: u64,
}

/// The lists and the policy, writable.
type Lists<'a, K, V> = Recency<'a, K, V, Policy>;

/// How a store's window is sized.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WindowChoice {
    /// This share of the budget (0 – 1), always.
    Fixed(f64),
    /// The share simulations choose, whose plain LRU holds up to `tracked` sampled
    /// entries ([`tracked_per_shard`](super::sims::tracked_per_shard)).
    Adaptive { tracked: usize },
}

#[derive(Debug)]
pub(crate) struct TinyLfuStore<K: Hash + Eq, V> {
    /// Hits left by readers, to be replayed: the batch owner's and everyone else's.
    ring: ReadRings,
    entries: Arena<K, V, Policy>,
    grow_sketch: bool,
}

impl Policy {
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    fn set_window(&mut self, window_max: usize) {
        self.window_max = window_max.min(self.budget);
        self.protected_max = ((self.budget - self.window_max) as f64 * PROTECTED_SHARE) as usize;
    }

    /// The key's sketch hash if the simulations follow it (a miss of it must reach
    /// them), else `None`.
    #[inline]
    fn sampled_hash<Q: Hash + ?Sized>(&self, key: &Q) -> Option<u64> {
        let sims = self.sims.as_ref()?;
        let hash = self.hash(key);
        sims.sampled(hash).then_some(hash)
    }

    /// TinyLFU's test: the candidate must be seen more often than the victim. `held`:
    /// the entries the cache holds.
    ///
    /// A victim that keeps turning candidates away is let go once it has refused as
    /// many candidates, one after another, as the cache holds entries: the next warm
    /// candidate takes its place. An attacker who collides a victim with a hot key in
    /// the sketch cannot pin it for longer than that. Caffeine admits a warm candidate at random (1 in 128) instead; on loops
    /// and scans those random admissions each evict the entry needed soonest, and cost
    /// up to 6.5 points (scan at 1,500 entries, docs/benchmarks.md). The streak is
    /// deterministic, so a replay gives the same figures every run.
    fn admit(&mut self, candidate: u64, victim: u64, held: usize) -> bool {
        let cf = self.sketch.frequency(candidate);
        let vf = self.sketch.frequency(victim);
        if cf > vf {
            return true;
        }
        if self.streak.0 == victim {
            self.streak.1 += 1;
        } else {
            self.streak = (victim, 1);
        }
        if cf >= WARM && self.streak.1 > held {
            self.streak = (0, 0);
            return true;
        }
        false
    }
}

impl<K: Hash, V> Lists<'_, K, V> {
    /// A recorded read. A hit moves its entry up (a probation entry into protected) and
    /// counts in the sketch; hit or miss, if the simulations follow the key, it is
    /// replayed in them, and the window may change. (Whoever recorded it counted it.)
    fn replay(&mut self, read: Read) {
        let (hash, found) = match read {
            Read::Hit(i) => {
                let Some(n) = self.node(i) else { return };
                let (hash, weight) = (self.policy().hash(&n.key), n.weight());
                if self.list_of(i) == Some(PROBATION) {
                    self.move_front(i, PROTECTED);
                    self.demote_protected_overflow();
                } else {
                    self.touch(i);
                }
                // A miss is counted in the sketch by the insert that follows it (as
                // Caffeine does), so a newcomer is not counted twice.
                let p = self.policy();
                if p.counts {
                    p.sketch.increment(hash);
                }
                (Some(hash), Some(weight))
            }
            Read::Miss(hash) => (hash, None),
        };
        let p = self.policy();
        let window = match (&mut p.sims, hash) {
            (Some(sims), Some(hash)) => sims.read(hash, found),
            _ => None,
        };
        if let Some(window) = window {
            self.resize_window(window);
        }
    }

    fn demote_protected_overflow(&mut self) {
        while self.used(PROTECTED) > self.policy().protected_max {
            let Some((i, _)) = self.lru_of(PROTECTED) else { break };
            self.move_front(i, PROBATION);
        }
    }

    /// Gives the window `window` weight units and main the rest, protected its share of
    /// that: exactly the configuration the simulation of that share runs. (Caffeine's
    /// `increaseWindow` moves quota from the protected segment alone, which kept the
    /// window under about 80 % of the budget however far the simulations pointed: at
    /// plain LRU's share the cache still filtered a fifth of itself by frequency.)
    /// Entries move rather than being evicted: a larger window takes main's least
    /// recent entries, probation's first, while they fit; a smaller one hands its
    /// least recent ones to probation.
    fn resize_window(&mut self, window: usize) {
        self.policy().set_window(window);
        loop {
            let room = self.policy().window_max.saturating_sub(self.used(WINDOW));
            let from = match self.lru_of(PROBATION) {
                Some((i, w)) if w <= room => Some(i),
                _ => match self.lru_of(PROTECTED) {
                    Some((i, w)) if w <= room => Some(i),
                    _ => None,
                },
            };
            let Some(i) = from else { break };
            self.move_front(i, WINDOW);
        }
        while self.used(WINDOW) > self.policy().window_max {
            let Some((i, _)) = self.lru_of(WINDOW) else { break };
            self.move_front(i, PROBATION);
        }
        self.demote_protected_overflow();
    }
}

impl<K: Hash + Eq, V: Clone> TinyLfuStore<K, V> {
    /// `expected_entries`: a sizing hint for the sketch; without one it grows with the
    /// number of entries held.
    /// `window`: the window's share of the budget, fixed, or chosen by simulations.
    /// `hasher`: the cache's, which gives the hash [`get`](Self::get) takes.
    /// `sketch_seed`: the seed of the sketch's own hash.
    pub(crate) fn new(
        budget: usize,
        expected_entries: Option<usize>,
        window: WindowChoice,
        hasher: hashbrown::DefaultHashBuilder,
        sketch_seed: u64,
    ) -> Self {
        let (sims, window) = match window {
            WindowChoice::Fixed(share) => (None, (budget as f64 * share) as usize),
            WindowChoice::Adaptive { tracked } => {
                let sims = WindowSims::new(budget, sketch_seed, tracked);
                let window = sims.initial_window();
                (Some(Box::new(sims)), window)
            }
        };
        let mut policy = Policy {
            budget,
            window_max: 0,
            protected_max: 0,
            sketch: FrequencySketch::new(expected_entries.unwrap_or(64)),
            counts: true,
            hasher: SketchHasher::with_seed(sketch_seed),
            streak: (0, 0),
            sims,
            hits: 0,
            misses: 0,
        };
        policy.set_window(window);
        Self {
            ring: ReadRings::default(),
            entries: Arena::with_policy(hasher, policy),
            grow_sketch: expected_entries.is_none(),
        }
    }

    /// The frequency sketch, to lend to a store that does not count
    /// ([`stop_counting`](Self::stop_counting)).
    pub(crate) fn sketch_mut(&mut self) -> &mut FrequencySketch {
        &mut self.entries.policy().sketch
    }

    /// From now on this store counts nothing in its sketch: whoever drives it lends it
    /// a sketch that counts the same requests ([`sketch_mut`](Self::sketch_mut)), as the
    /// simulations of one shard share one.
    pub(crate) fn stop_counting(&mut self) {
        let p = self.entries.policy();
        p.counts = false;
        p.sketch = FrequencySketch::new(0);
    }

    /// Weight held; takes the order's lock (see [`Arena::used`]).
    pub(crate) fn used(&self) -> usize {
        self.entries.used_total()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A read under the shard's shared lock: a live entry's value, its hit left in a
    /// ring (the batch owner's own, if `reads` says the caller owns the shard's batch
    /// of reads, else the shared one), which the reader that fills it replays, unless
    /// another reader is replaying already (then a hit that finds the ring full is
    /// dropped, and counted in `tally`). A miss is replayed at once, or dropped under the same condition.
    /// `None` when the read needs the exclusive lock: an expired entry (it is dropped).
    /// `hash`: the cache's hash of `key`.
    #[inline]
    pub(crate) fn read<Q>(
        &self,
        hash: u64,
        key: &Q,
        now: &Now<'_>,
        reads: &ReadLine,
        tally: &Arc<Tally>,
    ) -> Option<Option<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some((i, n)) = self.entries.get(hash, key) else {
            self.read_miss(key, tally);
            return Some(None);
        };
        if n.is_expired(now) {
            return None;
        }
        let value = n.value.clone();
        // The batch's owner leaves its hits in a ring of its own, without a locked
        // instruction (see `ring`).
        let pushed = self.ring.push(i, !reads.join());
        if pushed != Pushed::Kept {
            // The ring is full: replay it, unless another reader already is.
            if let Some(mut held) = self.entries.try_recency() {
                let mut lists = held.recency();
                let replayed = self.ring.drain(|j| lists.replay(Read::Hit(j)));
                lists.policy().hits += replayed as u64;
            }
        }
        // A hit left in the ring is counted when it is replayed; a dropped one, here.
        if pushed == Pushed::Dropped {
            tally.dropped_hit();
        }
        Some(Some(value))
    }

    /// A miss under the shared lock: replayed at once (after the hits waiting in the
    /// ring, which came before it) if no other reader holds the policy; else its effect
    /// on the policy is dropped, and it is counted in `tally`.
    #[inline(never)]
    fn read_miss<Q>(&self, key: &Q, tally: &Arc<Tally>)
    where
        Q: Hash + ?Sized,
    {
        let Some(mut held) = self.entries.try_recency() else {
            tally.dropped_miss();
            return;
        };
        let mut lists = held.recency();
        let replayed = self.ring.drain(|j| lists.replay(Read::Hit(j)));
        let sampled = lists.policy().sampled_hash(key);
        lists.replay(Read::Miss(sampled));
        let p = lists.policy();
        p.hits += replayed as u64;
        p.misses += 1;
    }

    /// Replays the hits left in the ring and moves the hits counted under the shared
    /// lock into `c`: what the shard's exclusive holder does before anything else.
    #[inline]
    pub(crate) fn settle(&mut self, c: &mut Counters) {
        let p = self.entries.policy();
        if p.hits == 0 && p.misses == 0 && self.ring.is_empty() {
            return;
        }
        self.replay_ring(c);
    }

    /// [`settle`](Self::settle) with something to settle: out of line, so that an
    /// exclusive holder that finds nothing (most writes but the first after reads)
    /// does not pay for the replay's code.
    #[inline(never)]
    fn replay_ring(&mut self, c: &mut Counters) {
        let Self { ring, entries, .. } = self;
        let mut lists = entries.recency();
        let replayed = ring.drain(|i| lists.replay(Read::Hit(i)));
        let p = lists.policy();
        c.hits += p.hits + replayed as u64;
        c.misses += p.misses;
        p.hits = 0;
        p.misses = 0;
    }

    /// A read under the exclusive lock (the ring replayed).
    pub(crate) fn get<Q>(&mut self, table_hash: u64, key: &Q, now: &Now<'_>, c: &mut Counters) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let found = match self.entries.get(table_hash, key) {
            Some((i, n)) if !n.is_expired(now) => Some((i, n.value.clone())),
            Some((i, _)) => {
                self.entries.remove(i);
                c.evictions.expired += 1;
                None
            }
            None => None,
        };
        match found {
            Some((i, value)) => {
                c.hits += 1;
                self.entries.recency().replay(Read::Hit(i));
                Some(value)
            }
            None => {
                c.misses += 1;
                let sampled = self.entries.policy().sampled_hash(key);
                self.entries.recency().replay(Read::Miss(sampled));
                None
            }
        }
    }

    /// The caller has checked `entry.weight <= budget`. `table_hash`: the cache's hash of
    /// `key`.
    pub(crate) fn insert(
        &mut self,
        table_hash: u64,
        key: K,
        entry: Entry<V>,
        now: &Now<'_>,
        c: &mut Counters,
    ) {
        let p = self.entries.policy();
        let hash = p.hash(&key);
        if p.counts {
            p.sketch.increment(hash);
        }
        if let Some(sims) = p.sims.as_mut() {
            sims.insert(hash, entry.weight);
        }
        c.inserts += 1;
        // An update keeps the entry's segment and makes it the segment's most recent.
        let (i, replaced) = self.entries.upsert_hashed(table_hash, key, entry, WINDOW);
        if replaced.is_some() {
            c.evictions.replaced += 1;
            let mut lists = self.entries.recency();
            if lists.list_of(i) == Some(PROTECTED) {
                lists.demote_protected_overflow();
            }
        } else if self.grow_sketch && self.entries.policy().counts {
            // Entries that weigh nothing can outnumber the budget's units; the sketch
            // stops growing there.
            let held = self.len().min(self.entries.policy().budget);
            self.entries.policy().sketch.ensure_capacity(held);
        }
        self.evict(now, c);
    }

    fn evict(&mut self, now: &Now<'_>, c: &mut Counters) {
        loop {
            let mut lists = self.entries.recency();
            if lists.used(WINDOW) <= lists.policy().window_max {
                break;
            }
            let Some((ci, cw)) = lists.lru_of(WINDOW) else { break };
            // The candidate leaves the window; it is in no list while victims are chosen.
            lists.unlink(ci);
            let Some(ch) = lists.node(ci).map(|n| lists.policy().hash(&n.key)) else { break };
            let mut admitted = true;
            loop {
                let held = self.entries.len();
                let mut lists = self.entries.recency();
                if lists.used_total() + cw <= lists.policy().budget {
                    break;
                }
                let victim = [PROBATION, PROTECTED]
                    .into_iter()
                    .find_map(|seg| lists.lru_of(seg))
                    .and_then(|(i, _)| lists.node(i).map(|n| (i, n)))
                    .map(|(i, n)| (i, lists.policy().hash(&n.key), n.is_expired(now)));
                let Some((vi, vh, v_expired)) = victim else {
                    admitted = false;
                    break;
                };
                if v_expired || lists.policy().admit(ch, vh, held) {
                    if let Some((_, e)) = self.entries.remove(vi) {
                        count_eviction(&e, now, c);
                    }
                } else {
                    admitted = false;
                    break;
                }
            }
            if admitted {
                self.entries.link_front(ci, PROBATION);
            } else if let Some((_, e)) = self.entries.remove(ci) {
                count_eviction(&e, now, c);
            }
        }
        // The window may have grown past what main leaves free.
        loop {
            let mut lists = self.entries.recency();
            if lists.used_total() <= lists.policy().budget {
                break;
            }
            let lru = [PROBATION, PROTECTED, WINDOW].into_iter().find_map(|seg| lists.lru_of(seg));
            let Some((i, _)) = lru else { break };
            match self.entries.remove(i) {
                Some((_, e)) => count_eviction(&e, now, c),
                None => break,
            }
        }
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q, c: &mut Counters) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let p = self.entries.policy();
        let hash = p.hash(key);
        if let Some(sims) = p.sims.as_mut() {
            sims.remove(hash);
        }
        let i = self.entries.find(key)?;
        let (_, e) = self.entries.remove(i)?;
        c.evictions.removed += 1;
        Some(e.value)
    }

    pub(crate) fn contains<Q>(&self, key: &Q, now: &Now<'_>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.find(key).and_then(|i| self.entries.node(i)).is_some_and(|n| !n.is_expired(now))
    }

    pub(crate) fn purge_expired(&mut self, now: &Now<'_>, c: &mut Counters) {
        for i in self.entries.expired(now) {
            if self.entries.remove(i).is_some() {
                c.evictions.expired += 1;
            }
        }
    }

    /// Sampled entries its window simulations track and their sample's shift, if it
    /// has them (tests).
    #[cfg(test)]
    pub(crate) fn sims_tracked(&mut self) -> Option<(usize, u32)> {
        self.entries.policy().sims.as_ref().map(|s| s.tracked())
    }

    /// The segment holding `key` (tests).
    #[cfg(test)]
    pub(crate) fn segment_of(&mut self, key: &K) -> Option<usize> {
        let i = self.entries.find(key)?;
        self.entries.list_of(i)
    }

    /// The segment holding `key`, read under a shared hold with the policy's lock and
    /// without replaying the ring (tests).
    #[cfg(test)]
    pub(crate) fn segment_of_shared(&self, key: &K) -> Option<usize> {
        let i = self.entries.find(key)?;
        self.entries.try_recency()?.recency().list_of(i)
    }

    /// The policy's lock, as a reader that replays takes it (tests).
    #[cfg(test)]
    pub(crate) fn hold_policy(&self) -> Option<super::arena::HeldOrder<'_, K, V, Policy>> {
        self.entries.try_recency()
    }

    pub(crate) fn clear(&mut self, c: &mut Counters) {
        c.evictions.removed += self.len() as u64;
        if let Some(sims) = self.entries.policy().sims.as_mut() {
            sims.clear();
        }
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeClock;
    use crate::memory::entry::NEVER;
    use crate::memory::sims::tracked_per_shard;

    impl TinyLfuStore<u64, ()> {
        fn admit(&mut self, candidate: u64, victim: u64) -> bool {
            let held = self.len();
            self.entries.policy().admit(candidate, victim, held)
        }
    }

    fn store_of(n: u64) -> TinyLfuStore<u64, ()> {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut s = TinyLfuStore::new(
            16,
            Some(16),
            WindowChoice::Fixed(FIXED_WINDOW),
            hasher.clone(),
            DEFAULT_SKETCH_SEED,
        );
        let clock = FakeClock::new();
        let mut c = Counters::default();
        for k in 0..n {
            let entry = Entry { value: (), weight: 1, expires: NEVER };
            s.insert(hasher.hash_one(k), k, entry, &Now::new(&clock), &mut c);
        }
        s
    }

    #[test]
    fn the_sketch_grows_with_the_entries_held_up_to_the_budget() {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let clock = FakeClock::new();
        let mut c = Counters::default();
        let mut s = TinyLfuStore::<u64, ()>::new(
            100,
            None,
            WindowChoice::Adaptive { tracked: tracked_per_shard(1) },
            hasher.clone(),
            DEFAULT_SKETCH_SEED,
        );
        let words = |s: &mut TinyLfuStore<u64, ()>| s.sketch_mut().words();
        assert_eq!(words(&mut s), 64);
        // Entries that weigh nothing: all 10,000 fit in a budget of 100 units, but the
        // sketch is sized for at most 100.
        for k in 0..10_000_u64 {
            let entry = Entry { value: (), weight: 0, expires: NEVER };
            s.insert(hasher.hash_one(k), k, entry, &Now::new(&clock), &mut c);
        }
        assert_eq!(s.len(), 10_000);
        assert_eq!(words(&mut s), 128, "the power of two above the budget's 100 units");
    }

    #[test]
    fn a_hot_victim_refuses_warm_candidates_for_as_many_entries_as_are_held_then_goes() {
        let mut s = store_of(8);
        let (victim, warm, cold) = (
            s.entries.policy().hash(&1000_u64),
            s.entries.policy().hash(&1001_u64),
            s.entries.policy().hash(&1002_u64),
        );
        for _ in 0..15 {
            s.entries.policy().sketch.increment(victim);
        }
        for _ in 0..WARM {
            s.entries.policy().sketch.increment(warm);
        }
        assert!(s.entries.policy().sketch.frequency(warm) < s.entries.policy().sketch.frequency(victim));
        let held = s.len();
        assert_eq!(held, 8);
        for i in 0..held {
            assert!(!s.admit(warm, victim), "admitted at refusal {i}");
        }
        assert!(s.admit(warm, victim), "a victim that refused {held} warm candidates in a row stays");
        // The streak starts over; a cold candidate never gets in on it, but counts in it.
        for i in 0..(3 * held) {
            assert!(!s.admit(cold, victim), "cold candidate admitted at {i}");
        }
        assert!(s.admit(warm, victim));
        // Another victim breaks the streak.
        let other = s.entries.policy().hash(&1003_u64);
        for _ in 0..15 {
            s.entries.policy().sketch.increment(other);
        }
        for _ in 0..held {
            assert!(!s.admit(warm, victim));
            assert!(!s.admit(warm, other));
        }
    }

    #[test]
    fn a_candidate_seen_more_often_than_the_victim_is_admitted() {
        let mut s = store_of(4);
        let (victim, candidate) = (s.entries.policy().hash(&2000_u64), s.entries.policy().hash(&2001_u64));
        s.entries.policy().sketch.increment(victim);
        s.entries.policy().sketch.increment(candidate);
        s.entries.policy().sketch.increment(candidate);
        assert!(s.admit(candidate, victim));
        assert!(!s.admit(victim, candidate));
    }

    #[test]
    fn the_window_takes_the_simulated_share_whole_up_to_plain_lru_and_back() {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut s: TinyLfuStore<u64, ()> = TinyLfuStore::new(
            100,
            Some(100),
            WindowChoice::Fixed(FIXED_WINDOW),
            hasher.clone(),
            DEFAULT_SKETCH_SEED,
        );
        let clock = FakeClock::new();
        let now = Now::new(&clock);
        let mut c = Counters::default();
        let put = |s: &mut TinyLfuStore<u64, ()>, k: u64, c: &mut Counters| {
            s.insert(hasher.hash_one(k), k, Entry { value: (), weight: 1, expires: NEVER }, &now, c);
        };
        for k in 0..100 {
            put(&mut s, k, &mut c);
        }
        // Hits move some of main into protected.
        for k in 0..50 {
            assert!(s.get(hasher.hash_one(k), &k, &now, &mut c).is_some());
        }
        let segments = |s: &mut TinyLfuStore<u64, ()>| {
            let mut n = [0; 3];
            for k in 0..200 {
                if let Some(seg) = s.segment_of(&k) {
                    n[seg] += 1;
                }
            }
            n
        };
        assert!(segments(&mut s)[PROTECTED] > 0, "{:?}", segments(&mut s));
        // Plain LRU's share: the whole budget is window, and the cache is plain LRU.
        s.entries.recency().resize_window(100);
        let p = s.entries.policy();
        assert_eq!((p.window_max, p.protected_max), (100, 0));
        assert_eq!(segments(&mut s), [100, 0, 0], "every entry moved into the window");
        for k in 100..150 {
            put(&mut s, k, &mut c);
        }
        assert_eq!(s.len(), 100);
        assert_eq!(segments(&mut s), [100, 0, 0], "newcomers evict the least recent, unfiltered");
        assert!((100..150).all(|k| s.contains(&k, &now)), "no newcomer was refused");
        // Back to 1 %: the window's least recent entries go to probation, not out.
        s.entries.recency().resize_window(1);
        let p = s.entries.policy();
        assert_eq!((p.window_max, p.protected_max), (1, 79));
        assert_eq!(segments(&mut s), [1, 99, 0]);
        assert_eq!(s.len(), 100);
    }
}
