//! The Redis manager against a real redis-server (testkit).
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::Duration;

use mltb_pool::{Pool, PoolConfig, RedisManager};
use mltb_testkit::RedisServer;

fn config(max: u32) -> PoolConfig {
    PoolConfig::new().max_size(max).min_idle(1).connection_timeout(Duration::from_millis(500))
}

async fn ping(conn: &mut mltb_pool::RedisConnection) -> redis::RedisResult<String> {
    redis::cmd("PING").query_async(conn).await
}

#[tokio::test]
async fn commands_run_through_pooled_connections() {
    let server = RedisServer::start().await.unwrap();
    let pool = Pool::connect(RedisManager::new(server.url()).unwrap(), config(4)).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let () = redis::cmd("SET").arg("k").arg("v").query_async(&mut *conn).await.unwrap();
    let v: String = redis::cmd("GET").arg("k").query_async(&mut *conn).await.unwrap();
    assert_eq!(v, "v");
    assert!(!conn.is_broken());
    drop(conn);
    assert_eq!(pool.metrics().closed.total(), 0);
}

#[tokio::test]
async fn a_connection_killed_while_checked_out_is_discarded() {
    let server = RedisServer::start().await.unwrap();
    let pool = Pool::connect(RedisManager::new(server.url()).unwrap(), config(2)).await.unwrap();
    let mut victim = pool.get().await.unwrap();
    let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut *victim).await.unwrap();
    {
        let mut admin = pool.get().await.unwrap();
        let killed: i64 =
            redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(&mut *admin).await.unwrap();
        assert_eq!(killed, 1);
    }
    assert!(ping(&mut victim).await.is_err(), "the killed connection cannot be used");
    assert!(victim.is_broken());
    drop(victim);

    let m = pool.metrics();
    assert_eq!(m.closed.broken, 1, "{m:?}");
    for _ in 0..4 {
        let mut conn = pool.get().await.unwrap();
        assert_eq!(ping(&mut conn).await.unwrap(), "PONG");
        let other: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut *conn).await.unwrap();
        assert_ne!(other, id, "the killed connection was not handed out again");
    }
}

#[tokio::test]
async fn a_restart_is_survived() {
    let server = RedisServer::start().await.unwrap();
    let pool = Pool::new(RedisManager::new(server.url()).unwrap(), config(4)).unwrap();
    assert_eq!(ping(&mut pool.get().await.unwrap()).await.unwrap(), "PONG");

    server.stop().await.unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(err.is_unavailable() && err.is_retryable(), "{err:?}");

    server.restart().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match pool.get().await {
            Ok(mut conn) => match ping(&mut conn).await {
                Ok(pong) => {
                    assert_eq!(pong, "PONG");
                    break;
                }
                Err(e) => assert!(tokio::time::Instant::now() < deadline, "still failing: {e}"),
            },
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "never came back: {e}"),
        }
    }
    let m = pool.metrics();
    assert!(m.connect_errors >= 1 && m.closed.invalid + m.closed.broken >= 1, "{m:?}");
    assert_eq!(m.checkouts, m.returns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_load_returns_every_connection() {
    let server = RedisServer::start().await.unwrap();
    let cfg = PoolConfig::new().max_size(8).min_idle(2).connection_timeout(Duration::from_secs(10));
    let pool = Arc::new(Pool::connect(RedisManager::new(server.url()).unwrap(), cfg).await.unwrap());
    let mut set = tokio::task::JoinSet::new();
    for t in 0..64 {
        let pool = pool.clone();
        set.spawn(async move {
            for i in 0..40 {
                let mut conn = pool.get().await.unwrap();
                let n: i64 = redis::cmd("INCR")
                    .arg(format!("k{}", (t + i) % 8))
                    .query_async(&mut *conn)
                    .await
                    .unwrap();
                assert!(n >= 1);
            }
        });
    }
    let all = async {
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all).await.expect("redis load hung");
    let (state, m) = (pool.state(), pool.metrics());
    assert_eq!((m.checkouts, m.returns, m.timeouts), (2560, 2560, 0));
    assert_eq!((state.in_use, state.idle), (0, state.connections), "{state:?}");
    assert!(state.connections <= 8);
    let mut conn = pool.get().await.unwrap();
    let mut sum = 0;
    for k in 0..8 {
        let n: i64 = redis::cmd("GET").arg(format!("k{k}")).query_async(&mut *conn).await.unwrap();
        sum += n;
    }
    assert_eq!(sum, 2560, "every INCR landed once");
}

/// `fail_fast` against a real server: while it is down every checkout is `Unavailable`
/// without waiting for the (long) connection timeout, and after a restart the next
/// checkout connects.
#[tokio::test]
async fn fail_fast_refuses_while_down_and_recovers_after_restart() {
    let server = RedisServer::start().await.unwrap();
    // Were a checkout to wait, it would wait 60 s and count as a timeout.
    let cfg =
        PoolConfig::new().max_size(4).min_idle(1).connection_timeout(Duration::from_secs(60)).fail_fast(true);
    let pool = Pool::new(RedisManager::new(server.url()).unwrap(), cfg).unwrap();
    assert_eq!(ping(&mut pool.get().await.unwrap()).await.unwrap(), "PONG");

    server.stop().await.unwrap();
    for i in 0..20 {
        let err = pool.get().await.unwrap_err();
        assert!(matches!(err.kind(), mltb_pool::ErrorKind::Unavailable { .. }), "{i}: {err:?}");
    }
    let m = pool.metrics();
    assert_eq!((m.unavailable, m.timeouts), (20, 0), "{m:?}");
    assert!(m.connect_errors >= 1, "{m:?}");

    server.restart().await.unwrap();
    let mut conn = pool.get().await.expect("the next checkout probes and connects");
    assert_eq!(ping(&mut conn).await.unwrap(), "PONG");
    drop(conn);
    let m = pool.metrics();
    assert_eq!((m.unavailable, m.timeouts), (20, 0), "{m:?}");
    assert_eq!(m.checkouts, 2);
}
