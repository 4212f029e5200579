//! The driver: one task that watches the engine, ticks on the refresh interval, and keeps
//! each chat's board message in step through the scheduler; and the callback handler
//! that turns button presses into page changes and cancels.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use frankenstein::ParseMode;
use frankenstein::methods::{EditMessageTextParams, SendMessageParams};
use frankenstein::types::{
    CallbackQuery, InlineKeyboardMarkup, LinkPreviewOptions, MaybeInaccessibleMessage, ReplyMarkup,
    ReplyParameters,
};
use mltb_engine::Engine;
use mltb_store::{Backend, Task, TaskFilter, TaskState};
use mltb_telegram::Error as TgError;
use mltb_telegram::scheduler::{Request, Response, Scheduler};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::BoardConfig;
use super::auth::{Authorizer, TaskUserOnly};
use super::callback::{CallbackOutcome, CallbackReply};
use super::error::{Error, Result};
use super::notice::{Notice, notices};
use super::render::{Confirm, Frame, TaskLine, render};
use super::sign::{Action, Signer};

/// Reads the wall clock in Unix milliseconds.
type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;
/// Says where a task's leeched files were sent.
type LeechChat = Arc<dyn Fn(&Task) -> i64 + Send + Sync>;

/// Tasks created since the last look that are probed in the store per refresh.
const MAX_PROBES: usize = 32;
/// Longest wait after failures before a chat's board is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How long a stopping driver waits for its requests in flight.
const DRAIN: Duration = Duration::from_secs(10);
/// Task ids remembered as notified (ids only grow; this only guards against doubles).
const MAX_NOTIFIED: usize = 4096;

fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Builds a [`Board`].
pub struct BoardBuilder<B: Backend> {
    engine: Engine<B>,
    scheduler: Scheduler,
    config: BoardConfig,
    authorizer: Arc<dyn Authorizer>,
    clock: WallClock,
    leech_chat: LeechChat,
}

impl<B: Backend> std::fmt::Debug for BoardBuilder<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoardBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<B: Backend> BoardBuilder<B> {
    /// Who may cancel a task from its button. Default: [`TaskUserOnly`].
    pub fn authorizer(mut self, authorizer: impl Authorizer + 'static) -> Self {
        self.authorizer = Arc::new(authorizer);
        self
    }

    /// The wall clock, in Unix milliseconds: elapsed times and button ages. Default: the
    /// system clock.
    pub fn clock(mut self, now_ms: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(now_ms);
        self
    }

    /// The chat a task's leeched files went to (where the completion message links).
    /// Default: the task's own chat. A bot with a dump chat returns it here.
    pub fn leech_chat(mut self, chat_of: impl Fn(&Task) -> i64 + Send + Sync + 'static) -> Self {
        self.leech_chat = Arc::new(chat_of);
        self
    }

    /// The board, after checking the config ([`BoardConfig::validate`]).
    pub fn build(self) -> Result<Board<B>> {
        self.config.validate()?;
        let signer = Signer::new(self.config.signing_key.clone())
            .button_ttl(self.config.button_ttl)
            .confirm_ttl(self.config.confirm_ttl);
        Ok(Board {
            shared: Arc::new(Shared {
                engine: self.engine,
                scheduler: self.scheduler,
                config: self.config,
                signer,
                authorizer: self.authorizer,
                clock: self.clock,
                leech_chat: self.leech_chat,
                views: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                running: AtomicBool::new(false),
            }),
        })
    }
}

/// What the users of a chat asked the board for, shared by the callback handler and the
/// driver.
#[derive(Debug, Default)]
struct View {
    page: usize,
    /// A cancel waiting for its confirmation, and when it was asked (Unix ms).
    confirm: Option<(Confirm, i64)>,
    /// Render this chat at the next look, whatever the interval.
    dirty: bool,
    /// Post the board anew at the bottom of the chat.
    repost: bool,
}

struct Shared<B: Backend> {
    engine: Engine<B>,
    scheduler: Scheduler,
    config: BoardConfig,
    signer: Signer,
    authorizer: Arc<dyn Authorizer>,
    clock: WallClock,
    leech_chat: LeechChat,
    views: Mutex<HashMap<i64, View>>,
    wake: Notify,
    running: AtomicBool,
}

impl<B: Backend> Shared<B> {
    fn views(&self) -> std::sync::MutexGuard<'_, HashMap<i64, View>> {
        self.views.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn touch(&self, chat: i64, f: impl FnOnce(&mut View)) {
        let mut views = self.views();
        let view = views.entry(chat).or_default();
        f(view);
        view.dirty = true;
        drop(views);
        self.wake.notify_one();
    }
}

/// The live status board of every chat: one message per chat that lists its tasks,
/// refreshed on an interval through the [`Scheduler`], with paging and cancel buttons.
/// Cheap to clone; clones share everything.
///
/// Start its driver with [`spawn`](Self::spawn); feed it button presses with
/// [`handle_callback`](Self::handle_callback).
pub struct Board<B: Backend> {
    shared: Arc<Shared<B>>,
}

impl<B: Backend> Clone for Board<B> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<B: Backend> std::fmt::Debug for Board<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board").field("config", &self.shared.config).finish_non_exhaustive()
    }
}

impl<B: Backend> Board<B> {
    /// A builder for the board of `engine`'s tasks, sending through `scheduler` (the
    /// bot's one scheduler, so the board's edits share Telegram's limits with
    /// everything else the bot sends).
    pub fn builder(engine: Engine<B>, scheduler: Scheduler, config: BoardConfig) -> BoardBuilder<B> {
        BoardBuilder {
            engine,
            scheduler,
            config,
            authorizer: Arc::new(TaskUserOnly),
            clock: Arc::new(system_now_ms),
            leech_chat: Arc::new(|t: &Task| t.chat),
        }
    }

    /// The signer of the board's buttons.
    pub fn signer(&self) -> &Signer {
        &self.shared.signer
    }

    /// Starts the driver on the current tokio runtime. It first takes over the status
    /// messages recorded in the store (editing them, or posting anew if they are gone),
    /// then keeps every chat's board in step until [`BoardTask::stop`].
    ///
    /// Only one driver may run per board: a second call fails with
    /// [`Error::Running`].
    pub fn spawn(&self) -> Result<BoardTask> {
        if self.shared.running.swap(true, Ordering::AcqRel) {
            return Err(Error::Running);
        }
        let (stop, stop_rx) = watch::channel(false);
        let driver = Driver::new(Arc::clone(&self.shared));
        let running = RunningGuard(Arc::clone(&self.shared));
        let handle = tokio::spawn(async move {
            let _running = running;
            driver.run(stop_rx).await;
        });
        Ok(BoardTask { stop, handle })
    }

    /// Renders `chat`'s board now instead of at the next tick (e.g. right after a task
    /// was submitted there).
    pub fn refresh(&self, chat: i64) {
        self.shared.touch(chat, |_| {});
    }

    /// Posts `chat`'s board anew at the bottom of the chat and deletes the old message
    /// (`/status`). Nothing happens in a chat without tasks.
    pub fn repost(&self, chat: i64) {
        self.shared.touch(chat, |v| v.repost = true);
    }

    /// Handles a press on a board button: checks the signed data against the chat it
    /// was pressed in and the presser, then shows a page, asks for or carries out a
    /// cancel. The bot answers the query with [`CallbackReply::answer`].
    ///
    /// Presses that are not the board's come back as [`CallbackOutcome::NotABoardButton`]
    /// (no data, an inline message) or [`CallbackOutcome::Invalid`] (data the board did
    /// not sign); a bot with other inline buttons routes its own first.
    pub async fn handle_callback(&self, query: &CallbackQuery) -> CallbackReply {
        let shared = &self.shared;
        let Some(data) = query.data.as_deref() else {
            return CallbackReply::new(CallbackOutcome::NotABoardButton);
        };
        let chat = match &query.message {
            Some(MaybeInaccessibleMessage::Message(m)) => m.chat.id,
            Some(MaybeInaccessibleMessage::InaccessibleMessage(m)) => m.chat.id,
            None => return CallbackReply::new(CallbackOutcome::NotABoardButton),
        };
        let presser = i64::try_from(query.from.id).unwrap_or(i64::MAX);
        let now_ms = (shared.clock)();
        let button = match shared.signer.verify(data, chat, now_ms) {
            Ok(b) => b,
            Err(e) => {
                tracing::info!(chat, presser, error = %e, "refused a board button");
                return CallbackReply::new(CallbackOutcome::Invalid(e));
            }
        };
        let running = |task: i64| {
            shared
                .engine
                .tasks()
                .into_iter()
                .find(|t| t.id == task && t.chat == chat)
                .map(|t| TaskLine::from(&t))
        };
        let outcome = match button.action {
            Action::Show { page } => {
                shared.touch(chat, |v| v.page = usize::from(page));
                CallbackOutcome::Shown { page: usize::from(page) }
            }
            Action::Cancel { task } => match running(task) {
                None => CallbackOutcome::NotRunning { task },
                Some(t) if button.user != Some(t.user) => CallbackOutcome::NotAllowed { task },
                Some(t) if !shared.authorizer.may_cancel(presser, &t).await => {
                    CallbackOutcome::NotAllowed { task }
                }
                Some(_) => {
                    // Show the page the task is on, where the confirmation appears.
                    let position =
                        shared.engine.tasks().iter().filter(|t| t.chat == chat).position(|t| t.id == task);
                    let page_size = shared.config.page_size.max(1);
                    shared.touch(chat, |v| {
                        v.confirm = Some((Confirm { task, user: presser }, now_ms));
                        if let Some(p) = position {
                            v.page = p / page_size;
                        }
                    });
                    CallbackOutcome::ConfirmAsked { task }
                }
            },
            Action::ConfirmCancel { task } => match running(task) {
                _ if button.user != Some(presser) => CallbackOutcome::NotYours { task },
                None => CallbackOutcome::NotRunning { task },
                Some(t) if !shared.authorizer.may_cancel(presser, &t).await => {
                    CallbackOutcome::NotAllowed { task }
                }
                Some(_) => {
                    let cancelled = shared.engine.cancel(task);
                    shared.touch(chat, |v| v.confirm = None);
                    if cancelled {
                        tracing::info!(chat, task, by = presser, "task cancelled from the board");
                        CallbackOutcome::Cancelled { task }
                    } else {
                        CallbackOutcome::NotRunning { task }
                    }
                }
            },
            Action::Back { task } => {
                if button.user == Some(presser) {
                    shared.touch(chat, |v| {
                        if v.confirm.is_some_and(|(c, _)| c.task == task) {
                            v.confirm = None;
                        }
                    });
                    CallbackOutcome::KeptRunning { task }
                } else {
                    CallbackOutcome::NotYours { task }
                }
            }
        };
        CallbackReply::new(outcome)
    }
}

/// Clears the board's running flag when the driver ends, even by a panic.
struct RunningGuard<B: Backend>(Arc<Shared<B>>);

impl<B: Backend> Drop for RunningGuard<B> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

/// A running driver; [`stop`](Self::stop) it before shutting the engine and the
/// scheduler down. Dropping it stops the driver too, without waiting for it.
#[derive(Debug)]
pub struct BoardTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl BoardTask {
    /// Stops the driver: it waits (up to 10 s) for the requests it has in flight, so
    /// that the message ids it posted are recorded, and leaves every board message in
    /// place for the next start to take over.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.handle.await {
            tracing::error!(error = %e, "the board's driver ended abnormally");
        }
    }

    /// Whether the driver has ended (it only ends when stopped, or if it panicked).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// What a chat's board message is, as far as the driver knows.
#[derive(Debug, Default)]
struct Post {
    /// The board message, once posted (or taken over from the store).
    message: Option<i32>,
    /// What it shows, when known.
    shown: Option<(String, InlineKeyboardMarkup)>,
    /// A request for this board is in flight: at most one at a time.
    busy: bool,
    /// Needs rendering once it may.
    pending: bool,
    failures: u32,
    retry_at: Option<Instant>,
    /// The tasks' ids and states last rendered: a change renders at once.
    structure: Vec<(i64, TaskState, Option<String>)>,
}

#[derive(Debug)]
enum Op {
    Post {
        shown: (String, InlineKeyboardMarkup),
    },
    Edit {
        shown: (String, InlineKeyboardMarkup),
    },
    Delete,
    /// A completion or failure message, or an old board being replaced: only logged.
    Other(&'static str),
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Post { .. } => "post the board",
            Op::Edit { .. } => "edit the board",
            Op::Delete => "delete the board",
            Op::Other(what) => what,
        }
    }
}

struct Done {
    chat: i64,
    op: Op,
    outcome: Result<Response, TgError>,
}

struct Driver<B: Backend> {
    shared: Arc<Shared<B>>,
    posts: HashMap<i64, Post>,
    /// The engine's tasks at the last look, by id.
    live: BTreeMap<i64, TaskLine>,
    /// Every task id up to here was seen (live, or found finished in the store).
    max_seen: i64,
    notified: BTreeSet<i64>,
    inflight: JoinSet<Done>,
    /// A task left the engine unfinished: the engine is shutting down, and boards whose
    /// tasks went with it are left for the next start rather than deleted.
    engine_stopping: bool,
}

impl<B: Backend> Driver<B> {
    fn new(shared: Arc<Shared<B>>) -> Self {
        Self {
            shared,
            posts: HashMap::new(),
            live: BTreeMap::new(),
            max_seen: 0,
            notified: BTreeSet::new(),
            inflight: JoinSet::new(),
            engine_stopping: false,
        }
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.restore().await;
        let mut changes = self.shared.engine.changes();
        let mut ticker = tokio::time::interval(self.shared.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut tick = false;
            tokio::select! {
                biased;
                stopped = stop.changed() => {
                    if stopped.is_err() || *stop.borrow() {
                        break;
                    }
                }
                Some(done) = self.inflight.join_next(), if !self.inflight.is_empty() => match done {
                    Ok(done) => self.complete(done).await,
                    Err(e) => tracing::error!(error = %e, "a board request's task failed"),
                },
                _ = ticker.tick() => tick = true,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = self.shared.wake.notified() => {}
            }
            self.sync(tick).await;
        }
        self.drain().await;
    }

    /// Takes over the boards recorded in the store and learns which tasks exist.
    async fn restore(&mut self) {
        let store = self.shared.engine.store();
        match store.status_messages().await {
            Ok(messages) => {
                for m in messages {
                    match i32::try_from(m.message_id) {
                        Ok(id) => {
                            let post = Post { message: Some(id), pending: true, ..Post::default() };
                            self.posts.insert(m.chat, post);
                        }
                        Err(_) => tracing::warn!(chat = m.chat, "a stored status message id is out of range"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the stored status messages"),
        }
        match store.tasks_with_files(TaskFilter::Recent(1)).await {
            Ok(latest) => self.max_seen = latest.first().map_or(0, |t| t.task.id),
            Err(e) => tracing::warn!(error = %e, "could not read the latest task id"),
        }
    }

    /// Looks at the engine, tells chats about tasks that ended, and renders the boards
    /// that need it (every board on a tick).
    async fn sync(&mut self, tick: bool) {
        let now_ms = (self.shared.clock)();
        let current: BTreeMap<i64, TaskLine> =
            self.shared.engine.tasks().iter().map(|v| (v.id, TaskLine::from(v))).collect();
        let ended: Vec<i64> = self.live.keys().filter(|id| !current.contains_key(id)).copied().collect();
        let changed_set = !ended.is_empty() || current.keys().any(|id| !self.live.contains_key(id));
        for id in ended {
            self.ended(id).await;
        }
        if tick || changed_set {
            self.probe(&current).await;
        }
        if let Some(&max) = current.keys().next_back() {
            self.max_seen = self.max_seen.max(max);
        }
        self.live = current;

        let mut by_chat: BTreeMap<i64, Vec<TaskLine>> = BTreeMap::new();
        for t in self.live.values() {
            by_chat.entry(t.chat).or_default().push(t.clone());
        }
        let chats: BTreeSet<i64> = by_chat.keys().chain(self.posts.keys()).copied().collect();
        for &chat in &chats {
            let tasks = by_chat.remove(&chat).unwrap_or_default();
            for (op, request) in self.plan(chat, &tasks, tick, now_ms) {
                self.submit(chat, op, request).await;
            }
        }
        // Presses on old boards of chats with nothing left leave no state behind.
        self.shared.views().retain(|chat, _| chats.contains(chat));
    }

    /// What to send for `chat`'s board now, if anything.
    fn plan(&mut self, chat: i64, tasks: &[TaskLine], tick: bool, now_ms: i64) -> Vec<(Op, Request)> {
        let confirm_ttl = i64::try_from(self.shared.config.confirm_ttl.as_millis()).unwrap_or(i64::MAX);
        let (dirty, repost, page, confirm) = {
            let mut views = self.shared.views();
            let view = views.entry(chat).or_default();
            if let Some((c, at)) = view.confirm
                && (now_ms.saturating_sub(at) > confirm_ttl || !tasks.iter().any(|t| t.id == c.task))
            {
                view.confirm = None;
                view.dirty = true;
            }
            let out = (std::mem::take(&mut view.dirty), view.repost, view.page, view.confirm.map(|(c, _)| c));
            if tasks.is_empty() {
                views.remove(&chat);
            }
            out
        };
        let post = self.posts.entry(chat).or_default();
        let structure: Vec<_> = tasks.iter().map(|t| (t.id, t.state, t.name.clone())).collect();
        if !(tick || dirty || repost || post.pending || structure != post.structure) {
            return Vec::new();
        }
        if post.busy || post.retry_at.is_some_and(|at| at > Instant::now()) {
            post.pending = true;
            return Vec::new();
        }
        post.pending = false;
        post.retry_at = None;
        post.structure = structure;
        let mut requests = Vec::new();
        if tasks.is_empty() && self.engine_stopping {
            // Left in place (and recorded) for the next start to take over.
            return requests;
        }
        if tasks.is_empty() {
            match post.message {
                Some(message) => {
                    post.busy = true;
                    requests.push((Op::Delete, Request::delete_message(chat, message)));
                }
                None => {
                    self.posts.remove(&chat);
                }
            }
            return requests;
        }
        if repost {
            if let Some(view) = self.shared.views().get_mut(&chat) {
                view.repost = false;
            }
            if let Some(old) = post.message.take() {
                post.shown = None;
                requests.push((Op::Other("delete the replaced board"), Request::delete_message(chat, old)));
            }
        }
        let frame = Frame { chat, tasks, page, page_size: self.shared.config.page_size, now_ms, confirm };
        let rendered = render(&frame, &self.shared.signer);
        if rendered.page != page
            && let Some(view) = self.shared.views().get_mut(&chat)
        {
            view.page = rendered.page;
        }
        let shown = (rendered.text, rendered.keyboard);
        if post.shown.as_ref() == Some(&shown) {
            return requests;
        }
        post.busy = true;
        requests.push(match post.message {
            Some(message) => {
                let request = edit(chat, message, &shown);
                (Op::Edit { shown }, request)
            }
            None => {
                let request = send(chat, &shown);
                (Op::Post { shown }, request)
            }
        });
        requests
    }

    async fn submit(&mut self, chat: i64, op: Op, request: Request) {
        match self.shared.scheduler.submit(request).await {
            Ok(ticket) => {
                self.inflight.spawn(async move { Done { chat, op, outcome: ticket.await } });
            }
            Err(e) => {
                // Only a scheduler that was shut down refuses; treat it as a failure.
                self.inflight.spawn(async move { Done { chat, op, outcome: Err(e) } });
            }
        }
    }

    async fn complete(&mut self, Done { chat, op, outcome }: Done) {
        let store = self.shared.engine.store().clone();
        if let Op::Other(what) = op {
            if let Err(e) = outcome {
                tracing::warn!(chat, what, error = %e, "a message could not be sent");
            }
            return;
        }
        let Some(post) = self.posts.get_mut(&chat) else { return };
        post.busy = false;
        let mut forget = false;
        match (op, outcome) {
            (Op::Post { shown }, Ok(response)) => {
                post.failures = 0;
                if let Some(m) = response.message() {
                    post.message = Some(m.message_id);
                    post.shown = Some(shown);
                    if let Err(e) = store.set_status_message(chat, i64::from(m.message_id)).await {
                        tracing::warn!(chat, error = %e, "could not record the status message");
                    }
                }
            }
            (Op::Edit { shown }, Ok(_)) => {
                post.failures = 0;
                post.shown = Some(shown);
            }
            (Op::Edit { .. }, Err(e)) if is_gone(&e) => {
                tracing::info!(chat, error = %e, "the status message is gone; posting it again");
                post.message = None;
                post.shown = None;
                post.pending = true;
            }
            (Op::Delete, Ok(_)) => forget = true,
            (Op::Delete, Err(e)) if is_gone(&e) => forget = true,
            (Op::Other(_), _) => {}
            (op, Err(e)) => {
                post.failures += 1;
                let wait =
                    self.shared.config.interval.saturating_mul(1 << post.failures.min(10)).min(MAX_BACKOFF);
                post.retry_at = Some(Instant::now() + wait);
                post.pending = true;
                tracing::warn!(chat, op = op.name(), error = %e, ?wait, "a status board request failed; backing off");
            }
        }
        if forget {
            post.message = None;
            post.shown = None;
            post.pending = true;
            if let Err(e) = store.remove_status_message(chat).await {
                tracing::warn!(chat, error = %e, "could not forget the status message");
            }
        }
    }

    /// Task `id` left the engine: tell its chat how it ended.
    async fn ended(&mut self, id: i64) {
        match self.shared.engine.store().task(id).await {
            Ok(Some(task)) if task.state.is_finished() => self.notify(task).await,
            // Still unfinished: the engine is shutting down and will resume it.
            Ok(Some(_)) => self.engine_stopping = true,
            Ok(None) => {}
            Err(e) => tracing::warn!(task = id, error = %e, "could not read an ended task"),
        }
    }

    /// Tasks created since the last look that were never seen running (they ended
    /// between two looks): tell their chats too.
    async fn probe(&mut self, current: &BTreeMap<i64, TaskLine>) {
        for _ in 0..MAX_PROBES {
            let next = self.max_seen.saturating_add(1);
            if current.contains_key(&next) {
                self.max_seen = next;
                continue;
            }
            match self.shared.engine.store().task(next).await {
                Ok(Some(task)) if task.state.is_finished() => {
                    self.max_seen = next;
                    self.notify(task).await;
                }
                // Created, not yet running: the engine shows it soon.
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(task = next, error = %e, "could not look for new tasks");
                    break;
                }
            }
        }
    }

    async fn notify(&mut self, task: Task) {
        if !self.notified.insert(task.id) {
            return;
        }
        if self.notified.len() > MAX_NOTIFIED {
            self.notified.pop_first();
        }
        let files = if task.state == TaskState::Completed {
            match self.shared.engine.store().task_files(task.id).await {
                Ok(files) => files,
                Err(e) => {
                    tracing::warn!(task = task.id, error = %e, "could not read a task's files");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let leech_chat = (self.shared.leech_chat)(&task);
        for notice in notices(&task, &files, leech_chat) {
            let chat = notice.chat;
            self.submit(chat, Op::Other("completion message"), notice_request(notice)).await;
        }
    }

    /// Waits (bounded) for requests in flight, so posted boards are recorded.
    async fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN;
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline, self.inflight.join_next()).await {
                Ok(Some(Ok(done))) => self.complete(done).await,
                Ok(Some(Err(e))) => tracing::error!(error = %e, "a board request's task failed"),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(left = self.inflight.len(), "stopping with board requests in flight");
                    self.inflight.abort_all();
                    break;
                }
            }
        }
    }
}

/// Whether `e` says the message is not there (or cannot be edited any more): the board
/// is then posted anew.
fn is_gone(e: &TgError) -> bool {
    match e {
        TgError::Api { code: 400, description, .. } => {
            let d = description.to_ascii_lowercase();
            [
                "message to edit not found",
                "message to delete not found",
                "message can't be edited",
                "message_id_invalid",
                "message can't be deleted",
            ]
            .iter()
            .any(|s| d.contains(s))
        }
        _ => false,
    }
}

fn send(chat: i64, (text, keyboard): &(String, InlineKeyboardMarkup)) -> Request {
    Request::SendMessage(
        SendMessageParams::builder()
            .chat_id(chat)
            .text(text.clone())
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions::DISABLED)
            .reply_markup(ReplyMarkup::InlineKeyboardMarkup(keyboard.clone()))
            .build(),
    )
}

fn edit(chat: i64, message: i32, (text, keyboard): &(String, InlineKeyboardMarkup)) -> Request {
    Request::EditMessageText(
        EditMessageTextParams::builder()
            .chat_id(chat)
            .message_id(message)
            .text(text.clone())
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions::DISABLED)
            .reply_markup(keyboard.clone())
            .build(),
    )
}

fn notice_request(notice: Notice) -> Request {
    let reply = notice
        .reply_to
        .map(|id| ReplyParameters::builder().message_id(id).allow_sending_without_reply(true).build());
    Request::SendMessage(
        SendMessageParams::builder()
            .chat_id(notice.chat)
            .text(notice.text)
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions::DISABLED)
            .maybe_reply_parameters(reply)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(description: &str) -> TgError {
        TgError::Api {
            code: 400,
            description: description.into(),
            retry_after: None,
            migrate_to_chat_id: None,
        }
    }

    #[test]
    fn gone_messages_are_told_apart_from_other_failures() {
        assert!(is_gone(&api("Bad Request: message to edit not found")));
        assert!(is_gone(&api("Bad Request: message can't be edited")));
        assert!(is_gone(&api("Bad Request: message to delete not found")));
        assert!(!is_gone(&api("Bad Request: chat not found")));
        assert!(!is_gone(&TgError::Network("reset".into())));
    }

    #[test]
    fn notices_reply_without_failing_when_the_file_message_is_gone() {
        let n = Notice { chat: 5, text: "x".into(), reply_to: Some(9) };
        let Request::SendMessage(p) = notice_request(n) else { panic!("a sendMessage") };
        let reply = p.reply_parameters.unwrap();
        assert_eq!((reply.message_id, reply.allow_sending_without_reply), (Some(9), Some(true)));
        assert_eq!(p.parse_mode, Some(ParseMode::Html));
    }
}
