//! A byte-bounded, sharded in-memory cache on the `lru` crate, with TTLs, cheap stats,
//! single-flight loads and an opt-in W-TinyLFU admission filter, behind a [`Cache`]
//! trait that the Redis L2 and the tiered cache (feature `redis`) share.
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
//! assert_eq!((stats.hits, stats.entries), (1, 2));
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
//!   and invalidation of every other instance's L1 over Redis pub/sub (its docs state the
//!   staleness bound).
//!
//! # Design
//!
//! - **The seam.** [`Cache`] has async methods (`get`, `insert` with an optional TTL,
//!   `remove`, `get_or_load`) so that a remote tier can implement it; [`MemoryCache`] also
//!   has the same operations as plain synchronous methods, which is what hot paths call.
//! - **Bytes, not entries.** Every entry is charged by a weigher. The default charges the
//!   key's and value's [`Weigh::heap_bytes`] plus the entry's bookkeeping: its node in
//!   the shard's arena (key, value, three `u32` links) and one hash-table slot at
//!   hashbrown's 7/8 load. A closure on the builder replaces it. An entry heavier
//!   than one shard's share is refused with [`ErrorKind::Oversized`](crate::ErrorKind::Oversized) rather than flushing the
//!   cache.
//! - **Shards.** The key's hash picks one of N shards, each behind its own `parking_lot`
//!   mutex with `max_bytes / N` of the budget, so threads on different shards do not
//!   contend.
//! - **One arena per shard.** A shard's entries are nodes in one vector, linked by index
//!   into recency lists (one for LRU; window, probation and protected for W-TinyLFU),
//!   with a hashbrown table from key to node index. A hit relinks its node; a W-TinyLFU
//!   promotion or demotion moves it to another list; neither looks the key up again or
//!   allocates, and a freed node is reused by the next insert. No `unsafe`: links are
//!   checked indices. With one shard the cache is an exact global LRU (the trace
//!   test proves it against the published LRU figures).
//! - **TTL.** Per-entry or default; an expired entry is a miss, is dropped when found, and
//!   is counted as an eviction of cause `expired`. Time comes from a [`Clock`], so tests
//!   use a [`FakeClock`] rather than sleeping.
//! - **Stats.** Counters live in each shard beside the data they count and are bumped
//!   under the lock the operation already holds, so they cost a plain add; [`Stats`] sums
//!   them.
//! - **Single-flight.** Loads in progress are kept per key with a `tokio::sync::watch`
//!   channel; the first misser loads, the rest wait on the channel. Errors are shared,
//!   never cached; a cancelled loader hands the load to a waiter. Every tier shares this
//!   machinery; across instances, the tiered cache can add a Redis load lease.
//! - **Admission.** [`Admission::TinyLfu`] is W-TinyLFU (Einziger, Friedman and Manes,
//!   "TinyLFU: A Highly Efficient Cache Admission Policy", 2017) as Caffeine builds it: a
//!   window LRU, a segmented main LRU (probation and protected), a 4-bit count-min sketch
//!   that ages by halving, and hill climbing on the window's share — held up by a
//!   sampled shadow LRU while plain LRU would be hitting more.
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
    Admission, DEFAULT_MAX_BYTES, Evictions, MemoryCache, MemoryCacheBuilder, Stats, WindowStats,
};
pub use mltb_clock::{Clock, FakeClock, MonotonicClock, StdClock};
#[cfg(feature = "redis")]
pub use redis::{Codec, JsonCodec, RedisCache, RedisCacheBuilder, RedisStats};
#[cfg(feature = "redis")]
pub use tiered::{TieredCache, TieredStats};
pub use weigh::Weigh;
