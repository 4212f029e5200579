//! Measured async connection pools: bb8 behind a fair gate and a checkout timeout,
//! with Redis, PostgreSQL and SQLite managers and the utilization figures needed to
//! size a pool from data.
//!
//! # Example
//!
//! Any [`ManageConnection`] works; the managers below are behind features.
//!
//! ```
//! use std::time::Duration;
//! use mltb_pool::{ManageConnection, Pool, PoolConfig};
//!
//! /// Hands out numbered "connections"; a real manager opens sockets.
//! #[derive(Debug, Default)]
//! struct Numbers(std::sync::atomic::AtomicU32);
//!
//! impl ManageConnection for Numbers {
//!     type Connection = u32;
//!     type Error = std::io::Error;
//!     async fn connect(&self) -> Result<u32, std::io::Error> {
//!         Ok(self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
//!     }
//!     async fn is_valid(&self, _: &mut u32) -> Result<(), std::io::Error> { Ok(()) }
//!     fn has_broken(&self, _: &mut u32) -> bool { false }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mltb_pool::Result<()> {
//! let config = PoolConfig::new().max_size(2).min_idle(1).connection_timeout(Duration::from_millis(100));
//! let pool = Pool::connect(Numbers::default(), config).await?;
//!
//! let a = pool.get().await?;
//! let b = pool.get().await?;
//! assert_ne!(*a, *b);
//! let err = pool.get().await.unwrap_err(); // both connections are out
//! assert!(err.is_timeout() && err.is_retryable());
//! drop((a, b));
//!
//! let m = pool.metrics();
//! assert_eq!((m.checkouts, m.returns, m.timeouts), (2, 2, 1));
//! assert_eq!(pool.state().idle, 2);
//! println!("utilization {:.0}% (target < {:.0}%)", m.utilization * 100.0, m.target_utilization * 100.0);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `redis`: [`RedisManager`] — multiplexed connections that report themselves
//!   broken after a dropped-connection error (bb8-redis's never do).
//! - `postgres`: [`PostgresManager`] — tokio-postgres clients without TLS; broken when
//!   the connection task has ended. Each [`PgConnection`] keeps a [`StatementCache`], so
//!   [`PgConnection::prepare_cached`] saves a round trip per query.
//! - `sqlite`: [`SqliteManager`] — rusqlite (bundled SQLite) in WAL mode with a busy
//!   timeout; [`SqliteConnection::call`] runs each closure on tokio's blocking pool.
//!
//! # Design
//!
//! - **bb8 underneath, a gate in front.** [`Pool`] wraps `bb8::Pool` and adds a tokio
//!   [`Semaphore`](tokio::sync::Semaphore) with one permit per connection: a checkout
//!   first takes a permit (FIFO, so waiters are served in order), then asks bb8, which
//!   then almost always finds an idle connection or room to open one. The permit is
//!   released only after bb8 has the connection back.
//! - **The bb8 hang.** bb8 wakes waiters with `Notify::notify_one`, which stores at
//!   most one wake-up; when two connections come back while two checkouts are between
//!   "no idle connection" and starting to wait, one wake-up is lost and that checkout
//!   sleeps beside an idle connection until its timeout (djc/bb8#122 reports this as a
//!   deadlock under benchmark load). The gate bounds how many checkouts can wait
//!   inside bb8, and each wait inside bb8 is cut into slices (50 ms, doubling to 2 s)
//!   after which bb8 is asked again, so a lost wake-up costs one slice, never the
//!   whole timeout. The stress test (`tests/stress.rs`) runs 10⁵ checkouts over pool
//!   sizes 1–100 and 8–256 tasks under a hard deadline.
//! - **Typed timeouts.** A checkout that runs out of time fails with
//!   [`ErrorKind::Timeout`] (all connections busy) or [`ErrorKind::Unavailable`] (connects or
//!   validations were failing — the backend is down), never hangs.
//! - **Failing fast (opt-in).** bb8 does not wake a waiting checkout when a connect
//!   fails, so while the backend is down every checkout waits its whole timeout. With
//!   [`PoolConfig::fail_fast`] the pool remembers that the latest connects failed (its
//!   bb8 error sink sees every failure) and, while nothing is idle and no connect has
//!   succeeded since, refuses checkouts at once with [`ErrorKind::Unavailable`]; one
//!   checkout at a time (at most one per [`PoolConfig::probe_interval`]) goes through
//!   as a probe, and any checkout already waiting gives up as soon as a connect fails.
//!   Refusals count in [`Metrics::unavailable`], not in `timeouts`. For callers with a
//!   local fallback (a cache, a rate limiter).
//! - **Broken connections are not reused.** bb8 asks the manager's `has_broken` when
//!   a connection comes back and closes it if so; the managers here answer truthfully,
//!   and `test_on_checkout` (default on) catches the rest before a caller sees them.
//! - **Utilization is time-weighted.** Busy connections are integrated over time
//!   (under a small lock, exact on tokio's clock) per tumbling window; the trailing
//!   window is the current partial window plus the previous one weighted by its
//!   overlap. Arrival rate and mean use time come from the same windows, and
//!   [`Metrics::recommendation`] turns them into a size with Little's law.
//! - **Latency histograms** (wait, use) are fixed power-of-two buckets on atomics.
//! - **Time** is tokio's clock, so tests run on a paused clock. bb8 itself measures
//!   idle timeout and max lifetime on the real clock.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The crate docs link to feature-gated items; docs.rs builds with all features.
#![cfg_attr(
    not(all(feature = "redis", feature = "postgres", feature = "sqlite")),
    allow(rustdoc::broken_intra_doc_links)
)]

mod config;
mod error;
mod metrics;
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
mod url;

pub use bb8;
pub use bb8::ManageConnection;
pub use config::PoolConfig;
pub use error::{Error, ErrorKind, Result};
pub use metrics::{Closed, HistogramSnapshot, Metrics, SizeRecommendation};
pub use pool::{Pool, Pooled, State};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{DEFAULT_STATEMENT_CACHE, PgConnection, PostgresManager, StatementCache, StatementStats};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisConnection, RedisManager};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteConnection, SqliteManager};
pub use url::redact_url;

/// The README's examples, compiled as doctests.
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
