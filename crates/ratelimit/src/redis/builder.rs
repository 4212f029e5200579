//! [`RedisLimiterBuilder`].

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use bb8::Pool;
use bb8_redis::RedisConnectionManager;
use parking_lot::RwLock;
use redis::Script;

use super::{MAX_TOLERANCE_MICROS, RedisLimiter, SCRIPT};
use crate::{Error, KeyedLimiter, MonotonicClock, Quota, Result};

/// Configures a [`RedisLimiter`]; start with [`RedisLimiter::builder`].
#[derive(Debug, Clone)]
pub struct RedisLimiterBuilder {
    url: String,
    quota: Quota,
    prefix: String,
    timeout: Duration,
    retry_interval: Duration,
    pool_max_size: u32,
    fallback_max_keys: usize,
}

impl RedisLimiterBuilder {
    pub(super) fn new(url: String, quota: Quota) -> Self {
        Self {
            url,
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
    /// is answered by the fallback.
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

    /// Most pooled connections (default 16).
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
            return Err(Error::InvalidConfig {
                what: "runtime",
                reason: "RedisLimiterBuilder::build was called outside a tokio runtime; expected inside one"
                    .into(),
            });
        }
        if self.pool_max_size == 0 {
            return Err(Error::InvalidConfig {
                what: "pool_max_size",
                reason: "0; expected at least 1".into(),
            });
        }
        if self.timeout.is_zero() {
            return Err(Error::InvalidConfig {
                what: "timeout",
                reason: "0; expected a positive duration".into(),
            });
        }
        let manager = RedisConnectionManager::new(self.url.as_str()).map_err(|e| Error::InvalidConfig {
            what: "redis url",
            reason: format!("{:?} is not usable ({e}); expected redis://HOST:PORT[/DB]", redact(&self.url)),
        })?;
        let t_micros = self.quota.emission_nanos().div_ceil(1000).max(1);
        let capacity = u64::from(self.quota.burst().get()).min(MAX_TOLERANCE_MICROS / t_micros).max(1);
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        let fallback = KeyedLimiter::builder(self.quota).max_keys(self.fallback_max_keys).build()?;
        let pool = make_pool(manager.clone(), self.pool_max_size, self.timeout);
        Ok(RedisLimiter {
            pool: RwLock::new((0, pool)),
            manager,
            pool_max_size: self.pool_max_size,
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
            fallback,
            fallbacks: AtomicU64::new(0),
            redis_checks: AtomicU64::new(0),
        })
    }
}

/// A pool that fails fast: no retrying a refused connection, no `PING` before each use
/// (a broken connection shows up as an error, and the limiter then replaces the pool).
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
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_string(),
    }
}
