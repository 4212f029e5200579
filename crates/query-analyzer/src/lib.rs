//! SQL fingerprints, N+1 detection and cache advice with predicted hit ratios, fed by
//! the query events of whatever executes your SQL.
//!
//! An executor reports each query as a [`QueryEvent`] to a [`QuerySink`], grouped into
//! spans (a request, a task, a bot command). The [`Analyzer`] is the sink that
//! fingerprints every query, judges each span for N+1 loops when it ends, and keeps the
//! statistics behind [`Report`]: findings, cache advice, the costliest queries and
//! cumulative [`Counters`] for metrics.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mltb_query_analyzer::{Analyzer, AnalyzerConfig, QueryEvent, QuerySink, SpanId, SpanKind, params_digest};
//!
//! let analyzer = Analyzer::new(AnalyzerConfig::default());
//! let query = |sql, id: i64, span| QueryEvent {
//!     sql,
//!     params_digest: params_digest(&id),
//!     duration: Duration::from_millis(12),
//!     rows: 1,
//!     span: Some(span),
//!     ended_at: None, // the analyzer's clock, now
//! };
//!
//! // A command that loads ten tasks, then each task's owner one at a time.
//! let span = SpanId(1);
//! analyzer.span_start(span, SpanKind::Command, "status");
//! analyzer.record(&query("SELECT * FROM tasks WHERE chat_id = ?", 7, span));
//! for owner in 0..10 {
//!     analyzer.record(&query("SELECT * FROM users WHERE id = ?", owner, span));
//! }
//! analyzer.span_end(span);
//!
//! let report = analyzer.report();
//! let finding = &report.n_plus_one[0];
//! assert_eq!(&*finding.fingerprint.normalized, "SELECT * FROM users WHERE id = ?");
//! assert_eq!(finding.count, 10);
//! assert_eq!(&*finding.source.as_ref().unwrap().normalized, "SELECT * FROM tasks WHERE chat_id = ?");
//! assert!(finding.suggestion.contains("WHERE id IN (...)"));
//! assert_eq!(report.counters.n_plus_one, 1);
//! assert!(report.to_string().contains("N+1 in command `status`")); // also `serde::Serialize`
//! assert!(analyzer.check().unwrap_err().is_findings());
//! ```
//!
//! With `strict: true` (for tests, like Ruby's bullet) the same `span_end` panics with a
//! message naming the finding.
//!
//! # Features
//!
//! - `advice` (default): [`Report::cache_advice`], recommendations for read queries
//!   that repeat with few writes to their tables, each with a hit ratio predicted by
//!   replaying the query's recent parameter stream through `mltb-cache`'s W-TinyLFU
//!   cache. Without it the crate depends on `parking_lot`, `serde` and `thiserror` only.
//!
//! # Design
//!
//! - **Fingerprints.** [`fingerprint`] is a hand-written single-pass tokenizer for the
//!   SQLite and PostgreSQL dialects followed by a normaliser: string, number, blob,
//!   dollar-quoted and boolean literals and every placeholder style (`?`, `?1`, `$1`,
//!   `:name`, `@name`, `$name`, `%s`, `%(name)s`) become `?`; a unary sign folds into its number;
//!   `IN (…)` lists of values become `IN (...)`; in a `VALUES` list a row equal to the one
//!   before it is dropped, so one-row and many-row inserts match; comments go; keywords
//!   are upper-cased and unquoted identifiers lower-cased (both dialects fold them),
//!   while quoted identifiers keep their case and quotes; spacing is decided by the
//!   token sequence alone; `!=` is written `<>`; a trailing `;` goes. `NULL` stays, as
//!   `IS NULL` is structure, not a value. The id is FNV-1a over the normalised text, so
//!   it is stable across processes and versions. Unterminated quotes and comments run to
//!   the end of the text, unknown characters are kept as one-character tokens: every
//!   input gets a fingerprint and nothing panics (a fuzz target and property tests hold
//!   this, and that normalising normalised text changes nothing). The same pass finds
//!   the statement kind and the tables after `FROM`, `JOIN`, `USING` (read) and `INTO`,
//!   `UPDATE`, `DELETE FROM`, `TRUNCATE` (written), schema prefixes dropped.
//! - **Hot path.** The analyzer caches fingerprints by SQL text (executors send the same
//!   text again and again) behind a `parking_lot` read lock with a fast word-at-a-time
//!   hash; a query then costs a map lookup, a per-fingerprint lock for its statistics
//!   and a per-span-shard lock for its span. Spans live in up to 16 shards by id. No
//!   allocation per event except the first query of a fingerprint in a span.
//! - **N+1.** Within a span, queries are aggregated per fingerprint, so repetitions need
//!   not be consecutive: an ORM loop that alternates two lookups per row is two
//!   findings. The executions of one fingerprint form *bursts*: one that starts more
//!   than [`NPlusOneConfig::max_gap`] (1 s) after the previous one ended starts a new
//!   burst, and each burst is judged alone, so a worker polling every few seconds in a
//!   long-lived span is not one long loop, while a tight loop inside one of its rounds
//!   still is. The time a query ended is the event's own
//!   ([`QueryEvent::ended_at`]: events that reach the analyzer late, or a recording),
//!   else the analyzer's clock when it records the event ([`Analyzer::with_clock`]). A burst is a *candidate* when it has at least
//!   [`NPlusOneConfig::min_repeats`] (5) executions with at least two distinct parameter
//!   sets, its statement is not a page ([`Fingerprint::paging`]: `LIMIT … OFFSET`, or
//!   keyset `WHERE id > $1 ORDER BY id LIMIT n`) and at most half of its executions are
//!   batches ([`NPlusOneConfig::min_batch_len`]: an `IN`/`ARRAY` list of 10 values or a
//!   `VALUES` list of 10 rows; SQLAlchemy's `selectinload` sends 500 ids a chunk, while
//!   a loop of `IN (?)` lists of one id is an N+1). In [strict
//!   mode](AnalyzerConfig::strict) a candidate is an N+1: count and distinct parameters
//!   alone, because tests run against databases that answer in microseconds. In the
//!   default mode a candidate must also pass Sentry's rule
//!   (<https://docs.sentry.io/product/issues/issue-details/performance-issues/n-one-queries/>):
//!   at least [`NPlusOneConfig::min_total_duration`] (50 ms) together, after a different
//!   *source* query ([`NPlusOneConfig::require_source`]); or it must run at least
//!   [`NPlusOneConfig::min_repeats_alone`] (20) times, whatever its duration and source.
//!   A burst with fewer than `min_repeats` distinct parameter sets is (also) a
//!   [`DuplicateFinding`]: a lazy load of 40 rows over 3 ids is an N+1 *and*
//!   duplicates; the same parameters 7 times is duplicates only. The parameters of a
//!   query are its `params_digest` mixed with a hash of the literal values inlined in
//!   its text, so a loop that inlines its values (`WHERE id = 17`, `WHERE id = 18`, …)
//!   has distinct parameters too, while comments (sqlcommenter's per-request
//!   `traceparent`), whitespace and case change nothing. Findings are grouped by
//!   repeated query, source query and span kind and name, so one loop in every request
//!   is one line with a count of occurrences. A [`safelist`](NPlusOneConfig::safelist)
//!   silences known ones. The detector is measured on a corpus labelled by pattern
//!   (`tests/corpus.rs`; figures in the README).
//! - **Bounds.** Per span, per fingerprint: a count, a duration and at most
//!   `min_repeats` digests for the burst under way and for the worst one that ended. At most [`max_fingerprints_per_span`](AnalyzerConfig::max_fingerprints_per_span)
//!   fingerprints per span (more are counted, not judged), at most
//!   [`max_open_spans`](AnalyzerConfig::max_open_spans) open spans (the oldest is judged
//!   and dropped to make room, and counted), at most
//!   [`max_fingerprints`](AnalyzerConfig::max_fingerprints) fingerprints with statistics,
//!   at most [`max_findings`](AnalyzerConfig::max_findings) distinct findings kept. Each
//!   bound hit has a counter in [`Counters`].
//! - **Strict mode.** [`AnalyzerConfig::strict`] judges by count and distinct parameters
//!   alone (above), turns an N+1 finding into a panic at `span_end` (never while the
//!   thread is already panicking), and makes [`Analyzer::check`] return every finding as
//!   an error. A test-only mode: production code reads [`Analyzer::report`] instead.
//! - **Cache advice.** For each `SELECT` naming tables, the analyzer keeps its most
//!   recent parameter digests ([`AdviceConfig::sample_size`]) and, when a write to one of
//!   its tables happened since its last execution, an invalidation marker. A report
//!   replays that stream through `mltb-cache`'s `MemoryCache` with
//!   `Admission::TinyLfu`, one shard and an entry-count weigher — the policy the bot's
//!   caches use — at 1/16, 1/8, 1/4, 1/2 and all of the distinct keys, and proposes the
//!   smallest size within 0.02 of the best hit ratio. An invalidation clears the
//!   replayed cache: table-level invalidation, as query caches that cannot tell which
//!   rows a write touched must do, so the prediction is a lower bound for a cache
//!   invalidated key by key. Advice needs [`AdviceConfig::min_reads`] executions, at
//!   most [`AdviceConfig::max_write_ratio`] writes per read, and a predicted hit ratio of
//!   at least [`AdviceConfig::min_hit_ratio`].
//! - **Why a 70 % hit ratio.** A cache is recommended when its predicted hit ratio `h`
//!   is at least [`DEFAULT_MIN_HIT_RATIO`] (0.70; configurable through
//!   [`AdviceConfig::min_hit_ratio`]). With a lookup costing `t_cache` and the query
//!   `t_db`, the expected read latency is
//!   `h·t_cache + (1−h)·(t_cache + t_db) = t_cache + (1−h)·t_db`: every read pays the
//!   lookup, and only hits skip the query, so the mean saving is `h·t_db − t_cache`. In
//!   front of a database `t_cache ≪ t_db` (an in-process lookup against a round trip or
//!   a page read), so on mean latency alone almost any `h` would pay; that is not the
//!   whole cost. Each miss also pays an insert, each write to the query's tables an
//!   invalidation (and, across instances, a notification), each entry memory, and a
//!   cached value may be read stale until its invalidation lands. Below 50 % a cache
//!   adds a lookup and memory to most reads while saving a minority, and the median
//!   read is still a database read. The threshold asks for a clear majority instead: at
//!   70 % each miss's extra work is carried by more than two hits (0.70 / 0.30 ≈ 2.3),
//!   the median read is a cache hit, and the margin covers the prediction's own error —
//!   it replays a sample of at most [`AdviceConfig::sample_size`] recent reads, and
//!   tomorrow's key distribution may be flatter than today's. Where a database read is
//!   slow and memory cheap, lower it; each recommendation carries its predicted ratio.

#[cfg(feature = "advice")]
mod advice;
mod analyzer;
mod config;
mod error;
mod event;
mod fingerprint;
mod hash;
mod report;
mod sample;

pub use analyzer::Analyzer;
pub use config::{AdviceConfig, AnalyzerConfig, DEFAULT_MIN_HIT_RATIO, NPlusOneConfig};
pub use error::{Error, ErrorKind, Result};
pub use event::{NoopSink, QueryEvent, QuerySink, SpanId, SpanKind, params_digest};
pub use fingerprint::{Fingerprint, Paging, StatementKind, fingerprint};
pub use report::{CacheAdvice, Counters, DuplicateFinding, NPlusOneFinding, QueryStats, Report, SpanInfo};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The crate's modules depend on each other one way: no module reaches, directly or
/// through others, back into itself.
#[cfg(test)]
mod layering {
    use std::collections::{BTreeMap, BTreeSet};

    /// Each top-level module with the text of its files (its unit tests are left out).
    const MODULES: &[(&str, &[&str])] = &[
        ("advice", &[include_str!("advice.rs")]),
        (
            "analyzer",
            &[
                include_str!("analyzer/mod.rs"),
                include_str!("analyzer/findings.rs"),
                include_str!("analyzer/registry.rs"),
                include_str!("analyzer/span.rs"),
            ],
        ),
        ("config", &[include_str!("config.rs")]),
        ("error", &[include_str!("error.rs")]),
        ("event", &[include_str!("event.rs")]),
        (
            "fingerprint",
            &[
                include_str!("fingerprint/mod.rs"),
                include_str!("fingerprint/lexer.rs"),
                include_str!("fingerprint/normalize.rs"),
            ],
        ),
        ("hash", &[include_str!("hash.rs")]),
        ("report", &[include_str!("report.rs")]),
        ("sample", &[include_str!("sample.rs")]),
    ];

    /// The modules `text` names as `crate::<module>` in code (comments skipped).
    fn uses(text: &str) -> BTreeSet<&str> {
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
        let mut out = BTreeSet::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(rest.len());
                if end > 0 && rest[end..].starts_with([':', ';', ',', '}']) {
                    out.insert(&rest[..end]);
                }
            }
        }
        out
    }

    #[test]
    fn module_dependencies_have_no_cycle() {
        let graph: BTreeMap<&str, BTreeSet<&str>> = MODULES
            .iter()
            .map(|(name, files)| {
                let mut deps: BTreeSet<&str> = files.iter().flat_map(|f| uses(f)).collect();
                deps.remove(name);
                deps.retain(|d| MODULES.iter().any(|(m, _)| m == d));
                (*name, deps)
            })
            .collect();
        assert!(graph["analyzer"].contains("advice"), "the analyzer feeds the advisor: {graph:?}");
        // Depth-first search from every module for a path back to it.
        for start in graph.keys() {
            let mut stack: Vec<Vec<&str>> = vec![vec![start]];
            while let Some(path) = stack.pop() {
                for next in &graph[path[path.len() - 1]] {
                    assert!(next != start, "import cycle: {} -> {next}", path.join(" -> "));
                    if !path.contains(next) {
                        let mut longer = path.clone();
                        longer.push(next);
                        stack.push(longer);
                    }
                }
            }
        }
    }
}

/// Configs and reports are `#[non_exhaustive]`: outside the crate a struct expression
/// does not compile (error E0639), so that settings and fields can be added without
/// breaking callers. Each block below must fail to compile (each is valid code
/// without the attribute; stable rustdoc does not check the error code).
///
/// ```compile_fail,E0639
/// let _ = mltb_query_analyzer::AnalyzerConfig { strict: true, ..Default::default() };
/// ```
///
/// ```compile_fail,E0639
/// let _ = mltb_query_analyzer::NPlusOneConfig { min_repeats: 3, ..Default::default() };
/// ```
///
/// ```compile_fail,E0639
/// let _ = mltb_query_analyzer::AdviceConfig { min_reads: 3, ..Default::default() };
/// ```
///
/// ```compile_fail,E0639
/// let _ = mltb_query_analyzer::Counters { events: 1, ..Default::default() };
/// ```
///
/// ```compile_fail,E0639
/// use mltb_query_analyzer::Report;
/// fn f(r: Report) -> Report { Report { n_plus_one: Vec::new(), ..r } }
/// ```
///
/// ```compile_fail,E0639
/// use mltb_query_analyzer::NPlusOneFinding;
/// fn f(x: NPlusOneFinding) -> NPlusOneFinding { NPlusOneFinding { count: 0, ..x } }
/// ```
///
/// ```compile_fail,E0639
/// use mltb_query_analyzer::DuplicateFinding;
/// fn f(x: DuplicateFinding) -> DuplicateFinding { DuplicateFinding { count: 0, ..x } }
/// ```
///
/// ```compile_fail,E0639
/// use mltb_query_analyzer::CacheAdvice;
/// fn f(x: CacheAdvice) -> CacheAdvice { CacheAdvice { reads: 0, ..x } }
/// ```
///
/// ```compile_fail,E0639
/// use mltb_query_analyzer::QueryStats;
/// fn f(x: QueryStats) -> QueryStats { QueryStats { count: 0, ..x } }
/// ```
///
/// ```compile_fail,E0639
/// use mltb_query_analyzer::SpanInfo;
/// fn f(x: SpanInfo) -> SpanInfo { SpanInfo { open: false, ..x } }
/// ```
///
/// ```compile_fail,E0639
/// use mltb_query_analyzer::Fingerprint;
/// fn f(x: Fingerprint) -> Fingerprint { Fingerprint { id: 0, ..x } }
/// ```
#[cfg(doctest)]
struct NonExhaustive;
