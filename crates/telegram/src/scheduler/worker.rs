//! The scheduler's single worker: owns the queues and the limiters, so a decision to send
//! and the cells it takes happen at one instant, with no lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mltb_ratelimit::{Clock, DirectLimiter, KeyedLimiter, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;

use super::request::Content;
use super::{Counters, FreezeScope, Limits, Request, Response, RetryPolicy, SharedLimits, Transport};
use crate::{Error, Result};

/// A clock the worker sets once per decision, so every limiter sees the same instant:
/// checking the chat, group and global buckets and then taking cells from all of them
/// cannot straddle a moment where one of them would have answered differently.
#[derive(Debug, Clone, Default)]
struct FrozenClock(Arc<AtomicU64>);

impl Clock for FrozenClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub(super) enum Msg {
    Submit(Box<Job>),
    Shutdown(oneshot::Sender<()>),
}

struct Done {
    chat: Option<super::ChatKey>,
    /// Set for uploads, which run beside the chat's queue.
    upload: Option<u64>,
    outcome: Result<Response>,
}

pub(super) struct Job {
    request: Request,
    replies: Vec<oneshot::Sender<Result<Response>>>,
    _permits: Vec<OwnedSemaphorePermit>,
    retries: u32,
    rate_limited: u32,
}

impl Job {
    pub(super) fn new(
        request: Request,
        reply: oneshot::Sender<Result<Response>>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self { request, replies: vec![reply], _permits: vec![permit], retries: 0, rate_limited: 0 }
    }

    fn absorb(&mut self, older: Job) {
        self.replies.extend(older.replies);
        self._permits.extend(older._permits);
    }

    fn resolve(self, outcome: &Result<Response>) {
        for reply in self.replies {
            let _ = reply.send(outcome.clone());
        }
    }
}

#[derive(Default)]
struct Chat {
    queue: VecDeque<Job>,
    in_flight: Option<Job>,
    /// Not before this instant: after a 429 (its retry_after), a failure (backoff) or an
    /// answer ([`Limits::answer_gap`]).
    frozen_until: Option<Instant>,
    /// Whether the freeze came from a 429 (for the Auto scope).
    frozen_by_429: bool,
    /// What each message shows, as far as we know, to skip edits that change nothing.
    shown: HashMap<i32, Content>,
}

type ChatId = Option<super::ChatKey>;

/// Messages per chat whose content is remembered; past it the memory is dropped, which
/// only costs an edit the server then answers "not modified".
const MAX_SHOWN_PER_CHAT: usize = 1024;
/// Chats tracked before idle ones (nothing queued, in flight or frozen) are forgotten.
const MAX_CHATS: usize = 10_000;
/// The longest the worker waits for anything: a 429's `retry_after`, a backoff, a rate
/// limiter's next cell. Longer waits (a policy of `Duration::MAX`, a bogus `retry_after`
/// from the server) are cut to this, so no instant computed from one overflows.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// `now + wait`, with `wait` cut to [`MAX_WAIT`].
fn after(now: Instant, wait: Duration) -> Instant {
    let wait = wait.min(MAX_WAIT);
    // An instant a day ahead always exists on a real clock; `now` only keeps this total.
    now.checked_add(wait).unwrap_or(now)
}

pub(super) struct Worker<T> {
    transport: Arc<T>,
    clock: FrozenClock,
    epoch: Instant,
    global: DirectLimiter<FrozenClock>,
    per_chat: KeyedLimiter<super::ChatKey, FrozenClock>,
    per_group: KeyedLimiter<super::ChatKey, FrozenClock>,
    answer_gap: Duration,
    freeze: FreezeScope,
    retry: RetryPolicy,
    counters: Arc<Counters>,
    chats: HashMap<ChatId, Chat>,
    /// Chats with a queued request and nothing in flight, in round-robin order.
    ready: VecDeque<ChatId>,
    global_frozen_until: Option<Instant>,
    in_flight: usize,
    /// Uploads in flight, by id: they hold no chat's lane, so a long upload does not hold
    /// back the chat's status edits.
    uploads: HashMap<u64, Job>,
    next_upload: u64,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: Option<mpsc::UnboundedReceiver<Done>>,
    shared: Option<Arc<dyn SharedLimits>>,
}

impl<T: Transport> Worker<T> {
    pub(super) fn new(
        transport: Arc<T>,
        limits: Limits,
        freeze: FreezeScope,
        retry: RetryPolicy,
        counters: Arc<Counters>,
        shared: Option<Arc<dyn SharedLimits>>,
    ) -> Self {
        let clock = FrozenClock::default();
        let keyed = |q| {
            KeyedLimiter::builder(q)
                .max_keys(100_000)
                .clock(clock.clone())
                .build()
                .unwrap_or_else(|e| unreachable!("a positive key cap is valid: {e}"))
        };
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            transport,
            global: DirectLimiter::with_clock(limits.global, clock.clone()),
            per_chat: keyed(limits.per_chat),
            per_group: keyed(limits.per_group),
            answer_gap: limits.answer_gap,
            clock,
            epoch: Instant::now(),
            freeze,
            retry,
            counters,
            chats: HashMap::new(),
            ready: VecDeque::new(),
            global_frozen_until: None,
            in_flight: 0,
            uploads: HashMap::new(),
            next_upload: 0,
            done_tx,
            done_rx: Some(done_rx),
            shared,
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut done_rx = self.done_rx.take().unwrap_or_else(|| unreachable!("run is called once"));
        let mut shutdown: Vec<oneshot::Sender<()>> = Vec::new();
        let mut intake_open = true;
        loop {
            let wake = self.pump(Instant::now());
            if !intake_open && self.is_idle() {
                break;
            }
            tokio::select! {
                msg = rx.recv(), if intake_open => match msg {
                    Some(Msg::Submit(job)) => self.submit(*job),
                    Some(Msg::Shutdown(ack)) => {
                        shutdown.push(ack);
                        intake_open = false;
                    }
                    None => intake_open = false,
                },
                Some(done) = done_rx.recv() => self.complete(done),
                () = sleep_until(wake) => {}
            }
            // Take whatever else is waiting before deciding, so bursts of edits coalesce.
            while intake_open && let Ok(msg) = rx.try_recv() {
                match msg {
                    Msg::Submit(job) => self.submit(*job),
                    Msg::Shutdown(ack) => {
                        shutdown.push(ack);
                        intake_open = false;
                    }
                }
            }
            while let Ok(done) = done_rx.try_recv() {
                self.complete(done);
            }
        }
        // Requests that raced with shutdown past the intake are refused, never dropped silently.
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Submit(job) => job.resolve(&Err(Error::Closed)),
                Msg::Shutdown(ack) => shutdown.push(ack),
            }
        }
        for ack in shutdown {
            let _ = ack.send(());
        }
    }

    fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.chats.values().all(|c| c.queue.is_empty())
    }

    fn submit(&mut self, job: Job) {
        let key = job.request.chat();
        let chat = self.chats.entry(key.clone()).or_default();
        if let (Request::EditMessageText(_), Some(mid)) = (&job.request, job.request.message_id()) {
            // The latest edit of a message replaces a queued one, keeping its place.
            if let Some(queued) = chat.queue.iter_mut().find(|q| {
                matches!(q.request, Request::EditMessageText(_)) && q.request.message_id() == Some(mid)
            }) {
                let mut job = job;
                std::mem::swap(queued, &mut job);
                queued.absorb(job);
                Counters::add(&self.counters.coalesced, 1);
                return;
            }
            // Skip an edit that would show what the message will show anyway.
            let will_show = match &chat.in_flight {
                Some(f) if f.request.message_id() == Some(mid) => f.request.content(),
                _ => chat.shown.get(&mid).cloned(),
            };
            if will_show.is_some() && will_show == job.request.content() {
                Counters::add(&self.counters.unchanged, 1);
                job.resolve(&Ok(Response::Unchanged));
                return;
            }
        }
        let was_empty = chat.queue.is_empty();
        chat.queue.push_back(job);
        if was_empty && chat.in_flight.is_none() && !self.ready.contains(&key) {
            self.ready.push_back(key);
        }
    }

    /// Sends every request that may go now; returns when to look again.
    fn pump(&mut self, now: Instant) -> Option<Instant> {
        let nanos = u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.clock.0.store(nanos, Ordering::Relaxed);
        if let Some(until) = self.global_frozen_until {
            if until > now {
                return Some(until);
            }
            self.global_frozen_until = None;
        }
        let mut wake: Option<Instant> = None;
        let mut earliest = |at: Instant| wake = Some(wake.map_or(at, |w| w.min(at)));
        let mut rounds = self.ready.len();
        while rounds > 0 {
            rounds -= 1;
            let Some(key) = self.ready.pop_front() else { break };
            let Some(chat) = self.chats.get_mut(&key) else { continue };
            if chat.in_flight.is_some() || chat.queue.is_empty() {
                // Put back in `ready` when its request completes.
                continue;
            }
            if let Some(until) = chat.frozen_until {
                if until > now {
                    earliest(until);
                    self.ready.push_back(key);
                    continue;
                }
                chat.frozen_until = None;
                chat.frozen_by_429 = false;
            }
            // Every bucket must have a cell at this instant before any cell is taken.
            let mut wait = Duration::ZERO;
            if let Some(k) = &key {
                wait = wait.max(wait_for(&self.per_chat, k));
                if k.is_group() {
                    wait = wait.max(wait_for(&self.per_group, k));
                }
            }
            let global_wait = wait_for(&self.global, &());
            if !global_wait.is_zero() {
                // Nothing else can go either.
                self.ready.push_front(key);
                earliest(after(now, global_wait));
                break;
            }
            if !wait.is_zero() {
                earliest(after(now, wait));
                self.ready.push_back(key);
                continue;
            }
            // Each check succeeds: every bucket had a cell at this same instant.
            let taken = self.global.check(&()).is_ok()
                && key.as_ref().is_none_or(|k| {
                    self.per_chat.check(k).is_ok() && (!k.is_group() || self.per_group.check(k).is_ok())
                });
            if !taken {
                // Only a full key table (100 000 chats, none idle) can refuse here.
                tracing::error!("a rate limiter refused a cell it reported free; retrying in 1 s");
                earliest(after(now, Duration::from_secs(1)));
                self.ready.push_back(key);
                continue;
            }
            let Some(job) = chat.queue.pop_front() else { continue };
            let request = job.request.clone();
            let upload = if request.is_upload() {
                let id = self.next_upload;
                self.next_upload += 1;
                self.uploads.insert(id, job);
                if !chat.queue.is_empty() {
                    // Visit it again in this round, to learn when its next request may go.
                    self.ready.push_back(key.clone());
                    rounds += 1;
                }
                Some(id)
            } else {
                chat.in_flight = Some(job);
                None
            };
            self.in_flight += 1;
            Counters::add(&self.counters.attempts, 1);
            let transport = self.transport.clone();
            let done = self.done_tx.clone();
            let shared = self.shared.clone();
            let answer_gap = self.answer_gap;
            tokio::spawn(async move {
                // The chat's lane stays held meanwhile, so its order is kept.
                if let Some(shared) = &shared {
                    shared.acquire(key.as_ref()).await;
                }
                let outcome = transport.execute(&request).await;
                if let (Some(shared), Some(chat)) = (&shared, &key)
                    && !answer_gap.is_zero()
                {
                    shared.answered(chat, answer_gap).await;
                }
                let _ = done.send(Done { chat: key, upload, outcome });
            });
        }
        wake
    }

    fn complete(&mut self, Done { chat: key, upload, outcome }: Done) {
        self.in_flight -= 1;
        if self.chats.len() > MAX_CHATS {
            let now = Instant::now();
            self.chats.retain(|k, c| {
                *k == key
                    || !c.queue.is_empty()
                    || c.in_flight.is_some()
                    || c.frozen_until.is_some_and(|u| u > now)
            });
        }
        let now = Instant::now();
        let taken = match upload {
            Some(id) => self.uploads.remove(&id),
            None => self.chats.get_mut(&key).and_then(|c| c.in_flight.take()),
        };
        let Some(mut job) = taken else { return };
        let outcome = match outcome {
            Err(e) if e.is_not_modified() => Ok(Response::Unchanged),
            other => other,
        };
        let retry_in = match &outcome {
            Err(e) if e.is_too_many_requests() => {
                Counters::add(&self.counters.rate_limited, 1);
                job.rate_limited += 1;
                let wait = e.retry_after().unwrap_or(self.retry.default_retry_after).min(MAX_WAIT);
                let until = after(now, wait);
                let other_frozen = self
                    .chats
                    .iter()
                    .any(|(k, c)| *k != key && c.frozen_by_429 && c.frozen_until.is_some_and(|u| u > now));
                let global = match self.freeze {
                    FreezeScope::Global => true,
                    FreezeScope::Chat => false,
                    FreezeScope::Auto => other_frozen || key.is_none(),
                };
                if global {
                    self.global_frozen_until = Some(self.global_frozen_until.map_or(until, |g| g.max(until)));
                }
                tracing::warn!(method = job.request.method(), ?wait, global, "429 from Telegram; frozen");
                (job.rate_limited <= self.retry.max_rate_limited_retries).then_some((wait, true))
            }
            Err(e) if e.is_retryable() => {
                job.retries += 1;
                tracing::debug!(method = job.request.method(), error = %e, attempt = job.retries, "retrying");
                (job.retries <= self.retry.max_retries)
                    .then(|| (self.retry.backoff(job.retries).min(MAX_WAIT), false))
            }
            _ => None,
        };
        let chat = self.chats.entry(key.clone()).or_default();
        if key.is_some() && !self.answer_gap.is_zero() {
            // The server counted it by now: the chat's next request goes a window later.
            let until = after(now, self.answer_gap);
            chat.frozen_until = Some(chat.frozen_until.map_or(until, |u| u.max(until)));
        }
        if let Some((wait, by_429)) = retry_in {
            Counters::add(&self.counters.retried, u64::from(!by_429));
            let until = after(now, wait);
            chat.frozen_until = Some(chat.frozen_until.map_or(until, |u| u.max(until)));
            chat.frozen_by_429 |= by_429;
            // A newer edit of the same message queued meanwhile supersedes this one.
            let mid = job.request.message_id();
            let newer = match job.request {
                Request::EditMessageText(_) => chat.queue.iter_mut().find(|q| {
                    matches!(q.request, Request::EditMessageText(_)) && q.request.message_id() == mid
                }),
                _ => None,
            };
            match newer {
                Some(newer) => {
                    newer.absorb(job);
                    Counters::add(&self.counters.coalesced, 1);
                }
                None => chat.queue.push_front(job),
            }
        } else {
            match &outcome {
                Ok(resp) => match &job.request {
                    Request::DeleteMessage(p) => {
                        chat.shown.remove(&p.message_id);
                    }
                    Request::EditMessageText(p) => {
                        if let (Some(mid), Some(content)) = (p.message_id, job.request.content()) {
                            remember(&mut chat.shown, mid, content);
                        }
                    }
                    Request::SendMessage(_) => {
                        if let (Some(m), Some(content)) = (resp.message(), job.request.content()) {
                            remember(&mut chat.shown, m.message_id, content);
                        }
                    }
                    _ => {}
                },
                Err(e) => {
                    Counters::add(&self.counters.failed, 1);
                    tracing::warn!(method = job.request.method(), error = %e, "request failed");
                }
            }
            job.resolve(&outcome);
        }
        if !chat.queue.is_empty() && chat.in_flight.is_none() && !self.ready.contains(&key) {
            self.ready.push_back(key);
        }
    }
}

fn remember(shown: &mut HashMap<i32, Content>, message_id: i32, content: Content) {
    if shown.len() >= MAX_SHOWN_PER_CHAT && !shown.contains_key(&message_id) {
        shown.clear();
    }
    shown.insert(message_id, content);
}

/// How long until `limiter` has a cell for `key` at the frozen instant (zero: now).
fn wait_for<L>(limiter: &L, key: &L::Key) -> Duration
where
    L: RateLimiter + Remaining<L::Key>,
{
    if limiter.has_cell(key) {
        return Duration::ZERO;
    }
    // Denied checks take nothing, and the clock does not move within a decision.
    match limiter.check(key) {
        // Cannot happen at one instant; if it did, a cell was taken early, which only
        // makes the limit stricter.
        Ok(()) => Duration::ZERO,
        Err(denied) => denied.retry_after().unwrap_or(Duration::from_secs(1)).max(Duration::from_nanos(1)),
    }
}

trait Remaining<K: ?Sized> {
    fn has_cell(&self, key: &K) -> bool;
}

impl Remaining<()> for DirectLimiter<FrozenClock> {
    fn has_cell(&self, _: &()) -> bool {
        self.remaining() >= 1
    }
}

impl Remaining<super::ChatKey> for KeyedLimiter<super::ChatKey, FrozenClock> {
    fn has_cell(&self, key: &super::ChatKey) -> bool {
        self.remaining(key) >= 1
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
