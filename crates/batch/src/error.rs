//! Errors: what an item's result can fail with, and why `try_submit` refused an item.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error, the form a [`BatchHandler`](crate::BatchHandler)'s error is turned into.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The result of one item, or of building a batcher.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an item got no output, or why a batcher could not be built.
///
/// Cheap to clone: a handler error is shared (behind an [`Arc`]) by every item of the
/// batch it failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The handler returned an error for the batch this item was in; every item of the
    /// batch gets the same error.
    #[error("batch handler failed: {0}")]
    Handler(#[source] Arc<dyn StdError + Send + Sync + 'static>),
    /// The handler panicked while handling the batch this item was in. The batcher
    /// keeps running; only this batch failed.
    #[error("batch handler panicked: {message}")]
    Panicked {
        /// The panic message, when it was a string.
        message: String,
    },
    /// The batcher was shut down (or its worker is gone) before the item was accepted.
    #[error("batcher is closed")]
    Closed,
    /// The handler returned a number of outputs different from the number of items it
    /// was given, so no output can be matched to its item; every item of the batch fails.
    #[error("batch handler returned {actual} results for a batch of {expected} items")]
    ResultCount {
        /// Items in the batch.
        expected: usize,
        /// Results the handler returned.
        actual: usize,
    },
    /// A builder setting is out of range.
    #[error("invalid batcher setting `{setting}`: {expected}")]
    InvalidConfig {
        /// The builder method, e.g. `max_items`.
        setting: &'static str,
        /// What was expected instead.
        expected: &'static str,
    },
    /// `build` was called outside a tokio runtime, so the worker could not be spawned.
    #[error("Batcher::build must be called within a tokio runtime")]
    NoRuntime,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    pub(crate) fn closed() -> Self {
        Self::new(ErrorKind::Closed)
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// Whether submitting the same item again can succeed: its batch failed as a whole
    /// (the handler returned an error or panicked), which another item of the batch or
    /// a passing fault may have caused, and a new submit lands in a new batch.
    ///
    /// `false` for a closed batcher, a configuration error, and a handler that returned
    /// the wrong number of results (a bug in the handler, not a passing fault). The
    /// item did reach the handler ([`reached_handler`](Self::reached_handler)), so
    /// resubmit only items whose handling is idempotent; the handler's own error says
    /// more ([`downcast_handler_ref`](Self::downcast_handler_ref)).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Handler(_) | ErrorKind::Panicked { .. })
    }

    /// How long to wait before submitting again, when known: the batcher never knows
    /// (a handler's error that carries a delay is reached through
    /// [`downcast_handler_ref`](Self::downcast_handler_ref)), so this is always `None`.
    /// Present so that every mltb crate's error answers the same two questions.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// The batcher no longer accepts items; submitting again will not help.
    pub fn is_closed(&self) -> bool {
        matches!(self.kind, ErrorKind::Closed)
    }

    /// The handler returned an error for this item's batch.
    pub fn is_handler(&self) -> bool {
        matches!(self.kind, ErrorKind::Handler(_))
    }

    /// The handler panicked while handling this item's batch.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, ErrorKind::Panicked { .. })
    }

    /// The handler returned the wrong number of results for this item's batch.
    pub fn is_result_count(&self) -> bool {
        matches!(self.kind, ErrorKind::ResultCount { .. })
    }

    /// The item reached the handler (which failed, panicked or miscounted), so whatever
    /// the handler does may have partly happened. `false` for closed batchers and
    /// configuration errors.
    pub fn reached_handler(&self) -> bool {
        self.is_handler() || self.is_panic() || self.is_result_count()
    }

    /// The handler's own error, when the kind is [`ErrorKind::Handler`].
    pub fn handler_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        match &self.kind {
            ErrorKind::Handler(e) => Some(&**e),
            _ => None,
        }
    }

    /// The handler's error as its concrete type `E`, when it is one.
    pub fn downcast_handler_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.handler_error()?.downcast_ref::<E>()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

/// Why [`Batcher::try_submit`](crate::Batcher::try_submit) refused an item; the item is
/// handed back.
#[derive(PartialEq, Eq, thiserror::Error)]
pub enum TrySubmitError<I> {
    /// The queue holds `queue_capacity` items already; try later or use `submit`.
    #[error("batch queue is full")]
    Full(I),
    /// The batcher is shut down.
    #[error("batcher is closed")]
    Closed(I),
}

impl<I> TrySubmitError<I> {
    /// The queue was full; the batcher is still running.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// The batcher is shut down.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }

    /// The refused item.
    pub fn into_inner(self) -> I {
        match self {
            Self::Full(item) | Self::Closed(item) => item,
        }
    }
}

// Manual so that refusing an item does not require the item to be `Debug`.
impl<I> fmt::Debug for TrySubmitError<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk on fire")]
    struct Fire;

    #[test]
    fn handler_error_downcasts_and_displays() {
        let boxed: BoxError = Box::new(Fire);
        let err = Error::new(ErrorKind::Handler(Arc::from(boxed)));
        assert!(err.is_handler());
        assert!(err.reached_handler());
        assert!(!err.is_closed());
        assert!(err.downcast_handler_ref::<Fire>().is_some());
        assert_eq!(err.to_string(), "batch handler failed: disk on fire");
        assert_eq!(StdError::source(&err).map(|e| e.to_string()).as_deref(), Some("disk on fire"));
    }

    #[test]
    fn predicates_match_kinds() {
        let count = Error::new(ErrorKind::ResultCount { expected: 3, actual: 2 });
        assert!(count.is_result_count());
        assert_eq!(count.to_string(), "batch handler returned 2 results for a batch of 3 items");
        assert!(Error::closed().is_closed());
        assert!(!Error::closed().reached_handler());
        let panic = Error::new(ErrorKind::Panicked { message: "boom".into() });
        assert!(panic.is_panic());
        assert!(panic.handler_error().is_none());
    }

    #[test]
    fn retryable_kinds() {
        let boxed: BoxError = Box::new(Fire);
        let handler = Error::new(ErrorKind::Handler(Arc::from(boxed)));
        let panic = Error::new(ErrorKind::Panicked { message: "boom".into() });
        assert!(handler.is_retryable() && panic.is_retryable());
        let count = Error::new(ErrorKind::ResultCount { expected: 3, actual: 2 });
        let config = Error::new(ErrorKind::InvalidConfig { setting: "max_items", expected: "at least 1" });
        for not in [Error::closed(), count, config, Error::new(ErrorKind::NoRuntime)] {
            assert!(!not.is_retryable(), "{not}");
        }
        assert_eq!(handler.retry_after(), None);
        assert!(matches!(panic.into_kind(), ErrorKind::Panicked { message } if message == "boom"));
    }

    #[test]
    fn try_submit_error_returns_item() {
        let full = TrySubmitError::Full(7_u8);
        assert!(full.is_full());
        assert!(!full.is_closed());
        assert_eq!(format!("{full:?}"), "Full(..)");
        assert_eq!(full.into_inner(), 7);
        let closed = TrySubmitError::Closed("x");
        assert!(closed.is_closed());
        assert_eq!(closed.to_string(), "batcher is closed");
    }
}
