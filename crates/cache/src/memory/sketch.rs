//! A count-min sketch of 4-bit counters: TinyLFU's estimate of how often a key was seen.
//!
//! The counters are grouped in 64-byte blocks, one cache line each, and all four of a
//! key's counters lie in one block, as in Caffeine's current sketch: a count or a
//! look-up touches one line and hashes once, where four counters spread over the
//! table touched four lines and mixed the hash four times (an increment was about 100
//! instructions of a W-TinyLFU hit's 450 in one callgrind count, docs/benchmarks.md).

/// Eight words of sixteen 4-bit counters: one cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Block([u64; 8]);

/// Each key touches four counters, one per "row", and its frequency is the smallest of
/// them. The block is picked by the key's hash; row `r` owns words `2r` and `2r + 1` of
/// it, and the hash's byte `r` picks the word (its low bit) and the counter in it (the
/// next four bits). After `sample_size` increments every counter is halved, so old
/// popularity fades.
#[derive(Debug)]
pub(crate) struct FrequencySketch {
    blocks: Vec<Block>,
    mask: usize,
    additions: usize,
    sample_size: usize,
}

/// Spreads the hash's bits into the block index (Fibonacci hashing's multiplier).
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;
const RESET_MASK: u64 = 0x7777_7777_7777_7777;

impl FrequencySketch {
    /// Sized for `entries`: a word (sixteen counters) per entry, as many words as the next
    /// power of two, at least two blocks.
    pub(crate) fn new(entries: usize) -> Self {
        let words = entries.clamp(16, 1 << 30).next_power_of_two();
        let blocks = words / 8;
        Self {
            blocks: vec![Block::default(); blocks],
            mask: blocks - 1,
            additions: 0,
            sample_size: 10 * words,
        }
    }

    /// Counter words (sixteen counters each).
    pub(crate) fn words(&self) -> usize {
        self.blocks.len() * 8
    }

    /// Grows to fit `entries` (forgetting what was counted); never shrinks.
    pub(crate) fn ensure_capacity(&mut self, entries: usize) {
        let words = self.words();
        if entries > words && words < (1 << 30) {
            *self = Self::new(entries);
        }
    }

    /// The key's block, and its four counters' places in it: the hash's low 32 bits, a
    /// byte per row (see [`counter`](Self::counter)).
    #[inline]
    fn locate(&self, hash: u64) -> (usize, u32) {
        let block = (hash.wrapping_mul(SPREAD) >> 32) as usize & self.mask;
        (block, hash as u32)
    }

    /// Row `row`'s counter of a key whose places are `spots`: the word in the block and
    /// the counter's shift in the word.
    #[inline]
    fn counter(spots: u32, row: usize) -> (usize, u32) {
        let byte = spots >> (row * 8);
        (row * 2 + (byte & 1) as usize, ((byte >> 1) & 15) * 4)
    }

    /// The smallest of the key's four counters.
    #[inline]
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        let (block, spots) = self.locate(hash);
        let Some(Block(words)) = self.blocks.get(block) else { return 0 };
        let mut min = 15;
        for row in 0..4 {
            let (w, shift) = Self::counter(spots, row);
            min = min.min(((words[w] >> shift) & 0xf) as u8);
        }
        min
    }

    pub(crate) fn increment(&mut self, hash: u64) {
        let (block, spots) = self.locate(hash);
        let Some(Block(words)) = self.blocks.get_mut(block) else { return };
        // Without branches: a counter at 15 adds 0.
        let mut added = 0;
        for row in 0..4 {
            let (w, shift) = Self::counter(spots, row);
            let add = u64::from((words[w] >> shift) & 0xf < 15);
            words[w] += add << shift;
            added |= add;
        }
        if added != 0 {
            self.additions += 1;
            if self.additions >= self.sample_size {
                self.reset();
            }
        }
    }

    #[cold]
    fn reset(&mut self) {
        for Block(words) in &mut self.blocks {
            for w in words {
                *w = (*w >> 1) & RESET_MASK;
            }
        }
        self.additions /= 2;
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn counts_saturate_at_fifteen_and_age() {
        let mut s = FrequencySketch::new(64);
        for _ in 0..20 {
            s.increment(42);
        }
        assert_eq!(s.frequency(42), 15);
        assert_eq!(s.frequency(43), 0);
        s.reset();
        assert_eq!(s.frequency(42), 7);
    }

    #[test]
    fn estimates_never_undercount() {
        let mut s = FrequencySketch::new(1024);
        for k in 0..500_u64 {
            for _ in 0..(k % 7) {
                s.increment(k.wrapping_mul(0x2545_f491_4f6c_dd1d));
            }
        }
        for k in 0..500_u64 {
            assert!(s.frequency(k.wrapping_mul(0x2545_f491_4f6c_dd1d)) as u64 >= k % 7);
        }
    }

    #[test]
    fn a_keys_counters_share_one_block_and_distinct_keys_rarely_collide() {
        let mut s = FrequencySketch::new(4096);
        let hash = |k: u64| foldhash::fast::FixedState::with_seed(7).hash_one(k);
        s.increment(hash(1));
        let touched: Vec<usize> =
            s.blocks.iter().enumerate().filter(|(_, b)| b.0 != [0; 8]).map(|(i, _)| i).collect();
        assert_eq!(touched.len(), 1, "one key's four counters lie in one block");
        let words = s.blocks[touched[0]].0;
        assert_eq!(
            words.iter().map(|w| w.count_ones()).sum::<u32>(),
            4,
            "four counters, one each: {words:x?}"
        );
        // 1,000 keys seen once each in a sketch sized for 4,096: a key is overestimated
        // only if all four of its counters are shared.
        let mut s = FrequencySketch::new(4096);
        for k in 0..1_000 {
            s.increment(hash(k));
        }
        let over = (0..1_000).filter(|&k| s.frequency(hash(k)) > 1).count();
        assert!(over <= 10, "{over} of 1,000 keys overestimated");
        assert!((0..1_000).all(|k| s.frequency(hash(k)) >= 1), "never under");
    }
}
