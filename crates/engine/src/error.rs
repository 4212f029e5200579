//! The engine's error: what went wrong with a task, in words a user can act on.

use std::time::Duration;

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong; its [`kind`](Error::kind) says which kind of failure it was.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`]. Messages name the input and, where there is one, what was
/// expected; none carries a secret (URLs are redacted, the rclone config path is not
/// shown).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The link or file given is not something the engine can download.
    #[error("{input:?} is not a usable source: expected {expected}")]
    InvalidSource {
        /// What was given (redacted).
        input: String,
        /// What would have been accepted.
        expected: String,
    },
    /// The egress guard refused a destination: a scheme that is not allowed, or a host
    /// that resolves to a private, loopback, link-local or metadata address.
    #[error("refused to fetch from {target}: {reason}")]
    Refused {
        /// The URL or host that was refused (redacted).
        target: String,
        /// Why, e.g. "127.0.0.2 is a loopback address".
        reason: String,
    },
    /// The source does not exist (HTTP 404, a missing FTP file, a missing remote path).
    #[error("not found: {what}")]
    NotFound {
        /// What was not found.
        what: String,
    },
    /// The source refused the credentials, or asked for some.
    #[error("authorization failed: {what}")]
    AuthFailed {
        /// What refused.
        what: String,
    },
    /// The disk holding the download directory is full.
    #[error("not enough disk space: {what}")]
    DiskFull {
        /// What could not be written.
        what: String,
    },
    /// A `.torrent` or magnet that cannot be used.
    #[error("bad torrent: {reason}")]
    BadTorrent {
        /// What is wrong with it.
        reason: String,
    },
    /// The network failed: a refused connection, a reset, a name that does not resolve, an
    /// HTTP error status other than 404 and 401/403.
    #[error("network error: {reason}")]
    Network {
        /// What failed.
        reason: String,
    },
    /// Something took longer than it may.
    #[error("timed out after {after:?}: {what}")]
    Timeout {
        /// What timed out.
        what: String,
        /// How long it was given.
        after: Duration,
    },
    /// aria2 reported an error the kinds above do not cover.
    #[error("download failed (aria2 error {code}): {message}")]
    Download {
        /// aria2's error code (its exit status list).
        code: i64,
        /// aria2's message.
        message: String,
    },
    /// aria2 cannot be reached or keeps dying.
    #[error("aria2 is unavailable: {reason}")]
    Aria2Unavailable {
        /// Why.
        reason: String,
    },
    /// Telegram refused or failed an upload.
    #[error("upload to Telegram failed: {reason}")]
    Telegram {
        /// Telegram's description or the transport error.
        reason: String,
        /// When Telegram asked to wait (429).
        retry_after: Option<Duration>,
    },
    /// rclone failed a transfer.
    #[error("rclone failed{}: {message}", code.map(|c| format!(" (exit {c})")).unwrap_or_default())]
    Rclone {
        /// rclone's exit status, when it exited.
        code: Option<i32>,
        /// rclone's last error line.
        message: String,
    },
    /// 7-Zip could not zip or extract a task's files (`-z`, `-e`).
    #[error("{what}: {reason}")]
    Archive {
        /// The step, e.g. "extracting a.zip".
        what: String,
        /// Why, e.g. "wrong password".
        reason: String,
    },
    /// The task was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The store failed to record a step.
    #[error("store: {0}")]
    Store(String),
    /// Another instance holds the task now (its lease was taken over): this instance
    /// stops working on it.
    #[error("task {task} is held by another instance now")]
    Fenced {
        /// The task.
        task: i64,
    },
    /// A setting cannot be used.
    #[error("invalid setting {setting} = {value}: expected {expected}")]
    Config {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
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

    /// Whether trying the same task again later may succeed (network trouble, a timeout,
    /// aria2 or Telegram being unavailable, a full disk that may be freed).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Network { .. }
                | ErrorKind::Timeout { .. }
                | ErrorKind::Aria2Unavailable { .. }
                | ErrorKind::DiskFull { .. }
                | ErrorKind::Telegram { .. }
                | ErrorKind::Store(_)
        )
    }

    /// How long to wait before retrying, when the other side said (a Telegram 429).
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.kind {
            ErrorKind::Telegram { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the task was cancelled rather than failed.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, ErrorKind::Cancelled)
    }

    /// An I/O error on `path`: [`ErrorKind::DiskFull`] for "no space left on device",
    /// [`ErrorKind::Io`] otherwise.
    pub fn io(path: impl std::fmt::Display, e: &std::io::Error) -> Self {
        let kind = if e.raw_os_error() == Some(28) {
            ErrorKind::DiskFull { what: path.to_string() }
        } else {
            ErrorKind::Io { path: path.to_string(), reason: e.to_string() }
        };
        Self::new(kind)
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
    fn predicates_and_messages() {
        let e = Error::new(ErrorKind::Telegram {
            reason: "Too Many Requests".into(),
            retry_after: Some(Duration::from_secs(3)),
        });
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = Error::from(ErrorKind::NotFound { what: "http://h/a.iso (HTTP 404)".into() });
        assert!(!e.is_retryable() && e.retry_after().is_none());
        assert_eq!(e.to_string(), "not found: http://h/a.iso (HTTP 404)");
        let e = Error::from(ErrorKind::Rclone { code: Some(3), message: "directory not found".into() });
        assert_eq!(e.to_string(), "rclone failed (exit 3): directory not found");
        assert!(Error::from(ErrorKind::Cancelled).is_cancelled());
        let full = Error::io("/dl/1/a.bin", &std::io::Error::from_raw_os_error(28));
        assert!(matches!(full.kind(), ErrorKind::DiskFull { .. }), "{full:?}");
    }
}
