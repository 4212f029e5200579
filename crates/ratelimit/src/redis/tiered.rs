//! [`TieredRedisLimiter`]: a quota per user tier, one budget per (tier, key) shared by
//! every process through Redis.

use std::collections::HashMap;
use std::hash::Hash;

use mltb_pool::{Pool, RedisManager};

use super::backend::Backend;
use super::rule::Rule;
use super::{Decision, Fallback, RedisStats, TieredRedisLimiterBuilder};
use crate::{Denied, KeyedLimiter, Limit};

/// Limits each key by the quota of its tier, with one budget per tier and key shared by
/// every process using the same Redis and prefix — the shared counterpart of
/// [`TieredLimiter`](crate::TieredLimiter).
///
/// A tier is any `T: Hash + Eq + AsRef<str>` (`&'static str`, `String`, or your own
/// enum with an `as_ref`); its string is its name in Redis, so it must be the same in
/// every process. The bucket of `key` in a limited tier is the Redis key
/// `{prefix}{tier}:{key}`; tier names are checked in `build()` (not empty, no `:`, no
/// two alike), so two (tier, key) pairs never share a bucket. Unlimited tiers touch
/// neither Redis nor the fallback. A tier not listed has no capacity: its checks fail
/// with [`Denied::InsufficientCapacity`].
///
/// # When a key changes tier
///
/// Budgets belong to (tier, key), so a key that moves to another tier starts from that
/// tier's bucket: full if the key never used it (or used it longer ago than the tier's
/// refill time), otherwise as the key left it. A promoted user is not held back by the
/// lower tier's debt; a user moved back to a tier they spent finds it still spent, so
/// moving back and forth does not refill anything. Each move can give at most one
/// burst of the new tier, so a user who could choose their tier per request (say, by
/// the chat they write in) could spend every such tier's budget: decide the tier from
/// who the user is, not from what the request says.
///
/// # When Redis is unreachable
///
/// As for [`RedisLimiter`](crate::RedisLimiter): the
/// [`fallback`](TieredRedisLimiterBuilder::fallback) answers, per tier (a
/// [`Fallback::Fraction`] of each tier's own quota, by default the whole of it), and
/// unlimited tiers stay unlimited.
///
/// ```no_run
/// # async fn demo() -> mltb_ratelimit::Result<()> {
/// use mltb_ratelimit::{Fallback, Limit, Quota, Source, TieredRedisLimiter};
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
/// enum Tier { Owner, Sudo, Authorized, Guest }
///
/// impl AsRef<str> for Tier {
///     fn as_ref(&self) -> &str {
///         match self {
///             Tier::Owner => "owner",
///             Tier::Sudo => "sudo",
///             Tier::Authorized => "authorized",
///             Tier::Guest => "guest",
///         }
///     }
/// }
///
/// let limiter = TieredRedisLimiter::builder("redis://127.0.0.1:6379/")
///     .prefix("mybot:rl:")
///     .tier(Tier::Owner, Limit::Unlimited)
///     .tier(Tier::Sudo, "30/s".parse::<Quota>()?)
///     .tier(Tier::Authorized, "10/s".parse::<Quota>()?)
///     .tier(Tier::Guest, "20/min burst 5".parse::<Quota>()?)
///     .fallback(Fallback::Fraction(0.5)) // two instances
///     .build()?;
///
/// let decision = limiter.check_in(&Tier::Guest, "user:42").await?; // bucket mybot:rl:guest:user:42
/// assert_eq!(decision.limit, 5);
/// assert_eq!(limiter.check_in(&Tier::Owner, "user:1").await?.source, Source::Unlimited);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TieredRedisLimiter<T> {
    backend: Backend,
    tiers: HashMap<T, Tier>,
    fallback: Fallback,
}

#[derive(Debug)]
pub(super) enum Tier {
    Unlimited,
    /// `bucket_prefix` is `{prefix}{tier}:`.
    Limited {
        bucket_prefix: String,
        rule: Box<Rule>,
    },
}

impl<T: Hash + Eq + AsRef<str>> TieredRedisLimiter<T> {
    /// A builder for a limiter on the Redis at `url`; list the tiers with
    /// [`tier`](TieredRedisLimiterBuilder::tier).
    pub fn builder(url: impl Into<String>) -> TieredRedisLimiterBuilder<T> {
        TieredRedisLimiterBuilder::new(url.into())
    }

    /// A builder for a limiter taking its connections from `pool`; see
    /// [`RedisLimiter::builder_with_pool`](crate::RedisLimiter::builder_with_pool).
    pub fn builder_with_pool(pool: Pool<RedisManager>) -> TieredRedisLimiterBuilder<T> {
        TieredRedisLimiterBuilder::with_pool(pool)
    }

    pub(super) fn from_parts(backend: Backend, tiers: HashMap<T, Tier>, fallback: Fallback) -> Self {
        Self { backend, tiers, fallback }
    }

    /// Takes one cell for `key` in `tier`.
    ///
    /// Fails only for a tier that is not listed; otherwise answers from Redis, from the
    /// fallback, or (unlimited tiers) at once with [`Source::Unlimited`](crate::Source::Unlimited).
    pub async fn check_in(&self, tier: &T, key: &str) -> Result<Decision, Denied> {
        self.check_n_in(tier, key, 1).await
    }

    /// Takes `n` cells for `key` in `tier`; fails if `n` exceeds the tier's burst or the
    /// tier is not listed.
    #[tracing::instrument(level = "debug", skip_all, fields(tier = tier.as_ref(), key = key, n = n))]
    pub async fn check_n_in(&self, tier: &T, key: &str, n: u32) -> Result<Decision, Denied> {
        match self.tiers.get(tier) {
            None => Err(Denied::InsufficientCapacity { requested: n, capacity: 0 }),
            Some(Tier::Unlimited) => Ok(Decision::unlimited()),
            Some(Tier::Limited { bucket_prefix, rule }) => {
                let redis_key = format!("{bucket_prefix}{key}");
                self.backend.check(rule, &redis_key, key, n).await
            }
        }
    }

    /// Takes one cell from each `(tier, key)` bucket, **all or none**, in one round trip:
    /// admitted only if every bucket has a cell now, and then each gives one; refused
    /// otherwise with nothing taken, `retry_after` the longest wait of a refusing
    /// bucket. For a request that must fit several limits at once, say one per chat and
    /// one overall, without spending a cell of one while another refuses. Unlimited
    /// tiers are skipped; an empty list (or only unlimited tiers) is admitted.
    ///
    /// Fails for a tier that is not listed. `remaining` is the fewest cells left in any
    /// of the buckets, `limit` the smallest burst. On Redis Cluster, the buckets must
    /// hash to one slot: put a `{hash tag}` in the prefix. While Redis cannot answer,
    /// the fallback answers bucket by bucket, not atomically (cells of the admitting
    /// buckets stay taken, which only makes the limit stricter).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use mltb_ratelimit::{Quota, TieredRedisLimiter};
    ///
    /// let limiter = TieredRedisLimiter::builder("redis://127.0.0.1:6379/")
    ///     .prefix("mybot:")
    ///     .tier("all", "30/s burst 1".parse::<Quota>()?)
    ///     .tier("chat", "1/s burst 1".parse::<Quota>()?)
    ///     .build()?;
    /// let decision = limiter.check_all(&[(&"all", "bot"), (&"chat", "42")]).await?;
    /// if decision.limited {
    ///     tokio::time::sleep(decision.retry_after).await; // then ask again
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn check_all(&self, buckets: &[(&T, &str)]) -> Result<Decision, Denied> {
        Ok(self.backend.check_all(&self.limited(buckets)?).await)
    }

    /// The limited buckets among `buckets`, each as (rule, Redis key, key); fails for a
    /// tier that is not listed.
    fn limited<'k>(&self, buckets: &[(&T, &'k str)]) -> Result<Vec<(&Rule, String, &'k str)>, Denied> {
        let mut limited = Vec::with_capacity(buckets.len());
        for (tier, key) in buckets {
            match self.tiers.get(*tier) {
                None => return Err(Denied::InsufficientCapacity { requested: 1, capacity: 0 }),
                Some(Tier::Unlimited) => {}
                Some(Tier::Limited { bucket_prefix, rule }) => {
                    limited.push((&**rule, format!("{bucket_prefix}{key}"), *key));
                }
            }
        }
        Ok(limited)
    }

    /// Holds back each `(tier, key)` bucket so that none grants a cell before `gap` from
    /// now, on Redis's clock, and then one at a time at its rate; a bucket already held
    /// back longer is left as it is. One round trip; unlimited tiers are skipped.
    ///
    /// For limits that a server counts when a request *arrives*, which the client only
    /// knows happened before the answer: once the answer comes, holding the buckets the
    /// request took cells of for the server's window keeps the next request that far
    /// behind it, however late this one arrived, and whichever process sends the next.
    ///
    /// `Ok(false)` when Redis could not answer and nothing was held (the outage is logged
    /// as for checks); fails for a tier that is not listed. A gap over a day is cut to a
    /// day.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    ///
    /// use mltb_ratelimit::{Quota, TieredRedisLimiter};
    ///
    /// let limiter = TieredRedisLimiter::builder("redis://127.0.0.1:6379/")
    ///     .tier("chat", "1/1100ms burst 1".parse::<Quota>()?)
    ///     .build()?;
    /// if limiter.check_all(&[(&"chat", "42")]).await?.is_admitted() {
    ///     // ... send the request, and once its answer is in:
    ///     limiter.hold_all(&[(&"chat", "42")], Duration::from_secs(1)).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn hold_all(&self, buckets: &[(&T, &str)], gap: std::time::Duration) -> Result<bool, Denied> {
        Ok(self.backend.hold(&self.limited(buckets)?, gap).await)
    }

    /// The limit of `tier`, or `None` if it is not listed.
    pub fn limit(&self, tier: &T) -> Option<Limit> {
        self.tiers.get(tier).map(|slot| match slot {
            Tier::Unlimited => Limit::Unlimited,
            Tier::Limited { rule, .. } => Limit::Quota(rule.quota),
        })
    }

    /// The Redis key holding the bucket of `key` in `tier`; `None` for unlimited and
    /// unlisted tiers, which have none.
    pub fn redis_key(&self, tier: &T, key: &str) -> Option<String> {
        match self.tiers.get(tier)? {
            Tier::Unlimited => None,
            Tier::Limited { bucket_prefix, .. } => Some(format!("{bucket_prefix}{key}")),
        }
    }

    /// The prefix put before every tier's keys in Redis.
    pub fn prefix(&self) -> &str {
        &self.backend.prefix
    }

    /// The connection pool in use.
    pub fn pool(&self) -> &Pool<RedisManager> {
        &self.backend.pool
    }

    /// What answers while Redis cannot.
    pub fn fallback(&self) -> Fallback {
        self.fallback
    }

    /// The local limiter of `tier` that answers while Redis cannot, if the tier is
    /// limited and the fallback keeps one.
    pub fn local_limiter(&self, tier: &T) -> Option<&KeyedLimiter<String>> {
        match self.tiers.get(tier)? {
            Tier::Unlimited => None,
            Tier::Limited { rule, .. } => rule.local_limiter(),
        }
    }

    /// Checks answered by the fallback because Redis could not answer.
    pub fn fallback_count(&self) -> u64 {
        self.backend.stats().fallback
    }

    /// Checks answered by Redis.
    pub fn redis_count(&self) -> u64 {
        self.backend.stats().redis
    }

    /// How checks were answered so far (unlimited tiers are not counted).
    pub fn stats(&self) -> RedisStats {
        self.backend.stats()
    }
}
