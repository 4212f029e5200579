//! The driver: one task that watches the engine, ticks on the refresh interval, and keeps
//! each chat's board message in step through the scheduler; and tells chats how their
//! tasks ended, once each, as the store records (`tasks.announced_at`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use frankenstein::ParseMode;
use frankenstein::methods::{EditMessageTextParams, SendMessageParams};
use frankenstein::types::{InlineKeyboardMarkup, LinkPreviewOptions, ReplyMarkup, ReplyParameters};
use mltb_store::{Backend, Task, TaskState};
use mltb_telegram::Error as TgError;
use mltb_telegram::scheduler::{Request, Response};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::handle::Shared;
use super::notice::{Notice, notices};
use super::render::{Frame, TaskLine, render};

/// Ended tasks announced per look; more wait for the next.
const MAX_ANNOUNCE: u32 = 32;
/// Sends of one announcement that failed for a passing reason before this process gives
/// it up (it stays marked as told).
const MAX_NOTICE_TRIES: u32 = 5;
/// Longest wait after failures before a chat's board is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How long a stopping driver waits for its requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// What a chat's board message is, as far as the driver knows.
#[derive(Debug, Default)]
struct Post {
    /// The board message, once posted (or taken over from the store).
    message: Option<i32>,
    /// What it shows, when known.
    shown: Option<(String, InlineKeyboardMarkup)>,
    /// A request for this board is in flight: at most one at a time.
    busy: bool,
    /// Needs rendering once it may.
    pending: bool,
    failures: u32,
    retry_at: Option<Instant>,
    /// The tasks' ids and states last rendered: a change renders at once.
    structure: Vec<(i64, TaskState, Option<String>)>,
}

#[derive(Debug)]
enum Op {
    Post {
        shown: (String, InlineKeyboardMarkup),
    },
    Edit {
        shown: (String, InlineKeyboardMarkup),
    },
    Delete,
    /// A message telling how `task` ended (`first`: its first or only message).
    Notice {
        task: i64,
        first: bool,
    },
    /// An old board being replaced: only logged.
    Other(&'static str),
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Post { .. } => "post the board",
            Op::Edit { .. } => "edit the board",
            Op::Delete => "delete the board",
            Op::Notice { .. } => "tell how a task ended",
            Op::Other(what) => what,
        }
    }
}

struct Done {
    chat: i64,
    op: Op,
    outcome: Result<Response, TgError>,
}

pub(super) struct Driver<B: Backend> {
    shared: Arc<Shared<B>>,
    posts: HashMap<i64, Post>,
    /// The engine's tasks at the last look, by id.
    live: BTreeMap<i64, TaskLine>,
    /// Tasks whose end is marked as told and whose first message is in flight.
    telling: BTreeSet<i64>,
    /// Failed sends per task, for the passing failures that are tried again.
    notice_failures: HashMap<i64, u32>,
    inflight: JoinSet<Done>,
    /// A task left the engine unfinished: the engine is shutting down, and boards whose
    /// tasks went with it are left for the next start rather than deleted.
    engine_stopping: bool,
}

impl<B: Backend> Driver<B> {
    pub(super) fn new(shared: Arc<Shared<B>>) -> Self {
        Self {
            shared,
            posts: HashMap::new(),
            live: BTreeMap::new(),
            telling: BTreeSet::new(),
            notice_failures: HashMap::new(),
            inflight: JoinSet::new(),
            engine_stopping: false,
        }
    }

    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.restore().await;
        let mut changes = self.shared.engine.changes();
        let mut ticker = tokio::time::interval(self.shared.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut tick = false;
            tokio::select! {
                biased;
                stopped = stop.changed() => {
                    if stopped.is_err() || *stop.borrow() {
                        break;
                    }
                }
                Some(done) = self.inflight.join_next(), if !self.inflight.is_empty() => match done {
                    Ok(done) => self.complete(done).await,
                    Err(e) => tracing::error!(error = %e, "a board request's task failed"),
                },
                _ = ticker.tick() => tick = true,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = self.shared.wake.notified() => {}
            }
            self.sync(tick).await;
        }
        self.drain().await;
    }

    /// Takes over the boards recorded in the store.
    async fn restore(&mut self) {
        let store = self.shared.engine.store();
        match store.status_messages().await {
            Ok(messages) => {
                for m in messages {
                    match i32::try_from(m.message_id) {
                        Ok(id) => {
                            let post = Post { message: Some(id), pending: true, ..Post::default() };
                            self.posts.insert(m.chat, post);
                        }
                        Err(_) => tracing::warn!(chat = m.chat, "a stored status message id is out of range"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the stored status messages"),
        }
    }

    /// Looks at the engine, tells chats about tasks that ended, and renders the boards
    /// that need it (every board on a tick).
    async fn sync(&mut self, tick: bool) {
        let now_ms = (self.shared.clock)();
        let current: BTreeMap<i64, TaskLine> =
            self.shared.engine.all_tasks().iter().map(|v| (v.id, TaskLine::from(v))).collect();
        let ended: Vec<i64> = self.live.keys().filter(|id| !current.contains_key(id)).copied().collect();
        let changed_set = !ended.is_empty() || current.keys().any(|id| !self.live.contains_key(id));
        for id in ended {
            self.ended(id).await;
        }
        // The first look is a tick: what ended while no board watched is told at start.
        if tick || changed_set {
            self.announce().await;
        }
        self.live = current;

        let mut by_chat: BTreeMap<i64, Vec<TaskLine>> = BTreeMap::new();
        for t in self.live.values() {
            by_chat.entry(t.chat).or_default().push(t.clone());
        }
        let chats: BTreeSet<i64> = by_chat.keys().chain(self.posts.keys()).copied().collect();
        for &chat in &chats {
            let tasks = by_chat.remove(&chat).unwrap_or_default();
            for (op, request) in self.plan(chat, &tasks, tick, now_ms) {
                self.submit(chat, op, request).await;
            }
        }
        // Presses on old boards of chats with nothing left leave no state behind.
        self.shared.views().retain(|chat, _| chats.contains(chat));
    }

    /// What to send for `chat`'s board now, if anything.
    fn plan(&mut self, chat: i64, tasks: &[TaskLine], tick: bool, now_ms: i64) -> Vec<(Op, Request)> {
        let confirm_ttl = i64::try_from(self.shared.config.confirm_ttl.as_millis()).unwrap_or(i64::MAX);
        let (dirty, repost, page, confirm) = {
            let mut views = self.shared.views();
            let view = views.entry(chat).or_default();
            if let Some((c, at)) = view.confirm
                && (now_ms.saturating_sub(at) > confirm_ttl || !tasks.iter().any(|t| t.id == c.task))
            {
                view.confirm = None;
                view.dirty = true;
            }
            let out = (std::mem::take(&mut view.dirty), view.repost, view.page, view.confirm.map(|(c, _)| c));
            if tasks.is_empty() {
                views.remove(&chat);
            }
            out
        };
        let post = self.posts.entry(chat).or_default();
        let structure: Vec<_> = tasks.iter().map(|t| (t.id, t.state, t.name.clone())).collect();
        if !(tick || dirty || repost || post.pending || structure != post.structure) {
            return Vec::new();
        }
        if post.busy || post.retry_at.is_some_and(|at| at > Instant::now()) {
            post.pending = true;
            return Vec::new();
        }
        post.pending = false;
        post.retry_at = None;
        post.structure = structure;
        let mut requests = Vec::new();
        if tasks.is_empty() && self.engine_stopping {
            // Left in place (and recorded) for the next start to take over.
            return requests;
        }
        if tasks.is_empty() {
            match post.message {
                Some(message) => {
                    post.busy = true;
                    requests.push((Op::Delete, Request::delete_message(chat, message)));
                }
                None => {
                    self.posts.remove(&chat);
                }
            }
            return requests;
        }
        if repost {
            if let Some(view) = self.shared.views().get_mut(&chat) {
                view.repost = false;
            }
            if let Some(old) = post.message.take() {
                post.shown = None;
                requests.push((Op::Other("delete the replaced board"), Request::delete_message(chat, old)));
            }
        }
        let frame = Frame { chat, tasks, page, page_size: self.shared.config.page_size, now_ms, confirm };
        let rendered = render(&frame, &self.shared.signer);
        if rendered.page != page
            && let Some(view) = self.shared.views().get_mut(&chat)
        {
            view.page = rendered.page;
        }
        let shown = (rendered.text, rendered.keyboard);
        if post.shown.as_ref() == Some(&shown) {
            return requests;
        }
        post.busy = true;
        requests.push(match post.message {
            Some(message) => {
                let request = edit(chat, message, &shown);
                (Op::Edit { shown }, request)
            }
            None => {
                let request = send(chat, &shown);
                (Op::Post { shown }, request)
            }
        });
        requests
    }

    async fn submit(&mut self, chat: i64, op: Op, request: Request) {
        match self.shared.scheduler.submit(request).await {
            Ok(ticket) => {
                self.inflight.spawn(async move { Done { chat, op, outcome: ticket.await } });
            }
            Err(e) => {
                // Only a scheduler that was shut down refuses; treat it as a failure.
                self.inflight.spawn(async move { Done { chat, op, outcome: Err(e) } });
            }
        }
    }

    async fn complete(&mut self, Done { chat, op, outcome }: Done) {
        let store = self.shared.engine.store().clone();
        if let Op::Notice { task, first } = op {
            if first {
                self.telling.remove(&task);
            }
            if let Err(e) = outcome {
                let tries = self.notice_failures.entry(task).or_default();
                *tries += 1;
                let again = first && is_passing(&e) && *tries < MAX_NOTICE_TRIES;
                tracing::warn!(chat, task, error = %e, again, "the message telling how a task ended was not sent");
                if again {
                    // Not told: the next look, or the next start, tries again.
                    if let Err(e) = store.unmark_announced(task).await {
                        tracing::warn!(task, error = %e, "could not unmark an announcement");
                    }
                } else {
                    self.notice_failures.remove(&task);
                }
            } else if first {
                self.notice_failures.remove(&task);
            }
            return;
        }
        if let Op::Other(what) = op {
            if let Err(e) = outcome {
                tracing::warn!(chat, what, error = %e, "a message could not be sent");
            }
            return;
        }
        let Some(post) = self.posts.get_mut(&chat) else { return };
        post.busy = false;
        let mut forget = false;
        match (op, outcome) {
            (Op::Post { shown }, Ok(response)) => {
                post.failures = 0;
                if let Some(m) = response.message() {
                    post.message = Some(m.message_id);
                    post.shown = Some(shown);
                    if let Err(e) = store.set_status_message(chat, i64::from(m.message_id)).await {
                        tracing::warn!(chat, error = %e, "could not record the status message");
                    }
                }
            }
            (Op::Edit { shown }, Ok(_)) => {
                post.failures = 0;
                post.shown = Some(shown);
            }
            (Op::Edit { .. }, Err(e)) if is_gone(&e) => {
                tracing::info!(chat, error = %e, "the status message is gone; posting it again");
                post.message = None;
                post.shown = None;
                post.pending = true;
            }
            (Op::Delete, Ok(_)) => forget = true,
            (Op::Delete, Err(e)) if is_gone(&e) => forget = true,
            (Op::Other(_) | Op::Notice { .. }, _) => {}
            (op, Err(e)) => {
                post.failures += 1;
                let wait =
                    self.shared.config.interval.saturating_mul(1 << post.failures.min(10)).min(MAX_BACKOFF);
                post.retry_at = Some(Instant::now() + wait);
                post.pending = true;
                tracing::warn!(chat, op = op.name(), error = %e, ?wait, "a status board request failed; backing off");
            }
        }
        if forget {
            post.message = None;
            post.shown = None;
            post.pending = true;
            if let Err(e) = store.remove_status_message(chat).await {
                tracing::warn!(chat, error = %e, "could not forget the status message");
            }
        }
    }

    /// Task `id` left the engine: if it has not finished, the engine is shutting down
    /// (and resumes it at the next start). How a finished one ended is told by
    /// [`announce`](Self::announce).
    async fn ended(&mut self, id: i64) {
        match self.shared.engine.store().task(id).await {
            Ok(Some(task)) if !task.state.is_finished() => self.engine_stopping = true,
            Ok(_) => {}
            Err(e) => tracing::warn!(task = id, error = %e, "could not read an ended task"),
        }
    }

    /// Tells the chats of tasks that ended and were not told yet: those that just left
    /// the engine, those that ended between two looks or without ever running here, and
    /// those that ended while no board ran (before a restart). Each is marked in the
    /// store before it is sent, so that it is told once; a send that fails for a passing
    /// reason takes the mark back.
    async fn announce(&mut self) {
        let store = self.shared.engine.store().clone();
        let tasks = match store.unannounced_tasks(MAX_ANNOUNCE).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for ended tasks to announce");
                return;
            }
        };
        for task in tasks {
            match store.mark_announced(task.id).await {
                Ok(true) => self.notify(task).await,
                // Told meanwhile (by another instance).
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(task = task.id, error = %e, "could not mark an announcement");
                    return;
                }
            }
        }
    }

    async fn notify(&mut self, task: Task) {
        let cancelled_by =
            if task.state == TaskState::Cancelled { self.shared.take_canceller(task.id) } else { None };
        let files = if task.state == TaskState::Completed {
            match self.shared.engine.store().task_files(task.id).await {
                Ok(files) => files,
                Err(e) => {
                    tracing::warn!(task = task.id, error = %e, "could not read a task's files");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let leech_chat = (self.shared.leech_chat)(&task);
        for (i, notice) in notices(&task, &files, leech_chat, cancelled_by).into_iter().enumerate() {
            let chat = notice.chat;
            if i == 0 {
                self.telling.insert(task.id);
            }
            self.submit(chat, Op::Notice { task: task.id, first: i == 0 }, notice_request(notice)).await;
        }
    }

    /// Waits (bounded) for requests in flight, so posted boards are recorded.
    async fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN;
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline, self.inflight.join_next()).await {
                Ok(Some(Ok(done))) => self.complete(done).await,
                Ok(Some(Err(e))) => tracing::error!(error = %e, "a board request's task failed"),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(left = self.inflight.len(), "stopping with board requests in flight");
                    self.inflight.abort_all();
                    // Their fate is unknown: tell them again at the next start rather than
                    // never.
                    let store = self.shared.engine.store().clone();
                    for task in std::mem::take(&mut self.telling) {
                        if let Err(e) = store.unmark_announced(task).await {
                            tracing::warn!(task, error = %e, "could not unmark an announcement");
                        }
                    }
                    break;
                }
            }
        }
    }
}

/// Whether `e` may pass: sending again later may succeed (unlike a chat that is gone or
/// a bot that was blocked).
fn is_passing(e: &TgError) -> bool {
    e.is_retryable() || matches!(e, TgError::Closed)
}

/// Whether `e` says the message is not there (or cannot be edited any more): the board
/// is then posted anew.
fn is_gone(e: &TgError) -> bool {
    match e {
        TgError::Api { code: 400, description, .. } => {
            let d = description.to_ascii_lowercase();
            [
                "message to edit not found",
                "message to delete not found",
                "message can't be edited",
                "message_id_invalid",
                "message can't be deleted",
            ]
            .iter()
            .any(|s| d.contains(s))
        }
        _ => false,
    }
}

fn send(chat: i64, (text, keyboard): &(String, InlineKeyboardMarkup)) -> Request {
    Request::SendMessage(
        SendMessageParams::builder()
            .chat_id(chat)
            .text(text.clone())
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions::DISABLED)
            .reply_markup(ReplyMarkup::InlineKeyboardMarkup(keyboard.clone()))
            .build(),
    )
}

fn edit(chat: i64, message: i32, (text, keyboard): &(String, InlineKeyboardMarkup)) -> Request {
    Request::EditMessageText(
        EditMessageTextParams::builder()
            .chat_id(chat)
            .message_id(message)
            .text(text.clone())
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions::DISABLED)
            .reply_markup(keyboard.clone())
            .build(),
    )
}

fn notice_request(notice: Notice) -> Request {
    let reply = notice
        .reply_to
        .map(|id| ReplyParameters::builder().message_id(id).allow_sending_without_reply(true).build());
    Request::SendMessage(
        SendMessageParams::builder()
            .chat_id(notice.chat)
            .text(notice.text)
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions::DISABLED)
            .maybe_reply_parameters(reply)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(description: &str) -> TgError {
        TgError::Api {
            code: 400,
            description: description.into(),
            retry_after: None,
            migrate_to_chat_id: None,
        }
    }

    #[test]
    fn gone_messages_are_told_apart_from_other_failures() {
        assert!(is_gone(&api("Bad Request: message to edit not found")));
        assert!(is_gone(&api("Bad Request: message can't be edited")));
        assert!(is_gone(&api("Bad Request: message to delete not found")));
        assert!(!is_gone(&api("Bad Request: chat not found")));
        assert!(!is_gone(&TgError::Network("reset".into())));
    }

    #[test]
    fn only_passing_failures_are_sent_again() {
        assert!(is_passing(&TgError::Network("reset".into())));
        assert!(is_passing(&TgError::Closed));
        assert!(is_passing(&TgError::Api {
            code: 502,
            description: "Bad Gateway".into(),
            retry_after: None,
            migrate_to_chat_id: None
        }));
        assert!(!is_passing(&api("Bad Request: chat not found")));
        assert!(!is_passing(&TgError::Api {
            code: 403,
            description: "Forbidden: bot was blocked by the user".into(),
            retry_after: None,
            migrate_to_chat_id: None,
        }));
    }

    #[test]
    fn notices_reply_without_failing_when_the_file_message_is_gone() {
        let n = Notice { chat: 5, text: "x".into(), reply_to: Some(9) };
        let Request::SendMessage(p) = notice_request(n) else { panic!("a sendMessage") };
        let reply = p.reply_parameters.unwrap();
        assert_eq!((reply.message_id, reply.allow_sending_without_reply), (Some(9), Some(true)));
        assert_eq!(p.parse_mode, Some(ParseMode::Html));
    }
}
