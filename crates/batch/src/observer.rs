//! Metrics hooks: what the worker reports about each batch.

use std::fmt;
use std::time::Duration;

/// Why a batch was cut and handed to the handler when it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushReason {
    /// The batch reached `max_items`, or the byte bound.
    Full,
    /// Handler calls were in flight but a slot was free, and the oldest item had waited
    /// `max_delay`.
    Delay,
    /// No handler call was in flight, so the items went at once.
    Idle,
    /// [`Batcher::flush`](crate::Batcher::flush) asked for everything queued.
    Flush,
    /// The batcher is shutting down (an explicit shutdown, or every handle dropped).
    Shutdown,
}

impl FlushReason {
    /// Every reason, in declaration order.
    pub const ALL: [FlushReason; 5] =
        [FlushReason::Full, FlushReason::Delay, FlushReason::Idle, FlushReason::Flush, FlushReason::Shutdown];

    /// A short lowercase name, for metric labels: `full`, `delay`, `idle`, `flush`, `shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::Full => "full",
            FlushReason::Delay => "delay",
            FlushReason::Idle => "idle",
            FlushReason::Flush => "flush",
            FlushReason::Shutdown => "shutdown",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FlushReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch just handed to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dispatched {
    /// Items in the batch.
    pub size: usize,
    /// Their total weight by the builder's weigher (0 without one).
    pub bytes: usize,
    /// Why the batch was cut now.
    pub reason: FlushReason,
    /// Items still waiting after this batch was cut.
    pub queue_depth: usize,
    /// Handler calls in flight, this one included.
    pub in_flight: usize,
}

/// How a handler call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchOutcome {
    /// The handler returned one output per item.
    Ok,
    /// The handler returned an error; every item got it.
    Error,
    /// The handler panicked; every item got [`ErrorKind::Panicked`](crate::ErrorKind::Panicked).
    Panicked,
    /// The handler returned the wrong number of outputs.
    ResultCount,
}

/// A batch whose handler call just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Completed {
    /// Items in the batch.
    pub size: usize,
    /// Why the batch was cut.
    pub reason: FlushReason,
    /// How long the handler call took.
    pub duration: Duration,
    /// How it ended.
    pub outcome: BatchOutcome,
}

/// Hooks the worker calls for every batch, for metrics and logs. Both default to no-ops.
///
/// They run on the worker task between batches, so keep them cheap (bump a counter,
/// record a histogram). A panicking hook is caught and logged; it does not stop the batcher.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use mltb_batch::{BatchObserver, Dispatched};
///
/// #[derive(Debug, Default)]
/// struct LargestBatch(AtomicUsize);
///
/// impl BatchObserver for LargestBatch {
///     fn on_dispatch(&self, batch: &Dispatched) {
///         self.0.fetch_max(batch.size, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait BatchObserver: Send + Sync + 'static {
    /// A batch was handed to the handler.
    fn on_dispatch(&self, batch: &Dispatched) {
        let _ = batch;
    }

    /// A handler call ended (successfully or not).
    fn on_complete(&self, batch: &Completed) {
        let _ = batch;
    }
}

/// The default observer: does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoopObserver;

impl BatchObserver for NoopObserver {}
