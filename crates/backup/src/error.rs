//! What went wrong, naming the file and what was expected.

use std::path::Path;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A backup, verify, restore or prune that could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database could not be read, copied or checked.
    #[error("{path}: SQLite: {reason}")]
    Sqlite {
        /// The database.
        path: String,
        /// SQLite's message.
        reason: String,
    },
    /// A file is not a good backup: what is wrong with it.
    #[error("{path} is not a usable backup: {reason}")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong, e.g. "truncated: the trailer is missing".
        reason: String,
    },
    /// The backup was made by a newer mltb than this one.
    #[error(
        "{path} holds schema version {found}; this mltb-backup knows up to {supported}: restore it with a newer mltb"
    )]
    NewerSchema {
        /// The backup.
        path: String,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// Another process holds a lock this operation needs.
    #[error("{what} (lock held on {path})")]
    Locked {
        /// Who holds it, and what to do.
        what: String,
        /// The lock file.
        path: String,
    },
    /// Nothing to work on.
    #[error("{0}")]
    NotFound(String),
    /// An argument cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// rclone could not copy, list or delete on the remote.
    #[error("{target}: rclone: {reason}")]
    Remote {
        /// The remote (`name:path`).
        target: String,
        /// What rclone said, or why it could not run.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }

    pub(crate) fn sqlite(path: &Path, e: &rusqlite::Error) -> Self {
        Self::Sqlite { path: path.display().to_string(), reason: e.to_string() }
    }

    pub(crate) fn damaged(path: &Path, reason: impl Into<String>) -> Self {
        Self::Damaged { path: path.display().to_string(), reason: reason.into() }
    }
}
