//! Progress writes on SQLite (WAL, `synchronous = FULL`): the store's batched
//! `update_progress` from 100 concurrent callers, against raw rusqlite doing the same
//! 100 updates as 100 autocommit transactions (what an unbatched store pays) and as one
//! transaction (the floor).
//!
//! `cargo bench -p mltb-store --bench progress`

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::future::join_all;
use mltb_store::{NewTask, Progress, Source, SqliteStore, StoreConfig, TaskKind};

const TASKS: usize = 100;
const UPDATE: &str =
    "UPDATE tasks SET bytes_done = ?2, bytes_total = ?3, speed = ?4, updated_at = ?5 WHERE id = ?1";

fn progress(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let (store, ids) = rt.block_on(async {
        let store = SqliteStore::open_sqlite(&path, StoreConfig::new()).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..TASKS {
            let task = NewTask {
                chat: 1,
                user: 1,
                source: Source::Url(format!("https://bench/{i}")),
                kind: TaskKind::Mirror,
                name: None,
                options: serde_json::json!({}),
            };
            ids.push(store.create_task(&task).await.unwrap().id);
        }
        (store, ids)
    });
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
        .unwrap();

    let mut group = c.benchmark_group("sqlite_progress_100_tasks");
    group.sample_size(10);
    let mut n = 0_u64;
    group.bench_function("store_batched", |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            let done = n;
            let store = store.clone();
            let ids = ids.clone();
            async move {
                let writes = ids
                    .iter()
                    .map(|&id| store.update_progress(id, Progress { done, total: Some(1 << 30), speed: 1 }));
                for r in join_all(writes).await {
                    r.unwrap();
                }
            }
        });
    });
    group.bench_function("rusqlite_autocommit_each", |b| {
        b.iter(|| {
            n += 1;
            for &id in &ids {
                raw.prepare_cached(UPDATE)
                    .unwrap()
                    .execute((id, n as i64, 1_i64 << 30, 1_i64, 0_i64))
                    .unwrap();
            }
        });
    });
    group.bench_function("rusqlite_one_transaction", |b| {
        b.iter(|| {
            n += 1;
            raw.execute_batch("BEGIN IMMEDIATE").unwrap();
            for &id in &ids {
                raw.prepare_cached(UPDATE)
                    .unwrap()
                    .execute((id, n as i64, 1_i64 << 30, 1_i64, 0_i64))
                    .unwrap();
            }
            raw.execute_batch("COMMIT").unwrap();
        });
    });
    group.finish();
}

criterion_group!(benches, progress);
criterion_main!(benches);
