//! How many bytes an entry costs: the [`Weigh`] trait behind the default weigher.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::Arc;

/// Heap bytes a value owns beyond its inline `size_of`.
///
/// The default weigher charges an entry `size_of` of its node in the shard's arena (key,
/// value, weight, deadline, links), one hash-table slot, and `heap_bytes` of the key and
/// of the value. Implement
/// this for your own types, or pass a closure to
/// [`MemoryCacheBuilder::weigher`](crate::MemoryCacheBuilder::weigher) instead.
pub trait Weigh {
    /// Bytes owned on the heap (count capacity, not length, where they differ).
    fn heap_bytes(&self) -> usize;
}

macro_rules! no_heap {
    ($($t:ty),* $(,)?) => { $(impl Weigh for $t { #[inline] fn heap_bytes(&self) -> usize { 0 } })* };
}
no_heap!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
);

impl Weigh for String {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl Weigh for Box<str> {
    fn heap_bytes(&self) -> usize {
        self.len()
    }
}

impl<T: Weigh> Weigh for Box<[T]> {
    fn heap_bytes(&self) -> usize {
        self.len() * size_of::<T>() + self.iter().map(Weigh::heap_bytes).sum::<usize>()
    }
}

impl<T: Weigh> Weigh for Box<T> {
    fn heap_bytes(&self) -> usize {
        size_of::<T>() + (**self).heap_bytes()
    }
}

impl<T: Weigh> Weigh for Vec<T> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * size_of::<T>() + self.iter().map(Weigh::heap_bytes).sum::<usize>()
    }
}

/// An `Arc` is charged in full (counts and contents) to every entry that holds it: the
/// cache cannot know who else shares it, and over-counting keeps the budget a promise.
impl<T: Weigh + ?Sized> Weigh for Arc<T> {
    fn heap_bytes(&self) -> usize {
        2 * size_of::<usize>() + std::mem::size_of_val::<T>(self) + (**self).heap_bytes()
    }
}

impl Weigh for str {
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl<T: Weigh> Weigh for [T] {
    fn heap_bytes(&self) -> usize {
        self.iter().map(Weigh::heap_bytes).sum()
    }
}

impl<T: Weigh> Weigh for Option<T> {
    fn heap_bytes(&self) -> usize {
        self.as_ref().map_or(0, Weigh::heap_bytes)
    }
}

impl<A: Weigh, B: Weigh> Weigh for (A, B) {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.1.heap_bytes()
    }
}

impl<A: Weigh, B: Weigh, C: Weigh> Weigh for (A, B, C) {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.1.heap_bytes() + self.2.heap_bytes()
    }
}

impl<K: Weigh, V: Weigh, S> Weigh for HashMap<K, V, S> {
    fn heap_bytes(&self) -> usize {
        // One control byte per bucket beside each (K, V) slot.
        self.capacity() * (size_of::<(K, V)>() + 1)
            + self.iter().map(|(k, v)| k.heap_bytes() + v.heap_bytes()).sum::<usize>()
    }
}

#[cfg(feature = "bytes")]
impl Weigh for bytes::Bytes {
    /// The visible length: a `Bytes` sliced from a larger buffer may keep more alive.
    fn heap_bytes(&self) -> usize {
        self.len()
    }
}

/// Bytes of bookkeeping per entry, besides the key's and value's inline size: the shard
/// arena's node (key, value, a non-zero weight, a `u64` deadline and a `u64` stamp, in
/// an `Option` whose tag takes the weight's niche), its three `u32` links (kept apart
/// from the node), plain LRU's place for it in its heap of read entries (a `u32`, and a
/// 16-byte slot of the heap, charged to every entry and to both policies) and one
/// hash-table slot (a `u32` node index) with its control byte at hashbrown's 7/8 maximum
/// load. The arena's vectors can hold up to twice the entries after they grow; that
/// slack is not charged.
pub(crate) const fn entry_overhead<K, V>() -> usize {
    let heap = size_of::<u32>() + size_of::<(u64, u32)>();
    let node = size_of::<Option<(K, V, std::num::NonZeroUsize, u64, u64)>>() + 3 * size_of::<u32>() + heap;
    let slot = (size_of::<u32>() + 1) * 8 / 7 + 1;
    node + slot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_vectors_count_capacity() {
        let mut s = String::with_capacity(100);
        s.push('x');
        assert_eq!(s.heap_bytes(), 100);
        let v: Vec<u64> = Vec::with_capacity(10);
        assert_eq!(v.heap_bytes(), 80);
        let nested = vec![String::from("abc"), String::from("de")];
        assert_eq!(nested.heap_bytes(), 2 * size_of::<String>() + 3 + 2);
        assert_eq!(7_u64.heap_bytes(), 0);
        let a: Arc<str> = Arc::from("hello");
        assert_eq!(a.heap_bytes(), 16 + 5);
    }

    #[test]
    fn overhead_covers_node_and_slot() {
        // Key, value, weight, deadline and stamp 8 + 8 + 8 + 8 + 8 (the option's tag in the
        // weight's niche), 12 bytes of links, 4 + 16 of the heap, and a 4-byte slot with
        // its control byte at 7/8 load.
        assert_eq!(entry_overhead::<u64, u64>(), 40 + 12 + 20 + 6);
    }
}
