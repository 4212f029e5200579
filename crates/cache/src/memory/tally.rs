//! The cache's count of the reads no read buffer counts: hits and misses of readers
//! that do not own their shard's batch (several threads reading one shard), and reads
//! a full buffer or ring dropped. Those dropped reads are also counted apart
//! ([`dropped`](Tally::dropped)): counted as hits or misses all the same, but never
//! seen by the eviction policy.
//!
//! Counting them in the shard, on its lock's cache line, costs every such read a
//! locked read-modify-write on the line both threads are fighting over (on two threads
//! it was 14 – 22 % of an LRU hit in three pairs of runs, docs/benchmarks.md). So each thread counts in a
//! stripe of its own instead: a thread claims a free stripe by its tag, once, and from
//! then on is the stripe's only writer, so it counts with a plain load and store, on a
//! line no other thread writes. A thread gives its stripes back when it ends (its
//! counts stay), so a program that starts threads as it goes does not run out of
//! them. A thread whose stripe another live thread holds counts in a shared stripe,
//! with an atomic increment. [`totals`](Tally::totals) sums every stripe; no read goes
//! uncounted.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::reads::thread_tag;

use Ordering::Relaxed;

/// Stripes of one owner each (a thread whose stripe another live thread holds counts
/// in the shared one).
const STRIPES: usize = 16;

/// The stripes the calling thread holds, given back when it ends.
struct Claimed(RefCell<Vec<(Weak<Tally>, usize, u32)>>);

impl Drop for Claimed {
    fn drop(&mut self) {
        for (tally, stripe, tag) in self.0.get_mut().drain(..) {
            if let Some(tally) = tally.upgrade() {
                // Release: the next owner's claim sees this thread's last counts.
                let _ = tally.stripes[stripe].owner.compare_exchange(tag, 0, Ordering::Release, Relaxed);
            }
        }
    }
}

std::thread_local! {
    static CLAIMED: Claimed = const { Claimed(RefCell::new(Vec::new())) };
}

/// One cache line: its owner's tag (0 while unclaimed) and its counts.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Stripe {
    owner: AtomicU32,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Of the hits and misses, those the policy never saw.
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct Tally {
    stripes: [Stripe; STRIPES],
    shared: Stripe,
}

impl Tally {
    /// A hit the policy sees some other way (a mark, say), or need not see.
    #[inline]
    pub(crate) fn hit(self: &Arc<Self>) {
        self.count(|s| &s.hits, false);
    }

    /// A miss the policy need not see.
    #[inline]
    pub(crate) fn miss(self: &Arc<Self>) {
        self.count(|s| &s.misses, false);
    }

    /// A hit whose effect on the policy was dropped (a full buffer or ring).
    #[inline]
    pub(crate) fn dropped_hit(self: &Arc<Self>) {
        self.count(|s| &s.hits, true);
    }

    /// A miss whose effect on the policy was dropped.
    #[inline]
    pub(crate) fn dropped_miss(self: &Arc<Self>) {
        self.count(|s| &s.misses, true);
    }

    #[inline]
    fn count(self: &Arc<Self>, counter: impl Fn(&Stripe) -> &AtomicU64, dropped: bool) {
        let tag = thread_tag();
        // Tags are odd and handed out in order: consecutive threads, different stripes.
        let at = (tag >> 1) as usize % STRIPES;
        let stripe = &self.stripes[at];
        let owner = stripe.owner.load(Relaxed);
        // Only a free stripe is claimed: a thread whose stripe another holds goes to the
        // shared one without a compare-and-swap on a line that thread writes.
        if owner == tag || (owner == 0 && self.claim(at, tag)) {
            // The stripe's one writer: no read-modify-write needed.
            let add = |c: &AtomicU64| c.store(c.load(Relaxed) + 1, Relaxed);
            add(counter(stripe));
            if dropped {
                add(&stripe.dropped);
            }
        } else {
            counter(&self.shared).fetch_add(1, Relaxed);
            if dropped {
                self.shared.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Takes stripe `at` for the thread tagged `tag` if no one holds it, to be given
    /// back when the thread ends.
    #[cold]
    fn claim(self: &Arc<Self>, at: usize, tag: u32) -> bool {
        // Acquire: the last owner's counts, which this thread goes on from.
        if self.stripes[at].owner.compare_exchange(0, tag, Ordering::Acquire, Relaxed).is_err() {
            return false;
        }
        let kept = CLAIMED.try_with(|c| {
            let mut held = c.0.borrow_mut();
            // Caches dropped since leave entries that no longer matter.
            held.retain(|(t, _, _)| t.strong_count() > 0);
            held.push((Arc::downgrade(self), at, tag));
        });
        if kept.is_err() {
            // The thread is ending: do not keep a stripe no one would give back.
            self.stripes[at].owner.store(0, Ordering::Release);
            return false;
        }
        true
    }

    /// Every count so far, as (hits, misses).
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.stripes
            .iter()
            .chain(std::iter::once(&self.shared))
            .fold((0, 0), |(h, m), s| (h + s.hits.load(Relaxed), m + s.misses.load(Relaxed)))
    }

    /// Of [`totals`](Self::totals), the reads whose effect on the policy was dropped.
    pub(crate) fn dropped(&self) -> u64 {
        self.stripes.iter().chain(std::iter::once(&self.shared)).map(|s| s.dropped.load(Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_counts_in_its_own_stripe_with_plain_stores() {
        let t = Arc::new(Tally::default());
        t.hit();
        t.dropped_hit();
        t.miss();
        let mine = thread_tag();
        let stripe = &t.stripes[(mine >> 1) as usize % STRIPES];
        assert_eq!(stripe.owner.load(Relaxed), mine);
        assert_eq!((stripe.hits.load(Relaxed), stripe.misses.load(Relaxed)), (2, 1));
        assert_eq!(t.shared.hits.load(Relaxed), 0);
        assert_eq!(t.totals(), (2, 1));
        assert_eq!(t.dropped(), 1, "a dropped hit is a hit, and counted apart too");
    }

    #[test]
    fn a_thread_whose_stripe_is_taken_counts_in_the_shared_one() {
        let t = Arc::new(Tally::default());
        let mine = thread_tag();
        t.stripes[(mine >> 1) as usize % STRIPES].owner.store(mine + 2 * STRIPES as u32, Relaxed);
        t.hit();
        t.dropped_miss();
        assert_eq!((t.shared.hits.load(Relaxed), t.shared.misses.load(Relaxed)), (1, 1));
        assert_eq!(t.totals(), (1, 1));
        assert_eq!(t.dropped(), 1);
    }

    #[test]
    fn many_threads_lose_no_count() {
        let t = Arc::new(Tally::default());
        let threads = 2 * STRIPES as u64;
        std::thread::scope(|s| {
            for i in 0..threads {
                let t = &t;
                s.spawn(move || {
                    for _ in 0..1_000 + i {
                        t.hit();
                    }
                    t.miss();
                });
            }
        });
        let want: u64 = (0..threads).map(|i| 1_000 + i).sum();
        assert_eq!(t.totals(), (want, threads));
    }

    #[test]
    fn a_thread_that_ends_gives_its_stripe_back_and_its_counts_stay() {
        // Threads joined by their handles, not in a scope: a scope ends when its threads'
        // closures have returned, which can be before their thread-locals (the stripes
        // they hold) are dropped; `join` waits for the thread itself to end.
        let t = Arc::new(Tally::default());
        let (tag, at) = {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                t.hit();
                let tag = thread_tag();
                let at = (tag >> 1) as usize % STRIPES;
                assert_eq!(t.stripes[at].owner.load(Relaxed), tag, "held while the thread runs");
                (tag, at)
            })
            .join()
            .unwrap()
        };
        assert_ne!(t.stripes[at].owner.load(Relaxed), tag, "given back when it ended");
        // Threads started one after another, more of them than there are stripes, each
        // find their stripe free and count in it.
        for _ in 0..2 * STRIPES {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                t.hit();
                let tag = thread_tag();
                assert_eq!(t.stripes[(tag >> 1) as usize % STRIPES].owner.load(Relaxed), tag);
            })
            .join()
            .unwrap();
        }
        assert_eq!(t.shared.hits.load(Relaxed), 0, "no thread fell back to the shared stripe");
        assert_eq!(t.totals(), (1 + 2 * STRIPES as u64, 0));
    }
}
