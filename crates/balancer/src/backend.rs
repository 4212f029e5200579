//! Backends: [`Backend`], the description a caller adds, and [`Endpoint`], the live member
//! with its load, latency and health that strategies read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::nanos_u64;
use crate::error::{Error, Result};
use crate::load::{Reader, Slot};

/// A backend to balance over: a unique id, an address, a weight and free-form metadata.
///
/// The address is opaque to the balancer (a URL, `host:port`, an rclone remote name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    id: String,
    addr: String,
    weight: u32,
    metadata: BTreeMap<String, String>,
}

impl Backend {
    /// A backend of weight 1 and no metadata.
    pub fn new(id: impl Into<String>, addr: impl Into<String>) -> Self {
        Self { id: id.into(), addr: addr.into(), weight: 1, metadata: BTreeMap::new() }
    }

    /// Sets the weight (at least 1; 0 is refused when the backend is added).
    #[must_use]
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The unique id.
    #[inline]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The address.
    #[inline]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
}

pub(crate) fn validate_weight(id: &str, weight: u32) -> Result<()> {
    if weight == 0 {
        return Err(Error::invalid("weight", format!("0 (backend {id:?})"), "1 or more"));
    }
    Ok(())
}

/// A member of a balancer: the backend plus the live state that strategies and health
/// tracking read — requests in flight, peak-EWMA latency, health and ejection.
// Nothing here is written on every pick: the count in flight and cancelled picks live in
// the balancer's slab (`crate::load`), laid out for concurrent picks. What a pick reads
// (the slot, the id, what P2C reads) comes first, so that a pick of a cold endpoint costs
// one or two cache misses.
#[derive(Debug)]
#[repr(C)]
pub struct Endpoint {
    slot: Slot,
    id: String,
    /// Peak-EWMA latency in nanoseconds, as `f64` bits; written under `ewma_lock`, read
    /// without it (a torn pair of estimate and time is still a fine estimate).
    ewma_bits: AtomicU64,
    ewma_at: AtomicU64,
    decay_nanos: f64,
    weight: AtomicU32,
    pub(crate) healthy: AtomicBool,
    addr: String,
    metadata: BTreeMap<String, String>,
    ewma_lock: Mutex<()>,
    pub(crate) hc_successes: AtomicU32,
    pub(crate) hc_failures: AtomicU32,
    /// Clock reading at which an ejection ends; 0 when not ejected.
    pub(crate) ejected_until: AtomicU64,
    pub(crate) times_ejected: AtomicU32,
    pub(crate) last_unejected_at: AtomicU64,
    pub(crate) consecutive_failures: AtomicU32,
    successes: AtomicU64,
    failures: AtomicU64,
}

impl Endpoint {
    pub(crate) fn new(
        backend: Backend,
        default_rtt: Duration,
        decay: Duration,
        now: u64,
        slot: Slot,
    ) -> Self {
        Self {
            slot,
            id: backend.id,
            addr: backend.addr,
            metadata: backend.metadata,
            weight: AtomicU32::new(backend.weight),
            ewma_bits: AtomicU64::new((nanos_u64(default_rtt) as f64).to_bits()),
            ewma_at: AtomicU64::new(now),
            ewma_lock: Mutex::new(()),
            decay_nanos: (nanos_u64(decay).max(1)) as f64,
            healthy: AtomicBool::new(true),
            hc_successes: AtomicU32::new(0),
            hc_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            times_ejected: AtomicU32::new(0),
            last_unejected_at: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The unique id.
    #[inline]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The address.
    #[inline]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The current weight.
    #[inline]
    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    pub(crate) fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Ordering::Relaxed);
    }

    /// Picks handed out for this endpoint and not yet reported or dropped.
    ///
    /// Counted only when the balancer's strategy reads it
    /// ([`Strategy::reads_in_flight`](crate::Strategy::reads_in_flight)) or the balancer
    /// was built with [`track_in_flight`](crate::BalancerBuilder::track_in_flight);
    /// otherwise always 0.
    #[inline]
    pub fn in_flight(&self) -> u64 {
        u64::from(self.slot.in_flight())
    }

    #[inline]
    pub(crate) fn acquire(&self) {
        self.slot.acquire();
    }

    #[inline]
    pub(crate) fn release(&self) {
        self.slot.release();
    }

    #[inline]
    pub(crate) fn slot(&self) -> &Slot {
        &self.slot
    }

    /// Whether the active health checks consider this endpoint healthy (new endpoints are).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Whether passive outlier detection has ejected this endpoint at clock reading `now`.
    pub fn is_ejected_at(&self, now: u64) -> bool {
        let until = self.ejected_until.load(Ordering::Acquire);
        until != 0 && until > now
    }

    /// How many times outlier detection has ejected this endpoint in a row (the ejection
    /// time multiplier).
    pub fn times_ejected(&self) -> u32 {
        self.times_ejected.load(Ordering::Relaxed)
    }

    /// Requests reported as successes, failures, and picks dropped without a report.
    pub fn outcomes(&self) -> (u64, u64, u64) {
        (self.successes.load(Ordering::Relaxed), self.failures.load(Ordering::Relaxed), self.slot.cancelled())
    }

    /// The peak-EWMA latency estimate in nanoseconds at clock reading `now`.
    ///
    /// It jumps to any observed latency above it, moves toward lower ones with weight
    /// `1 - exp(-Δt/τ)`, and between observations decays toward zero with the same time
    /// constant, so an endpoint that was slow once is probed again later (as Finagle and
    /// tower do).
    #[inline]
    pub fn peak_ewma_nanos(&self, now: u64) -> f64 {
        let est = f64::from_bits(self.ewma_bits.load(Ordering::Relaxed));
        let at = self.ewma_at.load(Ordering::Relaxed);
        let elapsed = now.saturating_sub(at);
        if elapsed == 0 { est } else { est * (-(elapsed as f64) / self.decay_nanos).exp() }
    }

    /// The P2C cost: peak-EWMA latency × (requests in flight + 1).
    #[inline]
    pub fn load_cost(&self, now: u64) -> f64 {
        self.peak_ewma_nanos(now) * (self.in_flight() as f64 + 1.0)
    }

    /// Whether this endpoint's cost per unit of weight is below `other`'s at `now`.
    ///
    /// Equivalent to comparing `load_cost / weight` of both, with one `exp` instead of
    /// two: the decay factors are divided out. Counts in flight are read through `reader`.
    #[inline]
    pub(crate) fn weighted_cost_below(&self, other: &Endpoint, now: u64, reader: &Reader) -> bool {
        let (est_a, at_a) =
            (f64::from_bits(self.ewma_bits.load(Ordering::Relaxed)), self.ewma_at.load(Ordering::Relaxed));
        let (est_b, at_b) =
            (f64::from_bits(other.ewma_bits.load(Ordering::Relaxed)), other.ewma_at.load(Ordering::Relaxed));
        let (at_a, at_b) = (at_a.min(now), at_b.min(now));
        let a = est_a * (f64::from(self.slot.in_flight_seen(reader)) + 1.0) * f64::from(other.weight());
        let b = est_b * (f64::from(other.slot.in_flight_seen(reader)) + 1.0) * f64::from(self.weight());
        // a·e^(−(now−at_a)/τ) < b·e^(−(now−at_b)/τ)  ⇔  a·e^((at_a−at_b)/τ) < b
        // Clamped so that hours between updates cannot overflow to infinity.
        a * ((at_a as f64 - at_b as f64) / self.decay_nanos).clamp(-700.0, 700.0).exp() < b
    }

    pub(crate) fn observe_latency(&self, now: u64, rtt: Duration) {
        let rtt = nanos_u64(rtt) as f64;
        let _guard = self.ewma_lock.lock();
        let est = f64::from_bits(self.ewma_bits.load(Ordering::Relaxed));
        let at = self.ewma_at.load(Ordering::Relaxed);
        let next = if rtt > est {
            rtt
        } else {
            let w = (-(now.saturating_sub(at) as f64) / self.decay_nanos).exp();
            est * w + rtt * (1.0 - w)
        };
        self.ewma_bits.store(next.to_bits(), Ordering::Relaxed);
        self.ewma_at.store(now.max(at), Ordering::Relaxed);
    }

    pub(crate) fn count_success(&self) {
        self.successes.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// Counts a failure and returns the consecutive failures so far.
    pub(crate) fn count_failure(&self) -> u32 {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }

    #[inline]
    pub(crate) fn count_cancelled(&self) {
        self.slot.count_cancelled();
    }

    pub(crate) fn to_backend(&self) -> Backend {
        Backend {
            id: self.id.clone(),
            addr: self.addr.clone(),
            weight: self.weight(),
            metadata: self.metadata.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Slab;

    fn ep() -> Endpoint {
        let slot = Slab::new().alloc();
        Endpoint::new(Backend::new("a", "x"), Duration::from_millis(10), Duration::from_secs(10), 0, slot)
    }

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        let e = ep();
        assert_eq!(e.peak_ewma_nanos(0), 10e6);
        e.observe_latency(0, Duration::from_millis(100));
        assert_eq!(e.peak_ewma_nanos(0), 100e6, "peaks are taken at once");
        e.observe_latency(0, Duration::from_millis(1));
        assert_eq!(e.peak_ewma_nanos(0), 100e6, "no time passed: a lower sample has no weight");
        let ten_s = 10_000_000_000;
        let decayed = e.peak_ewma_nanos(ten_s);
        assert!((decayed - 100e6 / std::f64::consts::E).abs() < 1.0, "{decayed}");
        e.observe_latency(ten_s, Duration::from_millis(1));
        let moved = e.peak_ewma_nanos(ten_s);
        assert!(moved < 100e6 && moved > 1e6, "{moved}");
    }

    #[test]
    fn cost_grows_with_in_flight() {
        let e = ep();
        let c0 = e.load_cost(0);
        e.acquire();
        assert_eq!(e.load_cost(0), 2.0 * c0);
        e.release();
        assert_eq!(e.in_flight(), 0);
    }

    #[test]
    fn one_exp_comparison_matches_costs() {
        let exact = Reader::new(Duration::ZERO);
        let (a, b) = (ep(), ep());
        b.set_weight(2);
        a.observe_latency(1_000_000_000, Duration::from_millis(40));
        b.observe_latency(3_000_000_000, Duration::from_millis(50));
        b.acquire();
        for now in [3_000_000_000u64, 9_000_000_000, 60_000_000_000] {
            let (ca, cb) = (a.load_cost(now) / 1.0, b.load_cost(now) / 2.0);
            assert_eq!(a.weighted_cost_below(&b, now, &exact), ca < cb, "now {now}: {ca} vs {cb}");
            assert_eq!(b.weighted_cost_below(&a, now, &exact), cb < ca, "now {now}: {cb} vs {ca}");
        }
    }

    #[test]
    fn failures_count_in_a_row() {
        let e = ep();
        assert_eq!(e.count_failure(), 1);
        assert_eq!(e.count_failure(), 2);
        e.count_success();
        assert_eq!(e.count_failure(), 1);
        assert_eq!(e.outcomes(), (1, 3, 0));
    }

    #[test]
    fn zero_weight_is_refused() {
        assert!(validate_weight("a", 0).is_err());
        assert!(validate_weight("a", 1).is_ok());
    }
}
