//! Starts the real programs that mltb's tests talk to, each on a free loopback port in a
//! temporary directory of its own, and stops and cleans it up on drop.
//!
//! A program that is not installed fails with an error that says how to install it, so a
//! test never passes by skipping the thing it is meant to exercise.
//!
//! | service | type | needs |
//! |---|---|---|
//! | Redis | [`RedisServer`] (own process), [`SharedRedis`] (`REDIS_URL` or own process) | `redis-server` |
//! | PostgreSQL | [`TestDatabase`]: a fresh database per test on `DATABASE_URL` | a running server |
//! | aria2 | [`Aria2Daemon`]: `aria2c` with JSON-RPC on loopback and a random secret | `aria2c` |
//! | rclone remote | [`RcloneWebdav`]: `rclone serve webdav` of a temp dir or `:memory:` | `rclone` |
//! | HTTP downloads | [`FileServer`]: in-process, files from memory, ranges, errors, slow bodies | nothing |
//! | torrents | [`TorrentBuilder`]: `.torrent` files and magnet links built in the test; [`Tracker`]: an HTTP tracker; [`Seeder`]: `aria2c` seeding | `aria2c` for the seeder |
//! | web pages | [`Browser`]: headless Chromium over WebDriver | `chromium`, `chromedriver` |
//! | benches | [`bench::per_thread`]: multi-thread timing for criterion's `iter_custom`, per thread | nothing |
//!
//! # Example
//!
//! Redis, stopped and restarted to test an outage:
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
//! A database of the test's own, dropped with everything in it at the end:
//!
//! ```no_run
//! # async fn demo() -> mltb_testkit::Result<()> {
//! let db = mltb_testkit::TestDatabase::create().await?; // on DATABASE_URL's server
//! let client = db.connect().await?;
//! client.batch_execute("CREATE TABLE tasks (id bigint PRIMARY KEY)").await.unwrap();
//! println!("{} at {}", db.name(), db.url());
//! # Ok(())
//! # }
//! ```
//!
//! An aria2 daemon to download with:
//!
//! ```no_run
//! # async fn demo() -> mltb_testkit::Result<()> {
//! let aria2 = mltb_testkit::Aria2Daemon::start().await?;
//! // Connect e.g. `aria2_ws::Client::connect(&aria2.ws_url(), Some(aria2.secret()))`.
//! assert!(aria2.version().await?.starts_with('1'));
//! let answer = aria2.rpc("aria2.addUri", &[r#"["http://127.0.0.1:1/f.bin"]"#]).await?; // raw JSON
//! println!("{answer}: into {}", aria2.download_dir().display());
//! aria2.stop().await?;
//! # Ok(())
//! # }
//! ```
//!
//! A WebDAV remote for rclone to mirror to, with the bytes on disk to check:
//!
//! ```no_run
//! # async fn demo() -> mltb_testkit::Result<()> {
//! let webdav = mltb_testkit::RcloneWebdav::start().await?;
//! let destination = format!("{}Mirror/a.bin", webdav.remote()); // :webdav,url='http://127.0.0.1:P':Mirror/a.bin
//! // `rclone copyto a.bin "$destination"`, then:
//! let on_disk = webdav.dir().unwrap().join("Mirror/a.bin");
//! # let _ = (destination, on_disk);
//! webdav.stop().await?; // a failing remote from now on
//! # Ok(())
//! # }
//! ```
//!
//! A file server to download from (no external program needed, so this one runs):
//!
//! ```
//! use std::time::Duration;
//! use mltb_testkit::{FileServer, ServedFile};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mltb_testkit::Result<()> {
//! let server = FileServer::builder()
//!     .file("/plain.bin", vec![7u8; 1024])
//!     .serve("/named", ServedFile::new(&b"hello"[..]).attachment("résumé.txt"))
//!     .serve("/slow.bin", ServedFile::new(vec![0u8; 4096]).drip(512, Duration::from_millis(20)))
//!     .status("/broken", 500)
//!     .redirect("/moved", "/plain.bin")
//!     .start()
//!     .await?;
//! let url = server.url("/plain.bin"); // http://127.0.0.1:PORT/plain.bin
//! # let _ = url;
//! assert_eq!(server.requests(), 0);
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
//! - PostgreSQL is not spawned: each [`TestDatabase`] is a `CREATE DATABASE` on the
//!   server at `DATABASE_URL`, and its drop runs `DROP DATABASE … WITH (FORCE)` on a thread
//!   of its own (bounded by a timeout), so connections the test left open cannot keep it
//!   alive. A test process that is killed leaves its databases behind; their names start
//!   with `mltb_test_<pid>_`.
//! - The [`FileServer`] runs on the test's own runtime, so its slow-drip pauses follow
//!   tokio's clock and cost nothing under `start_paused`.
//! - Torrents stay on loopback: the [`Tracker`] runs in process on 127.0.0.1 and hands
//!   out 127.0.0.1 peers, each [`Seeder`] is an [`Aria2Daemon`] with its sockets bound to
//!   127.0.0.1, and web seeds point at a [`FileServer`]. DHT, LPD and PEX stay off.
//! - Environment overrides (`REDIS_URL`, `DATABASE_URL`) let CI point tests at shared
//!   services; tests that need to stop a server always spawn their own.

pub mod aria2;
pub mod bench;
pub mod browser;
mod disk;
mod error;
pub mod http;
mod net;
pub mod postgres;
mod process;
pub mod rclone;
pub mod redis;
pub mod torrent;
mod util;
mod wire;

pub use aria2::Aria2Daemon;
pub use browser::Browser;
pub use disk::SmallDisk;
pub use error::{Error, Result};
pub use http::{FileServer, FileServerBuilder, ServedFile};
pub use net::free_port;
pub use postgres::{TestDatabase, database_url};
pub use rclone::RcloneWebdav;
pub use redis::{RedisServer, SharedRedis, redis_url};
pub use torrent::{Seeder, Torrent, TorrentBuilder, Tracker};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
