//! The seam: [`RateLimiter`], and [`RateLimiterExt`] for waiting until admitted.

use std::future::Future;
use std::sync::Arc;

use crate::Denied;

/// Decides, without blocking, whether cells for a key are admitted now.
///
/// The trait is dyn-compatible (`Box<dyn RateLimiter<Key = u64>>` works); the async
/// waiting lives in [`RateLimiterExt`], which every `RateLimiter` (trait objects too)
/// gets for free.
///
/// ```
/// use mltb_ratelimit::{DirectLimiter, Quota, RateLimiter};
///
/// let limiter = DirectLimiter::new("2/s".parse()?);
/// let boxed: Box<dyn RateLimiter<Key = ()>> = Box::new(limiter);
/// assert!(boxed.check(&()).is_ok());
/// assert!(boxed.check(&()).is_ok());
/// assert!(boxed.check(&()).unwrap_err().retry_after().is_some());
/// # Ok::<(), mltb_ratelimit::Error>(())
/// ```
pub trait RateLimiter: Send + Sync {
    /// What is limited separately: `()` for one bucket, a user id for keyed limiters.
    type Key: ?Sized;

    /// Takes `n` cells for `key` if they are available now.
    ///
    /// `n == 0` is always admitted and takes nothing. Fails with
    /// [`Denied::NotUntil`] when the caller should wait, and with
    /// [`Denied::InsufficientCapacity`] when `n` exceeds the burst (waiting cannot help).
    fn check_n(&self, key: &Self::Key, n: u32) -> Result<(), Denied>;

    /// Takes one cell for `key` if available now.
    fn check(&self, key: &Self::Key) -> Result<(), Denied> {
        self.check_n(key, 1)
    }
}

impl<L: RateLimiter + ?Sized> RateLimiter for &L {
    type Key = L::Key;

    fn check_n(&self, key: &Self::Key, n: u32) -> Result<(), Denied> {
        (**self).check_n(key, n)
    }
}

impl<L: RateLimiter + ?Sized> RateLimiter for Arc<L> {
    type Key = L::Key;

    fn check_n(&self, key: &Self::Key, n: u32) -> Result<(), Denied> {
        (**self).check_n(key, n)
    }
}

impl<L: RateLimiter + ?Sized> RateLimiter for Box<L> {
    type Key = L::Key;

    fn check_n(&self, key: &Self::Key, n: u32) -> Result<(), Denied> {
        (**self).check_n(key, n)
    }
}

/// Waiting on any [`RateLimiter`] with tokio's timer.
pub trait RateLimiterExt: RateLimiter {
    /// Waits until one cell for `key` is admitted, and takes it.
    ///
    /// Fails only when waiting cannot help ([`Denied::InsufficientCapacity`]).
    fn until_ready<'a>(&'a self, key: &'a Self::Key) -> impl Future<Output = Result<(), Denied>> + Send + 'a
    where
        Self::Key: Sync,
    {
        self.until_ready_n(key, 1)
    }

    /// Waits until `n` cells for `key` are admitted, and takes them.
    ///
    /// Sleeps exactly the reported `retry_after` between checks; other callers may take
    /// the cells first, in which case it sleeps again.
    fn until_ready_n<'a>(
        &'a self,
        key: &'a Self::Key,
        n: u32,
    ) -> impl Future<Output = Result<(), Denied>> + Send + 'a
    where
        Self::Key: Sync,
    {
        async move {
            loop {
                match self.check_n(key, n) {
                    Ok(()) => return Ok(()),
                    Err(denied) => match denied.retry_after() {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => return Err(denied),
                    },
                }
            }
        }
    }
}

impl<L: RateLimiter + ?Sized> RateLimiterExt for L {}
