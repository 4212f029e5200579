//! Single-flight `get_or_load`: concurrent misses on one key run the loader once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mltb_cache::{Cache, ErrorKind, MemoryCache};
use tokio::sync::Semaphore;

fn cache() -> MemoryCache<String, String> {
    MemoryCache::builder().max_bytes(1 << 20).shards(4).build().unwrap()
}

/// Waits until `n` tasks have called in, yielding (not sleeping) in between.
async fn until(counter: &AtomicUsize, n: usize) {
    while counter.load(Ordering::SeqCst) < n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_misses_load_once() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    // The loader holds until every caller has started, so all of them miss together.
    let gate = Arc::new(Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (cache, loads, started, gate) = (cache.clone(), loads.clone(), started.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            started.fetch_add(1, Ordering::SeqCst);
            cache
                .get_or_load("k".to_string(), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    let _permit = gate.acquire().await.map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>("v".to_string())
                })
                .await
        }));
    }
    until(&started, 1000).await;
    until(&loads, 1).await;
    gate.add_permits(1);
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "v");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get("k").as_deref(), Some("v"));
    assert_eq!(cache.stats().inserts, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_loader_error_reaches_every_waiter_and_is_not_cached() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (cache, loads, gate) = (cache.clone(), loads.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load("k".to_string(), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    let _permit = gate.acquire().await.map_err(std::io::Error::other)?;
                    Err::<String, _>(std::io::Error::other("backend down"))
                })
                .await
        }));
    }
    until(&loads, 1).await;
    // Let every task reach its wait before the leader fails.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Load(_)), "{err}");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("backend down"), "{err}");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert!(cache.is_empty());
    // One miss per caller: the leader's re-check after claiming the key is not counted.
    assert_eq!((cache.stats().misses, cache.stats().hits), (50, 0));
    // Not cached: the next call loads again.
    let v = cache
        .get_or_load("k".to_string(), || async { Ok::<_, std::io::Error>("ok".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "ok");
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_leader_hands_the_load_to_a_waiter() {
    let cache = cache();
    let leader_started = Arc::new(AtomicUsize::new(0));
    let leader = {
        let (cache, started) = (cache.clone(), leader_started.clone());
        tokio::spawn(async move {
            cache
                .get_or_load("k".to_string(), || async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<Result<String, std::io::Error>>().await
                })
                .await
        })
    };
    until(&leader_started, 1).await;
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k".to_string(), || async { Ok::<_, std::io::Error>("from waiter".to_string()) })
                .await
        })
    };
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!waiter.is_finished(), "the waiter waits on the leader's load");
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    assert_eq!(waiter.await.unwrap().unwrap(), "from waiter");
}

#[tokio::test(flavor = "current_thread")]
async fn the_trait_seam_drives_the_memory_cache() {
    async fn roundtrip<C: Cache<String, String>>(c: &C) -> Option<String> {
        c.insert("a".into(), "1".into(), None).await.unwrap();
        assert!(!c.remove(&"missing".to_string()).await.unwrap());
        let loaded =
            c.get_or_load("b".into(), || async { Ok::<_, std::io::Error>("2".to_string()) }).await.unwrap();
        assert_eq!(loaded, "2");
        c.get(&"a".to_string()).await
    }
    let cache = cache();
    assert_eq!(roundtrip(&cache).await.as_deref(), Some("1"));
    assert!(Cache::remove(&cache, &"a".to_string()).await.unwrap());
}
