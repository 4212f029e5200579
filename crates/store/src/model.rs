//! The rows the store keeps, as Rust types.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::decode($field, format!("unknown value {other:?}"))),
                }
            }
        }
    };
}

text_enum! {
    /// What a user may do. Users without a row are guests.
    Role, "users.role" {
        /// The bot's owner.
        Owner = "owner",
        /// An administrator (`/addsudo`).
        Sudo = "sudo",
        /// May use the bot anywhere (`/auth`).
        Authorized = "authorized",
        /// May not use the bot at all.
        Banned = "banned",
    }
}

text_enum! {
    /// Where a task's state is in its lifecycle.
    TaskState, "tasks.state" {
        /// Waiting for a download slot.
        Queued = "queued",
        /// aria2 (or another downloader) is fetching it.
        Downloading = "downloading",
        /// Its files are being sent to Telegram or the remote.
        Uploading = "uploading",
        /// Done uploading, still seeding a torrent.
        Seeding = "seeding",
        /// Finished successfully.
        Completed = "completed",
        /// Finished with an error.
        Failed = "failed",
        /// Cancelled by a user.
        Cancelled = "cancelled",
    }
}

impl TaskState {
    /// Whether the task has ended (completed, failed, cancelled).
    pub fn is_finished(self) -> bool {
        matches!(self, TaskState::Completed | TaskState::Failed | TaskState::Cancelled)
    }
}

text_enum! {
    /// What happens to a task's files after the download.
    TaskKind, "tasks.kind" {
        /// Copied to a cloud remote (rclone).
        Mirror = "mirror",
        /// Uploaded back to Telegram.
        Leech = "leech",
    }
}

/// Where a task downloads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An HTTP(S) or FTP URL.
    Url(String),
    /// A magnet link.
    Magnet(String),
    /// A `.torrent` file, by its local path.
    Torrent(String),
}

impl Source {
    pub(crate) fn parts(&self) -> (&'static str, &str) {
        match self {
            Source::Url(s) => ("url", s),
            Source::Magnet(s) => ("magnet", s),
            Source::Torrent(s) => ("torrent", s),
        }
    }

    pub(crate) fn from_parts(kind: &str, text: String) -> Result<Self> {
        match kind {
            "url" => Ok(Source::Url(text)),
            "magnet" => Ok(Source::Magnet(text)),
            "torrent" => Ok(Source::Torrent(text)),
            other => Err(Error::decode("tasks.source_kind", format!("unknown value {other:?}"))),
        }
    }
}

/// A task to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// The chat the command came from.
    pub chat: i64,
    /// The user who sent it.
    pub user: i64,
    /// What to download (at most [`limits::SOURCE`](crate::limits::SOURCE) bytes).
    pub source: Source,
    /// Mirror or leech.
    pub kind: TaskKind,
    /// A name given with `-n` (at most [`limits::NAME`](crate::limits::NAME) bytes).
    pub name: Option<String>,
    /// The command's options, kept as JSON so that a restart resumes with the same ones
    /// (at most [`limits::OPTIONS`](crate::limits::OPTIONS) bytes once encoded).
    pub options: serde_json::Value,
}

/// Bytes done and the current speed of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Bytes downloaded or uploaded so far.
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
    /// Bytes per second.
    pub speed: u64,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Its id (increasing; never reused).
    pub id: i64,
    /// The chat it came from.
    pub chat: i64,
    /// The user who asked for it.
    pub user: i64,
    /// What it downloads.
    pub source: Source,
    /// Mirror or leech.
    pub kind: TaskKind,
    /// Its name, once known.
    pub name: Option<String>,
    /// The command's options.
    pub options: serde_json::Value,
    /// Where it is in its lifecycle.
    pub state: TaskState,
    /// The last progress recorded.
    pub progress: Progress,
    /// Why it failed.
    pub error: Option<String>,
    /// The aria2 GID of its download, to reattach after a restart.
    pub gid: Option<String>,
    /// Unix milliseconds: created, started downloading, last updated, finished.
    pub created_at: i64,
    /// See `created_at`.
    pub started_at: Option<i64>,
    /// See `created_at`.
    pub updated_at: i64,
    /// See `created_at`.
    pub finished_at: Option<i64>,
    /// A share link of the result, when the destination gave one (a mirror's
    /// `rclone link`).
    pub link: Option<String>,
    /// The instance that holds its lease (several instances on one database), if any.
    pub owner: Option<String>,
    /// Until when the lease holds, Unix milliseconds by the clock that judges it (the
    /// database server's on PostgreSQL, see [`StoreConfig::clock`](crate::StoreConfig::clock)).
    pub lease_until: Option<i64>,
    /// Its fencing token: raised at each claim; a write that carries an older one is
    /// refused ([`Error::Fenced`](crate::Error::Fenced)). 0 until first claimed.
    pub fence: i64,
}

/// One uploaded part of a file (a file over the split size is sent in several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The part's number, from 0.
    pub index: u32,
    /// Its size in bytes.
    pub size: u64,
    /// The Telegram message that carries it (leech).
    pub message_id: Option<i64>,
    /// Its path on the remote (mirror), at most [`limits::PATH`](crate::limits::PATH) bytes.
    pub remote_path: Option<String>,
}

/// A file a task produced, with the parts uploaded so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFile {
    /// Its id.
    pub id: i64,
    /// The task.
    pub task: i64,
    /// Its path inside the task's directory.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Uploaded parts, by index.
    pub parts: Vec<Part>,
}

/// A task with its files, as listed by
/// [`tasks_with_files`](crate::Store::tasks_with_files).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskWithFiles {
    /// The task.
    pub task: Task,
    /// Its files, by id.
    pub files: Vec<TaskFile>,
}

/// Which tasks to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskFilter {
    /// Queued, downloading or uploading: what a restart must resume. Seeding tasks
    /// are not in it: their upload is done, and aria2's own session resumes seeding.
    Unfinished,
    /// Every task of one chat.
    Chat(i64),
    /// The most recent tasks, newest first.
    Recent(u32),
}

/// A user with a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The Telegram user id.
    pub id: i64,
    /// What they may do.
    pub role: Role,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
}

/// A user's settings; `None` means "the bot's default".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserSettings {
    /// Leech as documents (`true`) or as media (`false`).
    pub as_document: Option<bool>,
    /// Split uploads into parts of at most this many bytes.
    pub split_size: Option<u64>,
    /// Where mirrors go (an rclone remote and path), at most
    /// [`limits::UPLOAD_DEST`](crate::limits::UPLOAD_DEST) bytes.
    pub upload_dest: Option<String>,
    /// Prefixed to uploaded files' names, at most
    /// [`limits::NAME_PREFIX`](crate::limits::NAME_PREFIX) bytes.
    pub name_prefix: Option<String>,
}

/// The live status message of a chat, which the bot edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusMessage {
    /// The chat.
    pub chat: i64,
    /// The message being edited.
    pub message_id: i64,
    /// Unix milliseconds of the last edit recorded.
    pub updated_at: i64,
}

/// A privileged action to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// Who did it.
    pub actor: i64,
    /// What (`auth`, `addsudo`, `restart`, …), at most
    /// [`limits::AUDIT_ACTION`](crate::limits::AUDIT_ACTION) bytes.
    pub action: String,
    /// To whom or what (a user or chat id).
    pub target: Option<i64>,
    /// Anything else, at most [`limits::AUDIT_DETAIL`](crate::limits::AUDIT_DETAIL) bytes.
    pub detail: Option<String>,
}

/// A recorded privileged action. The audit log is append-only: the store has no API
/// to change or delete entries, and the database refuses `UPDATE` and `DELETE` on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id, increasing.
    pub id: i64,
    /// Who did it.
    pub actor: i64,
    /// What.
    pub action: String,
    /// To whom or what.
    pub target: Option<i64>,
    /// Anything else.
    pub detail: Option<String>,
    /// Unix milliseconds.
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_text() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), *s);
        }
        for r in Role::ALL {
            assert_eq!(r.to_string().parse::<Role>().unwrap(), *r);
        }
        assert!("nope".parse::<TaskKind>().is_err());
        assert!(TaskState::Cancelled.is_finished() && !TaskState::Seeding.is_finished());
    }
}

/// A file sent to Telegram, remembered by its content so that the same bytes are sent
/// again by `file_id` instead of a second upload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentFile {
    /// SHA-256 of the content, lowercase hex (64 characters).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Telegram's `file_id` for it.
    pub file_id: String,
    /// The name it was sent under.
    pub file_name: String,
    /// A cheap fingerprint of the content (the sender's choice, e.g. a hash of its first
    /// and last blocks), so that content that cannot match is told apart by size and
    /// probe without hashing it whole; see [`Store::has_sent_file_like`](crate::Store::has_sent_file_like).
    pub probe: Option<String>,
}

impl SentFile {
    /// A record of `file_id` for content `sha256` of `size` bytes sent as `file_name`.
    pub fn new(
        sha256: impl Into<String>,
        size: u64,
        file_id: impl Into<String>,
        file_name: impl Into<String>,
    ) -> Self {
        Self {
            sha256: sha256.into(),
            size,
            file_id: file_id.into(),
            file_name: file_name.into(),
            probe: None,
        }
    }

    /// With a probe (at most 64 characters).
    pub fn probe(mut self, probe: impl Into<String>) -> Self {
        self.probe = Some(probe.into());
        self
    }
}
