//! When to cut a batch, and how big: the smart-flush policy, free of channels and tasks.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::FlushReason;

/// The bounds a batch is cut within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_items: usize,
    /// `usize::MAX` when unbounded.
    pub(crate) max_bytes: usize,
    pub(crate) max_delay: Duration,
    pub(crate) max_concurrency: usize,
}

/// An accepted item waiting for a batch.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    pub(crate) payload: T,
    pub(crate) weight: usize,
    /// When the item was submitted.
    pub(crate) at: Instant,
}

/// The items accepted and not yet dispatched, in submission order.
///
/// Items are numbered in arrival order (`seq`), so that a flush can say "everything
/// numbered below n" and the worker can tell when all of it has been handled.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    limits: Limits,
    slots: VecDeque<Slot<T>>,
    /// The total weight of `slots`, exact: weights are `usize` and the weigher is user code,
    /// so a sum of them may not fit in `usize`, and a saturated sum would go wrong on `cut`.
    bytes: u128,
    /// The seq of `slots[0]`, or of the next item when empty.
    front_seq: u64,
    /// Items numbered below this go as soon as a handler slot is free.
    urgent_below: u64,
    closing: bool,
}

impl<T> Queue<T> {
    pub(crate) fn new(limits: Limits) -> Self {
        Self { limits, slots: VecDeque::new(), bytes: 0, front_seq: 0, urgent_below: 0, closing: false }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The seq of the oldest waiting item, if any.
    pub(crate) fn front_seq(&self) -> Option<u64> {
        (!self.slots.is_empty()).then_some(self.front_seq)
    }

    /// The seq the next pushed item will get.
    pub(crate) fn next_seq(&self) -> u64 {
        self.front_seq + self.slots.len() as u64
    }

    pub(crate) fn push(&mut self, slot: Slot<T>) {
        self.bytes += slot.weight as u128;
        self.slots.push_back(slot);
    }

    /// Everything queued now goes out as soon as slots allow; returns the seq below which
    /// items must be handled for the flush to be done.
    pub(crate) fn flush(&mut self) -> u64 {
        self.urgent_below = self.next_seq();
        self.urgent_below
    }

    /// From now on everything goes out as soon as slots allow.
    pub(crate) fn close(&mut self) {
        self.closing = true;
    }

    fn is_full(&self) -> bool {
        self.slots.len() >= self.limits.max_items || self.bytes >= self.limits.max_bytes as u128
    }

    /// Why a batch should be cut now, or `None` to keep waiting.
    ///
    /// No batch is cut while `max_concurrency` calls are in flight. Otherwise, in order:
    /// a full batch goes; when closing or flushing, everything goes; when no call is in
    /// flight, whatever is queued goes (nothing gains from waiting on an idle handler);
    /// and while some calls are in flight, items wait until the oldest has waited
    /// `max_delay`.
    pub(crate) fn reason(&self, now: Instant, in_flight: usize) -> Option<FlushReason> {
        let front = self.slots.front()?;
        if in_flight >= self.limits.max_concurrency {
            None
        } else if self.is_full() {
            Some(FlushReason::Full)
        } else if self.closing {
            Some(FlushReason::Shutdown)
        } else if self.front_seq < self.urgent_below {
            Some(FlushReason::Flush)
        } else if in_flight == 0 {
            Some(FlushReason::Idle)
        } else if now.saturating_duration_since(front.at) >= self.limits.max_delay {
            Some(FlushReason::Delay)
        } else {
            None
        }
    }

    /// When [`reason`](Self::reason) will next say `Delay`, if waiting can end that way.
    pub(crate) fn deadline(&self, in_flight: usize) -> Option<Instant> {
        let front = self.slots.front()?;
        if in_flight >= self.limits.max_concurrency {
            return None;
        }
        // `None` for a delay too long to represent: then only other reasons cut a batch.
        front.at.checked_add(self.limits.max_delay)
    }

    /// Takes the next batch off the front: as many items as fit in `max_items` and
    /// `max_bytes`, and always at least one (an item heavier than `max_bytes` goes alone).
    /// Returns the seq of its first item, its weight and its items. The weight fits in a
    /// `usize`: a batch of two or more items weighs at most `max_bytes`.
    pub(crate) fn cut(&mut self) -> (u64, usize, std::collections::vec_deque::Drain<'_, Slot<T>>) {
        let mut count = 0;
        let mut bytes = 0_u128;
        for slot in &self.slots {
            let next = bytes + slot.weight as u128;
            if count == self.limits.max_items || (count > 0 && next > self.limits.max_bytes as u128) {
                break;
            }
            count += 1;
            bytes = next;
        }
        let first = self.front_seq;
        self.front_seq += count as u64;
        self.bytes -= bytes;
        (first, usize::try_from(bytes).unwrap_or(usize::MAX), self.slots.drain(..count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_items: usize, max_bytes: usize, concurrency: usize) -> Limits {
        Limits { max_items, max_bytes, max_delay: Duration::from_millis(10), max_concurrency: concurrency }
    }

    fn push(q: &mut Queue<u32>, payload: u32, weight: usize, at: Instant) {
        q.push(Slot { payload, weight, at });
    }

    fn cut(q: &mut Queue<u32>) -> (u64, usize, Vec<u32>) {
        let (first, bytes, drain) = q.cut();
        (first, bytes, drain.map(|s| s.payload).collect())
    }

    #[test]
    fn idle_handler_takes_a_lone_item_at_once() {
        let now = Instant::now();
        let mut q = Queue::new(limits(100, usize::MAX, 1));
        assert_eq!(q.reason(now, 0), None);
        push(&mut q, 1, 0, now);
        assert_eq!(q.reason(now, 0), Some(FlushReason::Idle));
        assert_eq!(q.reason(now, 1), None, "busy handler with concurrency 1 waits");
        assert_eq!(q.deadline(1), None);
    }

    #[test]
    fn partially_busy_waits_out_max_delay() {
        let now = Instant::now();
        let mut q = Queue::new(limits(100, usize::MAX, 2));
        push(&mut q, 1, 0, now);
        assert_eq!(q.reason(now, 1), None);
        let deadline = q.deadline(1).unwrap();
        assert_eq!(deadline, now + Duration::from_millis(10));
        assert_eq!(q.reason(deadline, 1), Some(FlushReason::Delay));
        assert_eq!(q.reason(deadline, 2), None);
    }

    #[test]
    fn endless_max_delay_is_no_deadline_not_an_overflow() {
        let now = Instant::now();
        let mut q = Queue::new(Limits { max_delay: Duration::MAX, ..limits(100, usize::MAX, 2) });
        push(&mut q, 1, 0, now);
        assert_eq!(q.deadline(1), None);
        assert_eq!(q.reason(now, 1), None);
        assert_eq!(q.reason(now, 0), Some(FlushReason::Idle));
    }

    #[test]
    fn full_beats_everything_and_cuts_at_max_items() {
        let now = Instant::now();
        let mut q = Queue::new(limits(3, usize::MAX, 1));
        for i in 0..7 {
            push(&mut q, i, 0, now);
        }
        q.close();
        assert_eq!(q.reason(now, 0), Some(FlushReason::Full));
        assert_eq!(cut(&mut q), (0, 0, vec![0, 1, 2]));
        assert_eq!(cut(&mut q), (3, 0, vec![3, 4, 5]));
        assert_eq!(q.reason(now, 0), Some(FlushReason::Shutdown));
        assert_eq!(cut(&mut q), (6, 0, vec![6]));
        assert!(q.is_empty());
        assert_eq!(q.next_seq(), 7);
    }

    #[test]
    fn byte_bound_cuts_and_oversized_item_goes_alone() {
        let now = Instant::now();
        let mut q = Queue::new(limits(100, 10, 1));
        for (i, w) in [(0, 6), (1, 4), (2, 5), (3, 25), (4, 1)] {
            push(&mut q, i, w, now);
        }
        assert_eq!(q.reason(now, 1), None);
        assert_eq!(q.reason(now, 0), Some(FlushReason::Full));
        assert_eq!(cut(&mut q), (0, 10, vec![0, 1]));
        assert_eq!(cut(&mut q), (2, 5, vec![2]));
        assert_eq!(cut(&mut q), (3, 25, vec![3]));
        assert_eq!(q.len(), 1);
        assert_eq!(q.reason(now, 0), Some(FlushReason::Idle));
    }

    #[test]
    fn weights_past_usize_max_are_counted_exactly() {
        let now = Instant::now();
        let mut q = Queue::new(limits(100, 100, 1));
        push(&mut q, 0, usize::MAX, now);
        push(&mut q, 1, 10, now);
        push(&mut q, 2, usize::MAX, now);
        push(&mut q, 3, 5, now);
        assert_eq!(cut(&mut q), (0, usize::MAX, vec![0]));
        assert_eq!(cut(&mut q), (1, 10, vec![1]));
        assert_eq!(cut(&mut q), (2, usize::MAX, vec![2]));
        assert_eq!(q.reason(now, 0), Some(FlushReason::Idle), "5 of 100 bytes is not full");
        assert_eq!(cut(&mut q), (3, 5, vec![3]));
        assert!(q.is_empty());
    }

    #[test]
    fn unbounded_bytes_never_sum_past_usize_max_in_one_batch() {
        let now = Instant::now();
        let mut q = Queue::new(limits(100, usize::MAX, 1));
        push(&mut q, 0, usize::MAX - 1, now);
        push(&mut q, 1, 1, now);
        push(&mut q, 2, 1, now);
        assert_eq!(q.reason(now, 1), None);
        assert_eq!(q.reason(now, 0), Some(FlushReason::Full));
        assert_eq!(cut(&mut q), (0, usize::MAX, vec![0, 1]));
        assert_eq!(q.reason(now, 0), Some(FlushReason::Idle));
        assert_eq!(cut(&mut q), (2, 1, vec![2]));
    }

    #[test]
    fn flush_marks_only_what_is_queued() {
        let now = Instant::now();
        let mut q = Queue::new(limits(100, usize::MAX, 2));
        push(&mut q, 0, 0, now);
        push(&mut q, 1, 0, now);
        assert_eq!(q.flush(), 2);
        push(&mut q, 2, 0, now);
        assert_eq!(q.reason(now, 1), Some(FlushReason::Flush));
        assert_eq!(cut(&mut q).2, vec![0, 1, 2]);
        push(&mut q, 3, 0, now);
        assert_eq!(q.front_seq(), Some(3));
        assert_eq!(q.reason(now, 1), None, "item 3 came after the flush");
    }
}
