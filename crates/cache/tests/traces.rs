//! Replays the real traces in `../shared/traces`: plain LRU (one shard) must reproduce the
//! README's reference LRU figures to the hundredth, and W-TinyLFU admission must do at
//! least as well as LRU on the rows where it does today (it does not on zigzag, backf,
//! corda and scarab at 50,000: the example `trace_replay` reports every row).

#[path = "support/traces.rs"]
mod traces;

use mltb_cache::Admission;
use traces::{REFERENCE, load, replay_ours, trace_file};

fn keys_of(name: &str) -> Vec<u64> {
    let file = trace_file(name).unwrap_or_else(|e| panic!("{e}"));
    load(file).unwrap_or_else(|e| panic!("{e}"))
}

/// Rounded to the hundredth as the README prints it.
fn hundredths(pct: f64) -> i64 {
    (pct * 100.0).round() as i64
}

fn check_lru(name: &str) {
    let keys = keys_of(name);
    for r in REFERENCE.iter().filter(|r| r.trace == name) {
        let got = replay_ours(&keys, r.capacity, Admission::Lru);
        assert_eq!(
            hundredths(got),
            hundredths(r.lru),
            "{name} at {}: LRU hit ratio {got:.4}% but the reference is {:.2}%",
            r.capacity,
            r.lru
        );
    }
}

#[test]
fn lru_reproduces_reference_oltp() {
    check_lru("OLTP");
}

#[test]
fn lru_reproduces_reference_lirs_and_cache2k() {
    for name in ["gli", "loop", "multi1", "sprite", "web07"] {
        check_lru(name);
    }
}

#[test]
fn lru_reproduces_reference_on_the_breadth_traces() {
    // P2 (12.7 M requests) is replayed by the example only, as P3 is.
    for name in ["cpp", "zigzag", "scan", "backf", "corda", "scarab"] {
        check_lru(name);
    }
}

#[test]
fn every_trace_decodes_to_its_published_size() {
    for t in traces::TRACES.iter().filter(|t| !matches!(t.name, "P2" | "P3" | "OLTP")) {
        let keys = load(t).unwrap_or_else(|e| panic!("{e}"));
        if let Some(unique) = t.unique {
            let distinct: std::collections::HashSet<_> = keys.iter().collect();
            assert_eq!(distinct.len(), unique, "{}: distinct keys", t.name);
        }
    }
}

#[test]
fn p3_decodes_to_its_published_size() {
    // The P3 replay itself (3.9 M requests at 100,000 entries) runs in the example and
    // the bench; decoding proves the file and the format here.
    let keys = keys_of("P3");
    let unique: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), 762_543);
}

/// W-TinyLFU against LRU on every trace and capacity of the README table (but P3, which
/// the example replays): at least LRU's hit ratio everywhere, sprite at 500 included — a
/// recency-friendly trace where the other admission policies measured lose to LRU (moka
/// 74.91%, quick_cache 76.51%). The sketch's and the shadow LRU's hash has fixed keys, so
/// these figures are the same every run.
fn check_admission(name: &str) -> Vec<(usize, f64)> {
    let keys = keys_of(name);
    let mut out = Vec::new();
    for r in REFERENCE.iter().filter(|r| r.trace == name) {
        let got = replay_ours(&keys, r.capacity, Admission::TinyLfu);
        if let Some(opt) = r.opt {
            assert!(got <= opt + 0.005, "{name} at {}: {got:.2}% is above OPT", r.capacity);
        }
        assert!(
            hundredths(got) >= hundredths(r.lru),
            "{name} at {}: W-TinyLFU {got:.2}% is below LRU's {:.2}%",
            r.capacity,
            r.lru
        );
        out.push((r.capacity, got));
    }
    out
}

#[test]
fn admission_beats_lru_and_moka_published_on_oltp() {
    let got = check_admission("OLTP");
    // moka's README reports 37.93% at 1,000 and 42.89% at 2,000 on OLTP.
    for (capacity, moka) in [(1_000, 37.93), (2_000, 42.89)] {
        let ours = got.iter().find(|g| g.0 == capacity).map_or(0.0, |g| g.1);
        assert!(ours >= moka, "OLTP at {capacity}: {ours:.2}% < moka's published {moka}%");
    }
}

#[test]
fn admission_at_least_lru_on_lirs_and_cache2k() {
    for name in ["gli", "loop", "multi1", "sprite", "web07"] {
        check_admission(name);
    }
}
