//! What the scheduler sends: the Bot API calls that Telegram rate-limits.

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
        }
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
