//! One open span: its queries aggregated per fingerprint, judged when it ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::NPlusOneConfig;
use crate::event::{SpanId, SpanKind};
use crate::fingerprint::StatementKind;
use crate::report::{DuplicateFinding, NPlusOneFinding, SpanInfo};

use super::registry::FpEntry;

/// The judging rules, fixed when the analyzer is built.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    strict: bool,
    min_repeats: usize,
    min_repeats_alone: u64,
    min_total: Duration,
    require_source: bool,
    max_gap_nanos: u64,
    min_batch_len: u32,
    pub(crate) max_aggs: usize,
}

impl Rules {
    pub(crate) fn new(strict: bool, c: &NPlusOneConfig, max_aggs: usize) -> Self {
        Self {
            strict,
            min_repeats: c.min_repeats,
            min_repeats_alone: c.min_repeats_alone as u64,
            min_total: c.min_total_duration,
            require_source: c.require_source,
            max_gap_nanos: u64::try_from(c.max_gap.as_nanos()).unwrap_or(u64::MAX),
            min_batch_len: u32::try_from(c.min_batch_len).unwrap_or(u32::MAX),
            max_aggs,
        }
    }
}

/// One execution, as a span sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Execution {
    /// Bound and inlined parameters.
    pub(crate) digest: u64,
    pub(crate) duration: Duration,
    /// When it ended, in nanoseconds of the analyzer's clock.
    pub(crate) end: u64,
    /// The longest value list of its text.
    pub(crate) list_len: u32,
}

/// Room reserved for a new burst's distinct digests; the vector grows past it as needed.
const DISTINCT_HINT: usize = 16;

/// Executions of one fingerprint in a span with no idle gap longer than `max_gap`.
#[derive(Debug, Default)]
struct Burst {
    /// The different query that ran just before the burst's first execution.
    source: Option<Arc<FpEntry>>,
    count: u64,
    total: Duration,
    /// Distinct parameter digests, kept only up to `min_repeats`: enough to decide.
    /// Allocated for at most [`DISTINCT_HINT`] up front, as `min_repeats` is the user's
    /// and may be as large as `usize::MAX`.
    distinct: Vec<u64>,
    /// Executions that were batches (a long value list).
    batches: u64,
    /// When the latest execution ended.
    end: u64,
}

/// What a burst is: an N+1, duplicates, both or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    n_plus_one: bool,
    duplicate: bool,
}

impl Call {
    fn any(self) -> bool {
        self.n_plus_one || self.duplicate
    }
}

impl Burst {
    fn judge(&self, entry: &FpEntry, rules: &Rules) -> Call {
        let none = Call { n_plus_one: false, duplicate: false };
        if self.count < rules.min_repeats as u64 || entry.safelisted.load(Ordering::Relaxed) {
            return none;
        }
        let alone = rules.strict || self.count >= rules.min_repeats_alone;
        let slow = self.total >= rules.min_total;
        if !alone && !slow {
            return none;
        }
        let distinct = self.distinct.len();
        let walk = entry.fp.paging.is_some() || self.batches * 2 > self.count;
        let sourced = self.source.is_some() || !rules.require_source;
        Call {
            n_plus_one: distinct >= 2 && !walk && (alone || sourced),
            duplicate: distinct < rules.min_repeats,
        }
    }

    fn reset(&mut self, source: Option<Arc<FpEntry>>) {
        self.source = source;
        self.count = 0;
        self.total = Duration::ZERO;
        self.distinct.clear();
        self.batches = 0;
    }
}

/// The executions of one fingerprint within one span: the burst under way and the
/// worst one that ended.
#[derive(Debug)]
struct Agg {
    entry: Arc<FpEntry>,
    current: Burst,
    worst: Option<(Call, Burst)>,
}

impl Agg {
    /// The burst to report and what it is, if any.
    fn verdict(&self, rules: &Rules) -> Option<(Call, &Burst)> {
        let now = (self.current.judge(&self.entry, rules), &self.current);
        let best = match &self.worst {
            Some((call, b)) if (*call, b.count) > (now.0, now.1.count) => (*call, b),
            _ => now,
        };
        best.0.any().then_some(best)
    }
}

#[derive(Debug)]
pub(crate) struct SpanState {
    pub(crate) kind: SpanKind,
    pub(crate) name: Box<str>,
    /// Start order, for evicting the oldest span.
    pub(crate) seq: u64,
    aggs: Vec<Agg>,
    last: Option<usize>,
}

/// What judging a span found.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub(crate) n_plus_one: Vec<NPlusOneFinding>,
    pub(crate) duplicates: Vec<DuplicateFinding>,
}

impl SpanState {
    pub(crate) fn new(kind: SpanKind, name: &str, seq: u64) -> Self {
        Self { kind, name: name.into(), seq, aggs: Vec::new(), last: None }
    }

    /// Adds one query; `false` when the span already tracks `max_aggs` other fingerprints
    /// and this one is not counted.
    #[inline]
    pub(crate) fn observe(&mut self, entry: &Arc<FpEntry>, x: Execution, rules: &Rules) -> bool {
        let id = entry.fp.id;
        let found = match self.last {
            Some(i) if self.aggs[i].entry.fp.id == id => Some(i),
            _ => self.aggs.iter().position(|a| a.entry.fp.id == id),
        };
        // The query before this one, when it is another: the source of a new burst
        // (cloned only when a burst starts: the hot path touches no reference count).
        let before = self.last.filter(|&l| self.aggs[l].entry.fp.id != id);
        let source = |aggs: &[Agg]| before.map(|l| Arc::clone(&aggs[l].entry));
        let i = match found {
            Some(i) => i,
            None if self.aggs.len() < rules.max_aggs => {
                let current = Burst {
                    source: source(&self.aggs),
                    distinct: Vec::with_capacity(rules.min_repeats.min(DISTINCT_HINT)),
                    ..Burst::default()
                };
                self.aggs.push(Agg { entry: Arc::clone(entry), current, worst: None });
                self.aggs.len() - 1
            }
            None => return false,
        };
        let start = x.end.saturating_sub(u64::try_from(x.duration.as_nanos()).unwrap_or(u64::MAX));
        let current = &self.aggs[i].current;
        if current.count > 0 && start.saturating_sub(current.end) > rules.max_gap_nanos {
            let before = source(&self.aggs);
            let a = &mut self.aggs[i];
            // A pause: the burst under way is over. Keep it if it is the worst so far.
            let call = a.current.judge(&a.entry, rules);
            let worse =
                call.any() && a.worst.as_ref().is_none_or(|(c, b)| (call, a.current.count) > (*c, b.count));
            if worse {
                let fresh = Burst {
                    source: before,
                    distinct: Vec::with_capacity(rules.min_repeats.min(DISTINCT_HINT)),
                    ..Burst::default()
                };
                let ended = std::mem::replace(&mut a.current, fresh);
                a.worst = Some((call, ended));
            } else {
                a.current.reset(before);
            }
        }
        let b = &mut self.aggs[i].current;
        b.count += 1;
        b.total += x.duration;
        b.end = b.end.max(x.end);
        if x.list_len >= rules.min_batch_len {
            b.batches += 1;
        }
        if b.distinct.len() < rules.min_repeats && !b.distinct.contains(&x.digest) {
            b.distinct.push(x.digest);
        }
        self.last = Some(i);
        true
    }

    /// Judges the span's queries; `open`: it has not ended yet.
    pub(crate) fn judge(&self, id: SpanId, rules: &Rules, open: bool) -> Verdict {
        let mut verdict = Verdict::default();
        let span = || SpanInfo { id, kind: self.kind, name: self.name.to_string(), open };
        for a in &self.aggs {
            let Some((call, b)) = a.verdict(rules) else { continue };
            if call.n_plus_one {
                verdict.n_plus_one.push(NPlusOneFinding {
                    fingerprint: a.entry.fp.clone(),
                    source: b.source.as_ref().map(|s| s.fp.clone()),
                    count: b.count,
                    duration: b.total,
                    span: span(),
                    suggestion: suggest(a.entry.fp.kind, &a.entry.fp.normalized),
                    occurrences: 1,
                    total_count: b.count,
                    total_duration: b.total,
                });
            }
            if call.duplicate {
                verdict.duplicates.push(DuplicateFinding {
                    fingerprint: a.entry.fp.clone(),
                    count: b.count,
                    distinct_params: b.distinct.len(),
                    duration: b.total,
                    span: span(),
                    occurrences: 1,
                });
            }
        }
        verdict
    }
}

/// The batched form of a repeated statement.
pub(crate) fn suggest(kind: StatementKind, normalized: &str) -> String {
    let batched = normalized.find(" WHERE ").and_then(|w| {
        let at = w + normalized[w..].find(" = ?")?;
        Some(format!("{} IN (...){}", &normalized[..at], &normalized[at + " = ?".len()..]))
    });
    match (kind, batched) {
        (StatementKind::Select, Some(b)) => {
            format!("load them in one query: `{b}`, or JOIN this table into the source query")
        }
        (StatementKind::Select, None) => "load them in one query joined to the source query".to_owned(),
        (StatementKind::Insert, _) => {
            "insert the rows in one multi-row statement: `... VALUES (...), (...), ...`".to_owned()
        }
        (StatementKind::Update | StatementKind::Delete, Some(b)) => {
            format!("change the rows in one statement: `{b}`")
        }
        _ => "send these statements as one batch".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_rewrites_the_first_equality_into_an_in_list() {
        let s = suggest(StatementKind::Select, "SELECT * FROM users WHERE id = ? AND deleted = ?");
        assert!(s.contains("`SELECT * FROM users WHERE id IN (...) AND deleted = ?`"), "{s}");
        assert!(suggest(StatementKind::Insert, "INSERT INTO t VALUES (?)").contains("multi-row"));
        assert!(suggest(StatementKind::Delete, "DELETE FROM t WHERE id = ?").contains("WHERE id IN (...)"));
    }
}
