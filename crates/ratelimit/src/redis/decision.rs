//! [`Decision`]: what a shared check answered, in the shape of rate-limit headers; and
//! [`RedisStats`], how checks were answered.

use std::time::Duration;

/// Where a [`Decision`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The shared budget in Redis.
    Redis,
    /// The local [`Fallback`](crate::Fallback), because Redis could not answer in time.
    Fallback,
    /// An unlimited tier: nothing was counted, Redis was not asked.
    Unlimited,
}

/// The answer to a [`RedisLimiter`](crate::RedisLimiter) or
/// [`TieredRedisLimiter`](crate::TieredRedisLimiter) check.
///
/// The fields map onto the usual `RateLimit-*` / `Retry-After` headers. `limit` and
/// `remaining` describe the bucket that answered: during an outage that is the local
/// fallback's, which may be smaller than the shared one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the check was refused.
    pub limited: bool,
    /// The burst: the most cells a full bucket holds (`u32::MAX` when unlimited).
    pub limit: u32,
    /// Cells still available after this check.
    pub remaining: u32,
    /// When a refused check would be admitted (zero when admitted).
    pub retry_after: Duration,
    /// When the bucket is full again.
    pub reset_after: Duration,
    /// Whether Redis, the local fallback, or no limit at all answered.
    pub source: Source,
}

impl Decision {
    pub(super) fn new(
        limited: bool,
        limit: u32,
        remaining: u32,
        retry_after: Duration,
        reset_after: Duration,
        source: Source,
    ) -> Self {
        Self { limited, limit, remaining, retry_after, reset_after, source }
    }

    pub(super) fn unlimited() -> Self {
        Self::new(false, u32::MAX, u32::MAX, Duration::ZERO, Duration::ZERO, Source::Unlimited)
    }

    /// Whether the check was admitted.
    pub fn is_admitted(&self) -> bool {
        !self.limited
    }
}

/// How a Redis-backed limiter's checks were answered, from `stats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Checks answered by Redis.
    pub redis: u64,
    /// Checks answered by the local [`Fallback`](crate::Fallback) because Redis could not.
    pub fallback: u64,
    /// Of those, checks the fallback refused.
    pub fallback_refused: u64,
}
