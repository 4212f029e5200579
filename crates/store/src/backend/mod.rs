//! The [`Backend`] seam and its implementations.

use std::fmt;
use std::future::Future;

use mltb_query_analyzer::SpanId;

use crate::{Executor, Outcome, Result, Statement};

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod schema;
pub(crate) mod sqlite;

pub use schema::LATEST_VERSION;

/// Which database a backend talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// SQLite: one file, embedded.
    Sqlite,
    /// PostgreSQL: a server.
    Postgres,
}

/// What a database must do for the [`Store`](crate::Store): apply the schema, and run
/// statements (in one transaction when asked), each through the [`Executor`].
///
/// The store's logic and SQL are written once over this seam; a backend only knows
/// its driver, its dialect's DDL and how to bind [`Value`](crate::Value)s.
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// Which database this is.
    fn kind(&self) -> BackendKind;

    /// Brings the schema to [`LATEST_VERSION`] in one transaction and returns the
    /// version found before. Refuses, changing nothing, a database whose version is
    /// newer than this program knows ([`Error::NewerSchema`](crate::Error::NewerSchema)).
    fn migrate(&self, exec: &Executor) -> impl Future<Output = Result<i64>> + Send;

    /// Runs `statements` in order, each reported through `exec` within `span`, and
    /// returns one [`Outcome`] per statement. With `transaction`, all of them commit
    /// together or not at all, and the call returns after the commit.
    fn run(
        &self,
        exec: &Executor,
        span: Option<SpanId>,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> impl Future<Output = Result<Vec<Outcome>>> + Send;
}

/// Either backend, chosen at run time (from the bot's config).
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyBackend {
    /// SQLite.
    Sqlite(sqlite::SqliteBackend),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(postgres::PostgresBackend),
}

impl Backend for AnyBackend {
    fn kind(&self) -> BackendKind {
        match self {
            AnyBackend::Sqlite(b) => b.kind(),
            #[cfg(feature = "postgres")]
            AnyBackend::Postgres(b) => b.kind(),
        }
    }

    async fn migrate(&self, exec: &Executor) -> Result<i64> {
        match self {
            AnyBackend::Sqlite(b) => b.migrate(exec).await,
            #[cfg(feature = "postgres")]
            AnyBackend::Postgres(b) => b.migrate(exec).await,
        }
    }

    async fn run(
        &self,
        exec: &Executor,
        span: Option<SpanId>,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<Vec<Outcome>> {
        match self {
            AnyBackend::Sqlite(b) => b.run(exec, span, statements, transaction).await,
            #[cfg(feature = "postgres")]
            AnyBackend::Postgres(b) => b.run(exec, span, statements, transaction).await,
        }
    }
}
