//! The bot: updates in, commands authorized and rate limited, tasks submitted to the
//! engine, replies out through the scheduler.
//!
//! [`Bot::handle`] serves one update; [`Bot::run`] polls Telegram and serves updates
//! until it is told to stop. Messages from other bots, edited messages and channel
//! posts are ignored; so is anything that is not a command for this bot.

mod commands;
mod text;

use std::sync::Arc;
use std::time::Instant;

use frankenstein::updates::{Update, UpdateContent};
use mltb_engine::Engine;
use mltb_ratelimit::{Limit, TieredLimiter};
use mltb_store::{Backend, Store};
use mltb_telegram::Client;
use mltb_telegram::command::CommandParser;
use mltb_telegram::poller::Poller;
use mltb_telegram::scheduler::{Request, Scheduler};
use tokio_util::sync::CancellationToken;

use crate::auth::{Access, Auth};
use crate::config::Config;

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
    ) -> Self {
        Self { config, store, engine, client, scheduler, username: username.into() }
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
    auth: Auth<B>,
    limiter: TieredLimiter<Access, i64>,
    started: Instant,
    restart: CancellationToken,
}

impl<B: Backend> Bot<B> {
    /// A bot over `parts`.
    pub fn new(parts: BotParts<B>) -> Result<Self, crate::Error> {
        let BotParts { config, store, engine, client, scheduler, username } = parts;
        let parser = CommandParser::builder()
            .bot_username(username)
            .suffix(config.telegram.command_suffix.clone())
            .command("start")
            .build();
        let auth = Auth::new(
            store.clone(),
            config.owner_id,
            config.auth.sudo_users.iter().copied(),
            config.auth.authorized_chats.iter().copied(),
            config.auth.refusal_silence.0,
        );
        let q = &config.commands;
        let limiter = TieredLimiter::builder()
            .tier(Access::Owner, Limit::Quota(q.owner.quota()))
            .tier(Access::Sudo, Limit::Quota(q.sudo.quota()))
            .tier(Access::Authorized, Limit::Quota(q.authorized.quota()))
            .default_limit(q.guest.quota())
            .build()
            .map_err(|e| crate::Error::Config(format!("commands: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                engine,
                client,
                scheduler,
                parser,
                auth,
                limiter,
                started: Instant::now(),
                restart: CancellationToken::new(),
            }),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<B> {
        &self.inner.engine
    }

    /// Serves one update.
    pub async fn handle(&self, update: Update) {
        // Edited messages, channel posts and the rest are not commands to serve.
        if let UpdateContent::Message(message) = update.content {
            commands::message(self, *message).await;
        }
    }

    /// Polls Telegram and serves updates (each in its own task) until `stop` is
    /// cancelled or `/restart` is sent; then stops polling, waits for the updates in
    /// hand, and returns. Tasks keep their state in the store and resume on the next
    /// start.
    pub async fn run(&self, stop: CancellationToken) -> Exit {
        let timeout = u32::try_from(self.inner.config.telegram.poll_timeout.0.as_secs()).unwrap_or(30);
        let mut poller = Poller::builder(self.inner.client.clone()).timeout(timeout).spawn();
        let tracker = tokio_util::task::TaskTracker::new();
        let exit = loop {
            tokio::select! {
                () = stop.cancelled() => break Exit::Stopped,
                () = self.inner.restart.cancelled() => break Exit::Restart,
                next = poller.recv() => match next {
                    Some(Ok(update)) => {
                        let bot = self.clone();
                        tracker.spawn(async move { bot.handle(update).await });
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "getUpdates failed; the poller retries"),
                    None => break Exit::Stopped,
                },
            }
        };
        if let Err(e) = poller.shutdown().await {
            tracing::warn!(error = %e, "stopping the poller");
        }
        tracker.close();
        tracker.wait().await;
        exit
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
