//! 10⁵ checkouts over pool sizes 1–100 and 8–256 concurrent tasks: nothing hangs,
//! nothing times out, every connection comes back.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use mltb_pool::{Pool, PoolConfig};
use support::MemManager;

const SIZES: [u32; 4] = [1, 4, 16, 100];
const TASKS: [u32; 3] = [8, 64, 256];
const TOTAL: u64 = 100_000;

/// Runs `per_run` checkouts on a pool of `size` from `tasks` tasks; each holds its
/// connection across a yield so that tasks contend.
async fn run(size: u32, tasks: u32, per_run: u64) {
    let config =
        PoolConfig::new().max_size(size).min_idle(size / 2).connection_timeout(Duration::from_secs(20));
    let pool = Pool::connect(MemManager::default(), config).await.unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for t in 0..u64::from(tasks) {
        let (pool, done) = (pool.clone(), done.clone());
        let n = per_run / u64::from(tasks) + u64::from(t < per_run % u64::from(tasks));
        set.spawn(async move {
            for i in 0..n {
                let conn = pool.get().await.unwrap_or_else(|e| panic!("size {size}, tasks {tasks}: {e}"));
                if i % 2 == 0 {
                    tokio::task::yield_now().await;
                }
                drop(conn);
                done.fetch_add(1, Relaxed);
            }
        });
    }
    let all = async {
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), all).await.is_err() {
        panic!(
            "size {size}, tasks {tasks}: hung after {} of {per_run} checkouts; {:?}",
            done.load(Relaxed),
            pool.state()
        );
    }
    let (state, m) = (pool.state(), pool.metrics());
    assert_eq!(done.load(Relaxed), per_run);
    assert_eq!((m.checkouts, m.returns, m.timeouts), (per_run, per_run, 0), "size {size}, tasks {tasks}");
    assert_eq!((state.in_use, state.waiting), (0, 0), "size {size}, tasks {tasks}: {state:?}");
    assert_eq!(state.idle, state.connections, "all connections idle: {state:?}");
    assert!(state.connections <= size && m.peak_in_use <= size, "{state:?}, peak {}", m.peak_in_use);
    assert!(m.utilization <= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_checkouts_across_sizes_and_concurrency() {
    let runs = (SIZES.len() * TASKS.len()) as u64;
    let mut total = 0;
    for (k, (size, tasks)) in SIZES.iter().flat_map(|&s| TASKS.iter().map(move |&t| (s, t))).enumerate() {
        let per_run = TOTAL / runs + u64::from((k as u64) < TOTAL % runs);
        run(size, tasks, per_run).await;
        total += per_run;
    }
    assert_eq!(total, TOTAL);
}
