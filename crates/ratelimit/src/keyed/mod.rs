//! [`KeyedLimiter`]: one bucket per key, sharded, with a hard cap on the number of keys.

mod builder;

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hashbrown::HashTable;
use parking_lot::RwLock;

pub use self::builder::KeyedLimiterBuilder;
use crate::gcra::{Bucket, Gcra};
use crate::{Clock, Denied, MonotonicClock, Quota, RateLimiter};

/// One GCRA bucket per key, never more than `max_keys` of them.
///
/// Keys live in shards of `RwLock<HashTable<(K, AtomicU64)>>`; a key is hashed once (the
/// hash picks the shard and the slot), and checking a key already known takes a shard's
/// read lock and one compare-and-swap. A new key takes the write lock.
///
/// # Bounded memory
///
/// When a new key arrives and `max_keys` keys are tracked, every *idle* key (one whose
/// bucket is full again, so forgetting it changes no decision) is evicted from the first
/// shard that has any, and the new key takes a freed slot. If no key is idle, the new
/// key is refused with [`Denied::KeysExhausted`], whose `retry_after` is when the first
/// tracked key turns idle. This never admits more than the quota (a key is never
/// forgotten while limited); the price is that a flood of distinct keys can make *new*
/// keys wait while known keys keep their exact limits. Size `max_keys` for the expected
/// number of active keys per refill period.
///
/// [`retain_recent`](Self::retain_recent) evicts every idle key at once;
/// [`shrink_to_fit`](Self::shrink_to_fit) returns the freed table memory.
///
/// ```
/// use mltb_ratelimit::{FakeClock, KeyedLimiter, RateLimiter};
///
/// let clock = FakeClock::new();
/// let limiter = KeyedLimiter::<u64, _>::builder("1/s".parse()?).max_keys(2).clock(clock.clone()).build()?;
/// assert!(limiter.check(&1).is_ok());
/// assert!(limiter.check(&2).is_ok());
/// assert!(limiter.check(&1).is_err(), "key 1 spent its cell");
/// assert!(limiter.check(&3).unwrap_err().retry_after().is_some(), "table full, nothing idle");
/// clock.advance(std::time::Duration::from_secs(1));
/// assert!(limiter.check(&3).is_ok(), "idle keys were evicted to make room");
/// assert!(limiter.len() <= 2);
/// # Ok::<(), mltb_ratelimit::Error>(())
/// ```
#[derive(Debug)]
pub struct KeyedLimiter<K, C = MonotonicClock, S = RandomState> {
    gcra: Gcra,
    quota: Quota,
    clock: C,
    hasher: S,
    shards: Box<[Shard<K>]>,
    shard_mask: usize,
    max_keys: usize,
    /// Keys tracked; changed only under the write lock of the shard whose table changes,
    /// so it never exceeds `max_keys` and never counts a key not in a table.
    len: AtomicUsize,
    /// After a sweep found nothing idle: no key turns idle before this time.
    no_idle_before: AtomicU64,
}

/// Padded to a cache line so that locks of neighbouring shards do not share one.
#[derive(Debug)]
#[repr(align(64))]
struct Shard<K> {
    map: RwLock<HashTable<(K, Bucket)>>,
}

impl<K: Hash + Eq + Clone + Send + Sync> KeyedLimiter<K> {
    /// A limiter for `quota` per key, holding at most `max_keys` keys, on the default clock.
    pub fn new(quota: Quota, max_keys: usize) -> crate::Result<Self> {
        Self::builder(quota).max_keys(max_keys).build()
    }

    /// A builder with defaults: 100 000 keys, shards for the machine's parallelism.
    pub fn builder(quota: Quota) -> KeyedLimiterBuilder<K> {
        KeyedLimiterBuilder::new(quota)
    }
}

impl<K, C, S> KeyedLimiter<K, C, S>
where
    K: Hash + Eq + Clone + Send + Sync,
    C: Clock,
    S: BuildHasher + Clone + Send + Sync,
{
    fn from_parts(quota: Quota, clock: C, hasher: S, shards: usize, max_keys: usize) -> Self {
        let shards: Box<[Shard<K>]> =
            (0..shards).map(|_| Shard { map: RwLock::new(HashTable::new()) }).collect();
        Self {
            gcra: Gcra::new(&quota),
            quota,
            clock,
            hasher,
            shard_mask: shards.len() - 1,
            shards,
            max_keys,
            len: AtomicUsize::new(0),
            no_idle_before: AtomicU64::new(0),
        }
    }

    /// The quota each key gets.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The most cells one check can take (the burst, capped so that times cannot overflow).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn capacity(&self) -> u32 {
        self.gcra.capacity()
    }

    /// The most keys tracked at once.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Keys tracked now (never more than [`max_keys`](Self::max_keys)).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held by the key tables: slots times (`size_of::<(K, AtomicU64)>()`
    /// plus one control byte), plus the shards. Heap memory owned by the keys themselves
    /// (e.g. a `String`'s text) is not included. Tables hold between 8/7 and 16/7 slots per
    /// key, so `u64` keys take about 19–39 bytes each.
    pub fn approx_memory_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(K, Bucket)>() + 1;
        let tables: usize = self
            .shards
            .iter()
            .map(|shard| {
                let capacity = shard.map.read().capacity();
                // hashbrown keeps 1/8 of the slots free (all but one in tiny tables).
                let slots = if capacity == 0 { 0 } else { (capacity * 8 / 7).next_power_of_two() };
                slots * slot
            })
            .sum();
        std::mem::size_of::<Self>() + std::mem::size_of_val(&*self.shards) + tables
    }

    /// Whether `key` has a bucket (evicted and never-seen keys do not).
    pub fn contains_key(&self, key: &K) -> bool {
        let hash = self.hasher.hash_one(key);
        self.shards[self.shard_index(hash)].map.read().find(hash, |(k, _)| k == key).is_some()
    }

    /// Cells a check for `key` could take right now.
    pub fn remaining(&self, key: &K) -> u32 {
        let now = self.clock.now_nanos();
        let hash = self.hasher.hash_one(key);
        match self.shards[self.shard_index(hash)].map.read().find(hash, |(k, _)| k == key) {
            Some((_, bucket)) => self.gcra.remaining(bucket, now),
            None => self.gcra.capacity(),
        }
    }

    /// Cells available to `key` now, and the time until its bucket is full again.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn snapshot(&self, key: &K) -> (u32, Duration) {
        let now = self.clock.now_nanos();
        let hash = self.hasher.hash_one(key);
        match self.shards[self.shard_index(hash)].map.read().find(hash, |(k, _)| k == key) {
            Some((_, bucket)) => {
                (self.gcra.remaining(bucket, now), Duration::from_nanos(bucket.tat().saturating_sub(now)))
            }
            None => (self.gcra.capacity(), Duration::ZERO),
        }
    }

    /// Evicts every idle key (bucket full again) and returns how many were evicted.
    ///
    /// Call it periodically to keep memory proportional to the active keys; the limiter
    /// also does it on its own when the key cap is reached.
    pub fn retain_recent(&self) -> usize {
        let now = self.clock.now_nanos();
        let removed = (0..self.shards.len()).map(|i| self.evict_idle_in(i, now).0).sum();
        self.no_idle_before.store(0, Ordering::Relaxed);
        removed
    }

    /// Returns table memory no longer needed after evictions to the allocator.
    pub fn shrink_to_fit(&self) {
        for shard in self.shards.iter() {
            shard.map.write().shrink_to_fit(|(k, _)| self.hasher.hash_one(k));
        }
    }

    /// Forgets every key. Keys start full again, so use it only when that is acceptable.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut map = shard.map.write();
            let removed = map.len();
            map.clear();
            self.len.fetch_sub(removed, Ordering::Relaxed);
        }
        self.no_idle_before.store(0, Ordering::Relaxed);
    }

    fn shard_index(&self, hash: u64) -> usize {
        // Middle bits: the table itself uses the low bits (slot) and the top seven
        // (control bytes) of the same hash, so those must vary within a shard.
        (hash >> 40) as usize & self.shard_mask
    }

    /// Removes idle keys of shard `index`; returns (removed, earliest TAT among the kept).
    fn evict_idle_in(&self, index: usize, now: u64) -> (usize, u64) {
        let mut map = self.shards[index].map.write();
        let before = map.len();
        let mut earliest = u64::MAX;
        map.retain(|(_, bucket)| {
            if bucket.is_idle(now) {
                false
            } else {
                earliest = earliest.min(bucket.tat());
                true
            }
        });
        let removed = before - map.len();
        if removed > 0 {
            self.len.fetch_sub(removed, Ordering::Relaxed);
            // Freed slots may take keys that turn idle sooner than the hint says.
            self.no_idle_before.store(0, Ordering::Relaxed);
        }
        (removed, earliest)
    }

    /// Evicts idle keys shard by shard from `start`, stopping after the first shard that
    /// had any. `Err(t)` means nothing was idle, and nothing turns idle before `t`.
    fn sweep(&self, start: usize, now: u64) -> Result<(), u64> {
        let mut earliest = u64::MAX;
        for i in 0..self.shards.len() {
            let (removed, shard_earliest) = self.evict_idle_in((start + i) & self.shard_mask, now);
            if removed > 0 {
                return Ok(());
            }
            earliest = earliest.min(shard_earliest);
        }
        // TATs only grow while keys are tracked, so this stays a valid lower bound until
        // keys are removed (which resets it or frees slots).
        if earliest != u64::MAX {
            self.no_idle_before.fetch_max(earliest, Ordering::Relaxed);
        }
        Err(earliest)
    }

    /// Checks a key the read lock did not find: inserts it if a slot is free (evicting
    /// idle keys at the cap), or refuses it with [`Denied::KeysExhausted`].
    ///
    /// # Why this never spins
    ///
    /// A slot is counted in `len` under the write lock of the key's shard, in the same
    /// critical section that inserts the key; keys leave a table (and `len`) only under
    /// that table's write lock as well. So once a lock is released `len` counts exactly the
    /// keys in the tables: there is never a slot counted for an insertion still to come,
    /// which another thread would have to wait for. The key is cloned before its slot is
    /// counted, so a `Clone` that panics leaves nothing counted either.
    ///
    /// Each round takes this shard's write lock once and, at the cap, sweeps the shards
    /// one lock at a time (no lock is ever held while another is taken, so no deadlock).
    /// A round ends in a decision, in a refusal, or — when other threads took the slots
    /// its sweep freed, or emptied and refilled the tables while it swept — in another
    /// round; there are at most [`NEW_KEY_ROUNDS`], so a check takes at most
    /// `NEW_KEY_ROUNDS × (1 + shards)` lock acquisitions whatever other threads do. The
    /// only other loop, the compare-and-swap in [`try_reserve`](Self::try_reserve), fails
    /// only when another thread changed `len` at that moment (lock-free, as is the GCRA's
    /// own compare-and-swap). A key refused after the last round gets a `retry_after` of
    /// zero: slots are turning over right now. It is a new key, so refusing it never
    /// admits more than the quota.
    fn check_new_key(&self, hash: u64, key: &K, now: u64, n: u32) -> Result<(), Denied> {
        let index = self.shard_index(hash);
        for _ in 0..NEW_KEY_ROUNDS {
            if self.len.load(Ordering::Relaxed) >= self.max_keys {
                let hint = self.no_idle_before.load(Ordering::Relaxed);
                if now < hint {
                    return Err(self.exhausted(now, hint));
                }
            }
            {
                let mut map = self.shards[index].map.write();
                if let Some((_, bucket)) = map.find(hash, |(k, _)| k == key) {
                    // Another thread inserted it meanwhile.
                    return self.gcra.check_n(bucket, now, n);
                }
                if self.len.load(Ordering::Relaxed) < self.max_keys {
                    let owned = key.clone();
                    if self.try_reserve() {
                        let bucket = Bucket::default();
                        let decision = self.gcra.check_n(&bucket, now, n);
                        map.insert_unique(hash, (owned, bucket), |(k, _)| self.hasher.hash_one(k));
                        return decision;
                    }
                }
            }
            match self.sweep(index, now) {
                // Freed slots; take one in the next round.
                Ok(()) => {}
                // Every table was empty as the sweep passed it: keys were evicted and
                // others inserted behind it. Look again.
                Err(u64::MAX) => {}
                Err(earliest) => return Err(self.exhausted(now, earliest)),
            }
        }
        Err(Denied::KeysExhausted { capacity: self.max_keys, retry_after: Duration::ZERO })
    }

    /// Counts one more key if below the cap.
    fn try_reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |len| {
                (len < self.max_keys).then_some(len + 1)
            })
            .is_ok()
    }

    fn exhausted(&self, now: u64, idle_at: u64) -> Denied {
        Denied::KeysExhausted {
            capacity: self.max_keys,
            retry_after: Duration::from_nanos(idle_at.saturating_sub(now)),
        }
    }
}

/// Most rounds [`KeyedLimiter::check_new_key`] takes before refusing a new key.
const NEW_KEY_ROUNDS: usize = 4;

impl<K, C, S> RateLimiter for KeyedLimiter<K, C, S>
where
    K: Hash + Eq + Clone + Send + Sync,
    C: Clock,
    S: BuildHasher + Clone + Send + Sync,
{
    type Key = K;

    fn check_n(&self, key: &K, n: u32) -> Result<(), Denied> {
        let now = self.clock.now_nanos();
        let hash = self.hasher.hash_one(key);
        if let Some((_, bucket)) =
            self.shards[self.shard_index(hash)].map.read().find(hash, |(k, _)| k == key)
        {
            return self.gcra.check_n(bucket, now, n);
        }
        if n == 0 || n > self.gcra.capacity() {
            // Decided without a bucket; do not spend a slot on it.
            return self.gcra.check_n(&Bucket::default(), now, n);
        }
        self.check_new_key(hash, key, now, n)
    }
}

#[cfg(test)]
mod tests;
