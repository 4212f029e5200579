//! Errors from starting, driving and shutting down a [`Sim`](crate::Sim).

use std::time::Duration;

/// The result of a [`Sim`](crate::Sim) operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a [`Sim`](crate::Sim) operation failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The listening socket could not be bound.
    #[error("cannot bind the simulator to {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the simulator was doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid simulator setting `{setting}`: {expected}")]
    InvalidConfig {
        /// The field of [`SimConfig`](crate::SimConfig).
        setting: &'static str,
        /// What was expected instead.
        expected: &'static str,
    },
    /// [`Sim::wait_for_sent`](crate::Sim::wait_for_sent) or
    /// [`Sim::wait_for_poll`](crate::Sim::wait_for_poll) gave up.
    #[error("timed out after {timeout:?} waiting for {waiting_for}")]
    Timeout {
        /// What was awaited, e.g. `3 outbound messages (got 1)`.
        waiting_for: String,
        /// How long the wait lasted.
        timeout: Duration,
    },
    /// An injected update is not a JSON object.
    #[error("injected update must be a JSON object, got {got}")]
    InvalidUpdate {
        /// A short description of the value that was given.
        got: String,
    },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::new(ErrorKind::Io { context: context.into(), source })
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// A wait ended before the condition was met.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout { .. })
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_names_counts() {
        let err = Error::new(ErrorKind::Timeout {
            waiting_for: "3 outbound messages (got 1)".into(),
            timeout: Duration::from_secs(2),
        });
        assert!(err.is_timeout());
        assert_eq!(err.to_string(), "timed out after 2s waiting for 3 outbound messages (got 1)");
    }

    #[test]
    fn config_error_names_setting() {
        let err = Error::new(ErrorKind::InvalidConfig { setting: "token", expected: "`<digits>:<secret>`" });
        assert!(!err.is_timeout());
        assert_eq!(err.to_string(), "invalid simulator setting `token`: `<digits>:<secret>`");
    }
}
