//! The crate's error type and the reasons a check can be refused.

use std::time::Duration;

/// Anything that can go wrong in this crate: what went wrong is its [`kind`](Error::kind);
/// the predicates say what a caller can do about it.
///
/// A refused check is not an error of misuse: the limiters return [`Denied`] for it. An
/// `Error` carries one only when a caller turned it into one with `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A quota string could not be parsed.
    #[error(
        "invalid quota {input:?}: {reason}; expected RATE/PERIOD [burst N], \
         e.g. \"10/s\", \"20/min burst 5\" or \"5/2s\""
    )]
    InvalidQuota {
        /// The text that was given.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A builder or constructor was given a value it cannot use.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `max_keys`.
        what: &'static str,
        /// The value given and what was expected.
        reason: String,
    },
    /// A check was refused.
    #[error(transparent)]
    Denied(Denied),
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    pub(crate) fn config(what: &'static str, reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig { what, reason: reason.into() })
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// Whether a quota or a setting could not be used: retrying will not help.
    pub fn is_config(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidQuota { .. } | ErrorKind::InvalidConfig { .. })
    }

    /// The refusal, when this error is a refused check.
    pub fn denied(&self) -> Option<&Denied> {
        match &self.kind {
            ErrorKind::Denied(denied) => Some(denied),
            _ => None,
        }
    }

    /// Whether the same call can succeed later unchanged: a check refused for now
    /// (not one asking for more than the burst, and not bad configuration).
    pub fn is_retryable(&self) -> bool {
        self.retry_after().is_some()
    }

    /// How long to wait before the same call can succeed, when waiting can help.
    pub fn retry_after(&self) -> Option<Duration> {
        self.denied().and_then(Denied::retry_after)
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl From<Denied> for Error {
    fn from(denied: Denied) -> Self {
        Self::new(ErrorKind::Denied(denied))
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a [`RateLimiter`](crate::RateLimiter) check did not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// Over the limit now; the same check succeeds at [`NotUntil::retry_after`].
    #[error("rate limited; retry after {:?}", .0.retry_after())]
    NotUntil(NotUntil),
    /// More cells were asked for than the bucket holds, so waiting will not help.
    #[error("{requested} cells can never be admitted at once: the capacity (burst) is {capacity}")]
    InsufficientCapacity {
        /// Cells asked for.
        requested: u32,
        /// The most cells one check can take (the burst; 0 for a tier with no limit configured).
        capacity: u32,
    },
    /// A keyed limiter holds its maximum number of keys and none is idle, so a new key
    /// cannot be tracked without forgetting a key that is still limited.
    #[error("key table is full ({capacity} keys, none idle); retry after {retry_after:?}")]
    KeysExhausted {
        /// The key cap.
        capacity: usize,
        /// When the first tracked key becomes idle and can be evicted.
        retry_after: Duration,
    },
}

impl Denied {
    /// How long to wait before the same check can succeed; `None` if it never can.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Denied::NotUntil(n) => Some(n.retry_after()),
            Denied::KeysExhausted { retry_after, .. } => Some(*retry_after),
            Denied::InsufficientCapacity { .. } => None,
        }
    }

    /// Whether waiting [`retry_after`](Self::retry_after) can help.
    pub fn is_retryable(&self) -> bool {
        self.retry_after().is_some()
    }
}

/// A check was over the limit; says exactly when it would be admitted.
///
/// Times are nanoseconds on the limiter's [`Clock`](crate::Clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotUntil {
    now: u64,
    earliest: u64,
}

impl NotUntil {
    pub(crate) fn new(now: u64, earliest: u64) -> Self {
        Self { now, earliest }
    }

    /// How long after the check the same check is admitted (if nothing else is admitted
    /// in between).
    pub fn retry_after(&self) -> Duration {
        Duration::from_nanos(self.earliest.saturating_sub(self.now))
    }

    /// The clock reading, in nanoseconds, at which the check is admitted.
    pub fn earliest_nanos(&self) -> u64 {
        self.earliest
    }

    /// The clock reading, in nanoseconds, when the check was made.
    pub fn checked_at_nanos(&self) -> u64 {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_and_retryable() {
        let d = Denied::NotUntil(NotUntil::new(10, 25));
        assert_eq!(d.retry_after(), Some(Duration::from_nanos(15)));
        assert!(d.is_retryable());
        let e: Error = d.into();
        assert_eq!(e.retry_after(), Some(Duration::from_nanos(15)));
        assert!(e.is_retryable() && !e.is_config());
        assert_eq!(e.denied(), Some(&d));

        let e: Error = Denied::InsufficientCapacity { requested: 5, capacity: 2 }.into();
        assert_eq!(e.retry_after(), None);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("capacity (burst) is 2"), "{e}");
        assert!(matches!(e.into_kind(), ErrorKind::Denied(Denied::InsufficientCapacity { capacity: 2, .. })));
    }

    #[test]
    fn config_errors_are_not_retryable() {
        let e = Error::config("max_keys", "0; expected at least 1");
        assert!(e.is_config() && !e.is_retryable());
        assert_eq!(e.retry_after(), None);
        assert_eq!(e.denied(), None);
        assert!(matches!(e.kind(), ErrorKind::InvalidConfig { what: "max_keys", .. }));
        assert_eq!(e.to_string(), "invalid max_keys: 0; expected at least 1");
        let q = crate::Quota::parse("10/fortnight").unwrap_err();
        assert!(q.is_config() && matches!(q.kind(), ErrorKind::InvalidQuota { .. }));
    }
}
