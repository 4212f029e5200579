//! Checkout + return on a warm pool with a trivial in-memory manager: mltb-pool beside
//! raw bb8 and deadpool (managed) in one group, so the added cost comes from one run.
//! `mltb-pool/fail_fast` is the same pool with `PoolConfig::fail_fast` on, as
//! `mltb-cache` and `mltb-ratelimit` build their Redis pools.
//!
//! `cargo bench -p mltb-pool --bench checkout`
#![allow(missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mltb_pool::{ManageConnection, Pool, PoolConfig};

const SIZE: u32 = 16;

#[derive(Debug, Clone, Copy)]
struct Trivial;

impl ManageConnection for Trivial {
    type Connection = u64;
    type Error = std::io::Error;

    async fn connect(&self) -> Result<u64, std::io::Error> {
        Ok(7)
    }

    async fn is_valid(&self, _: &mut u64) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn has_broken(&self, _: &mut u64) -> bool {
        false
    }
}

impl deadpool::managed::Manager for Trivial {
    type Type = u64;
    type Error = Infallible;

    async fn create(&self) -> Result<u64, Infallible> {
        Ok(7)
    }

    async fn recycle(
        &self,
        _: &mut u64,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

fn checkout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (ours, fast, raw, dead) = rt.block_on(async {
        // Same sizes and checkout test for both bb8 pools; all connections opened up front.
        let config = PoolConfig::new().max_size(SIZE).min_idle(SIZE).test_on_checkout(true);
        let ours = Pool::connect(Trivial, config.clone()).await.unwrap();
        let fast = Pool::connect(Trivial, config.fail_fast(true)).await.unwrap();
        let raw = bb8::Pool::builder()
            .max_size(SIZE)
            .min_idle(SIZE)
            .test_on_check_out(true)
            .build(Trivial)
            .await
            .unwrap();
        let dead =
            deadpool::managed::Pool::<Trivial>::builder(Trivial).max_size(SIZE as usize).build().unwrap();
        // Warm deadpool to its full size too.
        let warm: Vec<_> = futures_all(&dead).await;
        drop(warm);
        (ours, fast, raw, dead)
    });

    let mut group = c.benchmark_group("pool/checkout_return");
    // Criterion skips a closure when its row is filtered out or only listed.
    let (mut ran_ours, mut ran_fast) = (false, false);
    group.bench_function("mltb-pool", |b| {
        ran_ours = true;
        b.to_async(&rt).iter(|| async {
            let conn = ours.get().await.unwrap();
            black_box(*conn);
        })
    });
    group.bench_function("mltb-pool/fail_fast", |b| {
        ran_fast = true;
        b.to_async(&rt).iter(|| async {
            let conn = fast.get().await.unwrap();
            black_box(*conn);
        })
    });
    group.bench_function("bb8", |b| {
        b.to_async(&rt).iter(|| async {
            let conn = raw.get().await.unwrap();
            black_box(*conn);
        })
    });
    group.bench_function("deadpool", |b| {
        b.to_async(&rt).iter(|| async {
            let conn = dead.get().await.unwrap();
            black_box(*conn);
        })
    });
    group.finish();

    // Preconditions: every timed checkout got a warm connection and gave it back; none
    // waited out a timeout, was refused, or opened a new connection.
    for (name, pool, ran) in [("mltb-pool", &ours, ran_ours), ("mltb-pool/fail_fast", &fast, ran_fast)] {
        if !ran {
            continue;
        }
        let m = pool.metrics();
        assert!(m.checkouts > 0, "{name}: no checkout was timed");
        assert_eq!(m.checkouts, m.returns, "{name}: a connection was not returned");
        assert_eq!((m.timeouts, m.unavailable, m.connect_errors), (0, 0, 0), "{name}: {m:?}");
        assert_eq!(m.opened, u64::from(SIZE), "{name}: the pool opened connections while timed");
    }
}

async fn futures_all(pool: &deadpool::managed::Pool<Trivial>) -> Vec<deadpool::managed::Object<Trivial>> {
    let mut out = Vec::new();
    for _ in 0..SIZE {
        out.push(pool.get().await.unwrap());
    }
    out
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = checkout
}
criterion_main!(benches);
