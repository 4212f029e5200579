//! The Redis tier on a real `redis-server` (started by mltb-testkit, or `REDIS_URL`).
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mltb_cache::{Cache, ErrorKind, RedisCache};
use mltb_testkit::{RedisServer, SharedRedis};

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn stores_under_the_namespace_with_ttl_and_removes() {
    let redis = SharedRedis::get().await.unwrap();
    let ns = format!("{}users:", redis.key_prefix());
    let cache: RedisCache<u64, Vec<String>> = RedisCache::builder(redis.url())
        .namespace(ns.clone())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert_eq!(cache.get(&7).await, None);
    cache.insert(7, vec!["a".into(), "b".into()], Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(cache.get(&7).await, Some(vec!["a".to_string(), "b".to_string()]));

    let mut conn = raw(redis.url()).await;
    let stored: String = redis::cmd("GET").arg(format!("{ns}7")).query_async(&mut conn).await.unwrap();
    assert_eq!(stored, r#"["a","b"]"#);
    let pttl: i64 = redis::cmd("PTTL").arg(format!("{ns}7")).query_async(&mut conn).await.unwrap();
    assert!(pttl > 0 && pttl <= 60_000, "{pttl}");

    // No TTL and no default: the key persists.
    cache.insert(8, vec![], None).await.unwrap();
    let pttl: i64 = redis::cmd("PTTL").arg(format!("{ns}8")).query_async(&mut conn).await.unwrap();
    assert_eq!(pttl, -1);

    assert!(cache.remove(&7).await.unwrap());
    assert!(!cache.remove(&7).await.unwrap());
    assert_eq!(cache.get(&7).await, None);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.errors, s.writes), (1, 2, 0, 2));
}

#[tokio::test]
async fn get_with_ttl_reads_the_time_left_in_one_call() {
    let redis = SharedRedis::get().await.unwrap();
    let cache: RedisCache<u32, String> = RedisCache::builder(redis.url())
        .namespace(format!("{}pttl:", redis.key_prefix()))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    cache.insert(1, "a".into(), Some(Duration::from_secs(60))).await.unwrap();
    cache.insert(2, "b".into(), None).await.unwrap();
    let (v, left) = cache.get_with_ttl(&1).await.unwrap();
    assert_eq!(v, "a");
    assert!(left.is_some_and(|d| d > Duration::ZERO && d <= Duration::from_secs(60)), "{left:?}");
    assert_eq!(cache.get_with_ttl(&2).await, Some(("b".to_string(), None)), "no TTL");
    assert_eq!(cache.get_with_ttl(&3).await, None);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.errors), (2, 1, 0));
    assert_eq!(cache.pool().metrics().checkouts, 5, "one call per read: two writes, three reads");
}

#[tokio::test]
async fn an_undecodable_value_is_a_counted_miss() {
    let redis = SharedRedis::get().await.unwrap();
    let ns = redis.key_prefix().to_string();
    let cache: RedisCache<&'static str, u32> = RedisCache::builder(redis.url())
        .namespace(ns.clone())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut conn = raw(redis.url()).await;
    let _: () = redis::cmd("SET").arg(format!("{ns}k")).arg("not json").query_async(&mut conn).await.unwrap();
    assert_eq!(cache.get(&"k").await, None);
    assert_eq!((cache.stats().misses, cache.stats().errors), (1, 1));
}

#[tokio::test]
async fn single_flight_loads_once_and_writes_through() {
    let redis = SharedRedis::get().await.unwrap();
    let cache: RedisCache<String, String> = RedisCache::builder(redis.url())
        .namespace(redis.key_prefix())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let loads = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (cache, loads, gate) = (cache.clone(), loads.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load("k".to_string(), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    let _p = gate.acquire().await.map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>("v".to_string())
                })
                .await
        }));
    }
    while loads.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "v");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // Written through: a second cache on the same namespace sees it.
    let other: RedisCache<String, String> =
        RedisCache::builder(redis.url()).namespace(redis.key_prefix()).build().unwrap();
    assert_eq!(Cache::get(&other, &"k".to_string()).await.as_deref(), Some("v"));
}

#[tokio::test]
async fn redis_down_is_a_miss_and_redis_back_is_used_again() {
    let server = RedisServer::start().await.unwrap();
    let cache: RedisCache<u32, u32> = RedisCache::builder(server.url())
        .namespace("fault:")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    cache.insert(1, 10, None).await.unwrap();
    assert_eq!(cache.get(&1).await, Some(10));

    server.stop().await.unwrap();
    assert_eq!(cache.get(&1).await, None, "a failed read is a miss, not an error");
    let err = cache.insert(2, 20, None).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Backend { .. }) && err.is_retryable(), "{err}");
    let v = cache.get_or_load(3, || async { Ok::<_, std::io::Error>(30) }).await.unwrap();
    assert_eq!(v, 30, "the loader still serves while redis is down");
    assert!(cache.stats().errors >= 3, "{:?}", cache.stats());

    server.restart().await.unwrap();
    // Same cache object, no rebuild: the replaced pool reconnects.
    cache.insert(4, 40, None).await.unwrap();
    assert_eq!(cache.get(&4).await, Some(40));
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let e = RedisCache::<u32, u32>::builder("not a url").build().unwrap_err();
    assert!(e.is_config() && e.to_string().contains("setting url = not a url"), "{e}");
    let e =
        RedisCache::<u32, u32>::builder("redis://127.0.0.1:1/").timeout(Duration::ZERO).build().unwrap_err();
    assert!(e.is_config() && e.to_string().contains("setting timeout = 0s"), "{e}");
    // A call's deadline is the clock's time plus the timeout: one past the pool's cap is
    // refused by name, whether the cache builds its pool or shares one.
    let e =
        RedisCache::<u32, u32>::builder("redis://127.0.0.1:1/").timeout(Duration::MAX).build().unwrap_err();
    assert!(e.is_config() && e.to_string().contains("timeout") && e.to_string().contains("30 years"), "{e}");
    let pool = shared_pool("redis://127.0.0.1:1/", mltb_pool::PoolConfig::new().min_idle(None));
    let e = RedisCache::<u32, u32>::builder_with_pool(pool, "redis://127.0.0.1:1/")
        .timeout(mltb_pool::PoolConfig::MAX_DURATION + Duration::from_nanos(1))
        .build()
        .unwrap_err();
    assert!(e.is_config() && e.to_string().contains("setting timeout"), "{e}");
}

fn shared_pool(url: &str, config: mltb_pool::PoolConfig) -> mltb_pool::Pool<mltb_pool::RedisManager> {
    mltb_pool::Pool::new(mltb_pool::RedisManager::new(url).unwrap(), config).unwrap()
}

#[tokio::test]
async fn caches_can_share_one_pool() {
    let redis = SharedRedis::get().await.unwrap();
    let config =
        mltb_pool::PoolConfig::new().max_size(2).min_idle(None).connection_timeout(Duration::from_secs(2));
    let pool = shared_pool(redis.url(), config);
    let make = |ns: &str| {
        RedisCache::<u32, String>::builder_with_pool(pool.clone(), redis.url())
            .namespace(format!("{}{ns}", redis.key_prefix()))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
    };
    let (a, b) = (make("a:"), make("b:"));
    a.insert(1, "from a".into(), None).await.unwrap();
    b.insert(1, "from b".into(), None).await.unwrap();
    assert_eq!(a.get(&1).await.as_deref(), Some("from a"));
    assert_eq!(b.get(&1).await.as_deref(), Some("from b"));
    assert_eq!(a.pool().state().max_size, 2, "the given pool is used as it is");
    assert_eq!(pool.metrics().checkouts, 4);
    assert_eq!((a.stats().errors, b.stats().errors), (0, 0));
}

/// The pool closes only the connection that broke in a call; the cache must not then
/// trip over the other idle connections that went stale with it.
#[tokio::test]
async fn a_short_outage_with_many_idle_connections_costs_one_call() {
    let server = RedisServer::start().await.unwrap();
    let cache: RedisCache<u32, u32> = RedisCache::builder(server.url())
        .namespace("outage:")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.insert(i, i, None).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let idle = cache.pool().state().idle;
    server.stop().await.unwrap();
    assert_eq!(cache.get(&1).await, None);
    let errors = cache.stats().errors;
    assert_eq!(errors, 1);
    server.restart().await.unwrap();
    cache.insert(1, 1, None).await.unwrap_or_else(|e| {
        panic!("idle before the outage: {idle}, state now {:?}: {e}", cache.pool().state())
    });
    assert_eq!(cache.get(&1).await, Some(1));
    assert_eq!(cache.stats().errors, errors, "no stale connection reached a call");
}

#[tokio::test]
async fn connections_killed_by_the_server_are_replaced() {
    let server = RedisServer::start().await.unwrap();
    // No connections opened in the background, so the one below is the only one.
    let config = mltb_pool::PoolConfig::new().max_size(4).min_idle(None).test_on_checkout(false);
    let pool = shared_pool(&server.url(), config);
    let cache: RedisCache<u32, u32> = RedisCache::builder_with_pool(pool, server.url())
        .namespace("kill:")
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    cache.insert(1, 10, None).await.unwrap();
    assert_eq!(cache.pool().state().connections, 1);

    let mut admin = raw(&server.url()).await;
    let killed: i64 =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal").query_async(&mut admin).await.unwrap();
    assert!(killed >= 1, "the cache's connection was killed");

    assert_eq!(cache.get(&1).await, None, "the killed connection fails once");
    assert_eq!(cache.get(&1).await, Some(10), "a new connection is used: {:?}", cache.pool().state());
    assert_eq!(cache.pool().metrics().closed.broken, 1);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.errors), (1, 1, 1));
}

/// The cache's pool fails fast: while Redis is down every read is a miss without
/// waiting for the timeout (were one to wait, the pool would count a timeout).
#[tokio::test]
async fn while_redis_is_down_no_read_waits_for_the_timeout() {
    let server = RedisServer::start().await.unwrap();
    let cache: RedisCache<u32, u32> =
        RedisCache::builder(server.url()).namespace("fast:").timeout(Duration::from_secs(5)).build().unwrap();
    cache.insert(1, 10, None).await.unwrap();
    server.stop().await.unwrap();
    for i in 1..=10 {
        assert_eq!(cache.get(&1).await, None);
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.errors), (i, i), "every read while down is a counted miss");
    }
    let m = cache.pool().metrics();
    assert_eq!(m.timeouts, 0, "no read waited for the pool's timeout: {m:?}");
    assert!(m.unavailable >= 9, "reads were refused at once by the pool: {m:?}");

    server.restart().await.unwrap();
    cache.insert(2, 20, None).await.unwrap();
    assert_eq!(cache.get(&2).await, Some(20), "Redis is used again");
    assert_eq!(cache.pool().metrics().timeouts, 0);
}
