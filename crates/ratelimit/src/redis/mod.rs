//! Limiters whose state lives in Redis, so every process shares one budget per key:
//! [`RedisLimiter`] (one quota) and [`TieredRedisLimiter`] (a quota per user tier).

mod backend;
mod builder;
mod decision;
mod fallback;
mod rule;
mod tiered;

use std::time::Duration;

use mltb_pool::{Pool, RedisManager};

use self::backend::Backend;
pub use self::builder::{RedisLimiterBuilder, TieredRedisLimiterBuilder};
pub use self::decision::{Decision, RedisStats, Source};
pub use self::fallback::Fallback;
use self::rule::Rule;
pub use self::tiered::TieredRedisLimiter;
use crate::{Denied, KeyedLimiter, Quota};

const SCRIPT: &str = include_str!("gcra.lua");
const SCRIPT_ALL: &str = include_str!("gcra_all.lua");
const SCRIPT_HOLD: &str = include_str!("gcra_hold.lua");

/// Keeps `T * burst + now` exact in Lua's doubles (2^53 µs).
const MAX_TOLERANCE_MICROS: u64 = 1 << 52;

/// A GCRA limiter whose state lives in Redis, so every process using the same Redis and
/// key prefix shares one budget per key.
///
/// Each check is one `EVALSHA` round trip (the script is loaded on first use; `EVAL`
/// fallback on `NOSCRIPT`). The script reads the server's clock (`TIME`), so the
/// processes' clocks need not agree, and stores the TAT with a `PX` expiry, so a key
/// vanishes once its bucket is full again. Times in Redis have microsecond resolution.
/// The bucket of `key` is the Redis key `{prefix}{key}`.
///
/// For a quota per user tier, shared the same way, see [`TieredRedisLimiter`].
///
/// # When Redis is unreachable
///
/// A check that fails (no connection, an error, or no answer within the
/// [timeout](RedisLimiterBuilder::timeout)) is answered by the
/// [`fallback`](RedisLimiterBuilder::fallback), and
/// [`fallback_count`](Self::fallback_count) goes up. By default
/// ([`Fallback::Fraction(1.0)`](Fallback::Fraction)) each process enforces the whole
/// quota on its own, so N processes may admit up to N times the quota until Redis is
/// back; `Fallback::Fraction(1.0 / N)` keeps the total near the quota, and
/// [`Fallback::Deny`] / [`Fallback::Allow`] fail closed / open.
/// For [`retry_interval`](RedisLimiterBuilder::retry_interval) after a failure, checks
/// go straight to the fallback; the next check after it tries Redis again, so a Redis
/// that comes back is used again without a restart. The limiter's own pool is built
/// with [`fail_fast`](mltb_pool::PoolConfig::fail_fast): while Redis is known to be
/// down a check that tries it gets no connection at once (one check at a time probes
/// with a connect attempt) and goes to the fallback without waiting for the timeout.
///
/// # Connections
///
/// Connections come from an [`mltb_pool::Pool`] of [`RedisManager`]: one of its own
/// ([`builder`](Self::builder): at most
/// [`pool_max_size`](RedisLimiterBuilder::pool_max_size) connections, one kept open, no
/// `PING` before each use), or one shared with the rest of the program
/// ([`builder_with_pool`](Self::builder_with_pool)). A connection that broke during a
/// check (dropped socket, I/O error), or whose check got no answer within the timeout,
/// is closed by the pool when the check gives it back. Idle connections that went stale
/// at the same moment (Redis restarted) are not: so after a failure the limiter `PING`s
/// each connection before use until one answers, and an outage costs one failed check,
/// not one per idle connection.
///
/// ```no_run
/// # async fn demo() -> mltb_ratelimit::Result<()> {
/// use mltb_ratelimit::{Fallback, RedisLimiter};
///
/// let limiter = RedisLimiter::builder("redis://127.0.0.1:6379/", "10/s".parse()?)
///     .prefix("mybot:rl:")
///     .fallback(Fallback::Fraction(0.25)) // four instances share the quota
///     .build()?;
/// let decision = limiter.check("user:42").await;
/// if decision.limited {
///     println!("retry after {:?}", decision.retry_after);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RedisLimiter {
    backend: Backend,
    rule: Rule,
    fallback: Fallback,
}

impl RedisLimiter {
    /// A builder for a limiter on the Redis at `url` enforcing `quota` per key.
    pub fn builder(url: impl Into<String>, quota: Quota) -> RedisLimiterBuilder {
        RedisLimiterBuilder::new(url.into(), quota)
    }

    /// A builder for a limiter taking its connections from `pool`, e.g. one Redis pool
    /// shared by the whole program, enforcing `quota` per key.
    ///
    /// Checks still give up after the limiter's
    /// [`timeout`](RedisLimiterBuilder::timeout), whatever the pool's connection timeout.
    /// A pool with `test_on_checkout` on (mltb-pool's default) `PING`s before every
    /// check, doubling its round trips; the limiter does not need it (see the type's
    /// `# Connections`), so turn it off for a pool used mostly by limiters; and turn
    /// [`fail_fast`](mltb_pool::PoolConfig::fail_fast) on, or checks wait up to the
    /// timeout while Redis is down.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use mltb_pool::{Pool, PoolConfig, RedisManager};
    /// use mltb_ratelimit::RedisLimiter;
    ///
    /// let config = PoolConfig::new().test_on_checkout(false).fail_fast(true);
    /// let pool = Pool::new(RedisManager::new("redis://127.0.0.1:6379/")?, config)?;
    /// let limiter = RedisLimiter::builder_with_pool(pool.clone(), "10/s".parse()?).build()?;
    /// assert!(limiter.check("user:42").await.is_admitted());
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder_with_pool(pool: Pool<RedisManager>, quota: Quota) -> RedisLimiterBuilder {
        RedisLimiterBuilder::with_pool(pool, quota)
    }

    fn from_parts(backend: Backend, rule: Rule, fallback: Fallback) -> Self {
        Self { backend, rule, fallback }
    }

    /// The quota enforced per key.
    pub fn quota(&self) -> Quota {
        self.rule.quota
    }

    /// The prefix put before every key in Redis.
    pub fn prefix(&self) -> &str {
        &self.backend.prefix
    }

    /// The connection pool in use (clone it to share it; its
    /// [`metrics`](Pool::metrics) show how busy it is).
    pub fn pool(&self) -> &Pool<RedisManager> {
        &self.backend.pool
    }

    /// What answers while Redis cannot.
    pub fn fallback(&self) -> Fallback {
        self.fallback
    }

    /// The local limiter that answers while Redis cannot, unless the fallback is
    /// [`Deny`](Fallback::Deny) or [`Allow`](Fallback::Allow).
    pub fn local_limiter(&self) -> Option<&KeyedLimiter<String>> {
        self.rule.local_limiter()
    }

    /// Checks answered by the fallback because Redis could not answer.
    pub fn fallback_count(&self) -> u64 {
        self.backend.stats().fallback
    }

    /// Checks answered by Redis.
    pub fn redis_count(&self) -> u64 {
        self.backend.stats().redis
    }

    /// How checks were answered so far.
    pub fn stats(&self) -> RedisStats {
        self.backend.stats()
    }

    /// Takes one cell for `key`. Always answers (from the fallback if need be).
    pub async fn check(&self, key: &str) -> Decision {
        match self.check_n(key, 1).await {
            Ok(decision) => decision,
            // Unreachable: the capacity is at least 1, so one cell always fits.
            Err(_) => Decision::new(true, 0, 0, Duration::ZERO, Duration::ZERO, Source::Fallback),
        }
    }

    /// Takes `n` cells for `key`; fails only if `n` exceeds the burst.
    #[tracing::instrument(level = "debug", skip_all, fields(key = key, n = n))]
    pub async fn check_n(&self, key: &str, n: u32) -> Result<Decision, Denied> {
        let redis_key = format!("{}{key}", self.backend.prefix);
        self.backend.check(&self.rule, &redis_key, key, n).await
    }
}
