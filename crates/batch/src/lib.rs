//! An async batcher for writes that are cheaper together: items submitted one at a time
//! from many tasks are handed to a handler in batches, and each submitter gets its own
//! item's result.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mltb_batch::Batcher;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mltb_batch::Result<()> {
//! // A handler gets a Vec of items and returns one output per item, in order.
//! let batcher = Batcher::builder()
//!     .max_items(100)
//!     .max_delay(Duration::from_millis(5))
//!     .build(|rows: Vec<String>| async move {
//!         // e.g. one multi-row INSERT returning the new ids
//!         Ok::<_, std::io::Error>((0..rows.len() as u64).collect::<Vec<_>>())
//!     })?;
//!
//! let id = batcher.submit("first row".to_owned()).await?;
//! assert_eq!(id, 0);
//!
//! // From many tasks at once, items share batches.
//! let tasks: Vec<_> = (0..10)
//!     .map(|i| {
//!         let batcher = batcher.clone();
//!         tokio::spawn(async move { batcher.submit(format!("row {i}")).await })
//!     })
//!     .collect();
//! for task in tasks {
//!     assert!(task.await.unwrap().is_ok());
//! }
//!
//! batcher.shutdown().await; // handles what is queued, then stops
//! assert!(batcher.submit("late".to_owned()).await.unwrap_err().is_closed());
//! assert_eq!(batcher.stats().dispatched, 11);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! No optional features. The crate needs a tokio runtime (the worker is spawned on the
//! runtime current when [`BatcherBuilder::build`] is called) and uses tokio's `sync`,
//! `time` and `rt` features.
//!
//! - [`BatchHandler`]: the seam; any `Fn(Vec<I>) -> Future<Output = Result<Vec<O>, E>>`
//!   closure is one.
//! - Bounds: [`max_items`](BatcherBuilder::max_items) (default 100), a byte bound
//!   ([`weigher`](BatcherBuilder::weigher) + [`max_bytes`](BatcherBuilder::max_bytes)),
//!   [`max_delay`](BatcherBuilder::max_delay), [`max_concurrency`](BatcherBuilder::max_concurrency).
//! - Backpressure: [`queue_capacity`](BatcherBuilder::queue_capacity); [`Batcher::submit`]
//!   waits for room, [`Batcher::try_submit`] hands the item back.
//! - [`Batcher::flush`], [`Batcher::shutdown`]; dropping every handle drains too.
//! - Metrics: a [`BatchObserver`] on the builder (batch size, [`FlushReason`], queue
//!   depth, handler duration, outcome) and always-on counters in [`Batcher::stats`].
//!
//! # Design
//!
//! **Smart flushing.** One worker task owns the handler. Items wait in the worker's
//! queue only while no handler slot is free or while waiting would help:
//!
//! - *Idle*: when no handler call is in flight, whatever is queued (up to the bounds)
//!   goes at once. A lone item on a quiet batcher is not held back for `max_delay`.
//! - *Full*: when the queue holds a full batch (`max_items`, or `max_bytes` by weight),
//!   it goes as soon as a slot is free.
//! - *Delay*: with `max_concurrency > 1`, while some calls are in flight and a slot is
//!   free, items wait for company until the oldest has waited `max_delay`.
//! - *Flush* / *Shutdown*: everything queued goes as soon as slots allow.
//!
//! With the default single call in flight, batches therefore form exactly while the
//! handler is busy, and grow with load: at saturation they are full, at low load they
//! are single items sent without delay.
//!
//! **Latency bound.** The time from `submit` to the handler call that receives the item
//! is at most `max_delay` while a handler slot is free, and otherwise lasts until a slot
//! frees (one handler call's time) — so no item waits longer than `max_delay` plus a
//! handler call, as long as the load fits: at most `max_items × max_concurrency` items
//! arrive during one handler call. Above that the queue grows, up to `queue_capacity`,
//! and then `submit` waits (backpressure) instead of the queue growing without bound.
//!
//! **Order.** Items go to the handler in the order they were queued, batch after batch;
//! with `max_concurrency == 1` handler calls never overlap, so writes land in order.
//!
//! **Exactly once.** An item is *queued* when `submit`/`enqueue` takes a queue place
//! (the same poll sends it to the worker); a dropped `submit` future before that point
//! means the item was never queued, after it the item is handled exactly once.
//! Shutdown and the last handle's drop both drain the queue, so nothing queued is lost.
//!
//! **Failures stay in their batch.** A handler error is shared (behind an `Arc`) by every
//! item of its batch; a panic is caught (`catch_unwind` around the handler's future) and
//! fails only its batch; a wrong number of results fails the batch with
//! [`ErrorKind::ResultCount`] rather than guessing which output belongs to whom.
//!
//! **Why a semaphore and an unbounded channel.** Queue capacity is a semaphore whose
//! permits are returned when items are handed to the handler, so "queue depth" counts
//! every item accepted and not yet dispatched, not just those still in a channel. The
//! channel itself is then unbounded (its size is bounded by the permits), which lets
//! flush and shutdown markers travel in order with the items without ever waiting for room.

mod batcher;
mod error;
mod handler;
mod observer;
mod stats;

pub use batcher::{
    Batcher, BatcherBuilder, DEFAULT_MAX_DELAY, DEFAULT_MAX_ITEMS, DEFAULT_QUEUE_CAPACITY, Pending,
};
pub use error::{BoxError, Error, ErrorKind, Result, TrySubmitError};
pub use handler::BatchHandler;
pub use observer::{BatchObserver, BatchOutcome, Completed, Dispatched, FlushReason};
pub use stats::Stats;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
