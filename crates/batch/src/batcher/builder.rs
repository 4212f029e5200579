//! Settings for a [`Batcher`], and spawning its worker.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};

use super::policy::Limits;
use super::worker::{Shared, Worker};
use super::{Batcher, Inner, Weigher};
use crate::observer::NoopObserver;
use crate::stats::Counters;
use crate::{BatchHandler, BatchObserver, Error, ErrorKind, Result};

/// Items per batch unless [`BatcherBuilder::max_items`] says otherwise.
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// How long an item may wait for a batch unless [`BatcherBuilder::max_delay`] says otherwise.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_millis(10);
/// Items accepted and not yet handled, unless [`BatcherBuilder::queue_capacity`] says otherwise.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// Settings for a [`Batcher`]; start from [`Batcher::builder`].
pub struct BatcherBuilder<I> {
    max_items: usize,
    max_bytes: Option<usize>,
    max_delay: Duration,
    queue_capacity: usize,
    max_concurrency: usize,
    weigher: Option<Weigher<I>>,
    observer: Arc<dyn BatchObserver>,
}

impl<I> fmt::Debug for BatcherBuilder<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatcherBuilder")
            .field("max_items", &self.max_items)
            .field("max_bytes", &self.max_bytes)
            .field("max_delay", &self.max_delay)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_concurrency", &self.max_concurrency)
            .field("weigher", &self.weigher.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

impl<I> Default for BatcherBuilder<I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I> BatcherBuilder<I> {
    /// The defaults: 100 items, 10 ms, no byte bound, a queue of 1024, one call in flight.
    pub fn new() -> Self {
        Self {
            max_items: DEFAULT_MAX_ITEMS,
            max_bytes: None,
            max_delay: DEFAULT_MAX_DELAY,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_concurrency: 1,
            weigher: None,
            observer: Arc::new(NoopObserver),
        }
    }

    /// The most items in one batch (at least 1; default 100).
    pub fn max_items(mut self, max_items: usize) -> Self {
        self.max_items = max_items;
        self
    }

    /// How long an item may wait for more items to join its batch while handler calls
    /// are in flight but a slot is free (default 10 ms). Irrelevant with one call in
    /// flight: then a batch goes the moment the handler is free. See the crate's
    /// `# Design` for the exact bound.
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The most total weight in one batch, by the [`weigher`](Self::weigher) (which must be
    /// set too). An item that alone weighs more goes in a batch of its own.
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// How much an item counts against [`max_bytes`](Self::max_bytes). Runs once per item,
    /// in the submitting task.
    pub fn weigher(mut self, weigher: impl Fn(&I) -> usize + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// The most items accepted and not yet handed to the handler (at least 1; default
    /// 1024). When it is reached, [`Batcher::submit`] waits and [`Batcher::try_submit`]
    /// returns the item. A capacity below `max_items` also caps batches at that size.
    pub fn queue_capacity(mut self, queue_capacity: usize) -> Self {
        self.queue_capacity = queue_capacity;
        self
    }

    /// How many handler calls may be in flight at once (at least 1; default 1;
    /// `usize::MAX` for no limit). Above 1
    /// the handler must cope with concurrent calls, and results of later batches may
    /// arrive before those of earlier ones (each item still gets its own).
    pub fn max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency;
        self
    }

    /// Hooks called for every batch (default: none).
    pub fn observer(mut self, observer: impl BatchObserver) -> Self {
        self.observer = Arc::new(observer);
        self
    }

    /// Checks the settings and spawns the worker on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] names a setting out of range;
    /// [`ErrorKind::NoRuntime`] when called outside a tokio runtime.
    pub fn build<H>(self, handler: H) -> Result<Batcher<I, H::Output>>
    where
        I: Send + 'static,
        H: BatchHandler<I>,
    {
        let invalid = |setting, expected| Error::new(ErrorKind::InvalidConfig { setting, expected });
        if self.max_items == 0 {
            return Err(invalid("max_items", "at least 1"));
        }
        if self.max_concurrency == 0 {
            return Err(invalid("max_concurrency", "at least 1"));
        }
        if self.queue_capacity == 0 || self.queue_capacity > Semaphore::MAX_PERMITS {
            return Err(invalid("queue_capacity", "at least 1 and at most usize::MAX >> 3"));
        }
        match self.max_bytes {
            Some(0) => return Err(invalid("max_bytes", "at least 1")),
            Some(_) if self.weigher.is_none() => {
                return Err(invalid("max_bytes", "a weigher as well, set with `weigher(..)`"));
            }
            _ => {}
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::new(ErrorKind::NoRuntime))?;

        let shared = Arc::new(Shared {
            permits: Semaphore::new(self.queue_capacity),
            capacity: self.queue_capacity,
            counters: Counters::default(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = watch::channel(false);
        let worker = Worker {
            handler,
            rx,
            shared: Arc::clone(&shared),
            limits: Limits {
                max_items: self.max_items,
                max_bytes: self.max_bytes.unwrap_or(usize::MAX),
                max_delay: self.max_delay,
                max_concurrency: self.max_concurrency,
            },
            observer: self.observer,
            done: done_tx,
        };
        runtime.spawn(worker.run());
        Ok(Batcher { inner: Arc::new(Inner { tx, shared, weigher: self.weigher, done: done_rx }) })
    }
}
