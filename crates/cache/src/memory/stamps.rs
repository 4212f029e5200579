//! An indexed min-heap of nodes by stamp: plain LRU's entries that were read after they
//! were linked and have since reached the least recent end of the list (see
//! `lru_store`). The least stamp is the least recently used of them; a node can leave
//! from anywhere (a removal, an update), so each node's place in the heap is kept.

/// A node not in the heap.
const OUT: u32 = u32::MAX;

#[derive(Debug, Default)]
pub(crate) struct StampHeap {
    /// `(stamp, node)`, a binary min-heap on the stamp.
    heap: Vec<(u64, u32)>,
    /// `place[node]`: its index in `heap`, or [`OUT`].
    place: Vec<u32>,
}

impl StampHeap {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, node: u32) -> bool {
        self.place.get(node as usize).is_some_and(|&p| p != OUT)
    }

    /// The least stamp and its node.
    #[inline]
    pub(crate) fn peek(&self) -> Option<(u64, u32)> {
        self.heap.first().copied()
    }

    /// Adds `node` (not in the heap) with `stamp`.
    pub(crate) fn push(&mut self, node: u32, stamp: u64) {
        let at = node as usize;
        if self.place.len() <= at {
            self.place.resize(at + 1, OUT);
        }
        debug_assert_eq!(self.place[at], OUT, "node {node} is in the heap already");
        self.heap.push((stamp, node));
        let last = self.heap.len() - 1;
        self.place[at] = last as u32;
        self.sift_up(last);
    }

    /// Gives the least node a new stamp (a read since it was pushed).
    pub(crate) fn restamp_top(&mut self, stamp: u64) {
        if let Some(top) = self.heap.first_mut() {
            top.0 = stamp;
            self.sift_down(0);
        }
    }

    /// Takes the least node out.
    pub(crate) fn pop(&mut self) -> Option<u32> {
        let (_, node) = self.peek()?;
        self.take(node, 0);
        Some(node)
    }

    /// Takes `node` out; whether it was in.
    #[inline]
    pub(crate) fn remove(&mut self, node: u32) -> bool {
        match self.place.get(node as usize) {
            Some(&at) if at != OUT => {
                self.take(node, at as usize);
                true
            }
            _ => false,
        }
    }

    /// Takes `node`, at `at` in the heap, out.
    fn take(&mut self, node: u32, at: usize) {
        self.place[node as usize] = OUT;
        let last = self.heap.len() - 1;
        self.heap.swap_remove(at);
        if at < last {
            let moved = self.heap[at].1 as usize;
            self.place[moved] = at as u32;
            // The node moved in from the end may belong above or below its new place.
            self.sift_up(at);
            self.sift_down(self.place[moved] as usize);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.place.clear();
    }

    /// Stamps and nodes, in no order (tests).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.heap.iter().copied()
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.heap[parent].0 <= self.heap[at].0 {
                break;
            }
            self.swap(at, parent);
            at = parent;
        }
    }

    fn sift_down(&mut self, mut at: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * at + 1, 2 * at + 2);
            let mut least = at;
            if l < n && self.heap[l].0 < self.heap[least].0 {
                least = l;
            }
            if r < n && self.heap[r].0 < self.heap[least].0 {
                least = r;
            }
            if least == at {
                break;
            }
            self.swap(at, least);
            at = least;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.place[self.heap[a].1 as usize] = a as u32;
        self.place[self.heap[b].1 as usize] = b as u32;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32, u64),
        Remove(u32),
        PopLeast,
        RestampTop(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..40_u32, 0..1_000_u64).prop_map(|(n, s)| Op::Push(n, s)),
            (0..40_u32).prop_map(Op::Remove),
            Just(Op::PopLeast),
            (0..1_000_u64).prop_map(Op::RestampTop),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_sorted_list(ops in proptest::collection::vec(op(), 0..300)) {
            let mut heap = StampHeap::default();
            let mut model: Vec<(u64, u32)> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(n, s) => {
                        if !model.iter().any(|&(_, m)| m == n) {
                            heap.push(n, s);
                            model.push((s, n));
                        }
                    }
                    Op::Remove(n) => {
                        let was = model.iter().any(|&(_, m)| m == n);
                        model.retain(|&(_, m)| m != n);
                        prop_assert_eq!(heap.remove(n), was);
                    }
                    Op::PopLeast => {
                        let least = model.iter().map(|&(s, _)| s).min();
                        let top = heap.peek();
                        prop_assert_eq!(top.map(|(s, _)| s), least);
                        if let Some((_, n)) = top {
                            prop_assert_eq!(heap.pop(), Some(n));
                            prop_assert!(!heap.remove(n));
                            model.retain(|&(_, m)| m != n);
                        }
                    }
                    Op::RestampTop(s) => {
                        if let Some((_, n)) = heap.peek() {
                            heap.restamp_top(s);
                            for m in &mut model {
                                if m.1 == n {
                                    m.0 = s;
                                }
                            }
                        }
                    }
                }
                prop_assert_eq!(heap.len(), model.len());
                for &(s, n) in &model {
                    prop_assert!(heap.contains(n));
                    prop_assert!(heap.iter().any(|e| e == (s, n)));
                }
            }
        }
    }
}
