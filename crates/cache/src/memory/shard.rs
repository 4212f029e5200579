//! One shard: a store (plain LRU or W-TinyLFU) and its counters, behind one lock.

use std::borrow::Borrow;
use std::hash::Hash;

use super::entry::{Entry, Now};
use super::lru_store::LruStore;
use super::stats::Counters;
use super::tinylfu::TinyLfuStore;
use super::window::HitWindow;

#[derive(Debug)]
pub(crate) enum Store<K: Hash + Eq, V> {
    Lru(LruStore<K, V>),
    TinyLfu(Box<TinyLfuStore<K, V>>),
}

/// `repr(C)`, counters first: with the lock just before them and the store's list
/// heads just after, a hit writes to the shard's first two cache lines only.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Shard<K: Hash + Eq, V> {
    pub(crate) counters: Counters,
    pub(crate) store: Store<K, V>,
    /// Reads over a sliding window, when the builder asked for one.
    pub(crate) window: Option<HitWindow>,
}

impl<K: Hash + Eq, V: Clone> Shard<K, V> {
    pub(crate) fn new(store: Store<K, V>, window: Option<HitWindow>) -> Self {
        Self { store, counters: Counters::default(), window }
    }

    #[inline]
    /// `hash`: the cache's hash of `key`.
    pub(crate) fn get<Q>(&mut self, hash: u64, key: &Q, now: &Now<'_>) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let found = match &mut self.store {
            Store::Lru(s) => s.get(hash, key, now, &mut self.counters),
            Store::TinyLfu(s) => s.get(hash, key, now, &mut self.counters),
        };
        if let Some(window) = &mut self.window {
            window.record(now, found.is_some());
        }
        found
    }

    pub(crate) fn insert(&mut self, key: K, entry: Entry<V>, now: &Now<'_>) {
        match &mut self.store {
            Store::Lru(s) => s.insert(key, entry, now, &mut self.counters),
            Store::TinyLfu(s) => s.insert(key, entry, now, &mut self.counters),
        }
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match &mut self.store {
            Store::Lru(s) => s.remove(key, &mut self.counters),
            Store::TinyLfu(s) => s.remove(key, &mut self.counters),
        }
    }

    pub(crate) fn contains<Q>(&self, key: &Q, now: &Now<'_>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match &self.store {
            Store::Lru(s) => s.contains(key, now),
            Store::TinyLfu(s) => s.contains(key, now),
        }
    }

    pub(crate) fn purge_expired(&mut self, now: &Now<'_>) {
        match &mut self.store {
            Store::Lru(s) => s.purge_expired(now, &mut self.counters),
            Store::TinyLfu(s) => s.purge_expired(now, &mut self.counters),
        }
    }

    pub(crate) fn clear(&mut self) {
        match &mut self.store {
            Store::Lru(s) => s.clear(&mut self.counters),
            Store::TinyLfu(s) => s.clear(&mut self.counters),
        }
    }

    pub(crate) fn used(&self) -> usize {
        match &self.store {
            Store::Lru(s) => s.used(),
            Store::TinyLfu(s) => s.used(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match &self.store {
            Store::Lru(s) => s.len(),
            Store::TinyLfu(s) => s.len(),
        }
    }
}
