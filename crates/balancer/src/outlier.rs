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

    /// Sets the failures in a row that eject an endpoint (at least 1).
    pub fn consecutive_failures(mut self, n: u32) -> Result<Self> {
        if n == 0 {
            return Err(Error::invalid("consecutive_failures", "0; expected 1 or more"));
        }
        self.consecutive_failures = n;
        Ok(self)
    }

    /// Sets the interval after which an ejection multiplier decreases by one.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the base ejection time (more than zero).
    pub fn base_ejection_time(mut self, t: Duration) -> Result<Self> {
        if t.is_zero() {
            return Err(Error::invalid("base_ejection_time", "0; expected a positive duration"));
        }
        self.base_ejection_time = t;
        Ok(self)
    }

    /// Sets the longest ejection (raised to the base ejection time if below it).
    #[must_use]
    pub fn max_ejection_time(mut self, t: Duration) -> Self {
        self.max_ejection_time = t;
        self
    }

    /// Sets the most members ejected at once, in percent (0 to 100).
    pub fn max_ejection_percent(mut self, percent: u8) -> Result<Self> {
        if percent > 100 {
            return Err(Error::invalid("max_ejection_percent", format!("{percent}; expected 0 to 100")));
        }
        self.max_ejection_percent = percent;
        Ok(self)
    }

    /// The failures in a row that eject an endpoint.
    pub fn failure_threshold(&self) -> u32 {
        self.consecutive_failures
    }

    /// The most endpoints ejected at once among `members`: ⌈members × percent / 100⌉.
    pub fn max_ejected(&self, members: usize) -> usize {
        (members * usize::from(self.max_ejection_percent)).div_ceil(100)
    }

    /// The ejection time for the `times`-th ejection in a row (1 for the first).
    pub fn ejection_time(&self, times: u32) -> Duration {
        let max = self.max_ejection_time.max(self.base_ejection_time);
        self.base_ejection_time.saturating_mul(times.max(1)).min(max)
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
        let off = OutlierDetection::envoy().max_ejection_percent(0).expect("valid");
        assert_eq!(off.max_ejected(50), 0);
        assert!(OutlierDetection::envoy().max_ejection_percent(101).is_err());
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
    fn zero_thresholds_are_refused() {
        assert!(OutlierDetection::envoy().consecutive_failures(0).is_err());
        assert!(OutlierDetection::envoy().base_ejection_time(Duration::ZERO).is_err());
    }
}
