//! [`Sim`]: start, inject, observe, fault, shut down.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{SimConfig, bot_id_from_token};
use crate::error::{Error, ErrorKind, Result};
use crate::state::{FaultRule, Shared, State};
use crate::types::{CallbackAnswer, Fault, MessageState, Outbound, SimChat, SimStats};

/// A running simulated Bot API server on a loopback port.
///
/// Dropping it stops the server too; [`Sim::shutdown`] waits until every connection is closed.
#[derive(Debug)]
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    api_url: String,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    _tempdir: Option<tempfile::TempDir>,
}

fn random_secret() -> String {
    let a = RandomState::new().hash_one(std::time::SystemTime::now());
    let b = RandomState::new().hash_one(std::process::id());
    format!("SIM{a:016x}{b:016x}")
}

impl Sim {
    /// Binds `config.listen` (by default `127.0.0.1:0`) and returns once it is listening.
    pub async fn start(config: SimConfig) -> Result<Self> {
        config.validate()?;
        let token =
            config.token.clone().unwrap_or_else(|| format!("{}:{}", 7_000_000_001_u64, random_secret()));
        let bot_id = bot_id_from_token(&token)
            .ok_or(ErrorKind::InvalidConfig { setting: "token", expected: "`<digits>:<secret>`" })?;
        let (tempdir, files_dir) = match &config.files_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("mltb-telegram-sim-")
                    .tempdir()
                    .map_err(|e| Error::io("creating a temporary files directory", e))?;
                let path = dir.path().to_owned();
                (Some(dir), path)
            }
        };
        create_dir(&files_dir.join("uploads"))?;
        let files_dir = std::fs::canonicalize(&files_dir)
            .map_err(|e| Error::io(format!("resolving files_dir {}", files_dir.display()), e))?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::new(ErrorKind::Bind { addr: config.listen, source }))?;
        let addr = listener.local_addr().map_err(|e| Error::io("reading the bound address", e))?;
        let shared = Arc::new(Shared {
            token,
            bot_id,
            bot_username: config.bot_username.clone(),
            mode: config.mode,
            files_dir,
            started: Instant::now().into_std(),
            state: Mutex::new(State::new(config.rate_limits, config.retention)),
            sent_notify: Notify::new(),
            update_notify: Notify::new(),
            poll_notify: Notify::new(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let router = crate::server::router(Arc::clone(&shared));
        let task = tokio::spawn(crate::server::serve(listener, router, stop_rx));
        tracing::debug!(%addr, "telegram sim listening");
        Ok(Self {
            shared,
            addr,
            api_url: format!("http://{addr}"),
            stop,
            task: Mutex::new(Some(task)),
            _tempdir: tempdir,
        })
    }

    /// `http://127.0.0.1:PORT`. Bot methods are at `{api_url}/bot{token}/{method}`, files at
    /// `{api_url}/file/bot{token}/{file_path}`, the control API under `{api_url}/_sim/`.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bot token the server accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The bot's user id (the digits before `:` in the token).
    pub fn bot_id(&self) -> u64 {
        self.shared.bot_id
    }

    /// Where stored files live.
    pub fn files_dir(&self) -> &Path {
        &self.shared.files_dir
    }

    // -- inject ---------------------------------------------------------------------------

    /// Makes a chat known to the bot, as Telegram knows the chats a bot is in and the users
    /// who started it: sends to any other chat answer `Bad Request: chat not found`. A
    /// chat a simulated user writes in ([`Sim::send_text`] and friends) becomes known by
    /// itself. Registering a known chat again updates its type, title and username.
    ///
    /// ```
    /// # use mltb_telegram_sim::{Sim, SimChat, SimConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sim = Sim::start(SimConfig::default()).await?;
    /// sim.add_chat(42); // a private chat with user 42
    /// sim.add_chat(SimChat::channel(-1_001_234_567_890, "Releases").username("releases"));
    /// # Ok(()) }
    /// ```
    pub fn add_chat(&self, chat: impl Into<SimChat>) {
        self.shared.lock().add_chat(chat.into());
    }

    /// A user's text message (with a `bot_command` entity when it starts with `/`); returns
    /// the `update_id`. Private chats have `chat_id == from_user > 0`, groups negative ids.
    pub fn send_text(&self, chat_id: i64, from_user: i64, text: &str) -> i64 {
        self.shared.send_text(chat_id, from_user, text, None)
    }

    /// A user's text message replying to `reply_to_message_id` (embedded as
    /// `reply_to_message` when the sim knows that message).
    pub fn reply_text(&self, chat_id: i64, from_user: i64, text: &str, reply_to_message_id: i32) -> i64 {
        self.shared.send_text(chat_id, from_user, text, Some(reply_to_message_id))
    }

    /// A user's document; the bytes are stored and their `file_id` works in `getFile` and
    /// later sends.
    ///
    /// # Panics
    ///
    /// If the files directory is not writable; [`Sim::try_send_document`] returns the error.
    pub fn send_document(
        &self,
        chat_id: i64,
        from_user: i64,
        file_name: &str,
        bytes: Vec<u8>,
        caption: Option<&str>,
    ) -> i64 {
        match self.try_send_document(chat_id, from_user, file_name, bytes, caption) {
            Ok(id) => id,
            Err(err) => panic!("telegram sim cannot store an injected document: {err}"),
        }
    }

    /// [`Sim::send_document`], returning disk errors.
    pub fn try_send_document(
        &self,
        chat_id: i64,
        from_user: i64,
        file_name: &str,
        bytes: Vec<u8>,
        caption: Option<&str>,
    ) -> Result<i64> {
        self.shared.send_document(chat_id, from_user, file_name, &bytes, caption)
    }

    /// A press on an inline button of `message_id`: a `callback_query` update whose id is
    /// then accepted (once) by `answerCallbackQuery`.
    pub fn press_button(&self, chat_id: i64, from_user: i64, message_id: i32, data: &str) -> i64 {
        self.shared.press_button(chat_id, from_user, message_id, data)
    }

    /// Any update object, e.g. one of a type no client knows yet. Its `update_id` is
    /// replaced by the next in sequence, which is returned; the update's type for
    /// `allowed_updates` is its first key other than `update_id`.
    ///
    /// # Panics
    ///
    /// If `value` is not a JSON object; [`Sim::try_inject_raw_update`] returns the error.
    pub fn inject_raw_update(&self, value: serde_json::Value) -> i64 {
        match self.try_inject_raw_update(value) {
            Ok(id) => id,
            Err(err) => panic!("{err}"),
        }
    }

    /// [`Sim::inject_raw_update`], returning an error for a non-object.
    pub fn try_inject_raw_update(&self, value: serde_json::Value) -> Result<i64> {
        self.shared.push_raw_update(value)
    }

    // -- observe --------------------------------------------------------------------------

    /// The successful state-changing bot calls, in order (see [`Outbound`]): the last
    /// [`Retention::sent_log`](crate::Retention::sent_log) of them.
    pub fn sent(&self) -> Vec<Outbound> {
        self.shared.lock().sent()
    }

    /// The current state of a message, after edits and deletion.
    pub fn message(&self, chat_id: i64, message_id: i32) -> Option<MessageState> {
        self.shared.message_state(chat_id, message_id)
    }

    /// The accepted `answerCallbackQuery` calls, in order (the last
    /// [`Retention::callback_answers`](crate::Retention::callback_answers) of them).
    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.shared.lock().callback_answers()
    }

    /// The commands set by the last `setMyCommands`, as sent.
    pub fn commands(&self) -> serde_json::Value {
        self.shared.lock().commands.clone()
    }

    /// Counters and flood figures.
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Waits until at least `n` calls were logged since the start and returns the log (its
    /// retained part), or fails with [`ErrorKind::Timeout`] after `timeout` (tokio's clock).
    pub async fn wait_for_sent(&self, n: usize, timeout: Duration) -> Result<Vec<Outbound>> {
        self.shared.wait_for_sent(n, timeout).await
    }

    /// Waits until a `getUpdates` call is held open (a long poll waiting for updates), or
    /// fails with [`ErrorKind::Timeout`] after `timeout`. Lets a test inject an update
    /// exactly while the bot is polling.
    pub async fn wait_for_poll(&self, timeout: Duration) -> Result<()> {
        self.shared.wait_for_poll(timeout).await
    }

    // -- faults and limits ----------------------------------------------------------------

    /// Makes the next `n` bot calls (any method) fail with `fault`. Faults queue up: a call
    /// takes the oldest rule that matches it.
    pub fn inject_fault(&self, fault: Fault, n: usize) {
        self.push_fault(fault, n, None);
    }

    /// Like [`Sim::inject_fault`] for calls of `method` only (case-insensitive).
    pub fn inject_fault_for(&self, method: &str, fault: Fault, n: usize) {
        self.push_fault(fault, n, Some(method.to_ascii_lowercase()));
    }

    fn push_fault(&self, fault: Fault, n: usize, method: Option<String>) {
        if n > 0 {
            self.shared.lock().faults.push_back(FaultRule { fault, remaining: n, method });
        }
    }

    /// Makes the user of private chat `chat_id` block (or unblock) the bot: sends and
    /// edits there get 403 `Forbidden: bot was blocked by the user`. The chat becomes
    /// known if it was not (the user had started the bot before blocking it).
    pub fn set_blocked(&self, chat_id: i64, blocked: bool) {
        self.shared.lock().set_blocked(chat_id, blocked);
    }

    /// Drops every pending injected fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Turns flood control on or off. Turning it on when the config had none applies
    /// [`RateLimits::default`](crate::RateLimits::default).
    pub fn set_rate_limits(&self, enabled: bool) {
        self.shared.lock().rate_limits_enabled = enabled;
    }

    /// Stops accepting, closes every connection (pending long polls included) and waits for
    /// the server task.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}
