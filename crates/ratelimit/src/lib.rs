//! GCRA rate limiters — one bucket, one per key with a hard key cap, per user tier, or
//! shared through Redis — behind one small [`RateLimiter`] trait.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mltb_ratelimit::{FakeClock, KeyedLimiter, Quota, RateLimiter};
//!
//! let quota: Quota = "10/s burst 2".parse()?;
//! let clock = FakeClock::new();
//! let per_user = KeyedLimiter::<u64, _>::builder(quota).max_keys(10_000).clock(clock.clone()).build()?;
//!
//! assert!(per_user.check(&42).is_ok());
//! assert!(per_user.check(&42).is_ok());
//! let denied = per_user.check(&42).unwrap_err();
//! assert_eq!(denied.retry_after(), Some(Duration::from_millis(100)));
//! assert!(per_user.check(&7).is_ok(), "other users are unaffected");
//!
//! clock.advance(Duration::from_millis(100));
//! assert!(per_user.check(&42).is_ok());
//! # Ok::<(), mltb_ratelimit::Error>(())
//! ```
//!
//! # Features
//!
//! - `redis`: [`RedisLimiter`] and [`TieredRedisLimiter`], one budget per key (and tier)
//!   shared by many processes through a GCRA Lua script on Redis; while Redis cannot
//!   answer, a [`Fallback`] decides (by default each process enforces the whole quota
//!   locally). Connections come from an [`mltb_pool::Pool`] of its own or one shared
//!   with the rest of the program ([`RedisLimiter::builder_with_pool`]).
//! - `tower`: [`RateLimitLayer`], limiting a tower service by a key taken from each
//!   request.
//!
//! # Design
//!
//! - **GCRA on one word.** Every bucket is a single `AtomicU64` holding its theoretical
//!   arrival time (TAT) in nanoseconds; a check is a load and a compare-and-swap, no lock.
//!   `retry_after` is exact: checking again at `now + retry_after` succeeds, one
//!   nanosecond earlier fails. The emission interval is rounded *up* to a whole
//!   nanosecond so that rounding can only under-admit.
//! - **Time is a seam.** Limiters take a [`Clock`]; [`FakeClock`] and [`TokioClock`]
//!   make tests deterministic.
//! - **The trait is dyn-compatible.** [`RateLimiter`] has only synchronous methods, so
//!   `Box<dyn RateLimiter<Key = K>>` works for limiters chosen from config; waiting
//!   ([`RateLimiterExt::until_ready`]) is a blanket extension trait returning a `Send`
//!   future, usable on trait objects too, without `async-trait`.
//! - **Bounded keyed memory.** [`KeyedLimiter`] has a hard key cap. At the cap it evicts
//!   idle keys (full buckets — forgetting them changes no decision); if none is idle it
//!   refuses the *new* key with [`Denied::KeysExhausted`] rather than forget a limited
//!   key, so it never admits more than the quota. Keys are hashed once (hashbrown's
//!   `HashTable`; the hash picks shard and slot). A `u64` key costs 19–39 bytes of table
//!   ([`KeyedLimiter::approx_memory_bytes`]).
//! - **Clock cost matters.** The default [`MonotonicClock`] reads the TSC through
//!   `quanta` (as governor does), since `std::time::Instant::now` can cost more than the
//!   rest of a check; [`StdClock`] is there if you prefer std.
//! - **Tiers** are keyed limiters per tier plus unlimited tiers, built from config
//!   ([`TieredLimiter`]); [`TieredRedisLimiter`] keeps one Redis bucket per tier and key.
//! - **Redis** keeps the GCRA on the server's clock, one `EVALSHA` per check; its
//!   async checks return a [`Decision`] rather than implementing the
//!   synchronous trait, since they are network calls. When Redis fails, the
//!   [`Fallback`] answers and the limiter counts it ([`RedisStats`]). Its `mltb-pool`
//!   pool closes connections that broke during a check; after a failure the limiter
//!   `PING`s connections before use until one answers, so idle connections that went
//!   stale with it (a Redis restart) cost no further failed checks. No pool is ever
//!   replaced, so the pool can be shared.
//! - **Errors** have the family's shape: [`Error`] with a [`kind`](Error::kind), and
//!   [`is_config`](Error::is_config), [`is_retryable`](Error::is_retryable) and
//!   [`retry_after`](Error::retry_after). Builders check every setting in `build()`.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The crate docs link to feature-gated items; docs.rs builds with all features.
#![cfg_attr(not(all(feature = "redis", feature = "tower")), allow(rustdoc::broken_intra_doc_links))]

mod clock;
mod direct;
mod error;
mod gcra;
mod keyed;
mod limiter;
mod quota;
#[cfg(feature = "redis")]
mod redis;
mod tiered;
#[cfg(feature = "tower")]
mod tower;

pub use clock::{Clock, FakeClock, MonotonicClock, StdClock, TokioClock};
pub use direct::DirectLimiter;
pub use error::{Denied, Error, ErrorKind, NotUntil, Result};
pub use keyed::{KeyedLimiter, KeyedLimiterBuilder};
pub use limiter::{RateLimiter, RateLimiterExt};
pub use quota::Quota;
#[cfg(feature = "redis")]
pub use redis::{
    Decision, Fallback, RedisLimiter, RedisLimiterBuilder, RedisStats, Source, TieredRedisLimiter,
    TieredRedisLimiterBuilder,
};
pub use tiered::{Limit, TieredLimiter, TieredLimiterBuilder};
#[cfg(feature = "tower")]
pub use tower::{RateLimitError, RateLimitFuture, RateLimitLayer, RateLimitService};

/// The README's examples, compiled and run as doctests (one needs the `redis` feature).
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
