//! [`Analyzer`]: the [`QuerySink`] that fingerprints queries, judges spans for N+1
//! patterns and collects what cache advice needs.

mod findings;
mod registry;
mod span;

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::AnalyzerConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{QueryEvent, QuerySink, SpanId, SpanKind};
use crate::hash::FastMap;
use crate::report::{Counters, QueryStats, Report};

use findings::Findings;
use registry::Registry;
use span::{Execution, Rules, SpanState, Verdict};

const MAX_SHARDS: usize = 16;

/// Fingerprints every query, judges each span for N+1 and duplicate queries when it
/// ends, and gathers per-fingerprint statistics for cache advice.
///
/// `Send + Sync`; share it behind an `Arc` (an `Arc<Analyzer>` is a [`QuerySink`] too).
/// See the [crate docs](crate) for an example.
pub struct Analyzer {
    config: AnalyzerConfig,
    rules: Rules,
    clock: Box<dyn Fn() -> Duration + Send + Sync>,
    registry: Registry,
    shards: Box<[Mutex<SpanShard>]>,
    per_shard: usize,
    findings: Mutex<Findings>,
    seq: AtomicU64,
    c: AtomicCounters,
}

#[derive(Debug, Default)]
struct AtomicCounters {
    events: AtomicU64,
    outside: AtomicU64,
    spans_started: AtomicU64,
    spans_ended: AtomicU64,
    spans_evicted: AtomicU64,
    open_spans: AtomicU64,
    span_overflow: AtomicU64,
    untracked: AtomicU64,
}

#[derive(Debug, Default)]
struct SpanShard {
    open: FastMap<SpanId, SpanState>,
    /// Spans in start order, for evicting the oldest; entries of ended spans are skipped
    /// and pruned.
    order: VecDeque<(SpanId, u64)>,
}

impl fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Analyzer")
            .field("config", &self.config)
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new(AnalyzerConfig::default())
    }
}

impl Analyzer {
    /// An analyzer with `config`; settings out of range are moved to their nearest bound
    /// (use [`try_new`](Self::try_new) to be told instead).
    pub fn new(config: AnalyzerConfig) -> Self {
        let origin = Instant::now();
        Self::with_clock(config, move || origin.elapsed())
    }

    /// An analyzer with `config` whose clock is `now`: the time since any fixed origin,
    /// never decreasing (a test's fake clock, a clock shared with a replay, or
    /// `mltb_clock`'s `move || clock.now()`). The analyzer reads it once per query in a
    /// span, as the time the query ended, to tell tight loops from polling (see
    /// [`NPlusOneConfig::max_gap`](crate::NPlusOneConfig::max_gap)), unless the event
    /// carries that time itself ([`QueryEvent::ended_at`](crate::QueryEvent::ended_at)).
    /// [`new`](Self::new) uses [`Instant`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::time::Duration;
    /// use mltb_query_analyzer::{Analyzer, AnalyzerConfig};
    ///
    /// let millis = Arc::new(AtomicU64::new(0));
    /// let now = Arc::clone(&millis);
    /// let analyzer = Analyzer::with_clock(AnalyzerConfig::new(), move || {
    ///     Duration::from_millis(now.load(Ordering::Relaxed))
    /// });
    /// millis.fetch_add(60_000, Ordering::Relaxed); // a minute passes, no sleep
    /// # let _ = analyzer;
    /// ```
    pub fn with_clock(config: AnalyzerConfig, now: impl Fn() -> Duration + Send + Sync + 'static) -> Self {
        let config = config.clamped();
        let shards = MAX_SHARDS.min(config.max_open_spans);
        let per_shard = config.max_open_spans / shards;
        Self {
            rules: Rules::new(config.strict, &config.n_plus_one, config.max_fingerprints_per_span),
            clock: Box::new(now),
            registry: Registry::new(&config),
            shards: (0..shards).map(|_| Mutex::new(SpanShard::default())).collect(),
            per_shard,
            findings: Mutex::new(Findings::new(config.max_findings)),
            seq: AtomicU64::new(0),
            c: AtomicCounters::default(),
            config,
        }
    }

    /// An analyzer with `config`, or an error naming the first setting out of range.
    ///
    /// # Errors
    /// [`ErrorKind::Config`].
    pub fn try_new(config: AnalyzerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::new(config))
    }

    /// The configuration in use (after clamping).
    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    #[inline]
    fn shard(&self, span: SpanId) -> &Mutex<SpanShard> {
        // Ids are often sequential: mix before picking a shard.
        let h = span.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
        &self.shards[(h % self.shards.len() as u64) as usize]
    }

    /// The cumulative counters, for metrics. Cheap: atomic loads and one short lock.
    pub fn counters(&self) -> Counters {
        let c = &self.c;
        let f = self.findings.lock().counts();
        Counters {
            events: c.events.load(Ordering::Relaxed),
            events_outside_spans: c.outside.load(Ordering::Relaxed),
            spans_started: c.spans_started.load(Ordering::Relaxed),
            spans_ended: c.spans_ended.load(Ordering::Relaxed),
            spans_evicted: c.spans_evicted.load(Ordering::Relaxed),
            open_spans: c.open_spans.load(Ordering::Relaxed),
            span_overflow: c.span_overflow.load(Ordering::Relaxed),
            fingerprints: self.registry.len() as u64,
            untracked: c.untracked.load(Ordering::Relaxed),
            n_plus_one: f.n_plus_one,
            duplicates: f.duplicates,
            findings_dropped: f.dropped,
        }
    }

    /// Everything found so far: counters, N+1 and duplicate findings, cache advice (with
    /// the `advice` feature; this replays samples, so call it when a report is wanted,
    /// not per query) and the queries with the most total time.
    pub fn report(&self) -> Report {
        let entries = self.registry.entries();
        let mut top: Vec<QueryStats> = entries
            .iter()
            .map(|e| {
                let s = e.stats.lock();
                QueryStats {
                    fingerprint: e.fp.clone(),
                    count: s.count,
                    total_duration: s.total,
                    rows: s.rows,
                }
            })
            .filter(|q| q.count > 0)
            .collect();
        top.sort_by(|a, b| b.total_duration.cmp(&a.total_duration).then(b.count.cmp(&a.count)));
        top.truncate(10);
        #[cfg(feature = "advice")]
        let cache_advice = crate::advice::advise(
            entries.iter().filter(|e| !e.read_tables.is_empty()).map(|e| {
                let (reads, sample) = {
                    let s = e.stats.lock();
                    (s.count, s.sample.iter().copied().collect())
                };
                crate::advice::Candidate { fingerprint: &e.fp, reads, writes: e.writes_to_tables(), sample }
            }),
            &self.config.advice,
        );
        #[cfg(not(feature = "advice"))]
        let cache_advice = Vec::new();
        let (n_plus_one, duplicates) = self.findings_with_open_spans().snapshot();
        Report { counters: self.counters(), n_plus_one, duplicates, cache_advice, top_queries: top }
    }

    /// The findings of ended spans, with those of spans still open judged as if they
    /// ended now (marked [`SpanInfo::open`](crate::SpanInfo::open)): a long-lived span —
    /// a worker's loop, a status updater — would otherwise never be reported. The open
    /// spans' findings are not kept; each span is judged for good when it ends.
    fn findings_with_open_spans(&self) -> Findings {
        let mut verdicts = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            verdicts.extend(shard.open.iter().map(|(id, st)| st.judge(*id, &self.rules, true)));
        }
        let mut findings = self.findings.lock().clone();
        for Verdict { n_plus_one, duplicates } in verdicts {
            n_plus_one.into_iter().for_each(|f| findings.add_n_plus_one(f));
            duplicates.into_iter().for_each(|d| findings.add_duplicate(d));
        }
        findings
    }

    /// `Ok` while no N+1 has been found; otherwise an error listing every finding so far,
    /// in spans still open too (the strict-mode check to call at the end of a test).
    ///
    /// # Errors
    /// [`ErrorKind::Findings`] with one line per finding.
    pub fn check(&self) -> Result<()> {
        let (n_plus_one, _) = self.findings_with_open_spans().snapshot();
        if n_plus_one.is_empty() {
            return Ok(());
        }
        let summary = n_plus_one.iter().map(|f| format!("  - {f}")).collect::<Vec<_>>().join("\n");
        Err(Error::new(ErrorKind::Findings { count: n_plus_one.len(), summary }))
    }

    /// Forgets every finding (counters stay cumulative).
    pub fn clear_findings(&self) {
        self.findings.lock().clear();
    }

    /// Judges an ended or evicted span and keeps its findings; returns the N+1 ones'
    /// text for strict mode.
    fn conclude(&self, id: SpanId, state: SpanState) -> Vec<String> {
        let Verdict { n_plus_one, duplicates } = state.judge(id, &self.rules, false);
        if n_plus_one.is_empty() && duplicates.is_empty() {
            return Vec::new();
        }
        let lines = if self.config.strict {
            n_plus_one.iter().map(ToString::to_string).collect()
        } else {
            Vec::new()
        };
        let mut f = self.findings.lock();
        for x in n_plus_one {
            f.add_n_plus_one(x);
        }
        for x in duplicates {
            f.add_duplicate(x);
        }
        lines
    }

    fn record_inner(&self, event: &QueryEvent<'_>) {
        self.c.events.fetch_add(1, Ordering::Relaxed);
        let found = self.registry.lookup(event.sql);
        let entry = &found.entry;
        // The parameters are the bound ones and any inlined in the text (its literals,
        // not its comments: sqlcommenter's `traceparent` changes with every request).
        let digest =
            event.params_digest ^ found.facts.literals.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if found.untracked {
            self.c.untracked.fetch_add(1, Ordering::Relaxed);
        } else {
            entry.observe(digest, event.duration, event.rows, self.config.advice.sample_size);
        }
        let Some(span) = event.span else {
            self.c.outside.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let end = event.ended_at.unwrap_or_else(|| (self.clock)());
        let end = u64::try_from(end.as_nanos()).unwrap_or(u64::MAX);
        let x = Execution { digest, duration: event.duration, end, list_len: found.facts.list_len };
        let mut shard = self.shard(span).lock();
        match shard.open.get_mut(&span) {
            Some(state) => {
                let counted = state.observe(entry, x, &self.rules);
                drop(shard);
                if !counted {
                    self.c.span_overflow.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                drop(shard);
                self.c.outside.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl QuerySink for Analyzer {
    fn record(&self, event: &QueryEvent<'_>) {
        self.record_inner(event);
    }

    fn span_start(&self, span: SpanId, kind: SpanKind, name: &str) {
        self.c.spans_started.fetch_add(1, Ordering::Relaxed);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut evicted = Vec::new();
        {
            let mut shard = self.shard(span).lock();
            if let Some(old) = shard.open.remove(&span) {
                evicted.push((span, old));
            } else {
                self.c.open_spans.fetch_add(1, Ordering::Relaxed);
            }
            while shard.open.len() >= self.per_shard {
                let Some((id, s)) = shard.order.pop_front() else { break };
                if shard.open.get(&id).is_some_and(|st| st.seq == s)
                    && let Some(old) = shard.open.remove(&id)
                {
                    self.c.open_spans.fetch_sub(1, Ordering::Relaxed);
                    evicted.push((id, old));
                }
            }
            shard.open.insert(span, SpanState::new(kind, name, seq));
            shard.order.push_back((span, seq));
            if shard.order.len() > 2 * self.per_shard + 16 {
                let SpanShard { open, order } = &mut *shard;
                order.retain(|(id, s)| open.get(id).is_some_and(|st| st.seq == *s));
            }
        }
        for (id, old) in evicted {
            self.c.spans_evicted.fetch_add(1, Ordering::Relaxed);
            // Evicted spans are judged, but never panic: the caller did nothing wrong now.
            let _ = self.conclude(id, old);
        }
    }

    fn span_end(&self, span: SpanId) {
        let Some(state) = self.shard(span).lock().open.remove(&span) else { return };
        self.c.open_spans.fetch_sub(1, Ordering::Relaxed);
        self.c.spans_ended.fetch_add(1, Ordering::Relaxed);
        let lines = self.conclude(span, state);
        if self.config.strict && !lines.is_empty() && !std::thread::panicking() {
            panic!("mltb-query-analyzer strict mode:\n  - {}", lines.join("\n  - "));
        }
    }
}
