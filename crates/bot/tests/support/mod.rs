//! A whole bot for tests: [`mltb_bot::launch::start`] against the Telegram simulator
//! (flood limits on), a real `aria2c`, SQLite in a temp dir and a loopback file server.
//! Every wait is on the simulator's log, bounded; none is a sleep.

#![allow(dead_code, unreachable_pub, reason = "each test file uses part of the harness")]

use std::time::Duration;

use mltb_bot::config::{Config, Env};
use mltb_bot::launch::Running;
use mltb_bot::{Bot, Exit};
use mltb_store::AnyBackend;
use mltb_telegram_sim::{Outbound, Sim, SimConfig};
use mltb_testkit::FileServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(60);
pub const OWNER: i64 = 1000;
/// A user in [`CHAT`], their private chat with the bot (authorized in the config).
pub const USER: i64 = 2000;
pub const CHAT: i64 = 2000;

pub fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

pub struct Harness {
    pub sim: Sim,
    pub server: FileServer,
    pub dir: tempfile::TempDir,
    pub bot: Bot<AnyBackend>,
    running: Option<Running>,
    stop: CancellationToken,
    task: Option<JoinHandle<Exit>>,
}

impl Harness {
    /// A bot whose config is the test defaults plus `extra` (`MLTB_…` pairs), serving the
    /// files `files` (path, length) at the file server.
    pub async fn start(extra: &[(&str, &str)], files: &[(&str, usize)]) -> Self {
        let sim = Sim::start(SimConfig::default()).await.unwrap();
        let mut builder = FileServer::builder();
        for (path, len) in files {
            builder = builder.file(*path, data(*len));
        }
        let server = builder.start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        Self::start_with(sim, server, dir, extra).await
    }

    /// A bot over an existing simulator, file server and data directory (a restart).
    pub async fn start_with(
        sim: Sim,
        server: FileServer,
        dir: tempfile::TempDir,
        extra: &[(&str, &str)],
    ) -> Self {
        let data_dir = dir.path().join("data").display().to_string();
        let chats = format!("[{CHAT}]");
        let mut pairs: Vec<(String, String)> = [
            ("MLTB_BOT_TOKEN", sim.token()),
            ("MLTB_TELEGRAM_API_URL", sim.api_url()),
            ("MLTB_TELEGRAM_POLL_TIMEOUT", "1s"),
            ("MLTB_DATA_DIR", data_dir.as_str()),
            ("MLTB_AUTH_AUTHORIZED_CHATS", chats.as_str()),
            ("MLTB_DOWNLOADS_ALLOW", "[\"127.0.0.1\"]"),
            ("MLTB_QUEUE_MIN_FREE_DISK", "0"),
            ("MLTB_API_ENABLED", "false"),
            ("MLTB_STATUS_INTERVAL", "3s"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        pairs.push(("MLTB_OWNER_ID".into(), OWNER.to_string()));
        for (k, v) in extra {
            pairs.retain(|(key, _)| key != k);
            pairs.push(((*k).to_owned(), (*v).to_owned()));
        }
        let config = Config::from_toml("", &Env::from_pairs(pairs)).unwrap();
        let running = mltb_bot::launch::start(config).await.unwrap();
        let bot = running.bot.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (bot, stop) = (bot.clone(), stop.clone());
            async move { bot.run(stop).await }
        });
        Self { sim, server, dir, bot, running: Some(running), stop, task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Waits until the simulator's log satisfies `done`; returns the log.
    pub async fn until(&self, what: &str, done: impl FnMut(&[Outbound]) -> bool) -> Vec<Outbound> {
        until_sent(&self.sim, what, done).await
    }

    /// The first message the bot sent to `chat` after log position `after` whose text
    /// satisfies `matches`.
    pub async fn reply(&self, chat: i64, after: u64, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let found = |log: &[Outbound]| {
            log.iter()
                .filter(|o| o.seq >= after && o.chat_id == chat && o.method == "sendMessage")
                .filter_map(|o| o.text.clone())
                .find(|t| matches(t))
        };
        let log = self.until(what, |log| found(log).is_some()).await;
        found(&log).unwrap()
    }

    /// The next log position: what the bot sends from now on is at or after it.
    pub fn mark(&self) -> u64 {
        self.sim.sent().last().map_or(0, |o| o.seq + 1)
    }

    /// The id of the latest message a user (not the bot) sent to `chat` whose text or
    /// caption is `text`, or whose document is named `text`.
    pub fn user_message(&self, chat: i64, text: &str) -> i32 {
        let mut found = None;
        let mut misses = 0;
        for id in 1.. {
            match self.sim.message(chat, id) {
                Some(m) => {
                    misses = 0;
                    let named = m.file.as_ref().is_some_and(|f| f.name == text);
                    if !m.from_bot
                        && (m.text.as_deref() == Some(text) || m.caption.as_deref() == Some(text) || named)
                    {
                        found = Some(id);
                    }
                }
                None => {
                    misses += 1;
                    if misses > 50 {
                        break;
                    }
                }
            }
        }
        found.unwrap_or_else(|| panic!("no user message {text:?} in chat {chat}"))
    }

    /// Names of the documents sent to `chat`.
    pub fn documents(&self, chat: i64) -> Vec<String> {
        self.sim
            .sent()
            .iter()
            .filter(|o| o.method == "sendDocument" && o.chat_id == chat)
            .filter_map(|o| o.file.as_ref().map(|f| f.name.clone()))
            .collect()
    }

    /// Waits until the engine runs no task.
    pub async fn idle(&self) {
        let engine = self.bot.engine();
        let mut changes = engine.changes();
        tokio::time::timeout(WAIT, async {
            while !engine.tasks().is_empty() {
                changes.changed().await.unwrap();
            }
        })
        .await
        .expect("every task ended in time");
    }

    pub fn store(&self) -> &mltb_store::AnyStore {
        &self.running.as_ref().unwrap().store
    }

    /// Stops the bot (tasks keep their state); returns what a restart reuses.
    pub async fn stop(mut self) -> (Sim, FileServer, tempfile::TempDir) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        (self.sim, self.server, self.dir)
    }

    pub async fn shutdown(self) {
        let (sim, server, dir) = self.stop().await;
        assert_eq!(sim.stats().responses_429, 0, "the simulator answered 429");
        sim.shutdown().await;
        server.shutdown().await;
        drop(dir);
    }
}

/// Waits (at most [`WAIT`]) until `sim`'s log satisfies `done`, woken by each new
/// message rather than polling; returns the log, or panics naming `what` and what was
/// sent.
pub async fn until_sent(sim: &Sim, what: &str, mut done: impl FnMut(&[Outbound]) -> bool) -> Vec<Outbound> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = sim.sent();
        if done(&log) {
            return log;
        }
        let next = log.last().map_or(0, |o| o.seq as usize + 1);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if sim.wait_for_sent(next + 1, left).await.is_err() {
            let texts: Vec<String> = sim
                .sent()
                .iter()
                .map(|o| {
                    format!("{} {}: {:?}", o.method, o.chat_id, o.text.as_deref().or(o.caption.as_deref()))
                })
                .collect();
            panic!("timed out waiting until {what}; the bot sent: {texts:#?}");
        }
    }
}
