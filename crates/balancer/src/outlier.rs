//! Passive outlier detection: ejecting endpoints after consecutive failures.

use std::time::Duration;

use crate::clock::nanos_u64;
use crate::error::{Error, Result};

/// When and for how long passive outlier detection ejects an endpoint (Envoy's
/// consecutive-5xx detector).
///
/// - After `consecutive_failures` failures in a row (reported through
///   [`Pick::report`](crate::Pick::report)) the endpoint is ejected for
///   `base_ejection_time × k`, capped at `max_ejection_time`, where `k` counts its
///   ejections in a row. `k` drops by one for every `interval` that passes between being
///   returned to service and the next ejection, as Envoy's sweep does.
/// - At most `max_ejection_percent` of the members are ejected at once, rounded **up**:
///   an ejection is allowed while `ejected / members < max_ejection_percent / 100`
///   before it, which is Envoy's check, so at least one endpoint can always be ejected
///   (one of 1, of 5 or of 10 with 10 %; two of 11 to 20). The cap is
///   [`max_ejected`](Self::max_ejected). A percentage of 0 disables ejection.
/// - An ejected endpoint returns to service when its time is up (checked on the next
///   pick), with its failure count reset.
///
/// [`envoy`](Self::envoy) has Envoy's defaults; [`builder`](Self::builder) changes them,
/// and its [`build`](OutlierDetectionBuilder::build) checks every setting, so an
/// `OutlierDetection` is always valid:
///
/// ```
/// use mltb_balancer::OutlierDetection;
///
/// let od = OutlierDetection::builder()
///     .consecutive_failures(3)
///     .max_ejection_percent(50)
///     .build()?;
/// assert_eq!(od.max_ejected(4), 2);
///
/// let err = OutlierDetection::builder().max_ejection_percent(150).build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid OutlierDetection::max_ejection_percent = 150: expected 0 to 100");
/// # Ok::<(), mltb_balancer::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierDetection {
    consecutive_failures: u32,
    interval: Duration,
    base_ejection_time: Duration,
    max_ejection_time: Duration,
    max_ejection_percent: u8,
}

impl OutlierDetection {
    /// Envoy's defaults: 5 consecutive failures, interval 10 s, base ejection time 30 s,
    /// max ejection time 300 s, at most 10 % ejected.
    pub fn envoy() -> Self {
        Self {
            consecutive_failures: 5,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }

    /// A builder starting from Envoy's defaults ([`envoy`](Self::envoy)).
    pub fn builder() -> OutlierDetectionBuilder {
        OutlierDetectionBuilder { od: Self::envoy() }
    }

    /// The failures in a row that eject an endpoint.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// The quiet time after which an ejection multiplier decreases by one.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The first ejection's length.
    pub fn base_ejection_time(&self) -> Duration {
        self.base_ejection_time
    }

    /// The longest ejection.
    pub fn max_ejection_time(&self) -> Duration {
        self.max_ejection_time
    }

    /// The most members ejected at once, in percent.
    pub fn max_ejection_percent(&self) -> u8 {
        self.max_ejection_percent
    }

    /// The most endpoints ejected at once among `members`: ⌈members × percent / 100⌉.
    pub fn max_ejected(&self, members: usize) -> usize {
        (members * usize::from(self.max_ejection_percent)).div_ceil(100)
    }

    /// The ejection time for the `times`-th ejection in a row (1 for the first).
    pub fn ejection_time(&self, times: u32) -> Duration {
        self.base_ejection_time.saturating_mul(times.max(1)).min(self.max_ejection_time)
    }

    /// The multiplier for a new ejection, given the previous one and the time since the
    /// endpoint returned to service.
    pub(crate) fn next_multiplier(&self, previous: u32, quiet: u64) -> u32 {
        let interval = nanos_u64(self.interval);
        let decayed = quiet.checked_div(interval).unwrap_or(0);
        let kept = u64::from(previous).saturating_sub(decayed) as u32;
        kept.saturating_add(1)
    }
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self::envoy()
    }
}

/// Builds an [`OutlierDetection`]; the setters take any value and
/// [`build`](Self::build) checks them all.
#[derive(Debug, Clone)]
pub struct OutlierDetectionBuilder {
    od: OutlierDetection,
}

impl OutlierDetectionBuilder {
    /// Sets the failures in a row that eject an endpoint (at least 1; default 5).
    #[must_use]
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.od.consecutive_failures = n;
        self
    }

    /// Sets the quiet time after which an ejection multiplier decreases by one (more
    /// than zero; default 10 s).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.od.interval = interval;
        self
    }

    /// Sets the first ejection's length (more than zero; default 30 s).
    #[must_use]
    pub fn base_ejection_time(mut self, t: Duration) -> Self {
        self.od.base_ejection_time = t;
        self
    }

    /// Sets the longest ejection (at least the base ejection time; default 300 s).
    #[must_use]
    pub fn max_ejection_time(mut self, t: Duration) -> Self {
        self.od.max_ejection_time = t;
        self
    }

    /// Sets the most members ejected at once, in percent (0 to 100, 0 disables
    /// ejection; default 10).
    #[must_use]
    pub fn max_ejection_percent(mut self, percent: u8) -> Self {
        self.od.max_ejection_percent = percent;
        self
    }

    /// The settings, once every one is checked.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming the first
    /// setting out of range, its value and what was expected.
    pub fn build(self) -> Result<OutlierDetection> {
        let od = self.od;
        if od.consecutive_failures == 0 {
            return Err(Error::invalid("OutlierDetection::consecutive_failures", 0, "1 or more"));
        }
        if od.interval.is_zero() {
            return Err(Error::invalid(
                "OutlierDetection::interval",
                format!("{:?}", od.interval),
                "a positive duration",
            ));
        }
        if od.base_ejection_time.is_zero() {
            return Err(Error::invalid(
                "OutlierDetection::base_ejection_time",
                format!("{:?}", od.base_ejection_time),
                "a positive duration",
            ));
        }
        if od.max_ejection_time < od.base_ejection_time {
            return Err(Error::invalid(
                "OutlierDetection::max_ejection_time",
                format!("{:?}", od.max_ejection_time),
                format!("at least the base ejection time ({:?})", od.base_ejection_time),
            ));
        }
        if od.max_ejection_percent > 100 {
            return Err(Error::invalid(
                "OutlierDetection::max_ejection_percent",
                od.max_ejection_percent,
                "0 to 100",
            ));
        }
        Ok(od)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_rounds_up_like_envoy() {
        let od = OutlierDetection::envoy();
        assert_eq!(od.max_ejected(0), 0);
        assert_eq!(od.max_ejected(1), 1);
        assert_eq!(od.max_ejected(5), 1);
        assert_eq!(od.max_ejected(10), 1);
        assert_eq!(od.max_ejected(11), 2);
        assert_eq!(od.max_ejected(20), 2);
        assert_eq!(od.max_ejected(21), 3);
        let off = OutlierDetection::builder().max_ejection_percent(0).build().expect("valid");
        assert_eq!(off.max_ejected(50), 0);
    }

    #[test]
    fn ejection_time_grows_and_caps() {
        let od = OutlierDetection::envoy();
        assert_eq!(od.ejection_time(1), Duration::from_secs(30));
        assert_eq!(od.ejection_time(3), Duration::from_secs(90));
        assert_eq!(od.ejection_time(11), Duration::from_secs(300));
        assert_eq!(od.ejection_time(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn multiplier_decays_per_quiet_interval() {
        let od = OutlierDetection::envoy();
        let ten_s = 10_000_000_000;
        assert_eq!(od.next_multiplier(0, 0), 1);
        assert_eq!(od.next_multiplier(3, ten_s - 1), 4);
        assert_eq!(od.next_multiplier(3, 2 * ten_s), 2);
        assert_eq!(od.next_multiplier(3, 100 * ten_s), 1);
    }

    #[test]
    fn setters_take_any_value_and_build_names_the_bad_one() {
        let refused = |b: OutlierDetectionBuilder| b.build().unwrap_err().to_string();
        // An invalid value mid-chain does not stop the chain; build reports it.
        assert_eq!(
            refused(OutlierDetection::builder().consecutive_failures(0).max_ejection_percent(20)),
            "invalid OutlierDetection::consecutive_failures = 0: expected 1 or more"
        );
        assert_eq!(
            refused(OutlierDetection::builder().base_ejection_time(Duration::ZERO)),
            "invalid OutlierDetection::base_ejection_time = 0ns: expected a positive duration"
        );
        assert_eq!(
            refused(OutlierDetection::builder().interval(Duration::ZERO)),
            "invalid OutlierDetection::interval = 0ns: expected a positive duration"
        );
        assert_eq!(
            refused(OutlierDetection::builder().max_ejection_time(Duration::from_secs(10))),
            "invalid OutlierDetection::max_ejection_time = 10s: expected at least the base ejection time (30s)"
        );
        assert_eq!(
            refused(OutlierDetection::builder().max_ejection_percent(101)),
            "invalid OutlierDetection::max_ejection_percent = 101: expected 0 to 100"
        );
        let err = OutlierDetection::builder().consecutive_failures(0).build().unwrap_err();
        assert!(err.is_config() && !err.is_retryable());
    }

    #[test]
    fn built_settings_are_kept() {
        let od = OutlierDetection::builder()
            .consecutive_failures(2)
            .interval(Duration::from_secs(1))
            .base_ejection_time(Duration::from_secs(5))
            .max_ejection_time(Duration::from_secs(5))
            .max_ejection_percent(100)
            .build()
            .expect("valid");
        assert_eq!(od.consecutive_failures(), 2);
        assert_eq!(od.interval(), Duration::from_secs(1));
        assert_eq!(
            (od.base_ejection_time(), od.max_ejection_time()),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
        assert_eq!(od.max_ejection_percent(), 100);
        assert_eq!(od.ejection_time(3), Duration::from_secs(5));
        assert_eq!(
            OutlierDetection::builder().build().expect("defaults are valid"),
            OutlierDetection::envoy()
        );
    }
}
