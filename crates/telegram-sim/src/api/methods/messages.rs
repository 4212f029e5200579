//! Text messages: send, edit (text, markup, caption), delete; callback answers.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{
    MAX_CALLBACK_TEXT, admit, caption_param, check_markup, check_reply, finish_caption, finish_text,
    inline_markup, known_chat, markup_param, message_id, new_bot_message, outbound, put_text, reply_param,
    text_param,
};
use crate::api::error::{ApiError, NOT_MODIFIED, QUERY_TOO_OLD};
use crate::api::params::Params;
use crate::entities::{FormattedText, td_error};
use crate::state::{Shared, State, StoredMessage, unix_now};
use crate::types::CallbackAnswer;

fn not_modified() -> ApiError {
    ApiError::bad_request(NOT_MODIFIED.trim_start_matches("Bad Request: "))
}

// messages

pub(super) fn send_message(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let text = text_param(p)?;
    let reply = reply_param(p)?;
    let markup = markup_param(p)?;
    let json = {
        let mut st = shared.lock();
        let chat = known_chat(&st, p)?;
        let reply = check_reply(&st, chat, &reply)?;
        let text = finish_text(text)?;
        check_markup(markup.as_ref())?;
        admit(&mut st, chat)?;
        let (message_id, json) = new_bot_message(shared, &mut st, chat, reply, |m| {
            put_text(m, "text", "entities", Some(&text));
            if let Some(k) = inline_markup(markup.as_ref()) {
                m.insert("reply_markup".into(), k);
            }
        });
        let mut entry = outbound("sendMessage", chat, Some(message_id));
        entry.text = Some(text.text.clone());
        entry.entities = text.entities_json();
        entry.reply_markup = markup.clone();
        st.insert_message(
            chat,
            message_id,
            StoredMessage {
                json: json.clone(),
                from_bot: true,
                text: Some(text),
                caption: None,
                reply_markup: markup,
                edit_count: 0,
                deleted: false,
                file: None,
            },
        );
        st.log(entry);
        json
    };
    shared.sent_notify.notify_waiters();
    Ok(json)
}

/// Which message an edit names: an inline message, or a message of a chat.
enum Target {
    Inline,
    Chat { chat: i64, id: i32 },
}

/// `chat_id` + `message_id`, or `inline_message_id` when both are absent; then
/// `check_message` (`chat not found`, `message to edit not found`).
fn target(st: &State, p: &Params) -> Result<Target, ApiError> {
    let id = message_id(p);
    if p.arg("chat_id").is_empty() && id == 0 {
        if p.arg("inline_message_id").is_empty() {
            return Err(td_error("Message identifier is not specified"));
        }
        return Ok(Target::Inline);
    }
    let chat = known_chat(st, p)?;
    if id <= 0 || st.live_message(chat, id).is_none() {
        return Err(ApiError::bad_request("message to edit not found"));
    }
    Ok(Target::Chat { chat, id })
}

/// The bot's message an edit targets (it exists: `target` checked), or tdlib's refusal.
fn editable(st: &mut State, chat: i64, id: i32) -> Result<&mut StoredMessage, ApiError> {
    let message = st
        .message_mut(chat, id)
        .filter(|m| !m.deleted)
        .ok_or_else(|| ApiError::bad_request("message to edit not found"))?;
    if !message.from_bot {
        return Err(td_error("Message can't be edited"));
    }
    Ok(message)
}

pub(super) fn edit_message_text(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let text = text_param(p)?;
    let markup = markup_param(p)?;
    let mut st = shared.lock();
    let (chat, id) = match target(&st, p)? {
        Target::Inline => {
            let text = finish_text(text)?;
            check_markup(markup.as_ref())?;
            drop(st);
            return edit_inline(shared, "editMessageText", |entry| {
                entry.text = Some(text.text.clone());
                entry.entities = text.entities_json();
                entry.reply_markup = markup;
            });
        }
        Target::Chat { chat, id } => (chat, id),
    };
    let message = editable(&mut st, chat, id)?;
    if message.text.is_none() {
        return Err(td_error("There is no text in the message to edit"));
    }
    let text = finish_text(text)?;
    check_markup(markup.as_ref())?;
    // Telegram compares the parsed text and entities, and the markup.
    if message.text.as_ref() == Some(&text) && message.reply_markup == markup {
        return Err(not_modified());
    }
    admit(&mut st, chat)?;
    let message = editable(&mut st, chat, id)?;
    message.reply_markup = markup.clone();
    message.edit_count += 1;
    update_json(message, |obj| put_text(obj, "text", "entities", Some(&text)));
    let json = message.json.clone();
    let mut entry = outbound("editMessageText", chat, Some(id));
    entry.text = Some(text.text.clone());
    entry.entities = text.entities_json();
    entry.reply_markup = markup;
    message.text = Some(text);
    st.log(entry);
    drop(st);
    shared.sent_notify.notify_waiters();
    Ok(json)
}

fn update_json(message: &mut StoredMessage, change: impl FnOnce(&mut Map<String, Value>)) {
    let markup = inline_markup(message.reply_markup.as_ref());
    if let Some(obj) = message.json.as_object_mut() {
        change(obj);
        obj.insert("edit_date".into(), json!(unix_now()));
        match markup {
            Some(k) => obj.insert("reply_markup".into(), k),
            None => obj.remove("reply_markup"),
        };
    }
}

/// An edit of an inline message (`inline_message_id`): the simulator keeps no such
/// messages, so it admits the call under the global limit, logs it, and answers `true`
/// as the Bot API does for inline messages.
fn edit_inline(
    shared: &Arc<Shared>,
    method: &str,
    fill: impl FnOnce(&mut crate::types::Outbound),
) -> Result<Value, ApiError> {
    let mut st = shared.lock();
    admit(&mut st, 0)?;
    let mut entry = outbound(method, 0, None);
    fill(&mut entry);
    st.log(entry);
    drop(st);
    shared.sent_notify.notify_waiters();
    Ok(json!(true))
}

pub(super) fn edit_reply_markup(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let markup = markup_param(p)?;
    let mut st = shared.lock();
    let (chat, id) = match target(&st, p)? {
        Target::Inline => {
            check_markup(markup.as_ref())?;
            drop(st);
            return edit_inline(shared, "editMessageReplyMarkup", |entry| entry.reply_markup = markup);
        }
        Target::Chat { chat, id } => (chat, id),
    };
    let message = editable(&mut st, chat, id)?;
    check_markup(markup.as_ref())?;
    if message.reply_markup == markup {
        return Err(not_modified());
    }
    admit(&mut st, chat)?;
    let message = editable(&mut st, chat, id)?;
    message.reply_markup = markup.clone();
    message.edit_count += 1;
    update_json(message, |_| {});
    let json = message.json.clone();
    let mut entry = outbound("editMessageReplyMarkup", chat, Some(id));
    entry.reply_markup = markup;
    st.log(entry);
    drop(st);
    shared.sent_notify.notify_waiters();
    Ok(json)
}

pub(super) fn edit_caption(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let markup = markup_param(p)?;
    let caption = caption_param(p)?;
    let mut st = shared.lock();
    let (chat, id) = match target(&st, p)? {
        Target::Inline => {
            let caption = finish_caption(caption)?;
            check_markup(markup.as_ref())?;
            drop(st);
            return edit_inline(shared, "editMessageCaption", |entry| {
                entry.entities = caption.as_ref().and_then(FormattedText::entities_json);
                entry.caption = caption.map(|c| c.text);
                entry.reply_markup = markup;
            });
        }
        Target::Chat { chat, id } => (chat, id),
    };
    let message = editable(&mut st, chat, id)?;
    if message.text.is_some() {
        return Err(td_error("There is no caption in the message to edit"));
    }
    let caption = finish_caption(caption)?;
    check_markup(markup.as_ref())?;
    if message.caption == caption && message.reply_markup == markup {
        return Err(not_modified());
    }
    admit(&mut st, chat)?;
    let message = editable(&mut st, chat, id)?;
    message.reply_markup = markup.clone();
    message.edit_count += 1;
    update_json(message, |obj| put_text(obj, "caption", "caption_entities", caption.as_ref()));
    let json = message.json.clone();
    let mut entry = outbound("editMessageCaption", chat, Some(id));
    entry.caption = caption.as_ref().map(|c| c.text.clone());
    entry.entities = caption.as_ref().and_then(FormattedText::entities_json);
    entry.reply_markup = markup;
    message.caption = caption;
    st.log(entry);
    drop(st);
    shared.sent_notify.notify_waiters();
    Ok(json)
}

/// `Client::process_delete_message_query`: the chat id, the message id, then the chat and
/// the message.
pub(super) fn delete_message(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    if p.arg("chat_id").is_empty() {
        return Err(td_error("Chat identifier is not specified"));
    }
    let id = message_id(p);
    if id == 0 {
        return Err(td_error("Message identifier is not specified"));
    }
    {
        let mut st = shared.lock();
        let chat = known_chat(&st, p)?;
        let message = st
            .message_mut(chat, id)
            .filter(|m| !m.deleted)
            .ok_or_else(|| ApiError::bad_request("message to delete not found"))?;
        message.deleted = true;
        st.log(outbound("deleteMessage", chat, Some(id)));
    }
    shared.sent_notify.notify_waiters();
    Ok(json!(true))
}

pub(super) fn answer_callback(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let id = p.arg("callback_query_id").to_owned();
    let text = p.opt("text");
    if text.as_ref().is_some_and(|t| t.chars().count() > MAX_CALLBACK_TEXT) {
        return Err(ApiError::bad_request("MESSAGE_TOO_LONG"));
    }
    let mut st = shared.lock();
    if !st.answer_callback(&id) {
        return Err(ApiError::bad_request(QUERY_TOO_OLD.trim_start_matches("Bad Request: ")));
    }
    st.push_answer(CallbackAnswer {
        callback_query_id: id,
        text,
        show_alert: p.bool("show_alert"),
        url: p.opt("url"),
        at: Instant::now().into_std(),
    });
    Ok(json!(true))
}
