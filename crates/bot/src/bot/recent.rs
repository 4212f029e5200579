//! The messages the bot has seen lately, per chat: what `-i` (multi) takes after the
//! replied message, since the Bot API cannot fetch a chat's older messages.
//!
//! In memory only, and bounded three ways: messages per chat (the oldest go first),
//! chats (the one quiet the longest goes first) and bytes in all. Only what a task needs
//! is kept: a message's id, its sender, and the first word of its text or caption (a
//! link, most likely) or its document's `file_id` and name.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use frankenstein::types::Message;
use mltb_telegram::command::Document;

/// Messages kept per chat.
pub(crate) const PER_CHAT: usize = 100;
/// Chats kept.
pub(crate) const CHATS: usize = 1000;
/// Bytes kept in all (texts and file ids, and a fixed cost per message).
pub(crate) const BYTES: usize = 8 << 20;
/// The longest first word kept: the longest link accepted.
pub(crate) const MAX_WORD: usize = 4096;
/// The longest `file_id` or file name kept; a document past it is kept as no content.
const MAX_FILE_FIELD: usize = 1024;
/// What a message costs besides its strings.
const OVERHEAD: usize = 64;

/// What a message held that a task can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// The first word of its text or caption.
    Word(String),
    /// A first word longer than [`MAX_WORD`] bytes (not kept).
    LongWord,
    /// Its document.
    Document(Document),
    /// Neither (a sticker, a photo without caption, …).
    Nothing,
}

/// A message seen in a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Its id in the chat.
    pub(crate) id: i32,
    /// Who sent it.
    pub(crate) from: i64,
    /// What it held.
    pub(crate) content: Content,
}

impl Seen {
    /// What a task can take from `message`; `None` for a message from a bot (or with no
    /// sender).
    pub(crate) fn of(message: &Message) -> Option<Self> {
        let from = message.from.as_deref().filter(|u| !u.is_bot)?;
        let from = i64::try_from(from.id).ok()?;
        let content =
            match (message.document.as_deref(), message.text.as_deref().or(message.caption.as_deref())) {
                (Some(d), _) => {
                    let name = d.file_name.as_deref().map(|n| cut(n, MAX_FILE_FIELD));
                    if d.file_id.len() > MAX_FILE_FIELD {
                        Content::Nothing
                    } else {
                        Content::Document(Document { file_id: d.file_id.clone(), file_name: name })
                    }
                }
                (None, Some(text)) => match text.split_whitespace().next() {
                    Some(word) if word.len() > MAX_WORD => Content::LongWord,
                    Some(word) => Content::Word(word.to_owned()),
                    None => Content::Nothing,
                },
                (None, None) => Content::Nothing,
            };
        Some(Self { id: message.message_id, from, content })
    }

    fn weight(&self) -> usize {
        OVERHEAD
            + match &self.content {
                Content::Word(w) => w.len(),
                Content::Document(d) => d.file_id.len() + d.file_name.as_ref().map_or(0, String::len),
                Content::LongWord | Content::Nothing => 0,
            }
    }
}

/// `s`, cut to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The bounds of a [`Recent`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) per_chat: usize,
    pub(crate) chats: usize,
    pub(crate) bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { per_chat: PER_CHAT, chats: CHATS, bytes: BYTES }
    }
}

/// The messages seen lately, per chat.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    chats: HashMap<i64, ChatLog>,
    /// Chats by when they were last active: the first is the quietest.
    order: BTreeMap<u64, i64>,
    tick: u64,
    bytes: usize,
}

#[derive(Debug, Default)]
struct ChatLog {
    /// By id, ascending.
    messages: VecDeque<Seen>,
    bytes: usize,
    tick: u64,
}

impl Recent {
    /// An empty record within `limits` (each at least 1).
    pub(crate) fn new(limits: Limits) -> Self {
        let limits = Limits {
            per_chat: limits.per_chat.max(1),
            chats: limits.chats.max(1),
            bytes: limits.bytes.max(OVERHEAD + MAX_WORD),
        };
        Self { limits, state: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers `seen` in `chat` (a message seen again replaces the first sight).
    pub(crate) fn record(&self, chat: i64, seen: Seen) {
        let limits = self.limits;
        let mut st = self.lock();
        let st = &mut *st;
        st.touch(chat);
        let log = st.chats.entry(chat).or_default();
        let weight = seen.weight();
        match log.messages.binary_search_by_key(&seen.id, |m| m.id) {
            Ok(i) => {
                let old = std::mem::replace(&mut log.messages[i], seen).weight();
                log.bytes = log.bytes - old + weight;
                st.bytes = st.bytes - old + weight;
            }
            Err(i) => {
                log.messages.insert(i, seen);
                log.bytes += weight;
                st.bytes += weight;
            }
        }
        while log.messages.len() > limits.per_chat {
            if let Some(old) = log.messages.pop_front() {
                log.bytes -= old.weight();
                st.bytes -= old.weight();
            }
        }
        st.evict(chat, limits);
    }

    /// Up to `n` messages of `chat` after message `id`, oldest first.
    pub(crate) fn after(&self, chat: i64, id: i32, n: usize) -> Vec<Seen> {
        let mut st = self.lock();
        if !st.chats.contains_key(&chat) {
            return Vec::new();
        }
        st.touch(chat);
        st.chats
            .get(&chat)
            .map(|log| log.messages.iter().filter(|m| m.id > id).take(n).cloned().collect())
            .unwrap_or_default()
    }

    /// Chats, messages and bytes held.
    #[cfg(test)]
    fn size(&self) -> (usize, usize, usize) {
        let st = self.lock();
        (st.chats.len(), st.chats.values().map(|c| c.messages.len()).sum(), st.bytes)
    }
}

impl State {
    /// Marks `chat` as the most recently active.
    fn touch(&mut self, chat: i64) {
        self.tick += 1;
        let tick = self.tick;
        let log = self.chats.entry(chat).or_default();
        if log.tick != 0 {
            self.order.remove(&log.tick);
        }
        log.tick = tick;
        self.order.insert(tick, chat);
    }

    /// Forgets the quietest chats other than `keep` until within `limits`; then, if
    /// `keep` alone is over the bytes, its oldest messages.
    fn evict(&mut self, keep: i64, limits: Limits) {
        while self.chats.len() > limits.chats || self.bytes > limits.bytes {
            let Some(quietest) = self.order.values().copied().find(|c| *c != keep) else { break };
            if let Some(log) = self.chats.remove(&quietest) {
                self.order.remove(&log.tick);
                self.bytes -= log.bytes;
            }
        }
        if let Some(log) = self.chats.get_mut(&keep) {
            while self.bytes > limits.bytes {
                let Some(old) = log.messages.pop_front() else { break };
                log.bytes -= old.weight();
                self.bytes -= old.weight();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn word(id: i32, w: &str) -> Seen {
        Seen { id, from: 7, content: Content::Word(w.into()) }
    }

    #[test]
    fn messages_after_an_id_come_oldest_first() {
        let r = Recent::new(Limits::default());
        for id in [3, 1, 5, 4] {
            r.record(-10, word(id, &format!("https://x.test/{id}")));
        }
        r.record(-10, word(4, "again"));
        let ids: Vec<i32> = r.after(-10, 2, 10).iter().map(|s| s.id).collect();
        assert_eq!(ids, [3, 4, 5]);
        assert_eq!(
            r.after(-10, 2, 10)[1].content,
            Content::Word("again".into()),
            "a message seen again replaces"
        );
        assert_eq!(r.after(-10, 2, 1).len(), 1);
        assert!(r.after(-10, 5, 10).is_empty());
        assert!(r.after(-11, 0, 10).is_empty(), "another chat");
        assert_eq!(r.size().0, 1, "asking about an unknown chat remembers nothing");
    }

    #[test]
    fn each_chat_keeps_its_latest_messages_and_the_quietest_chat_goes_first() {
        let r = Recent::new(Limits { per_chat: 3, chats: 2, bytes: usize::MAX });
        for id in 1..=5 {
            r.record(1, word(id, "a"));
        }
        let ids: Vec<i32> = r.after(1, 0, 10).iter().map(|s| s.id).collect();
        assert_eq!(ids, [3, 4, 5]);
        r.record(2, word(1, "b"));
        // Chat 1 was active last (asked about): chat 2 is the quietest when 3 arrives.
        let _ = r.after(1, 0, 1);
        r.record(3, word(1, "c"));
        assert!(r.after(2, 0, 10).is_empty(), "chat 2 was forgotten");
        assert_eq!(r.after(1, 0, 10).len(), 3);
        assert_eq!(r.after(3, 0, 10).len(), 1);
    }

    fn message(extra: serde_json::Value) -> Message {
        let mut m = serde_json::json!({
            "message_id": 12,
            "date": 0,
            "chat": {"id": -5, "type": "group", "title": "g"},
            "from": {"id": 7, "is_bot": false, "first_name": "u"},
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        serde_json::from_value(m).unwrap()
    }

    #[test]
    fn a_message_gives_its_first_word_or_its_document() {
        let seen = Seen::of(&message(serde_json::json!({"text": "  https://x.test/a b c"}))).unwrap();
        assert_eq!(seen, Seen { id: 12, from: 7, content: Content::Word("https://x.test/a".into()) });
        let seen = Seen::of(&message(serde_json::json!({
            "caption": "https://x.test/ignored",
            "document": {"file_id": "F1", "file_unique_id": "U1", "file_name": "a.torrent"},
        })))
        .unwrap();
        let doc = Document { file_id: "F1".into(), file_name: Some("a.torrent".into()) };
        assert_eq!(seen.content, Content::Document(doc));
        let caption = Seen::of(&message(serde_json::json!({"caption": "magnet:?xt=1 x"}))).unwrap();
        assert_eq!(caption.content, Content::Word("magnet:?xt=1".into()));
        let long = format!("https://x.test/{}", "a".repeat(MAX_WORD));
        let seen = Seen::of(&message(serde_json::json!({"text": long}))).unwrap();
        assert_eq!(seen.content, Content::LongWord);
        assert_eq!(
            Seen::of(&message(serde_json::json!({"text": " \n "}))).unwrap().content,
            Content::Nothing
        );
        assert_eq!(Seen::of(&message(serde_json::json!({}))).unwrap().content, Content::Nothing);
        let bot =
            serde_json::json!({"from": {"id": 8, "is_bot": true, "first_name": "b"}, "text": "https://x"});
        assert_eq!(Seen::of(&message(bot)), None, "other bots' messages are not taken");
    }

    #[test]
    fn names_are_cut_on_a_char_boundary() {
        assert_eq!(cut("ééé", 3), "é");
        assert_eq!(cut("abc", 9), "abc");
    }

    proptest! {
        #[test]
        fn the_bounds_always_hold(
            ops in proptest::collection::vec((0i64..6, 0i32..40, 0usize..300), 1..300),
        ) {
            let limits = Limits { per_chat: 5, chats: 3, bytes: 6000 };
            let r = Recent::new(limits);
            for (chat, id, len) in ops {
                r.record(chat, word(id, &"x".repeat(len)));
                let (chats, _, bytes) = r.size();
                prop_assert!(chats <= 3);
                prop_assert!(bytes <= r.limits.bytes);
                let st = r.lock();
                let mut total = 0;
                for log in st.chats.values() {
                    prop_assert!(log.messages.len() <= 5);
                    prop_assert!(log.messages.iter().zip(log.messages.iter().skip(1)).all(|(a, b)| a.id < b.id));
                    prop_assert_eq!(log.bytes, log.messages.iter().map(Seen::weight).sum::<usize>());
                    total += log.bytes;
                }
                prop_assert_eq!(total, st.bytes);
                prop_assert_eq!(st.order.len(), st.chats.len());
            }
        }
    }
}
