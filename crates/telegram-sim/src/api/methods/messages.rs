//! Text messages: send, edit (text, markup, caption), delete; callback answers.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{
    MAX_CALLBACK_TEXT, admit, caption_param, chat_id, check_reply, inline_markup, markup_param, message_id,
    new_bot_message, outbound, reply_to, text_param,
};
use crate::api::error::{ApiError, NOT_MODIFIED, QUERY_TOO_OLD};
use crate::api::params::Params;
use crate::state::{Shared, State, StoredMessage, unix_now};
use crate::types::CallbackAnswer;

// messages

pub(super) fn send_message(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let chat = chat_id(p)?;
    let text = text_param(p)?;
    let markup = markup_param(p)?;
    let reply = reply_to(p)?;
    let json = {
        let mut st = shared.lock();
        check_reply(&st, p, chat, reply)?;
        admit(&mut st, chat)?;
        let (message_id, json) = new_bot_message(shared, &mut st, chat, reply, |m| {
            m.insert("text".into(), json!(text));
            if let Some(k) = inline_markup(&markup) {
                m.insert("reply_markup".into(), k);
            }
        });
        st.messages.insert(
            (chat, message_id),
            StoredMessage {
                json: json.clone(),
                from_bot: true,
                text: Some(text.clone()),
                caption: None,
                reply_markup: markup.clone(),
                edit_count: 0,
                deleted: false,
                file: None,
            },
        );
        let mut entry = outbound("sendMessage", chat, Some(message_id));
        entry.text = Some(text);
        entry.reply_markup = markup;
        st.log(entry);
        json
    };
    shared.sent_notify.notify_waiters();
    Ok(json)
}

/// Finds the bot message an edit targets, or the real errors.
fn editable(st: &mut State, chat: i64, id: i32) -> Result<&mut StoredMessage, ApiError> {
    let message = st
        .messages
        .get_mut(&(chat, id))
        .filter(|m| !m.deleted)
        .ok_or_else(|| ApiError::bad_request("message to edit not found"))?;
    if !message.from_bot {
        return Err(ApiError::bad_request("message can't be edited"));
    }
    Ok(message)
}

pub(super) fn edit_message_text(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let text = text_param(p)?;
    let markup = markup_param(p)?;
    if p.has("inline_message_id") {
        return edit_inline(shared, "editMessageText", |entry| {
            entry.text = Some(text);
            entry.reply_markup = markup;
        });
    }
    let chat = chat_id(p)?;
    let id = message_id(p)?;
    let json = {
        let mut st = shared.lock();
        let message = editable(&mut st, chat, id)?;
        if message.text.is_none() {
            return Err(ApiError::bad_request("there is no text in the message to edit"));
        }
        if message.text.as_deref() == Some(text.as_str()) && message.reply_markup == markup {
            return Err(ApiError::bad_request(NOT_MODIFIED.trim_start_matches("Bad Request: ")));
        }
        admit(&mut st, chat)?;
        let message = editable(&mut st, chat, id)?;
        message.text = Some(text.clone());
        message.reply_markup = markup.clone();
        message.edit_count += 1;
        update_json(message, |obj| {
            obj.insert("text".into(), json!(text));
            obj.remove("entities");
        });
        let json = message.json.clone();
        let mut entry = outbound("editMessageText", chat, Some(id));
        entry.text = Some(text);
        entry.reply_markup = markup;
        st.log(entry);
        json
    };
    shared.sent_notify.notify_waiters();
    Ok(json)
}

fn update_json(message: &mut StoredMessage, change: impl FnOnce(&mut Map<String, Value>)) {
    let markup = inline_markup(&message.reply_markup);
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
    if p.has("inline_message_id") {
        return edit_inline(shared, "editMessageReplyMarkup", |entry| entry.reply_markup = markup);
    }
    let chat = chat_id(p)?;
    let id = message_id(p)?;
    let json = {
        let mut st = shared.lock();
        let message = editable(&mut st, chat, id)?;
        if message.reply_markup == markup {
            return Err(ApiError::bad_request(NOT_MODIFIED.trim_start_matches("Bad Request: ")));
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
        json
    };
    shared.sent_notify.notify_waiters();
    Ok(json)
}

pub(super) fn edit_caption(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let caption = caption_param(p)?;
    let markup = markup_param(p)?;
    if p.has("inline_message_id") {
        return edit_inline(shared, "editMessageCaption", |entry| {
            entry.caption = caption;
            entry.reply_markup = markup;
        });
    }
    let chat = chat_id(p)?;
    let id = message_id(p)?;
    let json = {
        let mut st = shared.lock();
        let message = editable(&mut st, chat, id)?;
        if message.text.is_some() {
            return Err(ApiError::bad_request("there is no caption in the message to edit"));
        }
        if message.caption == caption && message.reply_markup == markup {
            return Err(ApiError::bad_request(NOT_MODIFIED.trim_start_matches("Bad Request: ")));
        }
        admit(&mut st, chat)?;
        let message = editable(&mut st, chat, id)?;
        message.caption = caption.clone();
        message.reply_markup = markup.clone();
        message.edit_count += 1;
        update_json(message, |obj| {
            match &caption {
                Some(c) => obj.insert("caption".into(), json!(c)),
                None => obj.remove("caption"),
            };
        });
        let json = message.json.clone();
        let mut entry = outbound("editMessageCaption", chat, Some(id));
        entry.caption = caption;
        entry.reply_markup = markup;
        st.log(entry);
        json
    };
    shared.sent_notify.notify_waiters();
    Ok(json)
}

pub(super) fn delete_message(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let chat = chat_id(p)?;
    let id = message_id(p)?;
    {
        let mut st = shared.lock();
        let message = st
            .messages
            .get_mut(&(chat, id))
            .filter(|m| !m.deleted)
            .ok_or_else(|| ApiError::bad_request("message to delete not found"))?;
        message.deleted = true;
        st.log(outbound("deleteMessage", chat, Some(id)));
    }
    shared.sent_notify.notify_waiters();
    Ok(json!(true))
}

pub(super) fn answer_callback(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let id = p.str("callback_query_id").unwrap_or_default();
    let text = p.str("text").filter(|t| !t.is_empty());
    if text.as_ref().is_some_and(|t| t.chars().count() > MAX_CALLBACK_TEXT) {
        return Err(ApiError::bad_request("MESSAGE_TOO_LONG"));
    }
    let mut st = shared.lock();
    match st.callbacks.get_mut(&id) {
        Some(answered) if !*answered => *answered = true,
        _ => return Err(ApiError::bad_request(QUERY_TOO_OLD.trim_start_matches("Bad Request: "))),
    }
    st.callback_answers.push(CallbackAnswer {
        callback_query_id: id,
        text,
        show_alert: p.bool("show_alert"),
        url: p.str("url").filter(|u| !u.is_empty()),
        at: Instant::now().into_std(),
    });
    Ok(json!(true))
}
