//! [`RedisLimiterBuilder`] and [`TieredRedisLimiterBuilder`], over the settings they share.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use mltb_pool::{Pool, PoolConfig, RedisManager};

use super::backend::Backend;
use super::rule::Rule;
use super::tiered::Tier;
use super::{Fallback, RedisLimiter, TieredRedisLimiter};
use crate::{Error, Limit, Quota, Result};

/// Where the limiter's connections come from.
#[derive(Debug, Clone)]
enum Connections {
    /// A pool of its own, built from this URL.
    Url(String),
    /// A pool shared with the rest of the program.
    Pool(Pool<RedisManager>),
}

/// The settings both builders share.
#[derive(Debug, Clone)]
struct Settings {
    connections: Connections,
    prefix: String,
    timeout: Duration,
    retry_interval: Duration,
    pool_max_size: u32,
    fallback: Fallback,
    fallback_max_keys: usize,
}

impl Settings {
    fn new(connections: Connections) -> Self {
        Self {
            connections,
            prefix: "ratelimit:".into(),
            timeout: Duration::from_millis(100),
            retry_interval: Duration::from_secs(1),
            pool_max_size: 16,
            fallback: Fallback::default(),
            fallback_max_keys: 100_000,
        }
    }

    /// Checks every setting that does not need a quota; `builder` names the caller.
    fn validate(&self, builder: &str) -> Result<()> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::config(
                "runtime",
                format!("{builder}::build was called outside a tokio runtime; expected inside one"),
            ));
        }
        if self.pool_max_size == 0 {
            return Err(Error::config("pool_max_size", "0; expected at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "0; expected a positive duration"));
        }
        if self.timeout > PoolConfig::MAX_DURATION {
            return Err(Error::config(
                "timeout",
                format!(
                    "{:?}; expected at most 30 years (mltb_pool::PoolConfig::MAX_DURATION)",
                    self.timeout
                ),
            ));
        }
        if self.fallback_max_keys == 0 {
            return Err(Error::config("fallback_max_keys", "0; expected at least 1"));
        }
        self.fallback.validate()?;
        Ok(())
    }

    fn rule(&self, quota: Quota) -> Result<Rule> {
        Rule::new(quota, self.fallback, self.fallback_max_keys)
    }

    /// The backend, once every other setting has been checked (a pool built from a URL
    /// starts connecting in the background).
    fn backend(self) -> Result<Backend> {
        let pool = match self.connections {
            Connections::Pool(pool) => pool,
            Connections::Url(url) => make_pool(&url, self.pool_max_size, self.timeout)?,
        };
        Ok(Backend::new(pool, self.prefix, self.timeout, self.retry_interval))
    }
}

/// A small pool for a rate limiter ([`PoolConfig::with_fallback`]): while Redis is down
/// a check is answered by the fallback at once instead of after the timeout.
fn make_pool(url: &str, max_size: u32, timeout: Duration) -> Result<Pool<RedisManager>> {
    let manager = RedisManager::from_url(url).map_err(|e| Error::config("redis url", e.to_string()))?;
    Pool::new(manager, PoolConfig::with_fallback(max_size, timeout))
        .map_err(|e| Error::config("redis pool", e.to_string()))
}

/// The setters both builders share, documented once.
macro_rules! shared_setters {
    () => {
        /// Prefix for every key in Redis (default `ratelimit:`). Limiters share budgets
        /// exactly when they share Redis, prefix and key (and tier).
        pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
            self.settings.prefix = prefix.into();
            self
        }

        /// Longest a check waits for Redis, connecting included (default 100 ms; more
        /// than zero and at most 30 years, [`mltb_pool::PoolConfig::MAX_DURATION`]) before
        /// it is answered by the fallback. It is also the connection timeout of a pool
        /// built from a URL; a shared pool keeps its own, but checks never wait longer
        /// than this.
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.settings.timeout = timeout;
            self
        }

        /// How long after a failure checks skip Redis and use the fallback (default 1 s).
        /// Zero tries Redis on every check.
        pub fn retry_interval(mut self, retry_interval: Duration) -> Self {
            self.settings.retry_interval = retry_interval;
            self
        }

        /// Most pooled connections of a pool built from a URL (default 16; at least 1).
        /// A shared pool keeps its own size.
        pub fn pool_max_size(mut self, max_size: u32) -> Self {
            self.settings.pool_max_size = max_size;
            self
        }

        /// What answers while Redis cannot (default [`Fallback::Fraction(1.0)`](Fallback::Fraction):
        /// each instance enforces the whole quota locally). Checked in `build()`.
        pub fn fallback(mut self, fallback: Fallback) -> Self {
            self.settings.fallback = fallback;
            self
        }

        /// Key cap of each local fallback limiter (default 100 000; at least 1); see
        /// [`KeyedLimiter`](crate::KeyedLimiter).
        pub fn fallback_max_keys(mut self, max_keys: usize) -> Self {
            self.settings.fallback_max_keys = max_keys;
            self
        }
    };
}

/// Configures a [`RedisLimiter`]; start with [`RedisLimiter::builder`] (a pool of its
/// own) or [`RedisLimiter::builder_with_pool`] (a shared pool).
#[derive(Debug, Clone)]
pub struct RedisLimiterBuilder {
    settings: Settings,
    quota: Quota,
}

impl RedisLimiterBuilder {
    pub(super) fn new(url: String, quota: Quota) -> Self {
        Self { settings: Settings::new(Connections::Url(url)), quota }
    }

    pub(super) fn with_pool(pool: Pool<RedisManager>, quota: Quota) -> Self {
        Self { settings: Settings::new(Connections::Pool(pool)), quota }
    }

    shared_setters!();

    /// Checks the settings and builds the limiter, without contacting Redis (so it
    /// starts even while Redis is down). Must be called inside a tokio runtime, which the
    /// pool uses for upkeep.
    ///
    /// # Errors
    ///
    /// A config error naming the setting: no runtime, a zero `timeout`, `pool_max_size`
    /// or `fallback_max_keys`, a `timeout` over 30 years, a `fallback` fraction outside `(0, 1]` (or so small the
    /// local period overflows), or a URL that is not a Redis URL.
    pub fn build(self) -> Result<RedisLimiter> {
        self.settings.validate("RedisLimiterBuilder")?;
        let rule = self.settings.rule(self.quota)?;
        let fallback = self.settings.fallback;
        Ok(RedisLimiter::from_parts(self.settings.backend()?, rule, fallback))
    }
}

/// Configures a [`TieredRedisLimiter`]; start with [`TieredRedisLimiter::builder`] or
/// [`TieredRedisLimiter::builder_with_pool`].
#[derive(Debug, Clone)]
pub struct TieredRedisLimiterBuilder<T> {
    settings: Settings,
    tiers: Vec<(T, Limit)>,
}

impl<T> TieredRedisLimiterBuilder<T> {
    pub(super) fn new(url: String) -> Self {
        Self { settings: Settings::new(Connections::Url(url)), tiers: Vec::new() }
    }

    pub(super) fn with_pool(pool: Pool<RedisManager>) -> Self {
        Self { settings: Settings::new(Connections::Pool(pool)), tiers: Vec::new() }
    }

    /// Sets the limit of `tier` (a [`Quota`] or [`Limit::Unlimited`]). The tier's
    /// `as_ref()` is its name in Redis: not empty, without `:`, unique.
    pub fn tier(mut self, tier: T, limit: impl Into<Limit>) -> Self {
        self.tiers.push((tier, limit.into()));
        self
    }

    shared_setters!();

    /// Checks the settings and builds the limiter, without contacting Redis. Must be
    /// called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`RedisLimiterBuilder::build`], and: no tier listed, a tier listed twice, or a
    /// tier name that is empty, contains `:`, or equals another tier's.
    pub fn build(self) -> Result<TieredRedisLimiter<T>>
    where
        T: Hash + Eq + AsRef<str> + Debug,
    {
        self.settings.validate("TieredRedisLimiterBuilder")?;
        if self.tiers.is_empty() {
            return Err(Error::config("tier", "none listed; expected at least one"));
        }
        let mut names: HashMap<&str, &T> = HashMap::with_capacity(self.tiers.len());
        for (tier, _) in &self.tiers {
            let name = tier.as_ref();
            if name.is_empty() || name.contains(':') {
                return Err(Error::config(
                    "tier",
                    format!("{tier:?} is named {name:?} in Redis; expected a non-empty name without ':'"),
                ));
            }
            if let Some(other) = names.insert(name, tier) {
                let what = if other == tier { "is listed twice" } else { "and another tier share the name" };
                return Err(Error::config(
                    "tier",
                    format!("{tier:?} {what} {name:?}; expected each tier once, each with its own name"),
                ));
            }
        }
        drop(names);
        let mut tiers = HashMap::with_capacity(self.tiers.len());
        for (tier, limit) in self.tiers {
            let slot = match limit {
                Limit::Unlimited => Tier::Unlimited,
                Limit::Quota(quota) => Tier::Limited {
                    bucket_prefix: format!("{}{}:", self.settings.prefix, tier.as_ref()),
                    rule: Box::new(self.settings.rule(quota)?),
                },
            };
            tiers.insert(tier, slot);
        }
        let fallback = self.settings.fallback;
        Ok(TieredRedisLimiter::from_parts(self.settings.backend()?, tiers, fallback))
    }
}
