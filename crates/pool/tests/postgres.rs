//! The PostgreSQL manager against a real server (a fresh database per test, testkit).
#![cfg(feature = "postgres")]

use std::time::Duration;

use mltb_pool::{Pool, PoolConfig, PostgresManager};
use mltb_testkit::TestDatabase;

fn config() -> PoolConfig {
    PoolConfig::new().max_size(4).min_idle(1).connection_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn queries_run_through_pooled_clients() {
    let db = TestDatabase::create().await.unwrap();
    let pool = Pool::connect(PostgresManager::new(db.url()).unwrap(), config()).await.unwrap();
    let conn = pool.get().await.unwrap();
    conn.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY)").await.unwrap();
    conn.execute("INSERT INTO t VALUES ($1)", &[&7_i64]).await.unwrap();
    let row = conn.query_one("SELECT id FROM t", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 7);
    drop(conn);
    assert_eq!(pool.metrics().closed.total(), 0);
}

#[tokio::test]
async fn a_terminated_backend_is_discarded() {
    let db = TestDatabase::create().await.unwrap();
    let pool = Pool::connect(PostgresManager::new(db.url()).unwrap(), config()).await.unwrap();
    let victim = pool.get().await.unwrap();
    let pid: i32 = victim.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    {
        let admin = pool.get().await.unwrap();
        let ok: bool = admin.query_one("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap().get(0);
        assert!(ok);
    }
    // The client notices once its connection task reads the server's goodbye.
    assert!(victim.simple_query("SELECT 1").await.is_err());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !victim.is_closed() {
        assert!(tokio::time::Instant::now() < deadline, "client never noticed the termination");
        tokio::task::yield_now().await;
    }
    drop(victim);
    assert_eq!(pool.metrics().closed.broken, 1);
    for _ in 0..3 {
        let conn = pool.get().await.unwrap();
        let other: i32 = conn.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        assert_ne!(other, pid);
    }
}

#[test]
fn a_bad_url_names_the_setting() {
    let err = PostgresManager::new("postgres://[::1").unwrap_err();
    assert!(err.to_string().contains("postgres url"), "{err}");
}

#[tokio::test]
async fn statements_are_prepared_once_per_connection_and_evicted_least_recent_first() {
    let db = TestDatabase::create().await.unwrap();
    let manager = PostgresManager::new(db.url()).unwrap().statement_cache(2);
    let stats = std::sync::Arc::clone(manager.statement_stats());
    let pool = Pool::connect(manager, config().max_size(1).min_idle(1)).await.unwrap();
    let conn = pool.get().await.unwrap();
    let (a, b, c) = ("SELECT 1::int8", "SELECT 2::int8", "SELECT 3::int8");
    // Counted over the simple protocol, which prepares nothing itself.
    let prepared = async |conn: &mltb_pool::PgConnection| -> i64 {
        let messages = conn.simple_query("SELECT count(*) FROM pg_prepared_statements").await.unwrap();
        let row = messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        });
        row.and_then(|r| r.get(0)).and_then(|n| n.parse().ok()).expect("a count")
    };
    let first = conn.prepare_cached(a).await.unwrap();
    let again = conn.prepare_cached(a).await.unwrap();
    assert_eq!(prepared(&conn).await, 1, "one server-side statement");
    assert_eq!((stats.hits(), stats.misses()), (1, 1));
    drop(first);
    let value: i64 = conn.query_one(&again, &[]).await.unwrap().get(0);
    assert_eq!(value, 1);
    drop(again);
    conn.prepare_cached(b).await.unwrap();
    conn.prepare_cached(a).await.unwrap(); // a is now more recent than b
    conn.prepare_cached(c).await.unwrap(); // evicts b
    assert_eq!(conn.statements().len(), 2);
    let misses = stats.misses();
    conn.prepare_cached(a).await.unwrap();
    conn.prepare_cached(c).await.unwrap();
    assert_eq!(stats.misses(), misses, "a and c stayed");
    conn.prepare_cached(b).await.unwrap();
    assert_eq!(stats.misses(), misses + 1, "b was evicted");
    // Evicted statements no one holds are closed on the server; the cached ones remain.
    assert_eq!(prepared(&conn).await, 2, "only the cached statements stay prepared");
    drop(conn);
    // A transaction prepares through the same cache.
    let mut conn = pool.get().await.unwrap();
    let cache = std::sync::Arc::clone(conn.statements());
    let tx = conn.transaction().await.unwrap();
    let stmt = cache.prepare(&tx, c).await.unwrap();
    assert_eq!(tx.query_one(&stmt, &[]).await.unwrap().get::<_, i64>(0), 3);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_schema_change_invalidates_the_cache() {
    let db = TestDatabase::create().await.unwrap();
    let manager = PostgresManager::new(db.url()).unwrap();
    let stats = std::sync::Arc::clone(manager.statement_stats());
    let pool = Pool::connect(manager, config()).await.unwrap();
    let conn = pool.get().await.unwrap();
    conn.batch_execute("CREATE TABLE t (a bigint); INSERT INTO t VALUES (1)").await.unwrap();
    let sql = "SELECT * FROM t";
    let stmt = conn.prepare_cached(sql).await.unwrap();
    assert_eq!(conn.query(&stmt, &[]).await.unwrap()[0].len(), 1);
    conn.batch_execute("ALTER TABLE t ADD COLUMN b bigint").await.unwrap();
    let stale = conn.prepare_cached(sql).await.unwrap();
    let err = conn.query(&stale, &[]).await.unwrap_err();
    assert!(conn.statements().invalidate_on(&err), "a stale plan is recognised: {err}");
    assert!(conn.statements().is_empty());
    assert_eq!(stats.invalidations(), 1);
    let fresh = conn.prepare_cached(sql).await.unwrap();
    assert_eq!(conn.query(&fresh, &[]).await.unwrap()[0].len(), 2, "planned afresh");
    // Other errors leave the cache alone.
    let err = conn.query("SELECT * FROM missing", &[]).await.unwrap_err();
    assert!(!conn.statements().invalidate_on(&err));
    assert_eq!(conn.statements().len(), 1);
}

#[tokio::test]
async fn a_cache_of_zero_prepares_every_time() {
    let db = TestDatabase::create().await.unwrap();
    let manager = PostgresManager::new(db.url()).unwrap().statement_cache(0);
    let stats = std::sync::Arc::clone(manager.statement_stats());
    let pool = Pool::connect(manager, config()).await.unwrap();
    let conn = pool.get().await.unwrap();
    for _ in 0..3 {
        let stmt = conn.prepare_cached("SELECT 1").await.unwrap();
        assert_eq!(conn.query_one(&stmt, &[]).await.unwrap().get::<_, i32>(0), 1);
    }
    assert_eq!((stats.hits(), stats.misses(), conn.statements().len()), (0, 3, 0));
}
