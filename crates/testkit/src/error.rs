use std::io;
use std::time::Duration;

/// Why a test service could not be provided.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program is not installed; the message says how to install it.
    #[error("`{program}` was not found on PATH: {hint}")]
    NotInstalled {
        /// The program that was looked for.
        program: &'static str,
        /// How to install it, e.g. `apt-get install redis-server`.
        hint: &'static str,
    },
    /// The program started but did not become ready in time.
    #[error("`{program}` did not become ready within {waited:?}: {detail}")]
    NotReady {
        /// The program that was started.
        program: &'static str,
        /// How long readiness was awaited.
        waited: Duration,
        /// What the last readiness probe saw (and the program's log tail, when there is one).
        detail: String,
    },
    /// A service given by environment variable could not be used.
    #[error("{var}={value:?} is not usable: {detail}")]
    BadEnv {
        /// The variable name.
        var: &'static str,
        /// Its value, with any password removed.
        value: String,
        /// What was expected.
        detail: String,
    },
    /// A service the tests expect to be running could not be reached.
    #[error("{service} at {url} is unreachable: {detail}; {hint}")]
    Unreachable {
        /// The service, e.g. `PostgreSQL`.
        service: &'static str,
        /// Where it was looked for, with any password removed.
        url: String,
        /// What went wrong.
        detail: String,
        /// How to start it or point the tests elsewhere.
        hint: &'static str,
    },
    /// An I/O error while spawning or talking to a program.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Any other failure, described.
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

/// Result with the testkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
