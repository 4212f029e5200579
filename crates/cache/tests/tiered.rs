//! The tiered cache on a real `redis-server`: read-through and write-through, and
//! invalidation across two instances sharing one Redis.
#![cfg(feature = "redis")]

use std::time::Duration;

use mltb_cache::{FakeClock, MemoryCache, RedisCache, TieredCache};
use mltb_testkit::RedisServer;

async fn instance(url: &str, ns: &str) -> TieredCache<u64, String> {
    let l1 = MemoryCache::builder().max_bytes(1 << 20).default_ttl(Duration::from_secs(60)).build().unwrap();
    let l2 = RedisCache::builder(url).namespace(ns).timeout(Duration::from_secs(1)).build().unwrap();
    TieredCache::new(l1, l2).await.unwrap()
}

/// Waits (yielding, with a deadline) until `cond` holds: the pub/sub message is in flight.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let wait = async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 20 s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_removes_reach_the_other_instances_l1() {
    let server = RedisServer::start().await.unwrap();
    let a = instance(&server.url(), "t:").await;
    let b = instance(&server.url(), "t:").await;
    assert!(a.stats().subscribed && b.stats().subscribed);

    a.insert(1, "v1".into(), None).await.unwrap();
    assert_eq!(b.get(&1).await.as_deref(), Some("v1"), "read through from L2");
    assert!(b.l1().contains_key(&1), "and filled L1");

    a.insert(1, "v2".into(), None).await.unwrap();
    eventually("b's L1 dropping key 1 after a's write", || !b.l1().contains_key(&1)).await;
    assert_eq!(b.get(&1).await.as_deref(), Some("v2"));

    assert!(a.remove(&1).await.unwrap());
    eventually("b's L1 dropping key 1 after a's remove", || !b.l1().contains_key(&1)).await;
    assert_eq!(b.get(&1).await, None);
    assert!(b.stats().invalidations_received >= 2);
    // An instance ignores its own messages: a's fresh write stays in a's L1.
    a.insert(2, "mine".into(), None).await.unwrap();
    b.insert(3, "theirs".into(), None).await.unwrap();
    eventually("a hearing b's write", || a.stats().invalidations_received >= 1).await;
    assert!(a.l1().contains_key(&2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_redis_going_away_and_l2_returns_without_restart() {
    let server = RedisServer::start().await.unwrap();
    let a = instance(&server.url(), "f:").await;
    a.insert(1, "cached".into(), None).await.unwrap();

    server.stop().await.unwrap();
    assert_eq!(a.get(&1).await.as_deref(), Some("cached"), "served from L1");
    let loaded = a.get_or_load(2, || async { Ok::<_, std::io::Error>("loaded".to_string()) }).await;
    assert_eq!(loaded.unwrap(), "loaded", "served by the loader");
    assert!(a.l2().stats().errors >= 1);
    eventually("the subscription noticing", || !a.stats().subscribed).await;

    server.restart().await.unwrap();
    eventually("the subscription coming back", || a.stats().subscribed).await;
    // The gap cleared L1 (invalidations may have been missed).
    assert!(a.l1().is_empty());
    a.insert(3, "after".into(), None).await.unwrap();
    assert_eq!(a.l2().get(&3).await.as_deref(), Some("after"), "L2 used again");
}

#[tokio::test]
async fn a_lease_ttl_past_the_cap_is_refused_by_name() {
    let l1 = MemoryCache::builder().max_bytes(1 << 20).build().unwrap();
    let l2 = RedisCache::builder("redis://127.0.0.1:1/").build().unwrap();
    let e = TieredCache::<u64, String>::new_with_load_lease(l1, l2, Duration::MAX).await.unwrap_err();
    assert!(
        e.is_config() && e.to_string().contains("lease_ttl") && e.to_string().contains("30 years"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_lease_makes_other_instances_wait_for_the_value() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let server = RedisServer::start().await.unwrap();
    let make = |url: String| async move {
        let l1 = MemoryCache::builder().max_bytes(1 << 20).build().unwrap();
        let l2 =
            RedisCache::builder(url).namespace("lease:").timeout(Duration::from_secs(1)).build().unwrap();
        TieredCache::<u64, String>::new_with_load_lease(l1, l2, Duration::from_secs(10)).await.unwrap()
    };
    let (a, b) = (make(server.url()).await, make(server.url()).await);
    let (a_loads, b_loads) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));

    let ta = {
        let (a, loads, gate) = (a.clone(), a_loads.clone(), gate.clone());
        tokio::spawn(async move {
            a.get_or_load(1, || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                let _p = gate.acquire().await.map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>("from a".to_string())
            })
            .await
        })
    };
    eventually("a taking the lease and loading", || a_loads.load(Ordering::SeqCst) == 1).await;
    let tb = {
        let (b, loads) = (b.clone(), b_loads.clone());
        tokio::spawn(async move {
            b.get_or_load(1, || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>("from b".to_string())
            })
            .await
        })
    };
    // b is polling L2 for a's value (each poll is a counted L2 miss).
    eventually("b waiting on the lease", || b.l2().stats().misses >= 3).await;
    gate.add_permits(1);
    assert_eq!(ta.await.unwrap().unwrap(), "from a");
    assert_eq!(tb.await.unwrap().unwrap(), "from a");
    assert_eq!((a_loads.load(Ordering::SeqCst), b_loads.load(Ordering::SeqCst)), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_shared_pool_still_invalidate_each_other() {
    let server = RedisServer::start().await.unwrap();
    let config = mltb_pool::PoolConfig::new().max_size(4).min_idle(None).test_on_checkout(false);
    let pool = mltb_pool::Pool::new(mltb_pool::RedisManager::new(server.url()).unwrap(), config).unwrap();
    let make = || async {
        let l1 = MemoryCache::builder().max_bytes(1 << 20).build().unwrap();
        let l2 = RedisCache::builder_with_pool(pool.clone(), server.url())
            .namespace("s:")
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        TieredCache::<u64, String>::new(l1, l2).await.unwrap()
    };
    let (a, b) = (make().await, make().await);
    assert!(a.stats().subscribed && b.stats().subscribed, "pub/sub runs outside the pool");

    a.insert(1, "v1".into(), None).await.unwrap();
    assert_eq!(b.get(&1).await.as_deref(), Some("v1"));
    a.insert(1, "v2".into(), None).await.unwrap();
    eventually("b's L1 dropping key 1 after a's write", || !b.l1().contains_key(&1)).await;
    assert_eq!(b.get(&1).await.as_deref(), Some("v2"));
    assert!(pool.metrics().checkouts >= 6, "both L2s used the shared pool: {:?}", pool.metrics());
    assert!(pool.state().connections <= 4);
}

/// The time `key` has left in Redis, in milliseconds (-2: gone; -1: no TTL).
async fn pttl(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
}

/// An instance whose L1 runs on `clock`, with no default TTL unless `l1_ttl`.
async fn on_clock(url: &str, clock: &FakeClock, l1_ttl: Option<Duration>) -> TieredCache<u64, String> {
    let mut l1 = MemoryCache::builder().max_bytes(1 << 20).clock(clock.clone());
    if let Some(ttl) = l1_ttl {
        l1 = l1.default_ttl(ttl);
    }
    let l2 = RedisCache::builder(url).namespace("ttl:").timeout(Duration::from_secs(1)).build().unwrap();
    TieredCache::new(l1.build().unwrap(), l2).await.unwrap()
}

/// A per-entry TTL written by one instance holds in the L1 of another that reads the
/// value through: the L1 copy lives no longer than the value has left in Redis. Redis
/// expires keys on real time and the L1s run on fake clocks, so the TTL b's L1 assigned
/// is pinned between the key's PTTL read just before b's read and just after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_entry_ttl_follows_the_value_into_other_instances_l1() {
    let server = RedisServer::start().await.unwrap();
    let (clock_a, clock_b, clock_c) = (FakeClock::new(), FakeClock::new(), FakeClock::new());
    let a = on_clock(&server.url(), &clock_a, None).await;
    let b = on_clock(&server.url(), &clock_b, None).await;
    let c = on_clock(&server.url(), &clock_c, Some(Duration::from_secs(10))).await;
    let mut conn =
        redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();

    a.insert(1, "v".into(), Some(Duration::from_secs(60))).await.unwrap();
    let before = pttl(&mut conn, "ttl:1").await;
    assert_eq!(b.get(&1).await.as_deref(), Some("v"), "read through from L2");
    let after = pttl(&mut conn, "ttl:1").await;
    assert!(0 < after && after <= before && before <= 60_000, "PTTL {before} then {after}");
    clock_b.advance(Duration::from_millis(after as u64 - 1));
    assert!(b.l1().contains_key(&1), "b's L1 keeps the value while Redis still has it");
    clock_b.advance(Duration::from_millis((before - after) as u64 + 1));
    assert!(!b.l1().contains_key(&1), "b's L1 TTL is at most the {before} ms Redis had left");

    // An L1 default TTL shorter than what the value has left caps it.
    assert_eq!(c.get(&1).await.as_deref(), Some("v"));
    clock_c.advance(Duration::from_millis(9_999));
    assert!(c.l1().contains_key(&1));
    clock_c.advance(Duration::from_millis(1));
    assert!(!c.l1().contains_key(&1), "c's L1 default TTL (10 s) caps the 60 s left");

    // End to end: once Redis has expired the key and the L1 clocks have moved as far,
    // no instance serves it.
    let ttl = Duration::from_secs(2);
    a.insert(2, "short".into(), Some(ttl)).await.unwrap();
    assert_eq!(b.get(&2).await.as_deref(), Some("short"), "read within its TTL");
    let expired = async {
        while pttl(&mut conn, "ttl:2").await != -2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), expired).await.expect("redis expires the key");
    clock_a.advance(ttl);
    clock_b.advance(ttl);
    assert_eq!(a.get(&2).await, None, "the writer's L1 honours the TTL");
    assert_eq!(b.get(&2).await, None, "the reader's L1 honours the TTL it read from Redis");
}
