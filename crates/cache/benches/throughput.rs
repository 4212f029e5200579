//! Throughput of our L1 beside moka, quick_cache and `Mutex<lru::LruCache>`: one criterion
//! group per operation (get-hit, insert, 90/10 read/write mix), each at 1 and 2 threads,
//! so every ratio comes from one run. All caches hold at most 100,000 `u64 → u64` entries
//! (ours through a weigher of 1 per entry, default shards).
//!
//! ```text
//! cargo bench -p mltb-cache --bench throughput
//! ```
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mltb_cache::MemoryCache;
use parking_lot::Mutex;

const CAPACITY: usize = 100_000;
const HOT_KEYS: u64 = 50_000;
const KEYS: usize = 1 << 16;

trait Bench: Sync {
    fn get(&self, k: u64) -> Option<u64>;
    fn insert(&self, k: u64, v: u64);
}

struct Ours(MemoryCache<u64, u64>);
impl Bench for Ours {
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k)
    }
    fn insert(&self, k: u64, v: u64) {
        let _ = self.0.insert(k, v);
    }
}

struct Moka(moka::sync::Cache<u64, u64>);
impl Bench for Moka {
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k)
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.insert(k, v);
    }
}

struct Quick(quick_cache::sync::Cache<u64, u64>);
impl Bench for Quick {
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k)
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.insert(k, v);
    }
}

struct MutexLru(Mutex<lru::LruCache<u64, u64>>);
impl Bench for MutexLru {
    fn get(&self, k: u64) -> Option<u64> {
        self.0.lock().get(&k).copied()
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.lock().put(k, v);
    }
}

fn caches() -> Vec<(&'static str, Box<dyn Bench>)> {
    let ours = MemoryCache::builder_with_weigher(|_: &u64, _: &u64| 1)
        .max_bytes(CAPACITY)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let cap = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
    vec![
        ("ours", Box::new(Ours(ours)) as Box<dyn Bench>),
        ("moka", Box::new(Moka(moka::sync::Cache::new(CAPACITY as u64)))),
        ("quick_cache", Box::new(Quick(quick_cache::sync::Cache::new(CAPACITY)))),
        ("mutex_lru", Box::new(MutexLru(Mutex::new(lru::LruCache::new(cap))))),
    ]
}

/// Pseudo-random keys below `range` (splitmix64), the same for every cache.
fn keys(range: u64, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..KEYS)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % range
        })
        .collect()
}

/// Runs `iters` operations split over `threads` threads; returns the wall time.
fn run(threads: usize, iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let per_thread = iters.div_ceil(threads as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..per_thread {
                    op(t, i);
                }
            });
        }
    });
    start.elapsed()
}

fn group(c: &mut Criterion, name: &str, range: u64, prefill: u64, op: fn(&dyn Bench, u64, u64)) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let key_sets: Vec<Vec<u64>> = (0..2).map(|t| keys(range, 7 + t)).collect();
    for threads in [1, 2] {
        for (label, cache) in caches() {
            for k in 0..prefill {
                cache.insert(k, k);
            }
            let cache = &*cache;
            let key_sets = &key_sets;
            g.bench_with_input(BenchmarkId::new(label, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    run(threads, iters, &|t, i| {
                        let k = key_sets[t][(i as usize) & (KEYS - 1)];
                        op(cache, k, i);
                    })
                });
            });
        }
    }
    g.finish();
}

fn get_hit(cache: &dyn Bench, k: u64, _i: u64) {
    black_box(cache.get(black_box(k)));
}

fn insert(cache: &dyn Bench, k: u64, i: u64) {
    cache.insert(black_box(k), i);
}

fn mix(cache: &dyn Bench, k: u64, i: u64) {
    if i.is_multiple_of(10) {
        cache.insert(black_box(k), i);
    } else {
        black_box(cache.get(black_box(k)));
    }
}

fn throughput(c: &mut Criterion) {
    group(c, "get_hit", HOT_KEYS, HOT_KEYS, get_hit);
    group(c, "insert", 4 * CAPACITY as u64, 0, insert);
    group(c, "mix_90_10", 2 * CAPACITY as u64, CAPACITY as u64, mix);
}

criterion_group!(benches, throughput);
criterion_main!(benches);
