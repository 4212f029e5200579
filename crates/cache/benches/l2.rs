//! L2 hit latency: `RedisCache::get` (pool checkout, GET, JSON decode) beside a raw
//! `GET` of the same bytes on one multiplexed connection, in one criterion group. Needs
//! `redis-server` (spawned by mltb-testkit) or `REDIS_URL`. Every read in both rows must
//! be a hit, and the cache must count no Redis error: a miss would time a different path.
//!
//! ```text
//! cargo bench -p mltb-cache --features redis --bench l2
//! ```
#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mltb_cache::RedisCache;
use mltb_testkit::SharedRedis;

fn l2_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    // `_redis` keeps a spawned server alive until the end.
    let (_redis, cache, raw, key) = rt.block_on(async {
        let redis = SharedRedis::get().await.unwrap_or_else(|e| panic!("redis for the bench: {e}"));
        let cache: RedisCache<String, String> = RedisCache::builder(redis.url())
            .namespace(redis.key_prefix())
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let value = "x".repeat(1024);
        cache.insert("hot".to_string(), value, None).await.unwrap_or_else(|e| panic!("{e}"));
        let raw = redis::Client::open(redis.url())
            .unwrap_or_else(|e| panic!("{e}"))
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let key = format!("{}hot", redis.key_prefix());
        (redis, cache, raw, key)
    });
    let mut g = c.benchmark_group("l2_hit_1KiB");
    g.sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    let hot = "hot".to_string();
    // Criterion skips the closure when this row is filtered out or only listed.
    let mut ran = false;
    g.bench_function("mltb/redis_cache_get", |b| {
        ran = true;
        b.to_async(&rt).iter(|| async {
            let v = cache.get(&hot).await;
            assert!(v.is_some(), "the L2 read missed: {:?}", cache.stats());
            black_box(v)
        });
    });
    g.bench_function("redis/raw_get", |b| {
        b.to_async(&rt).iter(|| {
            let mut conn = raw.clone();
            let key = key.clone();
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(v.is_some(), "the raw read of {key} missed");
                black_box(v)
            }
        });
    });
    g.finish();
    let s = cache.stats();
    assert!(!ran || (s.hits > 0 && s.misses == 0 && s.errors == 0), "every L2 read was a hit: {s:?}");
}

criterion_group!(benches, l2_hit);
criterion_main!(benches);
