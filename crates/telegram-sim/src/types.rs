//! What tests observe and inject: the sent log, message state, callback answers, stats, faults.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

/// A file the bot sent (or a user sent), as stored by the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileRecord {
    /// The file name given in the upload (or the stored one, for a reused `file_id`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// The MIME type given in the upload, if any.
    pub mime: Option<String>,
    /// The `file_id` the simulator assigned; reusable in later calls.
    pub file_id: String,
}

/// One successful state-changing bot call, in the order the simulator accepted them.
///
/// Logged methods: `sendMessage`, `editMessageText`, `editMessageReplyMarkup`,
/// `editMessageCaption`, `deleteMessage`, `sendDocument`, `sendVideo`, `sendPhoto` and
/// `sendMediaGroup` (one entry per message of the album). Edits of inline messages
/// (`inline_message_id`) have `chat_id` 0 and no `message_id`. Callback answers are in
/// [`Sim::callback_answers`](crate::Sim::callback_answers), not here.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Outbound {
    /// Position in the log, from 0.
    pub seq: u64,
    /// When the call was accepted (tokio's clock, so paused time applies).
    pub at: Instant,
    /// The canonical method name, e.g. `sendMessage`.
    pub method: String,
    /// The chat the call was about.
    pub chat_id: i64,
    /// The message created, edited or deleted.
    pub message_id: Option<i32>,
    /// The text as the message shows it: after `parse_mode` parsing, cleaning and trimming.
    pub text: Option<String>,
    /// The caption of a file, parsed like the text.
    pub caption: Option<String>,
    /// The entities of the text or caption, as in the message (`None` when there are none).
    pub entities: Option<Value>,
    /// The inline keyboard (or other markup) as sent.
    pub reply_markup: Option<Value>,
    /// The file sent, for file methods.
    pub file: Option<FileRecord>,
}

/// The current state of a message the simulator knows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MessageState {
    /// The chat.
    pub chat_id: i64,
    /// The message id within the chat.
    pub message_id: i32,
    /// Whether the bot sent it (else a simulated user did).
    pub from_bot: bool,
    /// The current text, after edits (parsed, as the message shows it).
    pub text: Option<String>,
    /// The current caption.
    pub caption: Option<String>,
    /// The entities of the current text or caption (`None` when there are none).
    pub entities: Option<Value>,
    /// The current reply markup, after edits.
    pub reply_markup: Option<Value>,
    /// How many times it was edited.
    pub edit_count: u32,
    /// Whether `deleteMessage` removed it.
    pub deleted: bool,
    /// The file attached to it, if any.
    pub file: Option<FileRecord>,
}

/// A successful `answerCallbackQuery`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallbackAnswer {
    /// The id of the callback query, as created by [`Sim::press_button`](crate::Sim::press_button).
    pub callback_query_id: String,
    /// The notification text, if any.
    pub text: Option<String>,
    /// Whether an alert was asked for instead of a notification.
    pub show_alert: bool,
    /// The URL to open, if any.
    pub url: Option<String>,
    /// When it was accepted.
    pub at: Instant,
}

/// Counters and flood figures, computed from what the simulator saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SimStats {
    /// Bot API requests received with the right token (file downloads excluded).
    pub requests: u64,
    /// Responses with status 429 (rate limits and injected faults).
    pub responses_429: u64,
    /// Responses with a 5xx status (injected faults).
    pub responses_5xx: u64,
    /// Connections closed without a response (injected faults).
    pub dropped_connections: u64,
    /// Requests per canonical method name (unknown methods count under their lowercased name).
    pub by_method: BTreeMap<String, u64>,
    /// Sends and edits accepted (the calls rate limits apply to).
    pub accepted_sends: u64,
    /// The most accepted sends/edits in one chat within any 1 s window.
    pub max_per_chat_in_any_second: u32,
    /// The most accepted sends/edits in one group (negative chat id) within any 60 s window.
    pub max_per_group_in_any_minute: u32,
    /// The most accepted sends/edits across all chats within any 1 s window.
    pub max_global_in_any_second: u32,
    /// Pending updates dropped because more than
    /// [`Retention::pending_updates`](crate::Retention::pending_updates) were waiting.
    pub dropped_updates: u64,
    /// How much state the simulator holds now.
    pub retained: Retained,
}

/// How much state the simulator holds: each count stays at or under its
/// [`Retention`](crate::Retention) limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Retained {
    /// Known chats.
    pub chats: usize,
    /// Stored messages across all chats.
    pub messages: usize,
    /// The most messages stored in one chat.
    pub max_messages_in_a_chat: usize,
    /// Files with a `file_id`.
    pub files: usize,
    /// Bytes of stored files on disk.
    pub file_bytes: u64,
    /// Updates waiting for `getUpdates`.
    pub pending_updates: usize,
    /// Entries of the sent log.
    pub sent_log: usize,
    /// Callback queries that can still be answered.
    pub callback_queries: usize,
    /// Entries of the callback answer log.
    pub callback_answers: usize,
    /// Chats the flood limiter and flood figures track (chats idle for a minute are
    /// forgotten).
    pub flood_chats: usize,
    /// Distinct method names counted in [`SimStats::by_method`].
    pub method_names: usize,
}

/// The type of a [`SimChat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    /// A private chat with a user (positive id).
    Private,
    /// A basic group (negative id).
    Group,
    /// A supergroup (`-100…` id).
    Supergroup,
    /// A channel (`-100…` id).
    Channel,
}

/// A chat the bot can see, registered with [`Sim::add_chat`](crate::Sim::add_chat).
///
/// `From<i64>` picks the type from the id as Telegram lays ids out: positive ids are
/// private chats, ids below -10^12 supergroups, other negative ids basic groups.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimChat {
    /// The chat id.
    pub id: i64,
    /// Its type.
    pub kind: ChatKind,
    /// The title of a group, supergroup or channel; the first name of a user.
    pub title: String,
    /// The public username, if any.
    pub username: Option<String>,
}

impl SimChat {
    /// A private chat with user `id`.
    pub fn private(id: i64, first_name: impl Into<String>) -> Self {
        Self { id, kind: ChatKind::Private, title: first_name.into(), username: None }
    }

    /// A basic group.
    pub fn group(id: i64, title: impl Into<String>) -> Self {
        Self { id, kind: ChatKind::Group, title: title.into(), username: None }
    }

    /// A supergroup.
    pub fn supergroup(id: i64, title: impl Into<String>) -> Self {
        Self { id, kind: ChatKind::Supergroup, title: title.into(), username: None }
    }

    /// A channel.
    pub fn channel(id: i64, title: impl Into<String>) -> Self {
        Self { id, kind: ChatKind::Channel, title: title.into(), username: None }
    }

    /// Sets the public username (without `@`).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }
}

impl From<i64> for SimChat {
    fn from(id: i64) -> Self {
        if id > 0 {
            Self::private(id, format!("User {id}"))
        } else if id < -1_000_000_000_000 {
            Self::supergroup(id, format!("Supergroup {id}"))
        } else {
            Self::group(id, format!("Group {id}"))
        }
    }
}

/// A failure injected into the next matching bot calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// 429 `Too Many Requests: retry after N` with `parameters.retry_after` and a
    /// `Retry-After` header.
    TooManyRequests {
        /// Seconds to wait.
        retry_after: u32,
    },
    /// A 5xx (or any) status with a JSON error body naming the status.
    ServerError(u16),
    /// Wait this long, then handle the call normally.
    Slow(Duration),
    /// Close the TCP connection without sending a response.
    DropConnection,
}
