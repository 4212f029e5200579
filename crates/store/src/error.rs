//! The crate's error type.

use std::path::PathBuf;

/// Anything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field is longer than the store accepts (see [`limits`](crate::limits)).
    #[error("{field} is {actual} bytes long; the limit is {limit} bytes")]
    TooLong {
        /// The field, e.g. `task.source`.
        field: &'static str,
        /// Its limit in bytes.
        limit: usize,
        /// Its length in bytes.
        actual: usize,
    },
    /// A field's value cannot be stored as given.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, e.g. `task.name`.
        field: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// A row that the call needs does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// What was looked for, e.g. `task`.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// Another instance holds task `id` now (its lease ran out and was taken over, or
    /// it was released): this instance's write was refused by the fencing token.
    #[error("task {id} is held by another instance now (its lease was taken over); this write was refused")]
    Fenced {
        /// The task.
        id: i64,
    },
    /// A task cannot move from its state to the one asked for.
    #[error("task {id} is {from}; it cannot become {to}")]
    InvalidTransition {
        /// The task.
        id: i64,
        /// Its current state.
        from: String,
        /// The state asked for.
        to: &'static str,
    },
    /// The database file is not an SQLite database, or is damaged. Nothing was written to it.
    #[error(
        "{path} is not a usable SQLite database ({detail}); it was left untouched: restore it from a \
         backup, or move it away to start with an empty store"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The database was written by a newer version of the program. Nothing was changed.
    #[error(
        "{location} has schema version {found}, newer than the {supported} this program knows; it was left \
         untouched: run the newer program, or restore a backup made before the upgrade"
    )]
    NewerSchema {
        /// The file path or the (password-less) database URL.
        location: String,
        /// The version found in the database.
        found: i64,
        /// The newest version this program knows.
        supported: i64,
    },
    /// A row read back from the database did not have the expected shape.
    #[error("unexpected data in column {column}: {reason}")]
    Decode {
        /// The column.
        column: String,
        /// What was wrong.
        reason: String,
    },
    /// The connection pool failed (timeout, backend down, SQLite call failed).
    #[error(transparent)]
    Pool(#[from] mltb_pool::Error),
    /// An SQLite statement failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL statement failed.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A batched write failed as part of its whole batch (e.g. the transaction failed).
    #[error("batched write failed: {0}")]
    Batch(#[from] mltb_batch::Error),
    /// A cached read failed to load.
    #[error("cached read failed: {0}")]
    Cache(#[from] mltb_cache::Error),
    /// The store could not be set up (cache or batcher settings).
    #[error("store setup failed: {0}")]
    Setup(String),
}

impl Error {
    /// Whether the same call may succeed later without a change (pool timeouts, a
    /// backend that is down, a batch that failed as a whole).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Pool(e) => e.is_retryable(),
            Error::Batch(e) => e.reached_handler(),
            Error::Cache(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// Whether the call was refused because of its input (too long, invalid), before
    /// anything reached the database.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::TooLong { .. } | Error::Invalid { .. })
    }

    /// Whether a row the call needed was missing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    pub(crate) fn decode(column: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Decode { column: column.into(), reason: reason.into() }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_input_and_the_way_out() {
        let e = Error::TooLong { field: "task.source", limit: 4096, actual: 5000 };
        assert_eq!(e.to_string(), "task.source is 5000 bytes long; the limit is 4096 bytes");
        assert!(e.is_bad_input() && !e.is_retryable());
        let e = Error::NewerSchema { location: "a.db".into(), found: 9, supported: 1 };
        assert!(e.to_string().contains("run the newer program"), "{e}");
        let e = Error::Corrupt { path: "a.db".into(), detail: "file is not a database".into() };
        assert!(e.to_string().contains("left untouched"), "{e}");
    }
}
