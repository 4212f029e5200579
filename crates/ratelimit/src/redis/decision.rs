//! [`Decision`]: what a shared check answered, in the shape of rate-limit headers.

use std::time::Duration;

/// Where a [`Decision`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The shared budget in Redis.
    Redis,
    /// The local fallback limiter, because Redis could not answer in time.
    Fallback,
}

/// The answer to a [`RedisLimiter`](crate::RedisLimiter) check.
///
/// The fields map onto the usual `RateLimit-*` / `Retry-After` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the check was refused.
    pub limited: bool,
    /// The burst: the most cells a full bucket holds.
    pub limit: u32,
    /// Cells still available after this check.
    pub remaining: u32,
    /// When a refused check would be admitted (zero when admitted).
    pub retry_after: Duration,
    /// When the bucket is full again.
    pub reset_after: Duration,
    /// Whether Redis or the local fallback answered.
    pub source: Source,
}

impl Decision {
    /// Whether the check was admitted.
    pub fn is_admitted(&self) -> bool {
        !self.limited
    }
}
