//! mltb's HTTP API, served from the bot's process: liveness, readiness, OpenMetrics, and
//! tasks, stats and query diagnostics behind a bearer token.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use mltb_api::{Api, ApiConfig, FnCheck, Metrics, Secret, StoreCheck, TelegramStats};
//! # use mltb_store::SqliteBackend;
//! # async fn run(
//! #     engine: mltb_engine::Engine<SqliteBackend>,
//! #     scheduler: mltb_telegram::scheduler::Scheduler,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Arc::new(Metrics::new());
//! let store = engine.store().clone();
//! metrics.add_cache("store", { let s = store.clone(); move || s.cache_stats() });
//! metrics.add_batcher("store_writes", { let s = store.clone(); move || s.write_stats() });
//! metrics.add_pool("sqlite", { let s = store.clone(); move || s.backend().pool().metrics() });
//! metrics.add_telegram("main", move || TelegramStats::of(&scheduler));
//!
//! let config = ApiConfig::new()
//!     .bind_str("127.0.0.1:9180")?
//!     .token(Secret::new(std::env::var("MLTB_API_TOKEN")?)?);
//! let api = Api::builder(config, metrics.clone(), Arc::new(engine))
//!     .ready_check(StoreCheck::new(store))
//!     .ready_check(FnCheck::new("aria2", || async { Ok(()) }))
//!     .download_dir("downloads")
//!     .build()?;
//! let stop = tokio_util::sync::CancellationToken::new();
//! let running = api.serve(stop.clone().cancelled_owned()).await?;
//! // ... until a signal:
//! stop.cancel();
//! running.wait().await?;
//! # Ok(()) }
//! ```
//!
//! # Routes
//!
//! | route | access | answer |
//! |---|---|---|
//! | `GET /health` | open | 200 `{"status":"ok","uptime_seconds":…}` while the process runs |
//! | `GET /ready` | open | 200 when every [`ReadyCheck`] passes, else 503; the body names each check, and why it failed to a client with the token (checks run at most once a second) |
//! | `GET /metrics` | open (or token, [`ApiConfig::protect_metrics`]) | OpenMetrics text; Prometheus text 0.0.4 when the `Accept` header names only `text/plain` |
//! | `GET /api/v1/tasks[?finished=N]` | token | [`TaskList`] |
//! | `GET /api/v1/tasks/{id}` | token | [`TaskInfo`], 404 if there is no such task |
//! | `POST /api/v1/tasks/{id}/cancel` | token | 202 [`CancelAccepted`]; 409 if finished or running elsewhere; 404 if unknown |
//! | `GET /api/v1/stats` | token | [`Stats`] |
//! | `GET /api/v1/diagnostics/queries` | token | the query analyzer's `Report` |
//!
//! `/api/*` needs `Authorization: Bearer <token>` (401 with `WWW-Authenticate: Bearer`
//! otherwise; 403 when no token is configured) and is rate limited per client address
//! (429 with `Retry-After`). Errors are `{"error": "..."}` ([`ErrorBody`]).
//!
//! # Metrics
//!
//! [`Metrics`] holds a `prometheus_client` registry with the API's own families (HTTP
//! requests by route template and status, latency, rate-limit rejections, bytes
//! moved, build info) and one collector that reads the sources the binary adds (engine,
//! Telegram scheduler, caches, pools, batchers, query analyzer, disks) and the process's
//! own figures at scrape time. `docs/api.md` lists every family.
//!
//! # Design
//!
//! - **Not generic.** The engine is `Engine<B>`; the API sees it through the small
//!   object-safe [`TaskEngine`] trait, so its state and router are plain types, and
//!   tests can stand in for the engine.
//! - **Stats structs in, metrics out.** Crates expose plain stats structs; sources are
//!   closures returning them, read only when scraped. One collector per kind of source
//!   keeps one family per name when several caches or pools are added.
//! - **Token.** The configured token's SHA-256 is kept, and a presented token's digest
//!   is compared with it in constant time (`subtle`), so neither length nor prefix
//!   shows in timing. The token never appears in logs, errors or `Debug` output.
//! - **Rate limit before auth.** `/api/*` goes through `mltb-ratelimit`'s tower layer,
//!   keyed by client IP, before the token check, so guessing tokens is limited too.
//! - **TLS 1.3 only**, with rustls on the aws-lc-rs provider (the one reqwest already
//!   brings). Handshakes run on their own tasks with a timeout, so a slow client cannot
//!   stall the accept loop.
//! - **Loopback by default** (`127.0.0.1:9180`); binding beyond it without TLS logs a
//!   warning.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod engine;
mod error;
mod metrics;
mod model;
mod ready;
mod routes;
mod server;

pub use config::{ApiConfig, DEFAULT_PORT, Secret, TlsFiles};
pub use engine::{QueueCounts, TaskEngine};
pub use error::{Error, ErrorKind, Result};
pub use metrics::{
    BalancerStats, BuildInfo, DiskStats, EndpointStats, Metrics, OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS_TEXT_CONTENT_TYPE, ProcessStats, TelegramStats,
};
pub use model::{ByteCounts, CancelAccepted, DiskInfo, ErrorBody, Stats, TaskCounts, TaskInfo, TaskList};
pub use ready::{CheckResult, FnCheck, Readiness, ReadyCheck, StoreCheck};
pub use server::{Api, ApiBuilder, Running};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
