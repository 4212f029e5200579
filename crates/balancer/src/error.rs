//! The crate's error type.

use std::time::Duration;

/// Anything that can go wrong in this crate: no backend to pick, or bad input. What went
/// wrong is its [`kind`](Error::kind); the predicates say what a caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
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
        /// How long until the first ejected member returns to service, when one is
        /// ejected and healthy.
        next_return: Option<Duration>,
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
    #[error("invalid {setting} = {value}: expected {expected}")]
    InvalidConfig {
        /// The setting, e.g. `weight` or `OutlierDetection::consecutive_failures`.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What was expected instead.
        expected: String,
    },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// Whether the pick failed because no backend is available (none healthy, or none at all).
    pub fn is_no_healthy_backend(&self) -> bool {
        matches!(self.kind, ErrorKind::NoHealthyBackend { .. })
    }

    /// Whether a setting or a backend's weight could not be used: retrying will not help.
    pub fn is_config(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidConfig { .. })
    }

    /// Whether the same call can succeed later without changing the configuration: true
    /// when backends exist but all are unhealthy or ejected (health checks and ejection
    /// timeouts can bring them back).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::NoHealthyBackend { total, .. } if total > 0)
    }

    /// How long to wait before retrying, when known: for
    /// [`NoHealthyBackend`](ErrorKind::NoHealthyBackend), the time until the first
    /// ejected, healthy member returns to service. `None` when only health checks can
    /// bring a member back (their timing is not the balancer's), or for other errors.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            ErrorKind::NoHealthyBackend { next_return, .. } => next_return,
            _ => None,
        }
    }

    pub(crate) fn invalid(setting: &'static str, value: impl ToString, expected: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig { setting, value: value.to_string(), expected: expected.into() })
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates() {
        let e = Error::new(ErrorKind::NoHealthyBackend {
            total: 3,
            unhealthy: 1,
            ejected: 2,
            next_return: Some(Duration::from_secs(4)),
        });
        assert!(e.is_no_healthy_backend() && !e.is_config());
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
        assert!(e.to_string().contains("2 ejected"), "{e}");
        let empty =
            Error::new(ErrorKind::NoHealthyBackend { total: 0, unhealthy: 0, ejected: 0, next_return: None });
        assert!(empty.is_no_healthy_backend());
        assert!(!empty.is_retryable());
        assert_eq!(empty.retry_after(), None);
        let dup = Error::from(ErrorKind::DuplicateBackend { id: "a".into() });
        assert!(!dup.is_no_healthy_backend() && !dup.is_retryable() && !dup.is_config());
        assert_eq!(dup.retry_after(), None);
        let bad = Error::invalid("HealthConfig::interval", "0s", "a positive duration");
        assert!(bad.is_config() && !bad.is_retryable());
        assert_eq!(bad.to_string(), "invalid HealthConfig::interval = 0s: expected a positive duration");
        assert!(matches!(
            bad.into_kind(),
            ErrorKind::InvalidConfig { setting: "HealthConfig::interval", .. }
        ));
    }
}
