//! Plain LRU, bounded by weight: the entry evicted is the one least recently read or
//! written, exactly for one thread's reads.
//!
//! A read does not move its entry. Read by its batch's owner (the one thread reading
//! the shard since its last write, see `reads`), it stamps the entry's node from the
//! shard's read clock under the shard's shared lock and marks it stamped: a write or two
//! to the line the read has just read for the value, where moving the entry to the
//! front of a list writes the links of up to three other entries and the list's head.
//! Writes link their entry at the front of one list, with a fresh stamp, so the list is
//! in the order of the entries' last writes.
//!
//! Eviction then finds the least recent entry from the stamps. An unmarked entry at the
//! list's least recent end was not read since it was linked, so no entry of the list was
//! used less recently than it. A marked one was read since: it leaves the list for a
//! heap of such entries ordered by stamp (`stamps`), once. The victim is whichever is
//! older, the list's unmarked tail or the heap's least stamp; a heap entry read again
//! since it went in has a newer stamp than the heap holds for it, and is put back in its
//! place first. So a read costs the eviction path at most one push and one pop of the
//! heap, and only for entries still held when they reach the end of the list, where
//! moving entries cost every read. One thread's stamps are its reads' order: exact LRU.
//!
//! Reads in a batch several threads read only mark their entries seen (a write the
//! first time only: stamps written by every read would move the nodes' lines between
//! the cores), and eviction gives a seen entry the newest stamp, a second chance as
//! CLOCK gives: those reads came in no one order anyway. (So do the shard's next
//! batches, for a number of writes: see `reads`.)
//!
//! (Before this, reads were recorded in a buffer and replayed as moves to the front:
//! docs/benchmarks.md, issue #14 part 2.)

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;

use super::arena::{Arena, SEEN};
use super::entry::{Entry, Now, count_eviction};
use super::reads::ReadLine;
use super::stamps::StampHeap;
use super::stats::Counters;
use super::tally::Tally;

/// The arena's list of the entries not in the heap, in the order of their last write.
const LIST: usize = 0;

#[derive(Debug)]
#[repr(C)]
pub(crate) struct LruStore<K: Hash + Eq, V> {
    entries: Arena<K, V>,
    /// Entries read since they were linked that reached the end of the list.
    heap: StampHeap,
    /// The weight of the entries in the heap (out of the arena's list).
    heap_used: usize,
    budget: usize,
}

impl<K: Hash + Eq, V: Clone> LruStore<K, V> {
    /// `hasher`: the cache's, which gives the hash [`get`](Self::get) takes.
    pub(crate) fn new(budget: usize, hasher: hashbrown::DefaultHashBuilder) -> Self {
        Self { entries: Arena::with_hasher(hasher), heap: StampHeap::default(), heap_used: 0, budget }
    }

    pub(crate) fn used(&self) -> usize {
        self.entries.used(LIST) + self.heap_used
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A read under the shared lock: the value, its node stamped from `reads`' clock and
    /// the read counted there, or `None` when the entry has expired (it must be dropped
    /// under the exclusive lock).
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
        match self.entries.get(hash, key) {
            None => {
                reads.count_miss(tally);
                Some(None)
            }
            Some((_, n)) => {
                // The batch's owner stamps its reads; in a batch several threads read,
                // a read only marks its entry as seen.
                let live = if reads.join() {
                    n.read_seen(now) && {
                        tally.hit();
                        true
                    }
                } else {
                    n.read_at(now, || reads.stamp()) && {
                        reads.own_hit();
                        true
                    }
                };
                live.then(|| Some(n.value.clone()))
            }
        }
    }

    /// A read under the exclusive lock.
    pub(crate) fn get<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        now: &Now<'_>,
        reads: &ReadLine,
        c: &mut Counters,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (i, live) = match self.entries.get(hash, key) {
            Some((i, n)) if n.read_at(now, || reads.stamp()) => (i, Some(n.value.clone())),
            Some((i, _)) => (i, None),
            None => {
                c.misses += 1;
                return None;
            }
        };
        if live.is_some() {
            c.hits += 1;
        } else {
            self.remove_node(i);
            c.evictions.expired += 1;
            c.misses += 1;
        }
        live
    }

    /// The caller has checked `entry.weight <= budget`. `hash`: the cache's hash of `key`;
    /// `stamp`: the write's, from the shard's read clock.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        entry: Entry<V>,
        stamp: u64,
        now: &Now<'_>,
        c: &mut Counters,
    ) {
        // An update replaces the entry in place and makes it the most recent; then, as
        // for a new key, the least recent entries make room.
        let (me, replaced) = self.entries.upsert_hashed(hash, key, entry, LIST);
        self.entries.set_stamp(me, stamp);
        if let Some(old) = replaced {
            // Linked at the front of the list again, with its new weight: out of the heap.
            if self.heap.remove(me) {
                self.heap_used -= old.weight;
            }
            c.evictions.replaced += 1;
        }
        while self.entries.recency().used(LIST) + self.heap_used > self.budget {
            // The newest entry weighs at most the budget, so something else is there to
            // evict.
            let Some(victim) = self.evict(me, stamp) else { break };
            count_eviction(&victim, now, c);
        }
        c.inserts += 1;
    }

    /// Removes the least recently used entry but `keep` (the newest, at the front of the
    /// list, stamped `now`), and returns it.
    fn evict(&mut self, keep: u32, now: u64) -> Option<Entry<V>> {
        loop {
            let tail = self.entries.lru_of(LIST).filter(|&(i, _)| i != keep);
            if let Some((i, weight)) = tail {
                let marks = self.entries.take_marks(i);
                if marks != 0 {
                    // Read since it was linked: into the heap, by its last read.
                    let stamp = self.read_stamp(i, marks, now);
                    self.entries.unlink(i);
                    self.heap.push(i, stamp);
                    self.heap_used += weight;
                    continue;
                }
            }
            let Some((held, h)) = self.heap.peek() else {
                let (i, _) = tail?;
                return self.entries.remove(i).map(|(_, e)| e);
            };
            let marks = self.entries.take_marks(h);
            let stamp = self.read_stamp(h, marks, now);
            if stamp > held {
                // Read again since it went in.
                self.heap.restamp_top(stamp);
                continue;
            }
            if let Some((i, _)) = tail
                && self.entries.node(i).is_some_and(|n| n.stamp() < held)
            {
                return self.entries.remove(i).map(|(_, e)| e);
            }
            self.heap.pop();
            let (_, e) = self.entries.remove(h)?;
            self.heap_used -= e.weight;
            return Some(e);
        }
    }

    /// When node `i`, whose marks were `marks`, was last read: its stamp, or, seen in a
    /// batch several threads read, `now` (it is given that stamp), as CLOCK gives a
    /// marked entry a second chance: those reads came in no one order anyway.
    fn read_stamp(&mut self, i: u32, marks: u64, now: u64) -> u64 {
        if marks & SEEN != 0 {
            self.entries.set_stamp(i, now);
            return now;
        }
        self.entries.node(i).map_or(0, |n| n.stamp())
    }

    /// Removes node `i`, from the heap too.
    fn remove_node(&mut self, i: u32) -> Option<Entry<V>> {
        let in_heap = self.heap.remove(i);
        let (_, e) = self.entries.remove(i)?;
        if in_heap {
            self.heap_used -= e.weight;
        }
        Some(e)
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q, c: &mut Counters) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.entries.find(key)?;
        let e = self.remove_node(i)?;
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
            if self.remove_node(i).is_some() {
                c.evictions.expired += 1;
            }
        }
    }

    pub(crate) fn clear(&mut self, c: &mut Counters) {
        c.evictions.removed += self.entries.len() as u64;
        self.entries.clear();
        self.heap.clear();
        self.heap_used = 0;
    }

    /// Keys from least to most recently used (for tests of the exact order), after
    /// checking that every entry is in the list or the heap, not both, and that both
    /// hold the weights counted for them. (An entry only marked seen keeps its stamp
    /// until it is evicted or reaches the end of the list: its place here is by its
    /// last stamped read.)
    #[cfg(test)]
    pub(crate) fn keys_lru_first(&self) -> Vec<K>
    where
        K: Clone,
    {
        let listed = self.entries.keys_lru_first(LIST).len();
        let mut list_weight = 0;
        let mut heap_weight = 0;
        for (i, n) in self.entries.nodes() {
            if self.heap.contains(i) {
                heap_weight += n.weight();
            } else {
                list_weight += n.weight();
            }
        }
        assert_eq!(listed + self.heap.len(), self.entries.len(), "every entry in the list or the heap, once");
        assert_eq!(heap_weight, self.heap_used, "the heap's weight");
        assert_eq!(list_weight, self.entries.used(LIST), "the list's weight");
        // Every entry's stamp is its last read or write.
        let mut stamped: Vec<(u64, K)> =
            self.entries.nodes().map(|(_, n)| (n.stamp(), n.key.clone())).collect();
        stamped.sort_by_key(|&(stamp, _)| stamp);
        stamped.into_iter().map(|(_, k)| k).collect()
    }
}
