//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use mltb_balancer::{Backend, Balancer, FakeClock, OutlierDetection, Strategy};

/// `n` backends `node-0..n` of weight 1.
pub fn backends(n: usize) -> Vec<Backend> {
    (0..n).map(|i| Backend::new(format!("node-{i}"), format!("10.0.{}.{}:80", i / 256, i % 256))).collect()
}

/// A balancer over `n` backends on a fake clock.
pub fn balancer<S: Strategy>(strategy: S, n: usize, clock: &FakeClock) -> Balancer<S> {
    Balancer::builder(strategy).backends(backends(n)).clock(clock.clone()).build().expect("valid backends")
}

/// A balancer over `n` backends on a fake clock with outlier detection.
pub fn ejecting<S: Strategy>(strategy: S, n: usize, clock: &FakeClock, od: OutlierDetection) -> Balancer<S> {
    Balancer::builder(strategy)
        .backends(backends(n))
        .clock(clock.clone())
        .outlier_detection(od)
        .build()
        .expect("valid backends")
}
