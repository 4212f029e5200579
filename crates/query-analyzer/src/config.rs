//! [`AnalyzerConfig`]: detection thresholds, bounds and strict mode.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// How the [`Analyzer`](crate::Analyzer) judges queries and how much memory it may use.
///
/// Start from [`new`](Self::new) (the defaults) and change what you need with the
/// setters, or assign the public fields of a default one. The struct is
/// `#[non_exhaustive]`: settings may be added, so it cannot be built field by field.
///
/// ```
/// use std::time::Duration;
/// use mltb_query_analyzer::{AnalyzerConfig, NPlusOneConfig};
///
/// let config = AnalyzerConfig::new()
///     .strict(cfg!(test))
///     .max_open_spans(1_000)
///     .n_plus_one(
///         NPlusOneConfig::new()
///             .min_total_duration(Duration::ZERO) // SQLite in-process: queries are fast
///             .safelist(["FROM schema_migrations"]),
///     );
/// assert!(config.validate().is_ok());
///
/// let mut same = AnalyzerConfig::default();
/// same.strict = cfg!(test);
/// same.max_open_spans = 1_000;
/// same.n_plus_one.min_total_duration = Duration::ZERO;
/// same.n_plus_one.safelist.push("FROM schema_migrations".into());
/// assert_eq!(format!("{same:?}"), format!("{config:?}"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AnalyzerConfig {
    /// Test-only mode, like Ruby's bullet. Loops are judged by count and distinct
    /// parameters alone: at least [`min_repeats`](NPlusOneConfig::min_repeats)
    /// executions with at least two parameter sets are an N+1 however fast they ran and
    /// whether or not a source query came first, because tests run against a local
    /// database that answers in microseconds. Paging, chunked batches and polling are
    /// still told apart. An N+1 finding makes `span_end` panic (unless the thread is
    /// already panicking) with a message naming it, and
    /// [`Analyzer::check`](crate::Analyzer::check) returns every finding as an error.
    /// Never turn it on in production: a panic on the query path takes the caller down.
    pub strict: bool,
    /// N+1 detection thresholds.
    pub n_plus_one: NPlusOneConfig,
    /// Cache advice thresholds (used with the `advice` feature).
    pub advice: AdviceConfig,
    /// Spans open at once that are tracked (default 10 000). When a new span would pass
    /// it, the oldest open span is judged as if it had ended and dropped (counted in
    /// [`Counters::spans_evicted`](crate::Counters::spans_evicted)), so a caller that
    /// forgets `span_end` cannot grow memory without bound.
    pub max_open_spans: usize,
    /// Distinct fingerprints tracked within one span (default 256). Queries of further
    /// fingerprints in that span are counted in
    /// [`Counters::span_overflow`](crate::Counters::span_overflow) and not judged.
    pub max_fingerprints_per_span: usize,
    /// Distinct fingerprints with statistics (default 10 000); the SQL-text cache holds
    /// up to four times as many texts. Beyond, a query is fingerprinted on every call
    /// and counted in [`Counters::untracked`](crate::Counters::untracked), but still
    /// judged for N+1.
    pub max_fingerprints: usize,
    /// Distinct findings kept for the report (default 1 000). Findings are grouped by
    /// (repeated query, source query, span kind and name); further groups are counted
    /// in [`Counters::findings_dropped`](crate::Counters::findings_dropped).
    pub max_findings: usize,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self {
            strict: false,
            n_plus_one: NPlusOneConfig::default(),
            advice: AdviceConfig::default(),
            max_open_spans: 10_000,
            max_fingerprints_per_span: 256,
            max_fingerprints: 10_000,
            max_findings: 1_000,
        }
    }
}

impl AnalyzerConfig {
    /// The defaults (as [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`strict`](Self::strict).
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Sets [`n_plus_one`](Self::n_plus_one).
    #[must_use]
    pub fn n_plus_one(mut self, n_plus_one: NPlusOneConfig) -> Self {
        self.n_plus_one = n_plus_one;
        self
    }

    /// Sets [`advice`](Self::advice).
    #[must_use]
    pub fn advice(mut self, advice: AdviceConfig) -> Self {
        self.advice = advice;
        self
    }

    /// Sets [`max_open_spans`](Self::max_open_spans).
    #[must_use]
    pub fn max_open_spans(mut self, n: usize) -> Self {
        self.max_open_spans = n;
        self
    }

    /// Sets [`max_fingerprints_per_span`](Self::max_fingerprints_per_span).
    #[must_use]
    pub fn max_fingerprints_per_span(mut self, n: usize) -> Self {
        self.max_fingerprints_per_span = n;
        self
    }

    /// Sets [`max_fingerprints`](Self::max_fingerprints).
    #[must_use]
    pub fn max_fingerprints(mut self, n: usize) -> Self {
        self.max_fingerprints = n;
        self
    }

    /// Sets [`max_findings`](Self::max_findings).
    #[must_use]
    pub fn max_findings(mut self, n: usize) -> Self {
        self.max_findings = n;
        self
    }
}

/// When repeated queries in one span are an N+1.
///
/// Executions of one query in a span form *bursts*: an execution that starts more than
/// [`max_gap`](Self::max_gap) after the previous one ended starts a new burst, so a
/// long-lived span that polls is not one long loop. Each burst is judged on its own. A
/// burst is an N+1 candidate when it has at least [`min_repeats`](Self::min_repeats)
/// executions with at least two distinct parameter sets, the statement is not a page
/// ([`Fingerprint::paging`](crate::Fingerprint::paging)) and at most half of the
/// executions are batches ([`min_batch_len`](Self::min_batch_len)).
///
/// In [strict mode](AnalyzerConfig::strict) every candidate is an N+1. Otherwise a
/// candidate must also pass Sentry's "N+1 Queries" rule
/// (<https://docs.sentry.io/product/issues/issue-details/performance-issues/n-one-queries/>),
/// more than 50 ms together after a different (*source*) query, or run at least
/// [`min_repeats_alone`](Self::min_repeats_alone) times: the duration rule keeps
/// production reports free of cheap noise, and the count rule still catches fast loops
/// that run long.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NPlusOneConfig {
    /// Executions of one fingerprint with distinct parameters that make an N+1 (default 5).
    pub min_repeats: usize,
    /// Total time of those executions below which nothing is reported (default 50 ms, as
    /// Sentry). An in-process SQLite answers in microseconds: lower it there.
    pub min_total_duration: Duration,
    /// Require a different query before the first repetition (default `true`, as Sentry).
    /// Not applied in strict mode nor past [`min_repeats_alone`](Self::min_repeats_alone).
    pub require_source: bool,
    /// Executions of one fingerprint in a burst past which it is an N+1 (default mode)
    /// whatever its duration and source (default 20, at least `min_repeats`). Loops over
    /// a page of rows run 10 to 100 times; fast ones shorter than this are left to
    /// strict mode in tests.
    pub min_repeats_alone: usize,
    /// Idle time between two executions of one fingerprint that ends a burst (default
    /// 1 s): the start of one minus the end of the previous, as the analyzer's clock saw
    /// them. A loop does its per-row work between executions, in milliseconds; a poller
    /// waits seconds or minutes.
    pub max_gap: Duration,
    /// Values in an `IN (...)` or `ARRAY[...]` list, or rows in a `VALUES` list, from
    /// which an execution is a batch (default 10). A burst whose executions are mostly
    /// batches is a chunked load (SQLAlchemy's `selectinload` sends 500 ids a query,
    /// Django's `bulk_create(batch_size=…)` and Rails' `in_batches` chunk too), not an
    /// N+1; a loop of `IN (?)` lists of one id is still one.
    pub min_batch_len: usize,
    /// Never report these: each entry matches a fingerprint whose normalised text equals
    /// it, whose hex id equals it, or whose SQL text or normalised text contains it.
    pub safelist: Vec<String>,
}

impl Default for NPlusOneConfig {
    fn default() -> Self {
        Self {
            min_repeats: 5,
            min_total_duration: Duration::from_millis(50),
            require_source: true,
            min_repeats_alone: 20,
            max_gap: Duration::from_secs(1),
            min_batch_len: 10,
            safelist: Vec::new(),
        }
    }
}

impl NPlusOneConfig {
    /// Sentry's defaults (as [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`min_repeats`](Self::min_repeats).
    #[must_use]
    pub fn min_repeats(mut self, n: usize) -> Self {
        self.min_repeats = n;
        self
    }

    /// Sets [`min_total_duration`](Self::min_total_duration).
    #[must_use]
    pub fn min_total_duration(mut self, d: Duration) -> Self {
        self.min_total_duration = d;
        self
    }

    /// Sets [`require_source`](Self::require_source).
    #[must_use]
    pub fn require_source(mut self, require: bool) -> Self {
        self.require_source = require;
        self
    }

    /// Sets [`min_repeats_alone`](Self::min_repeats_alone).
    #[must_use]
    pub fn min_repeats_alone(mut self, n: usize) -> Self {
        self.min_repeats_alone = n;
        self
    }

    /// Sets [`max_gap`](Self::max_gap).
    #[must_use]
    pub fn max_gap(mut self, gap: Duration) -> Self {
        self.max_gap = gap;
        self
    }

    /// Sets [`min_batch_len`](Self::min_batch_len).
    #[must_use]
    pub fn min_batch_len(mut self, n: usize) -> Self {
        self.min_batch_len = n;
        self
    }

    /// Adds entries to the [`safelist`](Self::safelist).
    #[must_use]
    pub fn safelist(mut self, entries: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.safelist.extend(entries.into_iter().map(Into::into));
        self
    }
}

/// The predicted hit ratio at or above which cache advice recommends caching a query:
/// 0.70. See the [crate docs](crate#design) for why.
pub const DEFAULT_MIN_HIT_RATIO: f64 = 0.70;

/// When a read query is worth caching.
///
/// ```
/// use mltb_query_analyzer::{AdviceConfig, AnalyzerConfig};
///
/// let config = AnalyzerConfig::new().advice(AdviceConfig::new().min_reads(20).min_hit_ratio(0.8));
/// assert_eq!(config.advice.min_hit_ratio, 0.8);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdviceConfig {
    /// Executions before a fingerprint is considered (default 100).
    pub min_reads: u64,
    /// Most writes to its tables per read (default 0.1).
    pub max_write_ratio: f64,
    /// Least predicted hit ratio worth recommending (default
    /// [`DEFAULT_MIN_HIT_RATIO`], 0.70: a cache is recommended at a predicted hit ratio
    /// of 70 % or more). Below it a cache adds a lookup, an insert and memory to too many
    /// reads for what it saves; the [crate docs](crate#design) give the reasoning. Lower
    /// it where a database read is slow and memory is cheap.
    pub min_hit_ratio: f64,
    /// Parameter digests kept per read fingerprint for the replay (default 1 024, the
    /// most recent ones; 8 bytes each, allocated as they arrive).
    pub sample_size: usize,
    /// Largest cache (in entries) the advisor proposes (default 100 000).
    pub max_capacity: usize,
}

impl Default for AdviceConfig {
    fn default() -> Self {
        Self {
            min_reads: 100,
            max_write_ratio: 0.1,
            min_hit_ratio: DEFAULT_MIN_HIT_RATIO,
            sample_size: 1024,
            max_capacity: 100_000,
        }
    }
}

impl AdviceConfig {
    /// The defaults (as [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`min_reads`](Self::min_reads).
    #[must_use]
    pub fn min_reads(mut self, n: u64) -> Self {
        self.min_reads = n;
        self
    }

    /// Sets [`max_write_ratio`](Self::max_write_ratio).
    #[must_use]
    pub fn max_write_ratio(mut self, ratio: f64) -> Self {
        self.max_write_ratio = ratio;
        self
    }

    /// Sets [`min_hit_ratio`](Self::min_hit_ratio).
    #[must_use]
    pub fn min_hit_ratio(mut self, ratio: f64) -> Self {
        self.min_hit_ratio = ratio;
        self
    }

    /// Sets [`sample_size`](Self::sample_size).
    #[must_use]
    pub fn sample_size(mut self, n: usize) -> Self {
        self.sample_size = n;
        self
    }

    /// Sets [`max_capacity`](Self::max_capacity).
    #[must_use]
    pub fn max_capacity(mut self, n: usize) -> Self {
        self.max_capacity = n;
        self
    }
}

fn invalid(setting: &'static str, value: impl ToString, expected: &'static str) -> Error {
    Error::new(ErrorKind::Config { setting, value: value.to_string(), expected })
}

impl AnalyzerConfig {
    /// Checks every setting; the error names the first one out of range.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the setting, its value and what was expected.
    pub fn validate(&self) -> Result<()> {
        let n = &self.n_plus_one;
        if n.min_repeats < 2 {
            return Err(invalid("n_plus_one.min_repeats", n.min_repeats, "at least 2"));
        }
        if n.min_repeats_alone < n.min_repeats {
            return Err(invalid(
                "n_plus_one.min_repeats_alone",
                n.min_repeats_alone,
                "at least n_plus_one.min_repeats",
            ));
        }
        if n.max_gap.is_zero() {
            return Err(invalid("n_plus_one.max_gap", "0s", "more than zero"));
        }
        if n.min_batch_len < 2 {
            return Err(invalid("n_plus_one.min_batch_len", n.min_batch_len, "at least 2"));
        }
        if self.max_open_spans == 0 {
            return Err(invalid("max_open_spans", 0, "at least 1"));
        }
        if self.max_fingerprints_per_span == 0 {
            return Err(invalid("max_fingerprints_per_span", 0, "at least 1"));
        }
        if self.max_fingerprints == 0 {
            return Err(invalid("max_fingerprints", 0, "at least 1"));
        }
        if self.max_findings == 0 {
            return Err(invalid("max_findings", 0, "at least 1"));
        }
        let a = &self.advice;
        if !(0.0..=1.0).contains(&a.min_hit_ratio) {
            return Err(invalid("advice.min_hit_ratio", a.min_hit_ratio, "a ratio from 0.0 to 1.0"));
        }
        if a.max_write_ratio.is_nan() || a.max_write_ratio < 0.0 {
            return Err(invalid("advice.max_write_ratio", a.max_write_ratio, "a ratio of 0.0 or more"));
        }
        if a.sample_size == 0 {
            return Err(invalid("advice.sample_size", 0, "at least 1"));
        }
        if a.max_capacity == 0 {
            return Err(invalid("advice.max_capacity", 0, "at least 1"));
        }
        Ok(())
    }

    /// The nearest valid configuration: each setting out of range is moved to its bound
    /// (what [`Analyzer::new`](crate::Analyzer::new) uses).
    pub(crate) fn clamped(mut self) -> Self {
        let n = &mut self.n_plus_one;
        n.min_repeats = n.min_repeats.max(2);
        n.min_repeats_alone = n.min_repeats_alone.max(n.min_repeats);
        if n.max_gap.is_zero() {
            n.max_gap = Duration::from_nanos(1);
        }
        n.min_batch_len = n.min_batch_len.max(2);
        self.max_open_spans = self.max_open_spans.max(1);
        self.max_fingerprints_per_span = self.max_fingerprints_per_span.max(1);
        self.max_fingerprints = self.max_fingerprints.max(1);
        self.max_findings = self.max_findings.max(1);
        let a = &mut self.advice;
        a.min_hit_ratio =
            if a.min_hit_ratio.is_nan() { DEFAULT_MIN_HIT_RATIO } else { a.min_hit_ratio.clamp(0.0, 1.0) };
        a.max_write_ratio = if a.max_write_ratio.is_nan() { 0.1 } else { a.max_write_ratio.max(0.0) };
        a.sample_size = a.sample_size.max(1);
        a.max_capacity = a.max_capacity.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_sentry_and_validate() {
        let c = AnalyzerConfig::default();
        assert_eq!(c.n_plus_one.min_repeats, 5);
        assert_eq!(c.n_plus_one.min_total_duration, Duration::from_millis(50));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn out_of_range_settings_are_named_and_clamped() {
        let mut c = AnalyzerConfig::default();
        c.n_plus_one.min_repeats = 1;
        let err = c.validate().unwrap_err();
        assert!(err.is_config());
        assert_eq!(
            err.to_string(),
            "invalid analyzer setting `n_plus_one.min_repeats` = 1: expected at least 2"
        );
        assert_eq!(c.clone().clamped().n_plus_one.min_repeats, 2);
        c.n_plus_one.min_repeats = 5;
        c.n_plus_one.min_repeats_alone = 4;
        assert!(c.validate().unwrap_err().to_string().contains("n_plus_one.min_repeats_alone"));
        assert_eq!(c.clone().clamped().n_plus_one.min_repeats_alone, 5);
        c.n_plus_one.min_repeats_alone = 20;
        c.n_plus_one.max_gap = Duration::ZERO;
        assert!(c.validate().unwrap_err().to_string().contains("n_plus_one.max_gap"));
        assert!(c.clone().clamped().validate().is_ok());
        c.n_plus_one.max_gap = Duration::from_secs(1);
        c.n_plus_one.min_batch_len = 1;
        assert!(c.validate().unwrap_err().to_string().contains("n_plus_one.min_batch_len"));
        assert!(c.clone().clamped().validate().is_ok());
        c.n_plus_one.min_batch_len = 10;
        c.n_plus_one.min_repeats = 5;
        c.advice.min_hit_ratio = f64::NAN;
        assert!(c.validate().unwrap_err().to_string().contains("advice.min_hit_ratio"));
        assert!(c.clamped().validate().is_ok());
    }
}
