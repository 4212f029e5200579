//! [`HealthChecker`]: rounds of active checks that flip endpoints' health.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::future::join_all;
use tokio::time::{MissedTickBehavior, interval, timeout};

use super::{HealthCheck, HealthConfig};
use crate::backend::Endpoint;
use crate::balancer::Balancer;
use crate::strategy::Strategy;

/// What one round of checks did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Round {
    /// Endpoints checked.
    pub checked: usize,
    /// Ids of endpoints that became unhealthy this round.
    pub marked_unhealthy: Vec<String>,
    /// Ids of endpoints that became healthy this round.
    pub marked_healthy: Vec<String>,
}

/// Runs a [`HealthCheck`] against every member of a balancer, concurrently, once per
/// interval; an endpoint flips to unhealthy after `unhealthy_threshold` failures in a row
/// and back after `healthy_threshold` successes in a row.
#[derive(Debug)]
pub struct HealthChecker<S: Strategy, H> {
    balancer: Arc<Balancer<S>>,
    check: H,
    config: HealthConfig,
}

impl<S: Strategy, H: HealthCheck> HealthChecker<S, H> {
    /// A checker of `balancer`'s members.
    pub fn new(balancer: Arc<Balancer<S>>, check: H, config: HealthConfig) -> Self {
        Self { balancer, check, config }
    }

    /// Checks every member once and applies the thresholds.
    pub async fn check_once(&self) -> Round {
        let endpoints = self.balancer.endpoints();
        let results = join_all(endpoints.iter().map(|e| self.check_one(e))).await;
        let mut round = Round { checked: endpoints.len(), ..Round::default() };
        for (e, ok) in endpoints.iter().zip(results) {
            if let Some(now_healthy) = self.apply(e, ok) {
                let id = e.id().to_owned();
                if now_healthy {
                    tracing::info!(endpoint = e.id(), "health check: endpoint healthy again");
                    round.marked_healthy.push(id);
                } else {
                    tracing::warn!(endpoint = e.id(), "health check: endpoint unhealthy");
                    round.marked_unhealthy.push(id);
                }
            }
        }
        if !round.marked_healthy.is_empty() || !round.marked_unhealthy.is_empty() {
            self.balancer.refresh();
        }
        round
    }

    async fn check_one(&self, endpoint: &Endpoint) -> bool {
        match timeout(self.config.timeout, self.check.check(endpoint)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(endpoint = endpoint.id(), error = %e, "health check failed");
                false
            }
            Err(_) => {
                tracing::debug!(endpoint = endpoint.id(), timeout = ?self.config.timeout, "health check timed out");
                false
            }
        }
    }

    /// Counts one result; returns the new health if it flipped.
    fn apply(&self, e: &Endpoint, ok: bool) -> Option<bool> {
        let healthy = e.is_healthy();
        if ok {
            e.hc_failures.store(0, Ordering::Relaxed);
            let n = e.hc_successes.fetch_add(1, Ordering::Relaxed).saturating_add(1);
            if !healthy && n >= self.config.healthy_threshold {
                e.healthy.store(true, Ordering::Release);
                return Some(true);
            }
        } else {
            e.hc_successes.store(0, Ordering::Relaxed);
            let n = e.hc_failures.fetch_add(1, Ordering::Relaxed).saturating_add(1);
            if healthy && n >= self.config.unhealthy_threshold {
                e.healthy.store(false, Ordering::Release);
                return Some(false);
            }
        }
        None
    }

    /// Checks every interval (the first round at once) until the future is dropped;
    /// spawn it and abort the task to stop.
    pub async fn run(self) {
        let mut ticks = interval(self.config.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.check_once().await;
        }
    }
}
