//! The API's error: bad configuration, unreadable TLS files, a port that cannot be bound.

use std::path::PathBuf;

/// `Result` with the API's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong setting up or serving the API; its [`kind`](Error::kind) says which.
///
/// No message carries the API token: a bad token is described by its length and the
/// kind of character that is wrong, never by its text.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting is out of range or malformed.
    #[error("{field}: {reason}")]
    Config {
        /// The setting, e.g. `api.bind`.
        field: &'static str,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A TLS certificate or key file could not be read or used.
    #[error("{field} {}: {reason}", path.display())]
    Tls {
        /// `api.tls.cert` or `api.tls.key`.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the API server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl Error {
    /// What kind of error this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the configuration is at fault (a setting or a TLS file), as opposed to
    /// the machine (a port in use, an I/O failure).
    pub fn is_config(&self) -> bool {
        matches!(self.kind, ErrorKind::Config { .. } | ErrorKind::Tls { .. })
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        ErrorKind::Config { field, reason: reason.into() }.into()
    }

    pub(crate) fn tls(field: &'static str, path: &std::path::Path, reason: impl Into<String>) -> Self {
        ErrorKind::Tls { field, path: path.to_path_buf(), reason: reason.into() }.into()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}
