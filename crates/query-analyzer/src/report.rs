//! What the analyzer found: [`Report`], serialisable to JSON and printable as text.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::event::{SpanId, SpanKind};
use crate::fingerprint::Fingerprint;

fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn span_kind_str(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Request => "request",
        SpanKind::Task => "task",
        SpanKind::Command => "command",
        SpanKind::Other => "other",
    }
}

fn ser_span_kind<S: Serializer>(k: &SpanKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(span_kind_str(*k))
}

fn ser_span_id<S: Serializer>(id: &SpanId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(id.0)
}

/// The span a finding was made in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SpanInfo {
    /// Its id.
    #[serde(serialize_with = "ser_span_id")]
    pub id: SpanId,
    /// What kind of work it was.
    #[serde(serialize_with = "ser_span_kind")]
    pub kind: SpanKind,
    /// Its name (a command, a route).
    pub name: String,
    /// The span had not ended when the report was made: its queries so far were judged
    /// as if it ended then, and it is judged again when it does.
    pub open: bool,
}

impl fmt::Display for SpanInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}` (span {}", span_kind_str(self.kind), self.name, self.id.0)?;
        f.write_str(if self.open { ", still open)" } else { ")" })
    }
}

/// One query run again and again with different parameters inside one span, after a
/// source query: the shape of a loop that loads rows one at a time.
///
/// Findings with the same repeated query, source query, span kind and span name are
/// one finding; `span`, `count` and `duration` describe the latest span, the `total_`
/// fields and `occurrences` all of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NPlusOneFinding {
    /// The repeated query.
    pub fingerprint: Fingerprint,
    /// The query that ran just before the burst's first execution (what produced the N).
    pub source: Option<Fingerprint>,
    /// Executions in the reported burst of the latest span (its largest N+1 burst: a
    /// pause longer than [`max_gap`](crate::NPlusOneConfig::max_gap) ends a burst).
    pub count: u64,
    /// Their total time.
    #[serde(rename = "duration_us", serialize_with = "micros")]
    pub duration: Duration,
    /// The latest span it was found in.
    pub span: SpanInfo,
    /// How to batch it.
    pub suggestion: String,
    /// Spans it was found in.
    pub occurrences: u64,
    /// Executions over all those spans.
    pub total_count: u64,
    /// Time over all those spans.
    #[serde(rename = "total_duration_us", serialize_with = "micros")]
    pub total_duration: Duration,
}

impl fmt::Display for NPlusOneFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "N+1 in {}: `{}` ran {} times ({:?})",
            self.span, self.fingerprint.normalized, self.count, self.duration
        )?;
        if let Some(src) = &self.source {
            write!(f, " after `{}`", src.normalized)?;
        }
        write!(f, "; {}", self.suggestion)?;
        if self.occurrences > 1 {
            write!(
                f,
                " [seen in {} spans, {} runs, {:?}]",
                self.occurrences, self.total_count, self.total_duration
            )?;
        }
        Ok(())
    }
}

/// One query run again and again over *few* parameter sets inside one span (fewer
/// distinct ones than `min_repeats`): its results could be reused rather than fetched
/// again. With two or more distinct sets the same burst is an N+1 as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DuplicateFinding {
    /// The repeated query.
    pub fingerprint: Fingerprint,
    /// Executions in the reported burst of the latest span.
    pub count: u64,
    /// Distinct parameter sets among them (fewer than `min_repeats`).
    pub distinct_params: usize,
    /// Their total time.
    #[serde(rename = "duration_us", serialize_with = "micros")]
    pub duration: Duration,
    /// The latest span it was found in.
    pub span: SpanInfo,
    /// Spans it was found in.
    pub occurrences: u64,
}

impl fmt::Display for DuplicateFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "duplicate queries in {}: `{}` ran {} times with {} distinct parameter set(s) ({:?}); reuse the result",
            self.span, self.fingerprint.normalized, self.count, self.distinct_params, self.duration
        )?;
        if self.occurrences > 1 {
            write!(f, " [seen in {} spans]", self.occurrences)?;
        }
        Ok(())
    }
}

/// A read query worth caching, with the hit ratio a cache of the proposed size would have
/// had on the recent parameter stream (feature `advice`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CacheAdvice {
    /// The read query.
    pub fingerprint: Fingerprint,
    /// Its executions.
    pub reads: u64,
    /// Writes to the tables it reads, since the analyzer started.
    pub writes: u64,
    /// Distinct parameter sets in the replayed sample.
    pub distinct_keys: usize,
    /// Reads in the replayed sample.
    pub sample: usize,
    /// Proposed cache size in entries: the smallest tried whose hit ratio is within 0.02
    /// of the best one tried.
    pub capacity: usize,
    /// The hit ratio replaying the sample through `mltb-cache`'s W-TinyLFU cache of that
    /// capacity, every write to the tables clearing it.
    pub predicted_hit_ratio: f64,
}

impl fmt::Display for CacheAdvice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cache `{}`: {} reads, {} writes to its tables, {} distinct keys in a sample of {}; \
             a {}-entry cache would hit {:.1}%",
            self.fingerprint.normalized,
            self.reads,
            self.writes,
            self.distinct_keys,
            self.sample,
            self.capacity,
            self.predicted_hit_ratio * 100.0
        )
    }
}

/// Time spent per fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct QueryStats {
    /// The query.
    pub fingerprint: Fingerprint,
    /// Executions.
    pub count: u64,
    /// Total time.
    #[serde(rename = "total_duration_us", serialize_with = "micros")]
    pub total_duration: Duration,
    /// Rows returned or affected.
    pub rows: u64,
}

/// Cumulative counters, cheap to read for metrics ([`Analyzer::counters`](crate::Analyzer::counters)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Counters {
    /// Query events received.
    pub events: u64,
    /// Events without a span, or whose span was not open: counted, not judged for N+1.
    pub events_outside_spans: u64,
    /// Spans started.
    pub spans_started: u64,
    /// Spans ended by `span_end`.
    pub spans_ended: u64,
    /// Spans judged and dropped because `max_open_spans` was reached, or because their
    /// id was started again while open.
    pub spans_evicted: u64,
    /// Spans open now.
    pub open_spans: u64,
    /// Events not judged because their span already tracked `max_fingerprints_per_span`
    /// other fingerprints.
    pub span_overflow: u64,
    /// Distinct fingerprints tracked.
    pub fingerprints: u64,
    /// Events whose fingerprint could not be tracked (`max_fingerprints` reached).
    pub untracked: u64,
    /// N+1 findings, one per span in which one was found.
    pub n_plus_one: u64,
    /// Duplicate-query findings, one per span.
    pub duplicates: u64,
    /// Findings not kept in the report because `max_findings` distinct ones were kept.
    pub findings_dropped: u64,
}

/// Everything the analyzer found so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// Cumulative counters.
    pub counters: Counters,
    /// N+1 findings, most total time first.
    pub n_plus_one: Vec<NPlusOneFinding>,
    /// Duplicate-query findings, most total time first.
    pub duplicates: Vec<DuplicateFinding>,
    /// Cache recommendations, best predicted hit ratio first (empty without the
    /// `advice` feature).
    pub cache_advice: Vec<CacheAdvice>,
    /// The ten fingerprints with the most total time.
    pub top_queries: Vec<QueryStats>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        writeln!(
            f,
            "query analyzer: {} events, {} fingerprints, {} spans ({} open), {} N+1, {} duplicate",
            c.events, c.fingerprints, c.spans_started, c.open_spans, c.n_plus_one, c.duplicates
        )?;
        if c.spans_evicted + c.span_overflow + c.untracked + c.findings_dropped > 0 {
            writeln!(
                f,
                "bounds hit: {} spans evicted, {} events past the per-span cap, {} untracked events, {} findings dropped",
                c.spans_evicted, c.span_overflow, c.untracked, c.findings_dropped
            )?;
        }
        let sections: [(&str, Vec<String>); 4] = [
            ("N+1 queries", self.n_plus_one.iter().map(ToString::to_string).collect()),
            ("duplicate queries", self.duplicates.iter().map(ToString::to_string).collect()),
            ("cache advice", self.cache_advice.iter().map(ToString::to_string).collect()),
            (
                "top queries",
                self.top_queries
                    .iter()
                    .map(|q| {
                        format!("{:?} in {} runs: `{}`", q.total_duration, q.count, q.fingerprint.normalized)
                    })
                    .collect(),
            ),
        ];
        for (title, lines) in sections {
            if lines.is_empty() {
                continue;
            }
            writeln!(f, "{title}:")?;
            for l in lines {
                writeln!(f, "  - {l}")?;
            }
        }
        Ok(())
    }
}
