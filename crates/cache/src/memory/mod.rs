//! The in-memory cache (L1): sharded and byte-bounded, each shard an arena of entries
//! under one reader-writer lock, with a read buffer that lets hits take it shared.

mod arena;
mod builder;
mod entry;
mod load;
mod lru_store;
mod reads;
mod ring;
mod shard;
mod sims;
mod sketch;
mod stamps;
mod stats;
mod tally;
mod tinylfu;
mod window;

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::Clock;
use crate::error::{Error, ErrorKind, Result};
use crate::flight::Flights;
use crate::weigh::Weigh;

pub use builder::{Admission, DEFAULT_MAX_BYTES, MAX_SHARDS, MemoryCacheBuilder};
pub use stats::{Evictions, Stats, WindowStats};

use builder::Weigher;
use entry::{Entry, Now};
use shard::Shard;
use tally::Tally;

/// Keeps each shard's lock (and the read buffer on its line) on its own cache lines, so
/// two threads working on different shards do not bounce one line between cores.
#[repr(align(128))]
#[derive(Debug)]
pub(crate) struct Padded<T>(pub(crate) T);

/// A byte-bounded, sharded in-memory cache. Cloning is cheap and shares the cache.
///
/// See the [crate docs](crate) for an example and the design.
pub struct MemoryCache<K: Hash + Eq, V> {
    inner: Arc<Inner<K, V>>,
}

type Shards<K, V> = Box<[Padded<RwLock<Shard<K, V>>>]>;

pub(crate) struct Inner<K: Hash + Eq, V> {
    shards: Shards<K, V>,
    flights: Flights<K, V>,
    hasher: hashbrown::DefaultHashBuilder,
    weigher: Weigher<K, V>,
    clock: Arc<dyn Clock>,
    default_ttl: Option<Duration>,
    stats_window: Option<Duration>,
    max_bytes: usize,
    shard_budget: usize,
    admission: Admission,
    /// Every read takes its shard's lock exclusively: a stats window is on.
    exclusive_reads: bool,
    /// Reads counted outside the shards (see `tally`).
    tally: Arc<Tally>,
}

impl<K: Hash + Eq, V> Clone for MemoryCache<K, V> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<K: Hash + Eq, V> fmt::Debug for MemoryCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("max_bytes", &self.inner.max_bytes)
            .field("shards", &self.inner.shards.len())
            .field("default_ttl", &self.inner.default_ttl)
            .field("admission", &self.inner.admission)
            .finish_non_exhaustive()
    }
}

impl<K, V> MemoryCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A builder with the default weigher (key and value [`Weigh::heap_bytes`] plus the
    /// entry's bookkeeping).
    pub fn builder() -> MemoryCacheBuilder<K, V>
    where
        K: Weigh,
        V: Weigh,
    {
        MemoryCacheBuilder::with_default_weigher()
    }

    /// A builder with your weigher, for key or value types that do not implement
    /// [`Weigh`]. `f(key, value)` is the entry's whole charge.
    pub fn builder_with_weigher(
        f: impl Fn(&K, &V) -> usize + Send + Sync + 'static,
    ) -> MemoryCacheBuilder<K, V> {
        MemoryCacheBuilder::new(Arc::new(f))
    }

    /// A cache with every default: 200 MB, default weigher, LRU, no TTL.
    pub fn new() -> Self
    where
        K: Weigh,
        V: Weigh,
    {
        Self::builder().build_defaults()
    }

    #[inline]
    fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        let n = self.inner.shards.len();
        if n == 1 {
            return 0;
        }
        shard_of(self.inner.hasher.hash_one(key), n)
    }

    /// The value for `key`, if present and not expired. Counts a hit or a miss.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // One hash picks the shard and finds the key in it.
        let hash = self.inner.hasher.hash_one(key);
        let shard = &self.inner.shards[shard_of(hash, self.inner.shards.len())].0;
        if self.inner.exclusive_reads {
            return shard.write().get(hash, key, &Now::new(&self.inner.clock));
        }
        // Shared: the read leaves its mark for the policy (a stamp, or a ring's slot).
        // (The shared guard ends with this statement, before any exclusive one.) Its
        // `Now` is its own, never passed out of line, so that it can live in registers;
        // the exclusive read that may follow goes on with the time it read, if any.
        let now = Now::new(&self.inner.clock);
        let read = shard.read().read(hash, key, &now, &self.inner.tally);
        read.unwrap_or_else(|| shard.write().get(hash, key, &now.carried()))
    }

    /// Inserts with the default TTL, if one is configured.
    ///
    /// # Errors
    /// [`ErrorKind::Oversized`](crate::ErrorKind::Oversized) when the entry weighs more than one shard's share of the
    /// budget; then nothing is inserted or evicted, except that an older value under the
    /// same key is removed (it would otherwise be served stale).
    pub fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_inner(key, value, self.inner.default_ttl)
    }

    /// Inserts with its own TTL.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<()> {
        self.insert_inner(key, value, Some(ttl))
    }

    fn insert_inner(&self, key: K, value: V, ttl: Option<Duration>) -> Result<()> {
        let weight = (self.inner.weigher)(&key, &value);
        // One hash picks the shard and finds the key in it.
        let hash = self.inner.hasher.hash_one(&key);
        let shard = &self.inner.shards[shard_of(hash, self.inner.shards.len())].0;
        if weight > self.inner.shard_budget {
            shard.write().remove(&key);
            return Err(Error::new(ErrorKind::Oversized {
                weight,
                limit: self.inner.shard_budget,
                max_bytes: self.inner.max_bytes,
                shards: self.inner.shards.len(),
            }));
        }
        let expires =
            ttl.map_or(entry::NEVER, |d| self.inner.clock.now_nanos().saturating_add(mltb_clock::nanos(d)));
        let entry = Entry { value, weight, expires };
        shard.write().insert(hash, key, entry, &Now::new(&self.inner.clock));
        Ok(())
    }

    /// Removes `key`, returning its value if it was present (expired or not).
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let idx = self.locate(key);
        self.inner.shards[idx].0.write().remove(key)
    }

    /// Whether a live entry is present, without counting a read or touching recency.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let idx = self.locate(key);
        self.inner.shards[idx].0.read().contains(key, &Now::new(&self.inner.clock))
    }

    /// Drops every expired entry now (they are otherwise dropped when read or evicted).
    pub fn purge_expired(&self) {
        for s in self.inner.shards.iter() {
            s.0.write().purge_expired(&Now::new(&self.inner.clock));
        }
    }

    /// Removes every entry (counted as removed).
    pub fn clear(&self) {
        for s in self.inner.shards.iter() {
            s.0.write().clear();
        }
    }

    /// Counters summed over shards, with the reads of the last
    /// [`stats_window`](MemoryCacheBuilder::stats_window), if one was set, in
    /// [`Stats::window`].
    pub fn stats(&self) -> Stats {
        let mut out = Stats { max_bytes: self.inner.max_bytes, ..Stats::default() };
        out.window.window = self.inner.stats_window.unwrap_or_default();
        let now = self.inner.stats_window.map(|_| self.inner.clock.now_nanos());
        for s in self.inner.shards.iter() {
            let mut s = s.0.write();
            s.drain();
            out.add_shard(&s.counters(), s.used(), s.len());
            if let (Some(window), Some(now)) = (&s.window, now) {
                let (hits, misses) = window.sum(now);
                out.window.hits += hits;
                out.window.misses += misses;
            }
        }
        let (hits, misses) = self.inner.tally.totals();
        out.hits += hits;
        out.misses += misses;
        out.reads_dropped = self.inner.tally.dropped();
        out
    }

    /// Entries held (including expired ones not yet noticed).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.0.read().len()).sum()
    }

    /// `true` when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes currently charged, as the weigher counts them.
    pub fn weighted_size(&self) -> usize {
        self.inner.shards.iter().map(|s| s.0.read().used()).sum()
    }

    /// The TTL given to entries inserted without one.
    pub fn default_ttl(&self) -> Option<Duration> {
        self.inner.default_ttl
    }

    /// The configured budget.
    pub fn max_bytes(&self) -> usize {
        self.inner.max_bytes
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// The largest entry one shard accepts (`max_bytes / shards`).
    pub fn max_entry_bytes(&self) -> usize {
        self.inner.shard_budget
    }

    /// Keys from least to most recently used in shard `idx` under plain LRU (tests).
    #[cfg(test)]
    pub(crate) fn lru_order(&self, idx: usize) -> Vec<K> {
        let mut shard = self.inner.shards[idx].0.write();
        shard.drain();
        match &shard.store {
            shard::Store::Lru(s) => s.keys_lru_first(),
            shard::Store::TinyLfu(_) => Vec::new(),
        }
    }

    /// The W-TinyLFU segment holding `key` (0 window, 1 probation, 2 protected), after
    /// a drain (tests).
    #[cfg(test)]
    pub(crate) fn tiny_segment(&self, key: &K) -> Option<usize> {
        let mut shard = self.inner.shards[self.locate(key)].0.write();
        shard.drain();
        match &mut shard.store {
            shard::Store::TinyLfu(s) => s.segment_of(key),
            shard::Store::Lru(_) => None,
        }
    }

    /// Sampled entries shard `idx`'s window simulations track and their sample's
    /// shift, after a drain (tests).
    #[cfg(test)]
    pub(crate) fn tiny_sims_tracked(&self, idx: usize) -> Option<(usize, u32)> {
        let mut shard = self.inner.shards[idx].0.write();
        shard.drain();
        match &mut shard.store {
            shard::Store::TinyLfu(s) => s.sims_tracked(),
            shard::Store::Lru(_) => None,
        }
    }

    /// [`tiny_segment`](Self::tiny_segment) under the shared lock, without a drain.
    #[cfg(test)]
    pub(crate) fn tiny_segment_shared(&self, key: &K) -> Option<usize> {
        let shard = self.inner.shards[self.locate(key)].0.read();
        match &shard.store {
            shard::Store::TinyLfu(s) => s.segment_of_shared(key),
            shard::Store::Lru(_) => None,
        }
    }

    /// Runs `f` while this thread holds shard `idx` shared and its W-TinyLFU policy, as
    /// a reader replaying its hit does (tests).
    #[cfg(test)]
    pub(crate) fn with_policy_held<R>(&self, idx: usize, f: impl FnOnce() -> R) -> R {
        let shard = self.inner.shards[idx].0.read();
        let shard::Store::TinyLfu(s) = &shard.store else { panic!("not W-TinyLFU") };
        let held = s.hold_policy();
        assert!(held.is_some(), "no one else holds the policy");
        f()
    }
}

/// The shard of a key whose hash is `hash`, among `n`: multiply-shift range reduction
/// on the hash's low 32 bits. The shard's table takes its bucket from the lowest bits
/// and its tag from the top 7, so neither is narrowed by the choice of shard.
#[inline]
fn shard_of(hash: u64, n: usize) -> usize {
    ((u64::from(hash as u32) * n as u64) >> 32) as usize
}

impl<K, V> Default for MemoryCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + Weigh + 'static,
    V: Clone + Send + Sync + Weigh + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
