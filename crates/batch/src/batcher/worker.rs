//! The task that owns the handler: forms batches, calls the handler, delivers results.

use std::any::Any;
use std::collections::VecDeque;
use std::error::Error as StdError;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::policy::{Limits, Queue, Slot};
use crate::stats::Counters;
use crate::{
    BatchHandler, BatchObserver, BatchOutcome, Completed, Dispatched, Error, ErrorKind, FlushReason, Result,
};

/// Where an item's result goes.
pub(crate) type Reply<O> = oneshot::Sender<Result<O>>;

/// What the handles send the worker, in one channel so that a flush or shutdown is
/// ordered after every item accepted before it.
pub(crate) enum Msg<I, O> {
    Item(Slot<(I, Reply<O>)>),
    Flush(oneshot::Sender<()>),
    Shutdown,
}

/// State shared by the handles and the worker.
#[derive(Debug)]
pub(crate) struct Shared {
    /// One permit per free queue place; taken on submit, given back when the item is
    /// handed to the handler. Closed on shutdown.
    pub(crate) permits: Semaphore,
    pub(crate) capacity: usize,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn queue_depth(&self) -> usize {
        self.capacity.saturating_sub(self.permits.available_permits())
    }
}

/// How many messages the worker takes off the channel per wake-up.
const RECV_CHUNK: usize = 256;

pub(crate) struct Worker<I, H: BatchHandler<I>> {
    pub(crate) handler: H,
    pub(crate) rx: mpsc::UnboundedReceiver<Msg<I, H::Output>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) limits: Limits,
    pub(crate) observer: Arc<dyn BatchObserver>,
    pub(crate) done: watch::Sender<bool>,
}

/// A handler call that ended.
struct Done<O> {
    first: u64,
    reason: FlushReason,
    replies: Vec<Reply<O>>,
    outcome: Outcome<O>,
    duration: Duration,
}

enum Outcome<O> {
    Ok(Vec<O>),
    Err(Arc<dyn StdError + Send + Sync + 'static>),
    Panicked(String),
}

impl<I, H> Worker<I, H>
where
    I: Send + 'static,
    H: BatchHandler<I>,
{
    pub(crate) async fn run(self) {
        let Worker { handler, mut rx, shared, limits, observer, done } = self;
        let mut queue: Queue<(I, Reply<H::Output>)> = Queue::new(limits);
        // (handled once every item numbered below this is, the waiting flush)
        let mut flushes: VecDeque<(u64, oneshot::Sender<()>)> = VecDeque::new();
        let mut in_flight = FuturesUnordered::new();
        // Room for the calls usually in flight; `max_concurrency` may be `usize::MAX`
        // ("no limit"), which no allocation can reserve.
        let mut in_flight_firsts: Vec<u64> = Vec::with_capacity(limits.max_concurrency.min(64));
        let mut msgs = Vec::with_capacity(RECV_CHUNK);
        let mut rx_open = true;

        loop {
            let now = Instant::now();
            while let Some(reason) = queue.reason(now, in_flight.len()) {
                let (first, bytes, drain) = queue.cut();
                let (items, replies): (Vec<I>, Vec<Reply<H::Output>>) =
                    drain.map(|slot| slot.payload).unzip();
                let size = items.len();
                shared.permits.add_permits(size);
                Counters::add(&shared.counters.dispatched, size as u64);
                Counters::add(&shared.counters.batches, 1);
                Counters::add(&shared.counters.in_flight, 1);
                Counters::add(&shared.counters.by_reason[reason.index()], 1);
                in_flight_firsts.push(first);
                in_flight.push(call(&handler, items, replies, first, reason));
                let info =
                    Dispatched { size, bytes, reason, queue_depth: queue.len(), in_flight: in_flight.len() };
                observe(|| observer.on_dispatch(&info));
            }

            let outstanding = in_flight_firsts
                .iter()
                .copied()
                .chain(queue.front_seq())
                .min()
                .unwrap_or_else(|| queue.next_seq());
            while flushes.front().is_some_and(|(below, _)| *below <= outstanding) {
                if let Some((_, waiter)) = flushes.pop_front() {
                    let _ = waiter.send(());
                }
            }

            if !rx_open && queue.is_empty() && in_flight.is_empty() {
                break;
            }
            let deadline = queue.deadline(in_flight.len());

            tokio::select! {
                biased;
                n = rx.recv_many(&mut msgs, RECV_CHUNK), if rx_open => {
                    if n == 0 {
                        // Every handle is gone, or a shutdown closed the channel and it is drained.
                        rx_open = false;
                        queue.close();
                    }
                    for msg in msgs.drain(..) {
                        match msg {
                            Msg::Item(slot) => {
                                queue.push(slot);
                                Counters::add(&shared.counters.submitted, 1);
                            }
                            Msg::Flush(waiter) => flushes.push_back((queue.flush(), waiter)),
                            Msg::Shutdown => {
                                queue.close();
                                // Refuse new items but keep draining what is buffered.
                                rx.close();
                            }
                        }
                    }
                }
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    in_flight_firsts.retain(|first| *first != done.first);
                    shared.counters.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    let info = deliver(done, &shared.counters);
                    observe(|| observer.on_complete(&info));
                }
                () = sleep_until(deadline), if deadline.is_some() => {}
            }
        }

        shared.permits.close();
        for (_, waiter) in flushes {
            let _ = waiter.send(());
        }
        tracing::debug!("batcher drained and stopped");
        done.send_replace(true);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

/// Calls the handler for one batch, turning an error or a panic into an outcome.
async fn call<I, H: BatchHandler<I>>(
    handler: &H,
    items: Vec<I>,
    replies: Vec<Reply<H::Output>>,
    first: u64,
    reason: FlushReason,
) -> Done<H::Output> {
    let started = Instant::now();
    // The call itself sits inside the caught future, so a handler that panics before
    // returning its future is caught too.
    let result = AssertUnwindSafe(async { handler.handle(items).await }).catch_unwind().await;
    let outcome = match result {
        Ok(Ok(outputs)) => Outcome::Ok(outputs),
        Ok(Err(e)) => Outcome::Err(Arc::from(e.into())),
        Err(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
    };
    Done { first, reason, replies, outcome, duration: started.elapsed() }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

/// Sends each item its result; a dropped `submit` future just means nobody listens.
fn deliver<O>(done: Done<O>, counters: &Counters) -> Completed {
    let Done { reason, replies, outcome, duration, .. } = done;
    let size = replies.len();
    let fail_all = |replies: Vec<Reply<O>>, error: Error| {
        for reply in replies {
            let _ = reply.send(Err(error.clone()));
        }
    };
    let outcome = match outcome {
        Outcome::Ok(outputs) if outputs.len() == size => {
            for (reply, output) in replies.into_iter().zip(outputs) {
                let _ = reply.send(Ok(output));
            }
            BatchOutcome::Ok
        }
        Outcome::Ok(outputs) => {
            tracing::warn!(
                expected = size,
                actual = outputs.len(),
                "batch handler returned the wrong number of results"
            );
            Counters::add(&counters.failed_batches, 1);
            let kind = ErrorKind::ResultCount { expected: size, actual: outputs.len() };
            fail_all(replies, Error::new(kind));
            BatchOutcome::ResultCount
        }
        Outcome::Err(e) => {
            tracing::debug!(error = %e, size, "batch handler failed");
            Counters::add(&counters.failed_batches, 1);
            fail_all(replies, Error::new(ErrorKind::Handler(e)));
            BatchOutcome::Error
        }
        Outcome::Panicked(message) => {
            tracing::warn!(%message, size, "batch handler panicked");
            Counters::add(&counters.panicked_batches, 1);
            fail_all(replies, Error::new(ErrorKind::Panicked { message }));
            BatchOutcome::Panicked
        }
    };
    Completed { size, reason, duration, outcome }
}

/// Runs an observer hook; a panicking hook is logged, not allowed to stop the worker.
fn observe(hook: impl FnOnce()) {
    if std::panic::catch_unwind(AssertUnwindSafe(hook)).is_err() {
        tracing::warn!("batch observer panicked; ignoring");
    }
}
