//! The Bot API methods the simulator implements: dispatch and the validation they share.

mod files;
mod messages;
mod updates;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::error::ApiError;
use super::params::Params;
use crate::state::{Shared, State, chat_json, unix_now};
use crate::types::Outbound;

pub(crate) use files::{Kind, Source, file_json, register};
use files::{get_file, send_file, send_media_group};
use messages::{
    answer_callback, delete_message, edit_caption, edit_message_text, edit_reply_markup, send_message,
};
use updates::get_updates;

/// Canonical names of the implemented methods; lookups are by lowercased name.
pub(crate) const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "editMessageCaption",
    "deleteMessage",
    "answerCallbackQuery",
    "sendDocument",
    "sendVideo",
    "sendPhoto",
    "sendMediaGroup",
    "getFile",
    "getChat",
    "sendChatAction",
    "setMyCommands",
    "getMyCommands",
    "deleteWebhook",
    "setWebhook",
    "getWebhookInfo",
];

pub(crate) const MAX_TEXT: usize = 4096;
pub(crate) const MAX_CAPTION: usize = 1024;
pub(crate) const MAX_CALLBACK_DATA: usize = 64;
pub(crate) const MAX_CALLBACK_TEXT: usize = 200;
pub(super) const MAX_POLL_TIMEOUT: i64 = 3600;
pub(super) const DEFAULT_EXCLUDED: &[&str] = &["chat_member", "message_reaction", "message_reaction_count"];

pub(crate) fn canonical(method: &str) -> Option<&'static str> {
    METHODS.iter().copied().find(|m| m.eq_ignore_ascii_case(method))
}

/// Runs `method` (canonical) with `params`.
pub(crate) async fn call(shared: &Arc<Shared>, method: &str, params: Params) -> Result<Value, ApiError> {
    match method {
        "getMe" => Ok(shared.bot_user()),
        "getUpdates" => get_updates(shared, &params).await,
        "sendMessage" => send_message(shared, &params),
        "editMessageText" => edit_message_text(shared, &params),
        "editMessageReplyMarkup" => edit_reply_markup(shared, &params),
        "editMessageCaption" => edit_caption(shared, &params),
        "getChat" => Ok(chat_json(chat_id(&params)?)),
        "deleteMessage" => delete_message(shared, &params),
        "answerCallbackQuery" => answer_callback(shared, &params),
        "sendDocument" => send_file(shared, params, Kind::Document).await,
        "sendVideo" => send_file(shared, params, Kind::Video).await,
        "sendPhoto" => send_file(shared, params, Kind::Photo).await,
        "sendMediaGroup" => send_media_group(shared, params).await,
        "getFile" => get_file(shared, &params),
        "sendChatAction" => {
            chat_id(&params)?;
            params
                .str("action")
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ApiError::bad_request("action is empty"))?;
            Ok(json!(true))
        }
        "setMyCommands" => {
            let commands = params.json("commands", "commands")?.unwrap_or(json!([]));
            if !commands.is_array() {
                return Err(ApiError::bad_request("can't parse commands JSON object"));
            }
            shared.lock().commands = commands;
            Ok(json!(true))
        }
        "getMyCommands" => Ok(shared.lock().commands.clone()),
        "deleteWebhook" => {
            let mut st = shared.lock();
            st.webhook_url.clear();
            if params.bool("drop_pending_updates") {
                st.updates.clear();
            }
            Ok(json!(true))
        }
        "setWebhook" => {
            shared.lock().webhook_url = params.str("url").unwrap_or_default();
            Ok(json!(true))
        }
        "getWebhookInfo" => {
            let st = shared.lock();
            Ok(
                json!({ "url": st.webhook_url, "has_custom_certificate": false, "pending_update_count": st.updates.len() }),
            )
        }
        _ => Err(ApiError::method_not_found()),
    }
}

// validation helpers

pub(super) fn chat_id(p: &Params) -> Result<i64, ApiError> {
    match p.str("chat_id") {
        None => Err(ApiError::bad_request("chat_id is empty")),
        Some(s) if s.is_empty() => Err(ApiError::bad_request("chat_id is empty")),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(0) | Err(_) => Err(ApiError::bad_request("chat not found")),
            Ok(id) => Ok(id),
        },
    }
}

pub(super) fn message_id(p: &Params) -> Result<i32, ApiError> {
    let id =
        p.i64("message_id")?.ok_or_else(|| ApiError::bad_request("message identifier is not specified"))?;
    i32::try_from(id).map_err(|_| ApiError::bad_request("message identifier is not specified"))
}

/// Length in characters as the API counts them "after entities parsing": for HTML the tags
/// are dropped and entities count as one character; Markdown is counted as written.
pub(crate) fn visible_len(text: &str, parse_mode: Option<&str>) -> usize {
    if !parse_mode.is_some_and(|m| m.eq_ignore_ascii_case("html")) {
        return text.chars().count();
    }
    let mut len = 0;
    let mut in_tag = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            '&' => {
                let rest: String = chars.clone().take(8).collect();
                if let Some(end) = rest.find(';') {
                    chars.nth(end);
                }
                len += 1;
            }
            _ => len += 1,
        }
    }
    len
}

pub(super) fn text_param(p: &Params) -> Result<String, ApiError> {
    let text = p.str("text").unwrap_or_default();
    let len = visible_len(&text, p.str("parse_mode").as_deref());
    if text.trim().is_empty() || len == 0 {
        return Err(ApiError::bad_request("message text is empty"));
    }
    if len > MAX_TEXT {
        return Err(ApiError::bad_request("message is too long"));
    }
    Ok(text)
}

pub(super) fn caption_param(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(caption) = p.str("caption").filter(|c| !c.is_empty()) else { return Ok(None) };
    if visible_len(&caption, p.str("parse_mode").as_deref()) > MAX_CAPTION {
        return Err(ApiError::bad_request("message caption is too long"));
    }
    Ok(Some(caption))
}

/// Drops `null` members, so markups compare equal however a client serialised them.
pub(super) fn normalize(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, normalize(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

pub(crate) fn check_markup(markup: &Value) -> Result<(), ApiError> {
    let Some(rows) = markup.get("inline_keyboard") else { return Ok(()) };
    let rows = rows.as_array().ok_or_else(|| ApiError::bad_request("can't parse inline keyboard button"))?;
    for button in rows.iter().filter_map(Value::as_array).flatten() {
        if let Some(data) = button.get("callback_data") {
            let len = data.as_str().map_or(0, str::len);
            if !(1..=MAX_CALLBACK_DATA).contains(&len) {
                return Err(ApiError::bad_request("BUTTON_DATA_INVALID"));
            }
        }
    }
    Ok(())
}

pub(super) fn markup_param(p: &Params) -> Result<Option<Value>, ApiError> {
    let Some(markup) = p.json("reply_markup", "reply keyboard markup")? else { return Ok(None) };
    if !markup.is_object() {
        return Err(ApiError::bad_request("can't parse reply keyboard markup JSON object"));
    }
    check_markup(&markup)?;
    Ok(Some(normalize(markup)))
}

pub(super) fn reply_to(p: &Params) -> Result<Option<i32>, ApiError> {
    let id = match p.json("reply_parameters", "reply parameters")? {
        Some(rp) => rp.get("message_id").and_then(Value::as_i64),
        None => p.i64("reply_to_message_id")?,
    };
    Ok(id.and_then(|id| i32::try_from(id).ok()))
}

/// Admits a send/edit under the flood limits and records it.
pub(super) fn admit(st: &mut State, chat: i64) -> Result<(), ApiError> {
    if st.blocked.contains(&chat) {
        return Err(ApiError::new(403, "Forbidden: bot was blocked by the user"));
    }
    let now = Instant::now();
    if st.rate_limits_enabled
        && let Some(limits) = st.rate_limits
    {
        st.limiter.check(&limits, chat, now).map_err(ApiError::retry_after)?;
    }
    st.accepted.push((chat, now));
    Ok(())
}

pub(super) fn outbound(method: &str, chat_id: i64, message_id: Option<i32>) -> Outbound {
    Outbound {
        seq: 0,
        at: Instant::now().into_std(),
        method: method.to_owned(),
        chat_id,
        message_id,
        text: None,
        caption: None,
        reply_markup: None,
        file: None,
    }
}

/// Creates a bot message in `chat`, stores it and returns its JSON.
pub(super) fn new_bot_message(
    shared: &Shared,
    st: &mut State,
    chat: i64,
    reply_to: Option<i32>,
    fill: impl FnOnce(&mut Map<String, Value>),
) -> (i32, Value) {
    let message_id = st.alloc_message_id(chat);
    let mut obj = Map::new();
    obj.insert("message_id".into(), json!(message_id));
    obj.insert("from".into(), shared.bot_user());
    obj.insert("chat".into(), chat_json(chat));
    obj.insert("date".into(), json!(unix_now()));
    if let Some(reply) = reply_to.and_then(|id| st.live_message(chat, id)) {
        obj.insert("reply_to_message".into(), reply.json.clone());
    }
    fill(&mut obj);
    (message_id, Value::Object(obj))
}

pub(super) fn inline_markup(markup: &Option<Value>) -> Option<Value> {
    markup.as_ref().filter(|m| m.get("inline_keyboard").is_some()).cloned()
}

pub(super) fn check_reply(st: &State, p: &Params, chat: i64, reply: Option<i32>) -> Result<(), ApiError> {
    let allow_missing = p.bool("allow_sending_without_reply")
        || p.json("reply_parameters", "reply parameters")?
            .and_then(|rp| rp.get("allow_sending_without_reply").and_then(Value::as_bool))
            .unwrap_or(false);
    match reply {
        Some(id) if !allow_missing && st.live_message(chat, id).is_none() => {
            Err(ApiError::bad_request("message to be replied not found"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_length_skips_tags_and_counts_entities_once() {
        assert_eq!(visible_len("<b>hi</b> &amp; x", Some("HTML")), 6);
        assert_eq!(visible_len("<b>hi</b>", None), 9);
        assert_eq!(visible_len("héllo", None), 5);
    }

    #[test]
    fn callback_data_over_64_bytes_is_invalid() {
        let ok = json!({"inline_keyboard": [[{"text": "a", "callback_data": "x".repeat(64)}]]});
        check_markup(&ok).unwrap();
        let long = json!({"inline_keyboard": [[{"text": "a", "callback_data": "é".repeat(33)}]]});
        assert_eq!(check_markup(&long).unwrap_err().description, "Bad Request: BUTTON_DATA_INVALID");
        let empty = json!({"inline_keyboard": [[{"text": "a", "callback_data": ""}]]});
        assert!(check_markup(&empty).is_err());
    }

    #[test]
    fn method_names_are_case_insensitive() {
        assert_eq!(canonical("SENDMESSAGE"), Some("sendMessage"));
        assert_eq!(canonical("getupdates"), Some("getUpdates"));
        assert_eq!(canonical("sendSticker"), None);
    }

    #[test]
    fn normalize_drops_nulls() {
        assert_eq!(normalize(json!({"a": null, "b": [{"c": null, "d": 1}]})), json!({"b": [{"d": 1}]}));
    }
}
