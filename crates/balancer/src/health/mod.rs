//! Active health checks: the [`HealthCheck`] seam and the [`HealthChecker`] that runs it.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::backend::Endpoint;
use crate::error::{Error, Result};

mod runner;

pub use runner::{HealthChecker, Round};

/// Checks one endpoint, e.g. an aria2 `getVersion` call or an rclone `about`.
///
/// A check that takes longer than [`HealthConfig::timeout`] counts as failed.
pub trait HealthCheck: Send + Sync + 'static {
    /// Why a check failed (logged).
    type Error: Display + Send;

    /// Checks `endpoint`; `Ok` when it can serve.
    fn check(&self, endpoint: &Endpoint) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How often to check and how many results in a row flip an endpoint's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    interval: Duration,
    timeout: Duration,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

impl HealthConfig {
    /// Checks every 10 s with a 5 s timeout; 3 failures in a row mark an endpoint
    /// unhealthy, 2 successes in a row healthy again.
    pub fn new() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }

    /// Sets the time between rounds of checks (more than zero).
    pub fn interval(mut self, interval: Duration) -> Result<Self> {
        if interval.is_zero() {
            return Err(Error::invalid("health check interval", "0; expected a positive duration"));
        }
        self.interval = interval;
        Ok(self)
    }

    /// Sets how long one check may take before it counts as failed.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the successes in a row that mark an unhealthy endpoint healthy (at least 1).
    pub fn healthy_threshold(mut self, n: u32) -> Result<Self> {
        if n == 0 {
            return Err(Error::invalid("healthy_threshold", "0; expected 1 or more"));
        }
        self.healthy_threshold = n;
        Ok(self)
    }

    /// Sets the failures in a row that mark a healthy endpoint unhealthy (at least 1).
    pub fn unhealthy_threshold(mut self, n: u32) -> Result<Self> {
        if n == 0 {
            return Err(Error::invalid("unhealthy_threshold", "0; expected 1 or more"));
        }
        self.unhealthy_threshold = n;
        Ok(self)
    }

    /// The time between rounds.
    pub fn check_interval(&self) -> Duration {
        self.interval
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self::new()
    }
}
