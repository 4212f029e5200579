//! The bot's persistence: users and roles, authorized chats, user settings, tasks with
//! their files and uploaded parts, status messages and an append-only audit log, on
//! SQLite (embedded default) or PostgreSQL, with every query instrumented.
//!
//! # Example
//!
//! ```
//! use mltb_store::{NewTask, Progress, Role, Source, SqliteStore, StoreConfig, TaskKind, TaskState};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mltb_store::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open_sqlite(dir.path().join("mltb.db"), StoreConfig::new()).await?;
//!
//! // Authorization: read through a cache, invalidated by writes, audited.
//! store.set_role(1, 42, Role::Sudo).await?;
//! assert_eq!(store.role(42).await?, Some(Role::Sudo));
//! assert_eq!(store.audit_log(10).await?[0].action, "set_role");
//!
//! // A task is durable when create_task returns.
//! let task = store
//!     .create_task(&NewTask {
//!         chat: -100,
//!         user: 42,
//!         source: Source::Url("https://example.com/file.iso".into()),
//!         kind: TaskKind::Leech,
//!         name: None,
//!         options: serde_json::json!({ "split": "2GB" }),
//!     })
//!     .await?;
//! store.mark_started(task.id, "2089b05ecca3d829").await?;
//! store.update_progress(task.id, Progress { done: 1 << 20, total: Some(1 << 30), speed: 5 << 20 }).await?;
//!
//! // After a restart: everything to resume, files included, in two queries.
//! let resume = store.unfinished_tasks().await?;
//! assert_eq!(resume[0].task.state, TaskState::Downloading);
//! assert_eq!(resume[0].task.gid.as_deref(), Some("2089b05ecca3d829"));
//!
//! // Bad input is refused with the field and its limit.
//! let err = store.mark_failed(task.id, &"x".repeat(5000)).await.unwrap_err();
//! assert_eq!(err.to_string(), "task.error is 5000 bytes long; the limit is 4096 bytes");
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `postgres`: [`PostgresBackend`] and [`PostgresStore`] (tokio-postgres, no TLS,
//!   through an `mltb-pool` pool, plus one listener connection for cache
//!   invalidation), and PostgreSQL in [`AnyStore::open`].
//!
//! # Design
//!
//! - **One seam, one store.** [`Backend`] is small: apply the schema, run statements
//!   (optionally in one transaction). [`Store`] holds all the logic and all the SQL
//!   once, with `?N` placeholders that the PostgreSQL backend rewrites to `$N`; only
//!   DDL differs per dialect (`backend/schema.rs`). [`AnyStore`] picks the backend at
//!   run time without `dyn`.
//! - **One instrumented executor.** Backends run every statement through
//!   [`Executor`], which times it, counts its rows and reports a
//!   [`QueryEvent`](mltb_query_analyzer::QueryEvent) with the SQL text and a digest
//!   of the bound values to the configured sink; [`Store::span`] groups a command's
//!   queries.
//! - **Parameters only.** Values are always bound; no SQL is built from input.
//!   Text fields have byte limits ([`limits`]) and may not hold NUL bytes; both are
//!   refused with an error naming the field, before anything reaches the database.
//! - **Cached reads.** Roles, chat authorization and settings are read through an
//!   `mltb-cache` [`MemoryCache`](mltb_cache::MemoryCache) (single-flight), and every
//!   write through the store invalidates its key; a generation counter drops a value
//!   whose load raced a write.
//! - **Invalidation across instances (PostgreSQL).** Every write that invalidates a
//!   cached key also runs `SELECT pg_notify(<channel>, <key>)` in its own transaction,
//!   so the notification is delivered only if the write commits. The payload names the
//!   key: `role:<user id>`, `chat:<chat id>` or `settings:<user id>`, then
//!   `/<origin>` (the sender's random id: a store skips its own, having invalidated
//!   the key itself); others are ignored (logged at debug, counted). Every [`PostgresStore`] keeps one dedicated
//!   listener connection (not from the pool) on the channel
//!   ([`StoreConfig::invalidation_channel`], default `mltb_store_invalidate`) and
//!   invalidates the named key in its own cache, bumping the generation counter, so a
//!   `/unauth` or a ban on one instance holds on all of them at once. The store does
//!   not open until it is listening. If the listener's connection drops, reads bypass
//!   the cache until it is back (reconnecting with backoff from 100 ms, doubling, capped
//!   at 30 s), and every (re)connect clears the whole cache, since notifications sent
//!   meanwhile are lost. The listener stops when the store is closed or its last handle
//!   dropped; a closed store reads the database directly. Counters:
//!   [`Store::invalidation_stats`]. SQLite sends no notifications: it is one process
//!   by design, and another process writing the file is seen after the TTL. The store
//!   reaches all this through two provided hooks of the [`Backend`] trait,
//!   [`listen_for_invalidation`](Backend::listen_for_invalidation) and
//!   [`notify_invalidation`](Backend::notify_invalidation): no-ops by default (SQLite),
//!   overridden by [`PostgresBackend`], forwarded by [`AnyBackend`] and by any wrapper
//!   that forwards them, which hands the listener an [`Invalidations`].
//! - **Batched writes.** Progress and state transitions go through an `mltb-batch`
//!   batcher: concurrent writes share one transaction, and each caller gets its own
//!   result (a missing task or a refused transition fails alone). A call returns after
//!   its batch committed.
//! - **Durability.** SQLite runs in WAL mode with `synchronous = FULL`: a commit is on
//!   disk when the call returns, across a process kill *and* a power loss (NORMAL
//!   would only survive the former). The cost, one WAL fsync per commit, is paid once
//!   per batch for progress. Foreign keys are on, and the busy timeout is 5 s.
//! - **Refusing what it does not understand.** An existing SQLite file is opened
//!   read-only and checked (`quick_check`, schema version) before the pool touches it;
//!   a damaged file or a newer schema is refused and left unchanged. Migrations run in
//!   one transaction at start-up (PostgreSQL: under an advisory lock), recorded in
//!   `schema_migrations` (and SQLite's `user_version`).
//! - **Append-only audit log.** Privileged changes (roles, chats) write their audit
//!   entry in the same transaction; triggers refuse `UPDATE` and `DELETE` (and, on
//!   PostgreSQL, `TRUNCATE`) on `audit_log`.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The crate docs link to feature-gated items; docs.rs builds with all features.
#![cfg_attr(not(feature = "postgres"), allow(rustdoc::broken_intra_doc_links))]

mod backend;
mod error;
mod exec;
pub mod limits;
mod model;
pub mod secret;
mod store;
mod value;

#[cfg(feature = "postgres")]
pub use backend::postgres::PostgresBackend;
pub use backend::sqlite::{SqliteBackend, SqliteOptions};
pub use backend::{AnyBackend, Backend, BackendKind, LATEST_VERSION};
pub use error::{Error, Result};
pub use exec::Executor;
pub use model::{
    AuditEntry, NewAuditEntry, NewTask, Part, Progress, Role, SentFile, Source, StatusMessage, Task,
    TaskFile, TaskFilter, TaskKind, TaskState, TaskWithFiles, User, UserSettings,
};
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
pub use store::{
    AnyStore, CancelRequest, Database, InvalidationStats, Invalidations, Renewed, RoleLease, Span,
    SqliteStore, Store, StoreConfig,
};
pub use value::{Outcome, Row, Statement, Value};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Unix milliseconds now (0 if the clock is before 1970): the clock the store's
/// timestamps and leases are judged by.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
