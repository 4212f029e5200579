//! What a run measured: plain, serializable figures (the JSON report's shape).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Percentiles {
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The 99.9th percentile.
    pub p999: f64,
    /// The slowest.
    pub max: f64,
    /// The mean.
    pub mean: f64,
}

/// Failed requests by kind. A failed request has no latency in the histograms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorCounts {
    /// Answers of 400 or more, by status code.
    pub status: BTreeMap<u16, u64>,
    /// No whole answer within the timeout.
    pub timeout: u64,
    /// The connection could not be opened (refused, or not within the timeout).
    pub connect: u64,
    /// The connection broke during the exchange.
    pub io: u64,
}

impl ErrorCounts {
    /// All failed requests.
    pub fn total(&self) -> u64 {
        self.status.values().sum::<u64>() + self.timeout + self.connect + self.io
    }

    pub(crate) fn add(&mut self, other: &Self) {
        for (code, n) in &other.status {
            *self.status.entry(*code).or_default() += n;
        }
        self.timeout += other.timeout;
        self.connect += other.connect;
        self.io += other.io;
    }

    /// `"none"`, or e.g. `"503×12, timeout×3"`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.status.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        for (what, n) in [("timeout", self.timeout), ("connect", self.connect), ("io", self.io)] {
            if n > 0 {
                parts.push(format!("{what}×{n}"));
            }
        }
        if parts.is_empty() { "none".into() } else { parts.join(", ") }
    }
}

/// The figures of one target, or of all together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// Requests that completed (answered or failed) in the measured window.
    pub requests: u64,
    /// Of those, answered below 400.
    pub ok: u64,
    /// Failed requests over requests.
    pub error_rate: f64,
    /// Completed requests per second of the measured window.
    pub throughput_rps: f64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// The latency a user sees: open loop, from each request's intended send time (no
    /// coordinated omission); closed loop, corrected for it (HdrHistogram's
    /// expected-interval correction).
    pub latency: Percentiles,
    /// The latency without the correction: open loop, from the actual send (service
    /// time); closed loop, the raw response times.
    pub uncorrected: Percentiles,
    /// `[quantile, ms]` points of `latency`, for plots.
    pub distribution: Vec<[f64; 2]>,
    /// `[quantile, ms]` points of `uncorrected`.
    pub uncorrected_distribution: Vec<[f64; 2]>,
}

/// One target's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TargetStats {
    /// The target's name.
    pub name: String,
    /// Its method.
    pub method: String,
    /// Its URL.
    pub url: String,
    /// Its figures.
    #[serde(flatten)]
    pub stats: Stats,
}

/// One second of the measured window, by completion time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Second {
    /// Seconds since the end of the warm-up.
    pub t: u32,
    /// Requests answered below 400.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// The mean latency of the answered ones, in ms.
    pub mean_ms: f64,
    /// The slowest, in ms.
    pub max_ms: f64,
}

/// How well the generator kept to its plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Generator {
    /// Requests sent in all, warm-up included.
    pub sent: u64,
    /// Requests sent during the warm-up (not counted elsewhere).
    pub warmup_requests: u64,
    /// Open loop: requests the schedule held for the measured window.
    pub scheduled: u64,
    /// Requests sent per second in the measured window.
    pub achieved_rate: f64,
    /// Open loop: requests sent late because every connection was busy (the wait is in
    /// their latency, as a user would see it).
    pub waited_for_connection: u64,
    /// Open loop: how late the generator woke to send, when a connection was free
    /// (timer and scheduling delay; not counted in latency), p99 in ms.
    pub lag_p99_ms: f64,
    /// The same, the worst, in ms.
    pub lag_max_ms: f64,
    /// Requests still in flight when the run's hard deadline passed (dropped, uncounted).
    pub abandoned: u64,
    /// Open loop: requests due before the end that were never sent, every connection
    /// being busy until then (not in any figure).
    pub unsent: u64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// `"open"` or `"closed"`.
    pub mode: String,
    /// Open loop: the requested rate.
    pub rate: Option<f64>,
    /// Connections (open loop) or users (closed loop).
    pub concurrency: usize,
    /// `"HTTP/1.1"` or `"h2c"`.
    pub protocol: String,
    /// The measured window, in seconds.
    pub duration_s: f64,
    /// The warm-up, in seconds.
    pub warmup_s: f64,
    /// Closed loop: the interval the correction assumed, in ms (per target when not set).
    pub expected_interval_ms: Option<f64>,
    /// All targets together.
    pub overall: Stats,
    /// Each target.
    pub targets: Vec<TargetStats>,
    /// Per second of the measured window.
    pub timeline: Vec<Second>,
    /// How well the generator kept to the plan.
    pub generator: Generator,
    /// Things a reader must know before trusting the figures, e.g. that the generator
    /// could not keep the rate.
    pub warnings: Vec<String>,
}
