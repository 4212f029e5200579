//! What the scheduler sends: the Bot API calls that Telegram rate-limits.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use frankenstein::ParseMode;
use frankenstein::methods::{
    DeleteMessageParams, EditMessageTextParams, SendDocumentParams, SendMessageParams, SendVideoParams,
};
use frankenstein::types::{ChatId, InlineKeyboardMarkup, Message, MessageEntity};

/// A chat as the scheduler keys it: a numeric id or an `@username`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChatKey {
    /// A numeric chat id; negative for groups, supergroups and channels.
    Id(i64),
    /// `@channelusername` (counted as a channel). Not unified with the numeric id.
    Username(String),
}

impl ChatKey {
    /// Whether the per-group limit applies (negative ids and `@channel` usernames).
    pub fn is_group(&self) -> bool {
        match self {
            ChatKey::Id(id) => *id < 0,
            ChatKey::Username(_) => true,
        }
    }
}

impl From<&ChatId> for ChatKey {
    fn from(id: &ChatId) -> Self {
        match id {
            ChatId::Integer(i) => ChatKey::Id(*i),
            ChatId::String(s) => ChatKey::Username(s.to_ascii_lowercase()),
        }
    }
}

impl From<i64> for ChatKey {
    fn from(id: i64) -> Self {
        ChatKey::Id(id)
    }
}

/// A rate-limited Bot API call. Callback answers and other calls are not scheduled: call
/// the client directly.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// `sendMessage`.
    SendMessage(SendMessageParams),
    /// `editMessageText`; edits of the same message are coalesced.
    EditMessageText(EditMessageTextParams),
    /// `deleteMessage`.
    DeleteMessage(DeleteMessageParams),
    /// `sendDocument`.
    SendDocument(SendDocumentParams),
    /// `sendVideo`.
    SendVideo(SendVideoParams),
    /// `sendDocument` (or `sendVideo`, see [`SendDocumentSlice::as_video`]) of a byte
    /// range of a file on disk, streamed: a part of a split file, or a whole file.
    SendDocumentSlice(Box<SendDocumentSlice>),
}

/// A byte range of a file on disk, sent as a document of its own without being copied or
/// read into memory: the parts of a file too large for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileSlice {
    /// The file.
    pub path: PathBuf,
    /// Where the range starts.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// The document's file name, e.g. `movie.mkv.001`.
    pub file_name: String,
}

impl FileSlice {
    /// Bytes `offset .. offset + len` of `path`, sent as `file_name`.
    pub fn new(path: impl Into<PathBuf>, offset: u64, len: u64, file_name: impl Into<String>) -> Self {
        Self { path: path.into(), offset, len, file_name: file_name.into() }
    }
}

/// Called with `(bytes sent, bytes in all)` as an upload's body goes out. Compared by
/// identity.
#[derive(Clone)]
pub struct ProgressHook(pub Arc<dyn Fn(u64, u64) + Send + Sync>);

impl ProgressHook {
    /// A hook calling `f`.
    pub fn new(f: impl Fn(u64, u64) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl PartialEq for ProgressHook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// Sees every block of an upload's body as it is read from disk: `(offset within the
/// slice, bytes)`, in order, on the reading thread (so it should be quick: hashing is
/// fine). A retried request reads the slice again from offset 0. Compared by identity.
#[derive(Clone)]
pub struct BlockHook(pub Arc<BlockFn>);

/// What a [`BlockHook`] calls.
pub type BlockFn = dyn Fn(u64, &[u8]) + Send + Sync;

impl BlockHook {
    /// A hook calling `f`.
    pub fn new(f: impl Fn(u64, &[u8]) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl PartialEq for BlockHook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for BlockHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlockHook")
    }
}

/// `sendDocument` of a [`FileSlice`], or `sendVideo` when [`as_video`](Self::as_video)
/// is set: either way under the slice's file name, with progress, abort and block hooks.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SendDocumentSlice {
    /// Where to.
    pub chat_id: ChatId,
    /// What.
    pub slice: FileSlice,
    /// Sent with `sendVideo` as a streamable video (`supports_streaming`), not as a
    /// document.
    pub as_video: bool,
    /// The caption.
    pub caption: Option<String>,
    /// How the caption is parsed.
    pub parse_mode: Option<ParseMode>,
    /// Called as the body goes out.
    pub progress: Option<ProgressHook>,
    /// When set to `true`, the upload stops at its next 256 KiB block and the request fails
    /// with a network error (the bytes already sent are lost with the connection).
    pub abort: Option<AbortFlag>,
    /// Sees each block read from disk (e.g. to hash the part while it goes out).
    pub observe: Option<BlockHook>,
}

/// A flag that stops an upload in flight once set. Clones share it; compared by identity.
///
/// It may also carry a deadline (Unix milliseconds, which its owner may move on): past
/// it, the flag counts as set. For uploads that may only go on while a lease holds —
/// an instance paused past its lease must not send what another instance now sends.
#[derive(Debug, Clone, Default)]
pub struct AbortFlag(Arc<AbortState>);

#[derive(Debug, Default)]
struct AbortState {
    set: std::sync::atomic::AtomicBool,
    deadline: Option<Arc<std::sync::atomic::AtomicI64>>,
}

impl AbortFlag {
    /// A flag not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag not set that counts as set once the Unix time in milliseconds passes
    /// `deadline` (read at each check, so moving it on extends the upload's life).
    pub fn with_deadline(deadline: Arc<std::sync::atomic::AtomicI64>) -> Self {
        Self(Arc::new(AbortState {
            set: std::sync::atomic::AtomicBool::new(false),
            deadline: Some(deadline),
        }))
    }

    /// Sets it: uploads watching it stop.
    pub fn set(&self) {
        self.0.set.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether it is set, or its deadline has passed.
    pub fn is_set(&self) -> bool {
        self.0.set.load(std::sync::atomic::Ordering::Acquire)
            || self.0.deadline.as_ref().is_some_and(|d| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX));
                now > d.load(std::sync::atomic::Ordering::Acquire)
            })
    }
}

impl PartialEq for AbortFlag {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl SendDocumentSlice {
    /// `slice` to `chat_id`, no caption.
    pub fn new(chat_id: impl Into<ChatId>, slice: FileSlice) -> Self {
        Self {
            chat_id: chat_id.into(),
            slice,
            as_video: false,
            caption: None,
            parse_mode: None,
            progress: None,
            abort: None,
            observe: None,
        }
    }

    /// Sends it with `sendVideo`, as a video that can be played while it streams.
    pub fn as_video(mut self) -> Self {
        self.as_video = true;
        self
    }

    /// The Bot API method it goes by: `sendDocument` or `sendVideo`.
    pub fn method(&self) -> &'static str {
        if self.as_video { "sendVideo" } else { "sendDocument" }
    }

    /// The form field its bytes go in: `document` or `video`.
    pub fn field(&self) -> &'static str {
        if self.as_video { "video" } else { "document" }
    }

    /// A caption in Telegram HTML.
    pub fn caption_html(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self.parse_mode = Some(ParseMode::Html);
        self
    }

    /// A progress hook.
    pub fn progress(mut self, hook: ProgressHook) -> Self {
        self.progress = Some(hook);
        self
    }

    /// Shows `hook` each block read from disk.
    pub fn observe(mut self, hook: BlockHook) -> Self {
        self.observe = Some(hook);
        self
    }

    /// Stops the upload once `flag` is set (a cancelled task).
    pub fn abort_when(mut self, flag: AbortFlag) -> Self {
        self.abort = Some(flag);
        self
    }
}

impl Request {
    /// A plain `sendMessage`.
    pub fn send_message(chat_id: impl Into<ChatId>, text: impl Into<String>) -> Self {
        Request::SendMessage(SendMessageParams::builder().chat_id(chat_id).text(text).build())
    }

    /// A `sendMessage` of Telegram HTML (`parse_mode=HTML`; escape text with
    /// [`format::escape`](crate::format::escape)).
    pub fn send_html(chat_id: impl Into<ChatId>, html: impl Into<String>) -> Self {
        Request::SendMessage(
            SendMessageParams::builder().chat_id(chat_id).text(html).parse_mode(ParseMode::Html).build(),
        )
    }

    /// A plain `editMessageText`.
    pub fn edit_message_text(chat_id: impl Into<ChatId>, message_id: i32, text: impl Into<String>) -> Self {
        Request::EditMessageText(
            EditMessageTextParams::builder().chat_id(chat_id).message_id(message_id).text(text).build(),
        )
    }

    /// An `editMessageText` to Telegram HTML (`parse_mode=HTML`).
    pub fn edit_message_html(chat_id: impl Into<ChatId>, message_id: i32, html: impl Into<String>) -> Self {
        Request::EditMessageText(
            EditMessageTextParams::builder()
                .chat_id(chat_id)
                .message_id(message_id)
                .text(html)
                .parse_mode(ParseMode::Html)
                .build(),
        )
    }

    /// A `deleteMessage`.
    pub fn delete_message(chat_id: impl Into<ChatId>, message_id: i32) -> Self {
        Request::DeleteMessage(DeleteMessageParams::builder().chat_id(chat_id).message_id(message_id).build())
    }

    /// The Bot API method name.
    pub fn method(&self) -> &'static str {
        match self {
            Request::SendMessage(_) => "sendMessage",
            Request::EditMessageText(_) => "editMessageText",
            Request::DeleteMessage(_) => "deleteMessage",
            Request::SendDocument(_) => "sendDocument",
            Request::SendVideo(_) => "sendVideo",
            Request::SendDocumentSlice(p) => p.method(),
        }
    }

    /// The chat the request goes to; `None` for inline-message edits (only the global
    /// limit applies to those).
    pub fn chat(&self) -> Option<ChatKey> {
        match self {
            Request::SendMessage(p) => Some((&p.chat_id).into()),
            Request::EditMessageText(p) => p.chat_id.as_ref().map(Into::into),
            Request::DeleteMessage(p) => Some((&p.chat_id).into()),
            Request::SendDocument(p) => Some((&p.chat_id).into()),
            Request::SendVideo(p) => Some((&p.chat_id).into()),
            Request::SendDocumentSlice(p) => Some((&p.chat_id).into()),
        }
    }

    /// Whether the request uploads a file (it then runs beside the chat's queue).
    pub fn is_upload(&self) -> bool {
        matches!(self, Request::SendDocument(_) | Request::SendVideo(_) | Request::SendDocumentSlice(_))
    }

    /// The message an edit or delete targets.
    pub(crate) fn message_id(&self) -> Option<i32> {
        match self {
            Request::EditMessageText(p) => p.message_id,
            Request::DeleteMessage(p) => Some(p.message_id),
            _ => None,
        }
    }

    /// What an edit or send would make the message show: text as sent, how it is parsed,
    /// and keyboard.
    pub(crate) fn content(&self) -> Option<Content> {
        match self {
            Request::EditMessageText(p) => Some(Content {
                text: p.text.clone().unwrap_or_default(),
                parse_mode: p.parse_mode,
                entities: p.entities.clone(),
                markup: p.reply_markup.clone(),
            }),
            Request::SendMessage(p) => Some(Content {
                text: p.text.clone(),
                parse_mode: p.parse_mode,
                entities: p.entities.clone(),
                markup: match &p.reply_markup {
                    Some(frankenstein::types::ReplyMarkup::InlineKeyboardMarkup(m)) => Some(m.clone()),
                    _ => None,
                },
            }),
            _ => None,
        }
    }
}

/// A message's content as sent, to skip edits that would change nothing.
///
/// Telegram compares the *parsed* text and entities (and the keyboard): the same text,
/// parse mode, entities and keyboard always parse to the same message, so an equal
/// `Content` is never a change. Different input can still parse to the same message
/// (`<b>` and `<strong>`); such an edit is sent, and the server's "message is not
/// modified" resolves it as [`Response::Unchanged`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Content {
    pub(crate) text: String,
    pub(crate) parse_mode: Option<ParseMode>,
    pub(crate) entities: Option<Vec<MessageEntity>>,
    pub(crate) markup: Option<InlineKeyboardMarkup>,
}

/// What a scheduled request resolved to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Response {
    /// The message sent or edited.
    Message(Box<Message>),
    /// `true` (deletes, inline edits).
    Done,
    /// The edit would not change the message: the same text and keyboard were sent last
    /// (skipped client-side), or the server said "message is not modified".
    Unchanged,
}

impl Response {
    /// The message, when the server returned one.
    pub fn message(&self) -> Option<&Message> {
        match self {
            Response::Message(m) => Some(m),
            _ => None,
        }
    }
}
