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
