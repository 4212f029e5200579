//! The crate's error type.

use std::sync::Arc;

/// What went wrong in a cache operation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// A builder setting is out of range.
    #[error("invalid cache configuration: {0}")]
    Config(String),
    /// A remote tier failed or did not answer in time (reads turn this into a miss).
    #[error("cache backend failed: {0}")]
    Backend(String),
    /// A value could not be encoded for, or decoded from, a remote tier.
    #[error("cache codec failed: {0}")]
    Codec(String),
    /// The loader passed to `get_or_load` failed. Every caller waiting on the same key
    /// receives this same error; the failure is not cached.
    #[error("cache loader failed: {0}")]
    Load(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// `true` for a loader or backend failure: trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Load(_) | Error::Backend(_))
    }

    /// `true` when the entry was refused for its size.
    pub fn is_oversized(&self) -> bool {
        matches!(self, Error::Oversized { .. })
    }
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
