//! W-TinyLFU's read ring: hits served under a shard's shared lock, left to be replayed
//! into the policy (sketch, lists, window simulations) sixteen at a time.
//!
//! Every W-TinyLFU hit is pushed here. The reader whose push fills the ring replays it,
//! if it can take the policy's lock without waiting; a W-TinyLFU miss replays it too,
//! before itself; and the next exclusive holder of the shard replays it before
//! anything else. A hit that finds the ring full (another reader is replaying) is
//! dropped: counted, but without effect on the policy, as Caffeine's read buffer
//! drops reads. Concurrent readers never wait for the policy.
//!
//! Many push, one drains (the policy's holder). A pusher reserves a slot by moving the
//! tail with a compare-and-swap, then writes it; the drainer stops at a reserved slot
//! not yet written and leaves it for the next drain.
//!
//! A shard has two rings ([`ReadRings`]): one for the reads of a batch's owner (the one
//! thread reading the shard since its last write, see `reads`), which only that thread
//! pushes to, with plain stores and no compare-and-swap, and one for every other read.
//! A program that reads from one thread never takes a locked instruction to leave its
//! hits, and its hits are replayed in the order it made them.

use std::sync::atomic::{AtomicU32, Ordering};

/// Slots: a power of two.
const SLOTS: usize = 16;
const MASK: u32 = SLOTS as u32 - 1;
/// A free slot (a hit is stored as its node index + 1).
const EMPTY: u32 = 0;

/// What [`ReadRing::push`] did with a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Left in the ring, with room for more.
    Kept,
    /// Left in the ring, which is now full: time to replay it.
    Full,
    /// Not left: the ring was full, or another pusher took the slot first.
    Dropped,
}

#[derive(Debug, Default)]
pub(crate) struct ReadRing {
    /// Reservations made (wrapping).
    tail: AtomicU32,
    /// Reads replayed (wrapping); written by the drainer only.
    head: AtomicU32,
    slots: [AtomicU32; SLOTS],
}

impl ReadRing {
    /// Leaves a hit of node `i` for the policy's holder, unless the ring is full or
    /// another pusher took the slot first: then the read's effect on the policy is
    /// dropped.
    #[inline]
    pub(crate) fn push(&self, i: u32) -> Pushed {
        let Some(stored) = i.checked_add(1) else { return Pushed::Dropped };
        let tail = self.tail.load(Ordering::Relaxed);
        // Acquire: the drainer emptied the slots before it moved the head past them.
        let head = self.head.load(Ordering::Acquire);
        let held = tail.wrapping_sub(head);
        if held >= SLOTS as u32 {
            return Pushed::Dropped;
        }
        if self
            .tail
            .compare_exchange(tail, tail.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return Pushed::Dropped;
        }
        self.slots[(tail & MASK) as usize].store(stored, Ordering::Release);
        if held + 1 == SLOTS as u32 { Pushed::Full } else { Pushed::Kept }
    }

    /// [`push`](Self::push) by the ring's only producer: no other thread pushes to it
    /// until the shard is next held exclusively, so the slot is reserved by a plain
    /// store of the tail, after the slot is written (a drainer reads the tail first).
    #[inline]
    pub(crate) fn push_alone(&self, i: u32) -> Pushed {
        let Some(stored) = i.checked_add(1) else { return Pushed::Dropped };
        let tail = self.tail.load(Ordering::Relaxed);
        // Acquire: the drainer emptied the slots before it moved the head past them.
        let held = tail.wrapping_sub(self.head.load(Ordering::Acquire));
        if held >= SLOTS as u32 {
            return Pushed::Dropped;
        }
        self.slots[(tail & MASK) as usize].store(stored, Ordering::Relaxed);
        // Release: a drainer that reads this tail finds the slot written.
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        if held + 1 == SLOTS as u32 { Pushed::Full } else { Pushed::Kept }
    }

    /// Whether no read waits in the ring (exact with the shard held exclusively).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed) == self.tail.load(Ordering::Relaxed)
    }

    /// Hands every written read to `replay`, oldest first; only the policy's holder
    /// calls it. Returns how many it replayed.
    #[inline]
    pub(crate) fn drain(&self, mut replay: impl FnMut(u32)) -> usize {
        let mut head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if head == tail {
            return 0;
        }
        let start = head;
        while head != tail {
            let slot = &self.slots[(head & MASK) as usize];
            let stored = slot.load(Ordering::Acquire);
            if stored == EMPTY {
                // Reserved, not yet written: the next drain takes it.
                break;
            }
            slot.store(EMPTY, Ordering::Relaxed);
            replay(stored - 1);
            head = head.wrapping_add(1);
        }
        self.head.store(head, Ordering::Release);
        head.wrapping_sub(start) as usize
    }
}

/// A shard's two rings: its batch owner's, pushed to by that thread alone, and everyone
/// else's.
#[derive(Debug, Default)]
pub(crate) struct ReadRings {
    own: ReadRing,
    shared: ReadRing,
}

impl ReadRings {
    /// Leaves a hit of node `i`: in the owner's ring if `alone` (the calling thread owns
    /// the shard's batch of reads, see `reads`), else in the shared one.
    #[inline]
    pub(crate) fn push(&self, i: u32, alone: bool) -> Pushed {
        if alone { self.own.push_alone(i) } else { self.shared.push(i) }
    }

    /// Hands every written read to `replay`: the owner's ring first, then the shared
    /// one, each oldest first. Returns how many it replayed.
    #[inline]
    pub(crate) fn drain(&self, mut replay: impl FnMut(u32)) -> usize {
        self.own.drain(&mut replay) + self.shared.drain(replay)
    }

    /// Whether no read waits in either ring (exact with the shard held exclusively).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.own.is_empty() && self.shared.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_drops_when_full_and_reuses_its_slots() {
        // Pushed by any thread (a compare-and-swap) or by the lone producer.
        type Push = fn(&ReadRing, u32) -> Pushed;
        let pushes: [(&str, Push); 2] = [("push", ReadRing::push), ("push_alone", ReadRing::push_alone)];
        for (name, push) in pushes {
            let ring = ReadRing::default();
            for round in 0..3_u32 {
                for i in 0..SLOTS as u32 {
                    let want = if i + 1 == SLOTS as u32 { Pushed::Full } else { Pushed::Kept };
                    assert_eq!(push(&ring, round * 100 + i), want, "{name}: round {round}, push {i}");
                }
                assert_eq!(push(&ring, 999), Pushed::Dropped, "{name}: a full ring drops");
                let mut seen = Vec::new();
                assert_eq!(ring.drain(|i| seen.push(i)), SLOTS);
                let want: Vec<u32> = (0..SLOTS as u32).map(|i| round * 100 + i).collect();
                assert_eq!(seen, want, "{name}");
                assert_eq!(ring.drain(|_| panic!("drained twice")), 0);
            }
            assert_eq!(push(&ring, u32::MAX), Pushed::Dropped, "{name}: no node has the last index");
        }
    }

    #[test]
    fn the_lone_producer_and_a_drainer_on_another_thread_lose_nothing() {
        // One thread pushes alone while another drains (the policy's holder can be any
        // reader): every push that was not dropped is replayed once, in order.
        const PUSHES: u32 = 50_000;
        let ring = ReadRing::default();
        let (kept, mut drained) = std::thread::scope(|s| {
            let pusher = s.spawn(|| (0..PUSHES).filter(|&i| ring.push_alone(i) != Pushed::Dropped).count());
            let drainer = s.spawn(|| {
                let mut out = Vec::new();
                for _ in 0..PUSHES {
                    ring.drain(|i| out.push(i));
                }
                out
            });
            (pusher.join().expect("pusher"), drainer.join().expect("drainer"))
        });
        ring.drain(|i| drained.push(i));
        assert_eq!(drained.len(), kept, "every kept push replayed exactly once");
        assert!(drained.windows(2).all(|w| w[0] < w[1]), "in the order pushed");
    }

    #[test]
    fn the_owners_ring_and_the_shared_one_are_drained_together_the_owners_first() {
        let rings = ReadRings::default();
        assert!(rings.is_empty());
        assert_eq!(rings.push(1, false), Pushed::Kept);
        assert_eq!(rings.push(2, true), Pushed::Kept);
        assert_eq!(rings.push(3, false), Pushed::Kept);
        assert!(!rings.is_empty());
        let mut seen = Vec::new();
        assert_eq!(rings.drain(|i| seen.push(i)), 3);
        assert_eq!(seen, [2, 1, 3]);
        assert!(rings.is_empty());
        // Each ring holds SLOTS: a full owner's ring leaves the shared one room.
        for i in 0..SLOTS as u32 {
            rings.push(i, true);
        }
        assert_eq!(rings.push(99, true), Pushed::Dropped);
        assert_eq!(rings.push(99, false), Pushed::Kept);
    }

    #[test]
    fn a_reserved_slot_not_yet_written_waits_for_the_next_drain() {
        let ring = ReadRing::default();
        assert_eq!(ring.push(1), Pushed::Kept);
        // A pusher that has reserved the next slot but not written it yet.
        ring.tail.fetch_add(1, Ordering::Relaxed);
        let mut seen = Vec::new();
        assert_eq!(ring.drain(|i| seen.push(i)), 1);
        ring.slots[1].store(8, Ordering::Release);
        assert_eq!(ring.drain(|i| seen.push(i)), 1);
        assert_eq!(seen, [1, 7]);
    }

    #[test]
    fn concurrent_pushes_are_each_replayed_once_or_dropped() {
        const PER_THREAD: u32 = 20_000;
        let ring = ReadRing::default();
        let drained = std::sync::Mutex::new(Vec::new());
        let pushed = std::thread::scope(|s| {
            let pushers: Vec<_> = (0..2_u32)
                .map(|t| {
                    let ring = &ring;
                    s.spawn(move || {
                        (0..PER_THREAD).filter(|&i| ring.push(t * PER_THREAD + i) != Pushed::Dropped).count()
                    })
                })
                .collect();
            let drainer = s.spawn(|| {
                let mut out = Vec::new();
                for _ in 0..PER_THREAD {
                    ring.drain(|i| out.push(i));
                }
                out
            });
            let pushed: usize = pushers.into_iter().map(|p| p.join().expect("pusher")).sum();
            drained.lock().expect("lock").extend(drainer.join().expect("drainer"));
            pushed
        });
        let mut all = drained.into_inner().expect("lock");
        ring.drain(|i| all.push(i));
        assert_eq!(all.len(), pushed, "every push replayed exactly once");
        // Each thread's pushes come out in its own order.
        for t in 0..2_u32 {
            let mine: Vec<u32> = all.iter().copied().filter(|i| i / PER_THREAD == t).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "thread {t} out of order");
        }
    }
}
