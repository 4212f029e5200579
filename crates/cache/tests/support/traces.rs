//! Trace replay shared by the trace test, the throughput bench and the `trace_replay`
//! example: decodes each trace of `../shared/traces` as its README describes and counts
//! hits per request with every key of unit size.
//!
//! Traces: ARC paper traces (N. Megiddo and D. S. Modha, "ARC: A Self-Tuning, Low Overhead
//! Replacement Cache", USENIX FAST 2003), LIRS paper traces, cache2k traces
//! (© headissue GmbH, Jens Wilke, CC BY 4.0), and the Corda and Scarab traces of the
//! Caffeine simulator.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
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
    /// gzip; big-endian signed 64-bit keys back to back (Corda).
    GzI64,
    /// xz; big-endian signed 64-bit keys back to back (Scarab).
    XzI64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceFile {
    pub(crate) name: &'static str,
    pub(crate) path: &'static str,
    pub(crate) format: Format,
    pub(crate) requests: usize,
    /// Distinct keys, where the README gives them.
    pub(crate) unique: Option<usize>,
}

pub(crate) const TRACES: &[TraceFile] = &[
    TraceFile {
        name: "OLTP",
        path: "arc/OLTP.lis.zst",
        format: Format::Arc,
        requests: 914_145,
        unique: Some(186_880),
    },
    TraceFile {
        name: "P3",
        path: "arc/P3.lis.zst",
        format: Format::Arc,
        requests: 3_912_296,
        unique: Some(762_543),
    },
    TraceFile {
        name: "gli",
        path: "lirs/gli.trace.gz",
        format: Format::Lirs,
        requests: 6_015,
        unique: Some(2_529),
    },
    TraceFile {
        name: "loop",
        path: "lirs/loop.trace.gz",
        format: Format::Lirs,
        requests: 505_500,
        unique: Some(1_011),
    },
    TraceFile {
        name: "multi1",
        path: "lirs/multi1.trace.gz",
        format: Format::Lirs,
        requests: 15_858,
        unique: Some(2_606),
    },
    TraceFile {
        name: "sprite",
        path: "lirs/sprite.trace.gz",
        format: Format::Lirs,
        requests: 133_996,
        unique: Some(7_075),
    },
    TraceFile {
        name: "web07",
        path: "cache2k/web07.trace.xz",
        format: Format::Cache2k,
        requests: 76_118,
        unique: Some(20_484),
    },
    TraceFile { name: "P2", path: "arc/P2.lis.zst", format: Format::Arc, requests: 12_729_495, unique: None },
    TraceFile {
        name: "cpp",
        path: "lirs/cpp.trace.gz",
        format: Format::Lirs,
        requests: 9_047,
        unique: Some(1_223),
    },
    TraceFile {
        name: "zigzag",
        path: "lirs/zigzag.trace.gz",
        format: Format::Lirs,
        requests: 52_001,
        unique: Some(2_001),
    },
    TraceFile {
        name: "scan",
        path: "lirs/scan.trace.gz",
        format: Format::Lirs,
        requests: 50_025,
        unique: Some(2_001),
    },
    TraceFile {
        name: "backf",
        path: "lirs/backf.trace.gz",
        format: Format::Lirs,
        requests: 9_000,
        unique: Some(751),
    },
    TraceFile {
        name: "corda",
        path: "corda/trace_vaultservice.gz",
        format: Format::GzI64,
        requests: 135_702,
        unique: Some(90_468),
    },
    TraceFile {
        name: "scarab",
        path: "scarab/scarab-recs.trace.xz",
        format: Format::XzI64,
        requests: 1_245_184,
        unique: Some(258_368),
    },
];

/// One row of the README's reference table: hit ratios in percent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reference {
    pub(crate) trace: &'static str,
    pub(crate) capacity: usize,
    /// Exact LRU.
    pub(crate) lru: f64,
    /// Bélády's optimum, where the README gives it.
    pub(crate) opt: Option<f64>,
}

const fn r(trace: &'static str, capacity: usize, lru: f64, opt: f64) -> Reference {
    Reference { trace, capacity, lru, opt: Some(opt) }
}

const fn lru_only(trace: &'static str, capacity: usize, lru: f64) -> Reference {
    Reference { trace, capacity, lru, opt: None }
}

pub(crate) const REFERENCE: &[Reference] = &[
    r("OLTP", 256, 16.69, 38.72),
    r("OLTP", 1_000, 32.83, 53.61),
    r("OLTP", 2_000, 42.47, 60.40),
    r("OLTP", 8_000, 58.65, 71.55),
    r("P3", 10_000, 1.73, 13.05),
    r("P3", 100_000, 29.34, 62.00),
    r("gli", 500, 0.95, 34.26),
    r("gli", 1_000, 11.21, 53.13),
    r("gli", 2_000, 57.41, 57.96),
    r("loop", 512, 0.00, 50.54),
    r("loop", 1_024, 99.80, 99.80),
    r("multi1", 500, 46.51, 58.78),
    r("multi1", 1_000, 48.23, 71.40),
    r("sprite", 100, 21.58, 50.80),
    r("sprite", 200, 39.88, 68.86),
    r("sprite", 500, 78.30, 87.88),
    r("web07", 500, 45.58, 59.16),
    r("web07", 1_000, 50.41, 63.58),
    r("web07", 2_000, 55.50, 67.97),
    lru_only("P2", 10_000, 5.65),
    lru_only("P2", 100_000, 43.31),
    lru_only("cpp", 100, 69.71),
    lru_only("cpp", 250, 83.00),
    lru_only("zigzag", 1_000, 48.03),
    lru_only("zigzag", 1_500, 72.07),
    lru_only("scan", 1_000, 0.00),
    lru_only("scan", 1_500, 0.00),
    lru_only("backf", 100, 12.22),
    lru_only("backf", 250, 30.56),
    lru_only("corda", 5_000, 33.33),
    lru_only("corda", 20_000, 33.33),
    lru_only("scarab", 10_000, 48.65),
    lru_only("scarab", 50_000, 69.15),
];

/// One row of `docs/benchmarks.md`'s hit-ratio table, as `trace_replay` measured it
/// (2026-12-03): our W-TinyLFU (deterministic: the sketch's hash has fixed keys) and the
/// best anchor of the row — the best of the lru crate, moka's best median of 5 runs under
/// each of three maintenance schedules, and quick_cache's unsync cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) trace: &'static str,
    pub(crate) capacity: usize,
    pub(crate) tiny_lfu: f64,
    pub(crate) best_anchor: f64,
}

const fn m(trace: &'static str, capacity: usize, tiny_lfu: f64, best_anchor: f64) -> Measured {
    Measured { trace, capacity, tiny_lfu, best_anchor }
}

pub(crate) const MEASURED: &[Measured] = &[
    m("OLTP", 256, 25.78, 23.08),
    m("OLTP", 1_000, 41.25, 35.77),
    m("OLTP", 2_000, 46.94, 44.93),
    m("OLTP", 8_000, 60.67, 59.15),
    m("P3", 10_000, 6.42, 4.39),
    m("P3", 100_000, 38.31, 40.05),
    m("gli", 500, 33.30, 31.74),
    m("gli", 1_000, 49.76, 48.93),
    m("gli", 2_000, 57.96, 57.96),
    m("loop", 512, 50.43, 50.53),
    m("loop", 1_024, 99.80, 99.80),
    m("multi1", 500, 54.36, 55.66),
    m("multi1", 1_000, 68.34, 68.43),
    m("sprite", 100, 30.76, 34.88),
    m("sprite", 200, 48.89, 51.37),
    m("sprite", 500, 78.82, 78.30),
    m("web07", 500, 49.18, 48.43),
    m("web07", 1_000, 53.24, 53.43),
    m("web07", 2_000, 57.20, 57.90),
    m("P2", 10_000, 14.27, 10.68),
    m("P2", 100_000, 54.89, 54.77),
    m("cpp", 100, 76.17, 78.15),
    m("cpp", 250, 84.38, 84.78),
    m("zigzag", 1_000, 46.90, 48.03),
    m("zigzag", 1_500, 70.79, 72.07),
    m("scan", 1_000, 46.99, 47.87),
    m("scan", 1_500, 70.80, 71.43),
    m("backf", 100, 11.39, 12.22),
    m("backf", 250, 27.94, 30.56),
    m("corda", 5_000, 33.31, 33.33),
    m("corda", 20_000, 33.33, 33.33),
    m("scarab", 10_000, 52.56, 52.21),
    m("scarab", 50_000, 67.58, 69.15),
];

/// The target of every row: W-TinyLFU at least the best anchor minus half a point.
pub(crate) const TARGET_PP: f64 = 0.5;

pub(crate) fn measured(trace: &str, capacity: usize) -> Option<&'static Measured> {
    MEASURED.iter().find(|m| m.trace == trace && m.capacity == capacity)
}

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
        Format::GzI64 | Format::XzI64 => {
            let mut raw = Vec::new();
            if trace.format == Format::GzI64 {
                flate2::read::MultiGzDecoder::new(BufReader::new(file))
                    .read_to_end(&mut raw)
                    .map_err(|e| bad(&e))?;
            } else {
                lzma_rs::xz_decompress(&mut BufReader::new(file), &mut raw).map_err(|e| bad(&e))?;
            }
            if raw.len() % 8 != 0 {
                return Err(bad(&format!("{} bytes is not a whole number of 8-byte keys", raw.len())));
            }
            // The keys are signed; any one-to-one mapping to u64 keeps the hit ratio.
            keys.extend(
                raw.chunks_exact(8)
                    .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
            );
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
    ours_seeded(capacity, admission, None)
}

/// [`ours`] with the sketch seed `seed` (`None`: the default).
pub(crate) fn ours_seeded(
    capacity: usize,
    admission: mltb_cache::Admission,
    seed: Option<u64>,
) -> mltb_cache::MemoryCache<u64, ()> {
    ours_builder(capacity, admission, seed)
        .build()
        .unwrap_or_else(|e| panic!("test configuration rejected: {e}"))
}

/// The builder [`ours_seeded`] builds, for a setting more.
pub(crate) fn ours_builder(
    capacity: usize,
    admission: mltb_cache::Admission,
    seed: Option<u64>,
) -> mltb_cache::MemoryCacheBuilder<u64, ()> {
    let b = mltb_cache::MemoryCache::builder_with_weigher(|_: &u64, _: &()| 1)
        .max_bytes(capacity)
        .shards(1)
        .admission(admission)
        .expected_entries(capacity);
    match seed {
        Some(seed) => b.sketch_seed(seed),
        None => b,
    }
}

/// `n` sketch seeds: the default first (`None`), then splitmix64's outputs from 0, so
/// that every run replays the same ones.
#[allow(dead_code, reason = "the example uses it, the tests do not")]
pub(crate) fn sketch_seeds(n: usize) -> Vec<Option<u64>> {
    let mut x = 0_u64;
    let mut next = move || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    std::iter::once(None).chain(std::iter::repeat_with(|| Some(next()))).take(n).collect()
}

/// Hit ratio of our cache on `keys`.
pub(crate) fn replay_ours(keys: &[u64], capacity: usize, admission: mltb_cache::Admission) -> f64 {
    replay_ours_seeded(keys, capacity, admission, None)
}

/// [`replay_ours`] with the sketch seed `seed` (`None`: the default).
pub(crate) fn replay_ours_seeded(
    keys: &[u64],
    capacity: usize,
    admission: mltb_cache::Admission,
    seed: Option<u64>,
) -> f64 {
    replay_cache(keys, &ours_seeded(capacity, admission, seed))
}

/// Hit ratio of `cache` on `keys`, each miss inserted.
pub(crate) fn replay_cache(keys: &[u64], cache: &mltb_cache::MemoryCache<u64, ()>) -> f64 {
    replay(keys, |k| {
        if cache.get(&k).is_some() {
            true
        } else {
            let _ = cache.insert(k, ());
            false
        }
    })
}

/// Median, min and max of several runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    pub(crate) fn of(mut runs: Vec<f64>) -> Self {
        runs.sort_by(f64::total_cmp);
        let n = runs.len();
        let median = if n % 2 == 1 { runs[n / 2] } else { (runs[n / 2 - 1] + runs[n / 2]) / 2.0 };
        Self { median, min: runs[0], max: runs[n - 1] }
    }

    /// The median, and the range where the runs differ.
    pub(crate) fn cell(&self) -> String {
        if (self.max - self.min) < 0.005 {
            format!("{:.2}%", self.median)
        } else {
            format!("{:.2}% ({:.2}–{:.2})", self.median, self.min, self.max)
        }
    }
}
