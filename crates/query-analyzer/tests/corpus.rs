//! Detection quality on a labelled synthetic corpus: workloads with and without N+1
//! patterns, with noise (ORM-like loops, legitimate repeats below the threshold,
//! interleaved spans, batched queries, repeated same-parameter queries, pagination).
//! Precision and recall over (span, repeated query) pairs must both reach 0.95.

mod support;

use std::collections::HashSet;

use mltb_query_analyzer::{
    Analyzer, AnalyzerConfig, QueryEvent, QuerySink, SpanId, SpanKind, fingerprint, params_digest,
};
use support::Rng;

/// One query of a generated span.
struct Q {
    sql: String,
    digest: u64,
    ms: u64,
}

/// A generated span: its queries and the fingerprints that are true N+1s in it.
struct Workload {
    name: String,
    queries: Vec<Q>,
    n_plus_one: Vec<u64>,
}

fn q(sql: impl Into<String>, params: impl std::hash::Hash, ms: u64) -> Q {
    Q { sql: sql.into(), digest: params_digest(&params), ms }
}

const SOURCES: [&str; 3] = [
    "SELECT * FROM tasks WHERE chat_id = ? ORDER BY created_at DESC LIMIT 50",
    "SELECT id, user_id FROM posts WHERE published = true",
    "select t.id, t.owner from tasks t where t.state = $1",
];
const LOOKUPS: [&str; 4] = [
    "SELECT * FROM users WHERE id = ?",
    "SELECT name, tier FROM users WHERE id = $1",
    "SELECT * FROM files WHERE task_id = :task_id",
    "SELECT count(*) FROM comments WHERE post_id = ?1",
];

fn generate(rng: &mut Rng, i: usize) -> Workload {
    let name = format!("span-{i}");
    let source = SOURCES[rng.range(0, 2) as usize];
    let lookup = LOOKUPS[rng.range(0, 3) as usize];
    let mut queries = vec![q(source, (i, 0), rng.range(5, 30))];
    let mut n_plus_one = Vec::new();
    match rng.range(0, 9) {
        // ORM lazy loading: one lookup per row.
        0 | 1 => {
            for row in 0..rng.range(5, 40) {
                queries.push(q(lookup, (i, row), rng.range(10, 25)));
            }
            n_plus_one.push(fingerprint(lookup).id);
        }
        // Two relations per row, alternating.
        2 => {
            let other = "SELECT tag FROM tags WHERE post_id = ?";
            for row in 0..rng.range(5, 30) {
                queries.push(q(lookup, (i, row), rng.range(10, 20)));
                queries.push(q(other, (i, row), rng.range(10, 20)));
            }
            n_plus_one.extend([fingerprint(lookup).id, fingerprint(other).id]);
        }
        // A loop of inserts, one row at a time.
        3 => {
            for row in 0..rng.range(6, 30) {
                queries.push(q(
                    "INSERT INTO audit (task_id, message) VALUES (?, ?)",
                    (i, row),
                    rng.range(10, 15),
                ));
            }
            n_plus_one.push(fingerprint("INSERT INTO audit (task_id, message) VALUES (?, ?)").id);
        }
        // Legitimate repeats below the threshold.
        4 => {
            for row in 0..rng.range(1, 4) {
                queries.push(q(lookup, (i, row), rng.range(10, 25)));
            }
        }
        // Batched: one IN-list query of varying length, a multi-row insert.
        5 => {
            let n = rng.range(2, 50) as usize;
            let list = vec!["?"; n].join(", ");
            queries.push(q(format!("SELECT * FROM users WHERE id IN ({list})"), (i, n), rng.range(10, 40)));
            let rows = vec!["(?, ?)"; n].join(", ");
            queries.push(q(
                format!("INSERT INTO audit (task_id, message) VALUES {rows}"),
                (i, n),
                rng.range(5, 20),
            ));
        }
        // The same query with the same parameters, again and again.
        6 => {
            for _ in 0..rng.range(5, 20) {
                queries.push(q("SELECT value FROM settings WHERE key = ?", "flood_wait", rng.range(10, 20)));
            }
        }
        // Many different queries, each once or twice.
        7 => {
            for k in 0..rng.range(5, 12) {
                for rep in 0..rng.range(1, 2) {
                    queries.push(q(
                        format!("SELECT c{k} FROM stats WHERE day = ?"),
                        (i, rep),
                        rng.range(10, 20),
                    ));
                }
            }
        }
        // A fast N+1 below the duration threshold (Sentry ignores these too): not labelled.
        8 => {
            for row in 0..rng.range(5, 9) {
                queries.push(q(lookup, (i, row), 1));
            }
        }
        // Pagination: the same page query with growing offsets. Not an N+1 (it is the
        // batched form), but it has N+1's shape: the corpus keeps it as the hard negative.
        _ => {
            let pages = if rng.chance(0.1) { rng.range(5, 8) } else { rng.range(2, 4) };
            for page in 0..pages {
                queries.push(q(
                    "SELECT * FROM files ORDER BY id LIMIT 100 OFFSET ?",
                    (i, page),
                    rng.range(10, 30),
                ));
            }
        }
    }
    // Noise: an unrelated query now and then, between any two queries.
    if rng.chance(0.3) {
        let at = rng.range(1, queries.len() as u64) as usize;
        queries.insert(at, q("SELECT 1", (), 1));
    }
    Workload { name, queries, n_plus_one }
}

#[test]
fn precision_and_recall_reach_095() {
    let analyzer = Analyzer::new(AnalyzerConfig::new().max_findings(100_000));
    let mut rng = Rng(2024);
    let workloads: Vec<Workload> = (0..2_000).map(|i| generate(&mut rng, i)).collect();

    // Run up to four spans at once, their queries interleaved.
    let mut expected = HashSet::new();
    for (chunk_no, chunk) in workloads.chunks(4).enumerate() {
        for (k, w) in chunk.iter().enumerate() {
            let id = (chunk_no * 4 + k) as u64;
            analyzer.span_start(SpanId(id), SpanKind::Request, &w.name);
            expected.extend(w.n_plus_one.iter().map(|fp| (w.name.clone(), *fp)));
        }
        let mut cursors = vec![0; chunk.len()];
        loop {
            let open: Vec<usize> =
                (0..chunk.len()).filter(|&k| cursors[k] < chunk[k].queries.len()).collect();
            if open.is_empty() {
                break;
            }
            let k = open[rng.range(0, open.len() as u64 - 1) as usize];
            let query = &chunk[k].queries[cursors[k]];
            cursors[k] += 1;
            analyzer.record(&QueryEvent {
                sql: &query.sql,
                params_digest: query.digest,
                duration: std::time::Duration::from_millis(query.ms),
                rows: 1,
                span: Some(SpanId((chunk_no * 4 + k) as u64)),
            });
        }
        for k in 0..chunk.len() {
            analyzer.span_end(SpanId((chunk_no * 4 + k) as u64));
        }
    }

    let report = analyzer.report();
    let found: HashSet<(String, u64)> =
        report.n_plus_one.iter().map(|f| (f.span.name.clone(), f.fingerprint.id)).collect();
    assert_eq!(report.counters.findings_dropped, 0);
    let tp = found.intersection(&expected).count() as f64;
    let precision = tp / found.len() as f64;
    let recall = tp / expected.len() as f64;
    assert!(expected.len() > 500, "the corpus has {} labelled N+1s", expected.len());
    assert!(precision >= 0.95, "precision {precision:.3} ({tp} of {} found)", found.len());
    assert!(recall >= 0.95, "recall {recall:.3} ({tp} of {} expected)", expected.len());
    // The same-parameter floods were reported as duplicates instead.
    assert!(!report.duplicates.is_empty());
}
