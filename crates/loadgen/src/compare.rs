//! Repetitions and baselines: the median of each figure over several runs, and a
//! comparison that calls a change a regression only beyond both a relative and an
//! absolute threshold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::summary::{RunSummary, Stats};

/// The figures a comparison looks at, for one target or all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Figures {
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Failed over completed.
    pub error_rate: f64,
}

impl Figures {
    /// The figures of one run's `stats`.
    pub fn of(stats: &Stats) -> Self {
        Self {
            p50_ms: stats.latency.p50,
            p90_ms: stats.latency.p90,
            p95_ms: stats.latency.p95,
            p99_ms: stats.latency.p99,
            p999_ms: stats.latency.p999,
            max_ms: stats.latency.max,
            throughput_rps: stats.throughput_rps,
            error_rate: stats.error_rate,
        }
    }

    fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::P50 => self.p50_ms,
            Metric::P95 => self.p95_ms,
            Metric::P99 => self.p99_ms,
            Metric::Throughput => self.throughput_rps,
            Metric::ErrorRate => self.error_rate,
        }
    }
}

/// The median of each figure over repetitions, overall and per target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Medians {
    /// How many runs the medians are of.
    pub runs: usize,
    /// All targets together.
    pub overall: Figures,
    /// By target name.
    pub targets: BTreeMap<String, Figures>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn median_figures(all: &[Figures]) -> Figures {
    let m = |f: fn(&Figures) -> f64| median(all.iter().map(f).collect());
    Figures {
        p50_ms: m(|f| f.p50_ms),
        p90_ms: m(|f| f.p90_ms),
        p95_ms: m(|f| f.p95_ms),
        p99_ms: m(|f| f.p99_ms),
        p999_ms: m(|f| f.p999_ms),
        max_ms: m(|f| f.max_ms),
        throughput_rps: m(|f| f.throughput_rps),
        error_rate: m(|f| f.error_rate),
    }
}

impl Medians {
    /// The median of each figure over `runs` (each figure on its own).
    pub fn of(runs: &[RunSummary]) -> Self {
        let overall: Vec<Figures> = runs.iter().map(|r| Figures::of(&r.overall)).collect();
        let mut by_target: BTreeMap<String, Vec<Figures>> = BTreeMap::new();
        for r in runs {
            for t in &r.targets {
                by_target.entry(t.name.clone()).or_default().push(Figures::of(&t.stats));
            }
        }
        Self {
            runs: runs.len(),
            overall: median_figures(&overall),
            targets: by_target.into_iter().map(|(k, v)| (k, median_figures(&v))).collect(),
        }
    }
}

/// How much worse a figure must get to count as a regression: beyond the relative
/// threshold **and** the absolute one for its kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Thresholds {
    /// Relative change, e.g. `0.25` for 25%.
    pub relative: f64,
    /// Latency, in ms.
    pub latency_ms: f64,
    /// Throughput, in requests per second.
    pub throughput_rps: f64,
    /// Error rate, as a fraction (0.01 = one percentage point).
    pub error_rate: f64,
}

impl Default for Thresholds {
    /// 25% and 1 ms, 25% and 100 req/s, and one percentage point of errors: wide enough
    /// for a shared two-core machine, narrow enough to catch a real slowdown.
    fn default() -> Self {
        Self { relative: 0.25, latency_ms: 1.0, throughput_rps: 100.0, error_rate: 0.01 }
    }
}

/// A figure the comparison looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Metric {
    /// Median latency.
    P50,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// Requests per second (lower is worse).
    Throughput,
    /// Failed share.
    ErrorRate,
}

impl Metric {
    const ALL: [Metric; 5] = [Metric::P50, Metric::P95, Metric::P99, Metric::Throughput, Metric::ErrorRate];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::Throughput => "throughput",
            Metric::ErrorRate => "error rate",
        }
    }

    fn lower_is_worse(self) -> bool {
        matches!(self, Metric::Throughput)
    }

    fn absolute(self, t: &Thresholds) -> f64 {
        match self {
            Metric::P50 | Metric::P95 | Metric::P99 => t.latency_ms,
            Metric::Throughput => t.throughput_rps,
            Metric::ErrorRate => t.error_rate,
        }
    }

    /// `value` with its unit.
    pub fn format(self, value: f64) -> String {
        match self {
            Metric::P50 | Metric::P95 | Metric::P99 => format!("{value:.3} ms"),
            Metric::Throughput => format!("{value:.0} req/s"),
            Metric::ErrorRate => format!("{:.2}%", value * 100.0),
        }
    }
}

/// One figure, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delta {
    /// `"overall"` or a target's name.
    pub scope: String,
    /// The figure.
    pub metric: Metric,
    /// The baseline's median.
    pub baseline: f64,
    /// This run's median.
    pub current: f64,
    /// How much worse, in the figure's unit (negative: better).
    pub worse_by: f64,
    /// How much worse, relative to the baseline (negative: better; infinite from zero).
    pub worse_by_relative: f64,
    /// Worse beyond both thresholds.
    pub regressed: bool,
}

impl Delta {
    /// E.g. `tasks p99: 1.200 ms → 3.400 ms (+2.200 ms, 183% worse)`.
    pub fn describe(&self) -> String {
        let change = match self.metric {
            Metric::Throughput => format!("{:+.0} req/s", self.current - self.baseline),
            Metric::ErrorRate => format!("{:+.2} points", (self.current - self.baseline) * 100.0),
            _ => format!("{:+.3} ms", self.current - self.baseline),
        };
        let verdict = if self.worse_by <= 0.0 {
            "not worse".to_owned()
        } else if self.worse_by_relative.is_finite() {
            format!("{:.0}% worse", self.worse_by_relative * 100.0)
        } else {
            "worse, from zero".to_owned()
        };
        format!(
            "{} {}: {} → {} ({change}, {verdict})",
            self.scope,
            self.metric.name(),
            self.metric.format(self.baseline),
            self.metric.format(self.current)
        )
    }
}

/// A run's medians against a baseline's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comparison {
    /// The thresholds used.
    pub thresholds: Thresholds,
    /// Every figure compared, overall first.
    pub deltas: Vec<Delta>,
    /// Targets in one but not the other (not compared).
    pub unmatched: Vec<String>,
    /// Differences between the two plans that make the comparison doubtful.
    pub notes: Vec<String>,
}

impl Comparison {
    /// The figures that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &Delta> {
        self.deltas.iter().filter(|d| d.regressed)
    }

    /// Whether any figure regressed.
    pub fn regressed(&self) -> bool {
        self.regressions().next().is_some()
    }
}

/// Compares `current` with `baseline`: overall, and each target both have.
pub fn compare(baseline: &Medians, current: &Medians, thresholds: &Thresholds) -> Comparison {
    let mut deltas = Vec::new();
    let mut scopes = vec![("overall".to_owned(), baseline.overall, current.overall)];
    let mut unmatched = Vec::new();
    for (name, b) in &baseline.targets {
        match current.targets.get(name) {
            Some(c) => scopes.push((name.clone(), *b, *c)),
            None => unmatched.push(name.clone()),
        }
    }
    unmatched.extend(current.targets.keys().filter(|k| !baseline.targets.contains_key(*k)).cloned());
    for (scope, b, c) in scopes {
        for metric in Metric::ALL {
            let (before, now) = (b.get(metric), c.get(metric));
            let worse_by = if metric.lower_is_worse() { before - now } else { now - before };
            let worse_by_relative = if before.abs() > f64::EPSILON {
                worse_by / before.abs()
            } else if worse_by > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            let regressed = worse_by > metric.absolute(thresholds) && worse_by_relative > thresholds.relative;
            deltas.push(Delta {
                scope: scope.clone(),
                metric,
                baseline: before,
                current: now,
                worse_by,
                worse_by_relative,
                regressed,
            });
        }
    }
    Comparison { thresholds: *thresholds, deltas, unmatched, notes: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(p50: f64, p99: f64, rps: f64, errors: f64) -> Figures {
        Figures {
            p50_ms: p50,
            p90_ms: p50,
            p95_ms: p99,
            p99_ms: p99,
            p999_ms: p99,
            max_ms: p99,
            throughput_rps: rps,
            error_rate: errors,
        }
    }

    fn medians(f: Figures) -> Medians {
        Medians { runs: 3, overall: f, targets: [("health".to_owned(), f)].into() }
    }

    proptest::proptest! {
        /// Better is never a regression, and neither is a change inside either threshold.
        #[test]
        fn only_changes_beyond_both_thresholds_regress(
            p99 in 0.01f64..1000.0,
            factor in 0.0f64..4.0,
            rel in 0.0f64..1.0,
            abs in 0.0f64..50.0,
        ) {
            let t = Thresholds { relative: rel, latency_ms: abs, throughput_rps: 1e12, error_rate: 1.0 };
            let c = compare(&medians(figures(1.0, p99, 100.0, 0.0)), &medians(figures(1.0, p99 * factor, 100.0, 0.0)), &t);
            let worse = p99 * factor - p99;
            let expect = worse > abs && worse / p99 > rel;
            for d in c.deltas.iter().filter(|d| d.metric == Metric::P99) {
                proptest::prop_assert_eq!(d.regressed, expect, "{}", d.describe());
            }
            proptest::prop_assert!(c.deltas.iter().filter(|d| d.metric != Metric::P99 && d.metric != Metric::P95).all(|d| !d.regressed));
        }
    }

    #[test]
    fn medians_are_taken_figure_by_figure() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn noise_within_either_threshold_is_not_a_regression() {
        let t = Thresholds::default();
        let base = medians(figures(0.20, 0.80, 2000.0, 0.0));
        // +50% at p99 but only 0.4 ms: below the absolute threshold.
        let c = compare(&base, &medians(figures(0.25, 1.20, 1900.0, 0.001)), &t);
        assert!(!c.regressed(), "{:?}", c.regressions().collect::<Vec<_>>());
        // +1.5 ms but only 10% of a 15 ms p99: below the relative one.
        let base = medians(figures(5.0, 15.0, 2000.0, 0.0));
        let c = compare(&base, &medians(figures(5.2, 16.5, 2000.0, 0.0)), &t);
        assert!(!c.regressed());
    }

    #[test]
    fn a_real_regression_is_flagged_and_says_by_how_much() {
        let t = Thresholds::default();
        let base = medians(figures(0.5, 2.0, 2000.0, 0.0));
        let c = compare(&base, &medians(figures(0.5, 6.0, 1200.0, 0.05)), &t);
        let bad: Vec<String> = c.regressions().map(Delta::describe).collect();
        assert!(
            bad.iter().any(|d| d == "overall p99: 2.000 ms → 6.000 ms (+4.000 ms, 200% worse)"),
            "{bad:#?}"
        );
        assert!(
            bad.iter()
                .any(|d| d.starts_with("health throughput: 2000 req/s → 1200 req/s (-800 req/s, 40% worse)")),
            "{bad:#?}"
        );
        assert!(bad.iter().any(|d| d.contains("error rate") && d.contains("from zero")), "{bad:#?}");
        assert!(!bad.iter().any(|d| d.contains("p50")));
        // Better is never a regression.
        let c = compare(&medians(figures(0.5, 6.0, 1200.0, 0.05)), &base, &t);
        assert!(!c.regressed());
    }
}
