//! The Redis tier (L2): values through a [`Codec`], keys under a namespace, TTL by
//! `SET … PX`, and failures that become misses rather than errors on reads.

mod builder;
mod codec;

use std::fmt::{self, Display};
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mltb_pool::{Pool, Pooled, RedisManager};
use tokio::time::Instant;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::flight::Flights;

pub use builder::RedisCacheBuilder;
pub use codec::{Codec, JsonCodec};

/// A cache in Redis, shared by every process that uses the same namespace.
///
/// Reads never fail: an unreachable or slow Redis (past the builder's `timeout`) or an
/// undecodable value is a miss and a counted error. Writes report the failure, within the
/// same bounded wait. A Redis that comes back is used again without a restart. Keys are
/// `namespace + key.to_string()`.
///
/// # Connections
///
/// Connections come from an [`mltb_pool::Pool`] of [`RedisManager`]: one of its own
/// ([`builder`](Self::builder): at most
/// [`pool_max_size`](RedisCacheBuilder::pool_max_size) connections, one kept open, no
/// `PING` before each use, [`fail_fast`](mltb_pool::PoolConfig::fail_fast) so that while
/// Redis is known to be down a call fails at once instead of after the timeout), or one
/// shared with the rest of the program
/// ([`builder_with_pool`](Self::builder_with_pool)). A connection that broke during a
/// call (dropped socket, I/O error), or whose call got no answer within the timeout, is
/// closed by the pool when the call gives it back. Idle connections that went stale at
/// the same moment (Redis restarted) are not: so after a failure the cache `PING`s each
/// connection before use until one answers, and an outage costs one failed call, not one
/// per idle connection. The tiered cache's invalidations use a dedicated pub/sub
/// connection to the same URL, outside the pool.
pub struct RedisCache<K, V, C = JsonCodec> {
    inner: Arc<Inner<K, V, C>>,
}

struct Inner<K, V, C> {
    url: String,
    pool: Pool<RedisManager>,
    /// Set by a failed call: idle connections may all have gone stale together (e.g.
    /// Redis restarted), so each is `PING`ed before use until one answers.
    suspect: AtomicBool,
    namespace: String,
    default_ttl: Option<Duration>,
    timeout: Duration,
    codec: C,
    counters: Counters,
    flights: Flights<K, V>,
    _values: PhantomData<fn() -> V>,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    writes: AtomicU64,
}

/// One call to Redis: a command or a pipeline.
#[derive(Clone, Copy)]
enum Request<'a> {
    Cmd(&'a redis::Cmd),
    Pipeline(&'a redis::Pipeline),
}

/// A snapshot of a [`RedisCache`]'s counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Reads that found a decodable value.
    pub hits: u64,
    /// Reads that found nothing, failed, or found an undecodable value.
    pub misses: u64,
    /// Failed or timed-out Redis calls and undecodable values.
    pub errors: u64,
    /// Successful writes (`SET`).
    pub writes: u64,
}

impl RedisStats {
    /// `hits / (hits + misses)`, or 0 before the first read.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 { 0.0 } else { self.hits as f64 / total as f64 }
    }
}

impl<K, V, C> Clone for RedisCache<K, V, C> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<K, V, C> fmt::Debug for RedisCache<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("namespace", &self.inner.namespace)
            .field("default_ttl", &self.inner.default_ttl)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl<K, V> RedisCache<K, V, JsonCodec> {
    /// A builder for a cache at `url` (`redis://HOST:PORT[/DB]`) with the JSON codec.
    pub fn builder(url: impl Into<String>) -> RedisCacheBuilder<K, V, JsonCodec> {
        RedisCacheBuilder::new(url.into(), JsonCodec)
    }

    /// A builder for a cache taking its connections from `pool`, e.g. one Redis pool
    /// shared by the whole program, with the JSON codec. `url` names the same server:
    /// the [`TieredCache`](crate::TieredCache) opens its pub/sub connection for
    /// invalidations there, since a subscription cannot use a pooled connection.
    ///
    /// Calls still give up after the cache's [`timeout`](RedisCacheBuilder::timeout),
    /// whatever the pool's connection timeout. A pool with `test_on_checkout` on
    /// (mltb-pool's default) `PING`s before every call, doubling its round trips; the
    /// cache does not need it (see the type's `# Connections`), so turn it off for a
    /// pool used mostly by caches; and turn
    /// [`fail_fast`](mltb_pool::PoolConfig::fail_fast) on, or reads wait up to the
    /// timeout while Redis is down.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use mltb_cache::RedisCache;
    /// use mltb_pool::{Pool, PoolConfig, RedisManager};
    ///
    /// let url = "redis://127.0.0.1:6379/";
    /// let config = PoolConfig::new().test_on_checkout(false).fail_fast(true);
    /// let pool = Pool::new(RedisManager::new(url)?, config)?;
    /// let cache: RedisCache<u64, String> =
    ///     RedisCache::builder_with_pool(pool.clone(), url).namespace("users:").build()?;
    /// cache.insert(42, "ada".into(), None).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder_with_pool(
        pool: Pool<RedisManager>,
        url: impl Into<String>,
    ) -> RedisCacheBuilder<K, V, JsonCodec> {
        RedisCacheBuilder::with_pool(pool, url.into(), JsonCodec)
    }
}

impl<K, V, C> RedisCache<K, V, C>
where
    K: Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    fn redis_key(&self, key: &K) -> String {
        format!("{}{key}", self.inner.namespace)
    }

    /// Runs one command within the timeout, checkout included; on failure counts an
    /// error and marks the pool suspect (see the type's `# Connections`). A connection
    /// that broke is closed by the pool on return (its `RedisConnection` saw the error);
    /// one that did not answer in time is marked broken here, since it may be wedged.
    pub(crate) async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T> {
        self.run_request(Request::Cmd(&cmd)).await
    }

    /// As [`run`](Self::run), for a pipeline (one round trip).
    pub(crate) async fn run_pipeline<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T> {
        self.run_request(Request::Pipeline(pipe)).await
    }

    async fn run_request<T: redis::FromRedisValue>(&self, request: Request<'_>) -> Result<T> {
        let deadline = Instant::now() + self.inner.timeout;
        let why = match self.call(request, deadline).await {
            Ok(v) => return Ok(v),
            Err(why) => why,
        };
        self.inner.suspect.store(true, Ordering::Relaxed);
        self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(namespace = %self.inner.namespace, error = %why, "redis cache call failed");
        Err(Error::backend(why))
    }

    async fn call<T: redis::FromRedisValue>(
        &self,
        request: Request<'_>,
        deadline: Instant,
    ) -> std::result::Result<T, String> {
        let mut conn = self.checkout(deadline).await?;
        let reply = match request {
            Request::Cmd(cmd) => tokio::time::timeout_at(deadline, cmd.query_async::<T>(&mut *conn)).await,
            Request::Pipeline(pipe) => {
                tokio::time::timeout_at(deadline, pipe.query_async::<T>(&mut *conn)).await
            }
        };
        match reply {
            Ok(reply) => reply.map_err(|e| e.to_string()),
            Err(_elapsed) => {
                conn.mark_broken();
                Err(self.no_answer())
            }
        }
    }

    /// A connection for a call. The pool closes a connection that broke while checked
    /// out, but not idle ones that went stale with it: after a restart of Redis every
    /// idle connection would fail once, each a missed read. So after a failure
    /// connections are `PING`ed before use (stale ones fail at once and are closed) until
    /// one answers; a healthy cache pays nothing. This replaces replacing the whole pool
    /// after a failure, which cannot work on a pool shared with other code.
    async fn checkout(&self, deadline: Instant) -> std::result::Result<Pooled<'_, RedisManager>, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut conn =
                self.inner.pool.get_timeout(left).await.map_err(|e| format!("no connection: {e}"))?;
            if !self.inner.suspect.load(Ordering::Relaxed) {
                return Ok(conn);
            }
            match tokio::time::timeout_at(deadline, redis::cmd("PING").query_async::<()>(&mut *conn)).await {
                Ok(Ok(())) => {
                    self.inner.suspect.store(false, Ordering::Relaxed);
                    return Ok(conn);
                }
                // Broken: the pool closes it on drop; try the next one.
                Ok(Err(_)) if conn.is_broken() => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_elapsed) => {
                    conn.mark_broken();
                    return Err(self.no_answer());
                }
            }
        }
    }

    fn no_answer(&self) -> String {
        format!("no answer within {:?}", self.inner.timeout)
    }

    /// The value for `key`; a failure or an undecodable value is a miss (and a counted
    /// error).
    pub async fn get(&self, key: &K) -> Option<V> {
        let reply = self.run::<Option<Vec<u8>>>(redis::cmd("GET").arg(self.redis_key(key)).clone()).await;
        self.decode_counted(reply.ok().flatten())
    }

    /// The value for `key` with the time it has left to live (`None` for a value stored
    /// without a TTL), read in one round trip (`GET` and `PTTL` in one `MULTI`), so a
    /// copy kept elsewhere can expire with it. A failure or an undecodable value is a miss
    /// (and a counted error), as for [`get`](Self::get).
    pub async fn get_with_ttl(&self, key: &K) -> Option<(V, Option<Duration>)> {
        let redis_key = self.redis_key(key);
        let pipe = redis::pipe().atomic().cmd("GET").arg(&redis_key).cmd("PTTL").arg(&redis_key).clone();
        let (bytes, pttl) = match self.run_pipeline::<(Option<Vec<u8>>, i64)>(&pipe).await {
            // PTTL is -1 for a key without a TTL; -2 (no key) cannot come with a value
            // read in the same transaction.
            Ok((bytes, pttl)) if pttl >= -1 => (bytes, u64::try_from(pttl).ok().map(Duration::from_millis)),
            Ok(_) | Err(_) => (None, None),
        };
        self.decode_counted(bytes).map(|v| (v, pttl))
    }

    /// Decodes a value read from Redis, counting a hit, a miss or an undecodable value.
    fn decode_counted(&self, bytes: Option<Vec<u8>>) -> Option<V> {
        let found = bytes.and_then(|bytes| match self.inner.codec.decode(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(namespace = %self.inner.namespace, error = %e, "undecodable value in redis cache");
                None
            }
        });
        let counter = if found.is_some() { &self.inner.counters.hits } else { &self.inner.counters.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores `value` with `ttl`, or the default TTL when `None`.
    ///
    /// # Errors
    /// [`ErrorKind::Codec`](crate::ErrorKind::Codec) if the value cannot be encoded; [`ErrorKind::Backend`](crate::ErrorKind::Backend) if Redis fails
    /// or does not answer within the timeout.
    pub async fn insert(&self, key: K, value: V, ttl: Option<Duration>) -> Result<()> {
        let bytes = self.inner.codec.encode(&value)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.redis_key(&key)).arg(bytes);
        if let Some(ttl) = ttl.or(self.inner.default_ttl) {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            cmd.arg("PX").arg(ms);
        }
        self.run::<()>(cmd).await?;
        self.inner.counters.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes `key`; `true` if it existed.
    ///
    /// # Errors
    /// [`ErrorKind::Backend`](crate::ErrorKind::Backend) if Redis fails or does not answer within the timeout.
    pub async fn remove(&self, key: &K) -> Result<bool> {
        let n: u64 = self.run(redis::cmd("DEL").arg(self.redis_key(key)).clone()).await?;
        Ok(n > 0)
    }

    /// Single-flight read-through: concurrent misses on one key in this process run
    /// `loader` once; the value is written to Redis best effort (a failed write is
    /// logged, the value still returned).
    ///
    /// # Errors
    /// [`ErrorKind::Load`](crate::ErrorKind::Load) with the loader's error, shared by every waiter and not cached.
    pub async fn get_or_load<F, Fut, E>(&self, key: K, loader: F) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.inner
            .flights
            .load(
                key,
                |k, _recheck| async move { self.get(&k).await },
                |k, v| async move {
                    if let Err(e) = self.insert(k, v, None).await {
                        tracing::debug!(error = %e, "loaded value not written to redis");
                    }
                },
                loader,
            )
            .await
    }

    /// Publishes `message` on `channel` within the timeout (the tiered cache's
    /// invalidations).
    pub(crate) async fn publish(&self, channel: &str, message: String) -> Result<()> {
        self.run::<()>(redis::cmd("PUBLISH").arg(channel).arg(message).clone()).await
    }

    /// The server's URL (the tiered cache subscribes there).
    pub(crate) fn url(&self) -> &str {
        &self.inner.url
    }

    /// The longest one call may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The connection pool in use (clone it to share it; its
    /// [`metrics`](Pool::metrics) show how busy it is).
    pub fn pool(&self) -> &Pool<RedisManager> {
        &self.inner.pool
    }

    /// Counters since the cache was built.
    pub fn stats(&self) -> RedisStats {
        let c = &self.inner.counters;
        RedisStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
        }
    }

    /// The TTL given to values inserted without one.
    pub fn default_ttl(&self) -> Option<Duration> {
        self.inner.default_ttl
    }

    /// The prefix put before every key.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }
}

impl<K, V, C> Cache<K, V> for RedisCache<K, V, C>
where
    K: Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    async fn get(&self, key: &K) -> Option<V> {
        RedisCache::get(self, key).await
    }

    async fn insert(&self, key: K, value: V, ttl: Option<Duration>) -> Result<()> {
        RedisCache::insert(self, key, value, ttl).await
    }

    async fn remove(&self, key: &K) -> Result<bool> {
        RedisCache::remove(self, key).await
    }

    async fn get_or_load<F, Fut, E>(&self, key: K, loader: F) -> Result<V>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<V, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        RedisCache::get_or_load(self, key, loader).await
    }
}
