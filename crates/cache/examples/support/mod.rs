//! What the probes share: the caches they time, behind one trait; our cache as they
//! build it; and their keys. (A folder without `main.rs`, so cargo does not take it
//! for an example of its own.)
#![allow(dead_code, reason = "each probe uses a part of it")]

use mltb_cache::{MemoryCache, MemoryCacheBuilder};
use parking_lot::Mutex;

/// A cache as the probes call it.
pub(crate) trait Probe: Sync {
    fn get(&self, k: u64) -> Option<u64>;
    fn insert(&self, k: u64, v: u64);
    /// Ends whatever batch of reads the last trial left (ours: drains the read buffers).
    fn settle(&self) {}
}

impl Probe for MemoryCache<u64, u64> {
    fn get(&self, k: u64) -> Option<u64> {
        MemoryCache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        let _ = MemoryCache::insert(self, k, v);
    }
    fn settle(&self) {
        let _ = self.stats();
    }
}

impl Probe for quick_cache::sync::Cache<u64, u64> {
    fn get(&self, k: u64) -> Option<u64> {
        quick_cache::sync::Cache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        quick_cache::sync::Cache::insert(self, k, v);
    }
}

impl Probe for Mutex<lru::LruCache<u64, u64>> {
    fn get(&self, k: u64) -> Option<u64> {
        self.lock().get(&k).copied()
    }
    fn insert(&self, k: u64, v: u64) {
        self.lock().put(k, v);
    }
}

/// Our cache of `u64 → u64` entries, each weighing 1, holding `capacity` of them, as
/// `tune` sets it up; a refused configuration ends the probe with its error.
pub(crate) fn ours(
    capacity: usize,
    tune: impl FnOnce(MemoryCacheBuilder<u64, u64>) -> MemoryCacheBuilder<u64, u64>,
) -> MemoryCache<u64, u64> {
    match tune(MemoryCache::builder_with_weigher(|_: &u64, _: &u64| 1).max_bytes(capacity)).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// The next splitmix64 value of the sequence at `x`.
pub(crate) fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
