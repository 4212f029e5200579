//! [`AnyStrategy`]: one of the built-in strategies, chosen at run time (from config).

use std::str::FromStr;
use std::sync::Arc;

use super::{
    Ketama, LeastConnState, LeastConnections, Maglev, PeakEwmaP2c, Request, Ring, RoundRobin, SmoothWeighted,
    Strategy, Table, WeightedState,
};
use crate::Error;
use crate::backend::Endpoint;

/// One of the built-in strategies, for a strategy named in a config file.
///
/// [`Strategy`] has an associated `State`, so it cannot be a trait object; this enum is
/// the run-time choice instead. It parses from the names in [`AnyStrategy::NAMES`]:
///
/// ```
/// use mltb_balancer::{AnyStrategy, Backend, Balancer};
///
/// let strategy: AnyStrategy = "least_connections".parse()?;
/// let balancer = Balancer::new(strategy, [Backend::new("a", "127.0.0.1:6800")])?;
/// assert_eq!(balancer.pick()?.id(), "a");
/// assert!("fastest".parse::<AnyStrategy>().is_err());
/// # Ok::<(), mltb_balancer::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStrategy {
    /// [`RoundRobin`].
    RoundRobin(RoundRobin),
    /// [`SmoothWeighted`].
    SmoothWeighted(SmoothWeighted),
    /// [`LeastConnections`] (exact).
    LeastConnections(LeastConnections),
    /// [`PeakEwmaP2c`].
    PeakEwmaP2c(PeakEwmaP2c),
    /// [`Ketama`].
    Ketama(Ketama),
    /// [`Maglev`].
    Maglev(Maglev),
}

impl AnyStrategy {
    /// The names [`FromStr`] accepts, one per strategy.
    pub const NAMES: [&'static str; 6] =
        ["round_robin", "smooth_weighted", "least_connections", "p2c_peak_ewma", "ketama", "maglev"];
}

impl FromStr for AnyStrategy {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        let strategy = match name.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "round_robin" => Self::RoundRobin(RoundRobin::new()),
            "smooth_weighted" => Self::SmoothWeighted(SmoothWeighted::new()),
            "least_connections" => Self::LeastConnections(LeastConnections::new()),
            "p2c_peak_ewma" => Self::PeakEwmaP2c(PeakEwmaP2c::new()),
            "ketama" => Self::Ketama(Ketama::new()),
            "maglev" => Self::Maglev(Maglev::new()),
            _ => {
                return Err(Error::invalid(
                    "strategy",
                    format!("{name:?}"),
                    format!("one of {}", Self::NAMES.join(", ")),
                ));
            }
        };
        Ok(strategy)
    }
}

/// The state of whichever strategy an [`AnyStrategy`] holds.
#[derive(Debug)]
pub enum AnyState {
    /// Round robin and P2C keep no state.
    None,
    /// [`SmoothWeighted`]'s.
    Weighted(WeightedState),
    /// [`LeastConnections`]'.
    LeastConn(LeastConnState),
    /// [`Ketama`]'s ring.
    Ring(Ring),
    /// [`Maglev`]'s table.
    Table(Table),
}

impl Strategy for AnyStrategy {
    type State = AnyState;

    fn build(&self, endpoints: &[Arc<Endpoint>]) -> AnyState {
        match self {
            Self::RoundRobin(s) => {
                s.build(endpoints);
                AnyState::None
            }
            Self::PeakEwmaP2c(s) => {
                s.build(endpoints);
                AnyState::None
            }
            Self::SmoothWeighted(s) => AnyState::Weighted(s.build(endpoints)),
            Self::LeastConnections(s) => AnyState::LeastConn(s.build(endpoints)),
            Self::Ketama(s) => AnyState::Ring(s.build(endpoints)),
            Self::Maglev(s) => AnyState::Table(s.build(endpoints)),
        }
    }

    fn pick(&self, state: &AnyState, endpoints: &[Arc<Endpoint>], request: &Request<'_>) -> usize {
        // `build` always pairs a strategy with its own state; a mismatch cannot happen, and
        // index 0 (what the trait does with any out-of-range answer) is the safe reply.
        match (self, state) {
            (Self::RoundRobin(s), AnyState::None) => s.pick(&(), endpoints, request),
            (Self::PeakEwmaP2c(s), AnyState::None) => s.pick(&(), endpoints, request),
            (Self::SmoothWeighted(s), AnyState::Weighted(st)) => s.pick(st, endpoints, request),
            (Self::LeastConnections(s), AnyState::LeastConn(st)) => s.pick(st, endpoints, request),
            (Self::Ketama(s), AnyState::Ring(st)) => s.pick(st, endpoints, request),
            (Self::Maglev(s), AnyState::Table(st)) => s.pick(st, endpoints, request),
            _ => 0,
        }
    }

    #[inline]
    fn released(&self, state: &AnyState, endpoint: &Endpoint) {
        if let (Self::LeastConnections(s), AnyState::LeastConn(st)) = (self, state) {
            s.released(st, endpoint);
        }
    }

    fn reads_in_flight(&self) -> bool {
        match self {
            Self::RoundRobin(s) => s.reads_in_flight(),
            Self::SmoothWeighted(s) => s.reads_in_flight(),
            Self::LeastConnections(s) => s.reads_in_flight(),
            Self::PeakEwmaP2c(s) => s.reads_in_flight(),
            Self::Ketama(s) => s.reads_in_flight(),
            Self::Maglev(s) => s.reads_in_flight(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Balancer};

    #[test]
    fn every_name_parses_and_picks_only_members() {
        for name in AnyStrategy::NAMES {
            let strategy: AnyStrategy = name.parse().unwrap();
            let balancer = Balancer::new(
                strategy,
                [Backend::new("a", "127.0.0.1:1"), Backend::new("b", "127.0.0.1:2").with_weight(2)],
            )
            .unwrap();
            // Picks are held, so load-aware strategies see in-flight requests pile up.
            let picks: Vec<_> = (0..60u64)
                .map(|i| balancer.pick_hash(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).unwrap())
                .collect();
            let seen: std::collections::BTreeSet<_> = picks.iter().map(|p| p.id().to_owned()).collect();
            assert_eq!(seen.len(), 2, "{name} should reach both backends, saw {seen:?}");
        }
    }

    #[test]
    fn names_are_forgiving_about_case_and_dashes_and_strict_otherwise() {
        assert!(matches!("Least-Connections".parse::<AnyStrategy>(), Ok(AnyStrategy::LeastConnections(_))));
        assert!(matches!(" maglev ".parse::<AnyStrategy>(), Ok(AnyStrategy::Maglev(_))));
        let err = "random".parse::<AnyStrategy>().unwrap_err().to_string();
        assert!(err.contains("\"random\"") && err.contains("round_robin"), "{err}");
    }
}
