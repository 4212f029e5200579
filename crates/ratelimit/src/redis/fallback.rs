//! [`Fallback`]: what a Redis-backed limiter does while Redis cannot answer.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::{Error, Quota, Result};

/// What a [`RedisLimiter`](crate::RedisLimiter) or
/// [`TieredRedisLimiter`](crate::TieredRedisLimiter) answers while Redis cannot (down,
/// unreachable, or slower than the timeout).
///
/// During an outage every instance decides alone, so a local limit is per instance:
/// with N instances `Fraction(1.0)` admits up to N times the quota, and
/// `Fraction(1.0 / N as f64)` about the quota in total. Set in
/// [`RedisLimiterBuilder::fallback`](crate::RedisLimiterBuilder::fallback) and checked
/// in `build()`.
///
/// ```
/// use mltb_ratelimit::{Fallback, Quota};
///
/// // Four instances: each keeps a quarter of every key's rate and burst while Redis is down.
/// let quota: Quota = "20/min burst 8".parse()?;
/// let local = Fallback::Fraction(0.25).local_quota(quota)?.unwrap();
/// assert_eq!(local.to_string(), "20/4min burst 2");
/// # Ok::<(), mltb_ratelimit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Fallback {
    /// Each instance enforces this fraction (in `(0, 1]`) of each key's quota locally:
    /// the sustained rate times the fraction, and the burst times the fraction rounded
    /// down, but at least one cell. `Fraction(1.0)`, the default, is the whole quota.
    Fraction(f64),
    /// Each instance enforces this quota locally, per key (for tiers, per key in every
    /// limited tier).
    LocalQuota(Quota),
    /// Refuse every check (fail closed). `retry_after` is the time until Redis is tried
    /// again, at least one emission interval of the quota.
    Deny,
    /// Admit every check (fail open, no limit).
    Allow,
}

impl Default for Fallback {
    fn default() -> Self {
        Fallback::Fraction(1.0)
    }
}

impl Fallback {
    /// Checks the setting itself; `build()` calls it.
    pub(crate) fn validate(self) -> Result<Self> {
        match self {
            Fallback::Fraction(f) if !(f.is_finite() && f > 0.0 && f <= 1.0) => Err(Error::config(
                "fallback",
                format!("Fraction({f}); expected a fraction of the quota greater than 0 and at most 1"),
            )),
            other => Ok(other),
        }
    }

    /// The quota each instance enforces locally for a key whose shared quota is `quota`;
    /// `None` for [`Deny`](Self::Deny) and [`Allow`](Self::Allow), which keep no buckets.
    ///
    /// A fraction stretches the period (so the rate is never rounded up) and rounds the
    /// burst down. Fails if the fraction is out of range or stretches the period past
    /// what a [`Quota`] holds.
    pub fn local_quota(self, quota: Quota) -> Result<Option<Quota>> {
        match self.validate()? {
            Fallback::Fraction(1.0) => Ok(Some(quota)),
            Fallback::Fraction(f) => scale(quota, f).map(Some),
            Fallback::LocalQuota(local) => Ok(Some(local)),
            Fallback::Deny | Fallback::Allow => Ok(None),
        }
    }
}

fn scale(quota: Quota, f: f64) -> Result<Quota> {
    let period = (quota.period().as_nanos() as f64 / f).ceil();
    // `u64::MAX as f64` rounds up to 2^64, so `>=` keeps the cast below in range; the
    // fraction is finite and positive, so `period` is not NaN.
    if period >= u64::MAX as f64 {
        return Err(Error::config(
            "fallback",
            format!(
                "Fraction({f}) of {quota} needs a period over u64::MAX nanoseconds; expected a larger fraction"
            ),
        ));
    }
    let burst = (f64::from(quota.burst().get()) * f).floor() as u32;
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Ok(Quota::new(quota.rate(), Duration::from_nanos(period as u64))?.allow_burst(burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quota {
        text.parse().unwrap()
    }

    #[test]
    fn fractions_scale_rate_and_burst_down() {
        let local = |f: f64, text: &str| Fallback::Fraction(f).local_quota(q(text)).unwrap().unwrap();
        assert_eq!(local(1.0, "20/min burst 5"), q("20/min burst 5"));
        assert_eq!(local(0.25, "8/h"), q("8/4h burst 2"));
        assert_eq!(local(0.5, "10/s burst 3"), q("10/2s burst 1"));
        assert_eq!(local(0.1, "1/min"), q("1/10min burst 1"), "at least one cell");
        let third = local(1.0 / 3.0, "3/s");
        assert!(third.emission_interval() >= Duration::from_secs(1), "never faster than a third: {third}");
        assert_eq!(Fallback::LocalQuota(q("1/s")).local_quota(q("9/s")).unwrap(), Some(q("1/s")));
        assert_eq!(Fallback::Deny.local_quota(q("9/s")).unwrap(), None);
        assert_eq!(Fallback::Allow.local_quota(q("9/s")).unwrap(), None);
        assert_eq!(Fallback::default(), Fallback::Fraction(1.0));
    }

    #[test]
    fn bad_fractions_are_config_errors_naming_the_value() {
        for f in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            let err = Fallback::Fraction(f).validate().unwrap_err();
            assert!(err.is_config(), "{err}");
            assert!(err.to_string().contains(&format!("invalid fallback: Fraction({f})")), "{err}");
        }
        let err = Fallback::Fraction(1e-12).local_quota(q("1/d")).unwrap_err();
        assert!(err.to_string().contains("expected a larger fraction"), "{err}");
    }
}
