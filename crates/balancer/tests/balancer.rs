//! Membership, reporting, outlier ejection and active health checks.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use mltb_balancer::{
    Backend, Balancer, Endpoint, ErrorKind, FakeClock, HealthCheck, HealthChecker, HealthConfig,
    LeastConnections, OutlierDetection, RoundRobin, TokioClock,
};
use support::{balancer, ejecting};

const MS: Duration = Duration::from_millis(1);

#[test]
fn membership_changes_at_run_time() {
    let clock = FakeClock::new();
    let b = balancer(RoundRobin::new(), 2, &clock);
    b.add(Backend::new("node-2", "x").with_metadata("region", "eu")).expect("new id");
    let dup = b.add(Backend::new("node-2", "y")).unwrap_err();
    assert!(matches!(dup.kind(), ErrorKind::DuplicateBackend { .. }));
    let zero = b.add(Backend::new("z", "y").with_weight(0)).unwrap_err();
    assert!(zero.is_config());
    assert!(matches!(zero.kind(), ErrorKind::InvalidConfig { setting: "weight", .. }));
    assert_eq!(zero.to_string(), r#"invalid weight = 0 (backend "z"): expected 1 or more"#);
    let ids: HashSet<String> = (0..3).map(|_| b.pick().expect("a backend").id().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(b.endpoint("node-2").expect("member").metadata()["region"], "eu");

    b.set_weight("node-2", 5).expect("member");
    assert_eq!(b.endpoint("node-2").expect("member").weight(), 5);
    assert!(b.set_weight("node-2", 0).is_err());
    let removed = b.remove("node-2").expect("member");
    assert_eq!((removed.id(), removed.weight()), ("node-2", 5));
    assert!(matches!(b.remove("node-2").unwrap_err().kind(), ErrorKind::UnknownBackend { .. }));
    assert!((0..10).all(|_| b.pick().expect("a backend").id() != "node-2"));
}

#[test]
fn duplicate_ids_are_refused_at_build() {
    let err = Balancer::new(RoundRobin::new(), [Backend::new("a", "1"), Backend::new("a", "2")]).unwrap_err();
    assert_eq!(err.into_kind(), ErrorKind::DuplicateBackend { id: "a".into() });
}

#[test]
fn no_backend_is_a_typed_error() {
    let b = Balancer::new(RoundRobin::new(), []).expect("empty is valid");
    let err = b.pick().unwrap_err();
    assert!(err.is_no_healthy_backend() && !err.is_retryable(), "{err}");

    let clock = FakeClock::new();
    let b = balancer(RoundRobin::new(), 2, &clock);
    b.set_healthy("node-0", false).expect("member");
    assert!((0..10).all(|_| b.pick().expect("node-1 is healthy").id() == "node-1"));
    b.set_healthy("node-1", false).expect("member");
    let err = b.pick().unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::NoHealthyBackend { total: 2, unhealthy: 2, ejected: 0, next_return: None }
    );
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), None, "only health checks can bring these back");
}

#[test]
fn a_pick_counts_in_flight_until_reported_or_dropped() {
    let clock = FakeClock::new();
    let b = balancer(LeastConnections::new(), 3, &clock);
    let picks: Vec<_> = (0..6).map(|_| b.pick().expect("a backend")).collect();
    // Least connections spreads six picks two per backend.
    assert!(b.endpoints().iter().all(|e| e.in_flight() == 2));
    let mut picks = picks.into_iter();
    picks.next().expect("six").success(5 * MS);
    picks.next().expect("six").failure(5 * MS);
    drop(picks);
    let outcomes = b.endpoints().iter().fold((0, 0, 0), |acc, e| {
        assert_eq!(e.in_flight(), 0);
        let (s, f, c) = e.outcomes();
        (acc.0 + s, acc.1 + f, acc.2 + c)
    });
    assert_eq!(outcomes, (1, 1, 4));
}

#[test]
fn picks_stay_valid_after_their_backend_is_removed() {
    let clock = FakeClock::new();
    let b = ejecting(RoundRobin::new(), 1, &clock, OutlierDetection::envoy());
    let picks: Vec<_> = (0..5).map(|_| b.pick().expect("a backend")).collect();
    b.remove("node-0").expect("member");
    for p in picks {
        assert_eq!(p.id(), "node-0");
        p.failure(MS); // does not eject a non-member, does not panic
    }
    assert_eq!(b.stats().total, 0);
}

#[test]
fn consecutive_failures_eject_for_a_growing_time() {
    let clock = FakeClock::new();
    let od = OutlierDetection::builder().max_ejection_percent(50).build().expect("valid");
    let b = ejecting(RoundRobin::new(), 2, &clock, od);
    let fail_node0 = |n: usize| {
        for _ in 0..n {
            let p = loop {
                let p = b.pick().expect("a backend");
                if p.id() == "node-0" {
                    break p;
                }
            };
            p.failure(MS);
        }
    };
    fail_node0(4);
    assert_eq!(b.stats().ejected, 0, "4 failures are below Envoy's 5");
    // A success resets the count.
    loop {
        let p = b.pick().expect("a backend");
        if p.id() == "node-0" {
            p.success(MS);
            break;
        }
    }
    fail_node0(4);
    assert_eq!(b.stats().ejected, 0);
    fail_node0(1);
    assert_eq!(b.stats().ejected, 1);
    let node0 = b.endpoint("node-0").expect("member");
    assert_eq!(node0.times_ejected(), 1);
    assert!((0..20).all(|_| b.pick().expect("node-1").id() == "node-1"));

    clock.advance(Duration::from_secs(30) - Duration::from_nanos(1));
    assert!((0..20).all(|_| b.pick().expect("node-1").id() == "node-1"), "still ejected 1 ns before 30 s");
    clock.advance(Duration::from_nanos(1));
    assert!((0..20).any(|_| b.pick().expect("a backend").id() == "node-0"), "back after 30 s");
    assert_eq!(b.stats().ejected, 0);

    // Ejected again at once: 2 × 30 s.
    fail_node0(5);
    assert_eq!(node0.times_ejected(), 2);
    clock.advance(Duration::from_secs(59));
    assert_eq!(b.stats().ejected, 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(b.stats().ejected, 0);

    // Three quiet intervals (30 s) later the multiplier has decayed from 2 to 0: 30 s again.
    clock.advance(Duration::from_secs(30));
    fail_node0(5);
    assert_eq!(node0.times_ejected(), 1);
}

#[test]
fn ejection_time_is_capped() {
    let clock = FakeClock::new();
    let od = OutlierDetection::builder().consecutive_failures(1).build().expect("valid");
    let b = ejecting(RoundRobin::new(), 1, &clock, od);
    for times in 1..=12u32 {
        b.pick().expect("back in service").failure(MS);
        let e = b.endpoint("node-0").expect("member");
        assert_eq!(e.times_ejected(), times);
        let expected = Duration::from_secs(30 * u64::from(times)).min(Duration::from_secs(300));
        clock.advance(expected - Duration::from_nanos(1));
        assert!(b.pick().is_err(), "ejection {times} lasts {expected:?}");
        clock.advance(Duration::from_nanos(1));
    }
}

#[test]
fn envoy_cap_allows_one_ejection_of_ten_and_two_of_eleven() {
    for (n, cap) in [(1, 1), (5, 1), (10, 1), (11, 2), (20, 2), (21, 3)] {
        let clock = FakeClock::new();
        let od = OutlierDetection::builder().consecutive_failures(1).build().expect("valid");
        let b = ejecting(RoundRobin::new(), n, &clock, od);
        for _ in 0..3 * n {
            if let Ok(p) = b.pick() {
                p.failure(MS);
            }
        }
        assert_eq!(b.stats().ejected, cap, "{n} backends");
        if n == 1 {
            let err = b.pick().unwrap_err();
            assert_eq!(
                err.kind(),
                &ErrorKind::NoHealthyBackend {
                    total: 1,
                    unhealthy: 0,
                    ejected: 1,
                    next_return: Some(Duration::from_secs(30)),
                }
            );
            assert_eq!(err.retry_after(), Some(Duration::from_secs(30)), "Envoy's first ejection");
        }
    }
}

#[test]
fn retry_after_counts_down_to_the_first_healthy_return() {
    let clock = FakeClock::new();
    let od =
        OutlierDetection::builder().consecutive_failures(1).max_ejection_percent(100).build().expect("valid");
    let b = ejecting(RoundRobin::new(), 2, &clock, od);
    let p = b.pick().expect("a backend");
    let first = p.id().to_owned();
    p.failure(MS); // ejects it for 30 s
    clock.advance(Duration::from_secs(10));
    b.pick().expect("the other").failure(MS); // ejects the other for 30 s
    let err = b.pick().unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(20)), "{err}");
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.pick().unwrap_err().retry_after(), Some(Duration::from_secs(15)));

    // An ejected member that also fails its health checks will not be available when
    // its ejection ends: the wait is the other one's.
    b.set_healthy(&first, false).expect("member");
    assert_eq!(b.pick().unwrap_err().retry_after(), Some(Duration::from_secs(25)));
    clock.advance(Duration::from_secs(25));
    assert!(b.pick().is_ok());
}

/// A health check whose answers the test sets; counts checks.
#[derive(Debug, Clone, Default)]
struct Switch {
    down: Arc<Mutex<HashSet<String>>>,
    hang: Arc<Mutex<HashSet<String>>>,
    checks: Arc<AtomicUsize>,
}

impl HealthCheck for Switch {
    type Error = String;

    async fn check(&self, endpoint: &Endpoint) -> Result<(), String> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        let id = endpoint.id().to_owned();
        if self.hang.lock().contains(&id) {
            std::future::pending::<()>().await;
        }
        if self.down.lock().contains(&id) { Err(format!("{id} is down")) } else { Ok(()) }
    }
}

#[tokio::test(start_paused = true)]
async fn health_checks_flip_after_thresholds_on_the_paused_clock() {
    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backends(support::backends(3))
            .clock(TokioClock::new())
            .build()
            .expect("valid"),
    );
    let switch = Switch::default();
    let config = HealthConfig::builder()
        .interval(Duration::from_secs(10))
        .unhealthy_threshold(3)
        .healthy_threshold(2)
        .timeout(Duration::from_secs(1))
        .build()
        .expect("valid");
    let runner = tokio::spawn(HealthChecker::new(Arc::clone(&b), switch.clone(), config).run());
    // Round k runs at t = 10 s × (k − 1); observe just after each round.
    let after_round = |k: u64| Duration::from_secs(10 * (k - 1)) + MS;
    let start = tokio::time::Instant::now();
    let until = |k: u64| tokio::time::sleep_until(start + after_round(k));

    switch.down.lock().insert("node-1".into());
    switch.hang.lock().insert("node-2".into());
    until(1).await;
    until(2).await;
    assert_eq!(b.stats().unhealthy, 0, "2 failures are below the threshold of 3");
    until(3).await; // round 3 is still waiting for node-2's 1 s timeout
    assert_eq!(b.stats().unhealthy, 0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(b.stats().unhealthy, 2, "third failure (node-1) and third timeout (node-2)");
    assert!((0..10).all(|_| b.pick().expect("node-0").id() == "node-0"));

    switch.down.lock().clear();
    switch.hang.lock().clear();
    until(4).await;
    assert_eq!(b.stats().unhealthy, 2, "one success is below the threshold of 2");
    until(5).await;
    assert_eq!(b.stats().unhealthy, 0);
    assert_eq!(switch.checks.load(Ordering::SeqCst), 15, "five rounds of three checks");
    runner.abort();
}

#[tokio::test(start_paused = true)]
async fn check_once_reports_flips() {
    let clock = FakeClock::new();
    let b = Arc::new(balancer(RoundRobin::new(), 2, &clock));
    let switch = Switch::default();
    let config = HealthConfig::builder().unhealthy_threshold(1).build().expect("valid");
    let checker = HealthChecker::new(Arc::clone(&b), switch.clone(), config);
    switch.down.lock().insert("node-0".into());
    let round = checker.check_once().await;
    assert_eq!((round.checked, round.marked_unhealthy.as_slice()), (2, ["node-0".to_owned()].as_slice()));
    let round = checker.check_once().await;
    assert!(round.marked_unhealthy.is_empty() && round.marked_healthy.is_empty());
    assert!(!b.endpoint("node-0").expect("member").is_healthy());
}

#[test]
fn debug_output_stays_short() {
    let clock = FakeClock::new();
    let b = balancer(mltb_balancer::Maglev::new(), 50, &clock);
    let text = format!("{b:?}");
    assert!(text.contains("slots: 65537"), "the table is summarised");
    assert!(text.len() < 100_000, "{} bytes", text.len());
}

#[test]
fn strategies_that_ignore_in_flight_skip_counting_but_still_count_outcomes() {
    let clock = FakeClock::new();
    let rr = balancer(RoundRobin::new(), 2, &clock);
    assert!(!rr.tracks_in_flight());
    let picks: Vec<_> = (0..4).map(|_| rr.pick().expect("a backend")).collect();
    assert!(rr.endpoints().iter().all(|e| e.in_flight() == 0), "round robin does not count");
    let mut picks = picks.into_iter();
    picks.next().expect("four").success(MS);
    picks.next().expect("four").failure(MS);
    drop(picks);
    let outcomes = rr.endpoints().iter().fold((0, 0, 0), |acc, e| {
        let (s, f, c) = e.outcomes();
        (acc.0 + s, acc.1 + f, acc.2 + c)
    });
    assert_eq!(outcomes, (1, 1, 2));

    let tracked = Balancer::builder(RoundRobin::new())
        .backends(support::backends(2))
        .track_in_flight()
        .build()
        .expect("valid");
    assert!(tracked.tracks_in_flight());
    let held: Vec<_> = (0..4).map(|_| tracked.pick().expect("a backend")).collect();
    assert!(tracked.endpoints().iter().all(|e| e.in_flight() == 2), "counted when asked");
    drop(held);
    assert!(tracked.endpoints().iter().all(|e| e.in_flight() == 0));
    assert!(balancer(LeastConnections::new(), 1, &clock).tracks_in_flight());
}

#[test]
fn picks_are_released_and_reported_on_other_threads() {
    let clock = FakeClock::new();
    let b = balancer(LeastConnections::new(), 4, &clock);
    let picks: Vec<_> = (0..64).map(|_| b.pick().expect("a backend")).collect();
    assert!(b.endpoints().iter().all(|e| e.in_flight() == 16));
    // Half are reported and half dropped, on four other threads.
    std::thread::scope(|s| {
        let mut picks = picks.into_iter();
        for _ in 0..4 {
            let mine: Vec<_> = picks.by_ref().take(16).collect();
            s.spawn(move || {
                for (i, p) in mine.into_iter().enumerate() {
                    if i % 2 == 0 { p.success(MS) } else { drop(p) }
                }
            });
        }
    });
    assert!(b.endpoints().iter().all(|e| e.in_flight() == 0));
    let (s, c) = b.endpoints().iter().fold((0, 0), |acc, e| (acc.0 + e.outcomes().0, acc.1 + e.outcomes().2));
    assert_eq!((s, c), (32, 32));
    // And picked on several threads at once: counts still return to zero.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let held: Vec<_> = (0..100).map(|_| b.pick().expect("a backend")).collect();
                assert!(held.iter().all(|p| p.endpoint().in_flight() >= 1));
            });
        }
    });
    assert!(b.endpoints().iter().all(|e| e.in_flight() == 0));
}

#[test]
fn other_threads_picks_are_seen_once_a_view_is_older_than_its_age() {
    let age = 20 * MS;
    let b = Balancer::new(LeastConnections::new().load_view_age(age), support::backends(2)).expect("valid");
    // This thread's view of the other threads' counts is taken now: none in flight.
    drop(b.pick().expect("a backend"));
    let (picked, check) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            // A new thread's first read refreshes its view, so it spreads its picks 2 / 1.
            let held: Vec<_> = (0..3).map(|_| b.pick().expect("a backend")).collect();
            picked.wait();
            check.wait();
            drop(held);
        });
        picked.wait();
        let loads: Vec<u64> = b.endpoints().iter().map(|e| e.in_flight()).collect();
        // Waiting out the view's age is the behaviour under test, not synchronisation.
        std::thread::sleep(age);
        let chosen: Vec<String> = (0..20).map(|_| b.pick().expect("a backend").id().to_owned()).collect();
        // Let the other thread go before asserting, so that a failure cannot hang the scope.
        check.wait();
        let mut sorted = loads.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2], "the other thread's picks: {loads:?}");
        let lighter = b.endpoints()[usize::from(loads[1] < loads[0])].id().to_owned();
        assert!(chosen.iter().all(|id| *id == lighter), "loads {loads:?} unseen after {age:?}: {chosen:?}");
    });
    assert!(b.endpoints().iter().all(|e| e.in_flight() == 0));
}

#[test]
fn the_clocks_are_mltb_clocks() {
    // Re-exports, not copies: a clock of the family's crate is the balancer's clock.
    let clock: mltb_clock::FakeClock = FakeClock::new();
    let b = Balancer::builder(RoundRobin::new())
        .backends(support::backends(1))
        .clock(clock.clone())
        .build()
        .expect("valid");
    let before = b.now_nanos();
    clock.advance(Duration::from_secs(3));
    assert_eq!(b.now_nanos() - before, mltb_clock::nanos(Duration::from_secs(3)));
    let _: &dyn mltb_clock::Clock = &mltb_balancer::MonotonicClock::new();
}
