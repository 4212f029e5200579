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
//!   [`Error::NoHealthyBackend`] (no "panic mode" routing to unhealthy members).
//! - **Precompute at build, O(1) at pick.** Smooth weighted round robin precomputes one
//!   period of nginx's sequence; ketama builds a sorted ring with an index on the top
//!   bits of the hash; Maglev builds its lookup table. Exact least connections scans all
//!   endpoints (O(n)), [`LeastConnections::sampled`] compares k random ones; P2C reads
//!   two.
//! - **The caller reports.** A [`Pick`] counts as in flight until it is reported with an
//!   [`Outcome`] (latency feeds P2C's peak EWMA, failures feed outlier detection) or
//!   dropped (cancelled: affects neither).
//! - **Outlier ejection is Envoy's consecutive-failure detector** ([`OutlierDetection`]),
//!   with the max ejection percent rounded up so one endpoint can always be ejected.
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
mod outlier;
pub mod strategy;

pub use backend::{Backend, Endpoint};
pub use balancer::{Balancer, BalancerBuilder, DEFAULT_DECAY, DEFAULT_RTT, Outcome, Pick, Stats};
pub use clock::{Clock, FakeClock, MonotonicClock, TokioClock};
pub use error::{Error, Result};
pub use hash::key_hash;
pub use health::{HealthCheck, HealthChecker, HealthConfig, Round};
pub use outlier::OutlierDetection;
pub use strategy::{
    AnyStrategy, Ketama, LeastConnections, Maglev, PeakEwmaP2c, Request, RoundRobin, SmoothWeighted, Strategy,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
