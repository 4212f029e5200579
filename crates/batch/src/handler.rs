//! The seam: what a batcher hands its batches to.

use std::future::Future;

use crate::BoxError;

/// Handles a batch of items at once, returning one output per item, in order.
///
/// The batcher calls [`handle`](Self::handle) with up to `max_items` items (and at most
/// `max_bytes` by the weigher), in the order they were submitted, and gives the `i`th
/// output to the `i`th item's submitter:
///
/// - `Ok(outputs)` with `outputs.len() == items.len()`: each item gets its own output.
///   When items can fail one by one (a row that violates a constraint), make
///   `Output` itself a `Result`.
/// - `Ok(outputs)` with any other length: every item of the batch fails with
///   [`ErrorKind::ResultCount`](crate::ErrorKind::ResultCount); nothing panics.
/// - `Err(e)`: every item of the batch fails with the same
///   [`ErrorKind::Handler`](crate::ErrorKind::Handler), sharing `e` behind an `Arc`.
/// - a panic: every item of the batch fails with
///   [`ErrorKind::Panicked`](crate::ErrorKind::Panicked); later batches are handled as usual.
///
/// `handle` takes `&self` because, with `max_concurrency` above one, several calls may
/// be in flight at once; keep mutable state behind a lock or an atomic. The returned
/// future must be `Send` (the worker runs on the tokio runtime); implementors may write
/// `async fn handle(..)`.
///
/// Any `Fn(Vec<I>) -> impl Future<Output = Result<Vec<O>, E>>` closure is a handler:
///
/// ```
/// # use mltb_batch::BatchHandler;
/// fn assert_handler<I, H: BatchHandler<I>>(_: &H) {}
/// let double = |items: Vec<u32>| async move {
///     Ok::<_, std::io::Error>(items.into_iter().map(|i| i * 2).collect::<Vec<_>>())
/// };
/// assert_handler(&double);
/// ```
pub trait BatchHandler<I>: Send + Sync + 'static {
    /// What each item's submitter receives.
    type Output: Send + 'static;
    /// Why a whole batch failed. Anything that converts into a [`BoxError`] works:
    /// your own error type (recoverable with
    /// [`Error::downcast_handler_ref`](crate::Error::downcast_handler_ref)), `String`, `&'static str`.
    type Error: Into<BoxError> + Send + 'static;

    /// Handles one batch; see the trait documentation for what each outcome means.
    fn handle(&self, items: Vec<I>) -> impl Future<Output = Result<Vec<Self::Output>, Self::Error>> + Send;
}

impl<I, F, Fut, O, E> BatchHandler<I> for F
where
    F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<O>, E>> + Send,
    O: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    type Output = O;
    type Error = E;

    fn handle(&self, items: Vec<I>) -> impl Future<Output = Result<Vec<O>, E>> + Send {
        self(items)
    }
}
