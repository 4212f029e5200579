//! [`RedisCacheBuilder`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bb8::Pool;
use bb8_redis::RedisConnectionManager;
use parking_lot::RwLock;

use super::{Codec, Counters, Inner, RedisCache};
use crate::error::{Error, Result};
use crate::flight::Flights;

/// Builds a [`RedisCache`]; get one from [`RedisCache::builder`].
pub struct RedisCacheBuilder<K, V, C> {
    url: String,
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
            .field("url", &redact(&self.url))
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
        Self {
            url,
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

    /// The longest one call may take, connecting included (default 100 ms); past it a
    /// read is a miss and a write an error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most connections the pool opens (default 16).
    pub fn pool_max_size(mut self, max_size: u32) -> Self {
        self.pool_max_size = max_size;
        self
    }

    /// Replaces the codec.
    pub fn codec<C2>(self, codec: C2) -> RedisCacheBuilder<K, V, C2> {
        RedisCacheBuilder {
            url: self.url,
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
    /// [`Error::Config`] for a URL that is not a Redis URL, a zero timeout or pool size,
    /// or no tokio runtime.
    pub fn build(self) -> Result<RedisCache<K, V, C>>
    where
        K: std::hash::Hash + Eq + Clone,
        V: Clone,
        C: Codec<V>,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config("RedisCacheBuilder::build was called outside a tokio runtime".into()));
        }
        if self.pool_max_size == 0 {
            return Err(Error::Config("pool_max_size must be at least 1".into()));
        }
        if self.timeout.is_zero() {
            return Err(Error::Config("timeout must be positive".into()));
        }
        let manager = RedisConnectionManager::new(self.url.as_str()).map_err(|e| {
            Error::Config(format!(
                "redis url {:?} is not usable ({e}); expected redis://HOST:PORT[/DB]",
                redact(&self.url)
            ))
        })?;
        let pool = make_pool(manager.clone(), self.pool_max_size, self.timeout);
        Ok(RedisCache {
            inner: Arc::new(Inner {
                url: self.url,
                pool: RwLock::new((0, pool)),
                manager,
                pool_max_size: self.pool_max_size,
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

/// A pool that fails fast: no retrying a refused connection, no `PING` before each use
/// (a broken connection shows up as an error, and the cache then replaces the pool).
pub(super) fn make_pool(
    manager: RedisConnectionManager,
    max_size: u32,
    timeout: Duration,
) -> Pool<RedisConnectionManager> {
    Pool::builder()
        .max_size(max_size)
        .connection_timeout(timeout)
        .retry_connection(false)
        .test_on_check_out(false)
        .build_unchecked(manager)
}

/// The URL without a password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}
