//! Starts the real programs that mltb's tests talk to, each on a free loopback port in a
//! temporary directory of its own, and stops and cleans it up on drop.
//!
//! A program that is not installed fails with an error that says how to install it, so a
//! test never passes by skipping the thing it is meant to exercise.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> mltb_testkit::Result<()> {
//! let redis = mltb_testkit::RedisServer::start().await?;
//! println!("redis at {}", redis.url());
//! redis.stop().await?; // simulate an outage
//! redis.restart().await?; // same port, empty data
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! - Every server binds `127.0.0.1` only. A free port is found by binding port 0 and
//!   releasing it; spawning retries on another port if a race took it.
//! - Readiness is awaited by asking the program itself (a `PING`, a JSON-RPC call, a
//!   connect), polling with a deadline, never by sleeping a fixed time.
//! - Environment overrides (`REDIS_URL`, `DATABASE_URL`) let CI point tests at shared
//!   services; tests that need to stop a server always spawn their own.

mod error;
mod net;
mod process;
pub mod redis;

pub use error::{Error, Result};
pub use net::free_port;
pub use redis::{RedisServer, SharedRedis, redis_url};
