//! How a [`Sim`](crate::Sim) behaves: token, cloud or local limits, rate limits, where files go.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};

/// One mebibyte, the unit Telegram's documented limits are given in.
pub const MB: u64 = 1024 * 1024;

/// Which Bot API server is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `api.telegram.org`: uploads up to `upload_limit` (50 MB), `getFile` up to
    /// `download_limit` (20 MB), files downloaded over `/file/bot<token>/<path>`.
    Cloud {
        /// Largest accepted file part of an upload, in bytes; larger gives 413.
        upload_limit: u64,
        /// Largest file `getFile` hands out, in bytes; larger gives `file is too big`.
        download_limit: u64,
    },
    /// A `telegram-bot-api --local` server: uploads up to `upload_limit` (2000 MB),
    /// `file:///abs/path` inputs, `getFile` returns absolute paths and has no size limit.
    Local {
        /// Largest accepted upload, in bytes.
        upload_limit: u64,
    },
}

impl Mode {
    /// The cloud Bot API with Telegram's documented limits (50 MB up, 20 MB down).
    pub const fn cloud() -> Self {
        Self::Cloud { upload_limit: 50 * MB, download_limit: 20 * MB }
    }

    /// A local Bot API server with its documented 2000 MB upload limit.
    pub const fn local() -> Self {
        Self::Local { upload_limit: 2000 * MB }
    }

    /// The largest accepted upload in bytes.
    pub fn upload_limit(&self) -> u64 {
        match *self {
            Self::Cloud { upload_limit, .. } | Self::Local { upload_limit } => upload_limit,
        }
    }

    /// Whether this is [`Mode::Local`].
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local { .. })
    }
}

impl Default for Mode {
    fn default() -> Self {
        Self::cloud()
    }
}

/// Telegram's flood limits as the simulator enforces them on sends and edits.
///
/// Telegram's FAQ: "avoid sending more than one message per second" in a chat, "we may
/// allow short bursts that go over this limit"; at most 20 messages per minute in a group;
/// about 30 messages per second overall. The per-chat limit is a token bucket
/// (`per_chat_per_sec` tokens a second, `per_chat_burst` deep); the group and global limits
/// are sliding windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Sustained sends/edits per second in one chat.
    pub per_chat_per_sec: u32,
    /// How many sends/edits one chat may burst before the per-second rate applies.
    pub per_chat_burst: u32,
    /// Sends/edits in any 60 s window in one group (negative chat id).
    pub per_group_per_min: u32,
    /// Sends/edits in any 1 s window across all chats.
    pub global_per_sec: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { per_chat_per_sec: 1, per_chat_burst: 3, per_group_per_min: 20, global_per_sec: 30 }
    }
}

/// How much the simulator keeps, so that a run of hours stays within a fixed memory and
/// disk budget. Past a limit the oldest entries go first (for chats: the least recently
/// used), and what was forgotten answers as Telegram answers for something unknown: an
/// evicted chat is `chat not found`, an evicted message `message to edit not found`, an
/// evicted `file_id` `wrong file identifier/HTTP URL specified`, an evicted callback query
/// `query is too old…`, an evicted pending update is never delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Chats known to the bot (registered, or written in by a simulated user).
    pub chats: usize,
    /// Messages kept per chat (the bot's and the users').
    pub messages_per_chat: usize,
    /// Messages kept across all chats.
    pub messages: usize,
    /// Files with a `file_id` (uploads, users' documents, local-mode paths).
    pub files: usize,
    /// Bytes of stored files on disk; local-mode paths are the caller's and not counted.
    pub file_bytes: u64,
    /// Updates queued and not yet confirmed by `getUpdates` (Telegram keeps them 24 h).
    pub pending_updates: usize,
    /// Entries of the sent log ([`Sim::sent`](crate::Sim::sent)); older ones are dropped.
    pub sent_log: usize,
    /// Callback queries `answerCallbackQuery` still accepts.
    pub callback_queries: usize,
    /// Entries of [`Sim::callback_answers`](crate::Sim::callback_answers).
    pub callback_answers: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            chats: 1_000,
            messages_per_chat: 1_000,
            messages: 100_000,
            files: 10_000,
            file_bytes: 4 * 1024 * MB,
            pending_updates: 10_000,
            sent_log: 10_000,
            callback_queries: 10_000,
            callback_answers: 10_000,
        }
    }
}

impl Retention {
    /// The same limit for every count (not for `file_bytes`): handy in tests.
    pub fn uniform(count: usize) -> Self {
        Self {
            chats: count,
            messages_per_chat: count,
            messages: count,
            files: count,
            pending_updates: count,
            sent_log: count,
            callback_queries: count,
            callback_answers: count,
            ..Self::default()
        }
    }

    /// Sets the bytes of stored files kept on disk.
    pub fn file_bytes(mut self, bytes: u64) -> Self {
        self.file_bytes = bytes;
        self
    }

    fn validate(&self) -> Result<()> {
        let counts = [
            ("retention.chats", self.chats),
            ("retention.messages_per_chat", self.messages_per_chat),
            ("retention.messages", self.messages),
            ("retention.files", self.files),
            ("retention.pending_updates", self.pending_updates),
            ("retention.sent_log", self.sent_log),
            ("retention.callback_queries", self.callback_queries),
            ("retention.callback_answers", self.callback_answers),
        ];
        for (setting, value) in counts {
            if value == 0 {
                return Err(Error::new(ErrorKind::InvalidConfig { setting, expected: "at least 1" }));
            }
        }
        if self.file_bytes == 0 {
            return Err(Error::new(ErrorKind::InvalidConfig {
                setting: "retention.file_bytes",
                expected: "more than 0 bytes",
            }));
        }
        Ok(())
    }
}

/// Configuration of a [`Sim`](crate::Sim).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The bot token; `None` generates one (`<bot id>:<random>`). Must look like
    /// `<digits>:<secret>`: the digits are the bot's user id.
    pub token: Option<String>,
    /// Cloud or local server limits.
    pub mode: Mode,
    /// Flood limits; `None` disables them (they can be toggled later with
    /// [`Sim::set_rate_limits`](crate::Sim::set_rate_limits)).
    pub rate_limits: Option<RateLimits>,
    /// Where uploaded files are stored; `None` uses a temporary directory owned by the sim.
    pub files_dir: Option<PathBuf>,
    /// The bot's username returned by `getMe`.
    pub bot_username: String,
    /// The address to listen on; must be a loopback address. Defaults to `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// How much state is kept before the oldest goes.
    pub retention: Retention,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            token: None,
            mode: Mode::default(),
            rate_limits: Some(RateLimits::default()),
            files_dir: None,
            bot_username: "mltb_sim_bot".to_owned(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            retention: Retention::default(),
        }
    }
}

impl SimConfig {
    /// Sets the token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets or disables the rate limits.
    pub fn rate_limits(mut self, limits: Option<RateLimits>) -> Self {
        self.rate_limits = limits;
        self
    }

    /// Sets the directory for stored files.
    pub fn files_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.files_dir = Some(dir.into());
        self
    }

    /// Sets the bot's username.
    pub fn bot_username(mut self, name: impl Into<String>) -> Self {
        self.bot_username = name.into();
        self
    }

    /// Sets the listen address (loopback only).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Sets the retention limits.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Checks the values; [`Sim::start`](crate::Sim::start) calls it.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting, expected| Err(Error::new(ErrorKind::InvalidConfig { setting, expected }));
        if let Some(token) = &self.token
            && bot_id_from_token(token).is_none()
        {
            return bad("token", "`<digits>:<secret>` with a non-zero bot id and no `/`");
        }
        if self.mode.upload_limit() == 0 {
            return bad("mode.upload_limit", "more than 0 bytes");
        }
        if let Mode::Cloud { download_limit: 0, .. } = self.mode {
            return bad("mode.download_limit", "more than 0 bytes");
        }
        if let Some(l) = self.rate_limits
            && [l.per_chat_per_sec, l.per_chat_burst, l.per_group_per_min, l.global_per_sec].contains(&0)
        {
            return bad("rate_limits", "every limit at least 1");
        }
        if self.bot_username.is_empty() {
            return bad("bot_username", "a non-empty username");
        }
        if !self.listen.ip().is_loopback() {
            return bad("listen", "a loopback address such as 127.0.0.1:0");
        }
        self.retention.validate()
    }
}

/// The bot id a token starts with, if the token has the `<digits>:<secret>` shape.
pub(crate) fn bot_id_from_token(token: &str) -> Option<u64> {
    let (id, secret) = token.split_once(':')?;
    if secret.is_empty() || token.contains('/') || token.chars().any(char::is_whitespace) {
        return None;
    }
    id.parse::<u64>().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_telegram_docs() {
        let c = SimConfig::default();
        assert_eq!(c.mode, Mode::Cloud { upload_limit: 50 * MB, download_limit: 20 * MB });
        assert_eq!(Mode::local().upload_limit(), 2000 * MB);
        let l = c.rate_limits.unwrap();
        assert_eq!((l.per_chat_per_sec, l.per_group_per_min, l.global_per_sec), (1, 20, 30));
        c.validate().unwrap();
    }

    #[test]
    fn token_shape_is_checked() {
        assert_eq!(bot_id_from_token("123:abc"), Some(123));
        assert_eq!(bot_id_from_token("abc"), None);
        assert_eq!(bot_id_from_token("0:abc"), None);
        assert_eq!(bot_id_from_token("12:"), None);
        assert_eq!(bot_id_from_token("12:a/b"), None);
        let err = SimConfig::default().token("nope").validate().unwrap_err();
        assert!(err.to_string().contains("`token`"), "{err}");
    }

    #[test]
    fn retention_limits_must_be_positive() {
        SimConfig::default().retention(Retention::uniform(1)).validate().unwrap();
        let err = SimConfig::default().retention(Retention::uniform(0)).validate().unwrap_err();
        assert!(err.to_string().contains("`retention.chats`"), "{err}");
        let err = SimConfig::default().retention(Retention::default().file_bytes(0)).validate().unwrap_err();
        assert!(err.to_string().contains("`retention.file_bytes`"), "{err}");
    }

    #[test]
    fn non_loopback_listen_is_refused() {
        let err = SimConfig::default().listen(SocketAddr::from(([0, 0, 0, 0], 0))).validate().unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }
}
