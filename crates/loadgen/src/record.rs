//! Recording while a run goes on (sharded, so workers rarely share a lock), and turning
//! the histograms into [`Stats`] at the end.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::client::Outcome;
use crate::summary::{ErrorCounts, Percentiles, Second, Stats};

/// Histograms hold microseconds, from 1 µs to one hour, at 3 significant digits.
const HIGHEST_US: u64 = 3_600_000_000;

/// Quantiles drawn in the percentile plot (and kept in the JSON for it).
const PLOT_QUANTILES: [f64; 14] =
    [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 1.0];

pub(crate) fn histogram() -> Histogram<u64> {
    // Bounds are constants that satisfy new_with_bounds's rules (low >= 1, high >= 2 * low,
    // sigfig <= 5); this cannot fail.
    Histogram::new_with_bounds(1, HIGHEST_US, 3).unwrap_or_else(|_| unreachable!("constant bounds"))
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// One target's measurements.
#[derive(Debug, Clone)]
pub(crate) struct TargetRec {
    pub(crate) latency: Histogram<u64>,
    pub(crate) uncorrected: Histogram<u64>,
    pub(crate) ok: u64,
    pub(crate) errors: ErrorCounts,
}

impl TargetRec {
    pub(crate) fn new() -> Self {
        Self { latency: histogram(), uncorrected: histogram(), ok: 0, errors: ErrorCounts::default() }
    }

    pub(crate) fn add(&mut self, other: &Self) {
        let _ = self.latency.add(&other.latency);
        let _ = self.uncorrected.add(&other.uncorrected);
        self.ok += other.ok;
        self.errors.add(&other.errors);
    }
}

/// Per second: answered, failed, latency sum and max (µs).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bucket {
    ok: u64,
    errors: u64,
    sum_us: u64,
    max_us: u64,
}

/// One shard of a run's measurements.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    pub(crate) targets: Vec<TargetRec>,
    pub(crate) lag: Histogram<u64>,
    pub(crate) waited: u64,
    pub(crate) warmup: u64,
    pub(crate) sent: u64,
    pub(crate) timeline: Vec<Bucket>,
}

/// One finished request, as the worker saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) target: usize,
    pub(crate) outcome: Outcome,
    pub(crate) latency: Duration,
    pub(crate) uncorrected: Duration,
    /// Counted only when false.
    pub(crate) warmup: bool,
    /// When it completed, from the end of the warm-up.
    pub(crate) second: usize,
    /// Open loop: sent late because its worker was busy at the due time.
    pub(crate) waited: bool,
    /// Open loop: how late the generator woke to send it, when its worker was idle.
    pub(crate) lag: Option<Duration>,
}

impl Recorder {
    pub(crate) fn new(targets: usize) -> Self {
        Self {
            targets: (0..targets).map(|_| TargetRec::new()).collect(),
            lag: histogram(),
            waited: 0,
            warmup: 0,
            sent: 0,
            timeline: Vec::new(),
        }
    }

    pub(crate) fn record(&mut self, s: Sample) {
        self.sent += 1;
        self.waited += u64::from(s.waited);
        if let Some(lag) = s.lag {
            self.lag.saturating_record(micros(lag));
        }
        if s.warmup {
            self.warmup += 1;
            return;
        }
        if self.timeline.len() <= s.second {
            self.timeline.resize(s.second + 1, Bucket::default());
        }
        let bucket = &mut self.timeline[s.second];
        let t = &mut self.targets[s.target];
        match s.outcome {
            Outcome::Ok => {
                let us = micros(s.latency);
                t.latency.saturating_record(us);
                t.uncorrected.saturating_record(micros(s.uncorrected));
                t.ok += 1;
                bucket.ok += 1;
                bucket.sum_us += us;
                bucket.max_us = bucket.max_us.max(us);
            }
            failed => {
                bucket.errors += 1;
                match failed {
                    Outcome::Status(code) => *t.errors.status.entry(code).or_default() += 1,
                    Outcome::Timeout => t.errors.timeout += 1,
                    Outcome::Connect => t.errors.connect += 1,
                    Outcome::Io | Outcome::Ok => t.errors.io += 1,
                }
            }
        }
    }

    pub(crate) fn add(&mut self, other: &Self) {
        for (a, b) in self.targets.iter_mut().zip(&other.targets) {
            a.add(b);
        }
        let _ = self.lag.add(&other.lag);
        self.waited += other.waited;
        self.warmup += other.warmup;
        self.sent += other.sent;
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), Bucket::default());
        }
        for (a, b) in self.timeline.iter_mut().zip(&other.timeline) {
            a.ok += b.ok;
            a.errors += b.errors;
            a.sum_us += b.sum_us;
            a.max_us = a.max_us.max(b.max_us);
        }
    }

    /// Whole seconds of the measured window; answers to requests sent in it that came
    /// after its end are in the totals, not here, so the last point is not a cliff.
    pub(crate) fn timeline(&self, seconds: usize) -> Vec<Second> {
        (0..seconds)
            .map(|i| {
                let b = self.timeline.get(i).copied().unwrap_or_default();
                Second {
                    t: u32::try_from(i).unwrap_or(u32::MAX),
                    ok: b.ok,
                    errors: b.errors,
                    mean_ms: if b.ok == 0 { 0.0 } else { b.sum_us as f64 / b.ok as f64 / 1000.0 },
                    max_ms: b.max_us as f64 / 1000.0,
                }
            })
            .collect()
    }
}

/// HdrHistogram's expected-interval correction, after the fact: every recorded value
/// larger than `interval_us` also stands for the requests a user could not send while
/// waiting for it (`value - interval`, `value - 2·interval`, … down to `interval`).
pub(crate) fn corrected(raw: &Histogram<u64>, interval_us: u64) -> Histogram<u64> {
    let mut out = histogram();
    for v in raw.iter_recorded() {
        let _ = out.record_n_correct(v.value_iterated_to(), v.count_at_value(), interval_us.max(1));
    }
    out
}

pub(crate) fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p95: ms(h.value_at_quantile(0.95)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        mean: h.mean() / 1000.0,
    }
}

fn distribution(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    if h.is_empty() {
        return Vec::new();
    }
    PLOT_QUANTILES.iter().map(|&q| [q, h.value_at_quantile(q) as f64 / 1000.0]).collect()
}

/// The figures of `t`, whose latency histogram is already the corrected one.
pub(crate) fn stats(t: &TargetRec, seconds: f64) -> Stats {
    let requests = t.ok + t.errors.total();
    Stats {
        requests,
        ok: t.ok,
        error_rate: if requests == 0 { 0.0 } else { t.errors.total() as f64 / requests as f64 },
        throughput_rps: requests as f64 / seconds.max(1e-9),
        errors: t.errors.clone(),
        latency: percentiles(&t.latency),
        uncorrected: percentiles(&t.uncorrected),
        distribution: distribution(&t.latency),
        uncorrected_distribution: distribution(&t.uncorrected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_correction_fills_in_what_a_stalled_user_did_not_send() {
        let mut raw = histogram();
        for _ in 0..9_999 {
            raw.record(1_000).unwrap();
        }
        raw.record(1_000_000).unwrap(); // one 1 s answer among 1 ms ones
        assert!(raw.value_at_quantile(0.99) < 1_100);
        let c = corrected(&raw, 1_000);
        // 999 more samples, spread from 999 ms down to 1 ms: about 5% of all.
        assert_eq!(c.len(), 10_000 + 999);
        let p99 = c.value_at_quantile(0.99);
        assert!(p99 > 700_000, "corrected p99 {p99} µs");
    }

    #[test]
    fn errors_are_counted_by_kind_and_not_timed() {
        let mut r = Recorder::new(1);
        let s = |outcome| Sample {
            target: 0,
            outcome,
            latency: Duration::from_millis(1),
            uncorrected: Duration::from_millis(1),
            warmup: false,
            second: 0,
            waited: false,
            lag: None,
        };
        for o in [
            Outcome::Ok,
            Outcome::Status(503),
            Outcome::Status(503),
            Outcome::Timeout,
            Outcome::Connect,
            Outcome::Io,
        ] {
            r.record(s(o));
        }
        r.record(Sample { warmup: true, ..s(Outcome::Ok) });
        let st = stats(&r.targets[0], 1.0);
        assert_eq!((st.requests, st.ok, st.errors.total()), (6, 1, 5));
        assert_eq!(st.errors.status[&503], 2);
        assert_eq!(st.errors.describe(), "503×2, timeout×1, connect×1, io×1");
        assert_eq!(r.targets[0].latency.len(), 1);
        assert_eq!(r.warmup, 1);
    }
}
