//! The SQLite manager on a database in a temporary directory.
#![cfg(feature = "sqlite")]

use std::time::Duration;

use mltb_pool::{ErrorKind, Pool, PoolConfig, SqliteManager};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_mode_and_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let manager = SqliteManager::new(dir.path().join("db.sqlite")).busy_timeout(Duration::from_secs(10));
    let pool = Pool::connect(manager, PoolConfig::sqlite().max_size(4)).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let mode: String = conn.call(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0))).await.unwrap();
    assert_eq!(mode, "wal");
    let busy: i64 = conn.call(|c| c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))).await.unwrap();
    assert_eq!(busy, 10_000);
    conn.call(|c| c.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)")).await.unwrap();
    drop(conn);

    let mut set = tokio::task::JoinSet::new();
    for w in 0..8_i64 {
        let pool = pool.clone();
        set.spawn(async move {
            for i in 0..25_i64 {
                let mut conn = pool.get().await.unwrap();
                conn.call(move |c| c.execute("INSERT INTO t (n) VALUES (?1)", [w * 100 + i])).await.unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let mut conn = pool.get().await.unwrap();
    let rows: i64 = conn.call(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))).await.unwrap();
    assert_eq!(rows, 200);
    drop(conn);
    assert!(pool.state().connections <= 4);
}

#[tokio::test]
async fn a_panicking_call_loses_only_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pool =
        Pool::connect(SqliteManager::new(dir.path().join("db.sqlite")), PoolConfig::sqlite()).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let err = conn.call(|_| -> rusqlite::Result<()> { panic!("user code panicked") }).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Blocking(_)), "{err:?}");
    assert!(conn.is_broken());
    let again = conn.call(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))).await.unwrap_err();
    assert!(matches!(again.kind(), ErrorKind::Blocking(_)), "{again:?}");
    drop(conn);
    assert_eq!(pool.metrics().closed.broken, 1);
    let mut conn = pool.get().await.unwrap();
    let one: i64 = conn.call(|c| c.query_row("SELECT 1", [], |r| r.get(0))).await.unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn sql_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let pool =
        Pool::connect(SqliteManager::new(dir.path().join("db.sqlite")), PoolConfig::sqlite()).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let err = conn.call(|c| c.execute_batch("SELEC nonsense")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Sqlite(_)), "{err:?}");
    assert!(!conn.is_broken(), "an SQL error keeps the connection");
}

#[tokio::test]
async fn the_on_connect_hook_runs_on_every_new_connection() {
    let dir = tempfile::tempdir().unwrap();
    let hooked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&hooked);
    let manager = SqliteManager::new(dir.path().join("db.sqlite")).on_connect(move |c| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        c.execute_batch("PRAGMA synchronous = FULL;")
    });
    let pool = Pool::connect(manager, PoolConfig::sqlite().max_size(2).min_idle(2)).await.unwrap();
    let (mut a, mut b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    for conn in [&mut a, &mut b] {
        let sync: i64 = conn.call(|c| c.query_row("PRAGMA synchronous", [], |r| r.get(0))).await.unwrap();
        assert_eq!(sync, 2, "FULL on every connection, not NORMAL");
    }
    assert_eq!(hooked.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_on_connect_error_fails_the_connect() {
    let dir = tempfile::tempdir().unwrap();
    let manager = SqliteManager::new(dir.path().join("db.sqlite"))
        .on_connect(|c| c.execute_batch("PRAGMA this is not sql;"));
    let config = PoolConfig::sqlite().min_idle(0).connection_timeout(Duration::from_millis(300));
    let pool = Pool::connect(manager, config).await.unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(pool.metrics().connect_errors >= 1, "{err}");
    assert_eq!(pool.state().connections, 0, "no connection without its settings");
}

/// SQLite counts the busy timeout in 32-bit milliseconds and rusqlite panics past that
/// ("too big"), which the pool reported as "task N panicked". A longer one is refused
/// by name; the longest allowed works.
#[tokio::test]
async fn a_busy_timeout_past_sqlites_range_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let config = PoolConfig::sqlite().connection_timeout(Duration::from_millis(300));
    let too_long = SqliteManager::MAX_BUSY_TIMEOUT + Duration::from_millis(1);
    for busy in [too_long, Duration::from_secs(25 * 24 * 3600), Duration::MAX] {
        let err =
            Pool::connect(SqliteManager::new(&path).busy_timeout(busy), config.clone()).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::InvalidConfig { what: "busy_timeout", .. }), "{err:?}");
        assert!(err.is_config() && !err.is_retryable(), "{err:?}");
    }
    // A lazily built pool reports it as the reason its backend is unavailable.
    let manager = SqliteManager::new(&path).busy_timeout(Duration::MAX);
    let pool = Pool::new(manager, config.clone().min_idle(0)).unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(err.to_string().contains("busy_timeout"), "{err}");

    let manager = SqliteManager::new(&path).busy_timeout(SqliteManager::MAX_BUSY_TIMEOUT);
    let pool = Pool::connect(manager, config).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let busy: i64 = conn.call(|c| c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))).await.unwrap();
    assert_eq!(busy, i64::from(i32::MAX));
}
