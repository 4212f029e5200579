//! A byte-bounded, sharded in-memory cache — LRU or W-TinyLFU over an index-linked arena —
//! with TTLs, cheap stats, single-flight loads and a Redis tier, behind one [`Cache`] trait.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mltb_cache::{Admission, MemoryCache};
//!
//! # fn main() -> mltb_cache::Result<()> {
//! let cache: MemoryCache<String, Vec<u8>> = MemoryCache::builder()
//!     .max_bytes(64 * 1024 * 1024)           // a promise: the weigher's bytes never exceed this
//!     .default_ttl(Duration::from_secs(300))
//!     .admission(Admission::TinyLfu)         // opt-in; plain LRU is the default
//!     .stats_window(Duration::from_secs(60)) // opt-in: the hit ratio of the last minute
//!     .build()?;
//!
//! cache.insert("user:1".to_string(), b"settings".to_vec())?;
//! assert_eq!(cache.get("user:1").as_deref(), Some(&b"settings"[..]));
//!
//! // Concurrent misses on one key run the loader once.
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let v = rt.block_on(cache.get_or_load("user:2".to_string(), || async {
//!     Ok::<_, std::io::Error>(b"loaded".to_vec())
//! }))?;
//! assert_eq!(v, b"loaded");
//!
//! // An entry bigger than a shard's share of the budget is refused, not cached.
//! let huge = vec![0u8; 65 * 1024 * 1024];
//! assert!(cache.insert("big".to_string(), huge).unwrap_err().is_oversized());
//!
//! let stats = cache.stats();
//! assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 2));
//! assert_eq!(stats.window.hit_ratio(), Some(0.5)); // export it; alert when it drops
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `bytes`: [`Weigh`] for `bytes::Bytes`.
//! - `redis`: `RedisCache`, the L2: an `mltb-pool` Redis pool (its own, or one shared
//!   with the rest of the program through `RedisCache::builder_with_pool`), keys under a
//!   namespace, TTL by `SET … PX`, values through a `Codec` (serde JSON by default). A
//!   failed or slow Redis (past a bounded timeout) makes a read a miss and a counted
//!   error, never a failed read; Redis coming back is used again without a restart.
//!   The same feature brings `TieredCache`: L1 → L2 → loader read-through, write-through,
//!   invalidation of every other instance's L1 over Redis pub/sub (its docs state the
//!   staleness bound), and a value's TTL kept in every L1 that holds a copy.
//!
//! # Design
//!
//! - **The seam.** [`Cache`] has async methods (`get`, `insert` with an optional TTL,
//!   `remove`, `get_or_load`) so that a remote tier can implement it; [`MemoryCache`] also
//!   has the same operations as plain synchronous methods, which is what hot paths call.
//! - **Bytes, not entries.** Every entry is charged by a weigher. The default charges the
//!   key's and value's [`Weigh::heap_bytes`] plus the entry's bookkeeping: its node in
//!   the shard's arena (key, value, weight, and a deadline whose top bit is the hit
//!   mark: 32 bytes for a `u64` key and value), its three `u32` links and one
//!   hash-table slot at hashbrown's 7/8 load. A closure on the builder replaces it. An
//!   entry heavier than one shard's share is refused with [`ErrorKind::Oversized`] rather
//!   than flushing the cache.
//! - **Shards.** The key's hash picks one of N shards, each behind its own `parking_lot`
//!   reader-writer lock with `max_bytes / N` of the budget, so threads on different
//!   shards do not contend.
//! - **One arena per shard.** A shard's entries are nodes in one vector, linked by index
//!   into recency lists (one for LRU; window, probation and protected for W-TinyLFU),
//!   with a hashbrown table from key to node index; the links are a vector of their own,
//!   apart from the nodes readers look at. A W-TinyLFU hit, when replayed, relinks its
//!   node; a promotion or demotion moves it to another list; neither looks the key up
//!   again or allocates, and a freed node is reused by the next insert. No `unsafe`:
//!   links are checked indices.
//! - **LRU reads take the lock shared and move nothing.** Under [`Admission::Lru`] a
//!   `get` finds the entry and clones its value under the shard's shared lock. It does
//!   not move the entry to the front of a list (which writes the links of up to three
//!   other entries and the list's head, lines other cores then lose): it writes a stamp
//!   into its own node from the shard's read clock, on the lock's cache line, and sets a
//!   mark there. Writes link their entry at the front of the shard's list with a fresh
//!   stamp. Eviction finds the least recent entry from the stamps: an unmarked entry at
//!   the end of the list was not read since it was written, so nothing in the list is
//!   older; a marked one moves once into a heap ordered by stamp, and the victim is the
//!   older of the list's tail and the heap's least (an entry read again since it went in
//!   takes its new place first). Recency is exact for one thread and approximate under
//!   concurrency:
//!   - A shard read by one thread between two writes to it (its batch's owner) stamps
//!     every read in order. With one shard the cache is an exact global LRU (the trace
//!     tests prove it against the published LRU figures, and a model test against a
//!     reference LRU).
//!   - Once a second thread reads a shard between two writes to it, its reads only set
//!     a second mark ("seen") in the node, written once; eviction gives a seen entry the
//!     newest stamp, a second chance as CLOCK gives. The shard's batches stay shared for
//!     its next 64 writes (each would otherwise hand the next batch to one thread, whose
//!     stamps write nodes the other core reads); a thread that then reads it alone is
//!     exact again. A program that never reads from two threads at once stays exact
//!     throughout.
//!   - W-TinyLFU's hits take the shard's lock shared too, but its replay of a read
//!     (sketch, segments, window simulations) is too heavy to run under a lock
//!     other threads' reads wait on. So the policy's state is under a lock of its own:
//!     a hit leaves itself in a 16-slot ring, and the reader that fills the ring
//!     replays it, taking the policy's lock without waiting; other readers go on
//!     reading meanwhile. A hit that finds the ring full while another reader replays
//!     is dropped (still counted). The exclusive holder replays the ring before
//!     anything else, so one thread's reads are still replayed in order. A W-TinyLFU
//!     miss is replayed at once under the shared lock, after the hits waiting in the
//!     ring, or, while another reader holds the policy, counted and dropped the same way.
//!   - A read that finds an expired entry, and every read with a
//!     [stats window](MemoryCacheBuilder::stats_window) on, take the exclusive lock,
//!     one at a time, in order.
//! - **TTL.** Per-entry or default; an expired entry is a miss, is dropped when found, and
//!   is counted as an eviction of cause `expired`. A deadline is a `u64` of nanoseconds
//!   on the cache's [`Clock`] ([`MonotonicClock`] by default, from `mltb-clock`), so
//!   tests use a [`FakeClock`] rather than sleeping. An operation reads the clock at most
//!   once, and a read of an entry without a TTL not at all (unless a stats window is on).
//! - **Stats.** A thread that reads a shard alone counts its hits and misses in the
//!   shard's read line, with plain stores; reads of several threads at once are
//!   counted per thread, each in a cache line of its own that only it writes (a
//!   thread gives its line back when it ends), so a read adds no locked instruction
//!   and no shared line to the lock's own; no read goes uncounted. The other counters
//!   sit beside the data they count, bumped under the exclusive lock. [`Stats`] sums them. [`Stats::window`] holds the reads of a sliding window (a ring of ten buckets
//!   per shard on the cache's clock), the figure to alert on; it is opt-in
//!   ([`MemoryCacheBuilder::stats_window`]) because it reads the clock on every `get`.
//! - **Single-flight.** Loads in progress are kept per key with a `tokio::sync::watch`
//!   channel; the first misser loads, the rest wait on the channel. Errors are shared,
//!   never cached; a cancelled loader hands the load to a waiter. Every tier shares this
//!   machinery; across instances, the tiered cache can add a Redis load lease.
//! - **Admission.** [`Admission::TinyLfu`] is W-TinyLFU (Einziger, Friedman and Manes,
//!   "TinyLFU: A Highly Efficient Cache Admission Policy", 2017) as Caffeine builds it: a
//!   window LRU, a segmented main LRU (probation and protected), a 4-bit count-min sketch
//!   that ages by halving, and a window whose share follows small simulations of the
//!   same policy at six shares, run on a sample of the keys (MiniSim, from the same
//!   authors' "Adaptive Software Cache Management", 2018). How it compares with LRU
//!   and with moka on real traces: `docs/benchmarks.md` in the repository
//!   (`cargo run --release -p mltb-cache --example trace_replay`). No policy wins
//!   everywhere: W-TinyLFU is ahead of LRU where scans and loops thrash it and behind
//!   it on recency-biased traces (zigzag, backf, scarab at 50k entries; corda at 5k by
//!   0.02 pp): at least LRU on 27 of the 33 rows measured, not on every row. Against the
//!   best of lru, moka and quick_cache it is within 0.5 pp on 21 of 33 rows by the
//!   median of five sketch seeds (20 with the default seed alone), and at most 4.12 pp
//!   below it on any (sprite at 100 entries, default seed); `docs/benchmarks.md` lists
//!   every row.
//! - **Errors.** [`Error`] has a [`kind`](Error::kind) and the family's predicates:
//!   [`is_retryable`](Error::is_retryable) (a loader or backend failure),
//!   [`retry_after`](Error::retry_after), [`is_oversized`](Error::is_oversized).
//! - **Redis connections.** The L2 takes connections from an `mltb_pool::Pool` of
//!   `RedisManager`, whose connections report themselves broken after a dropped-socket
//!   or I/O error (and a call that times out marks its connection broken), so the pool
//!   closes them on return. Idle connections that went stale with them (Redis
//!   restarted) are flushed by `PING`ing each connection before use after a failure,
//!   until one answers: an outage costs one failed call, not one per idle connection,
//!   and nothing is rebuilt, so a shared pool works. Pub/sub for the tiered cache's
//!   invalidations needs a connection of its own, opened from the URL outside the pool.

mod cache;
mod error;
mod flight;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod tiered;
mod weigh;

pub use cache::Cache;
pub use error::{Error, ErrorKind, Result};
pub use memory::{
    Admission, DEFAULT_MAX_BYTES, Evictions, MAX_SHARDS, MemoryCache, MemoryCacheBuilder, Stats, WindowStats,
};
pub use mltb_clock::{Clock, FakeClock, MonotonicClock, StdClock};
#[cfg(feature = "redis")]
pub use redis::{Codec, JsonCodec, RedisCache, RedisCacheBuilder, RedisStats};
#[cfg(feature = "redis")]
pub use tiered::{TieredCache, TieredStats};
pub use weigh::Weigh;

/// The README's examples, compiled as doctests (its tiered example needs `redis`).
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
