//! The outbound scheduler: every send, edit and delete goes through it, so the bot stays
//! under Telegram's limits, keeps order within a chat, coalesces status edits, and
//! retries 429s and transient failures without losing a request.

mod request;
mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use mltb_ratelimit::Quota;
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use self::request::{
    AbortFlag, BlockFn, BlockHook, ChatKey, FileSlice, ProgressHook, Request, Response, SendDocumentSlice,
};
use crate::{Error, Result};

/// Carries one request to Telegram; the seam between the scheduler and HTTP.
///
/// [`Client`](crate::Client) is the production transport; tests and benches use an
/// in-process one.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` once (no retries: the scheduler retries).
    fn execute(&self, request: &Request) -> impl Future<Output = Result<Response>> + Send;
}

/// Limits shared with the other processes that send for the same bot (several instances
/// of it): the scheduler waits on them before every attempt, once its own
/// [`Limits`] let the request go, so that the processes together stay within Telegram's
/// limits. The bot implements it over Redis (`mltb-ratelimit`'s `check_all`).
pub trait SharedLimits: Send + Sync + 'static {
    /// Waits until a request to `chat` (`None`: not tied to a chat) may go by the shared
    /// limits, and takes its cells in them.
    fn acquire<'a>(&'a self, chat: Option<&'a ChatKey>) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

    /// Called once the answer to a request to `chat` is in, before the scheduler sends
    /// to that chat again: holds the chat's shared limit back for `gap`
    /// ([`Limits::answer_gap`]), so that no process's next request to it goes sooner
    /// after this one arrived. The default holds nothing.
    fn answered<'a>(
        &'a self,
        chat: &'a ChatKey,
        gap: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        let _ = (chat, gap);
        Box::pin(std::future::ready(()))
    }
}

/// The limits the scheduler keeps. Each must hold for *any* window, so quotas have burst 1
/// (a GCRA quota admits `burst + rate·t` in a window `t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// All requests together. Default `30/1100ms burst 1`.
    pub global: Quota,
    /// Per chat. Default `1/1100ms burst 1`.
    pub per_chat: Quota,
    /// Per group or channel (negative ids), on top of `per_chat`. Default `20/66s burst 1`.
    pub per_group: Quota,
    /// The least time from the answer to a request to a chat to the next request to that
    /// chat, on top of `per_chat`. Telegram counts a request when it arrives, at the
    /// latest when it answers, so this keeps two requests to a chat this far apart as the
    /// server counts them however late the first arrived (a slow network, a stalled
    /// process): `per_chat`'s headroom covers only so much. Default 1 s, Telegram's
    /// window; zero turns it off. Uploads, which run beside the chat's other requests,
    /// hold its next request back from their answer too.
    pub answer_gap: Duration,
}

impl Default for Limits {
    /// Telegram's limits (30/s overall, 1/s per chat, 20/min per group) with 10% headroom:
    /// the server counts arrivals, and network jitter can bring two requests sent a
    /// second apart closer than a second.
    fn default() -> Self {
        let q = |s: &str| Quota::parse(s).unwrap_or_else(|e| unreachable!("built-in quota {s}: {e}"));
        Self {
            global: q("30/1100ms burst 1"),
            per_chat: q("1/1100ms burst 1"),
            per_group: q("20/66s burst 1"),
            answer_gap: Duration::from_secs(1),
        }
    }
}

/// Which requests a 429 holds back for its `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FreezeScope {
    /// The chat that got it; everything when a second chat gets one while the first is
    /// still frozen (the limit hit is then evidently the global one). The default.
    #[default]
    Auto,
    /// Only the chat that got it.
    Chat,
    /// Everything, as teloxide's `Throttle` does.
    Global,
}

/// Retry policy for failed requests.
///
/// No wait is longer than a day: a longer `retry_after` from the server, default or
/// backoff is cut to one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after 5xx, network errors and timeouts. Default 5.
    pub max_retries: u32,
    /// First backoff; doubled per retry. Default 500 ms.
    pub base_backoff: Duration,
    /// Longest backoff. Default 30 s.
    pub max_backoff: Duration,
    /// Retries after 429 (each waits the server's `retry_after`). Default 10.
    pub max_rate_limited_retries: u32,
    /// Wait after a 429 without `retry_after`. Default 1 s.
    pub default_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_rate_limited_retries: 10,
            default_retry_after: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `attempt` (1-based): `base · 2^(attempt-1)`, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Counters of what the scheduler did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchedulerStats {
    /// Requests submitted.
    pub submitted: u64,
    /// Requests sent to the transport (attempts, retries included).
    pub attempts: u64,
    /// Edits merged into a later edit of the same message before being sent.
    pub coalesced: u64,
    /// Edits skipped because the message already shows that content.
    pub unchanged: u64,
    /// 429 responses received.
    pub rate_limited: u64,
    /// Retries after 5xx, network errors and timeouts.
    pub retried: u64,
    /// Requests that resolved to an error.
    pub failed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    submitted: AtomicU64,
    attempts: AtomicU64,
    coalesced: AtomicU64,
    unchanged: AtomicU64,
    rate_limited: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    pub(crate) fn add(field: &AtomicU64, n: u64) {
        field.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> SchedulerStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SchedulerStats {
            submitted: l(&self.submitted),
            attempts: l(&self.attempts),
            coalesced: l(&self.coalesced),
            unchanged: l(&self.unchanged),
            rate_limited: l(&self.rate_limited),
            retried: l(&self.retried),
            failed: l(&self.failed),
        }
    }
}

/// Builds a [`Scheduler`].
#[derive(Debug, Clone)]
pub struct SchedulerBuilder {
    limits: Limits,
    freeze: FreezeScope,
    retry: RetryPolicy,
    capacity: usize,
    shared: Option<Arc<dyn SharedLimits>>,
}

impl std::fmt::Debug for dyn SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedLimits")
    }
}

impl SchedulerBuilder {
    /// The limits to keep.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// What a 429 freezes.
    pub fn freeze_scope(mut self, scope: FreezeScope) -> Self {
        self.freeze = scope;
        self
    }

    /// The retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Limits shared with other processes sending for the same bot, awaited before every
    /// attempt (retries included) after the scheduler's own. None by default.
    pub fn shared_limits(mut self, shared: Arc<dyn SharedLimits>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Most requests submitted and not yet resolved; `submit` waits beyond it. Default 10 000.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Starts the scheduler's worker on the current tokio runtime.
    pub fn build<T: Transport>(self, transport: T) -> Scheduler {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let permits = Arc::new(Semaphore::new(self.capacity));
        let worker = worker::Worker::new(
            Arc::new(transport),
            self.limits,
            self.freeze,
            self.retry,
            counters.clone(),
            self.shared,
        );
        tokio::spawn(worker.run(rx));
        Scheduler { inner: Arc::new(Inner { tx, permits, counters, capacity: self.capacity }) }
    }
}

/// Sends requests to Telegram within its limits. Cheap to clone; the worker stops (after
/// draining) when [`shutdown`](Self::shutdown) is called or every clone is dropped.
///
/// ```
/// use mltb_telegram::scheduler::{Request, Response, Scheduler, Transport};
///
/// struct Echo;
/// impl Transport for Echo {
///     async fn execute(&self, _: &Request) -> mltb_telegram::Result<Response> {
///         Ok(Response::Done)
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let scheduler = Scheduler::builder().build(Echo);
/// let ticket = scheduler.submit(Request::delete_message(42, 7)).await?;
/// assert_eq!(ticket.await?, Response::Done);
/// scheduler.shutdown().await;
/// # Ok::<(), mltb_telegram::Error>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: mpsc::UnboundedSender<worker::Msg>,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    capacity: usize,
}

impl Scheduler {
    /// A builder with Telegram's default limits.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder {
            limits: Limits::default(),
            freeze: FreezeScope::default(),
            retry: RetryPolicy::default(),
            capacity: 10_000,
            shared: None,
        }
    }

    /// Queues `request`, waiting while the queue is full. The [`Ticket`] resolves to the
    /// request's result; dropping it does not cancel the request.
    pub async fn submit(&self, request: Request) -> Result<Ticket> {
        let permit = self.inner.permits.clone().acquire_owned().await.map_err(|_| Error::Closed)?;
        self.enqueue(request, permit)
    }

    /// Queues `request` if there is room now, else [`Error::QueueFull`].
    pub fn try_submit(&self, request: Request) -> Result<Ticket> {
        let permit = self.inner.permits.clone().try_acquire_owned().map_err(|e| match e {
            tokio::sync::TryAcquireError::Closed => Error::Closed,
            tokio::sync::TryAcquireError::NoPermits => Error::QueueFull { capacity: self.inner.capacity },
        })?;
        self.enqueue(request, permit)
    }

    /// Submits `request` and waits for its result.
    pub async fn send(&self, request: Request) -> Result<Response> {
        self.submit(request).await?.await
    }

    fn enqueue(&self, request: Request, permit: tokio::sync::OwnedSemaphorePermit) -> Result<Ticket> {
        let (reply, rx) = oneshot::channel();
        Counters::add(&self.inner.counters.submitted, 1);
        self.inner
            .tx
            .send(worker::Msg::Submit(Box::new(worker::Job::new(request, reply, permit))))
            .map_err(|_| Error::Closed)?;
        Ok(Ticket { rx })
    }

    /// Stops taking requests (new submissions get [`Error::Closed`]) and waits until
    /// every queued request has resolved.
    pub async fn shutdown(&self) {
        self.inner.permits.close();
        let (done, wait) = oneshot::channel();
        if self.inner.tx.send(worker::Msg::Shutdown(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// What the scheduler has done so far.
    pub fn stats(&self) -> SchedulerStats {
        self.inner.counters.snapshot()
    }

    /// Requests submitted and not yet resolved.
    pub fn pending(&self) -> usize {
        self.inner.capacity - self.inner.permits.available_permits()
    }
}

/// The result of a submitted request; resolves when the request is done.
#[derive(Debug)]
#[must_use = "a ticket resolves to the request's result"]
pub struct Ticket {
    rx: oneshot::Receiver<Result<Response>>,
}

impl Future for Ticket {
    type Output = Result<Response>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

#[cfg(test)]
mod tests;
