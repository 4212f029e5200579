//! The simulator's shared state: update queue, messages, files, logs, faults and counters.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::config::{Mode, RateLimits};
use crate::ratelimit::Limiter;
use crate::types::{CallbackAnswer, Fault, FileRecord, MessageState, Outbound, SimStats};

/// Everything the HTTP handlers and the [`Sim`](crate::Sim) handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) bot_id: u64,
    pub(crate) bot_username: String,
    pub(crate) mode: Mode,
    pub(crate) files_dir: PathBuf,
    /// When the sim started (tokio's clock), the origin of `at_ms` in the control API.
    pub(crate) started: std::time::Instant,
    pub(crate) state: Mutex<State>,
    /// Woken whenever the sent log grows.
    pub(crate) sent_notify: Notify,
    /// Woken whenever an update is queued.
    pub(crate) update_notify: Notify,
    /// Woken whenever a getUpdates call starts waiting.
    pub(crate) poll_notify: Notify,
}

#[derive(Debug)]
pub(crate) struct PendingUpdate {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) value: Value,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub(crate) json: Value,
    pub(crate) from_bot: bool,
    pub(crate) text: Option<String>,
    pub(crate) caption: Option<String>,
    pub(crate) reply_markup: Option<Value>,
    pub(crate) edit_count: u32,
    pub(crate) deleted: bool,
    pub(crate) file: Option<FileRecord>,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub(crate) record: FileRecord,
    pub(crate) unique_id: String,
    /// Where the bytes are on disk.
    pub(crate) disk_path: PathBuf,
    /// The `file_path` getFile returns: relative in cloud mode, absolute in local mode.
    pub(crate) file_path: String,
}

#[derive(Debug)]
pub(crate) struct FaultRule {
    pub(crate) fault: Fault,
    pub(crate) remaining: usize,
    /// Lowercased method name, or `None` for every method.
    pub(crate) method: Option<String>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) next_update_id: i64,
    pub(crate) updates: VecDeque<PendingUpdate>,
    pub(crate) allowed_updates: Option<Vec<String>>,
    pub(crate) poller: Option<(u64, oneshot::Sender<()>)>,
    pub(crate) poll_seq: u64,
    /// The id of the getUpdates call that is waiting for updates, if one is.
    pub(crate) poll_waiting: Option<u64>,
    pub(crate) webhook_url: String,
    pub(crate) messages: HashMap<(i64, i32), StoredMessage>,
    pub(crate) next_message_id: HashMap<i64, i32>,
    pub(crate) files: HashMap<String, StoredFile>,
    /// Relative `file_path` → `file_id`, for downloads.
    pub(crate) file_paths: HashMap<String, String>,
    pub(crate) next_file: u64,
    pub(crate) sent: Vec<Outbound>,
    /// Known callback query ids → answered yet.
    pub(crate) callbacks: HashMap<String, bool>,
    pub(crate) callback_answers: Vec<CallbackAnswer>,
    pub(crate) next_callback: u64,
    pub(crate) faults: VecDeque<FaultRule>,
    pub(crate) rate_limits: Option<RateLimits>,
    pub(crate) rate_limits_enabled: bool,
    pub(crate) limiter: Limiter,
    pub(crate) stats: SimStats,
    pub(crate) accepted: Vec<(i64, Instant)>,
    pub(crate) commands: Value,
    pub(crate) next_media_group: u64,
    /// Private chats whose user blocked the bot.
    pub(crate) blocked: std::collections::HashSet<i64>,
}

impl State {
    pub(crate) fn new(rate_limits: Option<RateLimits>) -> Self {
        Self {
            next_update_id: 1,
            updates: VecDeque::new(),
            allowed_updates: None,
            poller: None,
            poll_seq: 0,
            poll_waiting: None,
            webhook_url: String::new(),
            messages: HashMap::new(),
            next_message_id: HashMap::new(),
            files: HashMap::new(),
            file_paths: HashMap::new(),
            next_file: 1,
            sent: Vec::new(),
            callbacks: HashMap::new(),
            callback_answers: Vec::new(),
            next_callback: 1,
            faults: VecDeque::new(),
            rate_limits_enabled: rate_limits.is_some(),
            rate_limits: Some(rate_limits.unwrap_or_default()),
            limiter: Limiter::default(),
            stats: SimStats::default(),
            accepted: Vec::new(),
            commands: json!([]),
            next_media_group: 1,
            blocked: std::collections::HashSet::new(),
        }
    }

    pub(crate) fn alloc_message_id(&mut self, chat_id: i64) -> i32 {
        let next = self.next_message_id.entry(chat_id).or_insert(1);
        let id = *next;
        *next += 1;
        id
    }

    pub(crate) fn live_message(&self, chat_id: i64, message_id: i32) -> Option<&StoredMessage> {
        self.messages.get(&(chat_id, message_id)).filter(|m| !m.deleted)
    }

    /// Appends to the sent log; the caller wakes `sent_notify` after unlocking.
    pub(crate) fn log(&mut self, mut entry: Outbound) {
        entry.seq = self.sent.len() as u64;
        self.sent.push(entry);
    }

    /// Takes one use of the first fault matching `method` (lowercased).
    pub(crate) fn take_fault(&mut self, method: &str) -> Option<Fault> {
        let idx = self.faults.iter().position(|r| r.method.as_deref().is_none_or(|m| m == method))?;
        let rule = &mut self.faults[idx];
        let fault = rule.fault;
        rule.remaining -= 1;
        if rule.remaining == 0 {
            self.faults.remove(idx);
        }
        Some(fault)
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn bot_user(&self) -> Value {
        json!({
            "id": self.bot_id,
            "is_bot": true,
            "first_name": "Sim Bot",
            "username": self.bot_username,
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
        })
    }

    /// Queues an update and wakes a waiting `getUpdates`; returns its `update_id`.
    pub(crate) fn push_update(&self, kind: &str, payload: Value) -> i64 {
        let id = {
            let mut st = self.lock();
            let id = st.next_update_id;
            st.next_update_id += 1;
            st.updates.push_back(PendingUpdate {
                id,
                kind: kind.to_owned(),
                value: json!({ "update_id": id, kind: payload }),
            });
            id
        };
        self.update_notify.notify_waiters();
        id
    }

    /// Queues a raw update. Its `update_id` is replaced by the next id in sequence.
    pub(crate) fn push_raw_update(&self, mut value: Value) -> crate::Result<i64> {
        let Some(obj) = value.as_object_mut() else {
            let got = match &value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            };
            return Err(crate::error::ErrorKind::InvalidUpdate { got: got.to_owned() }.into());
        };
        obj.remove("update_id");
        let kind = obj.keys().next().cloned().unwrap_or_default();
        let id = {
            let mut st = self.lock();
            let id = st.next_update_id;
            st.next_update_id += 1;
            if let Some(obj) = value.as_object_mut() {
                obj.insert("update_id".to_owned(), json!(id));
            }
            st.updates.push_back(PendingUpdate { id, kind, value });
            id
        };
        self.update_notify.notify_waiters();
        Ok(id)
    }

    /// Stores a user's message and queues the `message` update.
    pub(crate) fn inject_message(
        &self,
        chat_id: i64,
        from_user: i64,
        build: impl FnOnce(&mut serde_json::Map<String, Value>, &State),
        text: Option<String>,
        caption: Option<String>,
        file: Option<FileRecord>,
    ) -> i64 {
        let message = {
            let mut st = self.lock();
            let message_id = st.alloc_message_id(chat_id);
            let mut obj = serde_json::Map::new();
            obj.insert("message_id".into(), json!(message_id));
            obj.insert("from".into(), user_json(from_user));
            obj.insert("chat".into(), chat_json(chat_id));
            obj.insert("date".into(), json!(unix_now()));
            build(&mut obj, &st);
            let json = Value::Object(obj);
            st.messages.insert(
                (chat_id, message_id),
                StoredMessage {
                    json: json.clone(),
                    from_bot: false,
                    text,
                    caption,
                    reply_markup: None,
                    edit_count: 0,
                    deleted: false,
                    file,
                },
            );
            json
        };
        self.push_update("message", message)
    }

    pub(crate) fn message_state(&self, chat_id: i64, message_id: i32) -> Option<MessageState> {
        let st = self.lock();
        let m = st.messages.get(&(chat_id, message_id))?;
        Some(MessageState {
            chat_id,
            message_id,
            from_bot: m.from_bot,
            text: m.text.clone(),
            caption: m.caption.clone(),
            reply_markup: m.reply_markup.clone(),
            edit_count: m.edit_count,
            deleted: m.deleted,
            file: m.file.clone(),
        })
    }

    pub(crate) fn press_button(&self, chat_id: i64, from_user: i64, message_id: i32, data: &str) -> i64 {
        let query = {
            let mut st = self.lock();
            let id = format!("{}{:06}", self.bot_id, st.next_callback);
            st.next_callback += 1;
            st.callbacks.insert(id.clone(), false);
            let message = st.messages.get(&(chat_id, message_id)).map(|m| m.json.clone()).unwrap_or_else(
                || json!({ "message_id": message_id, "date": 0, "chat": chat_json(chat_id) }),
            );
            json!({
                "id": id,
                "from": user_json(from_user),
                "message": message,
                "chat_instance": format!("ci{chat_id}"),
                "data": data,
            })
        };
        self.push_update("callback_query", query)
    }

    pub(crate) async fn wait_for_sent(
        &self,
        n: usize,
        timeout: std::time::Duration,
    ) -> crate::Result<Vec<Outbound>> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.sent_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = {
                let st = self.lock();
                if st.sent.len() >= n {
                    return Ok(st.sent.clone());
                }
                st.sent.len()
            };
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let waiting_for = format!("{n} outbound messages (got {got})");
                return Err(crate::error::ErrorKind::Timeout { waiting_for, timeout }.into());
            }
        }
    }

    pub(crate) fn stats(&self) -> SimStats {
        let st = self.lock();
        let mut stats = st.stats.clone();
        let (chat, group, global) = crate::ratelimit::flood_figures(&st.accepted);
        stats.accepted_sends = st.accepted.len() as u64;
        stats.max_per_chat_in_any_second = chat;
        stats.max_per_group_in_any_minute = group;
        stats.max_global_in_any_second = global;
        stats
    }
}

/// A simulated user.
pub(crate) fn user_json(id: i64) -> Value {
    json!({ "id": id, "is_bot": false, "first_name": format!("User {id}"), "username": format!("user{}", id.unsigned_abs()) })
}

/// A chat: positive ids are private chats, ids below -10^12 supergroups, other negatives groups.
pub(crate) fn chat_json(id: i64) -> Value {
    if id > 0 {
        json!({ "id": id, "type": "private", "first_name": format!("User {id}") })
    } else if id < -1_000_000_000_000 {
        json!({ "id": id, "type": "supergroup", "title": format!("Supergroup {id}") })
    } else {
        json!({ "id": id, "type": "group", "title": format!("Group {id}") })
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A `bot_command` entity when the text starts with `/`, with UTF-16 offsets as Telegram uses.
pub(crate) fn command_entities(text: &str) -> Option<Value> {
    if !text.starts_with('/') {
        return None;
    }
    let command = text.split(char::is_whitespace).next().unwrap_or(text);
    let length = command.encode_utf16().count();
    (length > 1).then(|| json!([{ "type": "bot_command", "offset": 0, "length": length }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_entity_counts_utf16_units() {
        assert_eq!(
            command_entities("/mirror https://x"),
            Some(json!([{ "type": "bot_command", "offset": 0, "length": 7 }]))
        );
        assert_eq!(command_entities("hello"), None);
        assert_eq!(command_entities("/"), None);
    }

    #[test]
    fn chat_kinds_follow_id_ranges() {
        assert_eq!(chat_json(5)["type"], "private");
        assert_eq!(chat_json(-5)["type"], "group");
        assert_eq!(chat_json(-1_000_000_000_005)["type"], "supergroup");
    }

    #[test]
    fn faults_are_consumed_in_order_and_filtered() {
        let mut st = State::new(None);
        st.faults.push_back(FaultRule {
            fault: Fault::ServerError(502),
            remaining: 1,
            method: Some("getme".into()),
        });
        st.faults.push_back(FaultRule { fault: Fault::DropConnection, remaining: 2, method: None });
        assert_eq!(st.take_fault("sendmessage"), Some(Fault::DropConnection));
        assert_eq!(st.take_fault("getme"), Some(Fault::ServerError(502)));
        assert_eq!(st.take_fault("getme"), Some(Fault::DropConnection));
        assert_eq!(st.take_fault("getme"), None);
    }
}
