//! One query on a warm PostgreSQL connection: prepared through the connection's statement
//! cache (one round trip) beside tokio-postgres given the SQL text (prepare, then
//! execute: two round trips), in one group. Needs PostgreSQL at `DATABASE_URL` (testkit;
//! default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! `cargo bench -p mltb-pool --features postgres --bench postgres`
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mltb_pool::{Pool, PoolConfig, PostgresManager};
use mltb_testkit::TestDatabase;

const SQL: &str = "SELECT id, name FROM t WHERE id = $1";

fn query(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (db, pool, stats) = rt.block_on(async {
        let db = TestDatabase::create().await.expect("PostgreSQL at DATABASE_URL (see mltb-testkit)");
        let manager = PostgresManager::new(db.url()).unwrap();
        let stats = manager.statement_stats().clone();
        let pool = Pool::connect(manager, PoolConfig::new().max_size(1).min_idle(1)).await.unwrap();
        let conn = pool.get().await.unwrap();
        conn.batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, name text NOT NULL);
             INSERT INTO t SELECT i, 'name-' || i FROM generate_series(1, 1000) AS i",
        )
        .await
        .unwrap();
        drop(conn);
        (db, pool, stats)
    });

    let mut group = c.benchmark_group("postgres/query_one");
    // Criterion skips the closure when this row is filtered out or only listed.
    let mut ran = false;
    group.bench_function("prepare_cached", |b| {
        ran = true;
        b.to_async(&rt).iter(|| async {
            let conn = pool.get().await.unwrap();
            let stmt = conn.prepare_cached(SQL).await.unwrap();
            black_box(conn.query_one(&stmt, &[&42_i64]).await.unwrap().len());
        })
    });
    group.bench_function("sql_text", |b| {
        b.to_async(&rt).iter(|| async {
            let conn = pool.get().await.unwrap();
            black_box(conn.query_one(SQL, &[&42_i64]).await.unwrap().len());
        })
    });
    group.finish();

    // Precondition: the cached row prepared its statement once and reused it after.
    assert!(!ran || stats.misses() == 1, "prepare_cached prepared {} times, expected once", stats.misses());
    drop(pool);
    drop(db);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = query
}
criterion_main!(benches);
