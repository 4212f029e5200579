//! Pool behaviour on an in-memory manager and tokio's paused clock.

mod support;

use std::time::Duration;

use mltb_pool::{ErrorKind, Pool, PoolConfig};
use support::MemManager;

fn config(max: u32) -> PoolConfig {
    PoolConfig::new().max_size(max).min_idle(max).connection_timeout(Duration::from_secs(5))
}

#[tokio::test(start_paused = true)]
async fn checkout_timeout_is_a_typed_error() {
    let pool = Pool::connect(MemManager::default(), config(1)).await.unwrap();
    let held = pool.get().await.unwrap();
    let started = tokio::time::Instant::now();
    let err = pool.get_timeout(Duration::from_secs(2)).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(2), "waited exactly the timeout on the paused clock");
    match err.kind() {
        ErrorKind::Timeout { waited, max_size } => {
            assert_eq!((*waited, *max_size), (Duration::from_secs(2), 1))
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(err.is_timeout() && err.is_retryable() && !err.is_unavailable());
    assert_eq!(pool.state().waiting, 0);
    drop(held);
    let again = pool.get().await.unwrap();
    assert_eq!(again.id, 0, "the one connection is reused");
    drop(again);
    let m = pool.metrics();
    assert_eq!((m.checkouts, m.returns, m.timeouts), (2, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_gets_the_returned_connection_and_its_wait_is_measured() {
    let pool = Pool::connect(MemManager::default(), config(1)).await.unwrap();
    let held = pool.get_owned().await.unwrap();
    let returner = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(held);
    });
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, 0);
    returner.await.unwrap();
    drop(conn);
    let m = pool.metrics();
    assert_eq!(m.wait.count, 2);
    assert_eq!(m.wait.max, Duration::from_millis(300));
    assert_eq!(m.use_time.max, Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order() {
    let pool = Pool::connect(MemManager::default(), config(1)).await.unwrap();
    let held = pool.get().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (p, tx) = (pool.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let conn = p.get().await.unwrap();
            tx.send(i).unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(conn);
        }));
        // Let task i start waiting before task i + 1 is spawned.
        while pool.state().waiting < i + 1 {
            tokio::task::yield_now().await;
        }
    }
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    drop(tx);
    let mut order = Vec::new();
    while let Some(i) = rx.recv().await {
        order.push(i);
    }
    assert_eq!(order, vec![0, 1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn utilization_is_time_weighted_over_the_window() {
    let cfg = config(4).metrics_window(Duration::from_secs(10));
    let pool = Pool::connect(MemManager::default(), cfg).await.unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let m = pool.metrics();
    assert!((m.utilization - 0.5).abs() < 1e-6, "2 of 4 busy all window: {}", m.utilization);
    assert!(!m.is_over_target());
    assert_eq!((m.in_use, m.peak_in_use), (2, 2));

    let c = pool.get().await.unwrap();
    let d = pool.get().await.unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let m = pool.metrics();
    assert!((m.utilization - 1.0).abs() < 0.01, "all 4 busy for the last window: {}", m.utilization);
    assert!(m.is_over_target());
    drop((a, b, c, d));

    // A new window with no load: the figure decays to zero.
    tokio::time::advance(Duration::from_secs(25)).await;
    let m = pool.metrics();
    assert_eq!(m.utilization, 0.0);
    // 2 busy for 10 s, 4 for 10 s, out of 4 for 45 s.
    assert!((m.lifetime_utilization - 60.0 / 180.0).abs() < 0.01, "{}", m.lifetime_utilization);
}

#[tokio::test(start_paused = true)]
async fn recommendation_follows_littles_law() {
    let cfg = config(10).metrics_window(Duration::from_secs(10)).target_utilization(0.8);
    let pool = Pool::connect(MemManager::default(), cfg).await.unwrap();
    // 100 checkouts/s, each held 50 ms: 5 busy on average; under 80% needs 7 (6.25 up).
    let start = tokio::time::Instant::now();
    for k in 0..1000 {
        tokio::time::sleep_until(start + Duration::from_millis(10) * k).await;
        let conn = pool.get_owned().await.unwrap();
        let until = tokio::time::Instant::now() + Duration::from_millis(50);
        let held = tokio::spawn(async move {
            tokio::time::sleep_until(until).await;
            drop(conn);
        });
        drop(held);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let m = pool.metrics();
    let r = m.recommendation().unwrap();
    assert!((r.arrival_rate - 100.0).abs() < 2.0, "{r:?}");
    assert!(r.mean_use.abs_diff(Duration::from_millis(50)) < Duration::from_millis(1), "{r:?}");
    assert!((r.offered_load - 5.0).abs() < 0.1, "{r:?}");
    assert_eq!(r.max_size, 7, "{r:?}");
    assert!((m.utilization - 0.5).abs() < 0.02, "L / max_size = 5 / 10: {}", m.utilization);
}

#[tokio::test(start_paused = true)]
async fn a_broken_connection_is_closed_not_reused() {
    let pool = Pool::connect(MemManager::default(), config(2).min_idle(1)).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let broken_id = conn.id;
    conn.broken = true;
    drop(conn);
    let m = pool.metrics();
    assert_eq!(m.closed.broken, 1);
    for _ in 0..3 {
        let c = pool.get().await.unwrap();
        assert_ne!(c.id, broken_id);
    }
    assert_eq!(pool.metrics().returns, 4);
}

#[tokio::test(start_paused = true)]
async fn backend_down_is_unavailable_and_recovers() {
    let manager = MemManager::default();
    let backend = manager.backend.clone();
    let cfg = config(2).min_idle(None).connection_timeout(Duration::from_secs(1));
    let pool = Pool::new(manager, cfg).unwrap();
    drop(pool.get().await.unwrap());
    backend.down.store(true, std::sync::atomic::Ordering::Relaxed);
    let err = pool.get().await.unwrap_err();
    assert!(err.is_unavailable() && err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("backend is down"), "{err}");
    assert!(pool.metrics().closed.invalid >= 1, "the idle connection failed validation");
    backend.down.store(false, std::sync::atomic::Ordering::Relaxed);
    let conn = pool.get().await.unwrap();
    drop(conn);
    let m = pool.metrics();
    assert!(m.connect_errors >= 1);
    assert_eq!(m.checkouts, m.returns);
}

/// `fail_fast`: while the backend is down, a checkout fails at once (on the paused
/// clock no time passes), one probe per interval tries to connect, and the first
/// successful probe brings the pool back.
#[tokio::test(start_paused = true)]
async fn fail_fast_refuses_at_once_and_probes_once_per_interval() {
    use std::sync::atomic::Ordering::Relaxed;
    let manager = MemManager::default();
    let backend = manager.backend.clone();
    let interval = Duration::from_secs(10);
    let cfg = config(2).min_idle(None).fail_fast(true).probe_interval(interval).test_on_checkout(false);
    let pool = Pool::new(manager, cfg).unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.broken = true; // closed on return: nothing idle is left
    drop(conn);
    backend.down.store(true, Relaxed);

    let started = tokio::time::Instant::now();
    // The first checkout waits inside bb8 for its connect, and gives up when it fails;
    // the second is the probe (the backend is now known down); the rest are refused.
    for i in 0..6 {
        let err = pool.get().await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Unavailable { .. }) && err.is_unavailable(), "{i}: {err:?}");
        assert!(err.to_string().contains("backend is down"), "{err}");
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "no checkout waited for its timeout");
    let m = pool.metrics();
    assert_eq!((m.unavailable, m.timeouts, m.checkouts), (6, 0, 1), "{m:?}");
    assert_eq!(m.connect_errors, 2, "one connect, then one probe; refusals do not connect");

    // Within the interval nothing is tried even though the backend is back.
    backend.down.store(false, Relaxed);
    assert!(pool.get().await.unwrap_err().is_unavailable());
    tokio::time::advance(interval).await;
    let conn = pool.get().await.expect("the probe after the interval connects");
    drop(conn);
    let m = pool.metrics();
    assert_eq!((m.unavailable, m.timeouts, m.checkouts, m.connect_errors), (7, 0, 2, 2), "{m:?}");
    assert!(pool.get().await.is_ok(), "the pool is back to normal");
}

/// With `fail_fast` off (the default) the same outage costs the whole timeout.
#[tokio::test(start_paused = true)]
async fn without_fail_fast_a_checkout_waits_for_its_timeout() {
    let manager = MemManager::default();
    let backend = manager.backend.clone();
    let cfg = config(2).min_idle(None).test_on_checkout(false).connection_timeout(Duration::from_secs(1));
    let pool = Pool::new(manager, cfg).unwrap();
    backend.down.store(true, std::sync::atomic::Ordering::Relaxed);
    let started = tokio::time::Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    let m = pool.metrics();
    assert_eq!((m.unavailable, m.timeouts), (0, 1), "{m:?}");
}

/// A checkout already waiting for a busy pool gives up when a connect fails.
#[tokio::test(start_paused = true)]
async fn fail_fast_wakes_a_waiter_when_a_replacement_connect_fails() {
    use std::sync::atomic::Ordering::Relaxed;
    let manager = MemManager::default();
    let backend = manager.backend.clone();
    let cfg = config(1).min_idle(None).fail_fast(true).test_on_checkout(false);
    let pool = Pool::new(manager, cfg).unwrap();
    let mut held = pool.get_owned().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(|_| ()) })
    };
    tokio::task::yield_now().await;
    assert_eq!(pool.state().waiting, 1);
    backend.down.store(true, Relaxed);
    held.broken = true;
    let started = tokio::time::Instant::now();
    drop(held); // closed; bb8 tries a replacement, which fails
    let err = waiter.await.unwrap().unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(pool.metrics().timeouts, 0);
}

#[tokio::test]
async fn idle_connections_are_reaped_with_reason() {
    let cfg = PoolConfig::new()
        .max_size(3)
        .min_idle(None)
        .idle_timeout(Duration::from_millis(50))
        .reaper_rate(Duration::from_millis(20));
    let pool = Pool::connect(MemManager::default(), cfg).await.unwrap();
    let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    drop((a, b));
    assert_eq!(pool.metrics().opened, 2);
    // bb8 reaps on the real clock; poll with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pool.metrics().closed.idle_timeout < 2 {
        assert!(std::time::Instant::now() < deadline, "idle connections were never reaped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.state().connections, 0);
}

#[tokio::test]
async fn connections_past_max_lifetime_are_closed_with_reason() {
    let cfg = PoolConfig::new()
        .max_size(2)
        .min_idle(None)
        .idle_timeout(None)
        .max_lifetime(Duration::from_millis(50))
        .reaper_rate(Duration::from_millis(20));
    let pool = Pool::connect(MemManager::default(), cfg).await.unwrap();
    drop(pool.get().await.unwrap());
    assert_eq!(pool.metrics().opened, 1);
    // bb8 reaps on the real clock; poll with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pool.metrics().closed.max_lifetime < 1 {
        assert!(std::time::Instant::now() < deadline, "an old connection was never closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.metrics().closed.idle_timeout, 0, "closed for its age, not for idling");
    // A new checkout opens a fresh connection.
    drop(pool.get().await.unwrap());
    assert_eq!(pool.metrics().opened, 2);
}

/// A timeout too long to add to the clock is no deadline: the checkout neither panics
/// ("overflow when adding duration to instant") nor gives up.
#[tokio::test(start_paused = true)]
async fn a_timeout_past_the_clocks_end_waits_without_a_deadline() {
    let pool = Pool::connect(MemManager::default(), config(1)).await.unwrap();
    let held = pool.get_timeout(Duration::MAX).await.expect("an idle connection at once");
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get_timeout(Duration::MAX).await.map(|c| c.id) })
    };
    while pool.state().waiting < 1 {
        tokio::task::yield_now().await;
    }
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(!waiter.is_finished(), "still waiting after an hour");
    drop(held);
    assert_eq!(waiter.await.unwrap().unwrap(), 0, "served the returned connection");
    assert_eq!(pool.metrics().timeouts, 0);
}

/// Durations bb8 or the pool add to the clock are refused by name above
/// `PoolConfig::MAX_DURATION`, before bb8 sees them (`reaper_rate(Duration::MAX)`
/// panicked inside bb8's reaper; `connection_timeout(Duration::MAX)` in every `get`).
#[tokio::test]
async fn durations_past_the_cap_are_refused_by_name() {
    let cases = [
        (PoolConfig::new().connection_timeout(Duration::MAX), "connection_timeout"),
        (PoolConfig::new().reaper_rate(Duration::MAX), "reaper_rate"),
        (PoolConfig::new().idle_timeout(Duration::MAX), "idle_timeout"),
        (PoolConfig::new().max_lifetime(Duration::MAX), "max_lifetime"),
        (PoolConfig::new().fail_fast(true).probe_interval(Duration::MAX), "probe_interval"),
    ];
    for (cfg, name) in cases {
        let err = Pool::new(MemManager::default(), cfg.clone()).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::InvalidConfig { what, .. } if *what == name), "{err:?}");
        assert!(err.is_config() && !err.is_retryable());
        let err = Pool::connect(MemManager::default(), cfg).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::InvalidConfig { what, .. } if *what == name), "{err:?}");
    }
    let max = PoolConfig::MAX_DURATION;
    let cfg = config(1).connection_timeout(max).reaper_rate(max).idle_timeout(max).max_lifetime(max);
    let pool = Pool::new(MemManager::default(), cfg.fail_fast(true).probe_interval(max)).unwrap();
    drop(pool.get().await.expect("a pool at the cap works"));
}

#[test]
fn invalid_config_and_missing_runtime_are_errors() {
    let err = Pool::new(MemManager::default(), PoolConfig::new().max_size(0)).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidConfig { what: "max_size", .. }), "{err:?}");
    let err = Pool::new(MemManager::default(), PoolConfig::new()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NoRuntime(_)), "{err:?}");
}
