//! The `get_hit` and `mix_90_10` workloads of `benches/throughput.rs` as many short
//! trials, reporting the fastest: a figure for a machine busy with other work, where a
//! criterion sample of two threads is mostly the scheduler's doing.
//!
//! Each trial starts every thread from a spin barrier; a trial's figure is the time from
//! the first thread's start to the last thread's end, per operation of one thread (per
//! thread, as the bench's rows are). A trial in which any thread was descheduled is
//! slow, so the minimum over many trials is the time with every thread running at once,
//! contention included. Caches are filled as the bench
//! fills them (100,000 entries of capacity, `u64 → u64`, ours with a weigher of 1 and
//! default shards), and the caches take turns, a block of 20 trials each (the first of a
//! block, on cold processor caches, is not counted), so they see the same machine.
//!
//! Before each trial our caches' batches of reads are ended (`stats`, as any write
//! would): each trial's threads are new, and a batch read by the last trial's threads
//! would make a lone thread's reads look concurrent, so that they took the CLOCK-marking
//! path meant for several threads instead of the exact LRU one thread gets. (Figures of
//! one thread taken with this probe before 2026-12-06 measured that marking path.)
//!
//! ```text
//! cargo build --profile bench -p mltb-cache --example contention_probe
//! target/release/examples/contention_probe get_hit 2 400   # workload, threads, trials
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example prints its figures")]

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mltb_cache::Admission;
use parking_lot::Mutex;
use support::{Probe, splitmix64};

#[path = "support/mod.rs"]
mod support;

const CAPACITY: usize = 100_000;
const KEYS: usize = 1 << 16;
/// Operations per thread per trial: long enough to dwarf the barrier, short enough
/// that some trials run without a context switch.
const OPS: usize = 20_000;

fn keys(range: u64, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..KEYS).map(|_| splitmix64(&mut x) % range).collect()
}

fn ours(admission: Admission) -> Box<dyn Probe> {
    Box::new(support::ours(CAPACITY, |b| b.admission(admission)))
}

/// One trial: every thread does `OPS` operations from a common start; the time from the
/// first thread's start to the last one's end (so that threads that did not overlap
/// give a long trial, not two short ones).
fn trial(cache: &dyn Probe, key_sets: &[Vec<u64>], mix: bool, round: usize) -> Duration {
    let threads = key_sets.len();
    cache.settle();
    let ready = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = key_sets
            .iter()
            .map(|keys| {
                let ready = &ready;
                s.spawn(move || {
                    ready.fetch_add(1, Ordering::AcqRel);
                    while ready.load(Ordering::Acquire) < threads {
                        std::hint::spin_loop();
                    }
                    let start = Instant::now();
                    for i in 0..OPS {
                        let n = round * OPS + i;
                        let k = keys[n & (KEYS - 1)];
                        if mix && n.is_multiple_of(10) {
                            cache.insert(black_box(k), n as u64);
                        } else {
                            black_box(cache.get(black_box(k)));
                        }
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        let spans: Vec<(Instant, Instant)> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        let start = spans.iter().map(|s| s.0).min();
        let end = spans.iter().map(|s| s.1).max();
        match (start, end) {
            (Some(start), Some(end)) if spans.len() == key_sets.len() => end - start,
            _ => Duration::MAX,
        }
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "get_hit".into());
    let threads: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let trials: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(400);
    let (range, prefill, mix) = match workload.as_str() {
        "get_hit" => (50_000, 50_000, false),
        "mix_90_10" => (2 * CAPACITY as u64, CAPACITY as u64, true),
        other => {
            eprintln!("unknown workload {other:?}; expected get_hit or mix_90_10");
            std::process::exit(2);
        }
    };
    let cap = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
    let caches: Vec<(&str, Box<dyn Probe>)> = vec![
        ("mltb/lru", ours(Admission::Lru)),
        ("mltb/w-tinylfu", ours(Admission::TinyLfu)),
        ("quick_cache/clock-pro", Box::new(quick_cache::sync::Cache::<u64, u64>::new(CAPACITY))),
        ("mutex_lru/lru", Box::new(Mutex::new(lru::LruCache::<u64, u64>::new(cap)))),
    ];
    let key_sets: Vec<Vec<u64>> = (0..threads).map(|t| keys(range, 7 + t)).collect();
    for (_, c) in &caches {
        for k in 0..prefill {
            c.insert(k, k);
        }
        if !mix {
            let missing = key_sets.iter().flatten().filter(|&&k| c.get(k).is_none()).count();
            assert_eq!(missing, 0, "every key read must be a hit");
        }
    }
    let mut best = vec![Duration::MAX; caches.len()];
    // Blocks of trials per cache, so that a cache's trials after the first of a block
    // start with its lines in the processor's caches, as criterion's iterations do.
    let block = 20;
    for first in (0..trials).step_by(block) {
        for (b, (_, c)) in best.iter_mut().zip(&caches) {
            for round in first..(first + block).min(trials) {
                let t = trial(&**c, &key_sets, mix, round);
                if round > first {
                    *b = (*b).min(t);
                }
            }
        }
    }
    println!("{workload}, {threads} thread(s), fastest of {trials} trials of {OPS} operations per thread:");
    for ((label, _), b) in caches.iter().zip(&best) {
        println!("  {label:<24} {:>7.1} ns per operation, per thread", b.as_nanos() as f64 / OPS as f64);
    }
}
