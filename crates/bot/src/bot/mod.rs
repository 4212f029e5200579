//! The bot: updates in, commands authorized and rate limited, tasks submitted to the
//! engine, replies out through the scheduler.
//!
//! [`Bot::handle`] serves one update; [`Bot::run`] polls Telegram and serves updates
//! until it is told to stop. Messages from other bots, edited messages and channel
//! posts are ignored; so is anything that is not a command for this bot, except that a
//! user's message is remembered (in memory, bounded) for `-i` to take later.

mod batch;
mod choose;
mod commands;
mod cpu;
mod observe;
mod quota;
mod recent;
mod settings;
mod task;
mod text;

pub use self::observe::{NoObserver, Observer};

use std::sync::Arc;
use std::time::Instant;

use frankenstein::AsyncTelegramApi;
use frankenstein::updates::{Update, UpdateContent};
use mltb_engine::Engine;
use mltb_store::{Backend, RoleLease, Store};
use mltb_telegram::Client;
use mltb_telegram::command::CommandParser;
use mltb_telegram::poller::Poller;
use mltb_telegram::scheduler::{Request, Scheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{Access, Auth};
use crate::board::{Authorizer, Board, BoardConfig, SigningKey, TaskLine};
use crate::config::Config;

/// The store role of the instance that polls Telegram.
const POLLER: &str = "poller";

/// Why [`Bot::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Told to stop (a signal).
    Stopped,
    /// `/restart`: the caller starts the bot again; tasks resume from the store.
    Restart,
}

/// What the bot is built from.
#[derive(Debug)]
#[non_exhaustive]
pub struct BotParts<B: Backend> {
    /// The configuration.
    pub config: Config,
    /// The store.
    pub store: Arc<Store<B>>,
    /// The engine, started.
    pub engine: Engine<B>,
    /// The Telegram client.
    pub client: Client,
    /// The scheduler every message goes through.
    pub scheduler: Scheduler,
    /// The bot's username (from `getMe`), for `/cmd@name`.
    pub username: String,
    /// The key that signs the status board's buttons (at least 32 bytes).
    pub signing_key: Vec<u8>,
    /// Told of command rejections and bytes moved (default: nobody).
    pub observer: Arc<dyn Observer>,
}

impl<B: Backend> BotParts<B> {
    /// The parts of a bot.
    pub fn new(
        config: Config,
        store: Arc<Store<B>>,
        engine: Engine<B>,
        client: Client,
        scheduler: Scheduler,
        username: impl Into<String>,
        signing_key: Vec<u8>,
    ) -> Self {
        Self {
            config,
            store,
            engine,
            client,
            scheduler,
            username: username.into(),
            signing_key,
            observer: Arc::new(NoObserver),
        }
    }

    /// Tells `observer` of command rejections and bytes moved.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }
}

/// The bot. Cheap to clone.
#[derive(Debug)]
pub struct Bot<B: Backend> {
    inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for Bot<B> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

#[derive(Debug)]
struct Inner<B: Backend> {
    config: Config,
    store: Arc<Store<B>>,
    engine: Engine<B>,
    client: Client,
    scheduler: Scheduler,
    parser: CommandParser,
    auth: Arc<Auth<B>>,
    board: Board<B>,
    observer: Arc<dyn Observer>,
    limiter: quota::CommandQuota,
    /// Messages seen lately, for `-i`.
    recent: recent::Recent,
    started: Instant,
    restart: CancellationToken,
    cpu: cpu::CpuMeter,
    /// Where the HTTP API's pages are reached (the file-selection page's links), once
    /// known: `api.public_url`, or set by [`Bot::serve_pages_at`].
    pages: std::sync::RwLock<Option<String>>,
}

impl<B: Backend> Bot<B> {
    /// A bot over `parts`.
    pub fn new(parts: BotParts<B>) -> Result<Self, crate::Error> {
        let BotParts { config, store, engine, client, scheduler, username, signing_key, observer } = parts;
        let pages = config.api.public_url.clone();
        let parser = CommandParser::builder()
            .bot_username(username)
            .suffix(config.telegram.command_suffix.clone())
            .command("start")
            .build();
        let auth = Arc::new(Auth::new(
            store.clone(),
            config.owner_id,
            config.auth.sudo_users.iter().copied(),
            config.auth.authorized_chats.iter().copied(),
            config.auth.refusal_silence.0,
        ));
        let key = SigningKey::new(signing_key)
            .map_err(|e| crate::Error::Config(format!("MLTB_CALLBACK_KEY: {e}")))?;
        let board_config =
            BoardConfig::new(key).interval(config.status.interval.0).page_size(config.status.page_size);
        let dump = config.leech.dump_chat;
        let board = Board::builder(engine.clone(), scheduler.clone(), board_config)
            .authorizer(Roles { auth: auth.clone() })
            .leech_chat(move |task| dump.unwrap_or(task.chat))
            .build()
            .map_err(|e| crate::Error::Config(format!("status board: {e}")))?;
        let limiter = quota::CommandQuota::new(
            &config.commands,
            config.secrets.redis_url.as_ref().map(crate::config::Secret::expose),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                engine,
                client,
                scheduler,
                parser,
                auth,
                board,
                observer,
                limiter,
                recent: recent::Recent::new(recent::Limits::default()),
                started: Instant::now(),
                restart: CancellationToken::new(),
                cpu: cpu::CpuMeter::default(),
                pages: std::sync::RwLock::new(pages),
            }),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<B> {
        &self.inner.engine
    }

    /// Tells the bot where the HTTP API's pages are reached (`http://127.0.0.1:8080`),
    /// once the API listens, unless `api.public_url` says it already. Without it, `-s`
    /// (choose a torrent's files on the selection page) is refused.
    pub fn serve_pages_at(&self, base: &str) {
        let mut pages = self.inner.pages.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.inner.config.api.public_url.is_none() {
            *pages = Some(base.to_owned());
        }
    }

    /// The base of the HTTP API's pages' addresses, without a trailing `/`.
    fn pages(&self) -> Option<String> {
        let pages = self.inner.pages.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        pages.as_deref().map(|p| p.trim_end_matches('/').to_owned())
    }

    /// Serves one update.
    pub async fn handle(&self, update: Update) {
        self.remember(&update);
        self.serve(update).await;
    }

    /// Remembers a user's message that is not a command, for `-i` to take later. Done in
    /// the order updates arrive, before any of them is served, so that a command finds
    /// every message sent before it.
    fn remember(&self, update: &Update) {
        let UpdateContent::Message(message) = &update.content else { return };
        let text = message.text.as_deref().or(message.caption.as_deref()).unwrap_or("");
        if text.trim_start().starts_with('/') {
            return;
        }
        if let Some(seen) = recent::Seen::of(message) {
            self.inner.recent.record(message.chat.id, seen);
        }
    }

    async fn serve(&self, update: Update) {
        match update.content {
            UpdateContent::Message(message) => commands::message(self, *message).await,
            UpdateContent::CallbackQuery(query) => {
                let reply = self.inner.board.handle_callback(&query).await;
                if let Err(e) = self.inner.client.answer_callback_query(&reply.answer(query.id.clone())).await
                {
                    tracing::debug!(error = %e, "a button press could not be answered");
                }
            }
            // Edited messages, channel posts and the rest are not commands to serve.
            _ => {}
        }
    }

    /// Polls Telegram and serves updates (each in its own task) until `stop` is
    /// cancelled or `/restart` is sent; then stops polling, waits for the updates in
    /// hand, and returns. Tasks keep their state in the store and resume on the next
    /// start.
    pub async fn run(&self, stop: CancellationToken) -> Exit {
        let timeout = u32::try_from(self.inner.config.telegram.poll_timeout.0.as_secs()).unwrap_or(30);
        let cluster = self.inner.config.instance.id.is_some();
        // Several instances: only the poller keeps the boards (see `poll_when_elected`).
        let board = if cluster { None } else { self.spawn_board() };
        let tracker = TaskTracker::new();
        let transfers_stop = CancellationToken::new();
        tracker.spawn(observe::watch_transfers(
            self.inner.engine.clone(),
            self.inner.observer.clone(),
            transfers_stop.clone(),
        ));
        tracker.spawn(choose::send_links(self.clone(), transfers_stop.clone()));
        let exit = if cluster {
            self.poll_when_elected(timeout, &stop, &tracker).await
        } else {
            self.poll(Poller::builder(self.inner.client.clone()).timeout(timeout).spawn(), &stop, &tracker)
                .await
        };
        transfers_stop.cancel();
        tracker.close();
        tracker.wait().await;
        // The board stops before the engine, so that its messages stay for the next start.
        if let Some(driver) = board {
            driver.stop().await;
        }
        exit
    }

    /// Serves the updates `poller` receives, each in its own task, until told to stop
    /// or to restart; then stops the poller.
    async fn poll(&self, mut poller: Poller, stop: &CancellationToken, tracker: &TaskTracker) -> Exit {
        let exit = loop {
            tokio::select! {
                () = stop.cancelled() => break Exit::Stopped,
                () = self.inner.restart.cancelled() => break Exit::Restart,
                next = poller.recv() => match next {
                    Some(Ok(update)) => self.dispatch(update, tracker),
                    Some(Err(e)) => tracing::warn!(error = %e, "getUpdates failed; the poller retries"),
                    None => break Exit::Stopped,
                },
            }
        };
        if let Err(e) = poller.shutdown().await {
            tracing::warn!(error = %e, "stopping the poller");
        }
        exit
    }

    /// Serves `update` in its own task.
    fn dispatch(&self, update: frankenstein::updates::Update, tracker: &TaskTracker) {
        self.remember(&update);
        let bot = self.clone();
        tracker.spawn(async move { bot.serve(update).await });
    }

    /// Polls while this instance holds the poller role `held`: each batch's offset is
    /// saved under the role's fence *before* the next `getUpdates` confirms the batch to
    /// Telegram and before any of it is served, and the role is renewed every third of
    /// the lease. `None` when the role was lost (a batch that found out is not served;
    /// the next poller gets it again). A 409 Conflict (a paused instance's `getUpdates`
    /// that has not noticed it lost the role yet) is waited out, not fatal.
    async fn poll_fenced(
        &self,
        held: &RoleLease,
        timeout: u32,
        stop: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Option<Exit> {
        let lease = self.inner.config.instance.lease.0;
        let mut renew = tokio::time::interval((lease / 3).max(std::time::Duration::from_millis(100)));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let store = &self.inner.store;
        let poller = Poller::builder(self.inner.client.clone()).timeout(timeout);
        let mut offset = held.position;
        let mut failures = 0u32;
        let mut fetch = None;
        let mut pause: Option<tokio::time::Instant> = None;
        loop {
            if fetch.is_none() && pause.is_none() {
                let poller = poller.clone();
                fetch = Some(Box::pin(async move { poller.fetch(offset).await }));
            }
            let fetched = tokio::select! {
                () = stop.cancelled() => return Some(Exit::Stopped),
                () = self.inner.restart.cancelled() => return Some(Exit::Restart),
                _ = renew.tick() => {
                    match store.renew_role(held, lease).await {
                        Ok(true) => {}
                        Ok(false) => return None,
                        Err(e) => tracing::warn!(error = %e, "could not renew the poller role"),
                    }
                    continue;
                }
                () = async { tokio::time::sleep_until(pause.unwrap_or_else(tokio::time::Instant::now)).await }, if pause.is_some() => {
                    pause = None;
                    continue;
                }
                fetched = async { fetch.as_mut().expect("a fetch is in flight").await }, if fetch.is_some() => fetched,
            };
            fetch = None;
            match fetched {
                Ok(batch) => {
                    failures = 0;
                    if batch.next_offset != offset
                        && let Some(next) = batch.next_offset
                    {
                        match store.save_position(held, next).await {
                            Ok(true) => offset = Some(next),
                            Ok(false) => return None,
                            Err(e) => {
                                // Unsaved, it must not be served here: the next poller
                                // receives it again.
                                tracing::warn!(error = %e, "could not save the update offset; stepping down");
                                return None;
                            }
                        }
                    }
                    for update in batch.updates {
                        self.dispatch(update, tracker);
                    }
                }
                Err(e) if matches!(e, mltb_telegram::Error::Api { code: 401 | 404, .. }) => {
                    tracing::error!(error = %e, "polling cannot continue");
                    return Some(Exit::Stopped);
                }
                Err(e) => {
                    failures += 1;
                    let wait = e.retry_after().unwrap_or_else(|| poller.backoff_after(failures));
                    tracing::warn!(error = %e, ?wait, "getUpdates failed; polling again after a pause");
                    pause = Some(tokio::time::Instant::now() + wait);
                }
            }
        }
    }

    /// Several instances: waits to be elected the poller (the store's `poller` role),
    /// polls from the saved offset while it holds the role, and waits again when it is
    /// lost. Gives the role up when told to stop, so that another instance polls at once.
    async fn poll_when_elected(&self, timeout: u32, stop: &CancellationToken, tracker: &TaskTracker) -> Exit {
        let lease = self.inner.config.instance.lease.0;
        let beat = (lease / 3).max(std::time::Duration::from_millis(100));
        let store = &self.inner.store;
        loop {
            let held = loop {
                match store.acquire_role(POLLER, lease).await {
                    Ok(Some(held)) => break held,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "could not ask for the poller role"),
                }
                tokio::select! {
                    () = stop.cancelled() => return Exit::Stopped,
                    () = self.inner.restart.cancelled() => return Exit::Restart,
                    () = tokio::time::sleep(beat) => {}
                }
            };
            tracing::info!(fence = held.fence, offset = ?held.position, "this instance polls Telegram now");
            // One status board per chat, whichever instances run its tasks: the poller's.
            let board = self.spawn_board();
            let polled = self.poll_fenced(&held, timeout, stop, tracker).await;
            if let Some(driver) = board {
                driver.stop().await;
            }
            match polled {
                Some(exit) => {
                    if let Err(e) = store.release_role(&held).await {
                        tracing::warn!(error = %e, "could not give the poller role up");
                    }
                    return exit;
                }
                None => tracing::warn!("another instance took the poller role over; this one follows"),
            }
        }
    }

    /// Starts the status board's driver; `None` (logged) if it cannot run.
    fn spawn_board(&self) -> Option<crate::board::BoardTask> {
        match self.inner.board.spawn() {
            Ok(driver) => Some(driver),
            Err(e) => {
                tracing::warn!(error = %e, "the status board is not running");
                None
            }
        }
    }

    /// Sends `html` to `chat` as a reply to `reply_to`, through the scheduler.
    async fn reply(&self, chat: i64, reply_to: Option<i32>, html: String) -> Option<i32> {
        let mut request = Request::send_html(chat, html);
        if let (Request::SendMessage(params), Some(id)) = (&mut request, reply_to) {
            params.reply_parameters = Some(
                frankenstein::types::ReplyParameters::builder()
                    .message_id(id)
                    .allow_sending_without_reply(true)
                    .build(),
            );
        }
        match self.inner.scheduler.send(request).await {
            Ok(mltb_telegram::scheduler::Response::Message(m)) => Some(m.message_id),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(chat, error = %e, "a reply could not be sent");
                None
            }
        }
    }
}

/// Who may cancel a task from the board: its user, the owner and sudo users.
struct Roles<B: Backend> {
    auth: Arc<Auth<B>>,
}

#[async_trait::async_trait]
impl<B: Backend> Authorizer for Roles<B> {
    async fn may_cancel(&self, presser: i64, task: &TaskLine) -> bool {
        presser == task.user || self.auth.access(presser, task.chat).await.is_ok_and(Access::is_admin)
    }
}
