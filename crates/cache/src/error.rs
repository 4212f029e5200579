//! The crate's error type.

use std::sync::Arc;
use std::time::Duration;

/// Anything that can go wrong in a cache operation: what went wrong is its
/// [`kind`](Error::kind); the predicates say what a caller can do about it.
///
/// Cloning is cheap: every caller waiting on one `get_or_load` receives the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An entry weighs more than the space a single shard may hold, so caching it would
    /// evict everything else (or could never fit). Nothing was inserted and nothing was
    /// evicted.
    #[error(
        "entry of {weight} bytes refused: larger than the {limit}-byte share of one shard \
         (max_bytes {max_bytes} over {shards} shard(s)); raise max_bytes, lower shards, or do not cache it"
    )]
    Oversized {
        /// The entry's weight as the weigher reported it.
        weight: usize,
        /// The most one shard may hold.
        limit: usize,
        /// The whole cache's budget.
        max_bytes: usize,
        /// The number of shards the budget is divided among.
        shards: usize,
    },
    /// A builder setting is out of range, or the builder was used where it cannot work.
    #[error("invalid cache setting {setting} = {value}: expected {expected}")]
    InvalidConfig {
        /// The setting, e.g. `shards`.
        setting: &'static str,
        /// The value given (a URL with its password redacted).
        value: String,
        /// What was expected instead.
        expected: String,
    },
    /// A remote tier failed or did not answer in time (reads turn this into a miss).
    #[error("cache backend failed: {reason}")]
    Backend {
        /// What failed, as the backend or the timeout reported it.
        reason: String,
    },
    /// A value could not be encoded for, or decoded from, a remote tier. A custom
    #[cfg_attr(feature = "redis", doc = "[`Codec`](crate::Codec)")]
    #[cfg_attr(not(feature = "redis"), doc = "`Codec` (the `redis` feature's)")]
    /// returns `ErrorKind::Codec { reason }.into()`.
    #[error("cache codec failed: {reason}")]
    Codec {
        /// What could not be encoded or decoded, and why.
        reason: String,
    },
    /// The loader passed to `get_or_load` failed. Every caller waiting on the same key
    /// receives this same error; the failure is not cached.
    #[error("cache loader failed: {0}")]
    Load(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    pub(crate) fn config(setting: &'static str, value: impl ToString, expected: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig { setting, value: value.to_string(), expected: expected.into() })
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn backend(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backend { reason: reason.into() })
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn codec(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Codec { reason: reason.into() })
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// Whether the same call can succeed later unchanged: a loader or backend failure.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Load(_) | ErrorKind::Backend { .. })
    }

    /// How long to wait before retrying, when known: the cache never knows (a backend
    /// call has already waited its timeout), so this is always `None`. Present so that
    /// every mltb crate's error answers the same two questions.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// Whether the entry was refused for its size.
    pub fn is_oversized(&self) -> bool {
        matches!(self.kind, ErrorKind::Oversized { .. })
    }

    /// Whether a setting could not be used: retrying will not help.
    pub fn is_config(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidConfig { .. })
    }

    /// Whether a remote tier failed or did not answer in time.
    pub fn is_backend(&self) -> bool {
        matches!(self.kind, ErrorKind::Backend { .. })
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_and_messages() {
        let o = Error::new(ErrorKind::Oversized { weight: 51, limit: 50, max_bytes: 100, shards: 2 });
        assert!(o.is_oversized() && !o.is_retryable() && !o.is_config());
        assert!(o.to_string().contains("entry of 51 bytes"), "{o}");
        let c = Error::config("shards", 0, "at least 1");
        assert!(c.is_config() && !c.is_retryable());
        assert_eq!(c.to_string(), "invalid cache setting shards = 0: expected at least 1");
        assert!(matches!(c.kind(), ErrorKind::InvalidConfig { setting: "shards", .. }));
        let b = Error::backend("no answer within 100ms");
        assert!(b.is_backend() && b.is_retryable());
        assert_eq!(b.retry_after(), None);
        let l = Error::new(ErrorKind::Load(Arc::new(std::io::Error::other("db down"))));
        assert!(l.is_retryable());
        assert!(std::error::Error::source(&l).is_some_and(|s| s.to_string() == "db down"));
        let k: Error = ErrorKind::Codec { reason: "bad".into() }.into();
        assert!(matches!(k.clone().into_kind(), ErrorKind::Codec { .. }));
    }
}
