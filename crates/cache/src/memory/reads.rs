//! A shard's read buffer: the reads served under the shard's shared lock, recorded for
//! the policy to replay, in order, under the exclusive lock.
//!
//! A hit served under a shared lock cannot relink its entry or bump a counter, and
//! doing either under an exclusive lock on every read makes every read write the
//! shard's list heads and neighbouring nodes, lines that then move between cores. So a
//! read only records what it did here, as Caffeine's read buffer does: a hit by its
//! node. (A miss can be recorded too, by a marker and a sketch hash, for a policy that
//! replays misses; plain LRU, the one policy whose reads use the buffer, only counts
//! them, and W-TinyLFU's reads take the exclusive lock.) The buffer is replayed before
//! anything else happens under the exclusive
//! lock, so no insert, removal or eviction decision is taken on a policy state that is
//! missing a read that came before it in the same thread: a single thread sees exactly
//! the order its reads and writes came in.
//!
//! The buffer is a few slots right after the shard's lock word, on its cache line, with
//! the shard's counts of hits and misses: a read writes the line the shared lock just
//! wrote anyway, and nothing else of the shard. It is lossy: when it is full and the
//! exclusive lock is busy, a read is counted (hits and misses are never lost) but its
//! effect on recency is dropped.
//!
//! The buffer also notes whether the reads in it came from one thread or from several
//! ([`drain`](ReadBuffer::drain) says which). A batch from one thread is that thread's
//! own order, and plain LRU replays it exactly; once a second thread reads, the batch
//! has no one order to be exact about, and plain LRU's hits only mark their nodes (see
//! `lru_store`) and are not recorded, so concurrent reads neither fill the buffer nor
//! take the exclusive lock.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Slots: with the 8-byte lock word and four 4-byte words (cursor, owner, hits and
/// misses), the buffer fills the rest of the shard's first 64-byte line.
pub(crate) const SLOTS: usize = 10;
/// Counts past this are moved to the shard's 64-bit counters at the next drain.
const COUNT_LIMIT: u32 = 1 << 30;
/// The most slots one read takes (a miss with its hash).
const MAX_EVENT: usize = 3;
/// A free slot (a hit is stored as its node index + 1).
const EMPTY: u32 = 0;
/// A miss.
const MISS: u32 = u32::MAX;
/// A miss followed by two slots with its 64-bit hash (low half first).
const MISS_HASHED: u32 = u32::MAX - 1;
/// The owner of a batch recorded by more than one thread (thread tags are odd).
const SHARED: u32 = u32::MAX - 1;

std::thread_local! {
    static TAG: u8 = const { 0 };
}

/// A tag of the calling thread: the (odd) low bits of a thread-local's address.
#[inline]
fn thread_tag() -> u32 {
    TAG.with(|t| std::ptr::from_ref(t) as usize as u32 | 1)
}

/// One recorded read, as [`ReadBuffer::drain`] hands it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// A hit of the node at this index.
    Hit(u32),
    /// A miss, with the key's sketch hash when the reader recorded it.
    Miss(Option<u64>),
}

/// What [`ReadBuffer::record`] did with a read.
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
    /// Slots taken since the last drain (may run past `SLOTS` while it is full).
    cursor: AtomicU32,
    /// The tag of the thread that recorded the batch, [`SHARED`] once another thread
    /// has recorded in it too, 0 while it is empty.
    owner: AtomicU32,
    /// Reads recorded (or dropped) since the counts were last taken.
    hits: AtomicU32,
    misses: AtomicU32,
    slots: [AtomicU32; SLOTS],
}

impl ReadBuffer {
    /// The bytes a read writes, from the buffer's start.
    #[cfg(test)]
    pub(crate) const WRITTEN_BY_READS: usize = size_of::<ReadBuffer>();

    /// Whether a hit of node `i` can be recorded at all (the top two indices are markers).
    #[inline]
    pub(crate) fn can_record_hit(i: u32) -> bool {
        i < MISS_HASHED - 1
    }

    /// Notes the calling thread as a reader of this batch, and says whether the batch
    /// is shared: read by more than one thread since the last drain.
    #[inline]
    pub(crate) fn join(&self) -> bool {
        let owner = self.owner.load(Relaxed);
        if owner == SHARED {
            return true;
        }
        let me = thread_tag();
        if owner == me {
            return false;
        }
        // Racing first readers may both take an empty buffer; one of them then sees the
        // other's tag at its next read. A batch taken for one thread's is replayed
        // exactly, which is never wrong, only dearer.
        let shared = owner != 0;
        self.owner.store(if shared { SHARED } else { me }, Relaxed);
        shared
    }

    /// Counts a hit without recording it (the reader did what the replay would).
    #[inline]
    pub(crate) fn count_hit(&self) -> Recorded {
        self.hits.fetch_add(1, Relaxed);
        Recorded::Kept
    }

    /// Counts and records a read; the caller holds the shard's lock (shared or
    /// exclusive).
    #[inline]
    pub(crate) fn record(&self, read: Read) -> Recorded {
        let (first, hash, len, count) = match read {
            Read::Hit(i) => (i + 1, None, 1, &self.hits),
            Read::Miss(None) => (MISS, None, 1, &self.misses),
            Read::Miss(Some(h)) => (MISS_HASHED, Some(h), MAX_EVENT, &self.misses),
        };
        count.fetch_add(1, Relaxed);
        // A full buffer is seen by a plain load, so that readers piling on it do not
        // keep moving the cursor (it cannot wrap).
        let at = self.cursor.load(Relaxed) as usize;
        let at = if at + len <= SLOTS { self.cursor.fetch_add(len as u32, Relaxed) as usize } else { at };
        if at + len > SLOTS {
            return Recorded::Full;
        }
        // The exclusive lock's acquire, after this reader's shared release, orders these
        // stores before the drain that reads them.
        self.slots[at].store(first, Relaxed);
        if let Some(h) = hash {
            self.slots[at + 1].store(h as u32, Relaxed);
            self.slots[at + 2].store((h >> 32) as u32, Relaxed);
        }
        if at + len > SLOTS - MAX_EVENT { Recorded::Full } else { Recorded::Kept }
    }

    /// Counts a miss without recording it (for a policy that does nothing with one).
    #[inline]
    pub(crate) fn count_miss(&self) -> Recorded {
        self.misses.fetch_add(1, Relaxed);
        Recorded::Kept
    }

    /// Starts the next batch with no reader (for a drain with nothing to replay).
    #[inline]
    pub(crate) fn forget_owner(&mut self) {
        *self.owner.get_mut() = 0;
    }

    /// Whether anything waits to be replayed.
    #[inline]
    pub(crate) fn is_empty(&mut self) -> bool {
        *self.cursor.get_mut() == 0
    }

    /// Hands every recorded read to `replay`, oldest first, with whether the batch was
    /// recorded by more than one thread, and empties the buffer. Needs the exclusive
    /// lock (`&mut`): no reader is recording meanwhile.
    #[inline]
    pub(crate) fn drain(&mut self, mut replay: impl FnMut(Read, bool)) {
        let shared = std::mem::take(self.owner.get_mut()) == SHARED;
        let mut replay = |r| replay(r, shared);
        let taken = (*self.cursor.get_mut() as usize).min(SLOTS);
        let mut at = 0;
        while at < taken {
            // A slot of a read that did not fit was never written: the reads after it did
            // not fit either.
            let first = std::mem::take(self.slots[at].get_mut());
            match first {
                EMPTY => break,
                MISS => replay(Read::Miss(None)),
                MISS_HASHED => {
                    let lo = std::mem::take(self.slots[at + 1].get_mut());
                    let hi = std::mem::take(self.slots[at + 2].get_mut());
                    at += 2;
                    replay(Read::Miss(Some(u64::from(lo) | (u64::from(hi) << 32))));
                }
                i => replay(Read::Hit(i - 1)),
            }
            at += 1;
        }
        *self.cursor.get_mut() = 0;
    }

    /// Reads counted since the counts were last taken, as (hits, misses).
    pub(crate) fn counts(&self) -> (u64, u64) {
        (u64::from(self.hits.load(Relaxed)), u64::from(self.misses.load(Relaxed)))
    }

    /// The counts, zeroed, if either is near its limit (the caller adds them to its own).
    #[inline]
    pub(crate) fn take_large_counts(&mut self) -> Option<(u64, u64)> {
        let (hits, misses) = (self.hits.get_mut(), self.misses.get_mut());
        if *hits < COUNT_LIMIT && *misses < COUNT_LIMIT {
            return None;
        }
        Some((u64::from(std::mem::take(hits)), u64::from(std::mem::take(misses))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(b: &mut ReadBuffer) -> Vec<Read> {
        let mut out = Vec::new();
        b.drain(|r, shared| {
            assert!(!shared, "one thread recorded every read");
            out.push(r);
        });
        out
    }

    #[test]
    fn a_batch_read_by_two_threads_is_shared() {
        let mut b = ReadBuffer::default();
        assert!(!b.join());
        b.record(Read::Hit(1));
        assert!(!b.join());
        b.record(Read::Hit(2));
        let shared = |b: &mut ReadBuffer| {
            let mut out = None;
            b.drain(|_, s| out = Some(s));
            out
        };
        assert_eq!(shared(&mut b), Some(false));
        assert!(!b.join());
        b.record(Read::Hit(1));
        std::thread::scope(|s| {
            s.spawn(|| assert!(b.join(), "a second thread"));
        });
        assert!(b.join(), "shared until drained");
        assert_eq!(shared(&mut b), Some(true));
        // The next batch starts afresh.
        assert!(!b.join());
        b.record(Read::Hit(4));
        assert_eq!(shared(&mut b), Some(false));
    }

    #[test]
    fn replays_reads_in_order_and_asks_to_be_drained_before_one_would_not_fit() {
        let mut b = ReadBuffer::default();
        let hash = 0xdead_beef_0123_4567;
        let reads = [Read::Hit(0), Read::Miss(None), Read::Miss(Some(hash)), Read::Hit(7)];
        for r in reads {
            assert_eq!(b.record(r), Recorded::Kept);
        }
        assert_eq!(drained(&mut b), reads);
        assert!(b.is_empty());
        // Filled one slot at a time: "full" comes once a hashed miss would no longer fit.
        let mut kept = 0;
        while b.record(Read::Hit(kept)) == Recorded::Kept {
            kept += 1;
        }
        assert_eq!(kept as usize, SLOTS - MAX_EVENT);
        assert_eq!(b.record(Read::Miss(Some(hash))), Recorded::Full);
        assert_eq!(b.counts(), (kept as u64 + 1 + 2, 3), "a dropped read is still counted");
        let replayed = drained(&mut b);
        assert_eq!(replayed, (0..=kept).map(Read::Hit).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_buffer_counts_what_it_drops_and_replays_what_it_kept() {
        let mut b = ReadBuffer::default();
        for i in 0..SLOTS as u32 {
            b.record(Read::Hit(i));
        }
        // A hashed miss that does not fit leaves its slots unwritten; a hit after it
        // does not fit either.
        assert_eq!(b.record(Read::Miss(Some(1))), Recorded::Full);
        assert_eq!(b.record(Read::Hit(99)), Recorded::Full);
        assert_eq!(b.counts(), (SLOTS as u64 + 1, 1));
        let replayed = drained(&mut b);
        assert_eq!(replayed, (0..SLOTS as u32).map(Read::Hit).collect::<Vec<_>>());
        assert!(drained(&mut b).is_empty());
    }
}
