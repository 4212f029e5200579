//! Throughput of our L1 beside moka, quick_cache and `Mutex<lru::LruCache>`: one criterion
//! group per operation (get-hit, insert, 90/10 read/write mix), each at 1 and 2 threads,
//! so every ratio comes from one run. Each row is labelled `crate/policy`; compare like
//! with like:
//!
//! - `mltb/lru` with the LRU-class anchors `mutex_lru/lru` (the lru crate behind one
//!   `parking_lot` mutex) and `quick_cache/clock-pro` (quick_cache's sync cache);
//! - `mltb/w-tinylfu` with `moka/tinylfu` (moka's sync cache, W-TinyLFU as it always
//!   runs).
//!
//! All caches hold at most 100,000 `u64 → u64` entries (ours through a weigher of 1 per
//! entry, default shards). Keys are splitmix64, uniform below the group's range, a
//! different sequence per thread. **Multi-thread rows are per thread**
//! (`mltb_testkit::bench::per_thread`): each thread does criterion's `iters` operations,
//! and the figure is the time one operation takes as each thread sees it while the other
//! runs too (aggregate throughput is `threads / figure`).
//!
//! Before timing, the get-hit group checks that every key it will read is a hit in every
//! cache; after, that every cache kept to its capacity.
//!
//! ```text
//! cargo bench -p mltb-cache --bench throughput -- --warm-up-time 1 --measurement-time 3
//! ```
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mltb_cache::{Admission, MemoryCache};
use mltb_testkit::bench::per_thread;
use parking_lot::Mutex;

const CAPACITY: usize = 100_000;
const HOT_KEYS: u64 = 50_000;
const KEYS: usize = 1 << 16;

trait Bench: Sync {
    fn get(&self, k: u64) -> Option<u64>;
    fn insert(&self, k: u64, v: u64);
    /// Entries held now.
    fn len(&self) -> usize;
}

struct Mltb(MemoryCache<u64, u64>);
impl Bench for Mltb {
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k)
    }
    fn insert(&self, k: u64, v: u64) {
        let _ = self.0.insert(k, v);
    }
    fn len(&self) -> usize {
        self.0.len()
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
    fn len(&self) -> usize {
        self.0.run_pending_tasks();
        self.0.entry_count() as usize
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
    fn len(&self) -> usize {
        self.0.len()
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
    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

fn mltb(admission: Admission) -> Box<dyn Bench> {
    let cache = MemoryCache::builder_with_weigher(|_: &u64, _: &u64| 1)
        .max_bytes(CAPACITY)
        .admission(admission)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    Box::new(Mltb(cache))
}

/// Every row, labelled `crate/policy`.
fn caches() -> Vec<(&'static str, Box<dyn Bench>)> {
    let cap = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
    vec![
        ("mltb/lru", mltb(Admission::Lru)),
        ("mltb/w-tinylfu", mltb(Admission::TinyLfu)),
        ("moka/tinylfu", Box::new(Moka(moka::sync::Cache::new(CAPACITY as u64)))),
        ("quick_cache/clock-pro", Box::new(Quick(quick_cache::sync::Cache::new(CAPACITY)))),
        ("mutex_lru/lru", Box::new(MutexLru(Mutex::new(lru::LruCache::new(cap))))),
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

struct Group {
    name: &'static str,
    range: u64,
    prefill: u64,
    /// Every key read must be a hit (checked before timing).
    all_hits: bool,
    op: fn(&dyn Bench, u64, u64),
}

fn group(c: &mut Criterion, spec: &Group) {
    let mut g = c.benchmark_group(spec.name);
    g.throughput(Throughput::Elements(1));
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let key_sets: Vec<Vec<u64>> = (0..2).map(|t| keys(spec.range, 7 + t)).collect();
    for threads in [1, 2] {
        for (label, cache) in caches() {
            for k in 0..spec.prefill {
                cache.insert(k, k);
            }
            if spec.all_hits {
                let missing = key_sets.iter().flatten().filter(|&&k| cache.get(k).is_none()).count();
                assert_eq!(missing, 0, "{label}: {missing} keys of {} would miss", spec.name);
            }
            let cache = &*cache;
            let key_sets = &key_sets;
            g.bench_with_input(BenchmarkId::new(label, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    per_thread(threads, iters, |t, i| {
                        let k = key_sets[t][(i as usize) & (KEYS - 1)];
                        (spec.op)(cache, k, i);
                    })
                });
            });
            let len = cache.len();
            assert!(len <= CAPACITY, "{label}: {len} entries held, more than the capacity {CAPACITY}");
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
    group(c, &Group { name: "get_hit", range: HOT_KEYS, prefill: HOT_KEYS, all_hits: true, op: get_hit });
    let capacity = CAPACITY as u64;
    group(c, &Group { name: "insert", range: 4 * capacity, prefill: 0, all_hits: false, op: insert });
    group(c, &Group { name: "mix_90_10", range: 2 * capacity, prefill: capacity, all_hits: false, op: mix });
}

criterion_group!(benches, throughput);
criterion_main!(benches);
