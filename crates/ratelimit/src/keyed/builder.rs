//! [`KeyedLimiterBuilder`].

use std::hash::{BuildHasher, Hash, RandomState};
use std::marker::PhantomData;

use super::KeyedLimiter;
use crate::{Clock, Error, MonotonicClock, Quota, Result};

/// Default key cap.
const DEFAULT_MAX_KEYS: usize = 100_000;

/// Configures a [`KeyedLimiter`]; start with [`KeyedLimiter::builder`].
#[derive(Debug, Clone)]
pub struct KeyedLimiterBuilder<K, C = MonotonicClock, S = RandomState> {
    quota: Quota,
    clock: C,
    hasher: S,
    shards: Option<usize>,
    max_keys: usize,
    _key: PhantomData<fn(K)>,
}

impl<K> KeyedLimiterBuilder<K> {
    pub(super) fn new(quota: Quota) -> Self {
        Self {
            quota,
            clock: MonotonicClock::new(),
            hasher: RandomState::new(),
            shards: None,
            max_keys: DEFAULT_MAX_KEYS,
            _key: PhantomData,
        }
    }
}

impl<K, C, S> KeyedLimiterBuilder<K, C, S> {
    /// The hard cap on tracked keys (default 100 000). Must be at least 1.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Number of lock shards, rounded up to a power of two (default: 4 × the available
    /// parallelism). Must be at least 1.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Reads time from `clock` (e.g. a [`FakeClock`](crate::FakeClock) in tests).
    pub fn clock<C2: Clock>(self, clock: C2) -> KeyedLimiterBuilder<K, C2, S> {
        KeyedLimiterBuilder {
            quota: self.quota,
            clock,
            hasher: self.hasher,
            shards: self.shards,
            max_keys: self.max_keys,
            _key: PhantomData,
        }
    }

    /// Hashes keys with `hasher` (default [`RandomState`], which resists flooding).
    pub fn hasher<S2: BuildHasher + Clone>(self, hasher: S2) -> KeyedLimiterBuilder<K, C, S2> {
        KeyedLimiterBuilder {
            quota: self.quota,
            clock: self.clock,
            hasher,
            shards: self.shards,
            max_keys: self.max_keys,
            _key: PhantomData,
        }
    }

    /// Builds the limiter; fails if `max_keys` or `shards` is zero.
    pub fn build(self) -> Result<KeyedLimiter<K, C, S>>
    where
        K: Hash + Eq + Clone + Send + Sync,
        C: Clock,
        S: BuildHasher + Clone + Send + Sync,
    {
        if self.max_keys == 0 {
            return Err(Error::config("max_keys", "0; expected at least 1"));
        }
        let shards = match self.shards {
            Some(0) => {
                return Err(Error::config("shards", "0; expected at least 1"));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(4, |n| n.get() * 4),
        };
        // More shards than keys only wastes memory.
        let shards = shards.min(self.max_keys).min(1 << 16).next_power_of_two();
        Ok(KeyedLimiter::from_parts(self.quota, self.clock, self.hasher, shards, self.max_keys))
    }
}
