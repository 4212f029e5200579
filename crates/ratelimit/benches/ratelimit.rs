//! Benchmarks of mltb-ratelimit with governor (and a plain Redis `SET`) in the same
//! groups, so each ratio comes from one run on one machine.
//!
//! Run: `cargo bench -p mltb-ratelimit --all-features -- --warm-up-time 1 --measurement-time 3`
//!
//! Multi-thread groups (`*_per_thread`) time each thread's own checks with
//! `mltb_testkit::bench::per_thread`: the figure is the time per check **per thread**,
//! as each thread sees it while the other runs too.
//!
//! The Redis group needs `redis-server` (or `REDIS_URL`); it fails, rather than skips,
//! when there is none, and when any check was answered by the local fallback.
//!
//! Memory per key is measured as the growth of the process's resident set size
//! (`VmRSS` in `/proc/self/status`) while a limiter is filled with 1M keys (so it includes
//! allocator overhead), and for mltb also by `KeyedLimiter::approx_memory_bytes` (a
//! `size_of` calculation over the table slots); both are printed to stdout.
#![allow(clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::Quota as GQuota;
use mltb_ratelimit::{DirectLimiter, KeyedLimiter, Quota, RateLimiter};
use mltb_testkit::bench::per_thread;

/// 10^9 per second, one cell per nanosecond for both crates: faster than any check, so
/// at benchmark speed (tens of millions of checks a second, for minutes) no check is
/// refused and every row measures the admitting path, which [`assert_admitted`] checks.
const RATE: u32 = 1_000_000_000;

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
    group.bench_function("mltb", |b| b.iter(|| assert_admitted(ours.check(&()).is_ok())));
    let theirs = governor::RateLimiter::direct(governor_quota());
    group.bench_function("governor", |b| b.iter(|| assert_admitted(theirs.check().is_ok())));
    group.finish();

    let mut group = c.benchmark_group("direct_check_2_threads_per_thread");
    let ours = DirectLimiter::new(ours_quota());
    group.bench_function("mltb", |b| {
        b.iter_custom(|iters| per_thread(2, iters, |_, _| assert_admitted(ours.check(&()).is_ok())))
    });
    let theirs = governor::RateLimiter::direct(governor_quota());
    group.bench_function("governor", |b| {
        b.iter_custom(|iters| per_thread(2, iters, |_, _| assert_admitted(theirs.check().is_ok())))
    });
    group.finish();
}

/// A refusal would mean the row measured the refusal path instead of the check.
fn assert_admitted(admitted: bool) {
    assert!(black_box(admitted), "a check at benchmark speed was refused");
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
            assert_admitted(ours.check(&key_at(i, n)).is_ok())
        })
    });
    let mut i = 0u64;
    group.bench_function("governor", |b| {
        b.iter(|| {
            i += 1;
            assert_admitted(theirs.check_key(&key_at(i, n)).is_ok())
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
    println!("redis_check_vs_set: not built; run with --all-features (or --features redis)");
}

/// One check through the Redis GCRA script (plain and tiered) beside a plain `SET` over
/// the same pool: the script's cost over the cheapest round trip.
#[cfg(feature = "redis")]
fn redis(c: &mut Criterion) {
    use mltb_ratelimit::{Limit, RedisLimiter, Source, TieredRedisLimiter};

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let redis = rt
        .block_on(mltb_testkit::SharedRedis::get())
        .unwrap_or_else(|e| panic!("redis_check_vs_set needs Redis: {e}"));
    let (limiter, tiered) = {
        let _guard = rt.enter();
        // A timeout far above a check's cost: a check answered by the fallback would
        // mean the row did not measure Redis, so it fails the bench below.
        let limiter = RedisLimiter::builder(redis.url(), ours_quota())
            .prefix(redis.key_prefix())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let tiered = TieredRedisLimiter::builder_with_pool(limiter.pool().clone())
            .prefix(redis.key_prefix())
            .tier("owner", Limit::Unlimited)
            .tier("user", ours_quota())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        (limiter, tiered)
    };
    let pool = limiter.pool();
    let set_key = format!("{}set", redis.key_prefix());
    let mut group = c.benchmark_group("redis_check_vs_set");
    // Criterion skips a closure when its row is filtered out or only listed.
    let (mut ran_check, mut ran_tiered) = (false, false);
    group.bench_function("mltb_check", |b| {
        ran_check = true;
        b.to_async(&rt).iter(|| async {
            let d = limiter.check("user").await;
            assert_eq!((d.source, d.limited), (Source::Redis, false), "{d:?}");
        })
    });
    group.bench_function("mltb_tiered_check", |b| {
        ran_tiered = true;
        b.to_async(&rt).iter(|| async {
            let d = tiered.check_in(&"user", "user").await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((d.source, d.limited), (Source::Redis, false), "{d:?}");
        })
    });
    group.bench_function("redis_set", |b| {
        b.to_async(&rt).iter(|| async {
            let mut conn = pool.get().await.unwrap_or_else(|e| panic!("{e}"));
            let () = redis::cmd("SET")
                .arg(&set_key)
                .arg("1")
                .query_async(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        })
    });
    group.finish();
    for (name, stats, ran) in
        [("mltb_check", limiter.stats(), ran_check), ("mltb_tiered_check", tiered.stats(), ran_tiered)]
    {
        println!(
            "redis_check_vs_set/{name}: {} checks answered by Redis, {} by the fallback",
            stats.redis, stats.fallback
        );
        assert_eq!(
            stats.fallback, 0,
            "{name}: checks fell back to the local limiter, so the row did not measure Redis"
        );
        assert!(!ran || stats.redis > 0, "{name}: no check reached Redis");
    }
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
