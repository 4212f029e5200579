//! A fixed amount of single-threaded get hits, for instruction counts under callgrind
//! (which, unlike wall time, do not depend on what else the machine is doing). Same
//! shape as the `get_hit` group of `benches/throughput.rs`: 50,000 `u64 → u64` entries
//! (ours with a weigher of 1 per entry, default shards), splitmix64 keys below 50,000.
//!
//! ```text
//! cargo build --release -p mltb-cache --example get_hit_probe
//! valgrind --tool=callgrind target/release/examples/get_hit_probe ours 1000000
//! valgrind --tool=callgrind target/release/examples/get_hit_probe ours 0   # set-up only
//! ```
//!
//! `(Ir(N) - Ir(0)) / N` is the cost of one hit (the set-up's clock calibration varies
//! by a few million instructions; counting only the gets' loop avoids it:
//! `valgrind --tool=callgrind --collect-atstart=no '--toggle-collect=get_hit_probe::run*'
//! target/release/examples/get_hit_probe ours 1000000`, whose count per get includes
//! the loop's own dozen or so; the tables' hashers are seeded at random, so a count
//! moves by about one instruction between runs); `mutex_lru` or `quick_cache` instead of
//! `ours` gives an anchor's, `ours_tiny` ours under W-TinyLFU, `ours_fixed` under
//! W-TinyLFU with a fixed window (no window simulations), and `ours_window` ours with
//! a one-minute [`stats_window`](mltb_cache::MemoryCacheBuilder::stats_window).
//!
//! With a third argument it times instead: `get_hit_probe ours 20000 200` makes 200
//! rounds of 20,000 gets, each round reading on through the keys where the last one
//! stopped, and prints the fastest round's time per get. The gets are direct
//! calls from the thread that filled the cache, as a single-threaded program makes
//! them (our LRU's exact path), where the benches call through a trait object.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example prints its figures")]

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use mltb_cache::Admission;
use parking_lot::Mutex;
use support::splitmix64;

#[path = "support/mod.rs"]
mod support;

const CAPACITY: usize = 100_000;
const HOT_KEYS: u64 = 50_000;
const KEYS: usize = 1 << 16;

fn keys() -> Vec<u64> {
    let mut x: u64 = 7;
    (0..KEYS).map(|_| splitmix64(&mut x) % HOT_KEYS).collect()
}

/// `rounds` rounds of `n` gets of `keys` in order, each round going on where the last
/// stopped (wrapping); the fastest round's time per get, and how many hit in all. Out of
/// line, so that callgrind can count it alone.
#[inline(never)]
fn run(get: impl Fn(&u64) -> Option<u64>, keys: &[u64], n: usize, rounds: usize) -> (u64, f64) {
    let mut found = 0u64;
    let mut best = Duration::MAX;
    for round in 0..rounds {
        let start = Instant::now();
        for i in round * n..(round + 1) * n {
            found += u64::from(black_box(get(black_box(&keys[i & (KEYS - 1)]))).is_some());
        }
        best = best.min(start.elapsed());
    }
    (found, best.as_nanos() as f64 / n.max(1) as f64)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ours".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let rounds: Option<usize> = args.next().and_then(|a| a.parse().ok());
    let keys = keys();
    let (found, best) = match which.as_str() {
        "ours" | "ours_window" | "ours_tiny" | "ours_fixed" => {
            let cache = support::ours(CAPACITY, |mut builder| {
                if which == "ours_tiny" {
                    builder = builder.admission(Admission::TinyLfu);
                }
                if which == "ours_fixed" {
                    builder = builder.admission(Admission::TinyLfuFixedWindow);
                }
                if which == "ours_window" {
                    builder = builder.stats_window(std::time::Duration::from_secs(60));
                }
                builder
            });
            for k in 0..HOT_KEYS {
                let _ = cache.insert(k, k);
            }
            run(|k| cache.get(k), &keys, n, rounds.unwrap_or(1))
        }
        "mutex_lru" => {
            let cache =
                Mutex::new(lru::LruCache::new(NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN)));
            for k in 0..HOT_KEYS {
                cache.lock().put(k, k);
            }
            run(|k| cache.lock().get(k).copied(), &keys, n, rounds.unwrap_or(1))
        }
        "quick_cache" => {
            let cache = quick_cache::sync::Cache::new(CAPACITY);
            for k in 0..HOT_KEYS {
                cache.insert(k, k);
            }
            run(|k| cache.get(k), &keys, n, rounds.unwrap_or(1))
        }
        other => {
            eprintln!(
                "unknown cache {other:?}; expected ours, ours_tiny, ours_fixed, ours_window, mutex_lru or quick_cache"
            );
            std::process::exit(2);
        }
    };
    match rounds {
        Some(r) => println!("{which}: {found} hits; fastest of {r} rounds of {n}: {best:.1} ns per get"),
        None => println!("{which}: {found} hits of {n}"),
    }
}
