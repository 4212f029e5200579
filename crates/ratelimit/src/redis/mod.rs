//! [`RedisLimiter`]: one budget shared by many processes, GCRA in a Redis script.

mod builder;
mod decision;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bb8::Pool;
use bb8_redis::RedisConnectionManager;
use parking_lot::RwLock;
use redis::Script;

pub use self::builder::RedisLimiterBuilder;
pub use self::decision::{Decision, Source};
use crate::{Clock, Denied, KeyedLimiter, MonotonicClock, Quota, RateLimiter};

const SCRIPT: &str = include_str!("gcra.lua");

/// Keeps `T * burst + now` exact in Lua's doubles (2^53 µs).
const MAX_TOLERANCE_MICROS: u64 = 1 << 52;

/// A GCRA limiter whose state lives in Redis, so every process using the same Redis and
/// key prefix shares one budget per key.
///
/// Each check is one `EVALSHA` round trip (the script is loaded on first use; `EVAL`
/// fallback on `NOSCRIPT`). The script reads the server's clock (`TIME`), so the
/// processes' clocks need not agree, and stores the TAT with a `PX` expiry, so a key
/// vanishes once its bucket is full again. Times in Redis have microsecond resolution.
///
/// # When Redis is unreachable
///
/// A check that fails (no connection, an error, or no answer within the
/// [timeout](RedisLimiterBuilder::timeout)) is answered by a local [`KeyedLimiter`] with
/// the same quota, and [`fallback_count`](Self::fallback_count) goes up: the limiter
/// fails open to *local* limits, not to no limits. Each process then enforces the quota
/// on its own, so N processes may admit up to N times the quota until Redis is back.
/// For [`retry_interval`](RedisLimiterBuilder::retry_interval) after a failure, checks
/// go straight to the fallback; the next check after it tries Redis again, so a Redis
/// that comes back is used again without a restart. Connections that broke are dropped
/// by replacing the pool.
///
/// ```no_run
/// # async fn demo() -> mltb_ratelimit::Result<()> {
/// use mltb_ratelimit::RedisLimiter;
///
/// let limiter = RedisLimiter::builder("redis://127.0.0.1:6379/", "10/s".parse()?)
///     .prefix("mybot:rl:")
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
    /// The pool and its generation, bumped each time it is replaced.
    pool: RwLock<(u64, Pool<RedisConnectionManager>)>,
    manager: RedisConnectionManager,
    pool_max_size: u32,
    script: Script,
    prefix: String,
    quota: Quota,
    t_micros: u64,
    tau_micros: u64,
    capacity: u32,
    timeout: Duration,
    retry_interval: Duration,
    clock: MonotonicClock,
    /// Clock reading before which checks skip Redis.
    down_until: AtomicU64,
    healthy: AtomicBool,
    fallback: KeyedLimiter<String>,
    fallbacks: AtomicU64,
    redis_checks: AtomicU64,
}

impl RedisLimiter {
    /// A builder for a limiter on the Redis at `url` enforcing `quota` per key.
    pub fn builder(url: impl Into<String>, quota: Quota) -> RedisLimiterBuilder {
        RedisLimiterBuilder::new(url.into(), quota)
    }

    /// The quota enforced per key.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The prefix put before every key in Redis.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection pool in use (it is replaced after connection failures).
    pub fn pool(&self) -> Pool<RedisConnectionManager> {
        self.pool.read().1.clone()
    }

    /// Checks answered by the local fallback because Redis could not answer.
    pub fn fallback_count(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Checks answered by Redis.
    pub fn redis_count(&self) -> u64 {
        self.redis_checks.load(Ordering::Relaxed)
    }

    /// The local limiter used while Redis is unreachable.
    pub fn fallback(&self) -> &KeyedLimiter<String> {
        &self.fallback
    }

    /// Takes one cell for `key`. Always answers (from the fallback if need be).
    pub async fn check(&self, key: &str) -> Decision {
        match self.check_n(key, 1).await {
            Ok(decision) => decision,
            // One cell always fits: the capacity is at least 1.
            Err(_) => self.fallback_decision(key, 1),
        }
    }

    /// Takes `n` cells for `key`; fails only if `n` exceeds the burst.
    #[tracing::instrument(level = "debug", skip_all, fields(key = key, n = n))]
    pub async fn check_n(&self, key: &str, n: u32) -> Result<Decision, Denied> {
        if n > self.capacity {
            return Err(Denied::InsufficientCapacity { requested: n, capacity: self.capacity });
        }
        if self.clock.now_nanos() < self.down_until.load(Ordering::Relaxed) {
            return Ok(self.fallback_decision(key, n));
        }
        let (generation, pool) = self.pool.read().clone();
        match tokio::time::timeout(self.timeout, self.eval(&pool, key, n)).await {
            Ok(Ok(decision)) => {
                self.redis_checks.fetch_add(1, Ordering::Relaxed);
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!(prefix = %self.prefix, "redis is answering rate-limit checks again");
                }
                Ok(decision)
            }
            Ok(Err(failure)) => {
                self.mark_down(&failure.to_string());
                if failure.connection_broken() {
                    self.replace_pool(generation);
                }
                Ok(self.fallback_decision(key, n))
            }
            Err(_elapsed) => {
                self.mark_down(&format!("no answer within {:?}", self.timeout));
                // The connection may be wedged; start afresh.
                self.replace_pool(generation);
                Ok(self.fallback_decision(key, n))
            }
        }
    }

    async fn eval(
        &self,
        pool: &Pool<RedisConnectionManager>,
        key: &str,
        n: u32,
    ) -> Result<Decision, Failure> {
        let mut conn = pool.get().await.map_err(Failure::Pool)?;
        let reply: Vec<i64> = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(self.t_micros)
            .arg(self.tau_micros)
            .arg(n)
            .invoke_async(&mut *conn)
            .await
            .map_err(Failure::Redis)?;
        let [admitted, remaining, retry_after, reset_after] = reply[..] else {
            return Err(Failure::Reply(format!("expected 4 integers from the script, got {reply:?}")));
        };
        let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(Decision {
            limited: admitted == 0,
            limit: self.capacity,
            remaining: u32::try_from(remaining).unwrap_or(0),
            retry_after: micros(retry_after),
            reset_after: micros(reset_after),
            source: Source::Redis,
        })
    }

    fn mark_down(&self, why: &str) {
        let retry_interval = u64::try_from(self.retry_interval.as_nanos()).unwrap_or(u64::MAX);
        self.down_until.store(self.clock.now_nanos().saturating_add(retry_interval), Ordering::Relaxed);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(prefix = %self.prefix, error = why, "redis failed; using the local rate limiter");
        } else {
            tracing::debug!(prefix = %self.prefix, error = why, "redis still failing");
        }
    }

    /// Drops pool generation `failed` (and its broken connections) unless another task
    /// already replaced it.
    fn replace_pool(&self, failed: u64) {
        let mut pool = self.pool.write();
        if pool.0 == failed {
            *pool = (failed + 1, builder::make_pool(self.manager.clone(), self.pool_max_size, self.timeout));
        }
    }

    fn fallback_decision(&self, key: &str, n: u32) -> Decision {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        let key = key.to_owned();
        let result = self.fallback.check_n(&key, n);
        let (remaining, reset_after) = self.fallback.snapshot(&key);
        Decision {
            limited: result.is_err(),
            limit: self.capacity,
            remaining,
            retry_after: result.err().and_then(|d| d.retry_after()).unwrap_or(Duration::ZERO),
            reset_after,
            source: Source::Fallback,
        }
    }
}

/// Why Redis did not answer a check.
#[derive(Debug)]
enum Failure {
    Pool(bb8::RunError<redis::RedisError>),
    Redis(redis::RedisError),
    Reply(String),
}

impl Failure {
    /// Whether the connection is unusable, so the pool must drop it.
    fn connection_broken(&self) -> bool {
        match self {
            Failure::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_unrecoverable_error()
            }
            Failure::Pool(_) | Failure::Reply(_) => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Pool(e) => write!(f, "no connection: {e}"),
            Failure::Redis(e) => write!(f, "{e}"),
            Failure::Reply(e) => f.write_str(e),
        }
    }
}
