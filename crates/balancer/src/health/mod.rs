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
///
/// [`new`](Self::new) has the defaults; [`builder`](Self::builder) changes them, and its
/// [`build`](HealthConfigBuilder::build) checks every setting, so a `HealthConfig` is
/// always valid:
///
/// ```
/// use std::time::Duration;
/// use mltb_balancer::HealthConfig;
///
/// let config = HealthConfig::builder()
///     .interval(Duration::from_secs(5))
///     .timeout(Duration::from_secs(2))
///     .unhealthy_threshold(2)
///     .build()?;
/// assert_eq!(config.interval(), Duration::from_secs(5));
///
/// let err = HealthConfig::builder().interval(Duration::ZERO).build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid HealthConfig::interval = 0ns: expected a positive duration");
/// # Ok::<(), mltb_balancer::Error>(())
/// ```
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

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder() -> HealthConfigBuilder {
        HealthConfigBuilder { config: Self::new() }
    }

    /// The time between rounds.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long one check may take before it counts as failed.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The successes in a row that mark an unhealthy endpoint healthy.
    pub fn healthy_threshold(&self) -> u32 {
        self.healthy_threshold
    }

    /// The failures in a row that mark a healthy endpoint unhealthy.
    pub fn unhealthy_threshold(&self) -> u32 {
        self.unhealthy_threshold
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`HealthConfig`]; the setters take any value and
/// [`build`](Self::build) checks them all.
#[derive(Debug, Clone)]
pub struct HealthConfigBuilder {
    config: HealthConfig,
}

impl HealthConfigBuilder {
    /// Sets the time between rounds of checks (more than zero; default 10 s).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.config.interval = interval;
        self
    }

    /// Sets how long one check may take before it counts as failed (more than zero;
    /// default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Sets the successes in a row that mark an unhealthy endpoint healthy (at least 1;
    /// default 2).
    #[must_use]
    pub fn healthy_threshold(mut self, n: u32) -> Self {
        self.config.healthy_threshold = n;
        self
    }

    /// Sets the failures in a row that mark a healthy endpoint unhealthy (at least 1;
    /// default 3).
    #[must_use]
    pub fn unhealthy_threshold(mut self, n: u32) -> Self {
        self.config.unhealthy_threshold = n;
        self
    }

    /// The configuration, once every setting is checked.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming the first
    /// setting out of range, its value and what was expected.
    pub fn build(self) -> Result<HealthConfig> {
        let c = self.config;
        if c.interval.is_zero() {
            return Err(Error::invalid(
                "HealthConfig::interval",
                format!("{:?}", c.interval),
                "a positive duration",
            ));
        }
        if c.timeout.is_zero() {
            return Err(Error::invalid(
                "HealthConfig::timeout",
                format!("{:?}", c.timeout),
                "a positive duration",
            ));
        }
        if c.healthy_threshold == 0 {
            return Err(Error::invalid("HealthConfig::healthy_threshold", 0, "1 or more"));
        }
        if c.unhealthy_threshold == 0 {
            return Err(Error::invalid("HealthConfig::unhealthy_threshold", 0, "1 or more"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn setters_take_any_value_and_build_names_the_bad_one() {
        // An invalid value mid-chain does not stop the chain; build reports it.
        let err = HealthConfig::builder()
            .healthy_threshold(0)
            .interval(Duration::from_secs(1))
            .build()
            .unwrap_err();
        assert!(err.is_config());
        assert_eq!(
            err.kind(),
            &ErrorKind::InvalidConfig {
                setting: "HealthConfig::healthy_threshold",
                value: "0".into(),
                expected: "1 or more".into(),
            }
        );
        let err = HealthConfig::builder().unhealthy_threshold(0).build().unwrap_err();
        assert!(err.to_string().contains("HealthConfig::unhealthy_threshold = 0"), "{err}");
        let err = HealthConfig::builder().timeout(Duration::ZERO).build().unwrap_err();
        assert!(
            err.to_string().contains("HealthConfig::timeout = 0ns: expected a positive duration"),
            "{err}"
        );
        let err = HealthConfig::builder().interval(Duration::ZERO).build().unwrap_err();
        assert!(err.to_string().contains("HealthConfig::interval = 0ns"), "{err}");
    }

    #[test]
    fn built_config_keeps_the_settings() {
        let c = HealthConfig::builder()
            .interval(Duration::from_secs(3))
            .timeout(Duration::from_millis(500))
            .healthy_threshold(4)
            .unhealthy_threshold(1)
            .build()
            .expect("valid");
        assert_eq!(
            (c.interval(), c.timeout(), c.healthy_threshold(), c.unhealthy_threshold()),
            (Duration::from_secs(3), Duration::from_millis(500), 4, 1)
        );
        assert_eq!(HealthConfig::builder().build().expect("defaults are valid"), HealthConfig::new());
    }
}
