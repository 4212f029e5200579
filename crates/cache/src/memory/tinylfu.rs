//! W-TinyLFU: a small LRU window in front of a segmented LRU main space, where a
//! newcomer pushed out of the window enters main only if the frequency sketch says it is
//! seen more often than main's eviction victim. The window's share adapts by hill
//! climbing, as in Caffeine: a larger window suits recency-biased traces, a smaller one
//! frequency-biased traces. A shadow LRU of the same budget keeps the climber from
//! settling where plain LRU would do better (see `climber`).

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use lru::LruCache;

use crate::clock::Clock;

use super::climber::HillClimber;
use super::entry::{Entry, count_eviction};
use super::shadow::ShadowLru;
use super::sketch::FrequencySketch;
use super::stats::Counters;

/// The sketch's hash has fixed keys, as Caffeine's rehash of `hashCode` does, so a
/// replay gives the same figures every run; the random admission of warm candidates is
/// what blunts an attacker who crafts collisions.
type SketchHasher = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

/// Share of main space given to the protected segment.
const PROTECTED_SHARE: f64 = 0.8;
/// Initial share of the budget given to the window.
const INITIAL_WINDOW: f64 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Window,
    Probation,
    Protected,
}

#[derive(Debug)]
pub(crate) struct TinyLfuStore<K: Hash + Eq, V> {
    window: LruCache<K, Entry<V>>,
    probation: LruCache<K, Entry<V>>,
    protected: LruCache<K, Entry<V>>,
    window_used: usize,
    probation_used: usize,
    protected_used: usize,
    budget: usize,
    window_max: usize,
    protected_max: usize,
    sketch: FrequencySketch,
    grow_sketch: bool,
    climber: HillClimber,
    hasher: SketchHasher,
    rng: u64,
    /// What plain LRU would hold; only with an adaptive window.
    shadow: Option<ShadowLru>,
}

impl<K: Hash + Eq, V: Clone> TinyLfuStore<K, V> {
    /// `expected_entries`: a sizing hint for the sketch; without one it grows with the
    /// number of entries held.
    pub(crate) fn new(budget: usize, expected_entries: Option<usize>, adaptive: bool) -> Self {
        let sketch = FrequencySketch::new(expected_entries.unwrap_or(64));
        let climber = HillClimber::new(budget, adaptive);
        let mut s = Self {
            window: LruCache::unbounded(),
            probation: LruCache::unbounded(),
            protected: LruCache::unbounded(),
            window_used: 0,
            probation_used: 0,
            protected_used: 0,
            budget,
            window_max: 0,
            protected_max: 0,
            sketch,
            grow_sketch: expected_entries.is_none(),
            climber,
            hasher: SketchHasher::default(),
            rng: 0x853c_49e6_748f_ea9b,
            shadow: adaptive.then(|| ShadowLru::new(budget)),
        };
        s.set_window((budget as f64 * INITIAL_WINDOW) as usize);
        s
    }

    fn set_window(&mut self, window_max: usize) {
        self.window_max = window_max.min(self.budget);
        self.protected_max = ((self.budget - self.window_max) as f64 * PROTECTED_SHARE) as usize;
    }

    pub(crate) fn used(&self) -> usize {
        self.window_used + self.probation_used + self.protected_used
    }

    pub(crate) fn len(&self) -> usize {
        self.window.len() + self.probation.len() + self.protected.len()
    }

    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    fn segment_of<Q>(&self, key: &Q) -> Option<Segment>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.window.contains(key) {
            Some(Segment::Window)
        } else if self.probation.contains(key) {
            Some(Segment::Probation)
        } else if self.protected.contains(key) {
            Some(Segment::Protected)
        } else {
            None
        }
    }

    fn take<Q>(&mut self, key: &Q, seg: Segment) -> Option<(K, Entry<V>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (map, used) = match seg {
            Segment::Window => (&mut self.window, &mut self.window_used),
            Segment::Probation => (&mut self.probation, &mut self.probation_used),
            Segment::Protected => (&mut self.protected, &mut self.protected_used),
        };
        let (k, e) = map.pop_entry(key)?;
        *used -= e.weight;
        Some((k, e))
    }

    pub(crate) fn get<Q>(&mut self, key: &Q, clock: &dyn Clock, c: &mut Counters) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        // A miss is counted in the sketch by the insert that follows it (as Caffeine
        // does), so a newcomer is not counted twice.
        let found = match self.segment_of(key) {
            None => None,
            Some(seg) => {
                let expired = self.peek(key, seg).is_some_and(|e| e.is_expired(clock));
                if expired {
                    self.take(key, seg);
                    c.evictions.expired += 1;
                    None
                } else {
                    match seg {
                        Segment::Window => self.window.get(key).map(|e| (e.value.clone(), e.weight)),
                        Segment::Protected => self.protected.get(key).map(|e| (e.value.clone(), e.weight)),
                        Segment::Probation => {
                            let (k, e) = self.take(key, seg)?;
                            let found = (e.value.clone(), e.weight);
                            self.protected_used += e.weight;
                            self.protected.push(k, e);
                            self.demote_protected_overflow();
                            Some(found)
                        }
                    }
                }
            }
        };
        if found.is_some() {
            self.sketch.increment(hash);
            c.hits += 1;
        } else {
            c.misses += 1;
        }
        let lru_hit = match &mut self.shadow {
            Some(shadow) if shadow.sampled(hash) => {
                let lru_hit = shadow.get(hash);
                // Plain LRU would have lost this key and, on the miss, stored it again.
                if let (false, Some((_, weight))) = (lru_hit, &found) {
                    shadow.insert(hash, *weight);
                }
                Some(lru_hit)
            }
            _ => None,
        };
        let warm = 2 * self.used() >= self.budget;
        if let Some(adjust) =
            self.climber.record(found.is_some(), lru_hit, warm, self.sketch.sample_size(), self.window_max)
        {
            self.adjust_window(adjust);
        }
        found.map(|(v, _)| v)
    }

    fn peek<Q>(&self, key: &Q, seg: Segment) -> Option<&Entry<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match seg {
            Segment::Window => self.window.peek(key),
            Segment::Probation => self.probation.peek(key),
            Segment::Protected => self.protected.peek(key),
        }
    }

    fn demote_protected_overflow(&mut self) {
        while self.protected_used > self.protected_max {
            let Some((k, e)) = self.protected.pop_lru() else { break };
            self.protected_used -= e.weight;
            self.probation_used += e.weight;
            self.probation.push(k, e);
        }
    }

    /// Caffeine's `increaseWindow` / `decreaseWindow`: the window's quota is taken from
    /// (or given to) the protected segment, and entries move between window and main
    /// rather than being evicted.
    fn adjust_window(&mut self, delta: i64) {
        if delta > 0 {
            let mut quota = (delta as usize).min(self.protected_max);
            self.protected_max -= quota;
            self.window_max += quota;
            self.demote_protected_overflow();
            loop {
                let from_probation = matches!(self.probation.peek_lru(), Some((_, e)) if e.weight <= quota);
                let popped = if from_probation {
                    self.probation.pop_lru()
                } else {
                    match self.protected.peek_lru() {
                        Some((_, e)) if e.weight <= quota => self.protected.pop_lru(),
                        _ => None,
                    }
                };
                let Some((k, e)) = popped else { break };
                quota -= e.weight;
                if from_probation {
                    self.probation_used -= e.weight;
                } else {
                    self.protected_used -= e.weight;
                }
                self.window_used += e.weight;
                self.window.push(k, e);
            }
            // Quota left unused goes back.
            self.protected_max += quota;
            self.window_max -= quota;
        } else if delta < 0 && self.window_max > 1 {
            let mut quota = (delta.unsigned_abs() as usize).min(self.window_max - 1);
            self.protected_max += quota;
            self.window_max -= quota;
            while let Some((_, e)) = self.window.peek_lru() {
                if e.weight > quota {
                    break;
                }
                let Some((k, e)) = self.window.pop_lru() else { break };
                quota -= e.weight;
                self.window_used -= e.weight;
                self.probation_used += e.weight;
                self.probation.push(k, e);
            }
            self.protected_max -= quota;
            self.window_max += quota;
        }
    }

    /// The caller has checked `entry.weight <= budget`.
    pub(crate) fn insert(&mut self, key: K, entry: Entry<V>, clock: &dyn Clock, c: &mut Counters) {
        let hash = self.hash(&key);
        self.sketch.increment(hash);
        if let Some(shadow) = self.shadow.as_mut().filter(|s| s.sampled(hash)) {
            shadow.insert(hash, entry.weight);
        }
        c.inserts += 1;
        if let Some(seg) = self.segment_of(&key) {
            // An update keeps the entry's place.
            if let Some((k, old)) = self.take(&key, seg) {
                c.evictions.replaced += 1;
                drop(old);
                match seg {
                    Segment::Window => {
                        self.window_used += entry.weight;
                        self.window.push(k, entry);
                    }
                    Segment::Probation => {
                        self.probation_used += entry.weight;
                        self.probation.push(k, entry);
                    }
                    Segment::Protected => {
                        self.protected_used += entry.weight;
                        self.protected.push(k, entry);
                        self.demote_protected_overflow();
                    }
                }
            }
        } else {
            self.window_used += entry.weight;
            self.window.push(key, entry);
            if self.grow_sketch {
                self.sketch.ensure_capacity(self.len());
            }
        }
        self.evict(clock, c);
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// TinyLFU's test: the candidate must be seen more often than the victim. A warm
    /// candidate is sometimes let in anyway, so an attacker cannot pin a victim by
    /// colliding it with a hot key in the sketch (Caffeine does the same).
    fn admit(&mut self, candidate: u64, victim: u64) -> bool {
        let cf = self.sketch.frequency(candidate);
        let vf = self.sketch.frequency(victim);
        if cf > vf {
            true
        } else if cf >= 6 {
            self.next_random() & 127 == 0
        } else {
            false
        }
    }

    fn evict(&mut self, clock: &dyn Clock, c: &mut Counters) {
        while self.window_used > self.window_max {
            let Some((ck, ce)) = self.window.pop_lru() else { break };
            self.window_used -= ce.weight;
            let ch = self.hash(&ck);
            let mut admitted = true;
            while self.used() + ce.weight > self.budget {
                let victim = match self.probation.peek_lru() {
                    Some((vk, ve)) => Some((self.hash(vk), ve.is_expired(clock), Segment::Probation)),
                    None => self
                        .protected
                        .peek_lru()
                        .map(|(vk, ve)| (self.hash(vk), ve.is_expired(clock), Segment::Protected)),
                };
                let Some((vh, v_expired, seg)) = victim else {
                    admitted = false;
                    break;
                };
                if v_expired || self.admit(ch, vh) {
                    self.pop_lru_of(seg, clock, c);
                } else {
                    admitted = false;
                    break;
                }
            }
            if admitted {
                self.probation_used += ce.weight;
                self.probation.push(ck, ce);
            } else {
                count_eviction(&ce, clock, c);
            }
        }
        // The window may have grown past what main leaves free.
        while self.used() > self.budget {
            let seg = if !self.probation.is_empty() {
                Segment::Probation
            } else if !self.protected.is_empty() {
                Segment::Protected
            } else {
                Segment::Window
            };
            if !self.pop_lru_of(seg, clock, c) {
                break;
            }
        }
    }

    fn pop_lru_of(&mut self, seg: Segment, clock: &dyn Clock, c: &mut Counters) -> bool {
        let (map, used) = match seg {
            Segment::Window => (&mut self.window, &mut self.window_used),
            Segment::Probation => (&mut self.probation, &mut self.probation_used),
            Segment::Protected => (&mut self.protected, &mut self.protected_used),
        };
        match map.pop_lru() {
            Some((_, e)) => {
                *used -= e.weight;
                count_eviction(&e, clock, c);
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q, c: &mut Counters) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(shadow) = self.shadow.as_mut() {
            shadow.remove(self.hasher.hash_one(key));
        }
        let seg = self.segment_of(key)?;
        let (_, e) = self.take(key, seg)?;
        c.evictions.removed += 1;
        Some(e.value)
    }

    pub(crate) fn contains<Q>(&self, key: &Q, clock: &dyn Clock) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.segment_of(key).and_then(|seg| self.peek(key, seg)).is_some_and(|e| !e.is_expired(clock))
    }

    pub(crate) fn purge_expired(&mut self, clock: &dyn Clock, c: &mut Counters) {
        for (map, used) in [
            (&mut self.window, &mut self.window_used),
            (&mut self.probation, &mut self.probation_used),
            (&mut self.protected, &mut self.protected_used),
        ] {
            let before = map.len();
            let mut freed = 0;
            map.retain(|_, e| {
                let keep = !e.is_expired(clock);
                if !keep {
                    freed += e.weight;
                }
                keep
            });
            *used -= freed;
            c.evictions.expired += (before - map.len()) as u64;
        }
    }

    pub(crate) fn clear(&mut self, c: &mut Counters) {
        c.evictions.removed += self.len() as u64;
        if let Some(shadow) = self.shadow.as_mut() {
            shadow.clear();
        }
        self.window.clear();
        self.probation.clear();
        self.protected.clear();
        self.window_used = 0;
        self.probation_used = 0;
        self.protected_used = 0;
    }
}
