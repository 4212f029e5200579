//! Hit ratio with one thread and with several, on the same skewed workload: what the
//! reads dropped under concurrency (W-TinyLFU's ring, LRU's marking in place of exact
//! recency) cost in hits.
//!
//! A cache of 10,000 `u64 → u64` entries (weigher 1, default shards); each thread reads
//! its share of the operations, keys `a × b` for `a` and `b` uniform below 250 (about
//! 40,000 distinct keys, the small ones far more often), and inserts a key it missed.
//! Hits and misses come from `stats()`.
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

/// Hits and misses of `ops` operations shared by `threads` threads.
fn run(admission: Admission, threads: u64, ops: u64) -> (u64, u64) {
    let cache = support::ours(10_000, |b| b.admission(admission));
    std::thread::scope(|s| {
        for t in 0..threads {
            let cache = &cache;
            s.spawn(move || {
                let mut x = 12_345 + t;
                for _ in 0..ops / threads {
                    let key = (splitmix64(&mut x) % 250) * (splitmix64(&mut x) % 250);
                    if cache.get(&key).is_none() {
                        let _ = cache.insert(key, key);
                    }
                }
            });
        }
    });
    let stats = cache.stats();
    (stats.hits, stats.misses)
}

fn main() {
    let ops: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(4_000_000);
    for admission in [Admission::TinyLfu, Admission::Lru] {
        for threads in [1, 2, 4] {
            let (hits, misses) = run(admission, threads, ops);
            let ratio = hits as f64 / (hits + misses).max(1) as f64;
            println!(
                "{admission:?}, {threads} thread(s): hit ratio {:.2} % ({hits} hits, {misses} misses)",
                100.0 * ratio
            );
        }
    }
}
