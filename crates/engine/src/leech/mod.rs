//! Leech: a task's files sent to Telegram as documents (or a video as media), cut into
//! byte-exact numbered parts when larger than the split size, streamed from disk, and
//! sent again by `file_id` when the same bytes were sent before.
//!
//! Each part goes out only after the one before it is confirmed and recorded through the
//! [`PartLog`](crate::PartLog), so after a restart the upload resumes from the first part not confirmed.
//! Telegram has no idempotency key: a part that was in flight when the process was
//! killed, and that Telegram received, is sent again after the restart — at most one
//! duplicate message per kill, never a missing part.

mod parts;

use std::sync::Arc;

use frankenstein::ParseMode;
use frankenstein::input_file::FileUpload;
use frankenstein::methods::{SendDocumentParams, SendVideoParams};
use mltb_telegram::format::{escape, human_size};
use mltb_telegram::scheduler::{
    AbortFlag, BlockHook, FileSlice, ProgressHook, Request, Response, Scheduler, SendDocumentSlice,
};

pub use self::parts::{MAX_PARTS, PartPlan, plan_parts};
use crate::upload::{
    SentPart, UploadContext, UploadFile, UploadOutcome, UploadProgress, UploadRequest, Uploader,
};
use crate::{Error, ErrorKind, Result};

/// The cloud Bot API's upload limit, as Telegram states it: 50 MB.
pub const CLOUD_SPLIT_SIZE: u64 = 50_000_000;
/// A local Bot API server's upload limit: 2000 MiB.
pub const LOCAL_SPLIT_SIZE: u64 = 2000 * 1024 * 1024;

/// Where and how a task's files go to Telegram.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeechTarget {
    /// The chat the task came from.
    pub chat: i64,
    /// A dump chat to upload to instead, when configured.
    pub dump_chat: Option<i64>,
    /// Files larger than this are cut into parts of this size.
    pub split_size: u64,
    /// Send videos as media (`sendVideo`) instead of documents, when not split.
    pub as_media: bool,
    /// Put before each file's name (its parts' names and captions).
    pub name_prefix: String,
}

impl LeechTarget {
    /// Documents to `chat`, split at `split_size` bytes.
    pub fn new(chat: i64, split_size: u64) -> Self {
        Self { chat, dump_chat: None, split_size, as_media: false, name_prefix: String::new() }
    }

    /// Uploads go to `dump_chat` instead of the task's chat.
    pub fn dump_chat(mut self, dump_chat: Option<i64>) -> Self {
        self.dump_chat = dump_chat;
        self
    }

    /// Videos go as media when they fit in one message.
    pub fn as_media(mut self, as_media: bool) -> Self {
        self.as_media = as_media;
        self
    }

    /// Each file's name starts with `prefix` (none by default).
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = prefix.into();
        self
    }

    fn destination(&self) -> i64 {
        self.dump_chat.unwrap_or(self.chat)
    }
}

/// A record of sent content, for [`SentFiles::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sent<'a> {
    /// SHA-256 of the content, lowercase hex.
    pub sha256: &'a str,
    /// The probe: SHA-256 of its first and last 64 KiB, lowercase hex.
    pub probe: &'a str,
    /// Its size in bytes.
    pub size: u64,
    /// Telegram's `file_id` for it.
    pub file_id: &'a str,
    /// The name it went out under.
    pub file_name: &'a str,
}

/// What was sent before, by content: SHA-256 (lowercase hex) → Telegram `file_id` and
/// the name it went out under. The store implements it, so that what is remembered
/// survives a restart.
#[async_trait::async_trait]
pub trait SentFiles: Send + Sync {
    /// The `file_id` of content with this hash, if it was sent under `file_name`. A
    /// document sent by `file_id` shows the name its bytes were first uploaded under, so
    /// the same content under another name (a task renamed with `-n`, another link's
    /// file) goes out again, under its own name.
    async fn get(&self, sha256: &str, file_name: &str) -> Result<Option<String>>;
    /// Whether content of exactly `size` bytes with this probe (a hash of its first and
    /// last blocks) may have been sent: when not, the part cannot be reused and goes out
    /// without waiting for its whole hash. The default answers yes, which is always
    /// correct and only slower.
    async fn may_hold(&self, size: u64, probe: &str) -> Result<bool> {
        let _ = (size, probe);
        Ok(true)
    }
    /// Remembers that content with this hash and probe was sent as `file_id`.
    async fn put(&self, sent: &Sent<'_>) -> Result<()>;
    /// Forgets a `file_id` Telegram no longer accepts.
    async fn forget(&self, sha256: &str) -> Result<()>;
}

#[async_trait::async_trait]
impl<B: mltb_store::Backend> SentFiles for mltb_store::Store<B> {
    async fn get(&self, sha256: &str, file_name: &str) -> Result<Option<String>> {
        let sent = self.sent_file(sha256).await.map_err(store_error)?;
        Ok(sent.filter(|f| f.file_name == recorded_name(file_name)).map(|f| f.file_id))
    }

    async fn may_hold(&self, size: u64, probe: &str) -> Result<bool> {
        self.has_sent_file_like(size, probe).await.map_err(store_error)
    }

    async fn put(&self, sent: &Sent<'_>) -> Result<()> {
        let name = recorded_name(sent.file_name);
        let record = mltb_store::SentFile::new(sent.sha256, sent.size, sent.file_id, name).probe(sent.probe);
        self.remember_sent_file(&record).await.map_err(store_error)
    }

    async fn forget(&self, sha256: &str) -> Result<()> {
        self.forget_sent_file(sha256).await.map(drop).map_err(store_error)
    }
}

/// A sent file's name as the store records it: its first 120 characters.
fn recorded_name(name: &str) -> String {
    name.chars().take(120).collect()
}

pub(crate) fn store_error(e: mltb_store::Error) -> Error {
    match e {
        mltb_store::Error::Fenced { id } => Error::from(ErrorKind::Fenced { task: id }),
        e => Error::from(ErrorKind::Store(e.to_string())),
    }
}

/// The Telegram [`Uploader`]: sends through the bot's [`Scheduler`], so uploads keep
/// within Telegram's limits beside the status edits.
#[derive(Clone)]
pub struct TelegramUploader {
    scheduler: Scheduler,
    sent: Arc<dyn SentFiles>,
    target: LeechTarget,
}

impl std::fmt::Debug for TelegramUploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramUploader").field("target", &self.target).finish_non_exhaustive()
    }
}

impl TelegramUploader {
    /// An uploader to `target` through `scheduler`, remembering sent content in `sent`.
    pub fn new(scheduler: Scheduler, sent: Arc<dyn SentFiles>, target: LeechTarget) -> Result<Self> {
        if target.split_size == 0 {
            return Err(ErrorKind::Config {
                setting: "split_size",
                value: "0".into(),
                expected: "at least 1 byte (e.g. 50 MB for the cloud Bot API)".into(),
            }
            .into());
        }
        Ok(Self { scheduler, sent, target })
    }

    /// Sends one part: by `file_id` when the same bytes were sent before, else uploaded.
    /// Returns the message id and whether it was sent by reference.
    async fn send_part(
        &self,
        file: &UploadFile,
        part: &PartPlan,
        Outgoing { mut hash, probe, may_reuse, caption, media }: Outgoing,
        report: impl Fn(u64) + Send + Sync + 'static,
        abort: &AbortFlag,
    ) -> Result<(i64, bool)> {
        let chat = self.target.destination();
        if may_reuse && let Some(file_id) = self.sent.get(hash.get().await?, &part.name).await? {
            match self.send(by_reference(chat, file_id, caption.clone(), media)).await {
                Ok((message_id, _)) => {
                    report(part.len);
                    return Ok((message_id, true));
                }
                // A file_id Telegram refuses (it expired, or another bot's) is forgotten and the
                // bytes uploaded.
                Err(e) if !e.is_retryable() => {
                    tracing::info!(error = %e, "a remembered file_id was refused; uploading");
                    self.sent.forget(hash.get().await?).await?;
                }
                Err(e) => return Err(e),
            }
        }
        let hook = ProgressHook::new(move |sent, _| report(sent));
        // A video sent as media is one part, the whole file, and goes under its part's
        // name (the prefix included) as a document's part does.
        let slice = FileSlice::new(&file.path, part.offset, part.len, &part.name);
        let mut send = SendDocumentSlice::new(chat, slice)
            .caption_html(caption)
            .progress(hook)
            .abort_when(abort.clone());
        if media {
            send = send.as_video();
        }
        if let Some(observe) = hash.hook() {
            send = send.observe(observe);
        }
        let request = Request::SendDocumentSlice(Box::new(send));
        let (message_id, file_id) = self.send(request).await?;
        if let Some(file_id) = file_id {
            let sha256 = hash.get().await?;
            let sent =
                Sent { sha256, probe: &probe, size: part.len, file_id: &file_id, file_name: &part.name };
            self.sent.put(&sent).await?;
        }
        Ok((message_id, false))
    }

    async fn send(&self, request: Request) -> Result<(i64, Option<String>)> {
        let response = self.scheduler.send(request).await.map_err(telegram_error)?;
        let message = match &response {
            Response::Message(m) => m,
            other => {
                return Err(ErrorKind::Telegram {
                    reason: format!("no message came back: {other:?}"),
                    retry_after: None,
                }
                .into());
            }
        };
        let file_id = message
            .document
            .as_ref()
            .map(|d| d.file_id.clone())
            .or_else(|| message.video.as_ref().map(|v| v.file_id.clone()));
        Ok((i64::from(message.message_id), file_id))
    }
}

/// What goes out with a part: its content hash and probe (for `file_id` reuse), whether a
/// record of the same size and probe exists (when not, the upload starts while the hash
/// is computed), its caption, and whether it is sent as media.
struct Outgoing {
    hash: PartHash,
    probe: String,
    may_reuse: bool,
    caption: String,
    media: bool,
}

/// A part's SHA-256: read from disk on a blocking thread before the part goes out (when
/// it may be reused), or taken from the blocks the upload reads (when it may not); awaited
/// only when it is needed.
enum PartHash {
    Pending(tokio::task::JoinHandle<Result<String>>),
    Streamed(Arc<parts::StreamHash>),
    Ready(String),
}

impl PartHash {
    /// Hashes the part from disk now.
    fn read(file: &UploadFile, part: &PartPlan) -> Self {
        let (path, offset, len) = (file.path.clone(), part.offset, part.len);
        Self::Pending(tokio::spawn(async move { parts::sha256_of(&path, offset, len).await }))
    }

    /// Hashes the part as its upload reads it.
    fn streamed(part: &PartPlan) -> Self {
        Self::Streamed(Arc::new(parts::StreamHash::new(part.len)))
    }

    /// The hook that feeds a streamed hash.
    fn hook(&self) -> Option<BlockHook> {
        match self {
            Self::Streamed(hash) => {
                let hash = hash.clone();
                Some(BlockHook::new(move |offset, block| hash.feed(offset, block)))
            }
            _ => None,
        }
    }

    async fn get(&mut self) -> Result<&str> {
        let sha256 = match self {
            Self::Ready(sha256) => return Ok(sha256),
            Self::Pending(hashing) => {
                hashing.await.map_err(|e| Error::io("a part's hash", &std::io::Error::other(e)))??
            }
            Self::Streamed(hash) => hash.finish()?,
        };
        *self = Self::Ready(sha256);
        match self {
            Self::Ready(sha256) => Ok(sha256),
            _ => unreachable!("set just above"),
        }
    }
}

fn by_reference(chat: i64, file_id: String, caption: String, media: bool) -> Request {
    if media {
        Request::SendVideo(
            SendVideoParams::builder()
                .chat_id(chat)
                .video(FileUpload::String(file_id))
                .caption(caption)
                .parse_mode(ParseMode::Html)
                .build(),
        )
    } else {
        Request::SendDocument(
            SendDocumentParams::builder()
                .chat_id(chat)
                .document(FileUpload::String(file_id))
                .caption(caption)
                .parse_mode(ParseMode::Html)
                .build(),
        )
    }
}

pub(crate) fn telegram_error(e: mltb_telegram::Error) -> Error {
    let retry_after = e.retry_after();
    Error::from(ErrorKind::Telegram { reason: e.to_string(), retry_after })
}

/// Whether a file goes as a video: by its extension.
fn is_video(name: &str) -> bool {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    matches!(ext.as_str(), "mp4" | "mkv" | "webm" | "mov" | "m4v" | "avi")
}

/// The caption of a part: the file's name, `part i/n` when split, and the size.
fn caption(name: &str, part: &PartPlan, parts: usize) -> String {
    let mut text = format!("<b>{}</b>", escape(name));
    if parts > 1 {
        text.push_str(&format!("\npart {}/{}", part.index + 1, parts));
    }
    text.push_str(&format!("\n{}", escape(&human_size(part.len))));
    text
}

#[async_trait::async_trait]
impl Uploader for TelegramUploader {
    async fn upload(&self, request: &UploadRequest, context: UploadContext<'_>) -> Result<UploadOutcome> {
        let total: u64 = request.files.iter().map(|f| f.size).sum();
        let base = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut outcome = UploadOutcome::default();
        let abort = context.lease.clone().map_or_else(AbortFlag::new, AbortFlag::with_deadline);
        for file in &request.files {
            let file_name = file.relative.rsplit('/').next().unwrap_or(&file.relative);
            let name = format!("{}{file_name}", self.target.name_prefix);
            let plan = plan_parts(&name, file.size, self.target.split_size)?;
            let media = self.target.as_media && plan.len() == 1 && is_video(&name);
            let unsent = |p: &&PartPlan| !file.sent.iter().any(|s| s.index == p.index);
            // A part that may be reused (a record of its size and probe exists) needs its hash before
            // it goes out; that hash is read from disk while the part before it uploads.
            // Any other part starts uploading at once and is hashed from the blocks its
            // upload reads (for the record of what was sent): hashing is then never on the
            // critical path of a first upload, and costs at most one part's hash otherwise.
            let mut prefetch: Option<(u32, PartHash)> = None;
            for part in &plan {
                if !unsent(&part) {
                    base.fetch_add(part.len, std::sync::atomic::Ordering::Relaxed);
                    (context.progress)(UploadProgress::new(
                        base.load(std::sync::atomic::Ordering::Relaxed),
                        total,
                    ));
                    continue;
                }
                if context.cancel.is_cancelled() {
                    return Err(ErrorKind::Cancelled.into());
                }
                let probe = parts::probe_of(&file.path, part.offset, part.len).await?;
                let may_reuse = self.sent.may_hold(part.len, &probe).await?;
                let hash = match prefetch.take() {
                    Some((index, hash)) if index == part.index => hash,
                    _ if may_reuse => PartHash::read(file, part),
                    _ => PartHash::streamed(part),
                };
                if let Some(next) = plan.iter().filter(unsent).find(|p| p.index > part.index)
                    && self
                        .sent
                        .may_hold(next.len, &parts::probe_of(&file.path, next.offset, next.len).await?)
                        .await?
                {
                    prefetch = Some((next.index, PartHash::read(file, next)));
                }
                let done_before = base.load(std::sync::atomic::Ordering::Relaxed);
                let (tx, mut rx) = tokio::sync::watch::channel(0_u64);
                let report = move |sent: u64| {
                    let _ = tx.send(sent);
                };
                let outgoing =
                    Outgoing { hash, probe, may_reuse, caption: caption(&name, part, plan.len()), media };
                let send = self.send_part(file, part, outgoing, report, &abort);
                tokio::pin!(send);
                // In this order when several are ready: a cancel at once; then the bytes the
                // upload read, so that its last in-flight figure is reported before the part
                // is counted done (every part reports progress from its upload, however fast).
                let result = loop {
                    tokio::select! {
                        biased;
                        () = context.cancel.cancelled() => {
                            abort.set();
                            return Err(ErrorKind::Cancelled.into());
                        }
                        Ok(()) = rx.changed() => {
                            let sent = *rx.borrow_and_update();
                            (context.progress)(UploadProgress::new(done_before + sent, total));
                        }
                        result = &mut send => break result,
                    }
                };
                let (message_id, reused) = result?;
                context.parts.record(file.id, &SentPart::message(part.index, part.len, message_id)).await?;
                base.fetch_add(part.len, std::sync::atomic::Ordering::Relaxed);
                (context.progress)(UploadProgress::new(
                    base.load(std::sync::atomic::Ordering::Relaxed),
                    total,
                ));
                outcome.parts_sent += 1;
                outcome.reused += u32::from(reused);
            }
        }
        outcome.location = Some(format!("chat {}", self.target.destination()));
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_name_the_part_and_size() {
        let plan = plan_parts("a <b>.bin", 25, 10).unwrap();
        assert_eq!(caption("a <b>.bin", &plan[1], plan.len()), "<b>a &lt;b&gt;.bin</b>\npart 2/3\n10 B");
        let one = plan_parts("x.iso", 5, 10).unwrap();
        assert_eq!(caption("x.iso", &one[0], 1), "<b>x.iso</b>\n5 B");
    }

    #[test]
    fn videos_are_known_by_extension() {
        assert!(is_video("a.MKV") && is_video("b.mp4"));
        assert!(!is_video("c.iso") && !is_video("mp4"));
    }
}
