//! [`Store`]: the bot's persistence over any [`Backend`].

mod cluster;
mod invalidate;
mod sql;
mod tasks;
mod users;
mod writes;

use std::fmt;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;
use tokio::sync::watch;

use mltb_batch::Batcher;
use mltb_cache::MemoryCache;
use mltb_pool::PoolConfig;
use mltb_query_analyzer::{NoopSink, QuerySink, SpanId, SpanKind};

use crate::backend::sqlite::{SqliteBackend, SqliteOptions};
use crate::{AnyBackend, Backend, Error, Executor, Outcome, Result, Role, Statement, UserSettings};
pub use cluster::{CancelRequest, Renewed, RoleLease};
use invalidate::CacheState;
pub use invalidate::{InvalidationStats, Invalidations};
pub(crate) use writes::Write;

/// How a [`Store`] is set up. Every setting has a default; see each method.
#[derive(Clone)]
pub struct StoreConfig {
    sink: Arc<dyn QuerySink>,
    pool: Option<PoolConfig>,
    cache_ttl: Duration,
    cache_bytes: usize,
    batch_max_items: usize,
    batch_max_delay: Duration,
    invalidation_channel: String,
    external_checkpoints: bool,
    instance: Option<String>,
    clock: WallClock,
}

/// An instance's wall clock: Unix milliseconds now.
#[derive(Clone)]
pub(crate) struct WallClock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WallClock")
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("pool", &self.pool)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_bytes", &self.cache_bytes)
            .field("batch_max_items", &self.batch_max_items)
            .field("batch_max_delay", &self.batch_max_delay)
            .field("invalidation_channel", &self.invalidation_channel)
            .field("external_checkpoints", &self.external_checkpoints)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            sink: Arc::new(NoopSink),
            pool: None,
            cache_ttl: Duration::from_secs(300),
            cache_bytes: 4 * 1024 * 1024,
            batch_max_items: 256,
            batch_max_delay: Duration::from_millis(20),
            invalidation_channel: invalidate::DEFAULT_CHANNEL.to_owned(),
            external_checkpoints: false,
            instance: None,
            clock: WallClock(Arc::new(crate::now_ms)),
        }
    }
}

impl StoreConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where every query is reported (default: nowhere). The bot passes its query
    /// analyzer here.
    pub fn sink(mut self, sink: Arc<dyn QuerySink>) -> Self {
        self.sink = sink;
        self
    }

    /// The connection pool's settings (default: [`PoolConfig::sqlite`] for SQLite, and
    /// for PostgreSQL at most 16 connections with 2 kept idle).
    pub fn pool(mut self, pool: PoolConfig) -> Self {
        self.pool = Some(pool);
        self
    }

    /// How long a cached authorization or settings read lives (default 5 minutes).
    /// Writes through this store invalidate at once; on PostgreSQL, so do writes by
    /// other stores on the same database (see [`invalidation_channel`](Self::invalidation_channel)).
    /// On SQLite this bounds how long a change made by another process goes unseen.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// The cache's budget in bytes (default 4 MiB).
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Most progress and state writes in one transaction (default 256).
    pub fn batch_max_items(mut self, items: usize) -> Self {
        self.batch_max_items = items;
        self
    }

    /// Longest a write waits for company while another batch is being written
    /// (default 20 ms; a write on an idle store goes at once).
    pub fn batch_max_delay(mut self, delay: Duration) -> Self {
        self.batch_max_delay = delay;
        self
    }

    /// The PostgreSQL `LISTEN`/`NOTIFY` channel on which stores sharing a database
    /// tell each other which cached keys a write changed (default
    /// `mltb_store_invalidate`). Every instance of one deployment must use the same
    /// name: 1 to 63 bytes of lowercase ASCII letters, digits and `_`, not starting
    /// with a digit (checked when the store opens). Unused on SQLite.
    pub fn invalidation_channel(mut self, channel: impl Into<String>) -> Self {
        self.invalidation_channel = channel.into();
        self
    }

    /// This instance's id, when several instances share one database: tasks are then
    /// claimed with leases ([`Store::claim_tasks`]) and every write to a claimed task
    /// carries its fencing token. 1 to 64 bytes ([`limits::INSTANCE`](crate::limits::INSTANCE))
    /// without NUL, unique per running instance; checked when the store opens
    /// ([`Error::Invalid`] or [`Error::TooLong`] naming `store.instance`).
    pub fn instance(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }

    /// This instance's wall clock, in Unix milliseconds (default: the system's,
    /// [`now_ms`](crate::now_ms)). The store stamps the rows it writes by it (`created_at`,
    /// `updated_at`, …), and on SQLite, where every instance is on the database's machine,
    /// it judges task leases and roles by it too. On PostgreSQL leases and roles are
    /// judged by the database server's clock alone, so that instances whose clocks drift
    /// apart never take each other's live leases. Tests set it to see a skewed instance.
    pub fn clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = WallClock(Arc::new(clock));
        self
    }

    /// SQLite: no connection of this store checkpoints the write-ahead log by itself
    /// (`PRAGMA wal_autocheckpoint = 0`), because a replicator does it after copying
    /// the log's frames (`mltb-backup`'s continuous protection). Without one the log
    /// only grows. Default `false`: SQLite checkpoints every 1000 pages. Unused on
    /// PostgreSQL.
    pub fn external_checkpoints(mut self, external: bool) -> Self {
        self.external_checkpoints = external;
        self
    }

    /// Checks the settings that nothing else checks before the database is opened.
    fn check(&self) -> Result<()> {
        if let Some(id) = &self.instance {
            crate::limits::check_name("store.instance", id, crate::limits::INSTANCE)?;
        }
        Ok(())
    }

    /// The SQLite backend's options from this config.
    fn sqlite(&self) -> SqliteOptions {
        SqliteOptions { autocheckpoint: !self.external_checkpoints }
    }
}

/// Which database to open, e.g. from the bot's config.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// An SQLite file (the embedded default: `<data dir>/mltb.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (the bot reads `DATABASE_URL`).
    Postgres(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    Role(i64),
    Chat(i64),
    Settings(i64),
}

#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Role(Option<Role>),
    Chat(bool),
    Settings(UserSettings),
}

/// What the write batcher's handler needs; it must not own the batcher (a cycle would
/// keep the worker alive forever).
#[derive(Debug)]
pub(crate) struct Shared<B> {
    pub(crate) backend: B,
    pub(crate) exec: Executor,
    /// The fencing tokens this instance holds (several instances on one database).
    pub(crate) guards: std::sync::Mutex<cluster::Guards>,
    /// This instance's wall clock ([`StoreConfig::clock`]).
    pub(crate) clock: WallClock,
}

impl<B> Shared<B> {
    /// Unix milliseconds now, by this instance's clock.
    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock.0)()
    }
}

struct Inner<B: Backend> {
    shared: Arc<Shared<B>>,
    cache: Arc<CacheState>,
    /// The channel invalidating writes notify on, when the backend listens for
    /// invalidations (PostgreSQL). `None` on SQLite.
    notify_channel: Option<String>,
    /// The backend's invalidation listener (PostgreSQL), stopped with the store.
    listener: Option<tokio::task::AbortHandle>,
    writes: Batcher<Write, Result<()>>,
    next_span: AtomicU64,
}

impl<B: Backend> Drop for Inner<B> {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

/// The bot's persistence: users and roles, authorized chats, user settings, tasks with
/// their files and uploaded parts, status messages and an append-only audit log.
///
/// Generic over its [`Backend`]: [`SqliteStore`], [`PostgresStore`], or [`AnyStore`]
/// when the backend is chosen at run time. Cheap to clone; clones share everything.
/// Every query goes through one [`Executor`] and is reported to the configured
/// [`QuerySink`]; [`span`](Self::span) groups a command's queries.
pub struct Store<B: Backend> {
    inner: Arc<Inner<B>>,
    span: Option<SpanId>,
}

/// A store on SQLite.
pub type SqliteStore = Store<SqliteBackend>;
/// A store on PostgreSQL.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type PostgresStore = Store<crate::PostgresBackend>;
/// A store on the backend named in the config.
pub type AnyStore = Store<AnyBackend>;

impl<B: Backend> Clone for Store<B> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner), span: self.span }
    }
}

impl<B: Backend> fmt::Debug for Store<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.shared.backend)
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the SQLite database at `path` (created if missing) and brings its schema
    /// up to date. Refuses a damaged file or one from a newer program, leaving it as it
    /// was.
    pub async fn open_sqlite(path: impl Into<PathBuf>, config: StoreConfig) -> Result<Self> {
        config.check()?;
        let pool = config.pool.clone().unwrap_or_else(PoolConfig::sqlite);
        let backend = SqliteBackend::open_with(path.into(), pool, config.sqlite()).await?;
        Self::with_backend(backend, config).await
    }
}

#[cfg(feature = "postgres")]
impl PostgresStore {
    /// Connects to the PostgreSQL database at `url` and brings its schema up to date.
    pub async fn connect_postgres(url: &str, config: StoreConfig) -> Result<Self> {
        config.check()?;
        let backend = crate::PostgresBackend::connect(url, postgres_pool(&config)).await?;
        Self::with_backend(backend, config).await
    }
}

#[cfg(feature = "postgres")]
fn postgres_pool(config: &StoreConfig) -> PoolConfig {
    config.pool.clone().unwrap_or_else(|| PoolConfig::new().max_size(16).min_idle(2))
}

impl AnyStore {
    /// Opens the database `db` names.
    pub async fn open(db: &Database, config: StoreConfig) -> Result<Self> {
        config.check()?;
        let backend = match db {
            Database::Sqlite(path) => {
                let pool = config.pool.clone().unwrap_or_else(PoolConfig::sqlite);
                AnyBackend::Sqlite(SqliteBackend::open_with(path, pool, config.sqlite()).await?)
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => {
                AnyBackend::Postgres(crate::PostgresBackend::connect(url, postgres_pool(&config)).await?)
            }
            #[cfg(not(feature = "postgres"))]
            Database::Postgres(_) => {
                return Err(Error::Invalid {
                    field: "database",
                    reason:
                        "PostgreSQL support is not built in: build mltb-store with the `postgres` feature"
                            .into(),
                });
            }
        };
        Self::with_backend(backend, config).await
    }
}

impl<B: Backend> Store<B> {
    /// A store over `backend`: applies migrations, then starts the write batcher (on the
    /// current tokio runtime) and the cache. When the backend listens for other stores'
    /// invalidations ([`Backend::listen_for_invalidation`]; PostgreSQL does) it starts
    /// the listener too, and fails if the backend refuses: on PostgreSQL, if it cannot
    /// connect and `LISTEN`, or if [`StoreConfig::invalidation_channel`] is not a valid
    /// name. Fails before any of that if [`StoreConfig::instance`] is empty, too long or
    /// contains NUL.
    pub async fn with_backend(backend: B, config: StoreConfig) -> Result<Self> {
        config.check()?;
        let exec = Executor::new(Arc::clone(&config.sink));
        let from = backend.migrate(&exec).await?;
        tracing::debug!(backend = ?backend.kind(), from, to = crate::LATEST_VERSION, "store schema ready");
        let guards = std::sync::Mutex::new(cluster::Guards::new(config.instance.clone()));
        let shared = Arc::new(Shared { backend, exec, guards, clock: config.clock.clone() });
        let cache = MemoryCache::builder_with_weigher(|_: &CacheKey, v: &Cached| match v {
            Cached::Settings(s) => {
                128 + s.upload_dest.as_ref().map_or(0, String::capacity)
                    + s.name_prefix.as_ref().map_or(0, String::capacity)
            }
            _ => 64,
        })
        .max_bytes(config.cache_bytes)
        .default_ttl(config.cache_ttl)
        .build()
        .map_err(|e| Error::Setup(e.to_string()))?;
        let handler_shared = Arc::clone(&shared);
        let writes = Batcher::builder()
            .max_items(config.batch_max_items)
            .max_delay(config.batch_max_delay)
            .build(move |items: Vec<Write>| {
                let shared = Arc::clone(&handler_shared);
                async move { shared.apply(items).await }
            })
            .map_err(|e| Error::Setup(e.to_string()))?;
        let (cache, notify_channel, listener) = Self::invalidation(&shared.backend, cache, &config).await?;
        let inner = Inner { shared, cache, notify_channel, listener, writes, next_span: AtomicU64::new(1) };
        Ok(Self { inner: Arc::new(inner), span: None })
    }

    /// Asks the backend to listen for other stores' invalidations (the open fails if
    /// it cannot). Without a listener (SQLite), a cache that is always trusted.
    #[allow(clippy::type_complexity)]
    async fn invalidation(
        backend: &B,
        cache: MemoryCache<CacheKey, Cached>,
        config: &StoreConfig,
    ) -> Result<(Arc<CacheState>, Option<String>, Option<tokio::task::AbortHandle>)> {
        // Untrusted until the listener says it is listening.
        let state = Arc::new(CacheState::new(cache, false));
        let channel = &config.invalidation_channel;
        match backend.listen_for_invalidation(channel, Invalidations::new(Arc::clone(&state))).await? {
            Some(listener) => Ok((state, Some(channel.clone()), Some(listener))),
            None => {
                state.trust_without_listener();
                Ok((state, None, None))
            }
        }
    }

    /// The backend (for its pool metrics, or SQLite's path).
    pub fn backend(&self) -> &B {
        &self.inner.shared.backend
    }

    /// Counters of the write batcher: `batches` is the number of write transactions.
    pub fn write_stats(&self) -> mltb_batch::Stats {
        self.inner.writes.stats()
    }

    /// Counters of the read cache.
    pub fn cache_stats(&self) -> mltb_cache::Stats {
        self.inner.cache.cache.stats()
    }

    /// Counters of the cross-instance invalidation listener (PostgreSQL; all zero on
    /// SQLite).
    pub fn invalidation_stats(&self) -> InvalidationStats {
        self.inner.cache.stats()
    }

    /// A receiver that changes whenever [`invalidation_stats`](Self::invalidation_stats)
    /// does: tests wait on it (`wait_for(|s| s.received > n)`) instead of sleeping.
    #[doc(hidden)]
    pub fn invalidation_watch(&self) -> watch::Receiver<InvalidationStats> {
        self.inner.cache.watch()
    }

    /// The span this handle's queries are reported in, if any.
    pub fn current_span(&self) -> Option<SpanId> {
        self.span
    }

    /// A handle whose queries are reported within a new span (a command, a request, a
    /// task) until it is dropped, so the query analyzer can judge them together.
    ///
    /// ```
    /// # async fn f(store: mltb_store::SqliteStore) -> mltb_store::Result<()> {
    /// use mltb_query_analyzer::SpanKind;
    /// let cmd = store.span(SpanKind::Command, "auth");
    /// let role = cmd.role(42).await?;
    /// let chat_ok = cmd.is_chat_authorized(-100).await?;
    /// drop(cmd); // the span ends
    /// # let _ = (role, chat_ok); Ok(()) }
    /// ```
    pub fn span(&self, kind: SpanKind, name: &str) -> Span<B> {
        let id = SpanId(self.inner.next_span.fetch_add(1, Ordering::Relaxed));
        self.inner.shared.exec.sink().span_start(id, kind, name);
        Span { store: Self { inner: Arc::clone(&self.inner), span: Some(id) } }
    }

    /// Waits until every write submitted so far is committed.
    pub async fn flush(&self) {
        self.inner.writes.flush().await;
    }

    /// Commits the writes queued so far and stops accepting new ones; later writes
    /// fail. Stops the invalidation listener (PostgreSQL); reads then bypass the cache,
    /// since other instances' writes would go unseen. Connections close when the last
    /// handle is dropped.
    pub async fn close(&self) {
        self.inner.writes.shutdown().await;
        if let Some(listener) = &self.inner.listener {
            listener.abort();
            self.inner.cache.distrust();
        }
    }

    pub(crate) async fn run(&self, statements: Vec<Statement>, transaction: bool) -> Result<Vec<Outcome>> {
        let shared = &self.inner.shared;
        shared.backend.run(&shared.exec, self.span, statements, transaction).await
    }

    pub(crate) async fn run_one(&self, statement: Statement) -> Result<Outcome> {
        let mut out = self.run(vec![statement], false).await?;
        out.pop().ok_or_else(|| Error::decode("(statement)", "the backend returned no outcome"))
    }

    /// A read through the cache; `load` runs on a miss (once for concurrent misses).
    pub(crate) async fn cached<F, Fut>(&self, key: CacheKey, load: F) -> Result<Cached>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Cached>> + Send,
    {
        let state = &self.inner.cache;
        if !state.trusted() {
            // The listener is not listening: a cached value could miss another
            // instance's write, so read the database.
            return load().await;
        }
        let generation = state.generation.load(Ordering::Acquire);
        let value = state.cache.get_or_load(key.clone(), load).await?;
        if state.generation.load(Ordering::Acquire) != generation {
            // A write landed while this value was loaded: it may predate the write.
            state.cache.remove(&key);
        }
        Ok(value)
    }

    /// Drops `key` from the cache after a write to what it caches.
    pub(crate) fn invalidate(&self, key: &CacheKey) {
        self.inner.cache.invalidate(key);
    }

    /// The statement that tells the other stores `key` changed, to run in the write's
    /// transaction (delivered only if it commits), when the backend listens
    /// (PostgreSQL). `None` on SQLite.
    pub(crate) fn notify(&self, key: &CacheKey) -> Option<Statement> {
        let channel = self.inner.notify_channel.as_ref()?;
        self.inner.shared.backend.notify_invalidation(channel, self.inner.cache.payload(key))
    }

    pub(crate) async fn submit(&self, write: Write) -> Result<()> {
        self.inner.writes.submit(write).await?
    }
}

/// A [`Store`] handle whose queries belong to one span; the span ends when this is
/// dropped. Derefs to the store.
pub struct Span<B: Backend> {
    store: Store<B>,
}

impl<B: Backend> fmt::Debug for Span<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span").field("id", &self.store.span).finish()
    }
}

impl<B: Backend> Deref for Span<B> {
    type Target = Store<B>;

    fn deref(&self) -> &Store<B> {
        &self.store
    }
}

impl<B: Backend> Drop for Span<B> {
    fn drop(&mut self) {
        if let Some(id) = self.store.span {
            self.store.inner.shared.exec.sink().span_end(id);
        }
    }
}
