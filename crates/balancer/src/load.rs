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
//! - Strategies read counts through a [`Reader`]: this thread's stripe exactly, the other
//!   stripes through a per-stripe *view* of their sum, refreshed when it is older than the
//!   reader's `max_age`. Reading the other stripes' lines on every pick would miss the
//!   cache whenever another core had just written them; the view is written and read by
//!   its owner only, so picks on several cores stop bouncing lines between them. With a
//!   `max_age` of 0, or on the shared stripe, reads sum every stripe (exact).
//!
//! A thread leases one of [`STRIPES`] stripes for its lifetime and returns it when it
//! exits. While it holds the lease no other thread writes that stripe, so the owner
//! updates it with a plain load and store instead of a locked read-modify-write. Threads
//! beyond `STRIPES` at once share one overflow stripe, updated with atomic adds.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::{Clock as _, MonotonicClock, nanos_u64};

/// How old a thread's view of the other threads' counts in flight may grow before a read
/// refreshes it (see [`LeastConnections::load_view_age`](crate::LeastConnections::load_view_age)).
pub const DEFAULT_LOAD_VIEW_AGE: Duration = Duration::from_micros(100);

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

/// The clock that ages views: real time, whatever clock the balancer was given (a view's
/// age is a matter of cache traffic, not of the balancer's semantics).
fn view_clock() -> &'static MonotonicClock {
    static CLOCK: OnceLock<MonotonicClock> = OnceLock::new();
    CLOCK.get_or_init(MonotonicClock::new)
}

/// How one pick reads counts in flight: its thread's stripe exactly, the other stripes
/// through that stripe's views, refreshed when older than `max_age` nanoseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader {
    stripe: usize,
    now: u64,
    max_age: u64,
}

impl Reader {
    /// A reader for this thread, now. Reads the clock only if views are in use.
    #[inline]
    pub(crate) fn new(max_age: Duration) -> Self {
        let max_age = nanos_u64(max_age);
        let stripe = stripe();
        let now = if max_age == 0 || stripe == SHARED { 0 } else { view_clock().now_nanos() };
        Self { stripe, now, max_age }
    }

    /// A reader on stripe `stripe` at clock reading `now`.
    #[cfg(test)]
    fn at(stripe: usize, now: u64, max_age: u64) -> Self {
        Self { stripe, now, max_age }
    }

    /// Whether reads sum every stripe.
    #[inline]
    fn exact(&self) -> bool {
        self.max_age == 0 || self.stripe >= STRIPES
    }
}

/// One stripe's view of the sum of the other stripes' counts, written and read by the
/// stripe's owner only.
#[derive(Default)]
struct View {
    lanes: [AtomicU32; LANES],
    /// Clock reading of the last refresh, plus 1; 0 for never (or invalidated).
    at: AtomicU64,
}

/// The counters of [`LANES`] endpoints.
#[derive(Default)]
pub(crate) struct Chunk {
    in_flight: [Padded<[AtomicU32; LANES]>; STRIPES + 1],
    cancelled: [Padded<[AtomicU64; LANES]>; STRIPES + 1],
    views: [Padded<View>; STRIPES],
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
        clamp(sum)
    }

    /// The count in flight of `lane` as `reader` sees it: its own stripe's count plus its
    /// view of the others, refreshed first if it is older than the reader's `max_age`.
    #[inline]
    pub(crate) fn in_flight_seen(&self, lane: usize, reader: &Reader) -> u32 {
        if reader.exact() {
            return self.in_flight(lane);
        }
        let (lane, s) = (lane % LANES, reader.stripe);
        let view = &self.views[s].0;
        let at = view.at.load(Ordering::Relaxed);
        if at == 0 || reader.now.saturating_sub(at - 1) >= reader.max_age {
            self.refresh(s, reader.now);
        }
        let own = self.in_flight[s].0[lane].load(Ordering::Relaxed);
        clamp(own.wrapping_add(view.lanes[lane].load(Ordering::Relaxed)))
    }

    /// Recomputes stripe `s`'s view of the other stripes at clock reading `now`.
    #[cold]
    fn refresh(&self, s: usize, now: u64) {
        let mut sums = [0u32; LANES];
        for (t, stripe) in self.in_flight.iter().enumerate() {
            if t != s {
                for (sum, count) in sums.iter_mut().zip(&stripe.0) {
                    *sum = sum.wrapping_add(count.load(Ordering::Relaxed));
                }
            }
        }
        let view = &self.views[s].0;
        for (lane, sum) in view.lanes.iter().zip(sums) {
            lane.store(sum, Ordering::Relaxed);
        }
        view.at.store(now.saturating_add(1), Ordering::Relaxed);
    }
}

/// A sum of stripes that wrapped below zero (a decrement seen before its increment) is 0.
#[inline]
fn clamp(sum: u32) -> u32 {
    if sum > i32::MAX as u32 { 0 } else { sum }
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
        // Views still hold the sum of the previous owner's stripes: refresh them all.
        for v in &chunk.views {
            v.0.at.store(0, Ordering::Relaxed);
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

    /// The count in flight as `reader` sees it ([`Chunk::in_flight_seen`]).
    #[inline]
    pub(crate) fn in_flight_seen(&self, reader: &Reader) -> u32 {
        self.chunk.in_flight_seen(self.lane, reader)
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

    /// Adds `delta` to stripe `s`'s count of `slot`, as a pick on that stripe's thread would.
    fn add(slot: &Slot, s: usize, delta: i32) {
        slot.chunk.in_flight[s].0[slot.lane].fetch_add(delta as u32, Ordering::Relaxed);
    }

    #[test]
    fn a_view_sees_its_own_stripe_at_once_and_others_once_it_is_old() {
        let slab = Slab::new();
        let slot = slab.alloc();
        let seen = |now| slot.in_flight_seen(&Reader::at(0, now, 100));
        assert_eq!(seen(1_000), 0);
        add(&slot, 0, 1);
        assert_eq!(seen(1_050), 1, "its own stripe, at once");
        add(&slot, 1, 2);
        add(&slot, SHARED, 1);
        assert_eq!(slot.in_flight(), 4);
        assert_eq!(seen(1_099), 1, "others through the view, 99 ns old");
        assert_eq!(seen(1_100), 4, "refreshed at 100 ns");
        add(&slot, 1, -2);
        assert_eq!(seen(1_150), 4);
        assert_eq!(slot.in_flight_seen(&Reader::at(0, 1_150, 0)), 2, "a max age of 0 is exact");
        assert_eq!(slot.in_flight_seen(&Reader::at(SHARED, 1_150, 100)), 2, "the shared stripe is exact");
        assert_eq!(slot.in_flight_seen(&Reader::at(1, 1_150, 100)), 2, "each stripe has its own view");
        assert_eq!(seen(1_200), 2);
        // Another stripe's release of this stripe's pick: this stripe's count stays up,
        // the view takes it down; never below 0.
        add(&slot, 2, -2);
        assert_eq!(seen(1_300), 0);
        add(&slot, 0, -1);
        assert_eq!(seen(1_300), 0, "clamped at 0, not wrapped");
    }

    #[test]
    fn a_reused_lane_is_seen_clean_by_every_view() {
        let slab = Slab::new();
        let slot = slab.alloc();
        // Picked on stripe 1 and released on stripe 0: the counts sum to 0, stripe 0's
        // view holds +1 for the others and its own count is -1.
        add(&slot, 1, 1);
        add(&slot, 0, -1);
        assert_eq!(slot.in_flight_seen(&Reader::at(0, 10, 1_000)), 0);
        drop(slot);
        let again = slab.alloc();
        add(&again, 0, 1);
        assert_eq!(again.in_flight_seen(&Reader::at(0, 20, 1_000)), 1, "the old view is not reused");
    }

    #[test]
    fn a_reader_on_a_thread_uses_its_stripe_and_the_clock_only_for_views() {
        let r = Reader::new(Duration::ZERO);
        assert_eq!((r.stripe, r.now, r.exact()), (stripe(), 0, true));
        let r = Reader::new(DEFAULT_LOAD_VIEW_AGE);
        assert_eq!(r.max_age, 100_000);
        assert_eq!(r.exact(), r.stripe == SHARED);
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
