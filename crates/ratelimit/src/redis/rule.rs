//! [`Rule`]: one quota as the Redis script enforces it, and its local stand-in for outages.

use std::time::Duration;

use super::{Decision, Fallback, MAX_TOLERANCE_MICROS, Source};
use crate::{KeyedLimiter, Quota, RateLimiter, Result};

/// One quota: the script's constants, and what answers for it while Redis cannot.
#[derive(Debug)]
pub(super) struct Rule {
    pub(super) quota: Quota,
    /// Emission interval in microseconds (Redis keeps microseconds).
    pub(super) t_micros: u64,
    /// Tolerance, `t_micros * capacity`.
    pub(super) tau_micros: u64,
    /// The most cells one check can take.
    pub(super) capacity: u32,
    local: Local,
}

/// The answer while Redis cannot give one.
#[derive(Debug)]
enum Local {
    Limiter(KeyedLimiter<String>),
    Deny,
    Allow,
}

impl Rule {
    pub(super) fn new(quota: Quota, fallback: Fallback, max_keys: usize) -> Result<Self> {
        let t_micros = quota.emission_nanos().div_ceil(1000).max(1);
        let capacity = u64::from(quota.burst().get()).min(MAX_TOLERANCE_MICROS / t_micros).max(1);
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        let local = match (fallback, fallback.local_quota(quota)?) {
            (_, Some(local)) => Local::Limiter(KeyedLimiter::builder(local).max_keys(max_keys).build()?),
            (Fallback::Allow, None) => Local::Allow,
            (_, None) => Local::Deny,
        };
        Ok(Self {
            quota,
            t_micros,
            tau_micros: t_micros.saturating_mul(u64::from(capacity)),
            capacity,
            local,
        })
    }

    /// The local limiter, for fallbacks that keep one.
    pub(super) fn local_limiter(&self) -> Option<&KeyedLimiter<String>> {
        match &self.local {
            Local::Limiter(limiter) => Some(limiter),
            Local::Deny | Local::Allow => None,
        }
    }

    /// Answers `n` cells for `key` locally. `redis_back_in` is how long until Redis is
    /// tried again; a refusal that waiting for the local bucket cannot lift says so.
    pub(super) fn local_decision(&self, key: &str, n: u32, redis_back_in: Duration) -> Decision {
        let retry = redis_back_in.max(self.quota.emission_interval());
        match &self.local {
            Local::Allow => Decision::new(
                false,
                self.capacity,
                self.capacity,
                Duration::ZERO,
                Duration::ZERO,
                Source::Fallback,
            ),
            Local::Deny => Decision::new(true, self.capacity, 0, retry, retry, Source::Fallback),
            Local::Limiter(limiter) => {
                let key = key.to_owned();
                let result = limiter.check_n(&key, n);
                let (remaining, reset_after) = limiter.snapshot(&key);
                // `n` over the local burst: no wait for the local bucket helps, Redis may.
                let retry_after = match result {
                    Ok(()) => Duration::ZERO,
                    Err(denied) => denied.retry_after().unwrap_or(retry),
                };
                Decision::new(
                    result.is_err(),
                    limiter.capacity(),
                    remaining,
                    retry_after,
                    reset_after,
                    Source::Fallback,
                )
            }
        }
    }
}
