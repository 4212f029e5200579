//! [`PostgresManager`]: tokio-postgres clients without TLS, each with a cache of prepared
//! statements.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, GenericClient, NoTls, Statement};

use crate::{Error, Result};

/// Statements each connection keeps prepared, by default.
pub const DEFAULT_STATEMENT_CACHE: usize = 256;

/// Opens `tokio_postgres::Client`s (no TLS; for a server on loopback or a private
/// network), each wrapped in a [`PgConnection`] with its own [`StatementCache`]. Each
/// client's connection task is spawned on the current runtime.
///
/// Validation runs an empty query (one round trip, no result set); a client whose
/// connection task has ended — the server closed it or the backend was terminated —
/// reports itself broken.
#[derive(Debug, Clone)]
pub struct PostgresManager {
    config: Config,
    statement_cache: usize,
    stats: Arc<StatementStats>,
}

impl PostgresManager {
    /// A manager for a connection string (`postgres://user@host/db` or
    /// `host=... user=...`); nothing is contacted yet.
    pub fn new(url: &str) -> Result<Self> {
        let config = url.parse::<Config>().map_err(|e| Error::invalid("postgres url", e.to_string()))?;
        Ok(Self::from_config(config))
    }

    /// A manager from a parsed config.
    pub fn from_config(config: Config) -> Self {
        Self { config, statement_cache: DEFAULT_STATEMENT_CACHE, stats: Arc::default() }
    }

    /// How many prepared statements each connection keeps (default
    /// [`DEFAULT_STATEMENT_CACHE`]); the least recently used one is closed to make room.
    /// 0 keeps none: [`PgConnection::prepare_cached`] then prepares every time.
    #[must_use]
    pub fn statement_cache(mut self, capacity: usize) -> Self {
        self.statement_cache = capacity;
        self
    }

    /// Hits and misses of the statement caches of every connection this manager (or a
    /// clone of it) opened.
    pub fn statement_stats(&self) -> &Arc<StatementStats> {
        &self.stats
    }
}

impl bb8::ManageConnection for PostgresManager {
    type Connection = PgConnection;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<PgConnection, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        });
        let statements = Arc::new(StatementCache::new(self.statement_cache, Arc::clone(&self.stats)));
        Ok(PgConnection { client, statements })
    }

    async fn is_valid(&self, conn: &mut PgConnection) -> Result<(), tokio_postgres::Error> {
        conn.client.simple_query("").await.map(drop)
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client.is_closed()
    }
}

/// A pooled PostgreSQL client and its prepared statements. Derefs to
/// [`tokio_postgres::Client`], so everything a client does works on it.
///
/// A query given as a `&str` costs tokio-postgres two round trips (prepare, then
/// execute); [`prepare_cached`](Self::prepare_cached) pays the first one once per
/// connection and statement text.
///
/// ```no_run
/// # async fn run(pool: &mltb_pool::Pool<mltb_pool::PostgresManager>) -> Result<(), Box<dyn std::error::Error>> {
/// let conn = pool.get().await?;
/// let stmt = conn.prepare_cached("SELECT name FROM users WHERE id = $1").await?;
/// let rows = conn.query(&stmt, &[&42_i64]).await?;
/// # let _ = rows; Ok(()) }
/// ```
#[derive(Debug)]
pub struct PgConnection {
    client: Client,
    statements: Arc<StatementCache>,
}

impl PgConnection {
    /// The statement prepared for `sql` on this connection, preparing it on a miss.
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        self.statements.prepare(&self.client, sql).await
    }

    /// This connection's statement cache. It is an `Arc` so that it can be held while a
    /// transaction borrows the client: statements prepared through a transaction stay
    /// valid on the connection after it ends.
    pub fn statements(&self) -> &Arc<StatementCache> {
        &self.statements
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// Hits and misses over every connection of one [`PostgresManager`].
#[derive(Debug, Default)]
pub struct StatementStats {
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

impl StatementStats {
    /// Statements found prepared.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Statements prepared because they were not.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Caches cleared by [`StatementCache::invalidate_on`].
    pub fn invalidations(&self) -> u64 {
        self.invalidations.load(Ordering::Relaxed)
    }
}

/// One connection's prepared statements by SQL text, least recently used evicted first.
///
/// A prepared statement keeps the result columns it was planned with: after a schema
/// change (`ALTER TABLE`) PostgreSQL refuses to run it ("cached plan must not change
/// result type"). Pass such errors to [`invalidate_on`](Self::invalidate_on), which
/// clears the cache so the next [`prepare`](Self::prepare) plans afresh.
#[derive(Debug)]
pub struct StatementCache {
    capacity: usize,
    entries: Mutex<Entries>,
    stats: Arc<StatementStats>,
}

#[derive(Debug, Default)]
struct Entries {
    by_sql: HashMap<String, (Statement, u64)>,
    /// Bumped on every use; an entry's stamp is its last use.
    clock: u64,
}

impl StatementCache {
    fn new(capacity: usize, stats: Arc<StatementStats>) -> Self {
        Self { capacity, entries: Mutex::default(), stats }
    }

    /// The statement for `sql`, prepared through `client` (the connection, or a
    /// transaction on it) if it is not cached.
    pub async fn prepare<C: GenericClient + Sync>(
        &self,
        client: &C,
        sql: &str,
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(stmt) = self.get(sql) {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(stmt);
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        let stmt = client.prepare(sql).await?;
        self.insert(sql, stmt.clone());
        Ok(stmt)
    }

    fn get(&self, sql: &str) -> Option<Statement> {
        let mut entries = self.entries.lock();
        entries.clock += 1;
        let now = entries.clock;
        entries.by_sql.get_mut(sql).map(|(stmt, used)| {
            *used = now;
            stmt.clone()
        })
    }

    fn insert(&self, sql: &str, stmt: Statement) {
        if self.capacity == 0 {
            return;
        }
        // Dropped after the lock: dropping the last clone of a statement closes it on the
        // server (a message queued on the connection).
        let evicted;
        {
            let mut entries = self.entries.lock();
            evicted = if entries.by_sql.len() >= self.capacity && !entries.by_sql.contains_key(sql) {
                let oldest = entries.by_sql.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
                oldest.and_then(|k| entries.by_sql.remove(&k))
            } else {
                None
            };
            entries.clock += 1;
            let now = entries.clock;
            entries.by_sql.insert(sql.to_owned(), (stmt, now));
        }
        drop(evicted);
    }

    /// Statements cached.
    pub fn len(&self) -> usize {
        self.entries.lock().by_sql.len()
    }

    /// Whether none is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every statement (closing those no one else holds).
    pub fn clear(&self) {
        let all = std::mem::take(&mut self.entries.lock().by_sql);
        drop(all);
    }

    /// Whether `error` says a prepared statement no longer fits the schema ("cached plan
    /// must not change result type") or no longer exists on the server.
    pub fn is_stale_error(error: &tokio_postgres::Error) -> bool {
        match error.code() {
            Some(code) if *code == SqlState::INVALID_SQL_STATEMENT_NAME => true,
            Some(code) if *code == SqlState::FEATURE_NOT_SUPPORTED => {
                error.as_db_error().is_some_and(|db| db.message().contains("cached plan"))
            }
            _ => false,
        }
    }

    /// Clears the cache if `error` [is stale](Self::is_stale_error); returns whether it
    /// did. The statement that failed can then be prepared again (outside a
    /// transaction, retried; inside one, the transaction is already aborted).
    pub fn invalidate_on(&self, error: &tokio_postgres::Error) -> bool {
        let stale = Self::is_stale_error(error);
        if stale {
            self.clear();
            self.stats.invalidations.fetch_add(1, Ordering::Relaxed);
        }
        stale
    }
}
