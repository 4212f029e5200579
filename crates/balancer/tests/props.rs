//! Property tests: picks are always available endpoints, ejection never exceeds the cap,
//! in-flight counts return to zero.

mod support;

use std::time::Duration;

use proptest::prelude::*;

use mltb_balancer::{
    Clock as _, FakeClock, Ketama, LeastConnections, Maglev, OutlierDetection, PeakEwmaP2c, RoundRobin,
    SmoothWeighted, Strategy as BalanceStrategy,
};
use support::ejecting;

#[derive(Debug, Clone)]
enum Op {
    /// Pick (by key, if given) and report a failure or a success.
    Pick {
        key: Option<u16>,
        fail: bool,
    },
    SetHealthy {
        node: usize,
        healthy: bool,
    },
    Advance {
        secs: u16,
    },
    SetWeight {
        node: usize,
        weight: u32,
    },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        6 => (proptest::option::of(any::<u16>()), proptest::bool::weighted(0.7))
            .prop_map(|(key, fail)| Op::Pick { key, fail }),
        1 => (0..40usize, any::<bool>()).prop_map(|(node, healthy)| Op::SetHealthy { node, healthy }),
        1 => (0..120u16).prop_map(|secs| Op::Advance { secs }),
        1 => (0..40usize, 1..20u32).prop_map(|(node, weight)| Op::SetWeight { node, weight }),
    ]
}

/// Runs `ops` and checks after each step that the ejection cap holds and that a pick is
/// an available endpoint whenever one exists.
fn check<S: BalanceStrategy>(
    strategy: S,
    n: usize,
    threshold: u32,
    percent: u8,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let clock = FakeClock::new();
    let od = OutlierDetection::builder()
        .consecutive_failures(threshold)
        .max_ejection_percent(percent)
        .build()
        .expect("valid");
    let cap = od.max_ejected(n);
    let b = ejecting(strategy, n, &clock, od);
    for op in ops {
        match *op {
            Op::Pick { key, fail } => {
                let now = clock.now_nanos();
                let eps = b.endpoints();
                let any_available = eps.iter().any(|e| e.is_healthy() && !e.is_ejected_at(now));
                let pick = match key {
                    Some(k) => b.pick_key(k.to_le_bytes()),
                    None => b.pick(),
                };
                match pick {
                    Ok(p) => {
                        prop_assert!(p.endpoint().is_healthy(), "picked unhealthy {}", p.id());
                        prop_assert!(!p.endpoint().is_ejected_at(now), "picked ejected {}", p.id());
                        if fail {
                            p.failure(Duration::from_millis(3))
                        } else {
                            p.success(Duration::from_millis(2))
                        }
                    }
                    Err(e) => {
                        prop_assert!(e.is_no_healthy_backend());
                        prop_assert!(!any_available, "error while an endpoint was available: {e}");
                    }
                }
            }
            Op::SetHealthy { node, healthy } => {
                let _ = b.set_healthy(&format!("node-{node}"), healthy);
            }
            Op::Advance { secs } => clock.advance(Duration::from_secs(u64::from(secs))),
            Op::SetWeight { node, weight } => {
                let _ = b.set_weight(&format!("node-{node}"), weight);
            }
        }
        let now = clock.now_nanos();
        let ejected = b.endpoints().iter().filter(|e| e.is_ejected_at(now)).count();
        prop_assert!(ejected <= cap, "{ejected} ejected of {n}, cap {cap}");
        prop_assert_eq!(b.stats().ejected, ejected);
    }
    prop_assert!(b.endpoints().iter().all(|e| e.in_flight() == 0));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn invariants_round_robin(n in 1..40usize, t in 1..4u32, pct in 0..=100u8, ops in prop::collection::vec(op(), 1..200)) {
        check(RoundRobin::new(), n, t, pct, &ops)?;
    }

    #[test]
    fn invariants_weighted(n in 1..40usize, t in 1..4u32, pct in 0..=100u8, ops in prop::collection::vec(op(), 1..200)) {
        check(SmoothWeighted::new(), n, t, pct, &ops)?;
    }

    #[test]
    fn invariants_least_conn(n in 1..40usize, t in 1..4u32, pct in 0..=100u8, ops in prop::collection::vec(op(), 1..200)) {
        check(LeastConnections::new(), n, t, pct, &ops)?;
    }

    #[test]
    fn invariants_least_conn_sampled(n in 1..40usize, t in 1..4u32, pct in 0..=100u8, ops in prop::collection::vec(op(), 1..200)) {
        check(LeastConnections::sampled_seeded(2, 3), n, t, pct, &ops)?;
    }

    #[test]
    fn invariants_p2c(n in 1..40usize, t in 1..4u32, pct in 0..=100u8, ops in prop::collection::vec(op(), 1..200)) {
        check(PeakEwmaP2c::seeded(1), n, t, pct, &ops)?;
    }

    #[test]
    fn invariants_ketama(n in 1..40usize, t in 1..4u32, pct in 0..=100u8, ops in prop::collection::vec(op(), 1..100)) {
        check(Ketama::new(), n, t, pct, &ops)?;
    }

    #[test]
    fn invariants_maglev(n in 1..20usize, t in 1..4u32, pct in 0..=100u8, ops in prop::collection::vec(op(), 1..60)) {
        check(Maglev::with_table_size(4_099).expect("prime"), n, t, pct, &ops)?;
    }

    /// Picks held and dropped in any order leave every count at zero.
    #[test]
    fn least_conn_counts_return_to_zero(n in 1..20usize, holds in prop::collection::vec(any::<bool>(), 1..300), order in any::<u64>()) {
        let clock = FakeClock::new();
        let b = support::balancer(LeastConnections::new(), n, &clock);
        let mut held = Vec::new();
        for keep in holds {
            let p = b.pick().expect("all healthy");
            if keep { held.push(p) } else if held.len() % 2 == 0 { p.success(Duration::from_millis(1)) } else { drop(p) }
            let total: u64 = b.endpoints().iter().map(|e| e.in_flight()).sum();
            prop_assert_eq!(total, held.len() as u64);
            // Least connections keeps the spread within one.
            let loads: Vec<u64> = b.endpoints().iter().map(|e| e.in_flight()).collect();
            prop_assert!(loads.iter().max().expect("n > 0") - loads.iter().min().expect("n > 0") <= 1, "{:?}", loads);
        }
        // Drop in a scrambled order.
        let mut k = order;
        while !held.is_empty() {
            k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let i = (k >> 33) as usize % held.len();
            drop(held.swap_remove(i));
        }
        prop_assert!(b.endpoints().iter().all(|e| e.in_flight() == 0));
    }
}

#[derive(Debug, Clone)]
enum LcOp {
    /// Pick and hold the pick.
    Pick,
    /// Drop the held pick at this position (modulo the number held), or report it.
    Release {
        at: usize,
        report: bool,
    },
    SetWeight {
        node: usize,
        weight: u32,
    },
    SetHealthy {
        node: usize,
        healthy: bool,
    },
}

fn lc_op() -> impl proptest::strategy::Strategy<Value = LcOp> {
    prop_oneof![
        6 => Just(LcOp::Pick),
        4 => (any::<usize>(), any::<bool>()).prop_map(|(at, report)| LcOp::Release { at, report }),
        1 => (0..24usize, 1..6u32).prop_map(|(node, weight)| LcOp::SetWeight { node, weight }),
        1 => (0..24usize, any::<bool>()).prop_map(|(node, healthy)| LcOp::SetHealthy { node, healthy }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Exact least connections, with its floor and early stop, picks what a full scan of
    /// the available endpoints would: one of least `in_flight / weight`, through holds,
    /// releases in any order, reports, weight and health changes (snapshot rebuilds).
    #[test]
    fn exact_least_conn_picks_a_least_loaded(
        n in 1..24usize,
        weights in prop::collection::vec(1..6u32, 24),
        ops in prop::collection::vec(lc_op(), 1..300),
    ) {
        let clock = FakeClock::new();
        let backends = support::backends(n).into_iter().zip(&weights).map(|(b, &w)| b.with_weight(w));
        let b = mltb_balancer::Balancer::builder(LeastConnections::new())
            .backends(backends)
            .clock(clock.clone())
            .build()
            .expect("valid");
        let mut held = Vec::new();
        for op in ops {
            match op {
                LcOp::Pick => {
                    let available: Vec<(u64, u64)> = b
                        .endpoints()
                        .iter()
                        .filter(|e| e.is_healthy())
                        .map(|e| (e.in_flight(), u64::from(e.weight())))
                        .collect();
                    let Some(&least) = available.iter().min_by(|x, y| (x.0 * y.1).cmp(&(y.0 * x.1))) else {
                        prop_assert!(b.pick().is_err());
                        continue;
                    };
                    let p = b.pick().expect("an endpoint is healthy");
                    let (load, weight) = (p.endpoint().in_flight() - 1, u64::from(p.endpoint().weight()));
                    prop_assert_eq!(load * least.1, least.0 * weight, "picked {} at {}/{}, least is {}/{}", p.id(), load, weight, least.0, least.1);
                    held.push(p);
                }
                LcOp::Release { at, report } => {
                    if !held.is_empty() {
                        let p = held.swap_remove(at % held.len());
                        if report { p.success(Duration::from_millis(1)) } else { drop(p) }
                    }
                }
                LcOp::SetWeight { node, weight } => {
                    let _ = b.set_weight(&format!("node-{node}"), weight);
                }
                LcOp::SetHealthy { node, healthy } => {
                    let _ = b.set_healthy(&format!("node-{node}"), healthy);
                }
            }
        }
        let total: u64 = b.endpoints().iter().map(|e| e.in_flight()).sum();
        prop_assert_eq!(total, held.len() as u64);
        drop(held);
        prop_assert!(b.endpoints().iter().all(|e| e.in_flight() == 0));
    }
}
