//! Counters kept per shard and the [`Stats`] snapshot summed over shards.

use std::time::Duration;

/// Counters of one shard. They live under the shard's lock, beside the data they count,
/// so keeping them costs a plain increment on a cache line the operation already owns.
/// `repr(C)`: the read counters first, next to the shard's lock.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub(crate) struct Counters {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) inserts: u64,
    pub(crate) evictions: Evictions,
}

/// Entries that left the cache, by cause.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Evictions {
    /// Evicted to make room within the byte budget (or refused by the admission filter).
    pub size: u64,
    /// Found past their TTL (on a read, on eviction, or by `purge_expired`).
    pub expired: u64,
    /// Overwritten by an insert of the same key.
    pub replaced: u64,
    /// Removed by `remove` or `clear`.
    pub removed: u64,
}

impl Evictions {
    /// All causes added up.
    pub fn total(&self) -> u64 {
        self.size + self.expired + self.replaced + self.removed
    }

    fn add(&mut self, o: &Evictions) {
        self.size += o.size;
        self.expired += o.expired;
        self.replaced += o.replaced;
        self.removed += o.removed;
    }
}

/// A snapshot of a cache's counters, summed over its shards.
///
/// Shards are read one after another, so under concurrent use the snapshot is not one
/// instant; each shard's own figures are consistent.
///
/// New fields may be added, so build one (to test an exporter, say) from the default:
///
/// ```
/// let mut stats = mltb_cache::Stats::default();
/// (stats.hits, stats.misses) = (9, 1);
/// stats.window.hits = 3;
/// assert_eq!(stats.hit_ratio(), 0.9);
/// assert_eq!(stats.window.hit_ratio(), Some(1.0));
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found nothing, or an expired entry.
    pub misses: u64,
    /// Entries written (new keys and replacements; refused entries are not counted).
    pub inserts: u64,
    /// Entries that left, by cause.
    pub evictions: Evictions,
    /// Of the hits and misses, the reads whose effect on the eviction policy was
    /// dropped: W-TinyLFU's, recorded while another thread was replaying a full ring of
    /// reads, so that recording would have meant waiting for it. They are counted as
    /// hits and misses all the same; the policy decides as if they had not happened.
    /// Only concurrent reads of one shard drop reads (a single thread's reads are all
    /// replayed); a large share of reads here means the policy works from a sample of
    /// them. Plain LRU drops none (its reads stamp their entries).
    pub reads_dropped: u64,
    /// Bytes currently charged by the weigher.
    pub bytes: usize,
    /// Entries currently held (expired ones not yet noticed included).
    pub entries: usize,
    /// The configured budget.
    pub max_bytes: usize,
    /// Reads over the last [`WindowStats::window`] only: the hit ratio to export and
    /// alert on, where the counts above are since the cache was built. Empty (no reads,
    /// a zero window) unless the builder set a
    /// [`stats_window`](crate::MemoryCacheBuilder::stats_window).
    pub window: WindowStats,
}

/// Reads over a sliding window of the cache's clock: the last
/// [`window`](WindowStats::window), and at most a tenth of it more (the window moves in
/// steps of a tenth).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowStats {
    /// Reads within the window that found a live entry.
    pub hits: u64,
    /// Reads within the window that found nothing, or an expired entry.
    pub misses: u64,
    /// The window's length, as configured by
    /// [`stats_window`](crate::MemoryCacheBuilder::stats_window) (zero when none was).
    pub window: Duration,
}

impl WindowStats {
    /// `hits / (hits + misses)` within the window, or `None` when there was no read in
    /// it: an idle cache has no hit ratio, rather than one of 0 that would set off an
    /// alert.
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.hits + self.misses;
        (total > 0).then(|| self.hits as f64 / total as f64)
    }

    /// Reads within the window.
    pub fn reads(&self) -> u64 {
        self.hits + self.misses
    }
}

impl Stats {
    /// `hits / (hits + misses)`, or 0 before the first read.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 { 0.0 } else { self.hits as f64 / total as f64 }
    }

    pub(crate) fn add_shard(&mut self, c: &Counters, bytes: usize, entries: usize) {
        self.hits += c.hits;
        self.misses += c.misses;
        self.inserts += c.inserts;
        self.evictions.add(&c.evictions);
        self.bytes += bytes;
        self.entries += entries;
    }
}
