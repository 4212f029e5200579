//! Plain LRU, bounded by weight: one list of an [`Arena`].
//!
//! Reads replayed from a batch one thread recorded move their entries to the front:
//! exact LRU. Reads from a batch several threads recorded only mark their entries, and
//! eviction gives a marked entry at the tail a second chance (moves it to the front,
//! unmarked) instead of evicting it: the CLOCK approximation of LRU, for reads that
//! came in no one order anyway.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;

use super::arena::Arena;
use super::entry::{Entry, Now, count_eviction};
use super::reads::{ReadBuffer, Recorded};
use super::stats::Counters;
use super::tally::Tally;

/// The arena's list that holds every entry.
const LIST: usize = 0;

#[derive(Debug)]
#[repr(C)]
pub(crate) struct LruStore<K: Hash + Eq, V> {
    entries: Arena<K, V>,
    budget: usize,
}

impl<K: Hash + Eq, V: Clone> LruStore<K, V> {
    /// `hasher`: the cache's, which gives the hash [`get`](Self::get) takes.
    pub(crate) fn new(budget: usize, hasher: hashbrown::DefaultHashBuilder) -> Self {
        Self { entries: Arena::with_hasher(hasher), budget }
    }

    pub(crate) fn used(&self) -> usize {
        self.entries.used(LIST)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A read under the shared lock: the value, counted and recorded in `reads` (a hit
    /// in a batch that one thread reads, to be replayed; in a shared batch the entry is
    /// marked here and only counted; a miss only counted), or `None` when the entry has
    /// expired (it must be dropped under the exclusive lock).
    #[inline]
    pub(crate) fn read<Q>(
        &self,
        hash: u64,
        key: &Q,
        now: &Now<'_>,
        reads: &ReadBuffer,
        tally: &Arc<Tally>,
    ) -> Option<(Option<V>, Recorded)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.entries.get(hash, key) {
            None => Some((None, reads.count_miss(tally))),
            Some((i, n)) if !n.is_expired(now) && ReadBuffer::can_record_hit(i) => {
                let value = n.value.clone();
                if reads.join() {
                    n.mark();
                    tally.hit();
                    Some((Some(value), Recorded::Kept))
                } else {
                    Some((Some(value), reads.record(i, tally)))
                }
            }
            Some(_) => None,
        }
    }

    /// A recorded hit of node `i` makes its entry the most recent, or, from a batch that
    /// several threads recorded (`shared`), marks it for a second chance. (The read
    /// buffer counted it.)
    #[inline]
    pub(crate) fn replay(&mut self, i: u32, shared: bool) {
        if shared {
            self.entries.mark(i);
        } else {
            self.entries.touch(i);
        }
    }

    /// A read under the exclusive lock (the read buffer drained).
    pub(crate) fn get<Q>(&mut self, hash: u64, key: &Q, now: &Now<'_>, c: &mut Counters) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let live =
            self.entries.get(hash, key).map(|(i, n)| (i, (!n.is_expired(now)).then(|| n.value.clone())));
        match live {
            Some((i, Some(value))) => {
                self.entries.touch(i);
                c.hits += 1;
                Some(value)
            }
            Some((i, None)) => {
                self.entries.remove(i);
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

    /// The caller has checked `entry.weight <= budget`. `hash`: the cache's hash of `key`.
    pub(crate) fn insert(&mut self, hash: u64, key: K, entry: Entry<V>, now: &Now<'_>, c: &mut Counters) {
        // An update replaces the entry in place and makes it the most recent; then, as
        // for a new key, the least recent entries make room.
        let (me, replaced) = self.entries.upsert_hashed(hash, key, entry, LIST);
        if replaced.is_some() {
            c.evictions.replaced += 1;
        }
        while self.entries.recency().used(LIST) > self.budget {
            // The newest entry weighs at most the budget, so something else is there to
            // evict. Marked entries at the tail, and the newest once every entry older
            // than it has had its second chance, go to the front instead.
            let Some((i, _)) = self.entries.second_chance(LIST, me) else { break };
            if i == me {
                break;
            }
            match self.entries.remove(i) {
                Some((_, victim)) => count_eviction(&victim, now, c),
                None => break,
            }
        }
        c.inserts += 1;
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q, c: &mut Counters) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
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

    pub(crate) fn clear(&mut self, c: &mut Counters) {
        c.evictions.removed += self.entries.len() as u64;
        self.entries.clear();
    }

    /// Keys from least to most recently used (for tests of the exact order).
    #[cfg(test)]
    pub(crate) fn keys_lru_first(&self) -> Vec<K>
    where
        K: Clone,
    {
        self.entries.keys_lru_first(LIST).into_iter().cloned().collect()
    }
}
