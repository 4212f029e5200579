//! Time-weighted utilization: the number of busy connections integrated over time.
//!
//! Counts are kept per tumbling window; the trailing window is approximated from the
//! current partial window plus the previous full one weighted by the part of it still
//! inside the trailing window (as sliding-window rate limiters do).

use std::time::Duration;

/// Sums for one tumbling window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Window {
    /// Start, in nanoseconds since the integrator's origin.
    start: u64,
    /// Busy-connection-nanoseconds.
    busy_ns: u128,
    checkouts: u64,
    returns: u64,
    use_ns: u128,
}

/// Trailing-window figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WindowStats {
    /// Mean busy connections / max size over the trailing window, in [0, 1].
    pub(crate) utilization: f64,
    /// Mean busy connections / max size since the pool started.
    pub(crate) lifetime_utilization: f64,
    /// Checkouts per second over the trailing window.
    pub(crate) arrival_rate: f64,
    /// Mean time a connection was held, over returns in the trailing window.
    pub(crate) mean_use: Option<Duration>,
}

/// The integrator; callers hold it under a lock and pass the time in, so it is exact
/// and deterministic.
#[derive(Debug)]
pub(crate) struct Integrator {
    max_size: u32,
    window: u64,
    last: u64,
    busy: u32,
    peak: u32,
    lifetime_busy_ns: u128,
    checkouts: u64,
    returns: u64,
    cur: Window,
    prev: Option<Window>,
}

impl Integrator {
    pub(crate) fn new(max_size: u32, window: Duration) -> Self {
        Self {
            max_size: max_size.max(1),
            window: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX).max(1),
            last: 0,
            busy: 0,
            peak: 0,
            lifetime_busy_ns: 0,
            checkouts: 0,
            returns: 0,
            cur: Window::default(),
            prev: None,
        }
    }

    /// Brings the sums up to `now` (nanoseconds since the origin; never goes back).
    fn advance(&mut self, now: u64) {
        let now = now.max(self.last);
        let busy = u128::from(self.busy);
        self.lifetime_busy_ns += busy * u128::from(now - self.last);
        let elapsed_windows = (now - self.cur.start) / self.window;
        if elapsed_windows >= 1 {
            let end = self.cur.start + self.window;
            if elapsed_windows == 1 {
                self.cur.busy_ns += busy * u128::from(end - self.last);
                self.prev = Some(self.cur);
            } else {
                // Whole windows passed with no event: busy was constant through them.
                let prev_start = self.cur.start + (elapsed_windows - 1) * self.window;
                self.prev = Some(Window {
                    start: prev_start,
                    busy_ns: busy * u128::from(self.window),
                    ..Window::default()
                });
            }
            self.cur = Window { start: self.cur.start + elapsed_windows * self.window, ..Window::default() };
            self.last = self.cur.start;
        }
        self.cur.busy_ns += busy * u128::from(now - self.last);
        self.last = now;
    }

    pub(crate) fn checkout(&mut self, now: u64) {
        self.advance(now);
        self.busy += 1;
        self.peak = self.peak.max(self.busy);
        self.checkouts += 1;
        self.cur.checkouts += 1;
    }

    pub(crate) fn checkin(&mut self, now: u64, used: Duration) {
        self.advance(now);
        self.busy = self.busy.saturating_sub(1);
        self.returns += 1;
        self.cur.returns += 1;
        self.cur.use_ns += used.as_nanos();
    }

    pub(crate) fn busy(&self) -> u32 {
        self.busy
    }

    pub(crate) fn peak(&self) -> u32 {
        self.peak
    }

    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.checkouts, self.returns)
    }

    pub(crate) fn stats(&mut self, now: u64) -> WindowStats {
        self.advance(now);
        let max = self.max_size as f64;
        let in_cur = (now.max(self.last) - self.cur.start) as f64;
        let w = match self.prev {
            Some(_) => 1.0 - in_cur / self.window as f64,
            None => 0.0,
        };
        let prev = self.prev.unwrap_or_default();
        let span = in_cur + w * self.window as f64;
        let busy_ns = self.cur.busy_ns as f64 + w * prev.busy_ns as f64;
        let utilization = if span > 0.0 { busy_ns / (span * max) } else { f64::from(self.busy) / max };
        let arrivals = self.cur.checkouts as f64 + w * prev.checkouts as f64;
        let arrival_rate = if span > 0.0 { arrivals / (span / 1e9) } else { 0.0 };
        let returns = self.cur.returns as f64 + w * prev.returns as f64;
        let use_ns = self.cur.use_ns as f64 + w * prev.use_ns as f64;
        let mean_use = (returns > 0.0).then(|| Duration::from_nanos((use_ns / returns) as u64));
        let lifetime_utilization =
            if now > 0 { self.lifetime_busy_ns as f64 / (now as f64 * max) } else { 0.0 };
        WindowStats {
            utilization: utilization.clamp(0.0, 1.0),
            lifetime_utilization: lifetime_utilization.clamp(0.0, 1.0),
            arrival_rate,
            mean_use,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn half_the_pool_busy_for_the_whole_window_is_half_utilized() {
        let mut i = Integrator::new(4, Duration::from_secs(10));
        i.checkout(0);
        i.checkout(0);
        let s = i.stats(5 * S);
        assert!((s.utilization - 0.5).abs() < 1e-9, "{s:?}");
        assert!((s.arrival_rate - 2.0 / 5.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.mean_use, None);
        // Window rolls over; still constant.
        let s = i.stats(25 * S);
        assert!((s.utilization - 0.5).abs() < 1e-9, "{s:?}");
        assert!((s.lifetime_utilization - 0.5).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn trailing_window_forgets_old_load() {
        let mut i = Integrator::new(1, Duration::from_secs(10));
        i.checkout(0);
        i.checkin(10 * S, Duration::from_secs(10)); // busy through window [0, 10)
        let s = i.stats(15 * S); // half of the previous window still counts
        assert!((s.utilization - 0.5).abs() < 1e-9, "{s:?}");
        assert_eq!(s.mean_use, Some(Duration::from_secs(10)));
        let s = i.stats(40 * S); // idle for more than a whole window
        assert_eq!(s.utilization, 0.0, "{s:?}");
        assert!((s.lifetime_utilization - 0.25).abs() < 1e-9, "{s:?}");
        assert_eq!(i.peak(), 1);
        assert_eq!(i.totals(), (1, 1));
    }

    proptest! {
        #[test]
        fn utilization_stays_in_range_and_counts_balance(
            steps in proptest::collection::vec((0u64..3 * S, any::<bool>()), 1..200)
        ) {
            let mut i = Integrator::new(3, Duration::from_secs(2));
            let mut now = 0;
            let mut held: Vec<u64> = Vec::new();
            for (dt, take) in steps {
                now += dt;
                if take && held.len() < 3 {
                    i.checkout(now);
                    held.push(now);
                } else if let Some(t) = held.pop() {
                    i.checkin(now, Duration::from_nanos(now - t));
                }
                let s = i.stats(now);
                prop_assert!((0.0..=1.0).contains(&s.utilization));
                prop_assert!((0.0..=1.0).contains(&s.lifetime_utilization));
                prop_assert_eq!(i.busy() as usize, held.len());
            }
            let (c, r) = i.totals();
            prop_assert_eq!(c - r, held.len() as u64);
        }
    }
}
