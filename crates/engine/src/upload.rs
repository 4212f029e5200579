//! The upload seam: [`Uploader`] and the types it speaks. Telegram (leech) and rclone
//! (mirror) are the implementations; later destinations plug in here.

use std::fmt;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::Result;

/// A part of a file already sent (or copied), as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentPart {
    /// The part's number, from 0.
    pub index: u32,
    /// Its size in bytes.
    pub size: u64,
    /// The Telegram message that carries it (leech).
    pub message_id: Option<i64>,
    /// Its path on the remote (mirror).
    pub remote_path: Option<String>,
}

impl SentPart {
    /// A part sent to Telegram as message `message_id`.
    pub fn message(index: u32, size: u64, message_id: i64) -> Self {
        Self { index, size, message_id: Some(message_id), remote_path: None }
    }

    /// A file copied to `remote_path`.
    pub fn remote(index: u32, size: u64, remote_path: impl Into<String>) -> Self {
        Self { index, size, message_id: None, remote_path: Some(remote_path.into()) }
    }
}

/// A file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadFile {
    /// Its row in the store (`task_files.id`).
    pub id: i64,
    /// Its path on disk.
    pub path: PathBuf,
    /// Its path relative to the task's directory, as the destination should name it.
    pub relative: String,
    /// Its size.
    pub size: u64,
    /// Parts confirmed before (after a restart): the uploader does not send them again.
    pub sent: Vec<SentPart>,
}

impl UploadFile {
    /// A file with nothing sent yet.
    pub fn new(id: i64, path: impl Into<PathBuf>, relative: impl Into<String>, size: u64) -> Self {
        Self { id, path: path.into(), relative: relative.into(), size, sent: Vec::new() }
    }
}

/// What to upload: a task's files, under the task's name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadRequest {
    /// The task.
    pub task: i64,
    /// The task's name (the download's name), for captions and the remote folder.
    pub name: String,
    /// The task's directory.
    pub root: PathBuf,
    /// The files, in the order to send them.
    pub files: Vec<UploadFile>,
}

impl UploadRequest {
    /// Uploads `files` of task `task`, named `name`, from `root`.
    pub fn new(task: i64, name: impl Into<String>, root: impl Into<PathBuf>, files: Vec<UploadFile>) -> Self {
        Self { task, name: name.into(), root: root.into(), files }
    }
}

/// Upload progress over the whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UploadProgress {
    /// Bytes sent, counting parts confirmed before.
    pub sent: u64,
    /// Bytes in all.
    pub total: u64,
}

impl UploadProgress {
    /// `sent` of `total` bytes.
    pub fn new(sent: u64, total: u64) -> Self {
        Self { sent, total }
    }
}

/// Records each part as the destination confirms it, before the next one goes out, so
/// that a restart resumes from the first part not confirmed. The pipeline's
/// implementation writes `file_parts` through the store.
#[async_trait::async_trait]
pub trait PartLog: Send + Sync {
    /// Part `part` of file `file` (its store id) is confirmed.
    async fn record(&self, file: i64, part: &SentPart) -> Result<()>;
}

/// What an upload ran with besides its request.
#[non_exhaustive]
pub struct UploadContext<'a> {
    /// Where to record confirmed parts.
    pub parts: &'a dyn PartLog,
    /// Called with progress as bytes go out.
    pub progress: &'a (dyn Fn(UploadProgress) + Send + Sync),
    /// Cancelled when the task is; the upload stops and returns
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
    pub cancel: CancellationToken,
    /// With several instances: until when (Unix milliseconds, moved on at each lease
    /// renewal) this instance surely holds the task. Past it nothing more may go out:
    /// an instance paused past its lease must not send what the new holder sends.
    pub lease: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

impl<'a> UploadContext<'a> {
    /// A context.
    pub fn new(
        parts: &'a dyn PartLog,
        progress: &'a (dyn Fn(UploadProgress) + Send + Sync),
        cancel: CancellationToken,
    ) -> Self {
        Self { parts, progress, cancel, lease: None }
    }

    /// Sends nothing past `lease` (see [`lease`](Self::lease)).
    pub fn with_lease(mut self, lease: std::sync::Arc<std::sync::atomic::AtomicI64>) -> Self {
        self.lease = Some(lease);
        self
    }
}

impl fmt::Debug for UploadContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadContext")
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// What an upload produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UploadOutcome {
    /// Where the files went: the remote path (mirror) or the chat's messages (leech).
    pub location: Option<String>,
    /// A link to share, when the destination offers one (`rclone link`, a message link).
    pub link: Option<String>,
    /// Parts sent by this call (not counting ones confirmed before it).
    pub parts_sent: u32,
    /// Files sent by reference instead of uploading again (Telegram `file_id` reuse).
    pub reused: u32,
}

/// Sends a task's files to a destination.
#[async_trait::async_trait]
pub trait Uploader: Send + Sync + fmt::Debug {
    /// Uploads `request`'s files, skipping parts already sent, recording each part as it
    /// is confirmed.
    async fn upload(&self, request: &UploadRequest, context: UploadContext<'_>) -> Result<UploadOutcome>;
}
