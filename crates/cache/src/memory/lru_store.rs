//! Plain LRU over the lru crate, bounded by weight.

use std::borrow::Borrow;
use std::hash::Hash;

use lru::LruCache;

use crate::clock::Clock;

use super::entry::{Entry, count_eviction};
use super::stats::Counters;

#[derive(Debug)]
pub(crate) struct LruStore<K: Hash + Eq, V> {
    map: LruCache<K, Entry<V>>,
    used: usize,
    budget: usize,
}

impl<K: Hash + Eq, V: Clone> LruStore<K, V> {
    pub(crate) fn new(budget: usize) -> Self {
        Self { map: LruCache::unbounded(), used: 0, budget }
    }

    pub(crate) fn used(&self) -> usize {
        self.used
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get<Q>(&mut self, key: &Q, clock: &dyn Clock, c: &mut Counters) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.map.get(key) {
            Some(e) if !e.is_expired(clock) => {
                c.hits += 1;
                Some(e.value.clone())
            }
            Some(_) => {
                if let Some(e) = self.map.pop(key) {
                    self.used -= e.weight;
                }
                c.evictions.expired += 1;
                c.misses += 1;
                None
            }
            None => {
                c.misses += 1;
                None
            }
        }
    }

    /// The caller has checked `entry.weight <= budget`.
    pub(crate) fn insert(&mut self, key: K, entry: Entry<V>, clock: &dyn Clock, c: &mut Counters) {
        if let Some(old) = self.map.pop(&key) {
            self.used -= old.weight;
            c.evictions.replaced += 1;
        }
        while self.used + entry.weight > self.budget {
            match self.map.pop_lru() {
                Some((_, victim)) => {
                    self.used -= victim.weight;
                    count_eviction(&victim, clock, c);
                }
                None => break,
            }
        }
        self.used += entry.weight;
        c.inserts += 1;
        self.map.push(key, entry);
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q, c: &mut Counters) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let e = self.map.pop(key)?;
        self.used -= e.weight;
        c.evictions.removed += 1;
        Some(e.value)
    }

    pub(crate) fn contains<Q>(&self, key: &Q, clock: &dyn Clock) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.peek(key).is_some_and(|e| !e.is_expired(clock))
    }

    pub(crate) fn purge_expired(&mut self, clock: &dyn Clock, c: &mut Counters) {
        let before = self.map.len();
        let mut freed = 0;
        self.map.retain(|_, e| {
            let keep = !e.is_expired(clock);
            if !keep {
                freed += e.weight;
            }
            keep
        });
        self.used -= freed;
        c.evictions.expired += (before - self.map.len()) as u64;
    }

    pub(crate) fn clear(&mut self, c: &mut Counters) {
        c.evictions.removed += self.map.len() as u64;
        self.map.clear();
        self.used = 0;
    }

    /// Keys from least to most recently used (for tests of the exact order).
    #[cfg(test)]
    pub(crate) fn keys_lru_first(&self) -> Vec<K>
    where
        K: Clone,
    {
        self.map.iter().rev().map(|(k, _)| k.clone()).collect()
    }
}
