//! A shard's read line: what a read under the shard's shared lock writes, beside the
//! lock word, on the shard's first cache line.
//!
//! A hit served under a shared lock cannot relink its entry, and relinking it under an
//! exclusive lock on every read makes every read write the shard's list heads and
//! neighbouring nodes, lines that then move between cores. Plain LRU's reads instead
//! stamp their node from this line's clock (see `lru_store`), and the policy orders
//! entries by their stamps when it evicts. W-TinyLFU's reads record in a ring of their
//! own (see `ring`).
//!
//! The line also counts the reads. A batch of reads, from one write to the shard to the
//! next, has one owner, the thread that claimed it (a compare-and-swap, once per
//! batch), and the owner counts its hits and misses here with plain stores, never a
//! read-modify-write, so that one thread's read costs no locked instruction beyond the
//! lock's own two. Other threads' reads in the batch are counted in the cache's
//! [`Tally`], each thread in a stripe of its own. The clock, too, is advanced with a
//! plain load and store: only the batch's owner stamps (other threads' reads only mark
//! their entries seen, see `lru_store`), and writes stamp under the exclusive lock, so
//! the clock has one writer at a time and the owner's stamps follow its reads exactly.
//!
//! After a batch in which two threads were seen, the next batches start shared, for
//! [`STICKY_WRITES`] writes to the shard: under concurrent reads and writes, each write
//! would otherwise hand the next batch to one thread, whose reads stamp their entries'
//! nodes (lines the other core then loses) until the other reads again. A thread that
//! reads alone for that many writes is exact again; a program that never reads from two
//! threads at once never leaves the exact path.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use super::tally::Tally;

/// The owner of a batch read by more than one thread (thread tags are odd).
const SHARED: u32 = u32::MAX - 1;
/// The owner of a batch started shared, in which no second thread has been seen yet
/// (even, so never a tag).
const STICKY: u32 = u32::MAX - 3;
/// Writes to a shard, after a batch in which two threads were seen, whose batches start
/// shared. 64 was the better of 8 and 64, the only values tried (the 90/10 mix on two
/// threads, `contention_probe`, when reads were still replayed as moves to the front);
/// with stamps it was measured only against none at all (docs/benchmarks.md, "Step 6").
pub(crate) const STICKY_WRITES: u8 = 64;

/// The next thread tag to hand out: odd, so never 0, [`SHARED`] or [`STICKY`].
static NEXT_TAG: AtomicU32 = AtomicU32::new(1);

std::thread_local! {
    static TAG: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread's tag: odd, taken from a counter on the thread's first read, so
/// that two live threads never share one (the owner of a batch writes its counts with
/// plain stores, which two threads sharing a tag would race on).
#[inline]
pub(crate) fn thread_tag() -> u32 {
    match TAG.with(Cell::get) {
        0 => new_thread_tag(),
        tag => tag,
    }
}

/// The calling thread's first tag, out of line: every later read finds it set.
#[cold]
#[inline(never)]
fn new_thread_tag() -> u32 {
    let tag = NEXT_TAG.fetch_add(2, Relaxed);
    TAG.with(|t| t.set(tag));
    tag
}

/// A read as W-TinyLFU's policy replays it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// A hit of the node at this index.
    Hit(u32),
    /// A miss, with the key's sketch hash when the policy follows it.
    Miss(Option<u64>),
}

#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct ReadLine {
    /// The tag of the thread that claimed the batch, [`SHARED`] once another thread has
    /// read in it too, 0 while no one has claimed it.
    owner: AtomicU32,
    /// The owner's hits and misses in this batch (plain loads and stores).
    hits: AtomicU64,
    misses: AtomicU64,
    /// The last stamp handed out (plain loads and stores; see the module's doc).
    clock: AtomicU64,
    /// Writes left whose batches start shared (written under the exclusive lock).
    sticky_left: u8,
    /// The rest of the line after the shard's 8-byte lock word, so that what follows in
    /// the shard (the store's table, which reads only read) starts on a line of its own
    /// and is not written to under other cores' reads.
    _pad: [u8; 23],
}

impl ReadLine {
    /// The bytes a read may write, from the line's start.
    #[cfg(test)]
    pub(crate) const WRITTEN_BY_READS: usize = std::mem::offset_of!(ReadLine, _pad);

    /// Notes the calling thread as a reader of this batch, and says whether the batch
    /// is shared: read by more than one thread since the last write. `false` means the
    /// caller owns the batch and counts in it.
    #[inline]
    pub(crate) fn join(&self) -> bool {
        let owner = self.owner.load(Relaxed);
        if owner == SHARED || owner == STICKY {
            return true;
        }
        let me = thread_tag();
        if owner == me {
            return false;
        }
        // One compare-and-swap per batch: of threads racing for an unclaimed batch, one
        // owns it and the others find it shared.
        if owner == 0 && self.owner.compare_exchange(0, me, Relaxed, Relaxed).is_ok() {
            return false;
        }
        self.owner.store(SHARED, Relaxed);
        true
    }

    /// Counts a hit of the batch's owner ([`join`](Self::join) said `false`).
    #[inline]
    pub(crate) fn own_hit(&self) {
        self.hits.store(self.hits.load(Relaxed) + 1, Relaxed);
    }

    /// Counts a miss: in the batch if the calling thread owns it (claiming it if no one
    /// has), else in `tally`.
    #[inline]
    pub(crate) fn count_miss(&self, tally: &Arc<Tally>) {
        if self.join() {
            tally.miss();
        } else {
            self.misses.store(self.misses.load(Relaxed) + 1, Relaxed);
        }
    }

    /// The next stamp, under the shard's lock (shared or exclusive).
    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        let next = self.clock.load(Relaxed).wrapping_add(1);
        self.clock.store(next, Relaxed);
        next
    }

    /// Takes the owner's counts, as (hits, misses), and starts the next batch: shared
    /// from the start if a batch in the last [`STICKY_WRITES`] writes was seen shared,
    /// else with no owner. What a write does first; needs the exclusive lock (`&mut`).
    #[inline]
    pub(crate) fn take_counts(&mut self) -> (u64, u64) {
        let owner = self.owner.get_mut();
        if *owner == SHARED {
            self.sticky_left = STICKY_WRITES;
        } else {
            self.sticky_left = self.sticky_left.saturating_sub(1);
        }
        *owner = if self.sticky_left > 0 { STICKY } else { 0 };
        (std::mem::take(self.hits.get_mut()), std::mem::take(self.misses.get_mut()))
    }

    /// The owner's counts not yet taken, as (hits, misses).
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_read_by_two_threads_is_shared_and_so_are_the_next_ones_for_a_while() {
        let mut b = ReadLine::default();
        assert!(!b.join(), "the first reader owns the batch");
        assert!(!b.join());
        std::thread::scope(|s| {
            s.spawn(|| assert!(b.join(), "a second thread"));
        });
        assert!(b.join(), "shared until the next write");
        // The next batches start shared, for as many writes as STICKY_WRITES; no second
        // thread is seen in them, so they do not start the count again.
        for i in 0..STICKY_WRITES {
            b.take_counts();
            assert!(b.join(), "batch {i} after the shared one starts shared");
        }
        b.take_counts();
        assert!(!b.join(), "then a write starts a batch with no owner");
    }

    #[test]
    fn the_owner_counts_in_the_batch_and_other_threads_in_the_tally() {
        let mut b = ReadLine::default();
        let tally = Arc::new(Tally::default());
        b.count_miss(&tally);
        assert!(!b.join(), "the first miss claimed the batch");
        b.own_hit();
        b.own_hit();
        assert_eq!((b.counts(), tally.totals()), ((2, 1), (0, 0)), "the owner's reads stay in the batch");
        std::thread::scope(|s| {
            s.spawn(|| b.count_miss(&tally));
        });
        assert_eq!(tally.totals(), (0, 1), "another thread's miss");
        b.count_miss(&tally);
        assert_eq!(tally.totals(), (0, 2), "the batch is shared now: the owner counts in the tally too");
        assert_eq!(tally.dropped(), 0, "counted, not dropped");
        assert_eq!(b.take_counts(), (2, 1), "the owner's counts move out with the write");
        assert_eq!(b.counts(), (0, 0));
    }

    #[test]
    fn stamps_follow_one_threads_reads() {
        let b = ReadLine::default();
        let stamps: Vec<u64> = (0..5).map(|_| b.stamp()).collect();
        assert_eq!(stamps, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn live_threads_have_different_odd_tags() {
        let mine = thread_tag();
        assert_eq!(thread_tag(), mine, "a thread keeps its tag");
        let others: Vec<u32> = std::thread::scope(|s| {
            (0..4)
                .map(|_| s.spawn(thread_tag))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect()
        });
        let mut all = others.clone();
        all.push(mine);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 5, "{others:?} and {mine}");
        assert!(all.iter().all(|t| t % 2 == 1 && *t != SHARED));
    }
}
