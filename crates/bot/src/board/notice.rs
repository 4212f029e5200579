//! What a chat is told when a task ends: a completion message with the task's files
//! (message links for leech, remote paths for mirror), a failure message with the
//! reason, or a short line naming who cancelled it. Pure, like rendering: built from
//! the store's task, file and part records.

use std::time::Duration;

use mltb_store::{Task, TaskFile, TaskKind, TaskState};
use mltb_telegram::format::{escape, escape_attr, eta, human_size, utf16_len};

use super::render::cut;

/// Text units (UTF-16, after parsing) a notice may take; Telegram allows 4 096.
pub const NOTICE_UNITS: usize = 3800;
/// The most messages one completion is split into; files past them are counted, not
/// listed.
pub const MAX_NOTICE_MESSAGES: usize = 4;
/// Characters of a failure's reason shown.
const REASON_CHARS: usize = 1000;
/// Characters of a file's path or name shown.
const PATH_CHARS: usize = 200;
/// Part links listed for one file; more are counted.
const MAX_PART_LINKS: usize = 50;

/// A message to send because a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notice {
    /// The chat to send it to (the task's).
    pub chat: i64,
    /// Telegram HTML.
    pub text: String,
    /// The message to reply to (a leech's first uploaded message, when it is in the same
    /// chat and the chat has no message links).
    pub reply_to: Option<i32>,
}

/// The link to message `message` of `chat`, when Telegram has one: supergroups and
/// channels (`-100…` ids) are `https://t.me/c/<id without -100>/<message>`; private
/// chats and basic groups have none.
///
/// ```
/// use mltb_bot::board::message_link;
/// assert_eq!(message_link(-1001234567890, 55).as_deref(), Some("https://t.me/c/1234567890/55"));
/// assert_eq!(message_link(-4567, 55), None);
/// assert_eq!(message_link(42, 55), None);
/// ```
pub fn message_link(chat: i64, message: i64) -> Option<String> {
    const SUPERGROUP: i64 = -1_000_000_000_000;
    (chat < SUPERGROUP && message > 0).then(|| format!("https://t.me/c/{}/{message}", -(chat - SUPERGROUP)))
}

/// The messages that tell `task`'s chat it ended: none while it runs; a failure message
/// with its reason; one line when it was cancelled, naming `cancelled_by` when known; a
/// completion message listing `files`, split into several when long. `leech_chat` is
/// where the leech's parts were sent (the task's chat, or a dump chat).
pub fn notices(task: &Task, files: &[TaskFile], leech_chat: i64, cancelled_by: Option<i64>) -> Vec<Notice> {
    match task.state {
        TaskState::Completed => completed(task, files, leech_chat),
        TaskState::Failed => vec![failed(task)],
        TaskState::Cancelled => vec![cancelled(task, cancelled_by)],
        _ => Vec::new(),
    }
}

fn title(task: &Task) -> String {
    match &task.name {
        Some(n) if !n.trim().is_empty() => {
            format!("<code>{}</code> (#{})", escape(&cut(n.trim(), PATH_CHARS)), task.id)
        }
        _ => format!("Task #{}", task.id),
    }
}

fn mention(task: &Task) -> String {
    format!("cc: <a href=\"tg://user?id={}\">user {}</a>", task.user, task.user)
}

fn took(task: &Task) -> String {
    let ms = task.finished_at.unwrap_or(task.updated_at).saturating_sub(task.created_at);
    eta(Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
}

fn cancelled(task: &Task, by: Option<i64>) -> Notice {
    let text = match by {
        Some(user) if user == task.user => {
            format!("<b>Cancelled</b>: {} by <a href=\"tg://user?id={user}\">user {user}</a>", title(task))
        }
        Some(user) => format!(
            "<b>Cancelled</b>: {} by <a href=\"tg://user?id={user}\">user {user}</a>\n{}",
            title(task),
            mention(task)
        ),
        None => format!("<b>Cancelled</b>: {}\n{}", title(task), mention(task)),
    };
    Notice { chat: task.chat, text, reply_to: None }
}

fn failed(task: &Task) -> Notice {
    let reason = task.error.as_deref().filter(|r| !r.trim().is_empty()).unwrap_or("no reason was recorded");
    let text = format!(
        "<b>Failed</b>: {}\nReason: <i>{}</i>\nAfter {}\n{}",
        title(task),
        escape(&cut(reason.trim(), REASON_CHARS)),
        took(task),
        mention(task)
    );
    Notice { chat: task.chat, text, reply_to: None }
}

fn completed(task: &Task, files: &[TaskFile], leech_chat: i64) -> Vec<Notice> {
    let size = files.iter().map(|f| f.size).fold(0u64, u64::saturating_add);
    let count = match files.len() {
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    let mut head = format!(
        "<b>Done</b>: {}\n{count} · {} · took {}\n{}\n",
        title(task),
        human_size(size),
        took(task),
        mention(task)
    );
    if let Some(link) = task.link.as_deref().filter(|l| l.starts_with("https://") || l.starts_with("http://"))
    {
        head.push_str(&format!("<a href=\"{}\">Share link</a>\n", escape_attr(link)));
    }
    let lines: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, f)| match task.kind {
            TaskKind::Leech => leech_line(i + 1, f, leech_chat),
            TaskKind::Mirror => mirror_line(i + 1, f),
        })
        .collect();
    let mut notices = pack(task.chat, head, &lines);
    let first_part = files.iter().flat_map(|f| &f.parts).find_map(|p| p.message_id);
    if task.kind == TaskKind::Leech && leech_chat == task.chat && message_link(leech_chat, 1).is_none() {
        // No links in this chat: reply to the first file, so the message leads to them.
        if let (Some(first), Some(id)) = (notices.first_mut(), first_part.and_then(|m| i32::try_from(m).ok()))
        {
            first.reply_to = Some(id);
        }
    }
    notices
}

fn file_name(f: &TaskFile) -> String {
    let name = f.path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(&f.path);
    escape(&cut(name, PATH_CHARS))
}

fn leech_line(n: usize, f: &TaskFile, chat: i64) -> String {
    let name = file_name(f);
    let links: Vec<String> =
        f.parts.iter().filter_map(|p| p.message_id.and_then(|m| message_link(chat, m))).collect();
    match links.as_slice() {
        [] if f.parts.len() > 1 => format!("{n}. {name} ({} parts, {})", f.parts.len(), human_size(f.size)),
        [] => format!("{n}. {name} ({})", human_size(f.size)),
        [one] => format!("{n}. <a href=\"{}\">{name}</a> ({})", escape_attr(one), human_size(f.size)),
        many => {
            let mut parts: Vec<String> = many
                .iter()
                .take(MAX_PART_LINKS)
                .enumerate()
                .map(|(i, l)| format!("<a href=\"{}\">{}</a>", escape_attr(l), i + 1))
                .collect();
            if many.len() > MAX_PART_LINKS {
                parts.push(format!("+{} more", many.len() - MAX_PART_LINKS));
            }
            format!("{n}. {name} ({}): parts {}", human_size(f.size), parts.join(" "))
        }
    }
}

fn mirror_line(n: usize, f: &TaskFile) -> String {
    let paths: Vec<String> = f
        .parts
        .iter()
        .filter_map(|p| p.remote_path.as_deref())
        .map(|p| format!("<code>{}</code>", escape(&cut(p, PATH_CHARS))))
        .collect();
    if paths.is_empty() {
        format!("{n}. {} ({})", file_name(f), human_size(f.size))
    } else {
        format!("{n}. {} ({})", paths.join(" "), human_size(f.size))
    }
}

fn units(html: &str) -> usize {
    utf16_len(&mltb_telegram::format::text_content(html))
}

/// Lines into at most [`MAX_NOTICE_MESSAGES`] messages of at most [`NOTICE_UNITS`]; the
/// first starts with `head`, and lines that do not fit are counted at the end.
fn pack(chat: i64, head: String, lines: &[String]) -> Vec<Notice> {
    const MORE_UNITS: usize = 40;
    let mut used = units(&head);
    let mut messages: Vec<String> = vec![head];
    for (i, line) in lines.iter().enumerate() {
        let last = messages.len() == MAX_NOTICE_MESSAGES;
        let room = NOTICE_UNITS - if last { MORE_UNITS } else { 0 };
        let current = messages.last_mut().unwrap_or_else(|| unreachable!("starts with the head"));
        let need = units(line);
        if used + need < room {
            current.push('\n');
            current.push_str(line);
            used += need + 1;
            continue;
        }
        if !last {
            messages.push(line.clone());
            used = need;
            continue;
        }
        current.push_str(&format!("\n… and {} more files", lines.len() - i));
        break;
    }
    messages.into_iter().map(|text| Notice { chat, text, reply_to: None }).collect()
}

#[cfg(test)]
mod tests {
    use mltb_store::{Part, Progress, Source};
    use mltb_telegram::format::{MAX_MESSAGE_UNITS, text_content};
    use proptest::prelude::*;

    use super::*;

    fn task(chat: i64, kind: TaskKind, state: TaskState) -> Task {
        Task {
            id: 7,
            chat,
            user: 42,
            source: Source::Url("https://example.com/a".into()),
            kind,
            name: Some("a <b> & c".into()),
            options: serde_json::json!({}),
            state,
            progress: Progress::default(),
            error: None,
            gid: None,
            created_at: 1_000,
            started_at: None,
            updated_at: 66_000,
            finished_at: Some(66_000),
            link: None,
            owner: None,
            lease_until: None,
            fence: 0,
        }
    }

    fn file(id: i64, path: &str, parts: Vec<Part>) -> TaskFile {
        TaskFile { id, task: 7, path: path.into(), size: parts.iter().map(|p| p.size).sum(), parts }
    }

    fn msg(index: u32, message_id: i64) -> Part {
        Part { index, size: 1 << 20, message_id: Some(message_id), remote_path: None }
    }

    #[test]
    fn leech_in_a_supergroup_links_every_part() {
        let chat = -1_009_876_543_210;
        let files =
            [file(1, "dir/one.iso", vec![msg(0, 10)]), file(2, "two.mkv", vec![msg(0, 11), msg(1, 12)])];
        let n = notices(&task(chat, TaskKind::Leech, TaskState::Completed), &files, chat, None);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].reply_to, None);
        let t = &n[0].text;
        assert!(
            t.starts_with(
                "<b>Done</b>: <code>a &lt;b&gt; &amp; c</code> (#7)\n2 files · 3.0 MiB · took 1m 5s"
            ),
            "{t}"
        );
        assert!(t.contains("1. <a href=\"https://t.me/c/9876543210/10\">one.iso</a> (1.0 MiB)"), "{t}");
        assert!(t.contains("2. two.mkv (2.0 MiB): parts <a href=\"https://t.me/c/9876543210/11\">1</a> <a href=\"https://t.me/c/9876543210/12\">2</a>"), "{t}");
        assert!(t.contains("<a href=\"tg://user?id=42\">user 42</a>"));
    }

    #[test]
    fn leech_in_a_private_chat_replies_to_its_first_file() {
        let files = [file(1, "one.iso", vec![msg(0, 10), msg(1, 11)])];
        let n = notices(&task(42, TaskKind::Leech, TaskState::Completed), &files, 42, None);
        assert_eq!(n[0].reply_to, Some(10));
        assert!(text_content(&n[0].text).contains("1. one.iso (2 parts, 2.0 MiB)"));
        // Parts in a dump chat: no reply across chats.
        let n = notices(&task(42, TaskKind::Leech, TaskState::Completed), &files, -555, None);
        assert_eq!(n[0].reply_to, None);
    }

    #[test]
    fn mirror_lists_remote_paths() {
        let part =
            Part { index: 0, size: 5, message_id: None, remote_path: Some("gd:Mirror/a & b.txt".into()) };
        let n = notices(
            &task(42, TaskKind::Mirror, TaskState::Completed),
            &[file(1, "a & b.txt", vec![part])],
            42,
            None,
        );
        assert!(n[0].text.contains("1. <code>gd:Mirror/a &amp; b.txt</code> (5 B)"), "{}", n[0].text);
        assert!(!n[0].text.contains("Share link"));
        // With a share link from the remote, the message carries it; a non-web link is left out.
        let mut shared = task(42, TaskKind::Mirror, TaskState::Completed);
        shared.link = Some("https://drive.example/s?id=1&x=\"2\"".into());
        let part = Part { index: 0, size: 5, message_id: None, remote_path: Some("gd:Mirror/a.txt".into()) };
        let n = notices(&shared, &[file(1, "a.txt", vec![part.clone()])], 42, None);
        assert!(
            n[0].text.contains("<a href=\"https://drive.example/s?id=1&amp;x=&quot;2&quot;\">Share link</a>"),
            "{}",
            n[0].text
        );
        shared.link = Some("javascript:alert(1)".into());
        assert!(!notices(&shared, &[file(1, "a.txt", vec![part])], 42, None)[0].text.contains("Share link"));
    }

    #[test]
    fn failure_gives_the_reason_escaped_and_cancel_names_who() {
        let mut t = task(42, TaskKind::Mirror, TaskState::Failed);
        t.error = Some("not found: <html> & more".into());
        let n = notices(&t, &[], 42, None);
        assert_eq!(n.len(), 1);
        assert!(n[0].text.contains("Reason: <i>not found: &lt;html&gt; &amp; more</i>"), "{}", n[0].text);
        assert!(notices(&task(42, TaskKind::Mirror, TaskState::Uploading), &[], 42, None).is_empty());

        let t = task(42, TaskKind::Mirror, TaskState::Cancelled);
        let by_user = notices(&t, &[], 42, Some(42));
        assert_eq!(
            by_user[0].text,
            "<b>Cancelled</b>: <code>a &lt;b&gt; &amp; c</code> (#7) by <a href=\"tg://user?id=42\">user 42</a>"
        );
        let by_admin = &notices(&t, &[], 42, Some(1))[0].text;
        assert!(
            by_admin.ends_with(
                "by <a href=\"tg://user?id=1\">user 1</a>\ncc: <a href=\"tg://user?id=42\">user 42</a>"
            ),
            "{by_admin}"
        );
        let unknown = &notices(&t, &[], 42, None)[0].text;
        assert_eq!(
            unknown,
            "<b>Cancelled</b>: <code>a &lt;b&gt; &amp; c</code> (#7)\ncc: <a href=\"tg://user?id=42\">user 42</a>"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn long_file_lists_split_and_fit(
            names in prop::collection::vec("[a-z<&😀]{1,250}", 0..120),
            chat in prop::sample::select(vec![42i64, -1_001_000_000_001]),
        ) {
            let files: Vec<TaskFile> = names
                .iter()
                .enumerate()
                .map(|(i, n)| file(i as i64, n, vec![msg(0, i as i64 + 1), msg(1, i as i64 + 2)]))
                .collect();
            let n = notices(&task(chat, TaskKind::Leech, TaskState::Completed), &files, chat, None);
            prop_assert!(!n.is_empty() && n.len() <= MAX_NOTICE_MESSAGES);
            for notice in &n {
                prop_assert!(units(&notice.text) <= MAX_MESSAGE_UNITS);
            }
            let listed: usize = n.iter().map(|m| text_content(&m.text).lines().filter(|l| l.contains(". ")).count()).sum();
            let all = text_content(&n.last().unwrap().text);
            if let Some(more) = all.rsplit("… and ").next().filter(|_| all.contains("… and ")) {
                let more: usize = more.trim_end_matches(" more files").parse().unwrap();
                prop_assert_eq!(listed + more, files.len());
            } else {
                prop_assert_eq!(listed, files.len());
            }
        }
    }
}
