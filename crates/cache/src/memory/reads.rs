//! A shard's read buffer: the reads served under the shard's shared lock, recorded for
//! the policy to replay, in order, under the exclusive lock.
//!
//! A hit served under a shared lock cannot relink its entry or bump a counter, and
//! doing either under an exclusive lock on every read makes every read write the
//! shard's list heads and neighbouring nodes, lines that then move between cores. So a
//! read only records what it did here, as Caffeine's read buffer does: a hit by its
//! node. Plain LRU is the one policy whose reads record here, and it does nothing with
//! a miss but count it (W-TinyLFU's reads go to a ring of their own, see `ring`), so
//! the buffer holds hits only. It is replayed before anything else happens under the
//! exclusive lock, so no insert, removal or eviction decision is taken on a policy state that is
//! missing a read that came before it in the same thread: a single thread sees exactly
//! the order its reads and writes came in.
//!
//! The buffer is a few slots right after the shard's lock word, on its cache line: a
//! read writes the line the shared lock just wrote anyway, and nothing else of the
//! shard. It is lossy: when it is full and the exclusive lock is busy, a read is
//! counted (hits and misses are never lost) but its effect on recency is dropped.
//!
//! A batch has one owner, the thread that claimed it (a compare-and-swap, once per
//! batch), and only the owner records in it: its slots, and its count of the owner's
//! misses, are written with plain stores, never a read-modify-write, so that one
//! thread's read costs no locked instruction beyond the lock's own two (in one of three
//! timings here they were a quarter of a hit's time; the other two showed no difference,
//! docs/benchmarks.md). The owner's hits are counted from
//! the slots when they are replayed. Other threads' reads, which only mark or count,
//! and reads the buffer drops, are counted in the cache's [`Tally`], each thread in a
//! stripe of its own.
//!
//! The buffer also notes whether the reads in it came from one thread or from several
//! ([`drain`](ReadBuffer::drain) says which). A batch from one thread is that thread's
//! own order, and plain LRU replays it exactly; once a second thread reads, the batch
//! has no one order to be exact about, and plain LRU's hits only mark their nodes (see
//! `lru_store`) and are not recorded, so concurrent reads neither fill the buffer nor
//! take the exclusive lock. After a batch in which two threads were seen, the next
//! batches start shared, for [`STICKY_WRITES`] writes to the shard: under concurrent
//! reads and writes, each write would otherwise hand the next batch to one thread,
//! which records and relinks until the other reads again (the 90/10 mix on two
//! threads: 52.9 – 54.4 ns an operation that way, 46.0 – 47.3 with this,
//! `contention_probe`; 64 was the better of 8 and 64 there, the only values tried).
//! A thread that reads alone for that many writes is exact again; a program that
//! never reads from two threads at once never leaves the exact path.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::tally::Tally;

/// Slots: with the 8-byte lock word and two 4-byte words (cursor and owner), the
/// buffer fills the rest of the shard's first 64-byte line.
pub(crate) const SLOTS: usize = 12;
/// The cursor's low bits count slots taken; the bits above, the owner's misses.
const SLOT_BITS: u32 = 8;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// The most misses the cursor counts before the batch asks to be drained.
const OWN_MISSES_MAX: u32 = u32::MAX >> SLOT_BITS;
/// A free slot (a hit is stored as its node index + 1).
const EMPTY: u32 = 0;
/// The owner of a batch recorded by more than one thread (thread tags are odd).
const SHARED: u32 = u32::MAX - 1;
/// The owner of a batch started shared, in which no second thread has been seen yet
/// (even, so never a tag).
const STICKY: u32 = u32::MAX - 3;
/// Writes to a shard, after a batch in which two threads were seen, whose batches start
/// shared.
pub(crate) const STICKY_WRITES: u8 = 64;

/// The next thread tag to hand out: odd, so never 0, [`SHARED`] or [`STICKY`].
static NEXT_TAG: AtomicU32 = AtomicU32::new(1);

std::thread_local! {
    static TAG: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread's tag: odd, taken from a counter on the thread's first read, so
/// that two live threads never share one (the owner of a batch writes it with plain
/// stores, which two threads sharing a tag would race on).
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

/// A read as a policy replays it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// A hit of the node at this index.
    Hit(u32),
    /// A miss, with the key's sketch hash when the policy follows it.
    Miss(Option<u64>),
}

/// What [`ReadBuffer::record`] did with a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Recorded, with room for more.
    Kept,
    /// Recorded or dropped (counted either way); the buffer wants draining.
    Full,
}

#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct ReadBuffer {
    /// Written by the batch's owner alone (plain loads and stores): slots taken since the
    /// last drain (the low [`SLOT_BITS`], at most `SLOTS`) and the owner's misses (above).
    cursor: AtomicU32,
    /// The tag of the thread that claimed the batch, [`SHARED`] once another thread has
    /// read in it too, 0 while no one has claimed it.
    owner: AtomicU32,
    slots: [AtomicU32; SLOTS],
}

impl ReadBuffer {
    /// The bytes a read writes, from the buffer's start.
    #[cfg(test)]
    pub(crate) const WRITTEN_BY_READS: usize = size_of::<ReadBuffer>();

    /// Whether a hit of node `i` can be recorded at all (its slot holds `i + 1`).
    #[inline]
    pub(crate) fn can_record_hit(i: u32) -> bool {
        i < u32::MAX
    }

    /// Notes the calling thread as a reader of this batch, and says whether the batch
    /// is shared: read by more than one thread since the last drain. `false` means the
    /// caller owns the batch and may [`record`](Self::record) in it.
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

    /// Records a hit of node `i` (see [`can_record_hit`](Self::can_record_hit)). Only the
    /// batch's owner calls it ([`join`](Self::join) said `false`), with the shard's lock
    /// held (shared or exclusive). A hit that does not fit is counted in `tally`, as
    /// dropped.
    #[inline]
    pub(crate) fn record(&self, i: u32, tally: &Arc<Tally>) -> Recorded {
        let cursor = self.cursor.load(Relaxed);
        let at = (cursor & SLOT_MASK) as usize;
        let Some(slot) = self.slots.get(at) else {
            // Dropped, but counted.
            tally.dropped_hit();
            return Recorded::Full;
        };
        self.cursor.store(cursor + 1, Relaxed);
        // The exclusive lock's acquire, after this reader's shared release, orders these
        // stores before the drain that reads them.
        slot.store(i.wrapping_add(1), Relaxed);
        if at + 1 == SLOTS { Recorded::Full } else { Recorded::Kept }
    }

    /// Counts a miss without recording it (for a policy that does nothing with one):
    /// in the cursor if the calling thread owns the batch (claiming it if no one has),
    /// else in `tally`.
    #[inline]
    pub(crate) fn count_miss(&self, tally: &Arc<Tally>) -> Recorded {
        if !self.join() {
            let cursor = self.cursor.load(Relaxed);
            if cursor >> SLOT_BITS < OWN_MISSES_MAX {
                self.cursor.store(cursor + (1 << SLOT_BITS), Relaxed);
                return if cursor >> SLOT_BITS == OWN_MISSES_MAX - 1 {
                    Recorded::Full
                } else {
                    Recorded::Kept
                };
            }
        }
        tally.miss();
        Recorded::Kept
    }

    /// Starts the next batch (after a drain): shared from the start if a batch in the
    /// last [`STICKY_WRITES`] writes (`sticky_left` counts them down) was seen shared,
    /// else with no owner.
    #[inline]
    pub(crate) fn restart(&mut self, sticky_left: &mut u8) {
        let owner = self.owner.get_mut();
        if *owner == SHARED {
            *sticky_left = STICKY_WRITES;
        } else {
            *sticky_left = sticky_left.saturating_sub(1);
        }
        *owner = if *sticky_left > 0 { STICKY } else { 0 };
    }

    /// Whether nothing waits to be replayed or counted.
    #[inline]
    pub(crate) fn is_empty(&mut self) -> bool {
        *self.cursor.get_mut() == 0
    }

    /// Hands every recorded hit's node to `replay`, oldest first, with whether the batch
    /// was recorded by more than one thread, empties the buffer and
    /// [`restart`](Self::restart)s it; returns the reads the owner counted in it, as
    /// (hits, misses). Needs the exclusive lock (`&mut`): no reader is recording
    /// meanwhile.
    #[inline]
    pub(crate) fn drain(&mut self, sticky_left: &mut u8, mut replay: impl FnMut(u32, bool)) -> (u64, u64) {
        let shared = matches!(*self.owner.get_mut(), SHARED | STICKY);
        let cursor = std::mem::take(self.cursor.get_mut());
        let mut hits = 0;
        for slot in &mut self.slots[..((cursor & SLOT_MASK) as usize).min(SLOTS)] {
            let stored = std::mem::replace(slot.get_mut(), EMPTY);
            replay(stored.wrapping_sub(1), shared);
            hits += 1;
        }
        self.restart(sticky_left);
        (hits, u64::from(cursor >> SLOT_BITS))
    }

    /// Reads counted and not yet taken, as (hits, misses): what the owner recorded or
    /// counted in the batch not yet drained.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let cursor = self.cursor.load(Relaxed);
        (u64::from(cursor & SLOT_MASK).min(SLOTS as u64), u64::from(cursor >> SLOT_BITS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hits replayed, checking the counts the drain returns against them.
    fn drained(b: &mut ReadBuffer) -> Vec<u32> {
        let mut out = Vec::new();
        let counted = b.drain(&mut 0, |i, shared| {
            assert!(!shared, "one thread recorded every read");
            out.push(i);
        });
        assert_eq!(counted, (out.len() as u64, 0), "the drain counts what it replays");
        out
    }

    #[test]
    fn a_batch_read_by_two_threads_is_shared() {
        let mut b = ReadBuffer::default();
        let mut sticky = 0;
        let tally = Arc::new(Tally::default());
        assert!(!b.join());
        b.record(1, &tally);
        assert!(!b.join());
        b.record(2, &tally);
        let shared = |b: &mut ReadBuffer, sticky: &mut u8| {
            let mut out = None;
            b.drain(sticky, |_, s| out = Some(s));
            out
        };
        assert_eq!(shared(&mut b, &mut sticky), Some(false));
        assert!(!b.join());
        b.record(1, &tally);
        std::thread::scope(|s| {
            s.spawn(|| assert!(b.join(), "a second thread"));
        });
        assert!(b.join(), "shared until drained");
        assert_eq!(shared(&mut b, &mut sticky), Some(true));
        // The next batches start shared, for as many drains (writes) as STICKY_WRITES;
        // no second thread is seen in them, so they do not start the count again.
        for i in 0..STICKY_WRITES {
            assert!(b.join(), "batch {i} after the shared one starts shared");
            b.restart(&mut sticky);
        }
        // Then a batch starts afresh.
        assert!(!b.join());
        b.record(4, &tally);
        assert_eq!(shared(&mut b, &mut sticky), Some(false));
    }

    #[test]
    fn replays_hits_in_order_and_asks_to_be_drained_when_full() {
        let mut b = ReadBuffer::default();
        let tally = Arc::new(Tally::default());
        for i in [0, 7, 0, 3] {
            assert_eq!(b.record(i, &tally), Recorded::Kept);
        }
        assert_eq!(b.counts(), (4, 0));
        assert_eq!(drained(&mut b), [0, 7, 0, 3]);
        assert!(b.is_empty());
        // Filled one slot at a time: the hit that takes the last slot says "full".
        let mut kept = 0;
        while b.record(kept, &tally) == Recorded::Kept {
            kept += 1;
        }
        assert_eq!(kept as usize + 1, SLOTS);
        assert_eq!(drained(&mut b), (0..SLOTS as u32).collect::<Vec<_>>());
        // The largest index a slot can hold.
        assert!(ReadBuffer::can_record_hit(u32::MAX - 1) && !ReadBuffer::can_record_hit(u32::MAX));
        b.record(u32::MAX - 1, &tally);
        assert_eq!(drained(&mut b), [u32::MAX - 1]);
        assert_eq!(tally.totals(), (0, 0), "nothing dropped");
    }

    #[test]
    fn a_full_buffer_counts_what_it_drops_and_replays_what_it_kept() {
        let mut b = ReadBuffer::default();
        let tally = Arc::new(Tally::default());
        for i in 0..SLOTS as u32 {
            b.record(i, &tally);
        }
        assert_eq!(b.record(99, &tally), Recorded::Full);
        assert_eq!(b.record(100, &tally), Recorded::Full);
        // The recorded hits are counted from the batch, the dropped ones in the tally.
        assert_eq!(
            (b.counts(), tally.totals()),
            ((SLOTS as u64, 0), (2, 0)),
            "a dropped hit is still counted"
        );
        assert_eq!(tally.dropped(), 2, "and counted as dropped");
        assert_eq!(drained(&mut b), (0..SLOTS as u32).collect::<Vec<_>>());
        assert!(drained(&mut b).is_empty());
    }

    #[test]
    fn the_owner_counts_its_misses_in_the_batch_and_other_threads_in_the_tally() {
        let mut b = ReadBuffer::default();
        let tally = Arc::new(Tally::default());
        assert_eq!(b.count_miss(&tally), Recorded::Kept, "the first miss claims the batch");
        assert_eq!(b.count_miss(&tally), Recorded::Kept);
        assert_eq!(tally.totals(), (0, 0), "the owner's misses stay in the batch");
        assert_eq!(b.counts(), (0, 2));
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(b.count_miss(&tally), Recorded::Kept));
        });
        assert_eq!(tally.totals(), (0, 1), "another thread's miss");
        assert_eq!(tally.dropped(), 0, "counted, not dropped: plain LRU does nothing with a miss");
        assert_eq!(b.counts(), (0, 2));
        assert!(!b.is_empty());
        let mut shared = None;
        assert_eq!(
            b.drain(&mut 0, |_, s| shared = Some(s)),
            (0, 2),
            "the owner's misses move out with the batch"
        );
        assert_eq!(shared, None, "nothing to replay");
        assert!(b.is_empty());
        assert_eq!(b.counts(), (0, 0));
        // A batch whose owner's misses near the cursor's limit asks to be drained.
        let mut b = ReadBuffer::default();
        assert!(!b.join());
        *b.cursor.get_mut() = (OWN_MISSES_MAX - 1) << SLOT_BITS;
        assert_eq!(b.count_miss(&tally), Recorded::Full);
        assert_eq!(b.count_miss(&tally), Recorded::Kept, "past the limit, misses go to the tally");
        assert_eq!(tally.totals(), (0, 2));
        assert_eq!(b.counts(), (0, u64::from(OWN_MISSES_MAX)));
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
