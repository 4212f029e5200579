//! Counters that picks write, laid out so that threads picking at once do not share cache
//! lines they write, and so that exact least connections scans few lines.
//!
//! - Counters live in a [`Slab`] of [`Chunk`]s, one lane per endpoint, 16 lanes per
//!   cache line, so a scan of 256 endpoints reads 16 lines per stripe instead of 256.
//! - Requests in flight and cancelled picks are counted per stripe: each thread writes
//!   only its own stripe's lines, and a read sums the stripes. A pick released on
//!   another thread than the one that picked takes its count down on that other
//!   thread's stripe, so one stripe's count may be "negative" (wrapped); the sum is
//!   right.
//! - Cursors of round robins are [`Padded`] per stripe for the same reason.
//!
//! A thread leases one of [`STRIPES`] stripes for its lifetime and returns it when it
//! exits. While it holds the lease no other thread writes that stripe, so the owner
//! updates it with a plain load and store instead of a locked read-modify-write. Threads
//! beyond `STRIPES` at once share one overflow stripe, updated with atomic adds.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// Endpoints per [`Chunk`]: 16 `u32` counts fill one 64-byte cache line.
pub(crate) const LANES: usize = 16;
/// Stripes leased to one thread each; one more stripe is shared by the threads beyond.
pub(crate) const STRIPES: usize = 8;
/// The stripe shared by threads that found no free lease.
const SHARED: usize = STRIPES;

/// Aligns its content to 128 bytes: a cache line plus the adjacent one that Intel's
/// spatial prefetcher pulls in with it, so two `Padded` values never share a line pair.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// Bit `i` set: stripe `i` is free.
static FREE_STRIPES: AtomicUsize = AtomicUsize::new((1 << STRIPES) - 1);

/// A thread's lease on a stripe, returned when the thread exits.
struct Lease(usize);

impl Lease {
    fn take() -> Self {
        let mut free = FREE_STRIPES.load(Ordering::Relaxed);
        // Bounded: each failed exchange means another thread took or returned a stripe.
        for _ in 0..64 {
            if free == 0 {
                break;
            }
            let lowest = free.trailing_zeros() as usize;
            match FREE_STRIPES.compare_exchange_weak(
                free,
                free & !(1 << lowest),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Self(lowest),
                Err(now) => free = now,
            }
        }
        Self(SHARED)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.0 < STRIPES {
            FREE_STRIPES.fetch_or(1 << self.0, Ordering::Release);
        }
    }
}

thread_local! {
    static LEASE: Lease = Lease::take();
}

/// This thread's stripe: its own in `0..STRIPES`, or the shared one. Threads that pick
/// while their thread-locals are being destroyed use the shared one.
#[inline]
pub(crate) fn stripe() -> usize {
    LEASE.try_with(|l| l.0).unwrap_or(SHARED)
}

/// Adds 1 to a counter of `stripe`: a plain load and store on a leased stripe, which
/// only its owner writes; an atomic add on the shared one.
#[inline]
fn bump(counter: &AtomicU64, stripe: usize) {
    if stripe == SHARED {
        counter.fetch_add(1, Ordering::Relaxed);
    } else {
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

/// Adds `delta` (wrapping) to a `u32` counter of `stripe`, as [`bump`] does.
#[inline]
fn bump32(counter: &AtomicU32, stripe: usize, delta: u32) {
    if stripe == SHARED {
        counter.fetch_add(delta, Ordering::Relaxed);
    } else {
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed);
    }
}

/// Per-stripe cursors for the round-robin strategies.
#[derive(Debug, Default)]
pub(crate) struct Cursors(Box<[Padded<AtomicU64>; STRIPES + 1]>);

impl Cursors {
    /// This thread's stripe's next position (starting at 0).
    #[inline]
    pub(crate) fn next(&self) -> usize {
        let s = stripe();
        let cursor = &self.0[s].0;
        let at = cursor.load(Ordering::Relaxed);
        bump(cursor, s);
        // On the shared stripe another thread may move the cursor between the load and
        // the add; the position read is still a fine place to go.
        at as usize
    }
}

/// The counters of [`LANES`] endpoints.
#[derive(Default)]
pub(crate) struct Chunk {
    in_flight: [Padded<[AtomicU32; LANES]>; STRIPES + 1],
    cancelled: [Padded<[AtomicU64; LANES]>; STRIPES + 1],
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let in_flight: Vec<u32> = (0..LANES).map(|l| self.in_flight(l)).collect();
        f.debug_struct("Chunk").field("in_flight", &in_flight).finish_non_exhaustive()
    }
}

impl Chunk {
    /// The count in flight of `lane`: the sum over stripes. Read while picks on other
    /// threads move it, the sum may momentarily miss an increment but not its decrement;
    /// it is then clamped at 0.
    #[inline]
    pub(crate) fn in_flight(&self, lane: usize) -> u32 {
        let lane = lane % LANES;
        let sum =
            self.in_flight.iter().fold(0u32, |sum, s| sum.wrapping_add(s.0[lane].load(Ordering::Relaxed)));
        if sum > i32::MAX as u32 { 0 } else { sum }
    }
}

#[derive(Default)]
struct SlabInner {
    chunks: Vec<Arc<Chunk>>,
    /// Free `(chunk, lane)` pairs; the lowest is handed out first, to keep counts packed.
    free: BTreeSet<(usize, usize)>,
}

impl std::fmt::Debug for SlabInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab").field("chunks", &self.chunks.len()).field("free", &self.free.len()).finish()
    }
}

/// Hands out [`Slot`]s: lanes in chunks that never move, so a slot stays valid while its
/// endpoint lives. A slot returns to the slab when its endpoint is dropped.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    inner: Arc<Mutex<SlabInner>>,
}

impl Slab {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A slot with all counts at zero.
    pub(crate) fn alloc(&self) -> Slot {
        let mut inner = self.inner.lock();
        let (index, lane) = match inner.free.pop_first() {
            Some(free) => free,
            None => {
                let index = inner.chunks.len();
                inner.chunks.push(Arc::new(Chunk::default()));
                inner.free.extend((1..LANES).map(|lane| (index, lane)));
                (index, 0)
            }
        };
        let chunk = Arc::clone(&inner.chunks[index]);
        // A reused lane keeps its previous owner's counts: cancelled picks, and stripes of
        // in flight that sum to zero (the owner's picks held it alive until released).
        for s in &chunk.in_flight {
            s.0[lane].store(0, Ordering::Relaxed);
        }
        for s in &chunk.cancelled {
            s.0[lane].store(0, Ordering::Relaxed);
        }
        Slot { chunk, index, lane, home: Arc::downgrade(&self.inner) }
    }
}

/// One endpoint's lane in a [`Chunk`].
pub(crate) struct Slot {
    chunk: Arc<Chunk>,
    /// The chunk's position in its slab.
    index: usize,
    lane: usize,
    home: Weak<Mutex<SlabInner>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("chunk", &self.index)
            .field("lane", &self.lane)
            .field("in_flight", &self.in_flight())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

impl Slot {
    /// The chunk, for strategies that scan counts.
    #[inline]
    pub(crate) fn chunk(&self) -> &Arc<Chunk> {
        &self.chunk
    }

    /// The chunk's position in its slab (stable while the chunk lives).
    pub(crate) fn chunk_index(&self) -> usize {
        self.index
    }

    /// The lane in the chunk.
    #[inline]
    pub(crate) fn lane(&self) -> usize {
        self.lane
    }

    #[inline]
    pub(crate) fn in_flight(&self) -> u32 {
        self.chunk.in_flight(self.lane)
    }

    #[inline]
    pub(crate) fn acquire(&self) {
        let s = stripe();
        bump32(&self.chunk.in_flight[s].0[self.lane], s, 1);
    }

    #[inline]
    pub(crate) fn release(&self) {
        let s = stripe();
        bump32(&self.chunk.in_flight[s].0[self.lane], s, u32::MAX);
    }

    /// Counts a cancelled pick on this thread's stripe.
    #[inline]
    pub(crate) fn count_cancelled(&self) {
        let s = stripe();
        bump(&self.chunk.cancelled[s].0[self.lane], s);
    }

    pub(crate) fn cancelled(&self) -> u64 {
        self.chunk.cancelled.iter().map(|s| s.0[self.lane].load(Ordering::Relaxed)).sum()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(home) = self.home.upgrade() {
            home.lock().free.insert((self.index, self.lane));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_pack_into_chunks_and_are_reused_clean() {
        let slab = Slab::new();
        let slots: Vec<Slot> = (0..LANES + 1).map(|_| slab.alloc()).collect();
        assert!(slots[..LANES].iter().all(|s| s.chunk_index() == 0));
        assert_eq!((slots[LANES].chunk_index(), slots[LANES].lane()), (1, 0));
        let lanes: BTreeSet<usize> = slots[..LANES].iter().map(Slot::lane).collect();
        assert_eq!(lanes.len(), LANES);

        let s3 = &slots[3];
        s3.acquire();
        s3.acquire();
        s3.release();
        s3.count_cancelled();
        assert_eq!((s3.in_flight(), s3.cancelled()), (1, 1));
        assert_eq!(slots[4].in_flight(), 0, "lanes are independent");
        s3.release();
        let lane = s3.lane();
        drop(slots);
        let again = slab.alloc();
        assert_eq!((again.chunk_index(), again.lane()), (0, 0), "lowest free lane first");
        let all: Vec<Slot> = (1..LANES).map(|_| slab.alloc()).collect();
        let reused = all.iter().find(|s| s.lane() == lane).expect("lane handed out again");
        assert_eq!((reused.in_flight(), reused.cancelled()), (0, 0), "a reused lane starts clean");
    }

    #[test]
    fn in_flight_sums_over_threads_that_pick_and_release() {
        let slab = Slab::new();
        let slot = slab.alloc();
        for _ in 0..3 {
            slot.acquire();
        }
        // Released on other threads: their stripes go "negative", the sum stays right.
        std::thread::scope(|s| {
            s.spawn(|| slot.release());
            s.spawn(|| slot.release());
        });
        assert_eq!(slot.in_flight(), 1);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1_000 {
                        slot.acquire();
                        slot.release();
                    }
                });
            }
        });
        assert_eq!(slot.in_flight(), 1);
        slot.release();
        assert_eq!(slot.in_flight(), 0);
    }

    #[test]
    fn cancelled_counts_sum_over_threads() {
        let slab = Slab::new();
        let slot = slab.alloc();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..1_000).for_each(|_| slot.count_cancelled()));
            }
        });
        assert_eq!(slot.cancelled(), 4_000);
    }

    #[test]
    fn cursors_count_from_zero_per_thread() {
        let c = Cursors::default();
        assert_eq!((c.next(), c.next(), c.next()), (0, 1, 2));
        let mine = stripe();
        std::thread::scope(|s| {
            // Another thread has another stripe, whose cursor has not moved (unless other
            // tests' threads hold every lease and both threads are on the shared one).
            s.spawn(|| {
                let theirs = stripe();
                let first = c.next();
                if theirs == mine {
                    assert_eq!((theirs, first), (SHARED, 3), "only the shared stripe is shared");
                } else {
                    assert_eq!(first, 0);
                }
            });
        });
    }
}
