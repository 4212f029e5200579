//! One shard: a store (plain LRU or W-TinyLFU), its counters and its read buffer, behind
//! one reader-writer lock.
//!
//! A read takes the lock shared, finds the entry, clones its value and records the read
//! in the buffer ([`read`](Shard::read)), or, under W-TinyLFU, in the store's ring;
//! everything else takes it exclusive and first replays both ([`drain`](Shard::drain)),
//! so the policy sees every recorded read before it decides anything.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;

use super::entry::{Entry, Now};
use super::lru_store::LruStore;
use super::reads::{Read, ReadBuffer, Recorded};
use super::stats::Counters;
use super::tally::Tally;
use super::tinylfu::TinyLfuStore;
use super::window::HitWindow;

#[derive(Debug)]
pub(crate) enum Store<K: Hash + Eq, V> {
    Lru(LruStore<K, V>),
    TinyLfu(Box<TinyLfuStore<K, V>>),
}

/// `repr(C)`, the read buffer first: right after the lock word, on its cache line, so a
/// read under the shared lock writes that line and nothing else of the shard.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Shard<K: Hash + Eq, V> {
    pub(crate) reads: ReadBuffer,
    /// Right after the buffer: a read finds its key in the store's table.
    pub(crate) store: Store<K, V>,
    /// Counts of what was replayed or done under the exclusive lock; see
    /// [`counters`](Self::counters) for the totals.
    counters: Counters,
    /// Reads over a sliding window, when the builder asked for one.
    pub(crate) window: Option<HitWindow>,
    /// Writes left whose read batches start shared (see `reads`).
    sticky_left: u8,
}

impl<K: Hash + Eq, V: Clone> Shard<K, V> {
    pub(crate) fn new(store: Store<K, V>, window: Option<HitWindow>) -> Self {
        Self { reads: ReadBuffer::default(), store, counters: Counters::default(), window, sticky_left: 0 }
    }

    /// A read under the shared lock: the value, if any, and whether the read buffer wants
    /// draining. `None` when the read needs the exclusive lock ([`get`](Self::get)): the
    /// entry has expired (it is dropped), or a stats window counts reads by time. The
    /// cache sends those reads to [`get`](Self::get). `hash`: the cache's hash of `key`.
    #[inline]
    pub(crate) fn read<Q>(
        &self,
        hash: u64,
        key: &Q,
        now: &Now<'_>,
        tally: &Arc<Tally>,
    ) -> Option<(Option<V>, Recorded)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.window.is_some() {
            return None;
        }
        match &self.store {
            Store::Lru(s) => s.read(hash, key, now, &self.reads, tally),
            Store::TinyLfu(s) => s.read(hash, key, now, tally),
        }
    }

    /// Replays the read buffer into the policy and the counters, oldest read first.
    #[inline]
    pub(crate) fn drain(&mut self) {
        if let Store::TinyLfu(s) = &mut self.store {
            s.settle(&mut self.counters);
        }
        if self.reads.is_empty() {
            // A batch that recorded nothing (shared from the start) ends here too.
            self.reads.restart(&mut self.sticky_left);
            return;
        }
        self.replay_reads();
    }

    /// [`drain`](Self::drain) of a buffer with reads in it: out of line, so that a write
    /// that finds the buffer empty (most writes but the first after reads) does not pay
    /// for the replay's code.
    #[inline(never)]
    fn replay_reads(&mut self) {
        let Self { reads, counters, store, sticky_left, .. } = self;
        let (hits, misses) = match store {
            Store::Lru(s) => reads.drain(sticky_left, |i, shared| s.replay(i, shared)),
            // W-TinyLFU's reads go to its ring and leave this buffer empty.
            Store::TinyLfu(s) => reads.drain(sticky_left, |i, _| s.replay(Read::Hit(i))),
        };
        // The owner's reads, counted from the batch.
        counters.hits += hits;
        counters.misses += misses;
    }

    /// Every count, the reads counted in the read buffer included (not those in the
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
            Store::Lru(s) => s.get(hash, key, now, &mut self.counters),
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
            Store::Lru(s) => s.insert(hash, key, entry, now, &mut self.counters),
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
