//! The tiered Redis limiter against a real Redis: one budget per (tier, key) shared by
//! separate processes, tier changes, unlimited and unknown tiers, and outages.
#![cfg(feature = "redis")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mltb_ratelimit::{Denied, Fallback, Limit, Quota, Source, TieredRedisLimiter};
use mltb_testkit::{RedisServer, SharedRedis};

fn quota(text: &str) -> Quota {
    text.parse().unwrap()
}

/// The bot's tiers, named in Redis by `as_ref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tier {
    Owner,
    Sudo,
    Authorized,
    Guest,
}

impl AsRef<str> for Tier {
    fn as_ref(&self) -> &str {
        match self {
            Tier::Owner => "owner",
            Tier::Sudo => "sudo",
            Tier::Authorized => "authorized",
            Tier::Guest => "guest",
        }
    }
}

/// Quotas with no refill during a test (the fastest refills every 10 minutes).
fn limiter(url: &str, prefix: &str) -> TieredRedisLimiter<Tier> {
    TieredRedisLimiter::builder(url)
        .prefix(prefix)
        .tier(Tier::Owner, Limit::Unlimited)
        .tier(Tier::Sudo, quota("6/h"))
        .tier(Tier::Authorized, quota("4/h"))
        .tier(Tier::Guest, quota("2/h"))
        // Generous: a check answered by the fallback would have a budget of its own.
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

const CHILD: &str = "MLTB_RATELIMIT_TIER_CHILD";
const CHILD_URL: &str = "MLTB_RATELIMIT_TIER_URL";
const CHILD_PREFIX: &str = "MLTB_RATELIMIT_TIER_PREFIX";
/// Checks each process makes per tier, all at once.
const ATTEMPTS: usize = 10;
const TIERS: [Tier; 4] = [Tier::Owner, Tier::Sudo, Tier::Authorized, Tier::Guest];

/// Two processes — this test binary run again as children — check the same key in every
/// tier at the same moment against one Redis. Each tier's budget is shared: across both
/// processes exactly its burst is admitted, and the tiers do not share with each other.
/// The children wait on their standard input, so both start checking together without
/// any sleep.
#[test]
fn two_processes_share_each_tiers_budget() {
    if let Ok(role) = std::env::var(CHILD) {
        return child(&role);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let redis = rt.block_on(SharedRedis::get()).unwrap();
    let mut children: Vec<Child> = (0..2)
        .map(|role| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "two_processes_share_each_tiers_budget", "--nocapture", "--test-threads=1"])
                .env(CHILD, role.to_string())
                .env(CHILD_URL, redis.url())
                .env(CHILD_PREFIX, redis.key_prefix())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outputs: Vec<_> =
        children.iter_mut().map(|c| BufReader::new(c.stdout.take().unwrap()).lines()).collect();
    let mut next_line = |i: usize, children: &mut Vec<Child>| -> String {
        for line in outputs[i].by_ref() {
            // The test harness may have started the line ("test name ... ").
            if let Some((_, rest)) = line.unwrap().split_once("CHILD ") {
                return rest.to_owned();
            }
        }
        let stderr = children[i].stderr.take().map(std::io::read_to_string);
        panic!("child {i} ended without a report: {stderr:?}");
    };
    for i in 0..2 {
        assert_eq!(next_line(i, &mut children), "ready");
    }
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let mut totals = [0usize; 4];
    let mut fallbacks = 0;
    for i in 0..2 {
        let report = next_line(i, &mut children);
        let counts: Vec<usize> = report.split(' ').map(|n| n.parse().unwrap()).collect();
        for (total, count) in totals.iter_mut().zip(&counts) {
            *total += count;
        }
        fallbacks += counts[4];
    }
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(fallbacks, 0, "every check reached Redis");
    assert_eq!(totals, [2 * ATTEMPTS, 6, 4, 2], "owner unlimited; sudo, authorized, guest: one burst each");
}

/// One child: build a limiter, say "ready", wait for "go", check `ATTEMPTS` times per
/// tier concurrently, report the admitted counts and the fallbacks.
#[allow(clippy::print_stdout)]
fn child(role: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = std::env::var(CHILD_URL).unwrap();
    let prefix = std::env::var(CHILD_PREFIX).unwrap();
    let limiter = std::sync::Arc::new(rt.block_on(async {
        let limiter = limiter(&url, &prefix);
        // Open a connection now, so that the checks below start together.
        let warm = limiter.check_in(&Tier::Guest, &format!("warm-up {role}")).await.unwrap();
        assert_eq!(warm.source, Source::Redis);
        limiter
    }));
    println!("CHILD ready");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    assert_eq!(go, "go\n");
    let counts = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for tier in TIERS {
            for _ in 0..ATTEMPTS {
                let limiter = limiter.clone();
                tasks.spawn(async move {
                    (tier, limiter.check_in(&tier, "user:42").await.unwrap().is_admitted())
                });
            }
        }
        let mut counts = [0usize; 4];
        while let Some(done) = tasks.join_next().await {
            let (tier, admitted) = done.unwrap();
            counts[TIERS.iter().position(|t| *t == tier).unwrap()] += usize::from(admitted);
        }
        counts
    });
    let [owner, sudo, authorized, guest] = counts;
    println!("CHILD {owner} {sudo} {authorized} {guest} {}", limiter.fallback_count());
}

/// Budgets belong to (tier, key): a promoted key starts full in its new tier, and moving
/// back finds the old tier as it was left.
#[tokio::test]
async fn a_key_that_changes_tier_keeps_each_tiers_budget() {
    let redis = SharedRedis::get().await.unwrap();
    let limiter = limiter(redis.url(), redis.key_prefix());
    let admitted = |tier: Tier, n: usize| {
        let limiter = &limiter;
        async move {
            let mut admitted = 0;
            for _ in 0..n {
                admitted += usize::from(limiter.check_in(&tier, "user:7").await.unwrap().is_admitted());
            }
            admitted
        }
    };
    assert_eq!(admitted(Tier::Guest, 5).await, 2, "a guest gets the guest burst");
    assert_eq!(admitted(Tier::Authorized, 1).await, 1, "promoted: the authorized bucket is full");
    assert_eq!(admitted(Tier::Guest, 1).await, 0, "demoted again: the guest bucket is still spent");
    assert_eq!(admitted(Tier::Authorized, 5).await, 3, "the rest of the authorized burst");

    let prefix = redis.key_prefix();
    assert_eq!(limiter.redis_key(&Tier::Guest, "user:7").unwrap(), format!("{prefix}guest:user:7"));
    assert_eq!(limiter.redis_key(&Tier::Owner, "user:7"), None);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for tier in ["guest", "authorized"] {
        let exists: bool =
            redis::cmd("EXISTS").arg(format!("{prefix}{tier}:user:7")).query_async(&mut conn).await.unwrap();
        assert!(exists, "{tier}'s bucket is its own Redis key");
    }
    assert_eq!(limiter.stats().redis, 12);
}

#[tokio::test]
async fn unlimited_and_unlisted_tiers() {
    let redis = SharedRedis::get().await.unwrap();
    let limiter = TieredRedisLimiter::builder(redis.url())
        .prefix(redis.key_prefix())
        .tier("owner", Limit::Unlimited)
        .tier("guest", quota("1/h"))
        .build()
        .unwrap();
    for _ in 0..100 {
        let d = limiter.check_in(&"owner", "k").await.unwrap();
        assert_eq!((d.source, d.limited, d.remaining), (Source::Unlimited, false, u32::MAX));
    }
    assert_eq!(limiter.stats().redis, 0, "unlimited tiers never ask Redis");
    assert_eq!(
        limiter.check_in(&"admin", "k").await.unwrap_err(),
        Denied::InsufficientCapacity { requested: 1, capacity: 0 },
        "a tier not listed has no capacity"
    );
    assert_eq!(
        limiter.check_n_in(&"guest", "k", 2).await.unwrap_err(),
        Denied::InsufficientCapacity { requested: 2, capacity: 1 }
    );
    assert_eq!(limiter.limit(&"owner"), Some(Limit::Unlimited));
    assert_eq!(limiter.limit(&"guest"), Some(Limit::Quota(quota("1/h"))));
    assert_eq!(limiter.limit(&"admin"), None);
}

/// While Redis is down each tier falls back to its own fraction; unlimited stays so.
#[tokio::test]
async fn each_tier_falls_back_to_its_fraction_while_redis_is_down() {
    let server = RedisServer::start().await.unwrap();
    let limiter = TieredRedisLimiter::builder(server.url())
        .tier(Tier::Owner, Limit::Unlimited)
        .tier(Tier::Sudo, quota("8/h"))
        .tier(Tier::Guest, quota("4/h"))
        .fallback(Fallback::Fraction(0.5))
        .timeout(Duration::from_millis(500))
        .retry_interval(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(limiter.check_in(&Tier::Guest, "k").await.unwrap().source, Source::Redis);
    server.stop().await.unwrap();
    let mut admitted = [0usize; 3];
    for _ in 0..10 {
        for (i, tier) in [Tier::Owner, Tier::Sudo, Tier::Guest].iter().enumerate() {
            let d = limiter.check_in(tier, "k").await.unwrap();
            let expected = if *tier == Tier::Owner { Source::Unlimited } else { Source::Fallback };
            assert_eq!(d.source, expected);
            admitted[i] += usize::from(d.is_admitted());
        }
    }
    assert_eq!(admitted, [10, 4, 2], "half of each tier's burst, per instance");
    assert_eq!(limiter.local_limiter(&Tier::Guest).unwrap().quota(), quota("4/2h burst 2"));
    assert_eq!(limiter.stats().fallback, 20);
    server.restart().await.unwrap();
    assert_eq!(limiter.check_in(&Tier::Sudo, "k").await.unwrap().source, Source::Redis);
}

#[test]
fn tier_names_are_checked_in_build() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    let url = "redis://127.0.0.1:1/";
    let err = |b: mltb_ratelimit::TieredRedisLimiterBuilder<&'static str>| b.build().unwrap_err().to_string();
    let b = || TieredRedisLimiter::<&'static str>::builder(url);
    assert!(err(b()).contains("none listed"));
    assert!(err(b().tier("a:b", Limit::Unlimited)).contains("without ':'"));
    assert!(err(b().tier("", Limit::Unlimited)).contains("non-empty"));
    assert!(err(b().tier("a", Limit::Unlimited).tier("a", quota("1/s"))).contains("\"a\" is listed twice"));
    let e = TieredRedisLimiter::<String>::builder(url)
        .tier("x".to_owned(), Limit::Unlimited)
        .fallback(Fallback::Fraction(2.0))
        .build()
        .unwrap_err();
    assert!(e.is_config() && e.to_string().contains("Fraction(2)"), "{e}");
    assert!(b().tier("guest", quota("1/s")).tier("owner", Limit::Unlimited).build().is_ok());
}

/// `check_all` takes a cell from every bucket or from none: a refusing bucket leaves
/// the others as they were, and an unlimited tier is skipped.
#[tokio::test]
async fn check_all_takes_every_cell_or_none() {
    let redis = SharedRedis::get().await.unwrap();
    let limiter = TieredRedisLimiter::builder(redis.url())
        .prefix(redis.key_prefix())
        .tier("all", quota("3/h burst 3"))
        .tier("chat", quota("1/h burst 1"))
        .tier("owner", Limit::Unlimited)
        .build()
        .unwrap();
    let take = |chat: &'static str| {
        let limiter = &limiter;
        async move { limiter.check_all(&[(&"all", "bot"), (&"chat", chat), (&"owner", "x")]).await.unwrap() }
    };
    let first = take("a").await;
    assert_eq!((first.limited, first.source, first.remaining, first.limit), (false, Source::Redis, 0, 1));
    let again = take("a").await;
    assert!(again.limited, "chat a's only cell is spent");
    assert!(again.retry_after > Duration::from_secs(3000), "{:?}", again.retry_after);
    // The refusal took nothing from `all`: two cells are left for two other chats.
    assert!(take("b").await.is_admitted());
    assert!(take("c").await.is_admitted());
    let full = take("d").await;
    assert!(full.limited, "`all` is spent");
    // ... and took nothing from chat d either.
    assert!(limiter.check_in(&"chat", "d").await.unwrap().is_admitted());
    assert!(limiter.check_all(&[]).await.unwrap().is_admitted());
    assert_eq!(
        limiter.check_all(&[(&"all", "bot"), (&"admin", "k")]).await.unwrap_err(),
        Denied::InsufficientCapacity { requested: 1, capacity: 0 },
        "a tier not listed has no capacity"
    );
}

/// Two limiters (two processes' worth) checking one shared bucket beside their own,
/// concurrently, admit exactly the shared bucket's burst between them.
#[tokio::test]
async fn concurrent_check_all_never_over_admits() {
    let redis = SharedRedis::get().await.unwrap();
    let make = || {
        TieredRedisLimiter::builder(redis.url())
            .prefix(redis.key_prefix())
            .tier("all", quota("10/h burst 10"))
            .tier("chat", quota("100/h burst 100"))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let (a, b) = (std::sync::Arc::new(make()), std::sync::Arc::new(make()));
    let mut checks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
        checks.spawn(async move {
            limiter.check_all(&[(&"chat", &i.to_string()), (&"all", "bot")]).await.unwrap()
        });
    }
    let decisions = checks.join_all().await;
    assert!(decisions.iter().all(|d| d.source == Source::Redis));
    assert_eq!(decisions.iter().filter(|d| d.is_admitted()).count(), 10);
}

/// `hold_all` keeps each bucket from granting a cell for the gap (the wait a refused
/// check reports is the gap), leaves a bucket held back longer as it was, skips
/// unlimited tiers, refuses unlisted ones, and says when Redis could not hold.
#[tokio::test]
async fn hold_all_keeps_the_next_cell_back_for_the_gap() {
    let redis = SharedRedis::get().await.unwrap();
    let limiter = TieredRedisLimiter::builder(redis.url())
        .prefix(redis.key_prefix())
        .tier("chat", quota("1/10ms burst 1"))
        .tier("slow", quota("1/h burst 1"))
        .tier("burst", quota("100/s burst 100"))
        .tier("owner", Limit::Unlimited)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let gap = Duration::from_secs(30 * 60);
    let held = limiter.hold_all(&[(&"chat", "a"), (&"burst", "a"), (&"owner", "a")], gap).await;
    assert_eq!(held, Ok(true));
    for tier in ["chat", "burst"] {
        let refused = limiter.check_all(&[(&tier, "a")]).await.unwrap();
        assert!(refused.limited, "{tier}: held for {gap:?}");
        assert!(
            refused.retry_after <= gap && refused.retry_after > gap - Duration::from_secs(60),
            "{tier}: the wait is the gap, {:?}",
            refused.retry_after
        );
    }
    // Another key of the tier is not held.
    assert!(limiter.check_all(&[(&"chat", "b")]).await.unwrap().is_admitted());
    // A bucket already held back longer (its only cell of the hour taken) keeps its wait.
    assert!(limiter.check_all(&[(&"slow", "a")]).await.unwrap().is_admitted());
    assert_eq!(limiter.hold_all(&[(&"slow", "a")], Duration::from_secs(1)).await, Ok(true));
    let refused = limiter.check_all(&[(&"slow", "a")]).await.unwrap();
    assert!(refused.retry_after > Duration::from_secs(3000), "{:?}", refused.retry_after);
    assert_eq!(limiter.hold_all(&[], gap).await, Ok(true));
    assert_eq!(
        limiter.hold_all(&[(&"admin", "a")], gap).await,
        Err(Denied::InsufficientCapacity { requested: 1, capacity: 0 }),
        "a tier not listed"
    );

    let server = RedisServer::start().await.unwrap();
    let down = TieredRedisLimiter::builder(server.url())
        .tier("chat", quota("1/10ms burst 1"))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    server.stop().await.unwrap();
    assert_eq!(down.hold_all(&[(&"chat", "a")], gap).await, Ok(false), "Redis is down");
    assert_eq!(down.check_all(&[(&"chat", "a")]).await.unwrap().source, Source::Fallback);
}
