//! Load balancing over a changing set of backends — round robin, smooth weighted round
//! robin, least connections, P2C on peak-EWMA latency, ketama and Maglev — with active
//! health checks and passive outlier ejection, behind one small [`Strategy`] trait.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mltb_balancer::{Backend, Balancer, OutlierDetection, PeakEwmaP2c};
//!
//! let balancer = Balancer::builder(PeakEwmaP2c::new())
//!     .backend(Backend::new("aria2-a", "http://127.0.0.1:6800/jsonrpc"))
//!     .backend(Backend::new("aria2-b", "http://127.0.0.1:6801/jsonrpc").with_weight(2))
//!     .outlier_detection(OutlierDetection::envoy())
//!     .build()?;
//!
//! let pick = balancer.pick()?;
//! let daemon = pick.addr().to_owned();
//! // ... send the download to `daemon`, then say how it went:
//! pick.success(Duration::from_millis(12));
//!
//! balancer.remove("aria2-a")?;
//! assert_eq!(balancer.pick()?.id(), "aria2-b");
//! balancer.set_healthy("aria2-b", false)?;
//! assert!(balancer.pick().unwrap_err().is_no_healthy_backend());
//! # Ok::<(), mltb_balancer::Error>(())
//! ```
//!
//! # Features
//!
//! None; everything is always built. Health checks need a tokio runtime with the `time`
//! driver.
//!
//! # Design
//!
//! - **Picks take no lock.** The balancer publishes an immutable snapshot (available
//!   endpoints plus the strategy's precomputed state) through an [`arc_swap::ArcSwap`].
//!   Membership, weight, health and ejection changes rebuild it under a writers' mutex.
//!   A strategy therefore never sees an unhealthy or ejected endpoint: while any member
//!   is available, a pick returns an available one; when none is, it returns
//!   [`ErrorKind::NoHealthyBackend`] (no "panic mode" routing to unhealthy members),
//!   whose [`Error::retry_after`] is the time until the first ejected, healthy member
//!   returns.
//! - **Precompute at build, O(1) at pick.** Smooth weighted round robin precomputes one
//!   period of nginx's sequence; ketama builds a sorted ring with an index on the top
//!   bits of the hash; Maglev builds its lookup table. Exact least connections scans
//!   (O(n) at worst) but stops at the first endpoint at its *floor*, a lower bound on the
//!   least load that releases lower and full scans raise, so most picks read a few
//!   counts; [`LeastConnections::sampled`] compares k random ones; P2C reads two.
//! - **The caller reports.** A [`Pick`] counts as in flight until it is reported with an
//!   [`Outcome`] (latency feeds P2C's peak EWMA, failures feed outlier detection) or
//!   dropped (cancelled: counted, affects neither).
//! - **A pick writes nothing that another thread's pick writes, unless the strategy
//!   needs it.** So that picks on several threads do not bounce cache lines between
//!   cores:
//!   - The [`Pick`] guard holds `arc-swap`'s guard on the snapshot plus an index, rather
//!     than a clone of the endpoint's `Arc`: no shared reference count moves (as long
//!     as a thread has fewer than 8 of its picks held; beyond, `arc-swap` counts a
//!     reference on the snapshot). A pick therefore keeps its snapshot (with the
//!     strategy's ring or table) alive until it is released, not just its endpoint.
//!   - Requests in flight are counted only for strategies that read them
//!     ([`Strategy::reads_in_flight`]: least connections, P2C, and custom strategies
//!     unless they say otherwise), or when the balancer is built with
//!     [`BalancerBuilder::track_in_flight`]. For round robin, smooth weighted, ketama and
//!     Maglev, [`Endpoint::in_flight`] stays 0.
//!   - Each thread leases one of 8 *stripes* for its lifetime (threads beyond 8 share a
//!     ninth). Counters that picks write — requests in flight, cancelled picks, the
//!     round-robin cursors — have one copy per stripe on its own cache lines; the owner
//!     updates its copy with a plain load and store, and reads sum the stripes. A pick
//!     released on another thread counts down there; the sum stays exact.
//!   - Requests in flight live in a slab of 16 `u32` lanes per cache line, so exact
//!     least connections reads 16 lines per stripe, not 256, to scan 256 endpoints.
//!   - Least connections and P2C read counts in flight through a per-thread *view*:
//!     this thread's own stripe exactly, the other stripes' sum as of the view's last
//!     refresh, at most [`DEFAULT_LOAD_VIEW_AGE`] (100 µs) ago
//!     ([`LeastConnections::load_view_age`], [`PeakEwmaP2c::load_view_age`]; 0 reads every
//!     stripe on every pick). A line another core has just written is a cache miss to
//!     read; the views are read and written by their own thread only, so busy picks on
//!     two cores stay as fast as on one. A thread that picks rarely refreshes on every
//!     pick, so it sees exact counts; [`Endpoint::in_flight`] is always exact.
//!   - Round robin and smooth weighted keep one cursor per stripe, each walking the
//!     cycle from its start: every thread's picks are exactly even (or exactly nginx's
//!     sequence) over each cycle of its own picks, but two threads may pick the same
//!     endpoint at the same moment: the threads' picks together are not one sequence.
//!   - Outcome counters that outlier detection needs (successes, failures, failures in
//!     a row) are written only when the caller reports, not on every pick.
//! - **Outlier ejection is Envoy's consecutive-failure detector** ([`OutlierDetection`]),
//!   with the max ejection percent rounded up so one endpoint can always be ejected.
//! - **Settings are checked once, in `build()`.** [`HealthConfig::builder`] and
//!   [`OutlierDetection::builder`] take any value in their setters; `build()` returns
//!   [`ErrorKind::InvalidConfig`] naming the setting, the value and what was expected,
//!   so a built config is always valid.
//!   Ejections end lazily: the first pick after the time is up rebuilds the snapshot, so
//!   no timer task is needed.
//! - **Active health checks** ([`HealthCheck`], [`HealthChecker`]) run concurrently per
//!   round on tokio's timer, with consecutive success/failure thresholds.
//! - **Time is a seam** ([`Clock`]); tests use [`FakeClock`] or [`TokioClock`] with
//!   tokio's paused clock.
//! - **Hashes are fixed by the crate** ([`key_hash`]: FNV-1a 64 + MurmurHash3 `fmix64`), so
//!   every process and every version maps keys alike.

mod backend;
mod balancer;
mod clock;
mod error;
mod hash;
mod health;
mod load;
mod outlier;
pub mod strategy;

pub use backend::{Backend, Endpoint};
pub use balancer::{Balancer, BalancerBuilder, DEFAULT_DECAY, DEFAULT_RTT, Outcome, Pick, Stats};
pub use clock::{Clock, FakeClock, MonotonicClock, TokioClock};
pub use error::{Error, ErrorKind, Result};
pub use hash::key_hash;
pub use health::{HealthCheck, HealthChecker, HealthConfig, HealthConfigBuilder, Round};
pub use load::DEFAULT_LOAD_VIEW_AGE;
pub use outlier::{OutlierDetection, OutlierDetectionBuilder};
pub use strategy::{
    AnyStrategy, Ketama, LeastConnections, Maglev, PeakEwmaP2c, Request, RoundRobin, SmoothWeighted, Strategy,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Reports are `#[non_exhaustive]`: outside the crate a struct expression does not
/// compile, so that fields can be added without breaking callers. Each block below must
/// fail to compile (each is valid code without the attribute).
///
/// ```compile_fail,E0639
/// let _ = mltb_balancer::Round { checked: 1, ..Default::default() };
/// ```
///
/// ```compile_fail,E0639
/// use mltb_balancer::Stats;
/// fn f(s: Stats) -> Stats { Stats { total: 0, ..s } }
/// ```
#[cfg(doctest)]
struct NonExhaustive;
