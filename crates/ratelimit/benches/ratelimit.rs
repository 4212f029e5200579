//! Benchmarks of mltb-ratelimit with governor (and a plain Redis `SET`) in the same
//! groups, so each ratio comes from one run on one machine.
//!
//! Run: `cargo bench -p mltb-ratelimit --all-features -- --warm-up-time 1 --measurement-time 3`
//!
//! Memory per key is measured as the growth of the process's resident set size
//! (`VmRSS` in `/proc/self/status`) while a limiter is filled with 1M keys (so it includes
//! allocator overhead), and for mltb also by `KeyedLimiter::approx_memory_bytes` (a
//! `size_of` calculation over the table slots); both are printed to stdout.
#![allow(clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use governor::Quota as GQuota;
use mltb_ratelimit::{DirectLimiter, KeyedLimiter, Quota, RateLimiter};

/// 50M/s: checks at benchmark speed are nearly all admitted, by both crates.
const RATE: u32 = 50_000_000;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn ours_quota() -> Quota {
    Quota::per_second(nz(RATE))
}

fn governor_quota() -> GQuota {
    GQuota::per_second(nz(RATE))
}

fn direct(c: &mut Criterion) {
    let mut group = c.benchmark_group("direct_check_uncontended");
    let ours = DirectLimiter::new(ours_quota());
    group.bench_function("mltb", |b| b.iter(|| black_box(ours.check(&()).is_ok())));
    let theirs = governor::RateLimiter::direct(governor_quota());
    group.bench_function("governor", |b| b.iter(|| black_box(theirs.check().is_ok())));
    group.finish();

    let mut group = c.benchmark_group("direct_check_2_threads");
    let ours = Arc::new(DirectLimiter::new(ours_quota()));
    group.bench_function("mltb", |b| {
        b.iter_custom(|iters| two_threads(iters, &ours, |l| black_box(l.check(&()).is_ok())))
    });
    let theirs = Arc::new(governor::RateLimiter::direct(governor_quota()));
    group.bench_function("governor", |b| {
        b.iter_custom(|iters| two_threads(iters, &theirs, |l| black_box(l.check().is_ok())))
    });
    group.finish();
}

/// Time for two threads to make `iters` checks each, started together: the time per
/// check as each thread sees it under contention.
fn two_threads<L: Send + Sync + 'static>(iters: u64, limiter: &Arc<L>, check: fn(&L) -> bool) -> Duration {
    let barrier = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (limiter, barrier) = (limiter.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    check(&limiter);
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().ok();
    }
    start.elapsed()
}

/// A fixed pseudo-random walk over `0..n`, so lookups do not follow insertion order.
fn key_at(i: u64, n: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n
}

fn keyed_at(c: &mut Criterion, n: u64, name: &str) {
    let mut group = c.benchmark_group(name);
    let rss_before = rss_bytes();
    let ours = KeyedLimiter::<u64>::new(ours_quota(), n as usize * 2).unwrap_or_else(|e| panic!("{e}"));
    for k in 0..n {
        let _ = ours.check(&k);
    }
    let ours_bytes = rss_bytes().saturating_sub(rss_before);
    let rss_before = rss_bytes();
    let theirs = governor::RateLimiter::keyed(governor_quota());
    for k in 0..n {
        let _ = theirs.check_key(&k);
    }
    let theirs_bytes = rss_bytes().saturating_sub(rss_before);
    if n >= 100_000 {
        // RSS growth is only meaningful for big tables; small ones fit in freed heap.
        println!(
            "{name}: bytes per key: mltb {:.1} resident ({:.1} by approx_memory_bytes), governor {:.1} resident",
            ours_bytes as f64 / n as f64,
            ours.approx_memory_bytes() as f64 / ours.len() as f64,
            theirs_bytes as f64 / n as f64,
        );
    }
    let mut i = 0u64;
    group.bench_function("mltb", |b| {
        b.iter(|| {
            i += 1;
            black_box(ours.check(&key_at(i, n)).is_ok())
        })
    });
    let mut i = 0u64;
    group.bench_function("governor", |b| {
        b.iter(|| {
            i += 1;
            black_box(theirs.check_key(&key_at(i, n)).is_ok())
        })
    });
    group.finish();
}

fn keyed(c: &mut Criterion) {
    keyed_at(c, 1_000, "keyed_check_1k_keys");
    keyed_at(c, 1_000_000, "keyed_check_1m_keys");
}

/// Resident set size from `/proc/self/status`; 0 where that is unavailable.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(not(feature = "redis"))]
fn redis(_: &mut Criterion) {
    println!("redis_check_vs_set: skipped, built without the `redis` feature");
}

#[cfg(feature = "redis")]
fn redis(c: &mut Criterion) {
    let url = mltb_testkit::redis_url();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        println!("redis_check_vs_set: skipped, no tokio runtime");
        return;
    };
    let limiter = {
        let _guard = rt.enter();
        mltb_ratelimit::RedisLimiter::builder(url.clone(), ours_quota())
            .prefix(format!("mltb-bench:{}:", std::process::id()))
            .timeout(Duration::from_secs(1))
            .build()
    };
    let Ok(limiter) = limiter else {
        println!("redis_check_vs_set: skipped, cannot configure Redis at {url}");
        return;
    };
    let pool = limiter.pool();
    let reachable = rt.block_on(async {
        let Ok(mut conn) = pool.get().await else { return false };
        redis::cmd("PING").query_async::<String>(&mut *conn).await.is_ok()
    });
    if !reachable {
        println!("redis_check_vs_set: skipped, no Redis reachable at {url}");
        return;
    }
    let set_key = format!("mltb-bench:{}:set", std::process::id());
    let mut group = c.benchmark_group("redis_check_vs_set");
    group.bench_function("mltb_check", |b| {
        b.to_async(&rt).iter(|| async { black_box(limiter.check("user").await.is_admitted()) })
    });
    group.bench_function("redis_set", |b| {
        b.to_async(&rt).iter(|| async {
            let Ok(mut conn) = pool.get().await else { return };
            let _: Result<(), _> = redis::cmd("SET").arg(&set_key).arg("1").query_async(&mut *conn).await;
        })
    });
    group.finish();
    println!(
        "redis_check_vs_set: {} checks answered by Redis, {} by the fallback",
        limiter.redis_count(),
        limiter.fallback_count()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = direct, keyed, redis
}
criterion_main!(benches);
