//! The crate's error type: a plan that cannot be run, or a report that cannot be read.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Anything that stops a run before it starts, or a file that cannot be used; what went
/// wrong is its [`kind`](Error::kind).
///
/// Failed requests are not errors of this type: a run counts them by
/// [`ErrorCounts`](crate::ErrorCounts) and goes on.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting or a target could not be used: which, the value given and what was expected.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The setting, e.g. `rate` or `target "health"`.
        what: String,
        /// The value given and what was expected.
        reason: String,
    },
    /// A target is not on this machine and `allow_remote` is off.
    #[error(
        "{url} is not a loopback address ({resolved}): load is only sent to this machine unless allow_remote is set"
    )]
    Remote {
        /// The target's URL.
        url: String,
        /// What its host resolved to.
        resolved: String,
    },
    /// A target's host name did not resolve.
    #[error("{host}: cannot resolve: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// A scenario, report or baseline file could not be parsed.
    #[error("{path}: {reason}")]
    Parse {
        /// The file (or `<input>`).
        path: String,
        /// What was wrong, with the parser's position when it gives one.
        reason: String,
    },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid { what: what.into(), reason: reason.into() })
    }

    pub(crate) fn parse(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Parse { path: path.into(), reason: reason.into() })
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the plan itself is wrong (a setting, a target, a file): running it again
    /// unchanged will fail the same way.
    pub fn is_config(&self) -> bool {
        !matches!(self.kind, ErrorKind::Resolve { .. })
    }
}
