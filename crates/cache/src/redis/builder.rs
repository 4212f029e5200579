//! [`RedisCacheBuilder`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use mltb_pool::{Pool, PoolConfig, RedisManager};

use super::{Codec, Counters, Inner, RedisCache};
use crate::error::{Error, Result};
use crate::flight::Flights;

/// Where the cache's connections come from.
#[derive(Clone)]
enum Connections {
    /// A pool of its own, built from the URL.
    Own,
    /// A pool shared with the rest of the program.
    Shared(Pool<RedisManager>),
}

/// Builds a [`RedisCache`]; get one from [`RedisCache::builder`] (a pool of its own) or
/// [`RedisCache::builder_with_pool`] (a shared pool).
pub struct RedisCacheBuilder<K, V, C> {
    url: String,
    connections: Connections,
    codec: C,
    namespace: String,
    default_ttl: Option<Duration>,
    timeout: Duration,
    pool_max_size: u32,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V, C: std::fmt::Debug> std::fmt::Debug for RedisCacheBuilder<K, V, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCacheBuilder")
            .field("url", &mltb_pool::redact_url(&self.url))
            .field("shared_pool", &matches!(self.connections, Connections::Shared(_)))
            .field("codec", &self.codec)
            .field("namespace", &self.namespace)
            .field("default_ttl", &self.default_ttl)
            .field("timeout", &self.timeout)
            .field("pool_max_size", &self.pool_max_size)
            .finish()
    }
}

impl<K, V, C> RedisCacheBuilder<K, V, C> {
    pub(super) fn new(url: String, codec: C) -> Self {
        Self::with_connections(url, Connections::Own, codec)
    }

    pub(super) fn with_pool(pool: Pool<RedisManager>, url: String, codec: C) -> Self {
        Self::with_connections(url, Connections::Shared(pool), codec)
    }

    fn with_connections(url: String, connections: Connections, codec: C) -> Self {
        Self {
            url,
            connections,
            codec,
            namespace: "cache:".into(),
            default_ttl: None,
            timeout: Duration::from_millis(100),
            pool_max_size: 16,
            _types: PhantomData,
        }
    }

    /// The prefix of every key (default `cache:`); give each kind of value its own.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// A TTL for values inserted without one (default: none).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// The longest one call may take, checkout and connecting included (default
    /// 100 ms; more than zero and at most 30 years, `mltb_pool::PoolConfig::MAX_DURATION`);
    /// past it a read is a miss and a write an error. It is also the connection
    /// timeout of a pool built from the URL; a shared pool keeps its own, but calls never
    /// wait longer than this.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most connections a pool built from the URL opens (default 16). A pool given
    /// to [`RedisCache::builder_with_pool`] keeps its own size.
    pub fn pool_max_size(mut self, max_size: u32) -> Self {
        self.pool_max_size = max_size;
        self
    }

    /// Replaces the codec.
    pub fn codec<C2>(self, codec: C2) -> RedisCacheBuilder<K, V, C2> {
        RedisCacheBuilder {
            url: self.url,
            connections: self.connections,
            codec,
            namespace: self.namespace,
            default_ttl: self.default_ttl,
            timeout: self.timeout,
            pool_max_size: self.pool_max_size,
            _types: PhantomData,
        }
    }

    /// Builds the cache; it connects lazily, so a Redis that is down now is not an error.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) for a URL that is not a Redis URL, a zero timeout or pool size,
    /// or no tokio runtime.
    pub fn build(self) -> Result<RedisCache<K, V, C>>
    where
        K: std::hash::Hash + Eq + Clone,
        V: Clone,
        C: Codec<V>,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::config(
                "runtime",
                "none",
                "RedisCacheBuilder::build to be called inside a tokio runtime",
            ));
        }
        if self.pool_max_size == 0 {
            return Err(Error::config("pool_max_size", 0, "at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "0s", "a positive duration"));
        }
        if self.timeout > PoolConfig::MAX_DURATION {
            // Each call's deadline is the clock's time plus this.
            return Err(Error::config(
                "timeout",
                format!("{:?}", self.timeout),
                "at most 30 years (mltb_pool::PoolConfig::MAX_DURATION)",
            ));
        }
        let manager = RedisManager::from_url(&self.url).map_err(|e| {
            Error::config(
                "url",
                mltb_pool::redact_url(&self.url),
                format!("a redis URL, redis://HOST:PORT[/DB] ({e})"),
            )
        })?;
        let pool = match self.connections {
            Connections::Shared(pool) => pool,
            Connections::Own => make_pool(manager, self.pool_max_size, self.timeout)?,
        };
        Ok(RedisCache {
            inner: Arc::new(Inner {
                url: self.url,
                pool,
                suspect: AtomicBool::new(false),
                namespace: self.namespace,
                default_ttl: self.default_ttl,
                timeout: self.timeout,
                codec: self.codec,
                counters: Counters::default(),
                flights: Flights::new(16),
                _values: PhantomData,
            }),
        })
    }
}

/// A small pool for a cache ([`PoolConfig::with_fallback`]): while Redis is down a read
/// is a miss at once instead of after the timeout. See `RedisCache`'s `# Connections` for
/// the idle connections that go stale with a broken one.
fn make_pool(manager: RedisManager, max_size: u32, timeout: Duration) -> Result<Pool<RedisManager>> {
    Pool::new(manager, PoolConfig::with_fallback(max_size, timeout))
        .map_err(|e| Error::config("pool", e, "settings mltb-pool accepts"))
}
