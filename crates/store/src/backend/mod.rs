//! The [`Backend`] seam and its implementations.

use std::fmt;
use std::future::Future;

use mltb_query_analyzer::SpanId;
use tokio::task::AbortHandle;

use crate::{Executor, Invalidations, Outcome, Result, Statement};

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
///
/// Two provided hooks, no-ops by default, let a backend shared by several processes
/// keep their read caches coherent: [`listen_for_invalidation`](Self::listen_for_invalidation)
/// hears other stores' writes, [`notify_invalidation`](Self::notify_invalidation) tells
/// them of this one's. PostgreSQL implements both (`LISTEN`/`NOTIFY`); SQLite keeps the
/// defaults, and its cache relies on the TTL for changes made by another process.
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

    /// Starts hearing, on `channel`, the cache invalidations other stores on the same
    /// database send, and delivering them to `invalidations`; returns the handle that
    /// stops the listener (the store aborts it when it closes or is dropped), or `None`
    /// when this backend cannot hear other processes' writes (the default).
    ///
    /// A backend that returns a listener must be listening when this returns (calling
    /// [`Invalidations::listening`]), so that no write after the store opens goes
    /// unheard, and must call [`Invalidations::lost`] whenever it may miss one. The store
    /// then trusts its cache only while the listener listens, and adds
    /// [`notify_invalidation`](Self::notify_invalidation)'s statement to its writes.
    ///
    /// # Errors
    /// Opening the store fails with this error: a bad channel name, or no connection.
    fn listen_for_invalidation(
        &self,
        channel: &str,
        invalidations: Invalidations,
    ) -> impl Future<Output = Result<Option<AbortHandle>>> + Send {
        let _ = (channel, invalidations);
        std::future::ready(Ok(None))
    }

    /// The statement that tells the stores listening on `channel` that the key named by
    /// `payload` changed, run in the writing transaction so that it is delivered only if
    /// the write commits. `None` (the default) for a backend that does not listen.
    fn notify_invalidation(&self, channel: &str, payload: String) -> Option<Statement> {
        let _ = (channel, payload);
        None
    }
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

    async fn listen_for_invalidation(
        &self,
        channel: &str,
        invalidations: Invalidations,
    ) -> Result<Option<AbortHandle>> {
        match self {
            AnyBackend::Sqlite(b) => b.listen_for_invalidation(channel, invalidations).await,
            #[cfg(feature = "postgres")]
            AnyBackend::Postgres(b) => b.listen_for_invalidation(channel, invalidations).await,
        }
    }

    fn notify_invalidation(&self, channel: &str, payload: String) -> Option<Statement> {
        match self {
            AnyBackend::Sqlite(b) => b.notify_invalidation(channel, payload),
            #[cfg(feature = "postgres")]
            AnyBackend::Postgres(b) => b.notify_invalidation(channel, payload),
        }
    }
}
