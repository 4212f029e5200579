//! The Bot API methods the simulator implements: dispatch and the validation they share.
//!
//! Checks run in the order of the official server (telegram-bot-api's `Client.cpp`):
//! first the Bot API layer reads its own parameters (text and `parse_mode`, reply
//! parameters, reply markup), then `check_chat` (`chat_id is empty`, `chat not found`),
//! then the message a reply or an edit names, and last what tdlib and the Telegram
//! servers check (text cleaning and length, `BUTTON_DATA_INVALID`, blocked users, flood
//! control, `message is not modified`).

mod files;
mod messages;
mod updates;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::error::ApiError;
use super::params::{Params, to_i32, to_i64};
use crate::entities::{self, FormattedText, td_error};
use crate::state::{Shared, State, chat_full_info, chat_json, unix_now};
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
/// `LONG_POLL_MAX_TIMEOUT` of telegram-bot-api: `timeout` is clamped to 0..=50 seconds.
pub(super) const MAX_POLL_TIMEOUT: i32 = 50;
pub(super) const DEFAULT_EXCLUDED: &[&str] = &["chat_member", "message_reaction", "message_reaction_count"];
/// The chat actions `Client::get_chat_action` accepts (lowercased), legacy names included.
const CHAT_ACTIONS: &[&str] = &[
    "cancel",
    "typing",
    "record_video",
    "upload_video",
    "record_audio",
    "record_voice",
    "upload_audio",
    "upload_voice",
    "upload_photo",
    "upload_document",
    "choose_sticker",
    "pick_up_location",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

pub(crate) fn canonical(method: &str) -> Option<&'static str> {
    METHODS.iter().copied().find(|m| m.eq_ignore_ascii_case(method))
}

/// A successful answer: the `result`, and a `description` for the few methods that add one.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) result: Value,
    pub(crate) description: Option<&'static str>,
}

impl From<Value> for Answer {
    fn from(result: Value) -> Self {
        Self { result, description: None }
    }
}

/// Runs `method` (canonical) with `params`.
pub(crate) async fn call(shared: &Arc<Shared>, method: &str, params: Params) -> Result<Answer, ApiError> {
    let result = match method {
        "getMe" => Ok(shared.bot_user()),
        "getUpdates" => get_updates(shared, &params).await,
        "sendMessage" => send_message(shared, &params),
        "editMessageText" => edit_message_text(shared, &params),
        "editMessageReplyMarkup" => edit_reply_markup(shared, &params),
        "editMessageCaption" => edit_caption(shared, &params),
        "getChat" => {
            let st = shared.lock();
            let chat = known_chat(&st, &params)?;
            Ok(st.chat(chat).map(|r| chat_full_info(&r.chat)).unwrap_or_default())
        }
        "deleteMessage" => delete_message(shared, &params),
        "answerCallbackQuery" => answer_callback(shared, &params),
        "sendDocument" => send_file(shared, params, Kind::Document).await,
        "sendVideo" => send_file(shared, params, Kind::Video).await,
        "sendPhoto" => send_file(shared, params, Kind::Photo).await,
        "sendMediaGroup" => send_media_group(shared, params).await,
        "getFile" => get_file(shared, &params),
        "sendChatAction" => {
            // `Client::process_send_chat_action_query`: the action before the chat.
            if !CHAT_ACTIONS.contains(&params.arg("action").to_ascii_lowercase().as_str()) {
                return Err(td_error("Wrong parameter action in request"));
            }
            let mut st = shared.lock();
            let chat = known_chat(&st, &params)?;
            st.touch(chat);
            Ok(json!(true))
        }
        "setMyCommands" => {
            let commands = match params.json("commands") {
                Some(Ok(commands @ Value::Array(_))) => commands,
                Some(Ok(_)) => return Err(td_error("Expected an Array of BotCommand")),
                Some(Err(())) | None => return Err(td_error("Can't parse commands JSON object")),
            };
            shared.lock().commands = commands;
            Ok(json!(true))
        }
        "getMyCommands" => Ok(shared.lock().commands.clone()),
        "deleteWebhook" => {
            let mut st = shared.lock();
            let was_set = !st.webhook_url.is_empty();
            st.webhook_url.clear();
            if params.bool("drop_pending_updates") {
                st.updates.clear();
            }
            let description = if was_set { "Webhook was deleted" } else { "Webhook is already deleted" };
            return Ok(Answer { result: json!(true), description: Some(description) });
        }
        "setWebhook" => {
            let mut st = shared.lock();
            let url = params.arg("url").to_owned();
            let description = match (st.webhook_url == url, url.is_empty()) {
                (true, true) => "Webhook is already deleted",
                (true, false) => "Webhook is already set",
                (false, true) => "Webhook was deleted",
                (false, false) => "Webhook was set",
            };
            st.webhook_url = url;
            return Ok(Answer { result: json!(true), description: Some(description) });
        }
        "getWebhookInfo" => {
            let st = shared.lock();
            Ok(
                json!({ "url": st.webhook_url, "has_custom_certificate": false, "pending_update_count": st.updates.len() }),
            )
        }
        _ => Err(ApiError::method_not_found()),
    };
    result.map(Answer::from)
}

// validation helpers

/// `Client::check_chat`: an empty `chat_id`, then a chat the bot cannot see. A numeric id
/// is read as td's `to_integer` reads it (`"abc"` is 0, which no chat has); `@username`
/// finds a known chat with that public username.
pub(super) fn known_chat(st: &State, p: &Params) -> Result<i64, ApiError> {
    let raw = p.arg("chat_id");
    if raw.is_empty() {
        return Err(ApiError::bad_request("chat_id is empty"));
    }
    let id = match raw.strip_prefix('@') {
        Some(username) => st.chat_by_username(username),
        None => Some(to_i64(raw)).filter(|id| st.chat(*id).is_some()),
    };
    id.ok_or_else(|| ApiError::bad_request("chat not found"))
}

/// `Client::get_message_id`: `to_integer<int32>`, negative ids read as 0 (none).
pub(super) fn message_id(p: &Params) -> i32 {
    to_i32(p.arg("message_id")).max(0)
}

/// The Bot API layer of a message text (`Client::get_input_message_text`): empty text,
/// oversized raw text, `parse_mode` and entity errors.
pub(super) fn text_param(p: &Params) -> Result<FormattedText, ApiError> {
    let text = p.arg("text");
    if text.is_empty() {
        return Err(td_error("Message text is empty"));
    }
    let entities = p.has("entities").then(|| p.arg("entities"));
    entities::formatted_text(text, p.arg("parse_mode"), entities).map_err(|m| td_error(&m))
}

/// The Bot API layer of a caption (`Client::get_caption`); an empty caption is no caption.
pub(super) fn caption_param(p: &Params) -> Result<FormattedText, ApiError> {
    let entities = p.has("caption_entities").then(|| p.arg("caption_entities"));
    entities::formatted_text(p.arg("caption"), p.arg("parse_mode"), entities).map_err(|m| td_error(&m))
}

/// What tdlib does to a message text before sending: clean, trim, then the length limit
/// ("1-4096 characters after entities parsing", counted in code points as tdlib's
/// `utf8_length` counts them).
pub(super) fn finish_text(text: FormattedText) -> Result<FormattedText, ApiError> {
    let text = entities::fix(text, false)?;
    if text.char_len() > MAX_TEXT {
        return Err(td_error("Message is too long"));
    }
    Ok(text)
}

/// The same for a caption (0-1024 characters; empty after trimming means no caption).
pub(super) fn finish_caption(caption: FormattedText) -> Result<Option<FormattedText>, ApiError> {
    if caption.text.is_empty() {
        return Ok(None);
    }
    let caption = entities::fix(caption, true)?;
    if caption.char_len() > MAX_CAPTION {
        return Err(td_error("Message caption is too long"));
    }
    Ok(Some(caption).filter(|c| !c.text.is_empty()))
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

/// `Client::get_reply_markup`: the JSON and the shape of an inline keyboard.
pub(super) fn markup_param(p: &Params) -> Result<Option<Value>, ApiError> {
    let markup = match p.json("reply_markup") {
        None => return Ok(None),
        Some(Err(())) => return Err(td_error("Can't parse reply keyboard markup JSON object")),
        Some(Ok(markup)) => markup,
    };
    if !markup.is_object() {
        return Err(td_error("Object expected as reply markup"));
    }
    if let Some(rows) = markup.get("inline_keyboard") {
        let Some(rows) = rows.as_array() else {
            return Err(td_error("Field \"inline_keyboard\" must be of type Array"));
        };
        for row in rows {
            let Some(buttons) = row.as_array() else {
                return Err(td_error(
                    "Field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays",
                ));
            };
            for button in buttons {
                if !button.is_object() {
                    return Err(td_error(
                        "Can't parse inline keyboard button: InlineKeyboardButton must be an Object",
                    ));
                }
                if !button.get("text").is_some_and(Value::is_string) {
                    return Err(td_error(
                        "Can't parse inline keyboard button: Field \"text\" must be of type String",
                    ));
                }
            }
        }
    }
    Ok(Some(normalize(markup)))
}

/// What the Telegram servers check in an inline keyboard: callback data of 1-64 bytes.
pub(crate) fn check_markup(markup: Option<&Value>) -> Result<(), ApiError> {
    let Some(rows) = markup.and_then(|m| m.get("inline_keyboard")).and_then(Value::as_array) else {
        return Ok(());
    };
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

/// The message a send replies to.
#[derive(Debug, Default)]
pub(super) struct ReplyTo {
    message_id: Option<i32>,
    allow_missing: bool,
}

/// `Client::get_reply_parameters`: `reply_parameters`, else the legacy
/// `reply_to_message_id` and `allow_sending_without_reply`.
pub(super) fn reply_param(p: &Params) -> Result<ReplyTo, ApiError> {
    match p.json("reply_parameters") {
        Some(Err(())) => Err(td_error("Can't parse reply parameters JSON object")),
        Some(Ok(Value::Object(rp))) => Ok(ReplyTo {
            message_id: rp.get("message_id").and_then(Value::as_i64).and_then(|id| i32::try_from(id).ok()),
            allow_missing: rp.get("allow_sending_without_reply").and_then(Value::as_bool).unwrap_or(false),
        }),
        Some(Ok(_)) => Err(td_error("Object expected as reply parameters")),
        None => Ok(ReplyTo {
            message_id: Some(message_id_arg(p, "reply_to_message_id")).filter(|id| *id > 0),
            allow_missing: p.bool("allow_sending_without_reply"),
        }),
    }
}

fn message_id_arg(p: &Params, key: &str) -> i32 {
    to_i32(p.arg(key)).max(0)
}

/// `check_reply_parameters`: the replied message must exist unless the client allows it
/// not to; returns the id to reply to.
pub(super) fn check_reply(st: &State, chat: i64, reply: &ReplyTo) -> Result<Option<i32>, ApiError> {
    match reply.message_id {
        Some(id) if st.live_message(chat, id).is_some() => Ok(Some(id)),
        Some(_) if reply.allow_missing => Ok(None),
        Some(_) => Err(ApiError::bad_request("message to be replied not found")),
        None => Ok(None),
    }
}

/// Admits a send/edit under the flood limits and records it; 403 when the user blocked
/// the bot.
pub(super) fn admit(st: &mut State, chat: i64) -> Result<(), ApiError> {
    if st.chat(chat).is_some_and(|c| c.blocked) {
        return Err(ApiError::new(403, "Forbidden: bot was blocked by the user"));
    }
    let now = Instant::now();
    if st.rate_limits_enabled
        && let Some(limits) = st.rate_limits
    {
        st.limiter.check(&limits, chat, now).map_err(ApiError::retry_after)?;
    }
    st.flood.record(chat, now);
    st.touch(chat);
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
        entities: None,
        reply_markup: None,
        file: None,
    }
}

/// Puts `text` (or a caption) and its entities into a message object.
pub(super) fn put_text(
    obj: &mut Map<String, Value>,
    field: &str,
    entities_field: &str,
    text: Option<&FormattedText>,
) {
    obj.remove(entities_field);
    match text {
        Some(text) => {
            obj.insert(field.into(), json!(text.text));
            if let Some(entities) = text.entities_json() {
                obj.insert(entities_field.into(), entities);
            }
        }
        None => {
            obj.remove(field);
        }
    }
}

/// Creates a bot message in `chat` and returns its id and JSON (the caller stores it).
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
    obj.insert("from".into(), shared.bot_sender());
    obj.insert("chat".into(), chat_json(st, chat));
    obj.insert("date".into(), json!(unix_now()));
    if let Some(reply) = reply_to.and_then(|id| st.live_message(chat, id)) {
        obj.insert("reply_to_message".into(), embedded(&reply.json));
    }
    fill(&mut obj);
    (message_id, Value::Object(obj))
}

/// A message as embedded in `reply_to_message`: "the Message object in this field will
/// not contain further reply_to_message fields even if it itself is a reply".
pub(crate) fn embedded(message: &Value) -> Value {
    let mut message = message.clone();
    if let Some(obj) = message.as_object_mut() {
        obj.remove("reply_to_message");
    }
    message
}

pub(super) fn inline_markup(markup: Option<&Value>) -> Option<Value> {
    markup.filter(|m| m.get("inline_keyboard").is_some()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_data_over_64_bytes_is_invalid() {
        let ok = json!({"inline_keyboard": [[{"text": "a", "callback_data": "x".repeat(64)}]]});
        check_markup(Some(&ok)).unwrap();
        let long = json!({"inline_keyboard": [[{"text": "a", "callback_data": "é".repeat(33)}]]});
        assert_eq!(check_markup(Some(&long)).unwrap_err().description, "Bad Request: BUTTON_DATA_INVALID");
        let empty = json!({"inline_keyboard": [[{"text": "a", "callback_data": ""}]]});
        assert!(check_markup(Some(&empty)).is_err());
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

    #[test]
    fn markup_shape_errors_follow_the_bot_api() {
        let err = |markup: Value| {
            markup_param(&Params::from_json(json!({ "reply_markup": markup }))).unwrap_err().description
        };
        assert_eq!(err(json!("{oops")), "Bad Request: can't parse reply keyboard markup JSON object");
        assert_eq!(err(json!([1])), "Bad Request: object expected as reply markup");
        assert_eq!(
            err(json!({"inline_keyboard": [1]})),
            "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays"
        );
        // null is the text `null`, which is not an object either
        assert_eq!(
            markup_param(&Params::from_json(json!({ "reply_markup": null }))).unwrap_err().description,
            "Bad Request: object expected as reply markup"
        );
    }

    #[test]
    fn embedded_replies_do_not_nest() {
        let reply = json!({"message_id": 2, "reply_to_message": {"message_id": 1}});
        assert_eq!(embedded(&reply), json!({"message_id": 2}));
    }
}
