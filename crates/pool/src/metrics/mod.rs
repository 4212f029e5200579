//! What the pool measures: [`Metrics`] snapshots and the recorder behind them.

mod histogram;
mod sizing;
mod utilization;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

pub use histogram::HistogramSnapshot;
pub use sizing::SizeRecommendation;

use histogram::Histogram;
use utilization::Integrator;

/// A point-in-time view of a pool: state, counters, utilization and latency.
///
/// Backend-agnostic plain data, so an exporter (Prometheus, logs) can read it without
/// knowing the connection type. Utilization, arrival rate and mean use time are over
/// the trailing [`window`](Self::window); counters and histograms since the pool started.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The pool's `max_size`.
    pub max_size: u32,
    /// Open connections, idle or checked out.
    pub connections: u32,
    /// Open connections waiting in the pool.
    pub idle: u32,
    /// Connections checked out now.
    pub in_use: u32,
    /// Most connections ever checked out at once.
    pub peak_in_use: u32,
    /// Checkouts waiting for a connection now.
    pub waiting: u32,
    /// Successful checkouts.
    pub checkouts: u64,
    /// Connections given back (dropped guards), broken ones included.
    pub returns: u64,
    /// Checkouts that gave up at their timeout.
    pub timeouts: u64,
    /// Checkouts refused with [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) before
    /// their timeout because the backend was down (only with
    /// [`PoolConfig::fail_fast`](crate::PoolConfig::fail_fast)); not in `timeouts`.
    pub unavailable: u64,
    /// Failed connection attempts and failed checkout validations.
    pub connect_errors: u64,
    /// Connections opened.
    pub opened: u64,
    /// Connections closed, by reason.
    pub closed: Closed,
    /// Mean busy connections / `max_size` over the trailing window, in [0, 1].
    pub utilization: f64,
    /// Mean busy connections / `max_size` since the pool started.
    pub lifetime_utilization: f64,
    /// The utilization the pool should stay under (from the config).
    pub target_utilization: f64,
    /// Checkouts per second over the trailing window.
    pub arrival_rate: f64,
    /// Mean time a connection was held, over the trailing window.
    pub mean_use: Option<Duration>,
    /// The trailing window's length.
    pub window: Duration,
    /// Time from asking for a connection to getting one (successful checkouts).
    pub wait: HistogramSnapshot,
    /// Time from checkout to return.
    pub use_time: HistogramSnapshot,
}

/// Connections closed by the pool, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Closed {
    /// The manager reported the connection broken when it was returned.
    pub broken: u64,
    /// The checkout validation (e.g. `PING`) failed.
    pub invalid: u64,
    /// Idle beyond `idle_timeout`.
    pub idle_timeout: u64,
    /// Older than `max_lifetime`.
    pub max_lifetime: u64,
}

impl Closed {
    /// All closed connections.
    pub fn total(&self) -> u64 {
        self.broken + self.invalid + self.idle_timeout + self.max_lifetime
    }
}

impl Metrics {
    /// Whether the trailing-window utilization is above the target.
    pub fn is_over_target(&self) -> bool {
        self.utilization > self.target_utilization
    }

    /// A `max_size` that keeps utilization under the target for the load measured
    /// over the trailing window (Little's law); `None` before any connection was
    /// returned. See [`SizeRecommendation`].
    pub fn recommendation(&self) -> Option<SizeRecommendation> {
        SizeRecommendation::from_load(self.arrival_rate, self.mean_use?, self.target_utilization)
    }
}

/// The live counters; shared by the pool, its guards and its error sink.
#[derive(Debug)]
pub(crate) struct Recorder {
    origin: Instant,
    integrator: Mutex<Integrator>,
    pub(crate) wait: Histogram,
    use_time: Histogram,
    timeouts: AtomicU64,
    unavailable: AtomicU64,
    waiting: AtomicU64,
    connect_errors: AtomicU64,
    last_error: Mutex<Option<(Instant, String)>>,
}

impl Recorder {
    pub(crate) fn new(max_size: u32, window: Duration) -> Self {
        Self {
            origin: Instant::now(),
            integrator: Mutex::new(Integrator::new(max_size, window)),
            wait: Histogram::new(),
            use_time: Histogram::new(),
            timeouts: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    fn since_origin(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    pub(crate) fn checked_out(&self, asked: Instant, now: Instant) {
        self.wait.record(now.saturating_duration_since(asked));
        let t = self.since_origin(now);
        self.integrator.lock().checkout(t);
    }

    pub(crate) fn checked_in(&self, out_at: Instant) {
        let now = Instant::now();
        let used = now.saturating_duration_since(out_at);
        self.use_time.record(used);
        let t = self.since_origin(now);
        self.integrator.lock().checkin(t, used);
    }

    pub(crate) fn timed_out(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }

    pub(crate) fn refused_unavailable(&self) {
        self.unavailable.fetch_add(1, Relaxed);
    }

    /// Failed connects and validations since the pool started.
    pub(crate) fn connect_errors(&self) -> u64 {
        self.connect_errors.load(Relaxed)
    }

    /// The last connect or validation error, whenever it was.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().as_ref().map(|(_, e)| e.clone())
    }

    pub(crate) fn start_waiting(&self) {
        self.waiting.fetch_add(1, Relaxed);
    }

    pub(crate) fn stop_waiting(&self) {
        self.waiting.fetch_sub(1, Relaxed);
    }

    pub(crate) fn connect_error(&self, error: String) {
        self.connect_errors.fetch_add(1, Relaxed);
        *self.last_error.lock() = Some((Instant::now(), error));
    }

    /// The last connect or validation error seen at or after `since`.
    pub(crate) fn last_error_since(&self, since: Instant) -> Option<String> {
        match &*self.last_error.lock() {
            Some((at, e)) if *at >= since => Some(e.clone()),
            _ => None,
        }
    }

    pub(crate) fn in_use(&self) -> u32 {
        self.integrator.lock().busy()
    }

    pub(crate) fn waiting(&self) -> u32 {
        u32::try_from(self.waiting.load(Relaxed)).unwrap_or(u32::MAX)
    }

    pub(crate) fn snapshot(
        &self,
        max_size: u32,
        target: f64,
        window: Duration,
        state: &bb8::State,
    ) -> Metrics {
        let now = self.since_origin(Instant::now());
        let (stats, in_use, peak, (checkouts, returns)) = {
            let mut i = self.integrator.lock();
            (i.stats(now), i.busy(), i.peak(), i.totals())
        };
        let s = &state.statistics;
        Metrics {
            max_size,
            connections: state.connections,
            idle: state.idle_connections,
            in_use,
            peak_in_use: peak,
            waiting: self.waiting(),
            checkouts,
            returns,
            timeouts: self.timeouts.load(Relaxed),
            unavailable: self.unavailable.load(Relaxed),
            connect_errors: self.connect_errors.load(Relaxed),
            opened: s.connections_created,
            closed: Closed {
                broken: s.connections_closed_broken,
                invalid: s.connections_closed_invalid,
                idle_timeout: s.connections_closed_idle_timeout,
                max_lifetime: s.connections_closed_max_lifetime,
            },
            utilization: stats.utilization,
            lifetime_utilization: stats.lifetime_utilization,
            target_utilization: target,
            arrival_rate: stats.arrival_rate,
            mean_use: stats.mean_use,
            window,
            wait: self.wait.snapshot(),
            use_time: self.use_time.snapshot(),
        }
    }
}
