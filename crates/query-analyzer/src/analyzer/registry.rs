//! The fingerprint registry: SQL text → fingerprint entry (a cache, since executors send
//! the same text again and again), fingerprint id → entry with its statistics, and the
//! write counters of tables.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::config::AnalyzerConfig;
use crate::fingerprint::{Fingerprint, StatementKind, TextFacts, analyse};
use crate::hash::FastMap;
use crate::sample::{self, INVALIDATE, push_bounded};

/// Writes seen per table.
#[derive(Debug)]
pub(crate) struct TableStats {
    pub(crate) writes: AtomicU64,
}

/// One fingerprint and what has been seen of it.
#[derive(Debug)]
pub(crate) struct FpEntry {
    pub(crate) fp: Fingerprint,
    pub(crate) safelisted: AtomicBool,
    /// Tables it reads, when it is a cacheable read (a `SELECT` naming tables).
    pub(crate) read_tables: Box<[Arc<TableStats>]>,
    pub(crate) written_tables: Box<[Arc<TableStats>]>,
    pub(crate) stats: Mutex<FpStats>,
}

#[derive(Debug, Default)]
pub(crate) struct FpStats {
    pub(crate) count: u64,
    pub(crate) total: Duration,
    pub(crate) rows: u64,
    /// The sum of its read tables' write counters at its last execution.
    pub(crate) writes_seen: u64,
    /// Recent parameter digests, with [`INVALIDATE`] markers (cacheable reads only).
    pub(crate) sample: VecDeque<u64>,
}

impl FpEntry {
    /// Records one execution. `sample_size` bounds the parameter sample.
    #[inline]
    pub(crate) fn observe(&self, digest: u64, duration: Duration, rows: u64, sample_size: usize) {
        for t in self.written_tables.iter() {
            t.writes.fetch_add(1, Ordering::Relaxed);
        }
        let writes: u64 = self.read_tables.iter().map(|t| t.writes.load(Ordering::Relaxed)).sum();
        let mut s = self.stats.lock();
        s.count += 1;
        s.total += duration;
        s.rows += rows;
        // The sample feeds cache advice only.
        if cfg!(feature = "advice") && !self.read_tables.is_empty() {
            if writes != s.writes_seen {
                s.writes_seen = writes;
                if s.count > 1 {
                    push_bounded(&mut s.sample, INVALIDATE, sample_size);
                }
            }
            push_bounded(&mut s.sample, sample::digest(digest), sample_size);
        }
    }

    /// Writes seen so far to the tables this fingerprint reads.
    #[cfg(feature = "advice")]
    pub(crate) fn writes_to_tables(&self) -> u64 {
        self.read_tables.iter().map(|t| t.writes.load(Ordering::Relaxed)).sum()
    }
}

/// What [`Registry::lookup`] found.
pub(crate) struct Lookup {
    pub(crate) entry: Arc<FpEntry>,
    /// What the text says beyond its fingerprint: its inlined literals, its list length.
    pub(crate) facts: TextFacts,
    /// The entry is not kept (the registry is full): its statistics are not recorded.
    pub(crate) untracked: bool,
}

#[derive(Debug, Default)]
struct Maps {
    by_sql: FastMap<Box<str>, (Arc<FpEntry>, TextFacts)>,
    by_id: FastMap<u64, Arc<FpEntry>>,
    tables: FastMap<Box<str>, Arc<TableStats>>,
}

#[derive(Debug)]
pub(crate) struct Registry {
    maps: RwLock<Maps>,
    max_fingerprints: usize,
    max_texts: usize,
    safelist: Box<[String]>,
}

impl Registry {
    pub(crate) fn new(config: &AnalyzerConfig) -> Self {
        Self {
            maps: RwLock::new(Maps::default()),
            max_fingerprints: config.max_fingerprints,
            max_texts: config.max_fingerprints.saturating_mul(4),
            safelist: config.n_plus_one.safelist.clone().into_boxed_slice(),
        }
    }

    /// The entry for `sql`, fingerprinting it on the first sight of this text.
    #[inline]
    pub(crate) fn lookup(&self, sql: &str) -> Lookup {
        if let Some((e, facts)) = self.maps.read().by_sql.get(sql) {
            return Lookup { entry: Arc::clone(e), facts: *facts, untracked: false };
        }
        self.lookup_slow(sql)
    }

    #[cold]
    fn lookup_slow(&self, sql: &str) -> Lookup {
        let (fp, facts) = analyse(sql);
        let safelisted = self.safelisted(sql, &fp);
        let mut maps = self.maps.write();
        if let Some((e, facts)) = maps.by_sql.get(sql) {
            return Lookup { entry: Arc::clone(e), facts: *facts, untracked: false };
        }
        let entry = match maps.by_id.get(&fp.id) {
            Some(e) => Arc::clone(e),
            None if maps.by_id.len() < self.max_fingerprints => {
                let e = Arc::new(new_entry(fp, &mut maps.tables));
                maps.by_id.insert(e.fp.id, Arc::clone(&e));
                e
            }
            None => {
                drop(maps);
                let e = Arc::new(new_entry(fp, &mut FastMap::default()));
                e.safelisted.store(safelisted, Ordering::Relaxed);
                return Lookup { entry: e, facts, untracked: true };
            }
        };
        if safelisted {
            entry.safelisted.store(true, Ordering::Relaxed);
        }
        if maps.by_sql.len() < self.max_texts {
            maps.by_sql.insert(sql.into(), (Arc::clone(&entry), facts));
        }
        Lookup { entry, facts, untracked: false }
    }

    fn safelisted(&self, sql: &str, fp: &Fingerprint) -> bool {
        let hex = fp.hex_id();
        self.safelist.iter().any(|s| {
            !s.is_empty()
                && (**s == *fp.normalized
                    || *s == hex
                    || sql.contains(s.as_str())
                    || fp.normalized.contains(s.as_str()))
        })
    }

    /// Every tracked fingerprint.
    pub(crate) fn entries(&self) -> Vec<Arc<FpEntry>> {
        self.maps.read().by_id.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.maps.read().by_id.len()
    }
}

fn new_entry(fp: Fingerprint, tables: &mut FastMap<Box<str>, Arc<TableStats>>) -> FpEntry {
    let mut table = |name: &String| -> Arc<TableStats> {
        Arc::clone(
            tables
                .entry(name.as_str().into())
                .or_insert_with(|| Arc::new(TableStats { writes: AtomicU64::new(0) })),
        )
    };
    let read_tables: Box<[_]> = if fp.kind == StatementKind::Select {
        fp.tables_read.iter().map(&mut table).collect()
    } else {
        Box::new([])
    };
    let written_tables: Box<[_]> = fp.tables_written.iter().map(&mut table).collect();
    FpEntry {
        fp,
        safelisted: AtomicBool::new(false),
        read_tables,
        written_tables,
        stats: Mutex::new(FpStats::default()),
    }
}
