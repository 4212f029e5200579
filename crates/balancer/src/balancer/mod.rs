//! [`Balancer`]: membership, the published snapshot of available endpoints, picks and
//! ejections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::backend::{Backend, Endpoint, validate_weight};
use crate::clock::{Clock, MonotonicClock, nanos_u64};
use crate::error::{Error, ErrorKind, Result};
use crate::hash::key_hash;
use crate::load::Slab;
use crate::outlier::OutlierDetection;
use crate::strategy::{Request, Strategy};

mod pick;

pub use pick::{Outcome, Pick};

/// The latency assumed for an endpoint before its first report.
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);
/// The time constant of the peak-EWMA latency estimate.
pub const DEFAULT_DECAY: Duration = Duration::from_secs(10);

/// What picks read: the available endpoints and the strategy's state for them.
#[derive(Debug)]
pub(crate) struct Snapshot<St> {
    available: Vec<Arc<Endpoint>>,
    state: St,
    total: usize,
    unhealthy: usize,
    ejected: usize,
    /// The earliest clock reading at which an ejected endpoint returns; `u64::MAX` if none.
    next_return: u64,
    /// The same among ejected endpoints that are healthy, which will be available then.
    next_available: u64,
    /// Counts the snapshots a balancer has published.
    generation: u64,
}

/// Counts of members by state, as of the latest snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Members.
    pub total: usize,
    /// Members a pick can return: healthy and not ejected.
    pub available: usize,
    /// Members failing active health checks.
    pub unhealthy: usize,
    /// Members ejected by outlier detection.
    pub ejected: usize,
}

/// Picks an endpoint for each request with a [`Strategy`], among members that pass their
/// health checks and are not ejected as outliers.
///
/// Picks read an immutable snapshot through an [`ArcSwap`] and take no lock; membership,
/// weight, health and ejection changes build a new snapshot under a mutex that only
/// writers take.
#[derive(Debug)]
pub struct Balancer<S: Strategy> {
    strategy: S,
    snapshot: ArcSwap<Snapshot<S::State>>,
    /// The generation of the latest snapshot, so that a pick can tell cheaply whether
    /// the snapshot it holds is still the latest.
    generation: AtomicU64,
    /// Whether picks count requests in flight.
    track: bool,
    members: Mutex<Vec<Arc<Endpoint>>>,
    slab: Slab,
    outlier: Option<OutlierDetection>,
    clock: Arc<dyn Clock>,
    default_rtt: Duration,
    decay: Duration,
}

/// Builds a [`Balancer`].
#[derive(Debug)]
pub struct BalancerBuilder<S> {
    strategy: S,
    backends: Vec<Backend>,
    outlier: Option<OutlierDetection>,
    clock: Option<Arc<dyn Clock>>,
    default_rtt: Duration,
    decay: Duration,
    track: bool,
}

impl<S: Strategy> BalancerBuilder<S> {
    /// Adds a backend.
    #[must_use]
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backends.push(backend);
        self
    }

    /// Adds backends.
    #[must_use]
    pub fn backends(mut self, backends: impl IntoIterator<Item = Backend>) -> Self {
        self.backends.extend(backends);
        self
    }

    /// Enables passive outlier detection (off by default), e.g. with
    /// [`OutlierDetection::envoy`].
    #[must_use]
    pub fn outlier_detection(mut self, detection: OutlierDetection) -> Self {
        self.outlier = Some(detection);
        self
    }

    /// Sets the clock for latency decay and ejection times (default [`MonotonicClock`]).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Sets the latency assumed for an endpoint before its first report (default 30 ms).
    #[must_use]
    pub fn default_rtt(mut self, rtt: Duration) -> Self {
        self.default_rtt = rtt;
        self
    }

    /// Sets the time constant of the peak-EWMA latency (default 10 s).
    #[must_use]
    pub fn ewma_decay(mut self, decay: Duration) -> Self {
        self.decay = decay;
        self
    }

    /// Counts requests in flight ([`Endpoint::in_flight`]) even when the strategy does
    /// not read them ([`Strategy::reads_in_flight`]), e.g. to export them as metrics.
    /// Costs every pick two writes to a counter shared with other threads' picks.
    #[must_use]
    pub fn track_in_flight(mut self) -> Self {
        self.track = true;
        self
    }

    /// Builds the balancer; fails on a duplicate id or a zero weight.
    pub fn build(self) -> Result<Balancer<S>> {
        let clock = self.clock.unwrap_or_else(|| Arc::new(MonotonicClock::new()));
        let now = clock.now_nanos();
        let slab = Slab::new();
        let mut members: Vec<Arc<Endpoint>> = Vec::with_capacity(self.backends.len());
        for b in self.backends {
            validate_weight(b.id(), b.weight())?;
            if members.iter().any(|m| m.id() == b.id()) {
                return Err(Error::new(ErrorKind::DuplicateBackend { id: b.id().to_owned() }));
            }
            members.push(Arc::new(Endpoint::new(b, self.default_rtt, self.decay, now, slab.alloc())));
        }
        let snapshot = build_snapshot(&self.strategy, &members, now, 0);
        Ok(Balancer {
            generation: AtomicU64::new(0),
            track: self.track || self.strategy.reads_in_flight(),
            strategy: self.strategy,
            snapshot: ArcSwap::from_pointee(snapshot),
            members: Mutex::new(members),
            slab,
            outlier: self.outlier,
            clock,
            default_rtt: self.default_rtt,
            decay: self.decay,
        })
    }
}

/// Returns ejected endpoints whose time is up to service, then builds a snapshot.
fn build_snapshot<S: Strategy>(
    strategy: &S,
    members: &[Arc<Endpoint>],
    now: u64,
    generation: u64,
) -> Snapshot<S::State> {
    let mut available = Vec::with_capacity(members.len());
    let (mut unhealthy, mut ejected, mut next_return, mut next_available) = (0, 0, u64::MAX, u64::MAX);
    for e in members {
        let until = e.ejected_until.load(Ordering::Acquire);
        let is_ejected = until != 0 && until > now;
        if until != 0 && !is_ejected {
            e.ejected_until.store(0, Ordering::Release);
            e.last_unejected_at.store(now, Ordering::Relaxed);
            e.consecutive_failures.store(0, Ordering::Relaxed);
            tracing::debug!(endpoint = e.id(), "ejection over; endpoint back in service");
        }
        let healthy = e.is_healthy();
        if !healthy {
            unhealthy += 1;
        }
        if is_ejected {
            ejected += 1;
            next_return = next_return.min(until);
            if healthy {
                next_available = next_available.min(until);
            }
        }
        if healthy && !is_ejected {
            available.push(Arc::clone(e));
        }
    }
    let state = strategy.build(&available);
    Snapshot {
        available,
        state,
        total: members.len(),
        unhealthy,
        ejected,
        next_return,
        next_available,
        generation,
    }
}

impl<S: Strategy> Balancer<S> {
    /// A balancer over `backends` with default settings (no outlier detection).
    pub fn new(strategy: S, backends: impl IntoIterator<Item = Backend>) -> Result<Self> {
        Self::builder(strategy).backends(backends).build()
    }

    /// A builder for a balancer with `strategy`.
    pub fn builder(strategy: S) -> BalancerBuilder<S> {
        BalancerBuilder {
            strategy,
            backends: Vec::new(),
            outlier: None,
            clock: None,
            default_rtt: DEFAULT_RTT,
            decay: DEFAULT_DECAY,
            track: false,
        }
    }

    /// Picks an endpoint for a request without a key.
    ///
    /// Hashing strategies ([`Ketama`](crate::Ketama), [`Maglev`](crate::Maglev)) use a
    /// random key.
    #[inline]
    pub fn pick(&self) -> Result<Pick<'_, S>> {
        self.pick_inner(None)
    }

    /// Picks an endpoint for a request with `key`; hashing strategies send the same key to
    /// the same endpoint while membership and health are unchanged. Other strategies
    /// ignore the key.
    #[inline]
    pub fn pick_key(&self, key: impl AsRef<[u8]>) -> Result<Pick<'_, S>> {
        self.pick_inner(Some(key_hash(key.as_ref())))
    }

    /// Like [`pick_key`](Self::pick_key), with a key already hashed by the caller.
    #[inline]
    pub fn pick_hash(&self, hash: u64) -> Result<Pick<'_, S>> {
        self.pick_inner(Some(hash))
    }

    fn pick_inner(&self, key_hash: Option<u64>) -> Result<Pick<'_, S>> {
        let mut snap = self.snapshot.load();
        if snap.next_return != u64::MAX && self.clock.now_nanos() >= snap.next_return {
            drop(snap);
            self.refresh_if_due();
            snap = self.snapshot.load();
        }
        if snap.available.is_empty() {
            return Err(self.none_available(&snap));
        }
        let request = Request::new(key_hash, &*self.clock);
        let i = self.strategy.pick(&snap.state, &snap.available, &request);
        let index = if i < snap.available.len() { i } else { 0 };
        // The guard keeps the snapshot (and so the endpoint) alive: no reference count of
        // a shared `Arc` is touched.
        Ok(Pick::new(self, snap, index, self.track))
    }

    #[cold]
    fn none_available(&self, snap: &Snapshot<S::State>) -> Error {
        let next_return = (snap.next_available != u64::MAX)
            .then(|| Duration::from_nanos(snap.next_available.saturating_sub(self.clock.now_nanos())));
        Error::new(ErrorKind::NoHealthyBackend {
            total: snap.total,
            unhealthy: snap.unhealthy,
            ejected: snap.ejected,
            next_return,
        })
    }

    /// Adds a backend; fails if its id is taken or its weight is 0.
    pub fn add(&self, backend: Backend) -> Result<()> {
        validate_weight(backend.id(), backend.weight())?;
        let mut members = self.members.lock();
        if members.iter().any(|m| m.id() == backend.id()) {
            return Err(Error::new(ErrorKind::DuplicateBackend { id: backend.id().to_owned() }));
        }
        let now = self.now_nanos();
        members.push(Arc::new(Endpoint::new(backend, self.default_rtt, self.decay, now, self.slab.alloc())));
        self.publish(&members, now);
        Ok(())
    }

    /// Removes a backend and returns it (with its current weight). Picks already handed out
    /// for it stay valid.
    pub fn remove(&self, id: &str) -> Result<Backend> {
        let mut members = self.members.lock();
        let Some(i) = members.iter().position(|m| m.id() == id) else {
            return Err(Error::new(ErrorKind::UnknownBackend { id: id.to_owned() }));
        };
        let removed = members.remove(i);
        self.publish(&members, self.now_nanos());
        Ok(removed.to_backend())
    }

    /// Changes a backend's weight (at least 1).
    pub fn set_weight(&self, id: &str, weight: u32) -> Result<()> {
        validate_weight(id, weight)?;
        self.with_member(id, |e| e.set_weight(weight))
    }

    /// Marks a backend healthy or unhealthy by hand, as an active health check would.
    pub fn set_healthy(&self, id: &str, healthy: bool) -> Result<()> {
        self.with_member(id, |e| e.healthy.store(healthy, Ordering::Release))
    }

    fn with_member(&self, id: &str, f: impl FnOnce(&Endpoint)) -> Result<()> {
        let members = self.members.lock();
        let Some(e) = members.iter().find(|m| m.id() == id) else {
            return Err(Error::new(ErrorKind::UnknownBackend { id: id.to_owned() }));
        };
        f(e);
        self.publish(&members, self.now_nanos());
        Ok(())
    }

    /// All members, in the order they were added.
    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.members.lock().clone()
    }

    /// The member with `id`.
    pub fn endpoint(&self, id: &str) -> Option<Arc<Endpoint>> {
        self.members.lock().iter().find(|m| m.id() == id).cloned()
    }

    /// Counts of members by state (returning endpoints whose ejection is over first).
    pub fn stats(&self) -> Stats {
        self.refresh_if_due();
        let snap = self.snapshot.load();
        Stats {
            total: snap.total,
            available: snap.available.len(),
            unhealthy: snap.unhealthy,
            ejected: snap.ejected,
        }
    }

    /// Whether picks count requests in flight: the strategy reads them, or the balancer
    /// was built with [`track_in_flight`](BalancerBuilder::track_in_flight).
    pub fn tracks_in_flight(&self) -> bool {
        self.track
    }

    /// The strategy.
    pub fn strategy(&self) -> &S {
        &self.strategy
    }

    /// The outlier detection settings, if enabled.
    pub fn outlier_detection(&self) -> Option<&OutlierDetection> {
        self.outlier.as_ref()
    }

    /// The balancer's clock reading, in nanoseconds.
    pub fn now_nanos(&self) -> u64 {
        self.clock.now_nanos()
    }

    /// Rebuilds the snapshot from the members' current health (after health checks).
    pub(crate) fn refresh(&self) {
        let members = self.members.lock();
        self.publish(&members, self.now_nanos());
    }

    fn refresh_if_due(&self) {
        if self.snapshot.load().next_return == u64::MAX {
            return;
        }
        let members = self.members.lock();
        let now = self.now_nanos();
        // Another thread may have returned them while this one waited for the lock.
        if now >= self.snapshot.load().next_return {
            self.publish(&members, now);
        }
    }

    /// Builds and publishes a snapshot; callers hold the `members` lock.
    fn publish(&self, members: &[Arc<Endpoint>], now: u64) {
        let generation = self.generation.load(Ordering::Relaxed).wrapping_add(1);
        let snapshot = build_snapshot(&self.strategy, members, now, generation);
        self.snapshot.store(Arc::new(snapshot));
        self.generation.store(generation, Ordering::SeqCst);
    }

    /// Tells the strategy, with the latest state, that a pick of `endpoint` from `snap`
    /// was released (its count in flight has gone down).
    #[inline]
    pub(crate) fn released(&self, snap: &Snapshot<S::State>, endpoint: &Endpoint) {
        if snap.generation == self.generation.load(Ordering::SeqCst) {
            self.strategy.released(&snap.state, endpoint);
        } else {
            self.strategy.released(&self.snapshot.load().state, endpoint);
        }
    }

    /// Ejects `endpoint` if it has failed `in_a_row` times in a row and the cap allows.
    fn on_failure(&self, endpoint: &Arc<Endpoint>, in_a_row: u32) {
        let Some(od) = &self.outlier else { return };
        if in_a_row < od.consecutive_failures() {
            return;
        }
        let members = self.members.lock();
        let now = self.now_nanos();
        if endpoint.is_ejected_at(now) || !members.iter().any(|m| Arc::ptr_eq(m, endpoint)) {
            return;
        }
        let ejected = members.iter().filter(|m| m.is_ejected_at(now)).count();
        let cap = od.max_ejected(members.len());
        if ejected >= cap {
            tracing::debug!(
                endpoint = endpoint.id(),
                ejected,
                cap,
                "not ejecting: at the max ejection percent"
            );
            return;
        }
        let quiet = now.saturating_sub(endpoint.last_unejected_at.load(Ordering::Relaxed));
        let times = od.next_multiplier(endpoint.times_ejected(), quiet);
        let duration = od.ejection_time(times);
        endpoint.times_ejected.store(times, Ordering::Relaxed);
        endpoint
            .ejected_until
            .store(now.saturating_add(nanos_u64(duration)).max(now.saturating_add(1)), Ordering::Release);
        endpoint.consecutive_failures.store(0, Ordering::Relaxed);
        tracing::info!(endpoint = endpoint.id(), failures = in_a_row, ?duration, times, "ejecting outlier");
        self.publish(&members, now);
    }
}
