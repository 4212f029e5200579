//! A fixed amount of single-threaded inserts, or a 90/10 read/insert mix, for instruction
//! and cache-miss counts under callgrind (which, unlike wall time, do not depend on what
//! else the machine is doing). A cache of 100,000 `u64 → u64` entries (weigher 1, default
//! shards) is first filled by 200,000 inserts of splitmix64 keys below 400,000; then each
//! operation is an insert of such a key, or (mix) 9 in 10 are gets of keys below 200,000.
//!
//! ```text
//! cargo build --release -p mltb-cache --example ops_probe
//! valgrind --tool=callgrind --cache-sim=yes target/release/examples/ops_probe insert 1000000
//! valgrind --tool=callgrind --cache-sim=yes target/release/examples/ops_probe insert 0   # set-up only
//! ```
//!
//! Modes: `insert`, `mix` (plain LRU), `insert_tiny`, `mix_tiny` (W-TinyLFU), and the
//! anchor `insert_qc`, `mix_qc` (quick_cache's sync cache of the same capacity).
//! `(count(N) - count(0)) / N` is the cost of one operation.
//!
//! `bench_mix` (and `bench_mix_tiny`, `bench_mix_qc`) is instead `benches/throughput.rs`'s
//! `mix_90_10` on one thread: keys 0 – 99,999 inserted in order, then 65,536 splitmix64
//! keys below 200,000 (seed 7) read in a cycle, every tenth operation an insert; after
//! 1,000,000 such operations to reach the bench's steady state (where most gets hit and
//! most inserts replace), `N` more are counted.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example prints its figures")]

use std::hint::black_box;

use mltb_cache::Admission;
use support::{Probe, splitmix64};

#[path = "support/mod.rs"]
mod support;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "insert".into());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let admission = if mode.ends_with("_tiny") { Admission::TinyLfu } else { Admission::Lru };
    let cache: Box<dyn Probe> = if mode.ends_with("_qc") {
        Box::new(quick_cache::sync::Cache::new(100_000))
    } else {
        Box::new(support::ours(100_000, |b| b.admission(admission)))
    };
    if mode.starts_with("bench_mix") {
        bench_mix(&*cache, n);
        return;
    }
    let mut x: u64 = 7;
    let mut key = || splitmix64(&mut x);
    for i in 0..200_000u64 {
        cache.insert(key() % 400_000, i);
    }
    let mix = mode.starts_with("mix");
    let mut hits = 0u64;
    for i in 0..n {
        let k = key();
        if mix && k % 10 != 0 {
            hits += u64::from(black_box(cache.get(k % 200_000)).is_some());
        } else {
            cache.insert(black_box(k % 400_000), i);
        }
    }
    println!("{mode}: {n} operations, {hits} hits");
}

/// The bench's `mix_90_10` on one thread (see the module's doc).
fn bench_mix(cache: &dyn Probe, n: u64) {
    const WARM_UP: u64 = 1_000_000;
    let mut x: u64 = 7;
    let keys: Vec<u64> = (0..1 << 16).map(|_| splitmix64(&mut x) % 200_000).collect();
    for k in 0..100_000 {
        cache.insert(k, k);
    }
    let mut hits = 0u64;
    for i in 0..WARM_UP + n {
        let k = keys[(i as usize) & (keys.len() - 1)];
        if i.is_multiple_of(10) {
            cache.insert(black_box(k), i);
        } else if black_box(cache.get(black_box(k))).is_some() && i >= WARM_UP {
            hits += 1;
        }
    }
    println!("bench_mix: {n} operations after {WARM_UP}, {hits} hits");
}
