//! The batcher handle: submit items, flush, shut down.

mod builder;
mod policy;
mod worker;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

pub use builder::{BatcherBuilder, DEFAULT_MAX_DELAY, DEFAULT_MAX_ITEMS, DEFAULT_QUEUE_CAPACITY};
use policy::Slot;
use worker::{Msg, Shared};

use crate::{Error, Result, Stats, TrySubmitError};

type Weigher<I> = Arc<dyn Fn(&I) -> usize + Send + Sync>;

/// A handle to a batcher: items submitted through any clone are gathered into batches
/// for one [`BatchHandler`](crate::BatchHandler), and each submitter gets its own item's result.
///
/// Cloning is cheap (an `Arc`). When the last handle is dropped the worker handles
/// everything already queued and then stops, as with [`shutdown`](Self::shutdown).
pub struct Batcher<I, O> {
    inner: Arc<Inner<I, O>>,
}

struct Inner<I, O> {
    tx: mpsc::UnboundedSender<Msg<I, O>>,
    shared: Arc<Shared>,
    weigher: Option<Weigher<I>>,
    done: watch::Receiver<bool>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<I, O> fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("closed", &self.is_closed())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<I> Batcher<I, ()> {
    /// Settings for a new batcher; the output type comes from the handler given to
    /// [`BatcherBuilder::build`].
    pub fn builder() -> BatcherBuilder<I> {
        BatcherBuilder::new()
    }
}

impl<I, O> Batcher<I, O> {
    /// Submits an item and waits for its own result, waiting first for queue room when
    /// the queue is full.
    ///
    /// Cancel safety: if this future is dropped while waiting for room, the item was
    /// never queued and is never handled. Once queued it is handled exactly once, even
    /// if the future is dropped (the result is then discarded).
    ///
    /// # Errors
    ///
    /// [`Error::is_closed`] when the batcher was shut down before the item was queued;
    /// otherwise the handler's error, panic or result-count mismatch for its batch.
    // No tracing span here: this is the hot path, one call per item.
    pub async fn submit(&self, item: I) -> Result<O> {
        self.enqueue(item).await?.await
    }

    /// Queues an item, waiting for room, and returns a future of its result without
    /// waiting for it. Use it to queue many items from one task.
    ///
    /// # Errors
    ///
    /// [`Error::is_closed`] when the batcher was shut down before the item was queued.
    pub async fn enqueue(&self, item: I) -> Result<Pending<O>> {
        let Ok(permit) = self.inner.shared.permits.acquire().await else {
            return Err(Error::closed());
        };
        // The permit comes back when the worker hands the item to the handler.
        permit.forget();
        self.send(item).map_err(|_| Error::closed())
    }

    /// Queues an item if there is room right now, without waiting.
    ///
    /// # Errors
    ///
    /// The item comes back in [`TrySubmitError::Full`] when `queue_capacity` items are
    /// waiting, or [`TrySubmitError::Closed`] after shutdown.
    pub fn try_submit(&self, item: I) -> Result<Pending<O>, TrySubmitError<I>> {
        match self.inner.shared.permits.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(tokio::sync::TryAcquireError::NoPermits) => return Err(TrySubmitError::Full(item)),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(TrySubmitError::Closed(item)),
        }
        self.send(item).map_err(TrySubmitError::Closed)
    }

    fn send(&self, item: I) -> Result<Pending<O>, I> {
        let weight = self.inner.weigher.as_ref().map_or(0, |weigh| weigh(&item));
        let (reply, rx) = oneshot::channel();
        let slot = Slot { payload: (item, reply), weight, at: Instant::now() };
        match self.inner.tx.send(Msg::Item(slot)) {
            Ok(()) => Ok(Pending { rx }),
            Err(mpsc::error::SendError(msg)) => {
                // The worker is gone: make later calls fail fast.
                self.inner.shared.permits.close();
                match msg {
                    Msg::Item(slot) => Err(slot.payload.0),
                    // `send` only ever sends items.
                    Msg::Flush(_) | Msg::Shutdown => unreachable!("send sent a non-item"),
                }
            }
        }
    }

    /// Sends everything queued now to the handler as soon as a handler slot is free,
    /// without waiting out `max_delay`, and resolves once all items queued before the
    /// call have been handled (their results delivered). Items queued later are not
    /// waited for. After shutdown it resolves once the batcher has drained.
    #[tracing::instrument(skip_all)]
    pub async fn flush(&self) {
        let (waiter, done) = oneshot::channel();
        if self.inner.tx.send(Msg::Flush(waiter)).is_ok() && done.await.is_ok() {
            return;
        }
        self.stopped().await;
    }

    /// Stops accepting items (pending and later `submit`s fail with
    /// [`Error::is_closed`]), hands everything already queued to the handler, and
    /// resolves once every handler call has ended. Safe to call from several handles
    /// or several times. It waits for the handler however long it takes; bound it with
    /// `tokio::time::timeout` if the handler may hang.
    #[tracing::instrument(skip_all)]
    pub async fn shutdown(&self) {
        self.inner.shared.permits.close();
        // Fails only when the worker is already stopping; then there is nothing to ask.
        let _ = self.inner.tx.send(Msg::Shutdown);
        self.stopped().await;
    }

    async fn stopped(&self) {
        let mut done = self.inner.done.clone();
        // An error means the worker task is gone, which is as stopped as it gets.
        let _ = done.wait_for(|stopped| *stopped).await;
    }

    /// Whether the batcher has stopped accepting items.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.permits.is_closed()
    }

    /// A snapshot of the built-in counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.counters.snapshot(self.inner.shared.queue_depth())
    }
}

/// The result of one queued item, from [`Batcher::enqueue`] or [`Batcher::try_submit`].
///
/// Dropping it does not unqueue the item: it is still handled, and its result discarded.
#[must_use = "the item is handled either way; await this to learn its result"]
pub struct Pending<O> {
    rx: oneshot::Receiver<Result<O>>,
}

impl<O> fmt::Debug for Pending<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl<O> Future for Pending<O> {
    type Output = Result<O>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The sender is dropped unanswered only if the worker task died (its runtime
        // shut down), so the item can no longer be handled.
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or_else(|_| Err(Error::closed())))
    }
}
