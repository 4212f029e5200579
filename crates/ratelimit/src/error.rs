//! The crate's error type and the reasons a check can be refused.

use std::time::Duration;

/// Anything that can go wrong in this crate: bad configuration or a refused check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// A builder was given a value it cannot use.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `max_keys`.
        what: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// A check was refused.
    #[error(transparent)]
    Denied(#[from] Denied),
}

impl Error {
    /// How long to wait before trying again, when waiting can help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Denied(d) => d.retry_after(),
            _ => None,
        }
    }

    /// Whether the same call can succeed later.
    pub fn is_retryable(&self) -> bool {
        self.retry_after().is_some()
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
        let e: Error = Denied::InsufficientCapacity { requested: 5, capacity: 2 }.into();
        assert_eq!(e.retry_after(), None);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("capacity (burst) is 2"), "{e}");
    }
}
