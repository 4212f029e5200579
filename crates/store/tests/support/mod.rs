//! Shared fixtures: a store on each backend, a sink that records every query, and the
//! query analyzer in strict mode.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use mltb_query_analyzer::{Analyzer, AnalyzerConfig, QueryEvent, QuerySink, SpanId, SpanKind};
use mltb_store::{Backend, NewTask, Source, SqliteStore, Store, StoreConfig, TaskKind};
use parking_lot::Mutex;

/// Records the SQL of every query, and forwards everything to the analyzer.
pub struct Recorder {
    pub queries: Mutex<Vec<(String, Option<SpanId>, u64)>>,
    /// Every event as (sql, params digest, span), to replay into another analyzer.
    pub events: Mutex<Vec<(String, u64, Option<SpanId>)>>,
    pub analyzer: Analyzer,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        let mut config = AnalyzerConfig::new().strict(true);
        // Queries on loopback or in-process take microseconds: judge them all.
        config.n_plus_one.min_total_duration = Duration::ZERO;
        Arc::new(Self {
            queries: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            analyzer: Analyzer::new(config),
        })
    }

    pub fn count(&self) -> usize {
        self.queries.lock().len()
    }

    /// Queries whose SQL contains `needle`.
    pub fn count_matching(&self, needle: &str) -> usize {
        self.queries.lock().iter().filter(|(sql, _, _)| sql.contains(needle)).count()
    }

    pub fn in_span(&self, span: SpanId) -> Vec<String> {
        self.queries
            .lock()
            .iter()
            .filter(|(_, s, _)| *s == Some(span))
            .map(|(sql, _, _)| sql.clone())
            .collect()
    }
}

impl QuerySink for Recorder {
    fn record(&self, event: &QueryEvent<'_>) {
        self.queries.lock().push((event.sql.to_owned(), event.span, event.rows));
        self.events.lock().push((event.sql.to_owned(), event.params_digest, event.span));
        self.analyzer.record(event);
    }
    fn span_start(&self, span: SpanId, kind: SpanKind, name: &str) {
        self.analyzer.span_start(span, kind, name);
    }
    fn span_end(&self, span: SpanId) {
        self.analyzer.span_end(span);
    }
}

/// A store under test with what it reported. Holds the temp dir or database.
pub struct Harness<B: Backend> {
    pub store: Store<B>,
    pub sink: Arc<Recorder>,
    _guard: Box<dyn std::any::Any + Send>,
}

impl<B: Backend> Harness<B> {
    /// Fails the test if the analyzer found an N+1 in anything the test ran.
    pub fn assert_no_n_plus_one(&self) {
        let report = self.sink.analyzer.report();
        assert!(report.n_plus_one.is_empty(), "N+1 findings: {:#?}", report.n_plus_one);
        self.sink.analyzer.check().expect("strict analyzer check");
    }
}

pub fn config(sink: &Arc<Recorder>) -> StoreConfig {
    StoreConfig::new().sink(Arc::clone(sink) as Arc<dyn QuerySink>)
}

pub async fn sqlite() -> Harness<mltb_store::SqliteBackend> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = Recorder::new();
    let store = SqliteStore::open_sqlite(dir.path().join("data").join("mltb.db"), config(&sink))
        .await
        .expect("open sqlite store");
    Harness { store, sink, _guard: Box::new(dir) }
}

#[cfg(feature = "postgres")]
pub async fn postgres() -> Harness<mltb_store::PostgresBackend> {
    let db = mltb_testkit::TestDatabase::create().await.expect("create test database");
    let sink = Recorder::new();
    let store = mltb_store::PostgresStore::connect_postgres(db.url(), config(&sink))
        .await
        .expect("open postgres store");
    Harness { store, sink, _guard: Box::new(db) }
}

pub fn new_task(chat: i64, url: &str) -> NewTask {
    NewTask {
        chat,
        user: 7,
        source: Source::Url(url.to_owned()),
        kind: TaskKind::Mirror,
        name: None,
        options: serde_json::json!({ "up": "remote:dir" }),
    }
}
