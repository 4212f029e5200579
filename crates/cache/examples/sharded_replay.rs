//! W-TinyLFU's hit ratio on the trace rows of `../shared/traces` with the cache split in
//! shards, as an application's cache is by default (`trace_replay` and the hit-ratio
//! table use one shard). A sharded cache's figures move from run to run: its table
//! hasher is seeded at random and picks each key's shard. So each row is replayed
//! `--runs` times, each with a new cache, and given as median [min – max], with the sum
//! of the medians over the rows replayed.
//!
//! Rows of at least 500 entries only (a smaller capacity split 8 ways leaves shards of a
//! few dozen entries), and not P2 and P3 (millions of requests each).
//!
//! ```text
//! cargo run --release -p mltb-cache --example sharded_replay                # 8 shards, 5 runs
//! cargo run --release -p mltb-cache --example sharded_replay -- --shards 16 --runs 10
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example prints its table")]

#[path = "../tests/support/traces.rs"]
mod traces;

use mltb_cache::Admission;
use traces::{REFERENCE, Spread, TRACES, load, ours_builder, replay_cache};

/// The smallest capacity replayed.
const MIN_CAPACITY: usize = 500;

struct Args {
    shards: usize,
    runs: usize,
}

fn parse() -> Result<Args, String> {
    let mut out = Args { shards: 8, runs: 5 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut count = |name: &str| -> Result<usize, String> {
            let n = it.next().ok_or_else(|| format!("{name} needs a number"))?;
            match n.parse() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("{name} {n:?}: expected a count ≥ 1")),
            }
        };
        match arg.as_str() {
            "--shards" => out.shards = count("--shards")?,
            "--runs" => out.runs = count("--runs")?,
            other => return Err(format!("unknown argument {other:?}: expected --shards N or --runs N")),
        }
    }
    Ok(out)
}

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("sharded_replay: {e}");
        std::process::exit(2);
    });
    println!("W-TinyLFU, {} shards, {} runs a row: median [min – max]", args.shards, args.runs);
    println!();
    println!("| trace | capacity | W-TinyLFU |");
    println!("|---|---:|---:|");
    let mut sum = 0.0;
    for trace in TRACES.iter().filter(|t| t.name != "P2" && t.name != "P3") {
        let keys = load(trace).unwrap_or_else(|e| {
            eprintln!("sharded_replay: {e}");
            std::process::exit(1);
        });
        for row in REFERENCE.iter().filter(|r| r.trace == trace.name && r.capacity >= MIN_CAPACITY) {
            let hits = Spread::of(
                (0..args.runs)
                    .map(|_| {
                        let cache = ours_builder(row.capacity, Admission::TinyLfu, None)
                            .shards(args.shards)
                            .build()
                            .unwrap_or_else(|e| panic!("{} at {}: {e}", trace.name, row.capacity));
                        replay_cache(&keys, &cache)
                    })
                    .collect(),
            );
            sum += hits.median;
            println!(
                "| {} | {} | {:.2}% [{:.2} – {:.2}] |",
                trace.name, row.capacity, hits.median, hits.min, hits.max
            );
        }
    }
    println!();
    println!("sum of the medians: {sum:.2}");
}
