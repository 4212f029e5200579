//! The crate's error type.

use std::time::Duration;

/// Anything that can go wrong in this crate: what went wrong is its [`kind`](Error::kind);
/// the predicates say what a caller can do about it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A [`PoolConfig`](crate::PoolConfig) or manager setting cannot be used.
    #[error("invalid pool setting {what}: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `min_idle`.
        what: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// Every connection stayed checked out for the whole checkout timeout.
    #[error(
        "timed out after {waited:?} waiting for a connection: all {max_size} were in use; \
         raise max_size or hold connections for less time"
    )]
    Timeout {
        /// How long the checkout waited.
        waited: Duration,
        /// The pool's `max_size`.
        max_size: u32,
    },
    /// The checkout timed out while the backend refused new connections or failed
    /// validation, e.g. the database is down or restarting; or, with
    /// [`PoolConfig::fail_fast`](crate::PoolConfig::fail_fast), it was refused at once
    /// because the backend is known to be down.
    #[error("backend unavailable: no connection within {waited:?}; last error: {last_error}")]
    Unavailable {
        /// How long the checkout waited.
        waited: Duration,
        /// The last connect or validation error the pool saw.
        last_error: String,
    },
    /// The pool could not open its initial connections.
    #[error("could not open the pool's connections: {0}")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A pool was created outside a tokio runtime.
    #[error("{0} must be called inside a tokio runtime (the pool spawns its upkeep tasks on it)")]
    NoRuntime(&'static str),
    /// An SQLite call failed.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[error("sqlite: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// A blocking task running an SQLite call panicked or was cancelled; its
    /// connection is discarded.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[error("sqlite call did not complete: {0}")]
    Blocking(String),
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

    /// Whether a checkout gave up because of its timeout (pool exhausted or backend down).
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout { .. } | ErrorKind::Unavailable { .. })
    }

    /// Whether the backend was unreachable rather than the pool busy.
    pub fn is_unavailable(&self) -> bool {
        matches!(self.kind, ErrorKind::Unavailable { .. } | ErrorKind::Connect(_))
    }

    /// Whether a setting or a URL could not be used: retrying will not help.
    pub fn is_config(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidConfig { .. } | ErrorKind::NoRuntime(_))
    }

    /// Whether the same call can succeed later without a change of configuration.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout { .. } | ErrorKind::Unavailable { .. } | ErrorKind::Connect(_))
    }

    /// How long to wait before retrying, when the pool knows: it never does (a checkout
    /// has already waited its timeout), so this is always `None`. Present so that every
    /// mltb crate's error answers the same two questions.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig { what, reason: reason.into() })
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::new(ErrorKind::Sqlite(e))
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates() {
        let t = Error::new(ErrorKind::Timeout { waited: Duration::from_secs(1), max_size: 4 });
        assert!(t.is_timeout() && t.is_retryable() && !t.is_unavailable());
        assert!(t.to_string().contains("all 4 were in use"), "{t}");
        let u = Error::new(ErrorKind::Unavailable {
            waited: Duration::from_secs(1),
            last_error: "refused".into(),
        });
        assert!(u.is_timeout() && u.is_retryable() && u.is_unavailable());
        assert!(u.to_string().contains("refused"), "{u}");
        let c = Error::invalid("max_size", "must be at least 1");
        assert!(!c.is_timeout() && !c.is_retryable() && c.is_config());
        assert_eq!(c.retry_after(), None);
        assert!(matches!(c.kind(), ErrorKind::InvalidConfig { what: "max_size", .. }));
        assert_eq!(c.to_string(), "invalid pool setting max_size: must be at least 1");
    }
}
