//! [`SqliteManager`]: rusqlite connections whose calls run on tokio's blocking pool.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;

use crate::{Error, Result};

/// Opens [`SqliteConnection`]s to one database file, in WAL mode with a busy timeout.
///
/// On connect: `journal_mode = WAL` (readers do not block the writer),
/// `synchronous = NORMAL` (durable at checkpoints, safe with WAL), `foreign_keys = ON`
/// and a busy timeout (default 5 s) so a writer waits for the lock instead of failing
/// with `SQLITE_BUSY`. Use a small pool ([`PoolConfig::sqlite`](crate::PoolConfig::sqlite)):
/// SQLite has one writer at a time.
#[derive(Debug, Clone)]
pub struct SqliteManager {
    path: PathBuf,
    busy_timeout: Duration,
}

impl SqliteManager {
    /// A manager for the database at `path` (created if missing).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), busy_timeout: Duration::from_secs(5) }
    }

    /// How long a statement waits for a lock held by another connection (default 5 s).
    pub fn busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }
}

impl bb8::ManageConnection for SqliteManager {
    type Connection = SqliteConnection;
    type Error = Error;

    async fn connect(&self) -> Result<SqliteConnection> {
        let path = self.path.clone();
        let busy_timeout = self.busy_timeout;
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let conn = Connection::open(&path)?;
            conn.busy_timeout(busy_timeout)?;
            // Returns the mode now in force ("memory" for in-memory databases).
            let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
            Ok(conn)
        })
        .await
        .map_err(|e| Error::Blocking(e.to_string()))??;
        Ok(SqliteConnection { conn: Some(conn) })
    }

    async fn is_valid(&self, conn: &mut SqliteConnection) -> Result<()> {
        conn.call(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))).await.map(drop)
    }

    fn has_broken(&self, conn: &mut SqliteConnection) -> bool {
        conn.is_broken()
    }
}

/// A pooled SQLite connection. Run statements with [`call`](Self::call), which moves
/// the connection to a blocking thread and back, so async threads never block on disk.
#[derive(Debug)]
pub struct SqliteConnection {
    // `None` after a call that panicked or was cancelled: the connection went with it.
    conn: Option<Connection>,
}

impl SqliteConnection {
    /// Runs `f` with the connection on tokio's blocking pool.
    ///
    /// If `f` panics, or the returned future is dropped before it finishes, the
    /// connection is lost: this and later calls fail with [`Error::Blocking`] and the
    /// pool discards the connection on return.
    pub async fn call<F, R>(&mut self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let mut conn = self
            .conn
            .take()
            .ok_or_else(|| Error::Blocking("the connection was lost by an earlier call".into()))?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut conn);
            (conn, result)
        })
        .await
        .map_err(|e| Error::Blocking(e.to_string()))?;
        self.conn = Some(conn);
        Ok(result?)
    }

    /// Whether the connection was lost by a call that panicked or was cancelled.
    pub fn is_broken(&self) -> bool {
        self.conn.is_none()
    }
}
