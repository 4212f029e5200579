//! The instrumented executor: every statement of every backend is timed, counted and
//! reported here.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use mltb_query_analyzer::{QueryEvent, QuerySink, SpanId, params_digest};

use crate::Statement;

/// Reports each statement a backend runs to a [`QuerySink`] as a [`QueryEvent`]: the
/// SQL text (placeholders, never values), a digest of the bound values, the duration,
/// the rows returned or affected, and the span it ran in.
///
/// Backends call [`run`](Self::run) (blocking drivers) or
/// [`run_async`](Self::run_async) (async drivers) around each statement; nothing else
/// touches the database. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    sink: Arc<dyn QuerySink>,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor").finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor reporting to `sink`.
    pub fn new(sink: Arc<dyn QuerySink>) -> Self {
        Self { sink }
    }

    /// The sink events go to.
    pub fn sink(&self) -> &Arc<dyn QuerySink> {
        &self.sink
    }

    /// Runs `f` (which executes `stmt` and returns the rows it returned or affected and
    /// its result), reporting it. Failed statements are reported too, with 0 rows.
    pub fn run<T, E>(
        &self,
        span: Option<SpanId>,
        stmt: &Statement,
        f: impl FnOnce() -> Result<(u64, T), E>,
    ) -> Result<T, E> {
        let start = Instant::now();
        let result = f();
        self.report(span, stmt.sql, &stmt.params, start, result.as_ref().map_or(0, |(rows, _)| *rows));
        result.map(|(_, t)| t)
    }

    /// [`run`](Self::run) for an async driver.
    pub async fn run_async<T, E, Fut>(&self, span: Option<SpanId>, stmt: &Statement, fut: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<(u64, T), E>>,
    {
        let start = Instant::now();
        let result = fut.await;
        self.report(span, stmt.sql, &stmt.params, start, result.as_ref().map_or(0, |(rows, _)| *rows));
        result.map(|(_, t)| t)
    }

    /// Reports a statement that is not a [`Statement`] (a migration script).
    pub fn run_script<T, E>(
        &self,
        span: Option<SpanId>,
        sql: &str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let start = Instant::now();
        let result = f();
        self.report(span, sql, &[], start, 0);
        result
    }

    /// [`run_script`](Self::run_script) for an async driver.
    pub async fn run_script_async<T, E, Fut>(&self, span: Option<SpanId>, sql: &str, fut: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let start = Instant::now();
        let result = fut.await;
        self.report(span, sql, &[], start, 0);
        result
    }

    fn report(&self, span: Option<SpanId>, sql: &str, params: &[crate::Value], start: Instant, rows: u64) {
        let event = QueryEvent {
            sql,
            params_digest: params_digest(params),
            duration: start.elapsed(),
            rows,
            span,
            ended_at: None,
        };
        self.sink.record(&event);
    }
}
