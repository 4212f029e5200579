//! Serving one message: parse, authorize, rate limit, act, reply.

use std::time::Instant;

use frankenstein::types::Message;
use mltb_store::{Backend, NewAuditEntry, Role};
use mltb_telegram::command::{Args, Command, Document, Reply};
use mltb_telegram::format::{escape, human_size};

use super::{Bot, text};
use crate::auth::Access;

/// Who sent a command, where, and in answer to what.
pub(super) struct Ctx {
    pub(super) chat: i64,
    pub(super) user: i64,
    pub(super) message_id: i32,
    pub(super) access: Access,
    pub(super) reply_to: Option<Box<Message>>,
}

pub(super) async fn message<B: Backend>(bot: &Bot<B>, message: Message) {
    let Some(from) = message.from.as_deref() else { return };
    if from.is_bot {
        return;
    }
    let Ok(user) = i64::try_from(from.id) else { return };
    let chat = message.chat.id;
    let Some(text) = message.text.as_deref().or(message.caption.as_deref()) else { return };
    let reply = reply_of(&message);
    let parsed = bot.inner.parser.parse(text, reply.as_ref());
    // Not a command for this bot: nothing to say.
    if matches!(parsed, Ok(None)) {
        return;
    }
    let access = match bot.inner.auth.access(user, chat).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(user, chat, error = %e, "authorization could not be read");
            bot.reply(
                chat,
                Some(message.message_id),
                "The bot cannot read its database right now; try again shortly.".into(),
            )
            .await;
            return;
        }
    };
    if !access.may_use() {
        let within_quota = bot.inner.limiter.check(access, user).await.is_ok();
        if !within_quota {
            bot.inner.observer.command_rejected(access);
        }
        if access == Access::Guest && within_quota && bot.inner.auth.tell_refusal(user, Instant::now()) {
            bot.reply(chat, Some(message.message_id), text::REFUSED.into()).await;
        }
        return;
    }
    if let Err(retry_after) = bot.inner.limiter.check(access, user).await {
        bot.inner.observer.command_rejected(access);
        let wait = retry_after.map_or_else(|| "a moment".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        bot.reply(chat, Some(message.message_id), format!("Too many commands: try again in {wait}.")).await;
        return;
    }
    let command = match parsed {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            let html = format!("⚠️ {}\nSee /help for the form of each command.", escape(&e.to_string()));
            bot.reply(chat, Some(message.message_id), html).await;
            return;
        }
    };
    let mut document = message
        .document
        .as_deref()
        .map(|d| Document { file_id: d.file_id.clone(), file_name: d.file_name.clone() });
    if document.is_none()
        && let Some(Reply::Document(d)) = &reply
    {
        document = Some(d.clone());
    }
    let ctx = Ctx { chat, user, message_id: message.message_id, access, reply_to: message.reply_to_message };
    let answer = run(bot, &ctx, command, document).await;
    if let Some(html) = answer {
        bot.reply(chat, Some(ctx.message_id), html).await;
    }
}

fn reply_of(message: &Message) -> Option<Reply> {
    let replied = message.reply_to_message.as_deref()?;
    if let Some(d) = replied.document.as_deref() {
        return Some(Reply::Document(Document {
            file_id: d.file_id.clone(),
            file_name: d.file_name.clone(),
        }));
    }
    replied.text.clone().map(Reply::Text)
}

/// Runs a command; the answer to send, if any.
async fn run<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    command: Command,
    document: Option<Document>,
) -> Option<String> {
    let words = match &command.args {
        Args::Words(w) => w.clone(),
        _ => Vec::new(),
    };
    match (command.name.as_str(), command.args) {
        ("mirror" | "leech", Args::Task(args)) => {
            Some(super::task::task(bot, ctx, &command.name, *args, document).await)
        }
        ("start" | "help", _) => {
            let mut help = text::HELP.to_owned();
            if ctx.access.is_admin() {
                help.push_str(text::HELP_ADMIN);
            }
            Some(help)
        }
        ("status", _) => {
            if bot.inner.engine.all_tasks().iter().any(|v| v.chat == ctx.chat) {
                bot.inner.board.repost(ctx.chat);
                None
            } else {
                Some("No tasks in this chat.".into())
            }
        }
        ("cancel", _) => Some(cancel(bot, ctx, &words).await),
        ("cancelall", _) => Some(cancel_all(bot, ctx).await),
        ("forcestart", _) => Some(force_start(bot, ctx, &words).await),
        ("usettings", _) => Some(super::settings::user_settings(bot, ctx, &words).await),
        ("stats", _) => Some(stats(bot).await),
        ("ping", _) => {
            let started = Instant::now();
            let sent = bot.reply(ctx.chat, Some(ctx.message_id), "Pong".into()).await;
            if let Some(id) = sent {
                let ms = started.elapsed().as_millis();
                let edit = mltb_telegram::scheduler::Request::edit_message_text(
                    ctx.chat,
                    id,
                    format!("Pong: {ms} ms"),
                );
                let _ = bot.inner.scheduler.send(edit).await;
            }
            None
        }
        ("auth" | "unauth" | "users" | "addsudo" | "rmsudo" | "log" | "restart", _)
            if !ctx.access.is_admin() =>
        {
            Some(format!("/{} is for the owner and sudo users.", command.name))
        }
        ("auth", _) => Some(authorize(bot, ctx, &words, true).await),
        ("unauth", _) => Some(authorize(bot, ctx, &words, false).await),
        ("users", _) => Some(users(bot).await),
        ("addsudo" | "rmsudo", _) if ctx.access != Access::Owner => {
            Some(format!("/{} is for the owner only.", command.name))
        }
        ("addsudo", _) => Some(sudo(bot, ctx, &words, true).await),
        ("rmsudo", _) => Some(sudo(bot, ctx, &words, false).await),
        ("log", _) => log(bot, ctx).await,
        ("restart", _) => {
            audit(bot, ctx, "restart", None, None).await;
            bot.inner.restart.cancel();
            Some("Restarting. Tasks resume where they were.".into())
        }
        (other, _) => Some(format!("/{} is not served here; see /help.", escape(other))),
    }
}

pub(super) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The task id a command names: its first word, or the task of the replied message.
fn task_id(ctx: &Ctx, words: &[String]) -> Result<i64, String> {
    if let Some(w) = words.first() {
        return w
            .trim_start_matches('#')
            .parse::<i64>()
            .map_err(|_| format!("expected a task id such as 12, got {:?}", shorten(w)));
    }
    let replied = ctx.reply_to.as_deref().and_then(|m| m.text.as_deref()).unwrap_or("");
    replied
        .split(|c: char| !c.is_ascii_digit() && c != '#')
        .find_map(|w| w.strip_prefix('#').and_then(|n| n.parse().ok()))
        .ok_or_else(|| "expected a task id (/cancel 12), or a reply to the task's message".into())
}

/// The running task a command names, if the sender may act on it (its user, the owner or
/// a sudo user); otherwise the answer to send. `not_yours` finishes "Task #id is not yours".
fn own_task<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    words: &[String],
    not_yours: &str,
) -> Result<mltb_engine::TaskView, String> {
    let id = task_id(ctx, words).map_err(|e| format!("⚠️ {}", escape(&e)))?;
    let view = bot
        .inner
        .engine
        .all_tasks()
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| format!("Task #{id} is not running."))?;
    if view.user != ctx.user && !ctx.access.is_admin() {
        return Err(format!("⛔ Task #{id} is not yours{not_yours}"));
    }
    Ok(view)
}

async fn cancel<B: Backend>(bot: &Bot<B>, ctx: &Ctx, words: &[String]) -> String {
    let view =
        match own_task(bot, ctx, words, ": only its owner, the bot's owner or a sudo user may cancel it.") {
            Ok(v) => v,
            Err(answer) => return answer,
        };
    let id = view.id;
    if view.user != ctx.user {
        audit(bot, ctx, "cancel", Some(view.user), Some(format!("task {id}"))).await;
    }
    if bot.inner.board.cancel(id, ctx.user).await {
        format!("Cancelling task #{id}.")
    } else {
        format!("Task #{id} is not running.")
    }
}

async fn cancel_all<B: Backend>(bot: &Bot<B>, ctx: &Ctx) -> String {
    let mine: Vec<_> = bot
        .inner
        .engine
        .all_tasks()
        .into_iter()
        .filter(|v| if ctx.access.is_admin() { true } else { v.user == ctx.user })
        .collect();
    if mine.is_empty() {
        return "No tasks to cancel.".into();
    }
    if ctx.access.is_admin() {
        audit(bot, ctx, "cancelall", None, Some(format!("{} tasks", mine.len()))).await;
    }
    let mut n = 0;
    for v in &mine {
        n += usize::from(bot.inner.board.cancel(v.id, ctx.user).await);
    }
    format!("Cancelling {n} task(s).")
}

async fn force_start<B: Backend>(bot: &Bot<B>, ctx: &Ctx, words: &[String]) -> String {
    let view = match own_task(bot, ctx, words, ".") {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let id = view.id;
    if bot.inner.config.queue.force_start_admins_only && !ctx.access.is_admin() {
        return format!(
            "⛔ Only the owner or a sudo user may start task #{id} past the queue (queue.force_start_admins_only)."
        );
    }
    if view.user != ctx.user {
        audit(bot, ctx, "forcestart", Some(view.user), Some(format!("task {id}"))).await;
    }
    if bot.inner.engine.force_start(id) {
        format!("Task #{id} starts now.")
    } else {
        // Found by `own_task`, so it waits for an instance, or runs on another one.
        format!(
            "Task #{id} is not running on this instance; only the instance that runs it can start it now."
        )
    }
}

async fn stats<B: Backend>(bot: &Bot<B>) -> String {
    let views = bot.inner.engine.tasks();
    let (queued, downloading, uploading) = bot.inner.engine.queue_counts();
    let speed: u64 = views.iter().map(|v| v.speed).sum();
    let dir = bot.inner.config.download_dir();
    let disk = rustix::fs::statvfs(&dir)
        .map(|s| {
            format!(
                "{} free of {}",
                human_size(s.f_bavail.saturating_mul(s.f_frsize)),
                human_size(s.f_blocks.saturating_mul(s.f_frsize))
            )
        })
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map_or_else(|| "unknown".to_owned(), |kb| human_size(kb * 1024));
    let cpu = bot.inner.cpu.measure().await.map_or_else(
        || "unknown".to_owned(),
        |u| {
            format!(
                "{:.0}% of {} cores · the bot {:.1}% of one core (over {:.1} s)",
                u.system,
                u.cores,
                u.process,
                u.span.as_secs_f64()
            )
        },
    );
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    let up = bot.inner.started.elapsed().as_secs();
    format!(
        "<b>Tasks</b>: {} running ({queued} queued, {downloading} downloading, {uploading} uploading)\n<b>Bandwidth</b>: {}/s\n<b>Disk</b>: {}\n<b>CPU</b>: {cpu} · load {load}\n<b>Memory</b>: {rss} resident\n<b>Uptime</b>: {}h {}m {}s",
        views.len(),
        human_size(speed),
        escape(&disk),
        up / 3600,
        up % 3600 / 60,
        up % 60
    )
}

/// The id a privileged command targets: its first word, else the replied user, else
/// this chat.
fn target(ctx: &Ctx, words: &[String], chat_default: bool) -> Result<i64, String> {
    if let Some(w) = words.first() {
        return w.parse::<i64>().map_err(|_| {
            format!("expected a numeric id (a user, or a chat such as -100123), got {:?}", shorten(w))
        });
    }
    if let Some(from) = ctx.reply_to.as_deref().and_then(|m| m.from.as_deref()) {
        return i64::try_from(from.id).map_err(|_| "the replied user's id is out of range".into());
    }
    if chat_default {
        Ok(ctx.chat)
    } else {
        Err("expected a user id, or a reply to the user's message".into())
    }
}

async fn authorize<B: Backend>(bot: &Bot<B>, ctx: &Ctx, words: &[String], grant: bool) -> String {
    let id = match target(ctx, words, true) {
        Ok(id) => id,
        Err(e) => return format!("⚠️ {}", escape(&e)),
    };
    let store = &bot.inner.store;
    let result = if id < 0 {
        if grant {
            store.authorize_chat(ctx.user, id).await
        } else {
            store.unauthorize_chat(ctx.user, id).await
        }
    } else if id == bot.inner.auth.owner() {
        return "The owner needs no authorization.".into();
    } else if let Some(refusal) = sudo_target(bot, ctx, id, grant).await {
        return refusal;
    } else if grant {
        store.set_role(ctx.user, id, Role::Authorized).await.map(|()| true)
    } else {
        store.remove_user(ctx.user, id).await
    };
    let what = if id < 0 { "Chat" } else { "User" };
    match (result, grant) {
        (Ok(true), true) => format!("{what} {id} is authorized."),
        (Ok(false), true) => format!("{what} {id} was already authorized."),
        (Ok(true), false) => format!("{what} {id} is no longer authorized."),
        (Ok(false), false) => format!("{what} {id} was not authorized."),
        (Err(e), _) => format!("⚠️ The change was not saved: {}", escape(&e.to_string())),
    }
}

/// Why a sudo user may not `/auth` or `/unauth` user `id`, if they may not: `/auth` would
/// demote a sudo user to authorized and `/unauth` remove them, and only the owner
/// decides who is sudo (as with `/rmsudo`).
async fn sudo_target<B: Backend>(bot: &Bot<B>, ctx: &Ctx, id: i64, grant: bool) -> Option<String> {
    if ctx.access == Access::Owner {
        return None;
    }
    let command = if grant { "auth" } else { "unauth" };
    match bot.inner.auth.is_sudo(id).await {
        Ok(false) => None,
        Ok(true) => Some(format!("⛔ User {id} is a sudo user: only the owner may /{command} a sudo user.")),
        Err(e) => Some(format!("⚠️ The change was not saved: {}", escape(&e.to_string()))),
    }
}

async fn users<B: Backend>(bot: &Bot<B>) -> String {
    let store = &bot.inner.store;
    let (users, chats) = match (store.users().await, store.authorized_chats().await) {
        (Ok(u), Ok(c)) => (u, c),
        (Err(e), _) | (_, Err(e)) => {
            return format!("⚠️ The users could not be read: {}", escape(&e.to_string()));
        }
    };
    let config = &bot.inner.config;
    let mut out = format!("<b>Owner</b>: {}\n", config.owner_id);
    let list =
        |role: Role| users.iter().filter(|u| u.role == role).map(|u| u.id.to_string()).collect::<Vec<_>>();
    let mut sudo = list(Role::Sudo);
    sudo.extend(config.auth.sudo_users.iter().map(|u| format!("{u} (config)")));
    let mut chat_list: Vec<String> = chats.iter().map(ToString::to_string).collect();
    chat_list.extend(config.auth.authorized_chats.iter().map(|c| format!("{c} (config)")));
    for (title, items) in [
        ("Sudo", sudo),
        ("Authorized users", list(Role::Authorized)),
        ("Authorized chats", chat_list),
        ("Banned", list(Role::Banned)),
    ] {
        out.push_str(&format!(
            "<b>{title}</b>: {}\n",
            if items.is_empty() { "none".into() } else { items.join(", ") }
        ));
    }
    out.trim_end().to_owned()
}

async fn sudo<B: Backend>(bot: &Bot<B>, ctx: &Ctx, words: &[String], grant: bool) -> String {
    let id = match target(ctx, words, false) {
        Ok(id) if id > 0 => id,
        Ok(id) => return format!("⚠️ expected a user id (positive), got {id}"),
        Err(e) => return format!("⚠️ {}", escape(&e)),
    };
    if id == bot.inner.auth.owner() {
        return "The owner is above sudo.".into();
    }
    let store = &bot.inner.store;
    let result = if grant {
        store.set_role(ctx.user, id, Role::Sudo).await.map(|()| true)
    } else {
        match store.role(id).await {
            Ok(Some(Role::Sudo)) => store.remove_user(ctx.user, id).await,
            Ok(_) => Ok(false),
            Err(e) => Err(e),
        }
    };
    match (result, grant) {
        (Ok(_), true) => format!("User {id} is sudo."),
        (Ok(true), false) => format!("User {id} is no longer sudo."),
        (Ok(false), false) => format!("User {id} was not sudo (sudo users from the config stay)."),
        (Err(e), _) => format!("⚠️ The change was not saved: {}", escape(&e.to_string())),
    }
}

/// `/log`: the end of the log file, secrets removed, as a document.
async fn log<B: Backend>(bot: &Bot<B>, ctx: &Ctx) -> Option<String> {
    let config = &bot.inner.config;
    let redactor = crate::logging::Redactor::for_config(config);
    let text = match crate::logging::tail(&config.log_file(), &redactor) {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => return Some("The log is empty.".into()),
        Err(e) => {
            return Some(format!(
                "⚠️ The log file {} cannot be read: {}",
                escape(&config.log_file().display().to_string()),
                escape(&e.to_string())
            ));
        }
    };
    let dir = config.data_dir.join("exports");
    let path = dir.join(format!("mltb-log-{}.txt", mltb_engine::DownloadId::random()));
    if let Err(e) = tokio::fs::create_dir_all(&dir).await.and(tokio::fs::write(&path, text.as_bytes()).await)
    {
        return Some(format!("⚠️ The log could not be prepared: {}", escape(&e.to_string())));
    }
    audit(bot, ctx, "log", None, None).await;
    let params = frankenstein::methods::SendDocumentParams::builder()
        .chat_id(ctx.chat)
        .document(frankenstein::input_file::InputFile { path: path.clone() })
        .caption(format!("The last {} of the log, secrets removed", human_size(text.len() as u64)))
        .build();
    let sent = bot.inner.scheduler.send(mltb_telegram::scheduler::Request::SendDocument(params)).await;
    let _ = tokio::fs::remove_file(&path).await;
    match sent {
        Ok(_) => None,
        Err(e) => Some(format!("⚠️ The log could not be sent: {}", escape(&e.to_string()))),
    }
}

/// Records a privileged action: who, what, to whom.
async fn audit<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    action: &str,
    target: Option<i64>,
    detail: Option<String>,
) {
    let entry = NewAuditEntry { actor: ctx.user, action: action.to_owned(), target, detail };
    if let Err(e) = bot.inner.store.audit(&entry).await {
        tracing::warn!(action, error = %e, "the audit log could not be written");
    }
}
