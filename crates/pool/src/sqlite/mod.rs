//! [`SqliteManager`]: rusqlite connections whose calls run on tokio's blocking pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use crate::{Error, ErrorKind, Result};

/// Opens [`SqliteConnection`]s to one database file, in WAL mode with a busy timeout.
///
/// On connect: `journal_mode = WAL` (readers do not block the writer),
/// `synchronous = NORMAL` (durable at checkpoints, safe with WAL), `foreign_keys = ON`
/// and a busy timeout (default 5 s) so a writer waits for the lock instead of failing
/// with `SQLITE_BUSY`. Then the [`on_connect`](Self::on_connect) hook, if any. Use a
/// small pool ([`PoolConfig::sqlite`](crate::PoolConfig::sqlite)): SQLite has one writer
/// at a time.
#[derive(Clone)]
pub struct SqliteManager {
    path: PathBuf,
    busy_timeout: Duration,
    on_connect: Option<OnConnect>,
}

/// What [`SqliteManager::on_connect`] runs on each new connection.
type OnConnect = Arc<dyn Fn(&mut Connection) -> rusqlite::Result<()> + Send + Sync>;

impl std::fmt::Debug for SqliteManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteManager")
            .field("path", &self.path)
            .field("busy_timeout", &self.busy_timeout)
            .field("on_connect", &self.on_connect.is_some())
            .finish()
    }
}

impl SqliteManager {
    /// The longest [`busy_timeout`](Self::busy_timeout): `i32::MAX` milliseconds (about
    /// 24.8 days), since SQLite takes the timeout as a 32-bit count of milliseconds.
    pub const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

    /// A manager for the database at `path` (created if missing).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), busy_timeout: Duration::from_secs(5), on_connect: None }
    }

    /// Runs `hook` on every new connection after the defaults (on the blocking pool),
    /// for per-connection settings such as `PRAGMA synchronous = FULL`; an error fails
    /// the connect.
    ///
    /// ```
    /// use mltb_pool::SqliteManager;
    ///
    /// let manager = SqliteManager::new("bot.db")
    ///     .on_connect(|c| c.execute_batch("PRAGMA synchronous = FULL;"));
    /// # let _ = manager;
    /// ```
    #[must_use]
    pub fn on_connect<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut Connection) -> rusqlite::Result<()> + Send + Sync + 'static,
    {
        self.on_connect = Some(Arc::new(hook));
        self
    }

    /// How long a statement waits for a lock held by another connection (default 5 s;
    /// at most [`MAX_BUSY_TIMEOUT`](Self::MAX_BUSY_TIMEOUT)). A longer one fails every
    /// connect with [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming
    /// `busy_timeout`, which [`Pool::connect`](crate::Pool::connect) returns as it is.
    pub fn busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }
}

impl bb8::ManageConnection for SqliteManager {
    type Connection = SqliteConnection;
    type Error = Error;

    async fn connect(&self) -> Result<SqliteConnection> {
        // rusqlite panics on a timeout that does not fit SQLite's milliseconds.
        if self.busy_timeout > Self::MAX_BUSY_TIMEOUT {
            return Err(Error::invalid(
                "busy_timeout",
                format!(
                    "is {:?}; expected at most {:?} (SqliteManager::MAX_BUSY_TIMEOUT: SQLite counts it in 32-bit milliseconds)",
                    self.busy_timeout,
                    Self::MAX_BUSY_TIMEOUT
                ),
            ));
        }
        let path = self.path.clone();
        let busy_timeout = self.busy_timeout;
        let on_connect = self.on_connect.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let mut conn = Connection::open(&path)?;
            conn.busy_timeout(busy_timeout)?;
            // Returns the mode now in force ("memory" for in-memory databases).
            let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
            if let Some(hook) = on_connect {
                hook(&mut conn)?;
            }
            Ok(conn)
        })
        .await
        .map_err(|e| Error::from(ErrorKind::Blocking(e.to_string())))??;
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
    /// connection is lost: this and later calls fail with [`ErrorKind::Blocking`](crate::ErrorKind::Blocking) and the
    /// pool discards the connection on return.
    pub async fn call<F, R>(&mut self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let mut conn = self.conn.take().ok_or_else(|| {
            Error::from(ErrorKind::Blocking("the connection was lost by an earlier call".into()))
        })?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut conn);
            (conn, result)
        })
        .await
        .map_err(|e| Error::from(ErrorKind::Blocking(e.to_string())))?;
        self.conn = Some(conn);
        Ok(result?)
    }

    /// Whether the connection was lost by a call that panicked or was cancelled.
    pub fn is_broken(&self) -> bool {
        self.conn.is_none()
    }
}
