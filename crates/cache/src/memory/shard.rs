//! One shard: a store (plain LRU or W-TinyLFU), its counters and its read line, behind
//! one reader-writer lock.
//!
//! A read takes the lock shared, finds the entry, clones its value, and stamps the entry
//! from the read line's clock (plain LRU) or records the read in the store's ring
//! (W-TinyLFU) ([`read`](Shard::read)); it is counted in the read line. Everything else
//! takes the lock exclusive and first replays the ring and takes the read line's counts
//! ([`drain`](Shard::drain)), so the policy sees every recorded read before it decides
//! anything.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;

use super::entry::{Entry, Now};
use super::lru_store::LruStore;
use super::reads::ReadLine;
use super::stats::Counters;
use super::tally::Tally;
use super::tinylfu::TinyLfuStore;
use super::window::HitWindow;

/// Plain LRU's store is held inline: a read goes straight to its table, with no pointer
/// to follow first (W-TinyLFU's, larger, is boxed).
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "a read reaches LRU's table without another pointer")]
pub(crate) enum Store<K: Hash + Eq, V> {
    Lru(LruStore<K, V>),
    TinyLfu(Box<TinyLfuStore<K, V>>),
}

/// `repr(C)`, the read line first: right after the lock word, on its cache line, so a
/// read under the shared lock writes that line and, under plain LRU, its entry's node.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Shard<K: Hash + Eq, V> {
    pub(crate) reads: ReadLine,
    /// Right after the read line: a read finds its key in the store's table.
    pub(crate) store: Store<K, V>,
    /// Counts of what was replayed or done under the exclusive lock; see
    /// [`counters`](Self::counters) for the totals.
    counters: Counters,
    /// Reads over a sliding window, when the builder asked for one.
    pub(crate) window: Option<HitWindow>,
}

impl<K: Hash + Eq, V: Clone> Shard<K, V> {
    pub(crate) fn new(store: Store<K, V>, window: Option<HitWindow>) -> Self {
        Self { reads: ReadLine::default(), store, counters: Counters::default(), window }
    }

    /// A read under the shared lock: the value, if any. `None` when the read needs the
    /// exclusive lock ([`get`](Self::get)): the entry has expired (it is dropped). (A
    /// cache whose stats window counts reads by time sends every read to `get`.) `hash`: the cache's hash of `key`.
    #[inline]
    pub(crate) fn read<Q>(&self, hash: u64, key: &Q, now: &Now<'_>, tally: &Arc<Tally>) -> Option<Option<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // A cache with a stats window reads under the exclusive lock only.
        debug_assert!(self.window.is_none(), "a stats window's reads come to `get`");
        match &self.store {
            Store::Lru(s) => s.read(hash, key, now, &self.reads, tally),
            Store::TinyLfu(s) => s.read(hash, key, now, &self.reads, tally),
        }
    }

    /// Replays W-TinyLFU's ring into the policy, and moves the reads counted in the read
    /// line into the counters.
    #[inline]
    pub(crate) fn drain(&mut self) {
        if let Store::TinyLfu(s) = &mut self.store {
            s.settle(&mut self.counters);
        }
        let (hits, misses) = self.reads.take_counts();
        self.counters.hits += hits;
        self.counters.misses += misses;
    }

    /// Every count, the reads counted in the read line included (not those in the
    /// cache's [`Tally`]).
    pub(crate) fn counters(&self) -> Counters {
        let mut c = self.counters;
        let (hits, misses) = self.reads.counts();
        c.hits += hits;
        c.misses += misses;
        c
    }

    /// A read under the exclusive lock, after the reads recorded before it.
    /// `hash`: the cache's hash of `key`.
    pub(crate) fn get<Q>(&mut self, hash: u64, key: &Q, now: &Now<'_>) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.drain();
        let found = match &mut self.store {
            Store::Lru(s) => s.get(hash, key, now, &self.reads, &mut self.counters),
            Store::TinyLfu(s) => s.get(hash, key, now, &mut self.counters),
        };
        if let Some(window) = &mut self.window {
            window.record(now, found.is_some());
        }
        found
    }

    /// `hash`: the cache's hash of `key`.
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, key: K, entry: Entry<V>, now: &Now<'_>) {
        self.drain();
        match &mut self.store {
            Store::Lru(s) => s.insert(hash, key, entry, self.reads.stamp(), now, &mut self.counters),
            Store::TinyLfu(s) => s.insert(hash, key, entry, now, &mut self.counters),
        }
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.drain();
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
        self.drain();
        match &mut self.store {
            Store::Lru(s) => s.purge_expired(now, &mut self.counters),
            Store::TinyLfu(s) => s.purge_expired(now, &mut self.counters),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.drain();
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
