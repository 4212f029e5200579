//! Benchmarks of `mltb-query-analyzer`:
//!
//! - `record`: events per second through [`Analyzer`] on one thread: a stream of spans
//!   (start, a source query, lookups in a loop, a write, end) over 48 distinct SQL texts,
//!   with the parameter digest computed per event as an executor would, through a
//!   `&dyn QuerySink`. `noop` is the floor: the same loop into a `NoopSink`. Every span
//!   is an N+1 at the bench's settings, so judging and grouping findings are included.
//!   Target ≥ 1M events/s.
//! - `fingerprint`: fingerprinting a mix of SQLite and PostgreSQL statements, with two
//!   `sqlparser` rows in the same group:
//!   - `mltb`: our single pass — tokenize, normalise to text, hash, find the statement
//!     kind and tables.
//!   - `sqlparser_tokenizer` (the like-for-like anchor): `sqlparser::tokenizer::Tokenizer`
//!     alone, as ours is a tokenizer, not a parser. It does less than ours (no
//!     normalised text, no hash, no tables), so it bounds from below what any
//!     sqlparser-based fingerprint would cost.
//!   - `sqlparser_full_parse`: parse to an AST, replace every literal with `?` by a
//!     visitor, print: what a parser-based normaliser does.
//!
//! Run: `cargo bench -p mltb-query-analyzer --bench analyzer -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mltb_query_analyzer::{
    Analyzer, AnalyzerConfig, NoopSink, QueryEvent, QuerySink, SpanId, SpanKind, fingerprint, params_digest,
};
use sqlparser::ast::{Expr, Value, visit_expressions_mut};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

const SPANS: u64 = 1_000;
const LOOKUPS: u64 = 20;
/// Events per span: a source query, the lookups, one write.
const EVENTS_PER_SPAN: u64 = LOOKUPS + 2;

struct Texts {
    sources: Vec<String>,
    lookups: Vec<String>,
    writes: Vec<String>,
}

fn texts() -> Texts {
    Texts {
        sources: (0..16)
            .map(|i| format!("SELECT id, owner_id FROM tasks_{i} WHERE chat_id = ? AND state = ?"))
            .collect(),
        lookups: (0..16).map(|i| format!("SELECT id, name, tier FROM users_{i} WHERE id = ?")).collect(),
        writes: (0..16)
            .map(|i| format!("UPDATE tasks_{i} SET progress = ?, speed = ? WHERE id = ?"))
            .collect(),
    }
}

/// Drives `SPANS` spans through `sink`; returns the events sent.
/// The sink is a trait object, as an executor holding an `Arc<dyn QuerySink>` calls it.
fn drive(sink: &dyn QuerySink, t: &Texts, round: u64) -> u64 {
    let d = Duration::from_micros(300);
    for s in 0..SPANS {
        let span = SpanId(round * SPANS + s);
        let k = (s % 16) as usize;
        sink.span_start(span, SpanKind::Request, "GET /tasks");
        let ev = |sql, digest| QueryEvent {
            sql,
            params_digest: digest,
            duration: d,
            rows: 1,
            span: Some(span),
            ended_at: None,
        };
        sink.record(&ev(t.sources[k].as_str(), params_digest(&(s as i64, "active"))));
        for i in 0..LOOKUPS {
            sink.record(&ev(t.lookups[k].as_str(), params_digest(&((s * LOOKUPS + i) as i64))));
        }
        sink.record(&ev(t.writes[k].as_str(), params_digest(&(1_i64, 2_i64, s as i64))));
        sink.span_end(span);
    }
    SPANS * EVENTS_PER_SPAN
}

fn record(c: &mut Criterion) {
    let t = texts();
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(SPANS * EVENTS_PER_SPAN));
    let mut config = AnalyzerConfig::default();
    // Every span is an N+1 at these settings: the bench includes judging and grouping them.
    config.n_plus_one.min_total_duration = Duration::ZERO;
    let analyzer = Analyzer::new(config);
    drive(&analyzer, &t, 0);
    assert!(analyzer.counters().n_plus_one > 0, "the bench stream must exercise detection");
    let mut round = 0;
    g.bench_function("analyzer", |b| {
        b.iter(|| {
            round += 1;
            black_box(drive(black_box(&analyzer), &t, round))
        })
    });
    g.bench_function("noop", |b| b.iter(|| black_box(drive(black_box(&NoopSink), &t, 0))));
    g.finish();
}

const CORPUS: &[&str] = &[
    "SELECT * FROM users WHERE id = 42",
    "SELECT id, name FROM users WHERE name = 'o''brien' AND tier IN (1, 2, 3, 4) ORDER BY id DESC LIMIT 20",
    "INSERT INTO audit (task_id, message, at) VALUES (17, 'started', 1700000000), (18, 'queued', 1700000001)",
    "UPDATE tasks SET progress = 0.5, speed = 1048576, state = 'running' WHERE id = 981",
    "SELECT t.id, u.name, count(f.id) FROM tasks t JOIN users u ON u.id = t.owner LEFT JOIN files f ON f.task_id = t.id \
     WHERE t.chat_id = -100123 AND t.created_at > '2024-01-01' GROUP BY t.id, u.name HAVING count(f.id) > 2",
    "DELETE FROM sessions WHERE expires_at < 1700000000 OR user_id = 77",
];

/// The anchor: sqlparser's parse, a visitor that turns literals into `?`, print.
fn sqlparser_normalize(sql: &str) -> Option<String> {
    let mut stmts = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    let _ = visit_expressions_mut(&mut stmts, |e| {
        if let Expr::Value(v) = e {
            v.value = Value::Placeholder("?".to_owned());
        }
        ControlFlow::<()>::Continue(())
    });
    Some(stmts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

/// The like-for-like anchor: sqlparser's tokenizer alone.
fn sqlparser_tokens(sql: &str) -> Option<Vec<Token>> {
    Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()
}

fn fingerprinting(c: &mut Criterion) {
    let bytes: usize = CORPUS.iter().map(|s| s.len()).sum();
    // Every row handles every statement of the corpus.
    assert!(CORPUS.iter().all(|s| sqlparser_normalize(s).is_some()));
    assert!(CORPUS.iter().all(|s| sqlparser_tokens(s).is_some_and(|t| t.len() > 8)));
    assert!(CORPUS.iter().all(|s| !fingerprint(s).normalized.contains(|c: char| c.is_ascii_digit())));
    let mut g = c.benchmark_group("fingerprint");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("mltb", |b| {
        b.iter(|| {
            for s in CORPUS {
                black_box(fingerprint(black_box(s)));
            }
        })
    });
    g.bench_function("sqlparser_tokenizer", |b| {
        b.iter(|| {
            for s in CORPUS {
                black_box(sqlparser_tokens(black_box(s)));
            }
        })
    });
    g.bench_function("sqlparser_full_parse", |b| {
        b.iter(|| {
            for s in CORPUS {
                black_box(sqlparser_normalize(black_box(s)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, record, fingerprinting);
criterion_main!(benches);
