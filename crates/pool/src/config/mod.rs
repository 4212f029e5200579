//! [`PoolConfig`]: sizes, timeouts and the utilization target, validated.

use std::time::Duration;

use crate::{Error, Result};

/// How a [`Pool`](crate::Pool) is sized and timed.
///
/// The defaults follow the project's seed ("50–100 connections, 5 min timeout, <80%
/// utilization"); everything else is bb8's default. Settings are checked by
/// [`validate`](Self::validate), which every pool constructor calls.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `max_size` | 100 | most connections, checked out or idle |
/// | `min_idle` | 50 | idle connections kept open (`None`: none) |
/// | `idle_timeout` | 5 min | idle connections beyond `min_idle` are closed after this |
/// | `max_lifetime` | 30 min | connections are closed at this age |
/// | `connection_timeout` | 30 s | longest [`Pool::get`](crate::Pool::get) waits, connecting included |
/// | `test_on_checkout` | true | validate a connection (e.g. `PING`) before handing it out |
/// | `reaper_rate` | 30 s | how often idle and old connections are looked for |
/// | `target_utilization` | 0.8 | utilization the size recommendation aims under |
/// | `metrics_window` | 60 s | window for utilization, arrival rate and mean use time |
/// | `fail_fast` | false | refuse checkouts at once while the backend is known to be down |
/// | `probe_interval` | 0 | with `fail_fast`, least time between two connect probes |
///
/// Every duration is at most [`MAX_DURATION`](Self::MAX_DURATION) (30 years): a longer
/// one cannot be added to a clock reading, so `validate` refuses it. For "never", give
/// `idle_timeout` and `max_lifetime` `None`; any other setting at 30 years is never in
/// practice.
///
/// SQLite allows one writer at a time, so a large pool only adds lock waits: use
/// [`PoolConfig::sqlite`] (at most 8, 1 idle, no checkout test) for it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub(crate) max_size: u32,
    pub(crate) min_idle: Option<u32>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) connection_timeout: Duration,
    pub(crate) test_on_checkout: bool,
    pub(crate) reaper_rate: Duration,
    pub(crate) target_utilization: f64,
    pub(crate) metrics_window: Duration,
    pub(crate) fail_fast: bool,
    pub(crate) probe_interval: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_size: 100,
            min_idle: Some(50),
            idle_timeout: Some(Duration::from_secs(5 * 60)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            connection_timeout: Duration::from_secs(30),
            test_on_checkout: true,
            reaper_rate: Duration::from_secs(30),
            target_utilization: 0.8,
            metrics_window: Duration::from_secs(60),
            fail_fast: false,
            probe_interval: Duration::ZERO,
        }
    }
}

impl PoolConfig {
    /// The longest duration any setting may have: 30 years (of 365 days), tokio's own
    /// "far future". The pool and bb8 add these durations to clock readings, which
    /// overflow past the clock's end (`Duration::MAX` at once; about 584 years of uptime
    /// where the clock counts nanoseconds in 64 bits), so [`validate`](Self::validate)
    /// refuses longer settings by name.
    pub const MAX_DURATION: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

    /// The defaults in the table above.
    pub fn new() -> Self {
        Self::default()
    }

    /// A small pool for SQLite: at most 8 connections, 1 kept idle, no checkout test
    /// (each test would cost a trip to the blocking pool).
    pub fn sqlite() -> Self {
        Self { max_size: 8, min_idle: Some(1), test_on_checkout: false, ..Self::default() }
    }

    /// A small pool for a client that has a local fallback (a cache whose failed read
    /// becomes a miss, a rate limiter that answers locally): at most `max_size`
    /// connections, one kept open, a checkout timeout equal to the caller's per-call
    /// `timeout`, no validation before each use (a connection that broke shows up as a
    /// failed call, and the pool then closes it), and [`fail_fast`](Self::fail_fast), so
    /// that while the backend is down a call is answered by the fallback at once instead
    /// of after the timeout.
    ///
    /// `mltb-cache`'s Redis tier and `mltb-ratelimit`'s Redis limiter build their pools
    /// with it. Every setting can still be changed afterwards.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mltb_pool::PoolConfig;
    ///
    /// let config = PoolConfig::with_fallback(4, Duration::from_millis(100));
    /// assert_eq!(config, PoolConfig::new()
    ///     .max_size(4)
    ///     .min_idle(1)
    ///     .connection_timeout(Duration::from_millis(100))
    ///     .test_on_checkout(false)
    ///     .fail_fast(true));
    /// ```
    pub fn with_fallback(max_size: u32, timeout: Duration) -> Self {
        Self::new()
            .max_size(max_size)
            .min_idle(1)
            .connection_timeout(timeout)
            .test_on_checkout(false)
            .fail_fast(true)
    }

    /// Most connections, checked out or idle (default 100).
    pub fn max_size(mut self, max_size: u32) -> Self {
        self.max_size = max_size;
        self
    }

    /// Idle connections to keep open (default 50; `None` for none).
    pub fn min_idle(mut self, min_idle: impl Into<Option<u32>>) -> Self {
        self.min_idle = min_idle.into();
        self
    }

    /// Close idle connections beyond `min_idle` after this long (default 5 min; `None`:
    /// never; at most [`MAX_DURATION`](Self::MAX_DURATION)).
    pub fn idle_timeout(mut self, idle_timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = idle_timeout.into();
        self
    }

    /// Close connections at this age (default 30 min; `None`: never; at most
    /// [`MAX_DURATION`](Self::MAX_DURATION)).
    pub fn max_lifetime(mut self, max_lifetime: impl Into<Option<Duration>>) -> Self {
        self.max_lifetime = max_lifetime.into();
        self
    }

    /// Longest a checkout waits, connecting and validating included (default 30 s; at
    /// most [`MAX_DURATION`](Self::MAX_DURATION)).
    pub fn connection_timeout(mut self, connection_timeout: Duration) -> Self {
        self.connection_timeout = connection_timeout;
        self
    }

    /// Validate each connection before handing it out (default true).
    pub fn test_on_checkout(mut self, test_on_checkout: bool) -> Self {
        self.test_on_checkout = test_on_checkout;
        self
    }

    /// How often idle and expired connections are looked for (default 30 s; at most
    /// [`MAX_DURATION`](Self::MAX_DURATION)).
    pub fn reaper_rate(mut self, reaper_rate: Duration) -> Self {
        self.reaper_rate = reaper_rate;
        self
    }

    /// Utilization the size recommendation keeps the pool under, in (0, 1] (default 0.8).
    pub fn target_utilization(mut self, target: f64) -> Self {
        self.target_utilization = target;
        self
    }

    /// The window utilization, arrival rate and mean use time are measured over
    /// (default 60 s; at most [`MAX_DURATION`](Self::MAX_DURATION); a sliding window
    /// approximated from two tumbling ones).
    pub fn metrics_window(mut self, window: Duration) -> Self {
        self.metrics_window = window;
        self
    }

    /// Refuse a checkout at once with [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) while the backend is
    /// known to be down, instead of waiting up to `connection_timeout` (default false).
    ///
    /// "Known to be down" means: the pool has no idle connection, a connect attempt
    /// failed (reported through bb8's error sink), and no connection was opened since.
    /// While that holds, one checkout at a time (and at most one per
    /// [`probe_interval`](Self::probe_interval)) is let through as a *probe*: it asks
    /// bb8, which tries one connect; every other checkout fails at once and counts in
    /// [`Metrics::unavailable`](crate::Metrics::unavailable), not in `timeouts`. A probe,
    /// and any checkout already waiting, also returns `Unavailable` as soon as a connect
    /// attempt fails rather than at its timeout (bb8 does not wake its waiters when a
    /// connect fails). Once a connect succeeds the pool behaves as usual.
    ///
    /// It also turns off bb8's retrying of failed connects in the background
    /// (`retry_connection(false)`): each attempt is one probe, and
    /// [`Pool::connect`](crate::Pool::connect) fails at once if the backend is down.
    ///
    /// Meant for callers with a local fallback (a cache read that becomes a miss, a rate
    /// limit answered locally), for whom waiting out an outage costs more than failing.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// With [`fail_fast`](Self::fail_fast), the least time between the starts of two
    /// probes while the backend is down (default 0: one probe at a time, the next as
    /// soon as the last one ended). Raise it to bound connect attempts against a down
    /// backend; recovery is then noticed up to this much later. At most
    /// [`MAX_DURATION`](Self::MAX_DURATION).
    pub fn probe_interval(mut self, probe_interval: Duration) -> Self {
        self.probe_interval = probe_interval;
        self
    }

    /// Whether [`fail_fast`](Self::fail_fast) is on.
    pub fn get_fail_fast(&self) -> bool {
        self.fail_fast
    }

    /// The configured `max_size`.
    pub fn get_max_size(&self) -> u32 {
        self.max_size
    }

    /// The configured `min_idle`.
    pub fn get_min_idle(&self) -> Option<u32> {
        self.min_idle
    }

    /// The configured `connection_timeout`.
    pub fn get_connection_timeout(&self) -> Duration {
        self.connection_timeout
    }

    /// The configured `target_utilization`.
    pub fn get_target_utilization(&self) -> f64 {
        self.target_utilization
    }

    /// Checks every setting; the error names the setting and what was expected.
    pub fn validate(&self) -> Result<()> {
        if self.max_size == 0 {
            return Err(Error::invalid("max_size", "is 0; expected at least 1"));
        }
        if let Some(min_idle) = self.min_idle
            && min_idle > self.max_size
        {
            return Err(Error::invalid(
                "min_idle",
                format!("is {min_idle}, above max_size {}; expected at most max_size", self.max_size),
            ));
        }
        positive("connection_timeout", self.connection_timeout)?;
        if let Some(idle_timeout) = self.idle_timeout {
            positive_or_none("idle_timeout", idle_timeout)?;
        }
        if let Some(max_lifetime) = self.max_lifetime {
            positive_or_none("max_lifetime", max_lifetime)?;
        }
        positive("reaper_rate", self.reaper_rate)?;
        let t = self.target_utilization;
        if !(t > 0.0 && t <= 1.0) {
            return Err(Error::invalid("target_utilization", format!("is {t}; expected a number in (0, 1]")));
        }
        positive("metrics_window", self.metrics_window)?;
        at_most_max("probe_interval", self.probe_interval, "")?;
        Ok(())
    }

    pub(crate) fn to_bb8<M: bb8::ManageConnection>(&self) -> bb8::Builder<M> {
        bb8::Pool::builder()
            .max_size(self.max_size)
            .min_idle(self.min_idle)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime)
            .connection_timeout(self.connection_timeout)
            .test_on_check_out(self.test_on_checkout)
            .reaper_rate(self.reaper_rate)
            // Under fail_fast every connect attempt is a probe the pool lets through on
            // purpose; bb8's background retries would hide failures from it.
            .retry_connection(!self.fail_fast)
    }
}

/// A setting that must be a positive duration, at most [`PoolConfig::MAX_DURATION`].
fn positive(what: &'static str, d: Duration) -> Result<()> {
    if d.is_zero() {
        return Err(Error::invalid(what, "is 0; expected a positive duration"));
    }
    at_most_max(what, d, "")
}

/// A duration setting that may also be `None`: positive, at most [`PoolConfig::MAX_DURATION`].
fn positive_or_none(what: &'static str, d: Duration) -> Result<()> {
    if d.is_zero() {
        return Err(Error::invalid(what, "is 0; expected a positive duration or None"));
    }
    at_most_max(what, d, " (None: never)")
}

fn at_most_max(what: &'static str, d: Duration, or: &str) -> Result<()> {
    if d > PoolConfig::MAX_DURATION {
        return Err(Error::invalid(
            what,
            format!("is {d:?}; expected at most 30 years (PoolConfig::MAX_DURATION){or}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_seed() {
        let c = PoolConfig::default();
        assert_eq!((c.max_size, c.min_idle), (100, Some(50)));
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(300)));
        assert!(c.validate().is_ok());
        assert!(PoolConfig::sqlite().validate().is_ok());
        assert!(PoolConfig::sqlite().max_size < c.max_size);
        assert!(!c.get_fail_fast() && c.probe_interval.is_zero());
        assert!(PoolConfig::new().fail_fast(true).probe_interval(Duration::from_secs(1)).validate().is_ok());
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let cases = [
            (PoolConfig::new().max_size(0), "max_size"),
            (PoolConfig::new().max_size(10).min_idle(11), "min_idle"),
            (PoolConfig::new().connection_timeout(Duration::ZERO), "connection_timeout"),
            (PoolConfig::new().idle_timeout(Duration::ZERO), "idle_timeout"),
            (PoolConfig::new().max_lifetime(Duration::ZERO), "max_lifetime"),
            (PoolConfig::new().reaper_rate(Duration::ZERO), "reaper_rate"),
            (PoolConfig::new().target_utilization(0.0), "target_utilization"),
            (PoolConfig::new().target_utilization(f64::NAN), "target_utilization"),
            (PoolConfig::new().target_utilization(1.5), "target_utilization"),
            (PoolConfig::new().metrics_window(Duration::ZERO), "metrics_window"),
        ];
        check_named(cases);
        assert!(PoolConfig::new().max_size(1).min_idle(None).idle_timeout(None).validate().is_ok());
    }

    /// Durations past the cap would overflow a clock reading (in bb8's reaper, in a
    /// checkout's deadline, in the next probe's time): refused by name.
    #[test]
    fn durations_above_the_cap_name_the_setting() {
        let too_long = PoolConfig::MAX_DURATION + Duration::from_nanos(1);
        for d in [too_long, Duration::MAX] {
            check_named([
                (PoolConfig::new().connection_timeout(d), "connection_timeout"),
                (PoolConfig::new().idle_timeout(d), "idle_timeout"),
                (PoolConfig::new().max_lifetime(d), "max_lifetime"),
                (PoolConfig::new().reaper_rate(d), "reaper_rate"),
                (PoolConfig::new().metrics_window(d), "metrics_window"),
                (PoolConfig::new().fail_fast(true).probe_interval(d), "probe_interval"),
            ]);
        }
        let err = PoolConfig::new().reaper_rate(Duration::MAX).validate().unwrap_err();
        assert!(err.to_string().contains("at most 30 years"), "{err}");
        let max = PoolConfig::MAX_DURATION;
        let at_the_cap = PoolConfig::new()
            .connection_timeout(max)
            .idle_timeout(max)
            .max_lifetime(max)
            .reaper_rate(max)
            .metrics_window(max)
            .probe_interval(max);
        assert!(at_the_cap.validate().is_ok());
    }

    fn check_named<const N: usize>(cases: [(PoolConfig, &str); N]) {
        for (config, name) in cases {
            match config.validate() {
                Err(e) => assert!(
                    matches!(e.kind(), crate::ErrorKind::InvalidConfig { what, .. } if *what == name),
                    "{e}"
                ),
                other => panic!("{name}: expected InvalidConfig, got {other:?}"),
            }
        }
    }
}
