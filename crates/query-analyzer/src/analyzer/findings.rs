//! Findings kept for the report, grouped so a loop found in every request is one line.

use crate::event::SpanKind;
use crate::report::{DuplicateFinding, NPlusOneFinding};

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) n_plus_one: u64,
    pub(super) duplicates: u64,
    pub(super) dropped: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Findings {
    max: usize,
    n_plus_one: Vec<NPlusOneFinding>,
    duplicates: Vec<DuplicateFinding>,
    counts: Counts,
}

fn same_place(a_kind: SpanKind, a_name: &str, b_kind: SpanKind, b_name: &str) -> bool {
    a_kind == b_kind && a_name == b_name
}

impl Findings {
    pub(super) fn new(max: usize) -> Self {
        Self { max, n_plus_one: Vec::new(), duplicates: Vec::new(), counts: Counts::default() }
    }

    pub(super) fn counts(&self) -> Counts {
        self.counts
    }

    fn full(&self) -> bool {
        self.n_plus_one.len() + self.duplicates.len() >= self.max
    }

    pub(super) fn add_n_plus_one(&mut self, f: NPlusOneFinding) {
        self.counts.n_plus_one += 1;
        let key = |x: &NPlusOneFinding| (x.fingerprint.id, x.source.as_ref().map(|s| s.id));
        let k = key(&f);
        if let Some(old) = self
            .n_plus_one
            .iter_mut()
            .find(|o| key(o) == k && same_place(o.span.kind, &o.span.name, f.span.kind, &f.span.name))
        {
            old.occurrences += 1;
            old.total_count += f.count;
            old.total_duration += f.duration;
            old.count = f.count;
            old.duration = f.duration;
            old.span = f.span;
        } else if self.full() {
            self.counts.dropped += 1;
        } else {
            self.n_plus_one.push(f);
        }
    }

    pub(super) fn add_duplicate(&mut self, f: DuplicateFinding) {
        self.counts.duplicates += 1;
        if let Some(old) = self.duplicates.iter_mut().find(|o| {
            o.fingerprint.id == f.fingerprint.id
                && same_place(o.span.kind, &o.span.name, f.span.kind, &f.span.name)
        }) {
            old.occurrences += 1;
            old.count = f.count;
            old.distinct_params = f.distinct_params;
            old.duration = f.duration;
            old.span = f.span;
        } else if self.full() {
            self.counts.dropped += 1;
        } else {
            self.duplicates.push(f);
        }
    }

    /// Copies of the findings, most total time first.
    pub(super) fn snapshot(&self) -> (Vec<NPlusOneFinding>, Vec<DuplicateFinding>) {
        let mut n = self.n_plus_one.clone();
        n.sort_by_key(|f| std::cmp::Reverse(f.total_duration));
        let mut d = self.duplicates.clone();
        d.sort_by_key(|f| std::cmp::Reverse(f.duration));
        (n, d)
    }

    pub(super) fn clear(&mut self) {
        self.n_plus_one.clear();
        self.duplicates.clear();
    }
}
