//! [`TieredLimiter`]: a quota per user tier, a bucket per user within each tier.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use crate::{Clock, Denied, Error, KeyedLimiter, MonotonicClock, Quota, RateLimiter, Result};

/// How a tier is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Never limited (e.g. the bot's owner).
    Unlimited,
    /// Each user of the tier gets this quota.
    Quota(Quota),
}

impl From<Quota> for Limit {
    fn from(quota: Quota) -> Self {
        Limit::Quota(quota)
    }
}

#[derive(Debug)]
enum TierSlot<K, C> {
    Unlimited,
    Limited(KeyedLimiter<K, C>),
}

impl<K, C> TierSlot<K, C>
where
    K: Hash + Eq + Clone + Send + Sync,
    C: Clock,
{
    fn check_n(&self, key: &K, n: u32) -> Result<(), Denied> {
        match self {
            TierSlot::Unlimited => Ok(()),
            TierSlot::Limited(limiter) => limiter.check_n(key, n),
        }
    }
}

/// Limits each user by the quota of their tier; unlimited tiers are never limited.
///
/// Each limited tier is its own [`KeyedLimiter`], so users of different tiers never share
/// a bucket. A tier with neither an entry nor a [`default_limit`](TieredLimiterBuilder::default_limit)
/// has no capacity: its checks fail with [`Denied::InsufficientCapacity`].
///
/// The trait's key is `(tier, user)`; [`check_in`](Self::check_in) avoids building the
/// tuple.
///
/// ```
/// use mltb_ratelimit::{Limit, TieredLimiter, RateLimiter};
///
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// enum Tier { Owner, Sudo, Authorized, Guest }
///
/// let limiter = TieredLimiter::<Tier, u64>::builder()
///     .tier(Tier::Owner, Limit::Unlimited)
///     .tier(Tier::Sudo, "30/s".parse::<mltb_ratelimit::Quota>()?)
///     .tier(Tier::Authorized, "10/s".parse::<mltb_ratelimit::Quota>()?)
///     .default_limit("1/s".parse::<mltb_ratelimit::Quota>()?) // guests and anyone unlisted
///     .build()?;
///
/// assert!((0..1000).all(|_| limiter.check_in(&Tier::Owner, &1).is_ok()));
/// assert!((0..10).all(|_| limiter.check_in(&Tier::Authorized, &2).is_ok()));
/// assert!(limiter.check_in(&Tier::Authorized, &2).is_err());
/// assert!(limiter.check(&(Tier::Guest, 3)).is_ok());
/// assert!(limiter.check(&(Tier::Guest, 3)).is_err());
/// # Ok::<(), mltb_ratelimit::Error>(())
/// ```
#[derive(Debug)]
pub struct TieredLimiter<T, K, C = MonotonicClock> {
    tiers: HashMap<T, TierSlot<K, C>>,
    unlisted: Option<TierSlot<K, C>>,
}

impl<T, K> TieredLimiter<T, K>
where
    T: Hash + Eq,
{
    /// A builder on the default clock.
    pub fn builder() -> TieredLimiterBuilder<T, K, MonotonicClock> {
        TieredLimiterBuilder {
            tiers: Vec::new(),
            default_limit: None,
            clock: MonotonicClock::new(),
            max_keys_per_tier: 100_000,
            _key: PhantomData,
        }
    }
}

impl<T, K, C> TieredLimiter<T, K, C>
where
    T: Hash + Eq + Send + Sync,
    K: Hash + Eq + Clone + Send + Sync,
    C: Clock,
{
    /// Takes one cell for `user` in `tier`.
    pub fn check_in(&self, tier: &T, user: &K) -> Result<(), Denied> {
        self.check_n_in(tier, user, 1)
    }

    /// Takes `n` cells for `user` in `tier`.
    pub fn check_n_in(&self, tier: &T, user: &K, n: u32) -> Result<(), Denied> {
        match self.tiers.get(tier).or(self.unlisted.as_ref()) {
            Some(slot) => slot.check_n(user, n),
            None if n == 0 => Ok(()),
            None => Err(Denied::InsufficientCapacity { requested: n, capacity: 0 }),
        }
    }

    /// The limit of `tier` (the default limit if the tier is not listed), or `None` if the
    /// tier has no limit configured at all.
    pub fn limit(&self, tier: &T) -> Option<Limit> {
        self.tiers.get(tier).or(self.unlisted.as_ref()).map(|slot| match slot {
            TierSlot::Unlimited => Limit::Unlimited,
            TierSlot::Limited(limiter) => Limit::Quota(limiter.quota()),
        })
    }

    /// Evicts idle users from every tier; returns how many were evicted.
    pub fn retain_recent(&self) -> usize {
        self.slots()
            .map(|slot| match slot {
                TierSlot::Limited(limiter) => limiter.retain_recent(),
                TierSlot::Unlimited => 0,
            })
            .sum()
    }

    /// Users tracked across all tiers.
    pub fn len(&self) -> usize {
        self.slots()
            .map(|slot| match slot {
                TierSlot::Limited(limiter) => limiter.len(),
                TierSlot::Unlimited => 0,
            })
            .sum()
    }

    /// Whether no user is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slots(&self) -> impl Iterator<Item = &TierSlot<K, C>> {
        self.tiers.values().chain(self.unlisted.as_ref())
    }
}

impl<T, K, C> RateLimiter for TieredLimiter<T, K, C>
where
    T: Hash + Eq + Send + Sync,
    K: Hash + Eq + Clone + Send + Sync,
    C: Clock,
{
    type Key = (T, K);

    fn check_n(&self, (tier, user): &(T, K), n: u32) -> Result<(), Denied> {
        self.check_n_in(tier, user, n)
    }
}

/// Configures a [`TieredLimiter`]; start with [`TieredLimiter::builder`].
#[derive(Debug, Clone)]
pub struct TieredLimiterBuilder<T, K, C = MonotonicClock> {
    tiers: Vec<(T, Limit)>,
    default_limit: Option<Limit>,
    clock: C,
    max_keys_per_tier: usize,
    _key: PhantomData<fn(K)>,
}

impl<T, K, C> TieredLimiterBuilder<T, K, C>
where
    T: Hash + Eq + Debug,
{
    /// Sets the limit of `tier` (a [`Quota`] or [`Limit::Unlimited`]).
    pub fn tier(mut self, tier: T, limit: impl Into<Limit>) -> Self {
        self.tiers.push((tier, limit.into()));
        self
    }

    /// The limit for tiers not listed (default: none, so they are always refused). All
    /// unlisted tiers share its buckets, keyed by user.
    pub fn default_limit(mut self, limit: impl Into<Limit>) -> Self {
        self.default_limit = Some(limit.into());
        self
    }

    /// The key cap of each limited tier (default 100 000); see [`KeyedLimiter`].
    pub fn max_keys_per_tier(mut self, max_keys: usize) -> Self {
        self.max_keys_per_tier = max_keys;
        self
    }

    /// Reads time from `clock`; every tier shares it.
    pub fn clock<C2: Clock + Clone>(self, clock: C2) -> TieredLimiterBuilder<T, K, C2> {
        TieredLimiterBuilder {
            tiers: self.tiers,
            default_limit: self.default_limit,
            clock,
            max_keys_per_tier: self.max_keys_per_tier,
            _key: PhantomData,
        }
    }

    /// Builds the limiter; fails if a tier is listed twice, if no tier is listed and no
    /// default limit is set (every check would be refused), or if `max_keys_per_tier` is 0.
    pub fn build(self) -> Result<TieredLimiter<T, K, C>>
    where
        K: Hash + Eq + Clone + Send + Sync,
        C: Clock + Clone,
    {
        if self.max_keys_per_tier == 0 {
            return Err(Error::config("max_keys_per_tier", "0; expected at least 1"));
        }
        if self.tiers.is_empty() && self.default_limit.is_none() {
            return Err(Error::config(
                "tier",
                "none listed and no default_limit; expected at least one tier or a default limit",
            ));
        }
        let slot = |limit: Limit| -> Result<TierSlot<K, C>> {
            Ok(match limit {
                Limit::Unlimited => TierSlot::Unlimited,
                Limit::Quota(quota) => TierSlot::Limited(
                    KeyedLimiter::builder(quota)
                        .max_keys(self.max_keys_per_tier)
                        .clock(self.clock.clone())
                        .build()?,
                ),
            })
        };
        let mut tiers = HashMap::with_capacity(self.tiers.len());
        for (tier, limit) in self.tiers {
            if tiers.contains_key(&tier) {
                return Err(Error::config(
                    "tier",
                    format!("{tier:?} is listed twice; expected each tier once"),
                ));
            }
            let slot = slot(limit)?;
            tiers.insert(tier, slot);
        }
        let unlisted = self.default_limit.map(slot).transpose()?;
        Ok(TieredLimiter { tiers, unlisted })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::FakeClock;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Tier {
        Owner,
        Sudo,
        Authorized,
        Guest,
    }

    fn limiter(clock: &FakeClock, default_limit: bool) -> TieredLimiter<Tier, u64, FakeClock> {
        let mut b = TieredLimiter::<Tier, u64>::builder()
            .clock(clock.clone())
            .tier(Tier::Owner, Limit::Unlimited)
            .tier(Tier::Sudo, Quota::parse("30/s").unwrap())
            .tier(Tier::Authorized, Quota::parse("10/s").unwrap())
            .max_keys_per_tier(100);
        if default_limit {
            b = b.default_limit(Quota::parse("1/min").unwrap());
        }
        b.build().unwrap()
    }

    #[test]
    fn each_tier_gets_its_quota_per_user() {
        let clock = FakeClock::new();
        let limiter = limiter(&clock, true);
        assert!((0..100_000).all(|_| limiter.check_in(&Tier::Owner, &1).is_ok()), "owner is unlimited");
        let admitted = |tier, user| (0..100).filter(|_| limiter.check_in(&tier, &user).is_ok()).count();
        assert_eq!(admitted(Tier::Sudo, 1), 30);
        assert_eq!(admitted(Tier::Authorized, 1), 10, "a separate bucket from user 1's sudo bucket");
        assert_eq!(admitted(Tier::Authorized, 2), 10);
        assert_eq!(admitted(Tier::Guest, 1), 1, "guest gets the default limit, 1/min");
        let retry = limiter.check_in(&Tier::Authorized, &1).unwrap_err().retry_after().unwrap();
        assert_eq!(retry, Duration::from_millis(100));
        clock.advance(retry);
        assert!(limiter.check(&(Tier::Authorized, 1)).is_ok());
        assert_eq!(limiter.len(), 4, "owner is not tracked");
        clock.advance(Duration::from_secs(60));
        assert_eq!(limiter.retain_recent(), 4);
        assert!(limiter.is_empty());
    }

    #[test]
    fn limits_are_reported_and_unlisted_tiers_without_a_default_limit_are_refused() {
        let clock = FakeClock::new();
        let limiter = limiter(&clock, false);
        assert_eq!(limiter.limit(&Tier::Owner), Some(Limit::Unlimited));
        assert_eq!(limiter.limit(&Tier::Authorized), Some(Limit::Quota(Quota::parse("10/s").unwrap())));
        assert_eq!(limiter.limit(&Tier::Guest), None);
        assert_eq!(
            limiter.check_in(&Tier::Guest, &1),
            Err(Denied::InsufficientCapacity { requested: 1, capacity: 0 })
        );
    }

    #[test]
    fn settings_are_checked_in_build() {
        let err = TieredLimiter::<Tier, u64>::builder()
            .tier(Tier::Sudo, Limit::Unlimited)
            .max_keys_per_tier(0)
            .build()
            .unwrap_err();
        assert!(err.is_config() && err.to_string().contains("max_keys_per_tier: 0"), "{err}");
        let err = TieredLimiter::<Tier, u64>::builder().build().unwrap_err();
        assert!(err.to_string().contains("no default_limit"), "{err}");
        let only_default = TieredLimiter::<Tier, u64>::builder()
            .default_limit(Quota::parse("1/s").unwrap())
            .build()
            .unwrap();
        assert!(only_default.check_in(&Tier::Guest, &1).is_ok());
    }

    #[test]
    fn duplicate_tier_is_a_config_error() {
        let err = TieredLimiter::<Tier, u64>::builder()
            .tier(Tier::Sudo, Limit::Unlimited)
            .tier(Tier::Sudo, Quota::parse("1/s").unwrap())
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("Sudo is listed twice"), "{err}");
    }
}
