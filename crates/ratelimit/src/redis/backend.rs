//! [`Backend`]: Redis as both limiters use it — one script call per check within a
//! timeout, connections from an `mltb-pool` pool, and the switch to the fallback while
//! Redis cannot answer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mltb_pool::{Pool, Pooled, RedisManager};
use redis::Script;
use tokio::time::Instant;

use super::rule::Rule;
use super::{Decision, RedisStats, SCRIPT, SCRIPT_ALL, SCRIPT_HOLD, Source};
use crate::{Clock, Denied, MonotonicClock};

/// The longest [`Backend::hold`]: a day keeps `now + gap + tolerance` exact in Lua's
/// doubles.
const MAX_HOLD: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug)]
pub(super) struct Backend {
    pub(super) pool: Pool<RedisManager>,
    script: Script,
    script_all: Script,
    script_hold: Script,
    pub(super) prefix: String,
    timeout: Duration,
    retry_interval: Duration,
    clock: MonotonicClock,
    /// Clock reading before which checks skip Redis.
    down_until: AtomicU64,
    /// Set by a failed check: idle connections may all have gone stale together (e.g.
    /// Redis restarted), so each is `PING`ed before use until one answers.
    suspect: AtomicBool,
    healthy: AtomicBool,
    redis_checks: AtomicU64,
    fallbacks: AtomicU64,
    fallbacks_refused: AtomicU64,
}

impl Backend {
    pub(super) fn new(
        pool: Pool<RedisManager>,
        prefix: String,
        timeout: Duration,
        retry_interval: Duration,
    ) -> Self {
        Self {
            pool,
            script: Script::new(SCRIPT),
            script_all: Script::new(SCRIPT_ALL),
            script_hold: Script::new(SCRIPT_HOLD),
            prefix,
            timeout,
            retry_interval,
            clock: MonotonicClock::new(),
            down_until: AtomicU64::new(0),
            suspect: AtomicBool::new(false),
            healthy: AtomicBool::new(true),
            redis_checks: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            fallbacks_refused: AtomicU64::new(0),
        }
    }

    pub(super) fn stats(&self) -> RedisStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedisStats {
            redis: load(&self.redis_checks),
            fallback: load(&self.fallbacks),
            fallback_refused: load(&self.fallbacks_refused),
        }
    }

    /// Takes `n` cells of `rule` for the bucket `redis_key` (the fallback's bucket is
    /// `key`); fails only if `n` exceeds the burst.
    pub(super) async fn check(
        &self,
        rule: &Rule,
        redis_key: &str,
        key: &str,
        n: u32,
    ) -> Result<Decision, Denied> {
        if n > rule.capacity {
            return Err(Denied::InsufficientCapacity { requested: n, capacity: rule.capacity });
        }
        if self.clock.now_nanos() < self.down_until.load(Ordering::Relaxed) {
            return Ok(self.fallback_decision(rule, key, n));
        }
        match self.eval(rule, redis_key, n).await {
            Ok(decision) => {
                self.redis_checks.fetch_add(1, Ordering::Relaxed);
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!(prefix = %self.prefix, "redis is answering rate-limit checks again");
                }
                Ok(decision)
            }
            Err(failure) => {
                self.mark_down(&failure.to_string());
                Ok(self.fallback_decision(rule, key, n))
            }
        }
    }

    /// Takes one cell from each bucket — `(rule, redis_key, key)` — all or none: one
    /// script call in Redis. While Redis cannot answer, each bucket's fallback answers
    /// in turn (cells taken from the buckets that admitted are not given back, which
    /// only makes the limit stricter).
    pub(super) async fn check_all(&self, buckets: &[(&Rule, String, &str)]) -> Decision {
        if buckets.is_empty() {
            return Decision::unlimited();
        }
        if self.clock.now_nanos() >= self.down_until.load(Ordering::Relaxed) {
            match self.eval_all(buckets).await {
                Ok(decision) => {
                    self.redis_checks.fetch_add(1, Ordering::Relaxed);
                    if !self.healthy.swap(true, Ordering::Relaxed) {
                        tracing::info!(prefix = %self.prefix, "redis is answering rate-limit checks again");
                    }
                    return decision;
                }
                Err(failure) => self.mark_down(&failure.to_string()),
            }
        }
        let mut out: Option<Decision> = None;
        for (rule, _, key) in buckets {
            let d = self.fallback_decision(rule, key, 1);
            out = Some(match out {
                None => d,
                Some(o) => Decision::new(
                    o.limited || d.limited,
                    o.limit.min(d.limit),
                    o.remaining.min(d.remaining),
                    o.retry_after.max(d.retry_after),
                    o.reset_after.max(d.reset_after),
                    Source::Fallback,
                ),
            });
        }
        out.unwrap_or_else(Decision::unlimited)
    }

    /// Holds back each bucket — `(rule, redis_key)` — so that none grants a cell before
    /// `gap` from now on Redis's clock (a gap over a day is cut to a day): one script call.
    /// `false` when Redis could not answer, and nothing was held.
    pub(super) async fn hold(&self, buckets: &[(&Rule, String, &str)], gap: Duration) -> bool {
        if buckets.is_empty() {
            return true;
        }
        if self.clock.now_nanos() < self.down_until.load(Ordering::Relaxed) {
            return false;
        }
        let mut invocation = self.script_hold.prepare_invoke();
        for (rule, redis_key, _) in buckets {
            invocation.key(redis_key.as_str()).arg(rule.t_micros).arg(rule.tau_micros);
        }
        let gap_micros = u64::try_from(gap.min(MAX_HOLD).as_micros()).unwrap_or(u64::MAX);
        invocation.arg(gap_micros);
        match self.invoke::<i64>(&invocation).await {
            Ok(_) => true,
            Err(failure) => {
                self.mark_down(&failure.to_string());
                false
            }
        }
    }

    async fn eval_all(&self, buckets: &[(&Rule, String, &str)]) -> Result<Decision, Failure> {
        let mut invocation = self.script_all.prepare_invoke();
        for (rule, redis_key, _) in buckets {
            invocation.key(redis_key.as_str()).arg(rule.t_micros).arg(rule.tau_micros);
        }
        let limit = buckets.iter().map(|(rule, ..)| rule.capacity).min().unwrap_or(u32::MAX);
        self.run_script(&invocation, limit).await
    }

    /// One check in Redis within `timeout`, checkout included.
    async fn eval(&self, rule: &Rule, redis_key: &str, n: u32) -> Result<Decision, Failure> {
        let mut invocation = self.script.key(redis_key);
        invocation.arg(rule.t_micros).arg(rule.tau_micros).arg(n);
        self.run_script(&invocation, rule.capacity).await
    }

    /// Runs a GCRA script call ([`invoke`](Self::invoke)) and reads its answer (admitted,
    /// remaining, retry after, reset after) as a decision of `limit`.
    async fn run_script(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        limit: u32,
    ) -> Result<Decision, Failure> {
        let reply = self.invoke::<Vec<i64>>(invocation).await?;
        let [admitted, remaining, retry_after, reset_after] = reply[..] else {
            return Err(Failure::Reply(format!("expected 4 integers from the script, got {reply:?}")));
        };
        let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(Decision::new(
            admitted == 0,
            limit,
            u32::try_from(remaining).unwrap_or(0),
            micros(retry_after),
            micros(reset_after),
            Source::Redis,
        ))
    }

    /// Runs a script call within `timeout`, checkout included. A connection that broke is
    /// closed by the pool on return (its `RedisConnection` saw the error); one that did
    /// not answer in time is marked broken here, since it may be wedged.
    async fn invoke<R: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<R, Failure> {
        // `None`: no deadline (a timeout too long to add to the clock; `build` refuses those).
        let deadline = Instant::now().checked_add(self.timeout);
        let mut conn = self.checkout(deadline).await?;
        match before(deadline, invocation.invoke_async::<R>(&mut *conn)).await {
            Some(reply) => reply.map_err(Failure::Redis),
            None => {
                conn.mark_broken();
                Err(Failure::Timeout(self.timeout))
            }
        }
    }

    /// A connection for a check. The pool closes a connection that broke while checked
    /// out, but not idle ones that went stale with it: after a restart of Redis every
    /// idle connection fails once, and without care each would cost a failed check and a
    /// `retry_interval` of fallback. So after a failure connections are `PING`ed before
    /// use (stale ones fail at once and are closed) until one answers; a healthy limiter
    /// pays nothing, and the pool (which may be shared with other code) is never replaced.
    async fn checkout(&self, deadline: Option<Instant>) -> Result<Pooled<'_, RedisManager>, Failure> {
        loop {
            // The pool takes a timeout too long for the clock as no deadline.
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
            let mut conn = self.pool.get_timeout(left).await.map_err(Failure::Pool)?;
            if !self.suspect.load(Ordering::Relaxed) {
                return Ok(conn);
            }
            match before(deadline, redis::cmd("PING").query_async::<()>(&mut *conn)).await {
                Some(Ok(())) => {
                    self.suspect.store(false, Ordering::Relaxed);
                    return Ok(conn);
                }
                // Broken: the pool closes it on drop; try the next one.
                Some(Err(_)) if conn.is_broken() => {}
                Some(Err(e)) => return Err(Failure::Redis(e)),
                None => {
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
            tracing::warn!(prefix = %self.prefix, error = why, "redis failed; checks are answered by the fallback");
        } else {
            tracing::debug!(prefix = %self.prefix, error = why, "redis still failing");
        }
    }

    fn fallback_decision(&self, rule: &Rule, key: &str, n: u32) -> Decision {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        let back_in = self.down_until.load(Ordering::Relaxed).saturating_sub(self.clock.now_nanos());
        let decision = rule.local_decision(key, n, Duration::from_nanos(back_in));
        if decision.limited {
            self.fallbacks_refused.fetch_add(1, Ordering::Relaxed);
        }
        decision
    }
}

/// `f`'s output, or `None` when `deadline` came first (`None`: no deadline).
async fn before<F: std::future::Future>(deadline: Option<Instant>, f: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, f).await.ok(),
        None => Some(f.await),
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

#[cfg(test)]
mod tests {
    use mltb_pool::PoolConfig;

    use super::*;
    use crate::Quota;

    /// A check with a timeout too long to add to the clock runs without a deadline
    /// (it computed `now + timeout` and panicked before asking the pool); against a
    /// Redis that refuses connections the fail-fast pool gives up at once.
    #[tokio::test]
    async fn a_timeout_past_the_clocks_end_is_no_deadline() {
        let port = mltb_testkit::free_port().unwrap();
        let manager = RedisManager::new(format!("redis://127.0.0.1:{port}/")).unwrap();
        let pool =
            Pool::new(manager, PoolConfig::with_fallback(1, Duration::from_secs(1)).min_idle(None)).unwrap();
        let backend = Backend::new(pool, "t:".into(), Duration::MAX, Duration::from_secs(1));
        let rule = Rule::new("1/h".parse::<Quota>().unwrap(), Default::default(), 10).unwrap();
        let decision = tokio::time::timeout(Duration::from_secs(10), backend.check(&rule, "t:k", "k", 1))
            .await
            .expect("answered without waiting")
            .unwrap();
        assert_eq!(decision.source, Source::Fallback);
        assert!(!decision.limited);
        let all =
            tokio::time::timeout(Duration::from_secs(10), backend.check_all(&[(&rule, "t:k".into(), "k")]))
                .await
                .expect("answered without waiting");
        assert_eq!((all.source, all.limited), (Source::Fallback, true), "the one cell is taken");
    }
}
