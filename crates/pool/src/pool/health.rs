//! Fail-fast checkouts: knowing when the backend is down, and letting one probe through.
//! See [`PoolConfig::fail_fast`](crate::PoolConfig::fail_fast).

use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What the pool knows of its backend's health, for `fail_fast` pools.
#[derive(Debug, Default)]
pub(super) struct Health {
    state: Mutex<HealthState>,
    /// Woken (every waiter) by each error the error sink sees, so that checkouts waiting
    /// inside bb8 (which does not wake them when a connect fails) can give up at once.
    pub(super) failed: Notify,
}

#[derive(Debug, Default)]
struct HealthState {
    /// bb8's count of opened connections when last looked at; a rise means a connect
    /// succeeded.
    created_seen: u64,
    /// Connect failures counted when a connect was last seen to succeed.
    failures_at_success: u64,
    /// Whether a probe checkout is under way.
    probing: bool,
    /// When the last probe started; the next starts `probe_interval` after it at the
    /// earliest (kept as a start, not an end: start + interval may pass the clock's end).
    last_probe: Option<Instant>,
}

/// Counters read from bb8 and the recorder at one moment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading {
    /// Idle connections in bb8.
    pub(super) idle: u32,
    /// Connections bb8 opened since the pool started.
    pub(super) created: u64,
    /// Failed connects since the pool started (the error sink's count minus failed
    /// checkout validations, which say nothing about connecting).
    pub(super) failures: u64,
}

impl Reading {
    /// Whether, since `base`, a connect failed, none succeeded and nothing is idle:
    /// a checkout waiting since `base` will not be served soon.
    pub(super) fn failed_since(&self, base: &Reading) -> bool {
        self.idle == 0 && self.failures > base.failures && self.created == base.created
    }
}

/// Whether a checkout may go ahead.
#[derive(Debug)]
pub(super) enum Verdict<'a> {
    /// The backend is not known to be down.
    Go,
    /// The backend is known to be down, and this checkout is the probe; the guard ends
    /// the probe when dropped.
    Probe(ProbeGuard<'a>),
    /// The backend is known to be down and another probe is under way or too recent.
    Refuse,
}

impl Health {
    /// Decides for a checkout starting `now`, given a fresh `reading`.
    pub(super) fn admit(&self, reading: Reading, now: Instant, probe_interval: Duration) -> Verdict<'_> {
        let mut s = self.state.lock();
        if reading.created != s.created_seen {
            // A connect succeeded since the last look. If failures came too, their order
            // is unknown: assume the success was last, so at worst one checkout waits
            // (and gives up at the next failed connect).
            s.created_seen = reading.created;
            s.failures_at_success = reading.failures;
        }
        if reading.idle > 0 || reading.failures <= s.failures_at_success {
            return Verdict::Go;
        }
        if s.probing || s.last_probe.is_some_and(|t| now.saturating_duration_since(t) < probe_interval) {
            return Verdict::Refuse;
        }
        s.probing = true;
        s.last_probe = Some(now);
        Verdict::Probe(ProbeGuard(self))
    }
}

/// Ends a probe when dropped, whatever its outcome.
#[derive(Debug)]
pub(super) struct ProbeGuard<'a>(&'a Health);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.0.state.lock().probing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(idle: u32, created: u64, failures: u64) -> Reading {
        Reading { idle, created, failures }
    }

    #[test]
    fn one_probe_at_a_time_then_one_per_interval() {
        let health = Health::default();
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        assert!(matches!(health.admit(reading(0, 0, 0), t0, second), Verdict::Go), "no failure yet");
        let probe = health.admit(reading(0, 0, 1), t0, second);
        assert!(matches!(probe, Verdict::Probe(_)));
        assert!(matches!(health.admit(reading(0, 0, 1), t0, second), Verdict::Refuse), "one at a time");
        assert!(matches!(health.admit(reading(2, 0, 1), t0, second), Verdict::Go), "idle connections");
        drop(probe);
        assert!(matches!(health.admit(reading(0, 0, 2), t0, second), Verdict::Refuse), "within interval");
        assert!(matches!(health.admit(reading(0, 0, 2), t0 + second, second), Verdict::Probe(_)));
        // A connection was opened: the backend is back.
        assert!(matches!(health.admit(reading(0, 1, 2), t0 + second, second), Verdict::Go));
        assert!(matches!(health.admit(reading(0, 1, 3), t0 + second, second), Verdict::Refuse));
    }

    /// An interval too long to add to the clock: one probe, then none (it used to
    /// compute `now + probe_interval` and panic on overflow).
    #[test]
    fn an_endless_interval_allows_one_probe() {
        let health = Health::default();
        let t0 = Instant::now();
        let probe = health.admit(reading(0, 0, 1), t0, Duration::MAX);
        assert!(matches!(probe, Verdict::Probe(_)));
        drop(probe);
        let later = t0 + Duration::from_secs(365 * 24 * 3600);
        assert!(matches!(health.admit(reading(0, 0, 2), later, Duration::MAX), Verdict::Refuse));
        assert!(matches!(health.admit(reading(0, 1, 2), later, Duration::MAX), Verdict::Go), "back");
    }

    #[test]
    fn failed_since_needs_a_new_failure_and_no_new_connection() {
        let base = reading(0, 3, 5);
        assert!(!reading(0, 3, 5).failed_since(&base));
        assert!(reading(0, 3, 6).failed_since(&base));
        assert!(!reading(0, 4, 6).failed_since(&base), "a connect succeeded meanwhile");
        assert!(!reading(1, 3, 6).failed_since(&base), "a connection is idle");
    }
}
