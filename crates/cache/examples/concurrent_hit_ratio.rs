//! Hit ratio with one thread and with several, on the same skewed workload: what the
//! reads dropped under concurrency (W-TinyLFU's ring) and LRU's "seen" marks in place of
//! exact stamps cost in hits.
//!
//! A cache of 10,000 `u64 → u64` entries (weigher 1, default shards); each thread reads
//! its share of the operations, keys `a × b` for `a` and `b` uniform below 250 (about
//! 40,000 distinct keys, the small ones far more often), and inserts a key it missed:
//! every one (`insert every miss`), or one in 16 (`read-mostly`: writes, which replay
//! what readers left, are rarer, so concurrent reads drop more). Hits, misses and the
//! reads whose effect on the policy was dropped come from `stats()`.
//!
//! ```text
//! cargo run --release -p mltb-cache --example concurrent_hit_ratio            # 4,000,000 operations
//! cargo run --release -p mltb-cache --example concurrent_hit_ratio -- 400000  # fewer
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example prints its figures")]

use mltb_cache::Admission;
use support::splitmix64;

#[path = "support/mod.rs"]
mod support;

/// Stats of `ops` operations shared by `threads` threads, inserting one missed key in
/// `insert_every`.
fn run(admission: Admission, threads: u64, ops: u64, insert_every: u64) -> mltb_cache::Stats {
    let cache = support::ours(10_000, |b| b.admission(admission));
    std::thread::scope(|s| {
        for t in 0..threads {
            let cache = &cache;
            s.spawn(move || {
                let mut x = 12_345 + t;
                let mut missed = 0_u64;
                for _ in 0..ops / threads {
                    let key = (splitmix64(&mut x) % 250) * (splitmix64(&mut x) % 250);
                    if cache.get(&key).is_none() {
                        missed += 1;
                        if missed.is_multiple_of(insert_every) {
                            let _ = cache.insert(key, key);
                        }
                    }
                }
            });
        }
    });
    cache.stats()
}

fn main() {
    let ops: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(4_000_000);
    for (workload, insert_every) in [("insert every miss", 1), ("read-mostly", 16)] {
        for admission in [Admission::TinyLfu, Admission::Lru] {
            for threads in [1, 2, 4] {
                let s = run(admission, threads, ops, insert_every);
                let reads = (s.hits + s.misses).max(1) as f64;
                println!(
                    "{workload}, {admission:?}, {threads} thread(s): hit ratio {:.2} % ({} hits, {} misses), \
                     dropped {:.2} % of reads",
                    100.0 * s.hit_ratio(),
                    s.hits,
                    s.misses,
                    100.0 * s.reads_dropped as f64 / reads
                );
            }
        }
    }
}
