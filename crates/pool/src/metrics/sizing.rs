//! Pool sizing from Little's law.

use std::time::Duration;

/// A pool size derived from measured load with Little's law.
///
/// The mean number of connections in use is `L = λ × W` (arrival rate × mean use
/// time); keeping utilization under a target `ρ` needs `max_size ≥ L / ρ`.
///
/// The arrival rate is measured from *successful* checkouts, so a saturated pool
/// (checkouts waiting or timing out) under-reports demand: treat the figure as a
/// lower bound whenever [`Metrics::wait`](crate::Metrics::wait) shows long waits or
/// [`Metrics::timeouts`](crate::Metrics::timeouts) grows.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct SizeRecommendation {
    /// Checkouts per second (λ).
    pub arrival_rate: f64,
    /// Mean time a connection is held (W).
    pub mean_use: Duration,
    /// Mean connections in use, λ × W (L).
    pub offered_load: f64,
    /// The utilization to stay under (ρ).
    pub target_utilization: f64,
    /// `ceil(L / ρ)`, at least 1.
    pub max_size: u32,
}

impl SizeRecommendation {
    /// The recommendation for a measured load; `None` if the inputs are not finite
    /// and positive (the target must be in (0, 1]).
    pub fn from_load(arrival_rate: f64, mean_use: Duration, target_utilization: f64) -> Option<Self> {
        let valid_target = target_utilization > 0.0 && target_utilization <= 1.0;
        if !(arrival_rate.is_finite() && arrival_rate >= 0.0 && valid_target) {
            return None;
        }
        let offered_load = arrival_rate * mean_use.as_secs_f64();
        // Float to int saturates, so an absurd load gives u32::MAX rather than wrapping.
        let max_size = ((offered_load / target_utilization).ceil() as u32).max(1);
        Some(Self { arrival_rate, mean_use, offered_load, target_utilization, max_size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn littles_law_with_headroom() {
        // 200 checkouts/s held 200 ms each: 40 busy on average; under 80% needs 50.
        let r = SizeRecommendation::from_load(200.0, Duration::from_millis(200), 0.8).unwrap();
        assert!((r.offered_load - 40.0).abs() < 1e-9);
        assert_eq!(r.max_size, 50);
        // 41 busy needs 52 (51.25 rounded up).
        assert_eq!(
            SizeRecommendation::from_load(205.0, Duration::from_millis(200), 0.8).unwrap().max_size,
            52
        );
        assert_eq!(SizeRecommendation::from_load(0.0, Duration::ZERO, 0.8).unwrap().max_size, 1);
        assert!(SizeRecommendation::from_load(f64::NAN, Duration::ZERO, 0.8).is_none());
        assert!(SizeRecommendation::from_load(1.0, Duration::ZERO, 0.0).is_none());
    }
}
