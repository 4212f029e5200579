//! SQLite only: the file on disk — durability settings, refusing damaged or newer
//! files without touching them, reopening, and a property test of hostile text.

mod support;

use std::path::Path;
use std::sync::Arc;

use mltb_query_analyzer::NoopSink;
use mltb_store::{
    AnyStore, Backend, BackendKind, Database, Error, Executor, LATEST_VERSION, SqliteStore, Statement,
    StoreConfig, TaskFilter,
};
use proptest::prelude::*;
use support::new_task;

async fn pragma(store: &SqliteStore, sql: &'static str) -> mltb_store::Value {
    let exec = Executor::new(Arc::new(NoopSink));
    let mut out = store.backend().run(&exec, None, vec![Statement::query(sql, vec![])], false).await.unwrap();
    out.remove(0).rows.remove(0).0.remove(0)
}

#[tokio::test]
async fn connections_use_wal_full_sync_and_foreign_keys() {
    let h = support::sqlite().await;
    assert_eq!(pragma(&h.store, "PRAGMA journal_mode").await, "wal".into());
    assert_eq!(pragma(&h.store, "PRAGMA synchronous").await, mltb_store::Value::Int(2), "FULL");
    assert_eq!(pragma(&h.store, "PRAGMA foreign_keys").await, mltb_store::Value::Int(1));
    assert_eq!(pragma(&h.store, "PRAGMA user_version").await, mltb_store::Value::Int(LATEST_VERSION));
    assert_eq!(h.store.backend().kind(), BackendKind::Sqlite);
}

#[tokio::test]
async fn reopening_keeps_the_data_and_migrates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mltb.db");
    let id = {
        let store = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap();
        let id = store.create_task(&new_task(1, "https://keep")).await.unwrap().id;
        store.close().await;
        id
    };
    let sink = support::Recorder::new();
    let store = SqliteStore::open_sqlite(&path, support::config(&sink)).await.unwrap();
    assert_eq!(sink.count_matching("CREATE TABLE"), 0, "no migration ran twice");
    assert_eq!(store.task(id).await.unwrap().unwrap().source, mltb_store::Source::Url("https://keep".into()));
    assert_eq!(store.backend().path(), path);
}

#[tokio::test]
async fn any_store_opens_the_configured_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        AnyStore::open(&Database::Sqlite(dir.path().join("any.db")), StoreConfig::new()).await.unwrap();
    assert_eq!(store.backend().kind(), BackendKind::Sqlite);
    let t = store.create_task(&new_task(1, "https://any")).await.unwrap();
    assert_eq!(store.unfinished_tasks().await.unwrap()[0].task.id, t.id);
}

fn assert_refused_untouched(path: &Path, before: &[u8], err: &Error) {
    assert_eq!(std::fs::read(path).unwrap(), before, "the file must be left byte for byte");
    assert!(
        !path.with_extension("db-wal").exists()
            || std::fs::metadata(path.with_extension("db-wal")).unwrap().len() == 0
    );
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn a_garbage_file_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mltb.db");
    let garbage: Vec<u8> = (0..8192_u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap_err();
    assert!(matches!(&err, Error::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("mltb.db") && text.contains("left untouched") && text.contains("backup"), "{text}");
    assert_refused_untouched(&path, &garbage, &err);
}

#[tokio::test]
async fn a_damaged_database_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mltb.db");
    {
        let store = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap();
        for i in 0..200 {
            store.create_task(&new_task(1, &format!("https://fill/{i}/{}", "x".repeat(200)))).await.unwrap();
        }
        store.close().await;
    }
    // Keep the header (a valid SQLite file), overwrite pages in the middle.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 16 * 4096, "{} bytes", bytes.len());
    for b in &mut bytes[3 * 4096..12 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap_err();
    assert!(matches!(&err, Error::Corrupt { .. }), "{err}");
    assert_refused_untouched(&path, &bytes, &err);
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mltb.db");
    {
        let store = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap();
        store.create_task(&new_task(1, "https://from-the-future")).await.unwrap();
        store.close().await;
    }
    // A newer program migrated it: a version this one does not know.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from the future', 0);
             PRAGMA user_version = 99;",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap_err();
    match &err {
        Error::NewerSchema { found, supported, .. } => assert_eq!((*found, *supported), (99, LATEST_VERSION)),
        other => panic!("expected NewerSchema, got {other}"),
    }
    assert!(err.to_string().contains("run the newer program"), "{err}");
    assert_refused_untouched(&path, &before, &err);
    // Only the migrations table says so (user_version reset): still refused, by the
    // check inside the migration transaction too.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 1;").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap_err();
    assert!(matches!(err, Error::NewerSchema { found: 99, .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[cfg(not(feature = "postgres"))]
#[tokio::test]
async fn postgres_without_the_feature_is_a_clear_error() {
    let err = AnyStore::open(&Database::Postgres("postgres://x@127.0.0.1/db".into()), StoreConfig::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`postgres` feature"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any text without NUL within the limit comes back exactly as it went in.
    #[test]
    fn any_text_round_trips(source in "[^\u{0}]{0,200}", name in proptest::option::of("[^\u{0}]{0,60}")) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let h = support::sqlite().await;
            let mut new = new_task(1, &source);
            new.name = name.clone();
            let t = h.store.create_task(&new).await.unwrap();
            let back = h.store.task(t.id).await.unwrap().unwrap();
            prop_assert_eq!(back.source, mltb_store::Source::Url(source.clone()));
            prop_assert_eq!(back.name, name);
            prop_assert_eq!(h.store.tasks_with_files(TaskFilter::Recent(10)).await.unwrap().len(), 1);
            Ok(())
        })?;
    }
}

/// An SQLite backend that says it listens for other stores' invalidations: the test
/// plays the listener through the [`Invalidations`](mltb_store::Invalidations) it was
/// handed, as a backend shared by several processes would.
#[derive(Debug)]
struct Listening {
    inner: mltb_store::SqliteBackend,
    handed: Arc<parking_lot::Mutex<Option<mltb_store::Invalidations>>>,
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Backend for Listening {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    async fn migrate(&self, exec: &Executor) -> mltb_store::Result<i64> {
        self.inner.migrate(exec).await
    }

    async fn run(
        &self,
        exec: &Executor,
        span: Option<mltb_query_analyzer::SpanId>,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> mltb_store::Result<Vec<mltb_store::Outcome>> {
        self.inner.run(exec, span, statements, transaction).await
    }

    async fn listen_for_invalidation(
        &self,
        channel: &str,
        invalidations: mltb_store::Invalidations,
    ) -> mltb_store::Result<Option<tokio::task::AbortHandle>> {
        assert_eq!(channel, "mltb_store_invalidate");
        invalidations.listening();
        *self.handed.lock() = Some(invalidations);
        let task = tokio::spawn(std::future::pending::<()>());
        let abort = task.abort_handle();
        *self.task.lock() = Some(task);
        Ok(Some(abort))
    }
}

#[tokio::test]
async fn a_backend_that_listens_drives_the_cache_through_the_hook() {
    let dir = tempfile::tempdir().unwrap();
    let pool = mltb_pool::PoolConfig::sqlite();
    let inner = mltb_store::SqliteBackend::open(dir.path().join("mltb.db"), pool).await.unwrap();
    let handed = Arc::new(parking_lot::Mutex::new(None));
    let backend = Listening { inner, handed: Arc::clone(&handed), task: parking_lot::Mutex::new(None) };
    let sink = support::Recorder::new();
    let store = mltb_store::Store::with_backend(backend, support::config(&sink)).await.unwrap();
    let reads = || sink.count_matching("FROM users WHERE id");
    let invalidations = handed.lock().clone().expect("the store asked the backend to listen");
    assert_eq!(store.invalidation_stats().connects, 1);

    // Listening: reads are cached, and the backend's writes need no notify statement
    // (the default `notify_invalidation` gives none).
    store.set_role(1, 42, mltb_store::Role::Sudo).await.unwrap();
    assert_eq!(store.role(42).await.unwrap(), Some(mltb_store::Role::Sudo));
    assert_eq!(store.role(42).await.unwrap(), Some(mltb_store::Role::Sudo));
    assert_eq!(reads(), 1);
    // Another store's write, heard by the backend: the key is read again.
    invalidations.received("role:42/0123456789abcdef");
    assert_eq!(store.invalidation_stats().received, 1);
    store.role(42).await.unwrap();
    assert_eq!(reads(), 2);
    // The backend stopped hearing: the cache is bypassed until it listens again.
    invalidations.lost();
    store.role(42).await.unwrap();
    store.role(42).await.unwrap();
    assert_eq!(reads(), 4);
    invalidations.listening();
    assert_eq!(store.invalidation_stats().connects, 2);
    store.role(42).await.unwrap();
    store.role(42).await.unwrap();
    assert_eq!(reads(), 5);

    // Dropping the store stops the listener the backend started.
    let task = store.backend().task.lock().take().expect("a listener task");
    drop(store);
    assert!(task.await.unwrap_err().is_cancelled());
}

#[tokio::test]
async fn sqlite_keeps_the_default_hooks_and_trusts_its_cache() {
    let h = support::sqlite().await;
    assert_eq!(h.store.invalidation_stats(), mltb_store::InvalidationStats::default());
    assert!(h.store.backend().notify_invalidation("mltb_store_invalidate", "role:1".into()).is_none());
    h.store.role(9).await.unwrap();
    h.store.role(9).await.unwrap();
    assert_eq!(h.sink.count_matching("FROM users WHERE id"), 1, "cached without a listener");
}

#[tokio::test]
async fn a_version_1_database_is_migrated_to_the_latest_keeping_its_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mltb.db");
    let id = {
        let store = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap();
        let id = store.create_task(&new_task(1, "https://kept")).await.unwrap().id;
        let ended = store.create_task(&new_task(1, "https://ended")).await.unwrap().id;
        store.mark_failed(ended, "long ago").await.unwrap();
        store.close().await;
        id
    };
    // Make it the file version 1 of the program left: no sent_files, no tasks.link, no
    // tasks.announced_at, no leases or roles, no cancel requests, version 1 recorded.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE sent_files; ALTER TABLE tasks DROP COLUMN link; DROP INDEX tasks_unannounced; \
             ALTER TABLE tasks DROP COLUMN announced_at; DROP INDEX tasks_owner; DROP TABLE roles; \
             ALTER TABLE tasks DROP COLUMN owner; ALTER TABLE tasks DROP COLUMN lease_until; \
             ALTER TABLE tasks DROP COLUMN fence; ALTER TABLE tasks DROP COLUMN cancel_requested; \
             DELETE FROM schema_migrations WHERE version > 1; \
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap();
    assert_eq!(pragma(&store, "PRAGMA user_version").await, mltb_store::Value::Int(LATEST_VERSION));
    assert_eq!(store.task(id).await.unwrap().map(|t| t.id), Some(id));
    let sent = mltb_store::SentFile::new("0".repeat(64), 1, "file-id", "a.bin");
    store.remember_sent_file(&sent).await.unwrap();
    assert_eq!(store.sent_file(&"0".repeat(64)).await.unwrap(), Some(sent));
    assert!(
        store.unannounced_tasks(10).await.unwrap().is_empty(),
        "a task that ended before is not announced again"
    );
}
