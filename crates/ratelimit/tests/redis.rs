//! The Redis GCRA against a real Redis: shared budgets, and falling back while it is down.
#![cfg(feature = "redis")]

use std::time::Duration;

use mltb_ratelimit::{Decision, Denied, Quota, RedisLimiter, Source};
use mltb_testkit::{RedisServer, SharedRedis};

fn quota(text: &str) -> Quota {
    text.parse().unwrap()
}

#[tokio::test]
async fn admission_counts_match_the_quota() {
    let redis = SharedRedis::get().await.unwrap();
    // 12 s between cells: nothing refills during the test.
    let limiter =
        RedisLimiter::builder(redis.url(), quota("5/min")).prefix(redis.key_prefix()).build().unwrap();
    let mut remaining = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..12 {
        let d = limiter.check("user:1").await;
        assert_eq!(d.source, Source::Redis);
        assert_eq!(d.limit, 5);
        if d.limited {
            refused.push(d);
        } else {
            assert_eq!(d.retry_after, Duration::ZERO);
            remaining.push(d.remaining);
        }
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    assert_eq!(refused.len(), 7);
    for d in refused {
        assert_eq!(d.remaining, 0);
        assert!(d.retry_after > Duration::from_secs(11) && d.retry_after <= Duration::from_secs(12), "{d:?}");
        assert!(d.reset_after > Duration::from_secs(59) && d.reset_after <= Duration::from_secs(60), "{d:?}");
    }
    assert!(limiter.check("user:2").await.is_admitted(), "keys are independent");
    assert_eq!(limiter.redis_count(), 13);
    assert_eq!(limiter.fallback_count(), 0);

    let err = limiter.check_n("user:3", 6).await.unwrap_err();
    assert_eq!(err, Denied::InsufficientCapacity { requested: 6, capacity: 5 });
    let d = limiter.check_n("user:3", 5).await.unwrap();
    assert!(d.is_admitted());
    assert_eq!(d.remaining, 0);
}

#[tokio::test]
async fn two_instances_share_one_budget() {
    let redis = SharedRedis::get().await.unwrap();
    let build = || {
        RedisLimiter::builder(redis.url(), quota("10/h burst 4")).prefix(redis.key_prefix()).build().unwrap()
    };
    let (a, b) = (build(), build());
    let mut admitted = 0;
    for i in 0..10 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        if limiter.check("shared").await.is_admitted() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 4, "the burst is shared, not per instance");

    let other_prefix = RedisLimiter::builder(redis.url(), quota("10/h burst 4"))
        .prefix(format!("{}other:", redis.key_prefix()))
        .build()
        .unwrap();
    assert!(other_prefix.check("shared").await.is_admitted(), "prefixes separate budgets");
}

#[tokio::test]
async fn concurrent_checks_over_one_pool_never_over_admit() {
    let redis = SharedRedis::get().await.unwrap();
    // A generous timeout: a check that timed out on a loaded machine would be answered
    // by the local fallback, which has a budget of its own.
    let limiter = std::sync::Arc::new(
        RedisLimiter::builder(redis.url(), quota("20/h"))
            .prefix(redis.key_prefix())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    );
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.check("hot").await.is_admitted() })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(limiter.fallback_count(), 0, "every check reached Redis: {:?}", limiter.pool().metrics());
    assert_eq!(admitted, 20);
}

#[tokio::test]
async fn falls_back_while_redis_is_down_and_returns_to_it() {
    let server = RedisServer::start().await.unwrap();
    let limiter = RedisLimiter::builder(server.url(), quota("3/h"))
        .timeout(Duration::from_millis(500))
        .retry_interval(Duration::ZERO)
        .build()
        .unwrap();
    let d = limiter.check("k").await;
    assert_eq!((d.source, d.limited, d.remaining), (Source::Redis, false, 2));

    server.stop().await.unwrap();
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(limiter.check("k").await);
    }
    assert!(answers.iter().all(|d| d.source == Source::Fallback), "{answers:?}");
    assert_eq!(limiter.fallback_count(), 5);
    // The local limiter enforces the same quota from scratch: 3 admitted, 2 refused.
    let admitted: Vec<bool> = answers.iter().map(|d| d.is_admitted()).collect();
    assert_eq!(admitted, [true, true, true, false, false]);
    assert!(answers[4].retry_after > Duration::from_secs(1100), "{:?}", answers[4]);

    server.restart().await.unwrap();
    let d = limiter.check("k").await;
    assert_eq!(d.source, Source::Redis, "Redis is used again without a restart");
    assert!(d.is_admitted(), "the restarted Redis has empty data");
    assert_eq!(limiter.redis_count(), 2);
    assert_eq!(limiter.fallback_count(), 5);
}

#[tokio::test]
async fn retry_interval_skips_redis_after_a_failure() {
    let server = RedisServer::start().await.unwrap();
    let limiter = RedisLimiter::builder(server.url(), quota("3/h"))
        .retry_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert_eq!(limiter.check("k").await.source, Source::Redis);
    server.stop().await.unwrap();
    assert_eq!(limiter.check("k").await.source, Source::Fallback);
    server.restart().await.unwrap();
    assert_eq!(limiter.check("k").await.source, Source::Fallback, "within the retry interval");
    assert_eq!(limiter.redis_count(), 1);
    assert_eq!(limiter.fallback_count(), 2);
}

#[tokio::test]
async fn unreachable_redis_from_the_start_is_answered_locally() {
    let port = mltb_testkit::free_port().unwrap();
    let limiter = RedisLimiter::builder(format!("redis://127.0.0.1:{port}/"), quota("1/h"))
        .retry_interval(Duration::ZERO)
        .build()
        .unwrap();
    assert!(limiter.check("a").await.is_admitted());
    let d = limiter.check("a").await;
    assert!(d.limited);
    assert_eq!(d.source, Source::Fallback);
    assert_eq!(limiter.fallback_count(), 2);
}

#[test]
fn bad_config_is_reported() {
    let err = RedisLimiter::builder("redis://127.0.0.1:6379/", quota("1/s")).build().unwrap_err();
    assert!(err.to_string().contains("outside a tokio runtime"), "{err}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    let err = RedisLimiter::builder("nope://x", quota("1/s")).build().unwrap_err();
    assert!(err.to_string().contains("\"nope://x\""), "{err}");
    let err = RedisLimiter::builder("redis://x", quota("1/s")).pool_max_size(0).build().unwrap_err();
    assert!(err.to_string().contains("pool_max_size"), "{err}");
}

/// A `timeout` too long to add to the clock is refused by name in `build()`, whichever
/// the builder and wherever its connections come from (`timeout(Duration::MAX)` built,
/// then every check panicked: "overflow when adding duration to instant").
#[tokio::test]
async fn a_timeout_past_the_cap_is_refused_by_name() {
    use mltb_ratelimit::{ErrorKind, Limit, TieredRedisLimiter};

    let redis = SharedRedis::get().await.unwrap();
    let pool = || {
        let config = mltb_pool::PoolConfig::new()
            .max_size(2)
            .min_idle(None)
            .connection_timeout(Duration::from_secs(2));
        mltb_pool::Pool::new(mltb_pool::RedisManager::new(redis.url()).unwrap(), config).unwrap()
    };
    let cap = mltb_pool::PoolConfig::MAX_DURATION;
    for too_long in [cap + Duration::from_nanos(1), Duration::MAX] {
        let errors = [
            RedisLimiter::builder(redis.url(), quota("1/s")).timeout(too_long).build().unwrap_err(),
            RedisLimiter::builder_with_pool(pool(), quota("1/s")).timeout(too_long).build().unwrap_err(),
            TieredRedisLimiter::builder(redis.url())
                .tier("a", Limit::Unlimited)
                .timeout(too_long)
                .build()
                .unwrap_err(),
            TieredRedisLimiter::builder_with_pool(pool())
                .tier("a", quota("1/s"))
                .timeout(too_long)
                .build()
                .unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err.kind(), ErrorKind::InvalidConfig { what: "timeout", .. }), "{err:?}");
            assert!(err.to_string().contains("at most 30 years"), "{err}");
        }
    }
    // At the cap a check works.
    let limiter = RedisLimiter::builder_with_pool(pool(), quota("1/h"))
        .prefix(format!("{}cap:", redis.key_prefix()))
        .timeout(cap)
        .build()
        .unwrap();
    let d = limiter.check("k").await;
    assert_eq!((d.source, d.limited), (Source::Redis, false));
    assert!(limiter.check("k").await.limited);
}

/// The pool closes only the connection that broke in a check; the limiter must not then
/// trip over the other idle connections that went stale with it.
#[tokio::test]
async fn a_short_outage_with_many_idle_connections_costs_one_check() {
    let server = RedisServer::start().await.unwrap();
    let limiter = std::sync::Arc::new(
        RedisLimiter::builder(server.url(), quota("1000/h"))
            .timeout(Duration::from_millis(500))
            .retry_interval(Duration::ZERO)
            .build()
            .unwrap(),
    );
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.check("k").await.source })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Source::Redis);
    }
    let idle = limiter.pool().state().idle;
    server.stop().await.unwrap();
    assert_eq!(limiter.check("k").await.source, Source::Fallback);
    server.restart().await.unwrap();
    let d = limiter.check("k").await;
    assert_eq!(
        d.source,
        Source::Redis,
        "idle before the outage: {idle}, state now {:?}",
        limiter.pool().state()
    );
}

#[tokio::test]
async fn connections_killed_by_the_server_are_replaced() {
    let server = RedisServer::start().await.unwrap();
    // No connections opened in the background, so the one below is the only one.
    let config = mltb_pool::PoolConfig::new().max_size(4).min_idle(None).test_on_checkout(false);
    let pool = mltb_pool::Pool::new(mltb_pool::RedisManager::new(server.url()).unwrap(), config).unwrap();
    let limiter = RedisLimiter::builder_with_pool(pool, quota("3/h"))
        .timeout(Duration::from_millis(500))
        .retry_interval(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(limiter.check("k").await.source, Source::Redis);
    assert_eq!(limiter.pool().state().connections, 1);

    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal").query_async(&mut admin).await.unwrap();
    assert!(killed >= 1, "the limiter's connection was killed");

    assert_eq!(limiter.check("k").await.source, Source::Fallback, "the killed connection fails once");
    let d = limiter.check("k").await;
    assert_eq!(d.source, Source::Redis, "a new connection is used: {:?}", limiter.pool().state());
    assert_eq!(d.remaining, 1, "the budget in Redis survived");
    assert_eq!(limiter.pool().metrics().closed.broken, 1);
    assert_eq!((limiter.redis_count(), limiter.fallback_count()), (2, 1));
}

#[tokio::test]
async fn limiters_can_share_one_pool() {
    let redis = SharedRedis::get().await.unwrap();
    let config =
        mltb_pool::PoolConfig::new().max_size(2).min_idle(None).connection_timeout(Duration::from_secs(2));
    let pool = mltb_pool::Pool::new(mltb_pool::RedisManager::new(redis.url()).unwrap(), config).unwrap();
    let build = |prefix: &str| {
        RedisLimiter::builder_with_pool(pool.clone(), quota("10/h burst 3"))
            .prefix(format!("{}{prefix}", redis.key_prefix()))
            .build()
            .unwrap()
    };
    let (a, b, other) = (build("shared:"), build("shared:"), build("other:"));
    let mut admitted = 0;
    for i in 0..6 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        admitted += usize::from(limiter.check("k").await.is_admitted());
    }
    assert_eq!(admitted, 3, "one budget through one pool");
    assert!(other.check("k").await.is_admitted());
    assert_eq!(a.pool().state().max_size, 2, "the given pool is used as it is");
    assert_eq!(pool.metrics().checkouts, 7);
    assert_eq!(a.fallback_count() + b.fallback_count() + other.fallback_count(), 0);
}

/// The limiter's pool fails fast: while Redis is down every check goes to the fallback
/// without waiting for the timeout (were one to wait, the pool would count a timeout).
#[tokio::test]
async fn while_redis_is_down_no_check_waits_for_the_timeout() {
    let server = RedisServer::start().await.unwrap();
    let limiter = RedisLimiter::builder(server.url(), quota("1000/h"))
        .timeout(Duration::from_secs(5))
        .retry_interval(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(limiter.check("k").await.source, Source::Redis);
    server.stop().await.unwrap();
    for i in 1..=10 {
        assert_eq!(limiter.check("k").await.source, Source::Fallback);
        assert_eq!(limiter.fallback_count(), i, "every check while down is a counted fallback");
    }
    let m = limiter.pool().metrics();
    assert_eq!(m.timeouts, 0, "no check waited for the pool's timeout: {m:?}");
    assert!(m.unavailable >= 9, "checks were refused at once by the pool: {m:?}");

    server.restart().await.unwrap();
    assert_eq!(limiter.check("k").await.source, Source::Redis, "Redis is used again");
    assert_eq!(limiter.pool().metrics().timeouts, 0);
}

/// Each fallback against a real Redis stopped mid-test: a fraction of the quota, a quota
/// of its own, deny and allow; and back to Redis once it returns.
#[tokio::test]
async fn the_fallback_decides_while_redis_is_down() {
    use mltb_ratelimit::Fallback;

    let server = RedisServer::start().await.unwrap();
    let build = |fallback: Fallback| {
        RedisLimiter::builder(server.url(), quota("8/h"))
            .timeout(Duration::from_millis(500))
            .retry_interval(Duration::ZERO)
            .fallback(fallback)
            .build()
            .unwrap()
    };
    let fraction = build(Fallback::Fraction(0.25));
    let own = build(Fallback::LocalQuota(quota("1/h")));
    let deny = build(Fallback::Deny);
    let allow = build(Fallback::Allow);
    let all = [&fraction, &own, &deny, &allow];
    for limiter in all {
        assert_eq!(limiter.check("k").await.source, Source::Redis);
    }
    assert_eq!(fraction.fallback(), Fallback::Fraction(0.25));
    assert!(deny.local_limiter().is_none() && allow.local_limiter().is_none());
    assert_eq!(fraction.local_limiter().unwrap().quota(), quota("8/4h burst 2"));

    server.stop().await.unwrap();
    let mut answers: [Vec<Decision>; 4] = Default::default();
    for _ in 0..6 {
        for (limiter, answers) in all.iter().zip(&mut answers) {
            answers.push(limiter.check("k").await);
        }
    }
    let admitted = |answers: &[Decision]| answers.iter().filter(|d| d.is_admitted()).count();
    for answers in &answers {
        assert!(answers.iter().all(|d| d.source == Source::Fallback), "{answers:?}");
    }
    // A quarter of 8/h, burst 8: 2 at once, then one per 30 minutes.
    assert_eq!(admitted(&answers[0]), 2, "{:?}", answers[0]);
    assert_eq!((answers[0][0].limit, answers[0][0].remaining), (2, 1), "the local bucket answers");
    let refused = &answers[0][2];
    assert!(refused.limited && refused.retry_after > Duration::from_secs(29 * 60), "{refused:?}");
    assert_eq!(admitted(&answers[1]), 1, "{:?}", answers[1]);
    assert_eq!(admitted(&answers[2]), 0, "{:?}", answers[2]);
    assert!(
        answers[2].iter().all(|d| d.retry_after >= Duration::from_secs(450)),
        "at least 1/8 h: {:?}",
        answers[2]
    );
    assert_eq!(admitted(&answers[3]), 6, "{:?}", answers[3]);
    let stats = fraction.stats();
    assert_eq!((stats.redis, stats.fallback, stats.fallback_refused), (1, 6, 4));
    assert_eq!(deny.stats().fallback_refused, 6);
    assert_eq!(allow.stats().fallback_refused, 0);

    server.restart().await.unwrap();
    for limiter in all {
        let d = limiter.check("k").await;
        assert_eq!((d.source, d.limit), (Source::Redis, 8), "Redis is used again");
    }
}

#[test]
fn fallback_settings_are_checked_in_build() {
    use mltb_ratelimit::Fallback;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    let build =
        |fallback| RedisLimiter::builder("redis://127.0.0.1:1/", quota("1/s")).fallback(fallback).build();
    for bad in [0.0, 1.5, -1.0, f64::NAN] {
        let err = build(Fallback::Fraction(bad)).unwrap_err();
        assert!(err.is_config() && err.to_string().contains("invalid fallback: Fraction("), "{err}");
    }
    let err = RedisLimiter::builder("redis://127.0.0.1:1/", quota("1/d"))
        .fallback(Fallback::Fraction(1e-15))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("expected a larger fraction"), "{err}");
    let err =
        RedisLimiter::builder("redis://127.0.0.1:1/", quota("1/s")).fallback_max_keys(0).build().unwrap_err();
    assert!(err.to_string().contains("fallback_max_keys"), "{err}");
    let err = RedisLimiter::builder("redis://127.0.0.1:1/", quota("1/s"))
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("timeout"), "{err}");
    for fine in [Fallback::Fraction(1.0), Fallback::Fraction(0.01), Fallback::Deny, Fallback::Allow] {
        assert_eq!(build(fine).unwrap().fallback(), fine);
    }
}
