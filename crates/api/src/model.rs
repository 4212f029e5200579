//! The JSON the API answers with. Field names and meanings are stable: fields may be
//! added, none is renamed or removed without a new `/api/v2`.

use mltb_engine::{TaskView, Waiting};
use mltb_store::Task;
use serde::{Deserialize, Serialize};

use crate::engine::QueueCounts;
use crate::metrics::{DiskStats, ProcessStats};

/// A task, from the engine's live view, the store's row, or both merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskInfo {
    /// Its id.
    pub id: i64,
    /// The chat it came from.
    pub chat: i64,
    /// The user who asked for it.
    pub user: i64,
    /// `mirror` or `leech`; `null` when only the live view was at hand (a seeding task
    /// older than the rows read).
    pub kind: Option<String>,
    /// Its name, once known.
    pub name: Option<String>,
    /// `queued`, `downloading`, `uploading`, `seeding`, `completed`, `failed` or
    /// `cancelled`.
    pub state: String,
    /// Whether it is running in this process (its progress is live).
    pub live: bool,
    /// Bytes done in the current stage (download, then upload).
    pub done_bytes: u64,
    /// Bytes in all in the current stage, when known.
    pub size_bytes: Option<u64>,
    /// Bytes per second now (0 when not live).
    pub speed_bytes_per_second: u64,
    /// Why it waits, when queued: `all`, `download`, `upload`, `user`, `disk`, `turn`.
    pub waiting: Option<String>,
    /// Whether it waits, paused, for its torrent's files to be chosen on the selection
    /// page (`-s`).
    #[serde(default)]
    pub choosing: bool,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// When it was created, in Unix milliseconds (`null` when only the live view was at
    /// hand).
    pub created_at_ms: Option<i64>,
    /// When it finished, in Unix milliseconds.
    pub finished_at_ms: Option<i64>,
}

fn waiting(w: Waiting) -> &'static str {
    match w {
        Waiting::All => "all",
        Waiting::Download => "download",
        Waiting::Upload => "upload",
        Waiting::User => "user",
        Waiting::Disk => "disk",
        Waiting::Turn => "turn",
        _ => "other",
    }
}

impl TaskInfo {
    /// A task from its stored row and, when it runs here, its live view (whose state and
    /// progress win: they are newer).
    pub fn new(row: Option<&Task>, view: Option<&TaskView>) -> Option<Self> {
        let (id, chat, user) = match (row, view) {
            (Some(t), _) => (t.id, t.chat, t.user),
            (None, Some(v)) => (v.id, v.chat, v.user),
            (None, None) => return None,
        };
        let mut info = Self {
            id,
            chat,
            user,
            kind: row.map(|t| t.kind.as_str().to_owned()),
            name: row.and_then(|t| t.name.clone()),
            state: row.map_or("queued", |t| t.state.as_str()).to_owned(),
            live: view.is_some(),
            done_bytes: row.map_or(0, |t| t.progress.done),
            size_bytes: row.and_then(|t| t.progress.total),
            speed_bytes_per_second: 0,
            waiting: None,
            choosing: false,
            error: row.and_then(|t| t.error.clone()),
            created_at_ms: row.map(|t| t.created_at),
            finished_at_ms: row.and_then(|t| t.finished_at),
        };
        if let Some(v) = view {
            info.state = v.state.as_str().to_owned();
            info.name = v.name.clone().or(info.name);
            info.done_bytes = v.done;
            info.size_bytes = (v.total > 0).then_some(v.total);
            info.speed_bytes_per_second = v.speed;
            info.waiting = v.waiting.map(|w| waiting(w).to_owned());
            info.choosing = v.choosing;
            info.error = v.error.clone().or(info.error);
        }
        Some(info)
    }
}

/// `GET /api/v1/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskList {
    /// Unfinished tasks, whichever process runs them, oldest first; then, when asked
    /// for, finished ones, newest first.
    pub tasks: Vec<TaskInfo>,
}

/// `POST /api/v1/tasks/{id}/cancel`, when the task was running here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CancelAccepted {
    /// The task.
    pub id: i64,
    /// Always `true`: the task is being cancelled (its download, upload and files go;
    /// its state becomes `cancelled` shortly).
    pub cancelling: bool,
}

/// Live tasks by state, in `GET /api/v1/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskCounts {
    /// Waiting for a download slot.
    pub queued: u64,
    /// Downloading.
    pub downloading: u64,
    /// Uploading.
    pub uploading: u64,
    /// Seeding after the upload.
    pub seeding: u64,
}

/// Bytes, in `GET /api/v1/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ByteCounts {
    /// Bytes downloaded since start (as fed by the binary).
    pub downloaded: u64,
    /// Bytes uploaded since start (as fed by the binary).
    pub uploaded: u64,
    /// Bytes done in the current stage of the live tasks.
    pub live_done: u64,
    /// Bytes in all in the current stage of the live tasks (unknown sizes count 0).
    pub live_size: u64,
    /// Bytes per second moved by the live tasks now.
    pub live_speed: u64,
}

/// The download directory's disk, in `GET /api/v1/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DiskInfo {
    /// The directory.
    pub dir: String,
    /// Its file system's figures.
    #[serde(flatten)]
    pub stats: DiskStats,
}

/// `GET /api/v1/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// Seconds since the API's metrics were made (about the process's uptime).
    pub uptime_seconds: f64,
    /// Tasks running here, by state.
    pub tasks: TaskCounts,
    /// The queue's slots.
    pub queue: QueueCounts,
    /// Bytes moved.
    pub bytes: ByteCounts,
    /// The download directory's disk (`null` when none is configured or it cannot be
    /// read).
    pub disk: Option<DiskInfo>,
    /// The process's CPU time, memory and file descriptors.
    pub process: ProcessStats,
}

/// The body of every error answer: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, naming the input at fault.
    pub error: String,
}
