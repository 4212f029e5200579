//! The SQLite manager on a database in a temporary directory.
#![cfg(feature = "sqlite")]

use std::time::Duration;

use mltb_pool::{Error, Pool, PoolConfig, SqliteManager};

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
    assert!(matches!(err, Error::Blocking(_)), "{err:?}");
    assert!(conn.is_broken());
    let again = conn.call(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))).await.unwrap_err();
    assert!(matches!(again, Error::Blocking(_)), "{again:?}");
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
    assert!(matches!(err, Error::Sqlite(_)), "{err:?}");
    assert!(!conn.is_broken(), "an SQL error keeps the connection");
}
