//! [`Board`]: the handle the bot holds. It builds the board, starts and stops its driver,
//! and shares with it what users asked for (pages, pending confirmations).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mltb_engine::Engine;
use mltb_store::{Backend, Task};
use mltb_telegram::scheduler::Scheduler;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::BoardConfig;
use super::auth::{Authorizer, TaskUserOnly};
use super::driver::Driver;
use super::error::{Error, Result};
use super::render::Confirm;
use super::sign::Signer;

/// Cancellers remembered at most (each is forgotten when its task's chat is told).
const MAX_CANCELLERS: usize = 4096;

/// Reads the wall clock in Unix milliseconds.
pub(super) type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;
/// Says where a task's leeched files were sent.
pub(super) type LeechChat = Arc<dyn Fn(&Task) -> i64 + Send + Sync>;

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
                cancellers: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                running: AtomicBool::new(false),
            }),
        })
    }
}

/// What the users of a chat asked the board for, shared by the callback handler and the
/// driver.
#[derive(Debug, Default)]
pub(super) struct View {
    /// The page shown, from 0.
    pub(super) page: usize,
    /// A cancel waiting for its confirmation, and when it was asked (Unix ms).
    pub(super) confirm: Option<(Confirm, i64)>,
    /// Render this chat at the next look, whatever the interval.
    pub(super) dirty: bool,
    /// Post the board anew at the bottom of the chat.
    pub(super) repost: bool,
}

/// What the handle, the callback handler and the driver share.
pub(super) struct Shared<B: Backend> {
    pub(super) engine: Engine<B>,
    pub(super) scheduler: Scheduler,
    pub(super) config: BoardConfig,
    pub(super) signer: Signer,
    pub(super) authorizer: Arc<dyn Authorizer>,
    pub(super) clock: WallClock,
    pub(super) leech_chat: LeechChat,
    pub(super) views: Mutex<HashMap<i64, View>>,
    /// Who cancelled a task, by task id, until its chat is told.
    pub(super) cancellers: Mutex<HashMap<i64, i64>>,
    pub(super) wake: Notify,
    pub(super) running: AtomicBool,
}

impl<B: Backend> Shared<B> {
    pub(super) fn views(&self) -> std::sync::MutexGuard<'_, HashMap<i64, View>> {
        self.views.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers that `user` cancels `task`, for the message that tells its chat.
    pub(super) fn note_cancel(&self, task: i64, user: i64) {
        let mut cancellers = self.cancellers.lock().unwrap_or_else(PoisonError::into_inner);
        if cancellers.len() >= MAX_CANCELLERS {
            // Ids only grow: the smallest are the oldest, most likely told already.
            if let Some(oldest) = cancellers.keys().min().copied() {
                cancellers.remove(&oldest);
            }
        }
        cancellers.insert(task, user);
    }

    /// Who cancelled `task`, if this process was told; forgotten once asked.
    pub(super) fn take_canceller(&self, task: i64) -> Option<i64> {
        self.cancellers.lock().unwrap_or_else(PoisonError::into_inner).remove(&task)
    }

    pub(super) fn touch(&self, chat: i64, f: impl FnOnce(&mut View)) {
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
    pub(super) shared: Arc<Shared<B>>,
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

    /// Cancels `task` for `user` (a `/cancel`): the message that tells the task's chat
    /// it was cancelled names them. Returns whether the task was running (here, or with
    /// several instances, on any of them).
    pub async fn cancel(&self, task: i64, user: i64) -> bool {
        self.shared.note_cancel(task, user);
        let cancelled = self.shared.engine.cancel_anywhere(task).await.unwrap_or_else(|e| {
            tracing::warn!(task, error = %e, "could not cancel");
            false
        });
        if !cancelled {
            self.shared.take_canceller(task);
        }
        cancelled
    }

    /// Posts `chat`'s board anew at the bottom of the chat and deletes the old message
    /// (`/status`). Nothing happens in a chat without tasks.
    pub fn repost(&self, chat: i64) {
        self.shared.touch(chat, |v| v.repost = true);
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
