//! [`AnalyzerConfig`]: detection thresholds, bounds and strict mode.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// How the [`Analyzer`](crate::Analyzer) judges queries and how much memory it may use.
///
/// Every field is public; start from [`Default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use mltb_query_analyzer::AnalyzerConfig;
///
/// let mut config = AnalyzerConfig::default();
/// config.strict = cfg!(test);
/// config.n_plus_one.min_total_duration = Duration::ZERO; // SQLite in-process: queries are fast
/// config.n_plus_one.safelist.push("FROM schema_migrations".into());
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct AnalyzerConfig {
    /// Test-only mode, like Ruby's bullet: an N+1 finding makes `span_end` panic (unless
    /// the thread is already panicking) with a message naming it, and
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

/// When repeated queries in one span are an N+1.
///
/// The defaults follow Sentry's "N+1 Queries" performance-issue detector
/// (<https://docs.sentry.io/product/issues/issue-details/performance-issues/n-one-queries/>):
/// the repeating queries must number at least five and take more than 50 ms together,
/// and a different query (the *source*) must come before them.
#[derive(Debug, Clone)]
pub struct NPlusOneConfig {
    /// Executions of one fingerprint with distinct parameters that make an N+1 (default 5).
    pub min_repeats: usize,
    /// Total time of those executions below which nothing is reported (default 50 ms, as
    /// Sentry). An in-process SQLite answers in microseconds: lower it there.
    pub min_total_duration: Duration,
    /// Require a different query before the first repetition (default `true`, as Sentry).
    pub require_source: bool,
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
            safelist: Vec::new(),
        }
    }
}

/// The predicted hit ratio at or above which cache advice recommends caching a query:
/// 0.70. See the [crate docs](crate#design) for why.
pub const DEFAULT_MIN_HIT_RATIO: f64 = 0.70;

/// When a read query is worth caching.
#[derive(Debug, Clone)]
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

fn invalid(setting: &'static str, value: impl ToString, expected: &'static str) -> Error {
    Error::new(ErrorKind::Config { setting, value: value.to_string(), expected })
}

impl AnalyzerConfig {
    /// Checks every setting; the error names the first one out of range.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the setting, its value and what was expected.
    pub fn validate(&self) -> Result<()> {
        if self.n_plus_one.min_repeats < 2 {
            return Err(invalid("n_plus_one.min_repeats", self.n_plus_one.min_repeats, "at least 2"));
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
        self.n_plus_one.min_repeats = self.n_plus_one.min_repeats.max(2);
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
        c.advice.min_hit_ratio = f64::NAN;
        assert!(c.validate().unwrap_err().to_string().contains("advice.min_hit_ratio"));
        assert!(c.clamped().validate().is_ok());
    }
}
