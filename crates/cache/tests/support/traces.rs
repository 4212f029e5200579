//! Trace replay shared by the trace test, the throughput bench and the `trace_replay`
//! example: decodes each trace of `../shared/traces` as its README describes and counts
//! hits per request with every key of unit size.
//!
//! Traces: ARC paper traces (N. Megiddo and D. S. Modha, "ARC: A Self-Tuning, Low Overhead
//! Replacement Cache", USENIX FAST 2003), LIRS paper traces, and cache2k traces
//! (© headissue GmbH, Jens Wilke, CC BY 4.0).
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

/// Where the traces are: `$MLTB_TRACES`, else `<workspace>/../shared/traces`.
pub(crate) fn traces_dir() -> PathBuf {
    match std::env::var_os("MLTB_TRACES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// zstd; lines `start nblocks ignore req#`, each `nblocks` requests.
    Arc,
    /// gzip; one integer a line; `*` and empty lines skipped.
    Lirs,
    /// xz; big-endian u32 keys back to back.
    Cache2k,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceFile {
    pub(crate) name: &'static str,
    pub(crate) path: &'static str,
    pub(crate) format: Format,
    pub(crate) requests: usize,
    pub(crate) unique: usize,
}

pub(crate) const TRACES: &[TraceFile] = &[
    TraceFile {
        name: "OLTP",
        path: "arc/OLTP.lis.zst",
        format: Format::Arc,
        requests: 914_145,
        unique: 186_880,
    },
    TraceFile {
        name: "P3",
        path: "arc/P3.lis.zst",
        format: Format::Arc,
        requests: 3_912_296,
        unique: 762_543,
    },
    TraceFile {
        name: "gli",
        path: "lirs/gli.trace.gz",
        format: Format::Lirs,
        requests: 6_015,
        unique: 2_529,
    },
    TraceFile {
        name: "loop",
        path: "lirs/loop.trace.gz",
        format: Format::Lirs,
        requests: 505_500,
        unique: 1_011,
    },
    TraceFile {
        name: "multi1",
        path: "lirs/multi1.trace.gz",
        format: Format::Lirs,
        requests: 15_858,
        unique: 2_606,
    },
    TraceFile {
        name: "sprite",
        path: "lirs/sprite.trace.gz",
        format: Format::Lirs,
        requests: 133_996,
        unique: 7_075,
    },
    TraceFile {
        name: "web07",
        path: "cache2k/web07.trace.xz",
        format: Format::Cache2k,
        requests: 76_118,
        unique: 20_484,
    },
];

/// One row of the README's reference table: hit ratios in percent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reference {
    pub(crate) trace: &'static str,
    pub(crate) capacity: usize,
    pub(crate) lru: f64,
    pub(crate) opt: f64,
    /// moka 0.12 and quick_cache 0.7 as the README measured them (`None` for P3).
    pub(crate) moka: Option<f64>,
    pub(crate) quick_cache: Option<f64>,
}

const fn r(trace: &'static str, capacity: usize, lru: f64, opt: f64, moka: f64, qc: f64) -> Reference {
    Reference { trace, capacity, lru, opt, moka: Some(moka), quick_cache: Some(qc) }
}

pub(crate) const REFERENCE: &[Reference] = &[
    r("OLTP", 256, 16.69, 38.72, 23.01, 19.12),
    r("OLTP", 1_000, 32.83, 53.61, 35.64, 35.15),
    r("OLTP", 2_000, 42.47, 60.40, 41.23, 44.93),
    r("OLTP", 8_000, 58.65, 71.55, 53.23, 59.15),
    Reference { trace: "P3", capacity: 10_000, lru: 1.73, opt: 13.05, moka: None, quick_cache: None },
    Reference { trace: "P3", capacity: 100_000, lru: 29.34, opt: 62.00, moka: None, quick_cache: None },
    r("gli", 500, 0.95, 34.26, 28.69, 31.74),
    r("gli", 1_000, 11.21, 53.13, 40.68, 48.93),
    r("gli", 2_000, 57.41, 57.96, 57.96, 57.96),
    r("loop", 512, 0.00, 50.54, 50.53, 48.96),
    r("loop", 1_024, 99.80, 99.80, 99.80, 99.80),
    r("multi1", 500, 46.51, 58.78, 54.89, 55.66),
    r("multi1", 1_000, 48.23, 71.40, 68.37, 67.92),
    r("sprite", 100, 21.58, 50.80, 34.93, 30.05),
    r("sprite", 200, 39.88, 68.86, 51.33, 48.00),
    r("sprite", 500, 78.30, 87.88, 74.91, 76.51),
    r("web07", 500, 45.58, 59.16, 47.74, 48.43),
    r("web07", 1_000, 50.41, 63.58, 52.05, 53.43),
    r("web07", 2_000, 55.50, 67.97, 55.86, 57.90),
];

pub(crate) fn trace_file(name: &str) -> Result<&'static TraceFile, String> {
    TRACES.iter().find(|t| t.name == name).ok_or_else(|| format!("no trace named {name}"))
}

/// Decodes a trace into its request keys. The error names the path it looked at.
pub(crate) fn load(trace: &TraceFile) -> Result<Vec<u64>, String> {
    let path = traces_dir().join(trace.path);
    let shown = path.display().to_string();
    let file = File::open(&path)
        .map_err(|e| format!("cannot open trace {shown}: {e} (set MLTB_TRACES to the traces directory)"))?;
    let bad = |e: &dyn std::fmt::Display| format!("cannot decode trace {shown}: {e}");
    let mut keys = Vec::with_capacity(trace.requests);
    match trace.format {
        Format::Arc => {
            let dec = ruzstd::decoding::StreamingDecoder::new(BufReader::new(file)).map_err(|e| bad(&e))?;
            for line in BufReader::new(dec).lines() {
                let line = line.map_err(|e| bad(&e))?;
                let mut f = line.split_ascii_whitespace();
                let (Some(start), Some(n)) = (f.next(), f.next()) else { continue };
                let start: u64 = start.parse().map_err(|e| bad(&e))?;
                let n: u64 = n.parse().map_err(|e| bad(&e))?;
                keys.extend(start..start + n);
            }
        }
        Format::Lirs => {
            let dec = flate2::read::MultiGzDecoder::new(BufReader::new(file));
            for line in BufReader::new(dec).lines() {
                let line = line.map_err(|e| bad(&e))?;
                let line = line.trim();
                if line.is_empty() || line == "*" {
                    continue;
                }
                keys.push(line.parse().map_err(|e| bad(&e))?);
            }
        }
        Format::Cache2k => {
            let mut raw = Vec::new();
            lzma_rs::xz_decompress(&mut BufReader::new(file), &mut raw).map_err(|e| bad(&e))?;
            keys.extend(raw.chunks_exact(4).map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))));
        }
    }
    if keys.len() != trace.requests {
        return Err(format!(
            "trace {shown} decoded to {} requests, the README says {}",
            keys.len(),
            trace.requests
        ));
    }
    Ok(keys)
}

/// Replays `keys`: `access(key)` returns whether it was a hit (and inserts on a miss).
/// Returns the hit ratio in percent.
pub(crate) fn replay(keys: &[u64], mut access: impl FnMut(u64) -> bool) -> f64 {
    let hits = keys.iter().filter(|&&k| access(k)).count();
    100.0 * hits as f64 / keys.len() as f64
}

/// Our cache as a unit-weight cache of `capacity` entries.
pub(crate) fn ours(capacity: usize, admission: mltb_cache::Admission) -> mltb_cache::MemoryCache<u64, ()> {
    mltb_cache::MemoryCache::builder_with_weigher(|_: &u64, _: &()| 1)
        .max_bytes(capacity)
        .shards(1)
        .admission(admission)
        .expected_entries(capacity)
        .build()
        .unwrap_or_else(|e| panic!("test configuration rejected: {e}"))
}

/// Hit ratio of our cache on `keys`.
pub(crate) fn replay_ours(keys: &[u64], capacity: usize, admission: mltb_cache::Admission) -> f64 {
    let cache = ours(capacity, admission);
    replay(keys, |k| {
        if cache.get(&k).is_some() {
            true
        } else {
            let _ = cache.insert(k, ());
            false
        }
    })
}
