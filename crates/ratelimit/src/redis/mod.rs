//! [`RedisLimiter`]: one budget shared by many processes, GCRA in a Redis script.

mod builder;
mod decision;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mltb_pool::{Pool, Pooled, RedisManager};
use redis::Script;
use tokio::time::Instant;

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
    pool: Pool<RedisManager>,
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
    /// Set by a failed check: idle connections may all have gone stale together (e.g.
    /// Redis restarted), so each is `PING`ed before use until one answers.
    suspect: AtomicBool,
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

    /// The quota enforced per key.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The prefix put before every key in Redis.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection pool in use (clone it to share it; its
    /// [`metrics`](Pool::metrics) show how busy it is).
    pub fn pool(&self) -> &Pool<RedisManager> {
        &self.pool
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
        match self.eval(key, n).await {
            Ok(decision) => {
                self.redis_checks.fetch_add(1, Ordering::Relaxed);
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!(prefix = %self.prefix, "redis is answering rate-limit checks again");
                }
                Ok(decision)
            }
            Err(failure) => {
                self.mark_down(&failure.to_string());
                Ok(self.fallback_decision(key, n))
            }
        }
    }

    /// One check in Redis within `timeout`, checkout included. A connection that broke
    /// is closed by the pool on return (its `RedisConnection` saw the error); one that
    /// did not answer in time is marked broken here, since it may be wedged.
    async fn eval(&self, key: &str, n: u32) -> Result<Decision, Failure> {
        let deadline = Instant::now() + self.timeout;
        let mut conn = self.checkout(deadline).await?;
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation.arg(self.t_micros).arg(self.tau_micros).arg(n);
        let answer = tokio::time::timeout_at(deadline, invocation.invoke_async::<Vec<i64>>(&mut *conn)).await;
        let reply = match answer {
            Ok(reply) => reply.map_err(Failure::Redis)?,
            Err(_elapsed) => {
                conn.mark_broken();
                return Err(Failure::Timeout(self.timeout));
            }
        };
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

    /// A connection for a check. The pool closes a connection that broke while checked
    /// out, but not idle ones that went stale with it: after a restart of Redis every
    /// idle connection fails once, and without care each would cost a failed check and a
    /// `retry_interval` of fallback. So after a failure connections are `PING`ed before
    /// use (stale ones fail at once and are closed) until one answers; a healthy limiter
    /// pays nothing. This replaces the old "replace the whole pool" workaround, which
    /// cannot work on a pool shared with other code.
    async fn checkout(&self, deadline: Instant) -> Result<Pooled<'_, RedisManager>, Failure> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut conn = self.pool.get_timeout(left).await.map_err(Failure::Pool)?;
            if !self.suspect.load(Ordering::Relaxed) {
                return Ok(conn);
            }
            match tokio::time::timeout_at(deadline, redis::cmd("PING").query_async::<()>(&mut *conn)).await {
                Ok(Ok(())) => {
                    self.suspect.store(false, Ordering::Relaxed);
                    return Ok(conn);
                }
                // Broken: the pool closes it on drop; try the next one.
                Ok(Err(_)) if conn.is_broken() => {}
                Ok(Err(e)) => return Err(Failure::Redis(e)),
                Err(_elapsed) => {
                    conn.mark_broken();
                    return Err(Failure::Timeout(self.timeout));
                }
            }
        }
    }

    fn mark_down(&self, why: &str) {
        self.suspect.store(true, Ordering::Relaxed);
        let retry_interval = u64::try_from(self.retry_interval.as_nanos()).unwrap_or(u64::MAX);
        self.down_until.store(self.clock.now_nanos().saturating_add(retry_interval), Ordering::Relaxed);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(prefix = %self.prefix, error = why, "redis failed; using the local rate limiter");
        } else {
            tracing::debug!(prefix = %self.prefix, error = why, "redis still failing");
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
    Pool(mltb_pool::Error),
    Redis(redis::RedisError),
    Reply(String),
    Timeout(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Pool(e) => write!(f, "no connection: {e}"),
            Failure::Redis(e) => write!(f, "{e}"),
            Failure::Reply(e) => f.write_str(e),
            Failure::Timeout(timeout) => write!(f, "no answer within {timeout:?}"),
        }
    }
}
