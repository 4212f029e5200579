//! A shadow LRU: the key hashes (and weights) a plain LRU of the same budget would hold,
//! so the hill climber can tell when plain LRU would be hitting more than W-TinyLFU.
//!
//! Past `MAX_TRACKED` hashes it samples, as SHARDS does (Waldspurger et al., "Efficient
//! MRC Construction with SHARDS", FAST 2015): it follows only the keys whose hash falls
//! in a 1/2^shift slice, in an LRU of 1/2^shift the budget, so its cost stays bounded
//! however many entries the shard holds.

use super::arena::Arena;
use super::entry::{Entry, NEVER};

/// Most hashes followed at once (about 50 bytes each: a 32-byte arena node, 12 bytes of
/// links and a hash slot).
const MAX_TRACKED: usize = 2048;
/// The arena's one list.
const LIST: usize = 0;
/// Sampling never gets sparser than 1 in 2^20.
const MAX_SHIFT: u32 = 20;

#[derive(Debug)]
pub(crate) struct ShadowLru {
    /// Hash → weight, in one recency list; the arena keeps the list's weight.
    map: Arena<u64, ()>,
    budget: usize,
    shift: u32,
}

impl ShadowLru {
    pub(crate) fn new(budget: usize) -> Self {
        Self { map: Arena::new(), budget, shift: 0 }
    }

    /// Whether the key of this hash is in the sample.
    #[inline]
    pub(crate) fn sampled(&self, hash: u64) -> bool {
        Self::in_sample(hash, self.shift)
    }

    #[inline]
    fn in_sample(hash: u64, shift: u32) -> bool {
        (hash >> 32) & ((1_u64 << shift) - 1) == 0
    }

    /// A read of a sampled key: whether plain LRU would hit (and the key is now its most
    /// recent).
    pub(crate) fn get(&mut self, hash: u64) -> bool {
        match self.map.find(&hash) {
            Some(i) => {
                self.map.touch(i);
                true
            }
            None => false,
        }
    }

    /// A sampled key written (or found in the real cache while LRU would have lost it):
    /// it becomes the most recent, with this weight.
    pub(crate) fn insert(&mut self, hash: u64, weight: usize) {
        let entry = Entry { value: (), weight, expires: NEVER };
        match self.map.find(&hash) {
            Some(i) => {
                self.map.replace(i, entry);
            }
            None => {
                if self.map.len() == MAX_TRACKED {
                    // One more node than MAX_TRACKED, not twice as many: sampling is
                    // about to halve them.
                    self.map.reserve_exact(1);
                }
                self.map.insert(hash, entry, LIST);
            }
        }
        let budget = self.budget >> self.shift;
        while self.map.recency().used(LIST) > budget {
            let Some((i, _)) = self.map.lru_of(LIST) else { break };
            self.map.remove(i);
        }
        if self.map.len() > MAX_TRACKED && self.shift < MAX_SHIFT {
            self.shift += 1;
            let shift = self.shift;
            self.map.retain(|&h| Self::in_sample(h, shift));
        }
    }

    pub(crate) fn remove(&mut self, hash: u64) {
        if let Some(i) = self.map.find(&hash) {
            self.map.remove(i);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_an_lru_of_the_budget() {
        let mut s = ShadowLru::new(3);
        for h in [1, 2, 3] {
            assert!(!s.get(h));
            s.insert(h, 1);
        }
        assert!(s.get(1));
        s.insert(4, 1); // evicts 2, the least recent
        assert!(!s.get(2));
        assert!(s.get(1) && s.get(3) && s.get(4));
        s.remove(3);
        assert!(!s.get(3));
    }

    #[test]
    fn samples_once_it_follows_too_many_keys() {
        let mut s = ShadowLru::new(1 << 20);
        let mut h = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..(4 * MAX_TRACKED) {
            h = h.wrapping_mul(0x2545_f491_4f6c_dd1d).wrapping_add(1);
            if s.sampled(h) {
                s.insert(h, 1);
            }
        }
        assert!(s.shift > 0);
        assert!(s.map.len() <= MAX_TRACKED);
        assert_eq!(s.map.used(LIST), s.map.len());
    }
}
