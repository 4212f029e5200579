//! The crate's error type.

/// Anything that can go wrong in this crate: no backend to pick, or bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Every backend is failing its health checks or ejected as an outlier, or there are
    /// no backends at all.
    #[error(
        "no healthy backend: {total} backends, {unhealthy} failing health checks, \
         {ejected} ejected as outliers"
    )]
    NoHealthyBackend {
        /// Members of the balancer.
        total: usize,
        /// Members whose active health checks failed.
        unhealthy: usize,
        /// Members ejected by passive outlier detection.
        ejected: usize,
    },
    /// A backend was added with an id that is already a member.
    #[error("backend {id:?} is already a member; ids must be unique")]
    DuplicateBackend {
        /// The id that was given.
        id: String,
    },
    /// No member has the given id.
    #[error("no backend with id {id:?}")]
    UnknownBackend {
        /// The id that was given.
        id: String,
    },
    /// A setting or a backend was given a value it cannot use.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `weight`.
        what: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
}

impl Error {
    /// Whether the pick failed because no backend is available (none healthy, or none at all).
    pub fn is_no_healthy_backend(&self) -> bool {
        matches!(self, Error::NoHealthyBackend { .. })
    }

    /// Whether the same call can succeed later without changing the configuration: true
    /// when backends exist but all are unhealthy or ejected (health checks and ejection
    /// timeouts can bring them back).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::NoHealthyBackend { total, .. } if *total > 0)
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig { what, reason: reason.into() }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates() {
        let e = Error::NoHealthyBackend { total: 3, unhealthy: 1, ejected: 2 };
        assert!(e.is_no_healthy_backend());
        assert!(e.is_retryable());
        assert!(e.to_string().contains("2 ejected"), "{e}");
        let empty = Error::NoHealthyBackend { total: 0, unhealthy: 0, ejected: 0 };
        assert!(empty.is_no_healthy_backend());
        assert!(!empty.is_retryable());
        let dup = Error::DuplicateBackend { id: "a".into() };
        assert!(!dup.is_no_healthy_backend());
        assert!(!dup.is_retryable());
    }
}
