//! The simulator's shared state: chats and their messages, update queue, files, logs,
//! faults and counters; every collection bounded by [`Retention`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::config::{Mode, RateLimits, Retention};
use crate::entities::FormattedText;
use crate::ratelimit::{FloodFigures, Limiter};
use crate::types::{
    CallbackAnswer, ChatKind, Fault, FileRecord, MessageState, Outbound, Retained, SimChat, SimStats,
};

/// Distinct method names counted in `SimStats::by_method`; further unknown names count
/// under [`OTHER_METHODS`].
const MAX_METHOD_NAMES: usize = 256;
/// The `by_method` key of unknown method names past [`MAX_METHOD_NAMES`].
pub(crate) const OTHER_METHODS: &str = "(other)";

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
    pub(crate) text: Option<FormattedText>,
    pub(crate) caption: Option<FormattedText>,
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
    /// Whether the bytes are the simulator's own copy (deleted when the file is evicted),
    /// rather than a local-mode path of the caller's.
    pub(crate) owned: bool,
}

#[derive(Debug)]
pub(crate) struct FaultRule {
    pub(crate) fault: Fault,
    pub(crate) remaining: usize,
    /// Lowercased method name, or `None` for every method.
    pub(crate) method: Option<String>,
}

/// A chat the bot can see, with its messages.
#[derive(Debug)]
pub(crate) struct ChatRecord {
    pub(crate) chat: SimChat,
    /// The user of this private chat blocked the bot.
    pub(crate) blocked: bool,
    pub(crate) messages: BTreeMap<i32, StoredMessage>,
    pub(crate) next_message_id: i32,
    /// When the chat was last used (a tick of [`State::tick`]), for LRU eviction.
    last_used: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) retention: Retention,
    pub(crate) next_update_id: i64,
    pub(crate) updates: VecDeque<PendingUpdate>,
    pub(crate) allowed_updates: Option<Vec<String>>,
    pub(crate) poller: Option<(u64, oneshot::Sender<()>)>,
    pub(crate) poll_seq: u64,
    /// The id of the getUpdates call that is waiting for updates, if one is.
    pub(crate) poll_waiting: Option<u64>,
    pub(crate) webhook_url: String,
    chats: HashMap<i64, ChatRecord>,
    /// Messages in creation order, for the global cap; may hold entries of messages
    /// already gone (compacted when it grows past twice the cap).
    message_order: VecDeque<(i64, i32)>,
    messages: usize,
    tick: u64,
    pub(crate) files: HashMap<String, StoredFile>,
    file_order: VecDeque<String>,
    file_bytes: u64,
    /// Relative `file_path` → `file_id`, for downloads.
    pub(crate) file_paths: HashMap<String, String>,
    pub(crate) next_file: u64,
    sent: VecDeque<Outbound>,
    sent_total: u64,
    /// Known callback query ids → answered yet.
    callbacks: HashMap<String, bool>,
    callback_order: VecDeque<String>,
    callback_answers: VecDeque<CallbackAnswer>,
    pub(crate) next_callback: u64,
    pub(crate) faults: VecDeque<FaultRule>,
    pub(crate) rate_limits: Option<RateLimits>,
    pub(crate) rate_limits_enabled: bool,
    pub(crate) limiter: Limiter,
    pub(crate) flood: FloodFigures,
    pub(crate) stats: SimStats,
    pub(crate) commands: Value,
    pub(crate) next_media_group: u64,
}

impl State {
    pub(crate) fn new(rate_limits: Option<RateLimits>, retention: Retention) -> Self {
        Self {
            retention,
            next_update_id: 1,
            updates: VecDeque::new(),
            allowed_updates: None,
            poller: None,
            poll_seq: 0,
            poll_waiting: None,
            webhook_url: String::new(),
            chats: HashMap::new(),
            message_order: VecDeque::new(),
            messages: 0,
            tick: 0,
            files: HashMap::new(),
            file_order: VecDeque::new(),
            file_bytes: 0,
            file_paths: HashMap::new(),
            next_file: 1,
            sent: VecDeque::new(),
            sent_total: 0,
            callbacks: HashMap::new(),
            callback_order: VecDeque::new(),
            callback_answers: VecDeque::new(),
            next_callback: 1,
            faults: VecDeque::new(),
            rate_limits_enabled: rate_limits.is_some(),
            rate_limits: Some(rate_limits.unwrap_or_default()),
            limiter: Limiter::default(),
            flood: FloodFigures::default(),
            stats: SimStats::default(),
            commands: json!([]),
            next_media_group: 1,
        }
    }

    // -- chats ------------------------------------------------------------------------------

    /// Registers `chat` (or updates its description, keeping its messages) and marks it used.
    pub(crate) fn add_chat(&mut self, chat: SimChat) {
        self.tick += 1;
        let tick = self.tick;
        let id = chat.id;
        match self.chats.get_mut(&id) {
            Some(record) => {
                record.chat = chat;
                record.last_used = tick;
            }
            None => {
                let record = ChatRecord {
                    chat,
                    blocked: false,
                    messages: BTreeMap::new(),
                    next_message_id: 1,
                    last_used: tick,
                };
                self.chats.insert(id, record);
                self.evict_chats(id);
            }
        }
    }

    /// Makes sure chat `id` is known (a simulated user wrote in it) and marks it used.
    pub(crate) fn ensure_chat(&mut self, id: i64) {
        if self.chats.contains_key(&id) {
            self.touch(id);
        } else {
            self.add_chat(SimChat::from(id));
        }
    }

    /// Marks a chat as used now, for LRU eviction.
    pub(crate) fn touch(&mut self, id: i64) {
        self.tick += 1;
        if let Some(record) = self.chats.get_mut(&id) {
            record.last_used = self.tick;
        }
    }

    pub(crate) fn chat(&self, id: i64) -> Option<&ChatRecord> {
        self.chats.get(&id)
    }

    /// The known chat with this public username (case-insensitive, without `@`).
    pub(crate) fn chat_by_username(&self, username: &str) -> Option<i64> {
        self.chats
            .values()
            .find(|r| r.chat.username.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(username)))
            .map(|r| r.chat.id)
    }

    /// Marks the user of a private chat as having blocked the bot (or not); the chat is
    /// registered if it was not known.
    pub(crate) fn set_blocked(&mut self, id: i64, blocked: bool) {
        self.ensure_chat(id);
        if let Some(record) = self.chats.get_mut(&id) {
            record.blocked = blocked;
        }
    }

    fn evict_chats(&mut self, keep: i64) {
        while self.chats.len() > self.retention.chats {
            let oldest = self.chats.iter().filter(|(id, _)| **id != keep).min_by_key(|(_, r)| r.last_used);
            let Some(oldest) = oldest.map(|(id, _)| *id) else { break };
            if let Some(record) = self.chats.remove(&oldest) {
                self.messages -= record.messages.len();
            }
        }
    }

    // -- messages ---------------------------------------------------------------------------

    /// The next message id of a known chat.
    pub(crate) fn alloc_message_id(&mut self, chat: i64) -> i32 {
        let Some(record) = self.chats.get_mut(&chat) else { return 0 };
        let id = record.next_message_id;
        record.next_message_id = record.next_message_id.saturating_add(1);
        id
    }

    /// Stores a message of a known chat, evicting the chat's oldest and then the overall
    /// oldest messages past the limits.
    pub(crate) fn insert_message(&mut self, chat: i64, id: i32, message: StoredMessage) {
        let per_chat = self.retention.messages_per_chat;
        let Some(record) = self.chats.get_mut(&chat) else { return };
        if record.messages.insert(id, message).is_none() {
            self.messages += 1;
            self.message_order.push_back((chat, id));
        }
        while record.messages.len() > per_chat {
            record.messages.pop_first();
            self.messages -= 1;
        }
        while self.messages > self.retention.messages {
            let Some((c, m)) = self.message_order.pop_front() else { break };
            if self.chats.get_mut(&c).and_then(|r| r.messages.remove(&m)).is_some() {
                self.messages -= 1;
            }
        }
        if self.message_order.len() > 2 * self.retention.messages + 64 {
            let chats = &self.chats;
            self.message_order.retain(|(c, m)| chats.get(c).is_some_and(|r| r.messages.contains_key(m)));
        }
    }

    pub(crate) fn message(&self, chat: i64, id: i32) -> Option<&StoredMessage> {
        self.chats.get(&chat)?.messages.get(&id)
    }

    pub(crate) fn message_mut(&mut self, chat: i64, id: i32) -> Option<&mut StoredMessage> {
        self.chats.get_mut(&chat)?.messages.get_mut(&id)
    }

    pub(crate) fn live_message(&self, chat: i64, id: i32) -> Option<&StoredMessage> {
        self.message(chat, id).filter(|m| !m.deleted)
    }

    // -- updates, logs, callbacks -----------------------------------------------------------

    /// Queues an update, dropping the oldest pending ones past the limit.
    pub(crate) fn queue_update(&mut self, update: PendingUpdate) {
        self.updates.push_back(update);
        while self.updates.len() > self.retention.pending_updates {
            self.updates.pop_front();
            self.stats.dropped_updates += 1;
        }
    }

    /// Appends to the sent log; the caller wakes `sent_notify` after unlocking.
    pub(crate) fn log(&mut self, mut entry: Outbound) {
        entry.seq = self.sent_total;
        self.sent_total += 1;
        self.sent.push_back(entry);
        while self.sent.len() > self.retention.sent_log {
            self.sent.pop_front();
        }
    }

    /// The retained part of the sent log.
    pub(crate) fn sent(&self) -> Vec<Outbound> {
        self.sent.iter().cloned().collect()
    }

    pub(crate) fn sent_total(&self) -> u64 {
        self.sent_total
    }

    pub(crate) fn add_callback(&mut self, id: String) {
        self.callbacks.insert(id.clone(), false);
        self.callback_order.push_back(id);
        while self.callback_order.len() > self.retention.callback_queries {
            if let Some(old) = self.callback_order.pop_front() {
                self.callbacks.remove(&old);
            }
        }
    }

    /// Marks a callback query answered; `false` when it is unknown or already answered.
    pub(crate) fn answer_callback(&mut self, id: &str) -> bool {
        match self.callbacks.get_mut(id) {
            Some(answered) if !*answered => {
                *answered = true;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn push_answer(&mut self, answer: CallbackAnswer) {
        self.callback_answers.push_back(answer);
        while self.callback_answers.len() > self.retention.callback_answers {
            self.callback_answers.pop_front();
        }
    }

    pub(crate) fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.callback_answers.iter().cloned().collect()
    }

    /// Counts a request under its method name (bounded: see [`MAX_METHOD_NAMES`]).
    pub(crate) fn count_method(&mut self, name: String) {
        let by_method = &mut self.stats.by_method;
        let key = if by_method.contains_key(&name) || by_method.len() < MAX_METHOD_NAMES {
            name
        } else {
            OTHER_METHODS.to_owned()
        };
        *by_method.entry(key).or_default() += 1;
    }

    // -- files ------------------------------------------------------------------------------

    /// Registers a stored file, evicting the oldest past the count and byte limits.
    pub(crate) fn add_file(&mut self, file: StoredFile) {
        let id = file.record.file_id.clone();
        if file.owned {
            self.file_bytes += file.record.size;
        }
        self.file_paths.insert(file.file_path.clone(), id.clone());
        self.files.insert(id.clone(), file);
        self.file_order.push_back(id);
        while self.files.len() > self.retention.files
            || (self.file_bytes > self.retention.file_bytes && self.files.len() > 1)
        {
            let Some(old) = self.file_order.pop_front() else { break };
            let Some(file) = self.files.remove(&old) else { continue };
            self.file_paths.remove(&file.file_path);
            if file.owned {
                self.file_bytes -= file.record.size;
                if let Err(err) = std::fs::remove_file(&file.disk_path) {
                    tracing::debug!(%err, path = %file.disk_path.display(), "removing an evicted file");
                }
            }
        }
    }

    // -- faults -----------------------------------------------------------------------------

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

    pub(crate) fn retained(&self) -> Retained {
        Retained {
            chats: self.chats.len(),
            messages: self.messages,
            max_messages_in_a_chat: self.chats.values().map(|r| r.messages.len()).max().unwrap_or(0),
            files: self.files.len(),
            file_bytes: self.file_bytes,
            pending_updates: self.updates.len(),
            sent_log: self.sent.len(),
            callback_queries: self.callbacks.len(),
            callback_answers: self.callback_answers.len(),
            flood_chats: self.limiter.tracked().max(self.flood.tracked()),
            method_names: self.stats.by_method.len(),
        }
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bot as `getMe` describes it (`JsonUser` with the bot-only fields).
    pub(crate) fn bot_user(&self) -> Value {
        json!({
            "id": self.bot_id,
            "is_bot": true,
            "first_name": "Sim Bot",
            "username": self.bot_username,
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
            "can_connect_to_business": false,
            "has_main_web_app": false,
            "has_topics_enabled": false,
            "allows_users_to_create_topics": false,
        })
    }

    /// The bot as the `from` of its messages: the plain `User` fields.
    pub(crate) fn bot_sender(&self) -> Value {
        json!({ "id": self.bot_id, "is_bot": true, "first_name": "Sim Bot", "username": self.bot_username })
    }

    /// Queues an update and wakes a waiting `getUpdates`; returns its `update_id`.
    pub(crate) fn push_update(&self, kind: &str, payload: Value) -> i64 {
        let id = {
            let mut st = self.lock();
            let id = st.next_update_id;
            st.next_update_id += 1;
            let value = json!({ "update_id": id, kind: payload });
            st.queue_update(PendingUpdate { id, kind: kind.to_owned(), value });
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
            st.queue_update(PendingUpdate { id, kind, value });
            id
        };
        self.update_notify.notify_waiters();
        Ok(id)
    }

    /// Stores a user's message (registering the chat) and queues the `message` update.
    pub(crate) fn inject_message(
        &self,
        chat_id: i64,
        from_user: i64,
        build: impl FnOnce(&mut serde_json::Map<String, Value>, &State),
        text: Option<FormattedText>,
        caption: Option<FormattedText>,
        file: Option<FileRecord>,
    ) -> i64 {
        let message = {
            let mut st = self.lock();
            st.ensure_chat(chat_id);
            let message_id = st.alloc_message_id(chat_id);
            let mut obj = serde_json::Map::new();
            obj.insert("message_id".into(), json!(message_id));
            obj.insert("from".into(), user_json(from_user));
            obj.insert("chat".into(), chat_json(&st, chat_id));
            obj.insert("date".into(), json!(unix_now()));
            build(&mut obj, &st);
            let json = Value::Object(obj);
            let stored = StoredMessage {
                json: json.clone(),
                from_bot: false,
                text,
                caption,
                reply_markup: None,
                edit_count: 0,
                deleted: false,
                file,
            };
            st.insert_message(chat_id, message_id, stored);
            json
        };
        self.push_update("message", message)
    }

    pub(crate) fn message_state(&self, chat_id: i64, message_id: i32) -> Option<MessageState> {
        let st = self.lock();
        let m = st.message(chat_id, message_id)?;
        let content = m.text.as_ref().or(m.caption.as_ref());
        Some(MessageState {
            chat_id,
            message_id,
            from_bot: m.from_bot,
            text: m.text.as_ref().map(|t| t.text.clone()),
            caption: m.caption.as_ref().map(|t| t.text.clone()),
            entities: content.and_then(FormattedText::entities_json),
            reply_markup: m.reply_markup.clone(),
            edit_count: m.edit_count,
            deleted: m.deleted,
            file: m.file.clone(),
        })
    }

    pub(crate) fn press_button(&self, chat_id: i64, from_user: i64, message_id: i32, data: &str) -> i64 {
        let query = {
            let mut st = self.lock();
            st.ensure_chat(chat_id);
            let id = format!("{}{:06}", self.bot_id, st.next_callback);
            st.next_callback += 1;
            st.add_callback(id.clone());
            let message = st.message(chat_id, message_id).map(|m| m.json.clone()).unwrap_or_else(
                || json!({ "message_id": message_id, "date": 0, "chat": chat_json(&st, chat_id) }),
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
                if st.sent_total() >= n as u64 {
                    return Ok(st.sent());
                }
                st.sent_total()
            };
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let waiting_for = format!("{n} outbound messages (got {got})");
                return Err(crate::error::ErrorKind::Timeout { waiting_for, timeout }.into());
            }
        }
    }

    /// Waits until a `getUpdates` call is held open, or fails after `timeout`.
    pub(crate) async fn wait_for_poll(&self, timeout: std::time::Duration) -> crate::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.poll_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().poll_waiting.is_some() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let waiting_for = "a getUpdates call to wait for updates".to_owned();
                return Err(crate::error::ErrorKind::Timeout { waiting_for, timeout }.into());
            }
        }
    }

    pub(crate) fn stats(&self) -> SimStats {
        let st = self.lock();
        let mut stats = st.stats.clone();
        stats.accepted_sends = st.flood.accepted;
        stats.max_per_chat_in_any_second = st.flood.max_chat_second;
        stats.max_per_group_in_any_minute = st.flood.max_group_minute;
        stats.max_global_in_any_second = st.flood.max_global_second;
        stats.retained = st.retained();
        stats
    }
}

/// A simulated user.
pub(crate) fn user_json(id: i64) -> Value {
    json!({ "id": id, "is_bot": false, "first_name": format!("User {id}"), "username": format!("user{}", id.unsigned_abs()) })
}

/// The `Chat` object of a known chat (or, for a chat the sim does not know, of the chat
/// its id implies).
pub(crate) fn chat_json(st: &State, id: i64) -> Value {
    match st.chat(id) {
        Some(record) => sim_chat_json(&record.chat),
        None => sim_chat_json(&SimChat::from(id)),
    }
}

pub(crate) fn sim_chat_json(chat: &SimChat) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), json!(chat.id));
    let (kind, name_field) = match chat.kind {
        ChatKind::Private => ("private", "first_name"),
        ChatKind::Group => ("group", "title"),
        ChatKind::Supergroup => ("supergroup", "title"),
        ChatKind::Channel => ("channel", "title"),
    };
    obj.insert("type".into(), json!(kind));
    obj.insert(name_field.into(), json!(chat.title));
    if let Some(username) = &chat.username {
        obj.insert("username".into(), json!(username));
    }
    Value::Object(obj)
}

/// `getChat`'s `ChatFullInfo`: the `Chat` fields plus those the Bot API always sends.
pub(crate) fn chat_full_info(chat: &SimChat) -> Value {
    let mut info = sim_chat_json(chat);
    let obj = info.as_object_mut().expect("a chat is an object");
    // Telegram's default accent colour is derived from the id (7 colours).
    obj.insert("accent_color_id".into(), json!(chat.id.unsigned_abs() % 7));
    obj.insert("max_reaction_count".into(), json!(11));
    obj.insert(
        "accepted_gift_types".into(),
        json!({
            "unlimited_gifts": true,
            "limited_gifts": true,
            "unique_gifts": true,
            "premium_subscription": true,
            "gifts_from_channels": true,
        }),
    );
    if chat.kind != ChatKind::Private {
        obj.insert(
            "permissions".into(),
            json!({
                "can_send_messages": true, "can_send_audios": true, "can_send_documents": true,
                "can_send_photos": true, "can_send_videos": true, "can_send_video_notes": true,
                "can_send_voice_notes": true, "can_send_polls": true, "can_send_other_messages": true,
                "can_add_web_page_previews": true, "can_change_info": false, "can_invite_users": true,
                "can_pin_messages": false, "can_manage_topics": false,
            }),
        );
    }
    info
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

    fn message(n: i32) -> StoredMessage {
        StoredMessage {
            json: json!({ "message_id": n }),
            from_bot: true,
            text: Some(FormattedText::plain(n.to_string())),
            caption: None,
            reply_markup: None,
            edit_count: 0,
            deleted: false,
            file: None,
        }
    }

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
        let st = State::new(None, Retention::default());
        assert_eq!(chat_json(&st, 5)["type"], "private");
        assert_eq!(chat_json(&st, -5)["type"], "group");
        assert_eq!(chat_json(&st, -1_000_000_000_005)["type"], "supergroup");
        let channel = chat_full_info(&SimChat::channel(-1_000_000_000_007, "News").username("news"));
        assert_eq!((channel["type"].clone(), channel["username"].clone()), (json!("channel"), json!("news")));
        assert_eq!(channel["max_reaction_count"], 11);
    }

    #[test]
    fn faults_are_consumed_in_order_and_filtered() {
        let mut st = State::new(None, Retention::default());
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

    #[test]
    fn messages_are_bounded_per_chat_and_overall() {
        let retention = Retention { messages_per_chat: 5, messages: 12, chats: 3, ..Retention::default() };
        let mut st = State::new(None, retention);
        for chat in 1..=4 {
            st.add_chat(SimChat::from(chat));
            for _ in 0..8 {
                let id = st.alloc_message_id(chat);
                st.insert_message(chat, id, message(id));
            }
        }
        let r = st.retained();
        assert_eq!(r.chats, 3, "the least recently used chat went");
        assert!(st.chat(1).is_none());
        assert!(r.max_messages_in_a_chat <= 5, "{r:?}");
        assert!(r.messages <= 12, "{r:?}");
        // the newest messages stay, the oldest go
        assert!(st.message(4, 8).is_some() && st.message(4, 3).is_none());
        assert!(st.message_order.len() <= 2 * 12 + 64);
    }

    #[test]
    fn method_names_are_bounded() {
        let mut st = State::new(None, Retention::default());
        for n in 0..1_000 {
            st.count_method(format!("nosuchmethod{n}"));
        }
        assert_eq!(st.stats.by_method.len(), MAX_METHOD_NAMES + 1);
        assert_eq!(st.stats.by_method[OTHER_METHODS], 1_000 - MAX_METHOD_NAMES as u64);
    }
}
