//! Stable hashing and cheap randomness for the strategies.
//!
//! Keys and ring points use 64-bit FNV-1a followed by MurmurHash3's `fmix64` finalizer.
//! FNV alone mixes its last bytes poorly (ids like `node-1`, `node-2` differ in one byte);
//! the finalizer spreads them over all 64 bits. The hash is fixed by this crate, not by
//! `std::hash`, so that every process maps a key to the same backend.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Continues an FNV-1a hash over `bytes`.
pub(crate) fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// MurmurHash3's 64-bit finalizer.
pub(crate) fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The hash of a pick key: FNV-1a 64 then `fmix64`.
pub fn key_hash(key: &[u8]) -> u64 {
    fmix64(fnv1a(FNV_OFFSET, key))
}

/// The hash of `bytes` followed by `suffix`'s little-endian bytes (ring points, seeds).
pub(crate) fn hash_with(bytes: &[u8], suffix: u64) -> u64 {
    fmix64(fnv1a(fnv1a(FNV_OFFSET, bytes), &suffix.to_le_bytes()))
}

/// Maps `x` uniformly onto `0..n` with a multiply and a shift (Lemire), no division.
#[inline]
pub(crate) fn reduce(x: u64, n: usize) -> usize {
    ((u128::from(x) * n as u128) >> 64) as usize
}

/// A splitmix64 sequence shared by threads: deterministic for a seed when one thread
/// draws, which the simulations rely on.
#[derive(Debug)]
pub(crate) struct SeqRng(AtomicU64);

impl SeqRng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }

    #[inline]
    pub(crate) fn next(&self) -> u64 {
        fmix64(self.0.fetch_add(GOLDEN, Ordering::Relaxed).wrapping_add(GOLDEN))
    }
}

static THREAD_SEEDS: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);

thread_local! {
    static THREAD_RNG: Cell<u64> = Cell::new(fmix64(THREAD_SEEDS.fetch_add(GOLDEN, Ordering::Relaxed)));
}

/// A per-thread splitmix64 draw: no shared cache line, so threads do not contend.
#[inline]
pub(crate) fn thread_rng() -> u64 {
    THREAD_RNG.with(|s| {
        let x = s.get().wrapping_add(GOLDEN);
        s.set(x);
        fmix64(x)
    })
}

/// Where a strategy's random numbers come from.
#[derive(Debug)]
pub(crate) enum Rng {
    Thread,
    Seeded(SeqRng),
}

impl Rng {
    pub(crate) fn new(seed: Option<u64>) -> Self {
        seed.map_or(Rng::Thread, |s| Rng::Seeded(SeqRng::new(s)))
    }

    #[inline]
    pub(crate) fn next(&self) -> u64 {
        match self {
            Rng::Thread => thread_rng(),
            Rng::Seeded(s) => s.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_stable_and_spreads() {
        // Fixed value: changing the hash remaps every consistent-hashing user.
        assert_eq!(key_hash(b""), fmix64(FNV_OFFSET));
        assert_ne!(key_hash(b"node-1"), key_hash(b"node-2"));
        assert_ne!(hash_with(b"a", 1), hash_with(b"a", 2));
    }

    #[test]
    fn reduce_stays_in_range() {
        for x in [0, 1, u64::MAX / 2, u64::MAX] {
            assert!(reduce(x, 7) < 7);
        }
        assert_eq!(reduce(u64::MAX, 7), 6);
    }

    #[test]
    fn seeded_rng_repeats() {
        let a = SeqRng::new(9);
        let b = SeqRng::new(9);
        assert_eq!((a.next(), a.next()), (b.next(), b.next()));
    }
}
