//! One open span: its queries aggregated per fingerprint, judged when it ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::NPlusOneConfig;
use crate::event::{SpanId, SpanKind};
use crate::fingerprint::StatementKind;
use crate::report::{DuplicateFinding, NPlusOneFinding, SpanInfo};

use super::registry::FpEntry;

/// The executions of one fingerprint within one span.
#[derive(Debug)]
struct Agg {
    entry: Arc<FpEntry>,
    /// The different query that ran just before this fingerprint's first execution.
    source: Option<Arc<FpEntry>>,
    count: u64,
    total: Duration,
    /// Distinct parameter digests, kept only up to `min_repeats`: enough to decide.
    distinct: Vec<u64>,
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
    pub(crate) fn observe(
        &mut self,
        entry: &Arc<FpEntry>,
        digest: u64,
        duration: Duration,
        min_repeats: usize,
        max_aggs: usize,
    ) -> bool {
        let id = entry.fp.id;
        let found = match self.last {
            Some(i) if self.aggs[i].entry.fp.id == id => Some(i),
            _ => self.aggs.iter().position(|a| a.entry.fp.id == id),
        };
        let i = match found {
            Some(i) => i,
            None if self.aggs.len() < max_aggs => {
                let source = self.last.map(|l| Arc::clone(&self.aggs[l].entry));
                self.aggs.push(Agg {
                    entry: Arc::clone(entry),
                    source,
                    count: 0,
                    total: Duration::ZERO,
                    distinct: Vec::with_capacity(min_repeats),
                });
                self.aggs.len() - 1
            }
            None => return false,
        };
        let a = &mut self.aggs[i];
        a.count += 1;
        a.total += duration;
        if a.distinct.len() < min_repeats && !a.distinct.contains(&digest) {
            a.distinct.push(digest);
        }
        self.last = Some(i);
        true
    }

    /// Judges the span's queries; `open`: it has not ended yet.
    pub(crate) fn judge(&self, id: SpanId, config: &NPlusOneConfig, open: bool) -> Verdict {
        let mut verdict = Verdict::default();
        let span = || SpanInfo { id, kind: self.kind, name: self.name.to_string(), open };
        for a in &self.aggs {
            let min = config.min_repeats;
            if a.count < min as u64
                || a.total < config.min_total_duration
                || a.entry.safelisted.load(Ordering::Relaxed)
            {
                continue;
            }
            if a.distinct.len() >= min {
                if config.require_source && a.source.is_none() {
                    continue;
                }
                verdict.n_plus_one.push(NPlusOneFinding {
                    fingerprint: a.entry.fp.clone(),
                    source: a.source.as_ref().map(|s| s.fp.clone()),
                    count: a.count,
                    duration: a.total,
                    span: span(),
                    suggestion: suggest(a.entry.fp.kind, &a.entry.fp.normalized),
                    occurrences: 1,
                    total_count: a.count,
                    total_duration: a.total,
                });
            } else {
                verdict.duplicates.push(DuplicateFinding {
                    fingerprint: a.entry.fp.clone(),
                    count: a.count,
                    distinct_params: a.distinct.len(),
                    duration: a.total,
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
