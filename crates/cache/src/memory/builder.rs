//! [`MemoryCacheBuilder`]: budget, shards, TTL, weigher, clock and admission.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::flight::Flights;
use crate::weigh::{Weigh, entry_overhead};
use crate::{Clock, MonotonicClock};

use super::lru_store::LruStore;
use super::shard::{Shard, Store};
use super::sims::tracked_per_shard;
use super::tally::Tally;
use super::tinylfu::{DEFAULT_SKETCH_SEED, FIXED_WINDOW, TinyLfuStore, WindowChoice};
use super::window::{BUCKETS, HitWindow};
use super::{Inner, MemoryCache, Padded};

/// The default budget: 200 MB.
pub const DEFAULT_MAX_BYTES: usize = 200 * 1024 * 1024;

/// The most shards a cache may have ([`MemoryCacheBuilder::shards`]).
pub const MAX_SHARDS: usize = 1 << 16;

/// The shortest window [`MemoryCacheBuilder::stats_window`] accepts.
const MIN_STATS_WINDOW: Duration = Duration::from_millis(1);
const _: () = assert!(MIN_STATS_WINDOW.as_nanos() >= BUCKETS as u128);

pub(crate) type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> usize + Send + Sync>;

/// Which entries a full cache keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Plain LRU: every insert is admitted and the least recently used entry leaves. With
    /// one shard this is exact LRU. The default.
    #[default]
    Lru,
    /// W-TinyLFU: a newcomer evicted from a small LRU window enters the main space only if
    /// a frequency sketch says it is seen more often than main's victim. Resists scans and
    /// loops that make LRU thrash. The window's share adapts: six small W-TinyLFU
    /// caches, with windows of 0 % to 100 % (plain LRU), run on a sample of each
    /// shard's keys, and the shard takes the window of whichever has been hitting most
    /// (about 90 – 260 KiB a shard, measured).
    TinyLfu,
    /// W-TinyLFU with the window fixed at a share of the budget, 1 % unless
    /// [`window_share`](MemoryCacheBuilder::window_share) gives another: no simulations, so
    /// a hit costs less, and the share is yours to choose for the workload.
    TinyLfuFixedWindow,
}

/// Builds a [`MemoryCache`]. Get one from [`MemoryCache::builder`] (default weigher) or
/// [`MemoryCache::builder_with_weigher`].
pub struct MemoryCacheBuilder<K, V> {
    max_bytes: usize,
    shards: Option<usize>,
    default_ttl: Option<Duration>,
    weigher: Weigher<K, V>,
    clock: Arc<dyn Clock>,
    admission: Admission,
    expected_entries: Option<usize>,
    stats_window: Option<Duration>,
    sketch_seed: u64,
    window_share: Option<f64>,
}

impl<K, V> fmt::Debug for MemoryCacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCacheBuilder")
            .field("max_bytes", &self.max_bytes)
            .field("shards", &self.shards)
            .field("default_ttl", &self.default_ttl)
            .field("clock", &self.clock)
            .field("admission", &self.admission)
            .field("expected_entries", &self.expected_entries)
            .field("stats_window", &self.stats_window)
            .field("sketch_seed", &self.sketch_seed)
            .field("window_share", &self.window_share)
            .finish_non_exhaustive()
    }
}

/// The default weigher: key and value heap bytes plus the entry's bookkeeping.
fn default_weigher<K: Weigh, V: Weigh>() -> Weigher<K, V> {
    let overhead = entry_overhead::<K, V>();
    Arc::new(move |k: &K, v: &V| overhead + k.heap_bytes() + v.heap_bytes())
}

impl<K, V> MemoryCacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(weigher: Weigher<K, V>) -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            shards: None,
            default_ttl: None,
            weigher,
            clock: Arc::new(MonotonicClock::new()),
            admission: Admission::Lru,
            expected_entries: None,
            stats_window: None,
            sketch_seed: DEFAULT_SKETCH_SEED,
            window_share: None,
        }
    }

    pub(crate) fn with_default_weigher() -> Self
    where
        K: Weigh,
        V: Weigh,
    {
        Self::new(default_weigher())
    }

    /// The budget in bytes as the weigher counts them (default 200 MB). Each shard gets an
    /// equal share.
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The number of shards, each with its own lock and budget share (default: four per
    /// CPU, rounded to a power of two, at most 64). One shard gives exact global LRU;
    /// more shards let threads work in parallel, and an entry must then fit one share.
    /// At most [`MAX_SHARDS`]: every shard (its lock, read line, table and counters)
    /// is allocated when the cache is built, so [`build`](Self::build) refuses more
    /// rather than allocating for them.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// A TTL for entries inserted without one (default: none, entries live until evicted).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Replaces the weigher: `f(key, value)` is the entry's whole charge against
    /// `max_bytes` (count any per-entry overhead you want charged). `|_, _| 1` makes
    /// `max_bytes` a count of entries.
    pub fn weigher(mut self, f: impl Fn(&K, &V) -> usize + Send + Sync + 'static) -> Self {
        self.weigher = Arc::new(f);
        self
    }

    /// The clock used for TTLs (default: [`MonotonicClock`]); tests pass a
    /// [`FakeClock`](crate::FakeClock) and move it instead of sleeping.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The eviction and admission policy (default [`Admission::Lru`]).
    pub fn admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// The seed of the hash that W-TinyLFU's frequency sketch counts keys by (default: a
    /// fixed constant, so that replaying the same requests gives the same hit ratio every
    /// run). Which keys collide in the sketch follows from it, and on some workloads the
    /// hit ratio with it: on the replayed traces, W-TinyLFU's figure moved by up to
    /// 7 points between five seeds on one row and by less than 1 point on 25 of 33
    /// (docs/benchmarks.md). A random seed makes the collisions unpredictable to whoever
    /// chooses the keys. Ignored under [`Admission::Lru`].
    ///
    /// ```
    /// use mltb_cache::{Admission, MemoryCache};
    ///
    /// let cache: MemoryCache<String, Vec<u8>> = MemoryCache::builder()
    ///     .admission(Admission::TinyLfu)
    ///     .sketch_seed(0x2545_f491_4f6c_dd1d)
    ///     .build()?;
    /// cache.insert("k".to_string(), vec![1])?;
    /// # Ok::<(), mltb_cache::Error>(())
    /// ```
    pub fn sketch_seed(mut self, seed: u64) -> Self {
        self.sketch_seed = seed;
        self
    }

    /// How many entries the cache will hold when full, to size the admission filter's
    /// frequency sketch up front (without it the sketch grows with the entry count, up
    /// to one counter word per unit of a shard's budget). The sketch takes 8 bytes per
    /// expected entry. At most [`max_bytes`](Self::max_bytes): only entries that weigh
    /// nothing could make more fit, and [`build`](Self::build) refuses a larger figure
    /// rather than allocating for it. Ignored under [`Admission::Lru`].
    ///
    /// ```
    /// use mltb_cache::{Admission, ErrorKind, MemoryCache};
    ///
    /// let sized = MemoryCache::<u64, u64>::builder_with_weigher(|_, _| 1)
    ///     .max_bytes(10_000)
    ///     .admission(Admission::TinyLfu)
    ///     .expected_entries(10_000)
    ///     .build();
    /// assert!(sized.is_ok());
    /// let err = MemoryCache::<u64, u64>::builder_with_weigher(|_, _| 1)
    ///     .max_bytes(10_000)
    ///     .admission(Admission::TinyLfu)
    ///     .expected_entries(usize::MAX)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidConfig { setting: "expected_entries", .. }));
    /// ```
    pub fn expected_entries(mut self, entries: usize) -> Self {
        self.expected_entries = Some(entries);
        self
    }

    /// The window's share of the budget under [`Admission::TinyLfuFixedWindow`], from 0
    /// (TinyLFU with no window: every newcomer meets the frequency filter at once) to 1
    /// (plain LRU: every newcomer is admitted); default 0.01. A larger window suits
    /// workloads where recent keys come back soon, a smaller one workloads with a stable
    /// popular set under scans. [`Admission::TinyLfu`] chooses the share itself, so
    /// [`build`](Self::build) refuses this setting with any other admission, as it does a
    /// share outside 0 – 1.
    ///
    /// ```
    /// use mltb_cache::{Admission, ErrorKind, MemoryCache};
    ///
    /// let cache = MemoryCache::<u64, u64>::builder_with_weigher(|_, _| 1)
    ///     .max_bytes(1_000)
    ///     .admission(Admission::TinyLfuFixedWindow)
    ///     .window_share(0.25)
    ///     .build()?;
    /// cache.insert(1, 1)?;
    /// let err = MemoryCache::<u64, u64>::builder_with_weigher(|_, _| 1)
    ///     .admission(Admission::TinyLfu)
    ///     .window_share(0.25)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidConfig { setting: "window_share", .. }));
    /// # Ok::<(), mltb_cache::Error>(())
    /// ```
    pub fn window_share(mut self, share: f64) -> Self {
        self.window_share = Some(share);
        self
    }

    /// Counts reads over a sliding window of the cache's clock, reported in
    /// [`Stats::window`](crate::Stats::window): the hit ratio of the last `window` (and at
    /// most a tenth more), counted in ten buckets per shard. At least a millisecond.
    ///
    /// Off by default: it reads the clock on every `get`, which otherwise reads it only
    /// for an entry with a TTL (about 50 more instructions per hit, a third of a hit's
    /// cost, where the clock is the TSC).
    pub fn stats_window(mut self, window: Duration) -> Self {
        self.stats_window = Some(window);
        self
    }

    /// Builds the cache, or says which setting is out of range.
    pub fn build(self) -> Result<MemoryCache<K, V>> {
        let shards = match self.shards {
            Some(0) => return Err(Error::config("shards", 0, "at least 1")),
            Some(n) if n > MAX_SHARDS => {
                return Err(Error::config("shards", n, format!("at most {MAX_SHARDS}")));
            }
            Some(n) => n,
            None => default_shards(),
        };
        if self.max_bytes < shards {
            return Err(Error::config(
                "max_bytes",
                self.max_bytes,
                format!("at least the shard count ({shards}): each shard needs at least one byte"),
            ));
        }
        if let Some(entries) = self.expected_entries.filter(|&n| n > self.max_bytes) {
            return Err(Error::config(
                "expected_entries",
                entries,
                format!(
                    "at most max_bytes ({}): more entries fit only if they weigh nothing, and the \
                     frequency sketch takes 8 bytes per expected entry",
                    self.max_bytes
                ),
            ));
        }
        if let Some(share) = self.window_share {
            if !(0.0..=1.0).contains(&share) {
                return Err(Error::config("window_share", share, "a share of the budget from 0 to 1"));
            }
            if self.admission != Admission::TinyLfuFixedWindow {
                return Err(Error::config(
                    "window_share",
                    share,
                    format!(
                        "no window share with admission {:?}: only Admission::TinyLfuFixedWindow takes one \
                         (Admission::TinyLfu chooses its own)",
                        self.admission
                    ),
                ));
            }
        }
        if let Some(window) = self.stats_window.filter(|w| *w < MIN_STATS_WINDOW) {
            return Err(Error::config(
                "stats_window",
                format!("{window:?}"),
                format!("at least {MIN_STATS_WINDOW:?}"),
            ));
        }
        Ok(self.assemble(shards))
    }

    /// Builds with settings known to be in range (`MemoryCache::new`).
    pub(crate) fn build_defaults(self) -> MemoryCache<K, V> {
        let shards = default_shards().min(self.max_bytes).max(1);
        self.assemble(shards)
    }

    fn assemble(self, shards: usize) -> MemoryCache<K, V> {
        let shard_budget = self.max_bytes / shards;
        let hasher = hashbrown::DefaultHashBuilder::default();
        let per_shard_entries = self.expected_entries.map(|n| n.div_ceil(shards));
        let shard_vec = (0..shards)
            .map(|_| {
                let store = match self.admission {
                    Admission::Lru => Store::Lru(LruStore::new(shard_budget, hasher.clone())),
                    Admission::TinyLfu | Admission::TinyLfuFixedWindow => {
                        let window = if self.admission == Admission::TinyLfuFixedWindow {
                            WindowChoice::Fixed(self.window_share.unwrap_or(FIXED_WINDOW))
                        } else {
                            WindowChoice::Adaptive { tracked: tracked_per_shard(shards) }
                        };
                        Store::TinyLfu(Box::new(TinyLfuStore::new(
                            shard_budget,
                            per_shard_entries,
                            window,
                            hasher.clone(),
                            self.sketch_seed,
                        )))
                    }
                };
                Padded(RwLock::new(Shard::new(store, self.stats_window.map(HitWindow::new))))
            })
            .collect();
        MemoryCache {
            inner: Arc::new(Inner {
                shards: shard_vec,
                flights: Flights::new(shards),
                hasher,
                weigher: self.weigher,
                clock: self.clock,
                default_ttl: self.default_ttl,
                stats_window: self.stats_window,
                max_bytes: self.max_bytes,
                shard_budget,
                admission: self.admission,
                exclusive_reads: self.stats_window.is_some(),
                tally: Arc::new(Tally::default()),
            }),
        }
    }
}

fn default_shards() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus * 4).next_power_of_two().min(64)
}
