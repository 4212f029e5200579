//! [`RedisLimiterBuilder`].

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use mltb_pool::{Pool, PoolConfig, RedisManager};
use redis::Script;

use super::{MAX_TOLERANCE_MICROS, RedisLimiter, SCRIPT};
use crate::{Error, KeyedLimiter, MonotonicClock, Quota, Result};

/// Where the limiter's connections come from.
#[derive(Debug, Clone)]
enum Connections {
    /// A pool of its own, built from this URL.
    Url(String),
    /// A pool shared with the rest of the program.
    Pool(Pool<RedisManager>),
}

/// Configures a [`RedisLimiter`]; start with [`RedisLimiter::builder`] (a pool of its
/// own) or [`RedisLimiter::builder_with_pool`] (a shared pool).
#[derive(Debug, Clone)]
pub struct RedisLimiterBuilder {
    connections: Connections,
    quota: Quota,
    prefix: String,
    timeout: Duration,
    retry_interval: Duration,
    pool_max_size: u32,
    fallback_max_keys: usize,
}

impl RedisLimiterBuilder {
    pub(super) fn new(url: String, quota: Quota) -> Self {
        Self::with_connections(Connections::Url(url), quota)
    }

    pub(super) fn with_pool(pool: Pool<RedisManager>, quota: Quota) -> Self {
        Self::with_connections(Connections::Pool(pool), quota)
    }

    fn with_connections(connections: Connections, quota: Quota) -> Self {
        Self {
            connections,
            quota,
            prefix: "ratelimit:".into(),
            timeout: Duration::from_millis(100),
            retry_interval: Duration::from_secs(1),
            pool_max_size: 16,
            fallback_max_keys: 100_000,
        }
    }

    /// Prefix for every key in Redis (default `ratelimit:`). Limiters share budgets
    /// exactly when they share Redis, prefix and key.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Longest a check waits for Redis, connecting included (default 100 ms) before it
    /// is answered by the fallback. It is also the connection timeout of a pool built
    /// from a URL; a shared pool keeps its own, but checks never wait longer than this.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long after a failure checks skip Redis and use the fallback (default 1 s).
    /// Zero tries Redis on every check.
    pub fn retry_interval(mut self, retry_interval: Duration) -> Self {
        self.retry_interval = retry_interval;
        self
    }

    /// Most pooled connections of a pool built from a URL (default 16). A pool given to
    /// [`RedisLimiter::builder_with_pool`] keeps its own size.
    pub fn pool_max_size(mut self, max_size: u32) -> Self {
        self.pool_max_size = max_size;
        self
    }

    /// Key cap of the local fallback limiter (default 100 000); see [`KeyedLimiter`].
    pub fn fallback_max_keys(mut self, max_keys: usize) -> Self {
        self.fallback_max_keys = max_keys;
        self
    }

    /// Builds the limiter without contacting Redis (so it starts even while Redis is
    /// down). Must be called inside a tokio runtime, which the pool uses for upkeep.
    pub fn build(self) -> Result<RedisLimiter> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::config(
                "runtime",
                "RedisLimiterBuilder::build was called outside a tokio runtime; expected inside one",
            ));
        }
        if self.pool_max_size == 0 {
            return Err(Error::config("pool_max_size", "0; expected at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "0; expected a positive duration"));
        }
        let pool = match self.connections {
            Connections::Pool(pool) => pool,
            Connections::Url(url) => make_pool(&url, self.pool_max_size, self.timeout)?,
        };
        let t_micros = self.quota.emission_nanos().div_ceil(1000).max(1);
        let capacity = u64::from(self.quota.burst().get()).min(MAX_TOLERANCE_MICROS / t_micros).max(1);
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        let fallback = KeyedLimiter::builder(self.quota).max_keys(self.fallback_max_keys).build()?;
        Ok(RedisLimiter {
            pool,
            script: Script::new(SCRIPT),
            prefix: self.prefix,
            quota: self.quota,
            t_micros,
            tau_micros: t_micros.saturating_mul(u64::from(capacity)),
            capacity,
            timeout: self.timeout,
            retry_interval: self.retry_interval,
            clock: MonotonicClock::new(),
            down_until: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            suspect: AtomicBool::new(false),
            fallback,
            fallbacks: AtomicU64::new(0),
            redis_checks: AtomicU64::new(0),
        })
    }
}

/// A small pool for a rate limiter ([`PoolConfig::with_fallback`]): while Redis is down
/// a check is answered by the fallback at once instead of after the timeout.
fn make_pool(url: &str, max_size: u32, timeout: Duration) -> Result<Pool<RedisManager>> {
    let manager = RedisManager::from_url(url)
        .map_err(|e| Error::config("redis url", e.to_string()))?;
    Pool::new(manager, PoolConfig::with_fallback(max_size, timeout))
        .map_err(|e| Error::config("redis pool", e.to_string()))
}
