//! Shared fixtures: a simulator and a client pointed at it.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use mltb_telegram::Client;
use mltb_telegram_sim::{Sim, SimConfig};

pub async fn start(config: SimConfig) -> Sim {
    Sim::start(config).await.expect("the simulator starts on loopback")
}

pub fn client(sim: &Sim) -> Client {
    Client::builder(sim.token())
        .api_url(sim.api_url())
        .request_timeout(Duration::from_secs(10))
        .build()
        .expect("valid client")
}

/// Waits (bounded) until `cond` holds, checking after each short pause; for conditions
/// that are observable only by asking the simulator.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
