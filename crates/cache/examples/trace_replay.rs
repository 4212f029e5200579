//! Hit ratios on the real traces in `../shared/traces`, side by side: our cache in LRU
//! mode and with W-TinyLFU admission, moka 0.12 and quick_cache 0.7, all replayed in this
//! one run with unit-size entries. Prints a Markdown table.
//!
//! ```text
//! cargo run --release -p mltb-cache --example trace_replay [-- TRACE...]
//! ```
//!
//! Traces: ARC paper (N. Megiddo and D. S. Modha, "ARC: A Self-Tuning, Low Overhead
//! Replacement Cache", USENIX FAST 2003); LIRS paper; cache2k (© headissue GmbH, Jens
//! Wilke, CC BY 4.0).
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example prints its table")]

#[path = "../tests/support/traces.rs"]
mod traces;

use mltb_cache::Admission;
use traces::{REFERENCE, TRACES, load, replay, replay_ours};

fn moka(keys: &[u64], capacity: usize) -> f64 {
    let cache: moka::sync::Cache<u64, ()> = moka::sync::Cache::new(capacity as u64);
    let mut ops = 0_u64;
    replay(keys, |k| {
        ops += 1;
        if ops.is_multiple_of(64) {
            cache.run_pending_tasks();
        }
        if cache.get(&k).is_some() {
            true
        } else {
            cache.insert(k, ());
            false
        }
    })
}

fn quick(keys: &[u64], capacity: usize) -> f64 {
    let mut cache: quick_cache::unsync::Cache<u64, ()> = quick_cache::unsync::Cache::new(capacity);
    replay(keys, |k| {
        if cache.get(&k).is_some() {
            true
        } else {
            cache.insert(k, ());
            false
        }
    })
}

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "| trace | capacity | LRU ref | ours LRU | ours W-TinyLFU | ours W-TinyLFU (fixed 1%) | moka | quick_cache | OPT |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for t in TRACES {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == t.name) {
            continue;
        }
        let keys = match load(t) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        for r in REFERENCE.iter().filter(|r| r.trace == t.name) {
            let lru = replay_ours(&keys, r.capacity, Admission::Lru);
            let tiny = replay_ours(&keys, r.capacity, Admission::TinyLfu);
            let fixed = replay_ours(&keys, r.capacity, Admission::TinyLfuFixedWindow);
            let m = moka(&keys, r.capacity);
            let q = quick(&keys, r.capacity);
            println!(
                "| {} | {} | {:.2}% | {lru:.2}% | {tiny:.2}% | {fixed:.2}% | {m:.2}% | {q:.2}% | {:.2}% |",
                r.trace, r.capacity, r.lru, r.opt
            );
        }
    }
}
