//! Many tasks from one command: `-b` (bulk) takes the lines of the replied message or
//! `.txt` file, one link (and its own flags) per line; `-i n` (multi) takes the replied
//! message and the next n − 1 messages of the chat that the bot has seen (see
//! [`super::recent`]), each a link or a `.torrent` file. Each is checked like a single
//! link; bad ones are skipped and named by line or message, good ones queued, and one
//! reply sums it up. At most `commands.bulk_limit` tasks per command, each counted
//! against the sender's command quota. With `-m folder`, the good ones make one task that
//! gathers them into that folder (see [`gathered`]).

use std::time::Duration;

use mltb_store::{Backend, TaskKind};
use mltb_telegram::command::{Args, BulkRange, Command, Document, TaskArgs};
use mltb_telegram::format::{escape, text_content, utf16_len};

use super::Bot;
use super::commands::{Ctx, shorten};
use super::recent::{Content, Seen};
use super::task::{gathered, prepare, submit};

/// The largest `.txt` list accepted.
pub(super) const MAX_LIST_BYTES: u64 = 1 << 20;
/// The longest wait for the command quota before one task.
const MAX_QUOTA_WAIT: Duration = Duration::from_secs(5);
/// The longest wait for the command quota over one command.
const MAX_TOTAL_WAIT: Duration = Duration::from_secs(30);
/// Characters of one skipped line's reason shown.
const REASON_CHARS: usize = 200;
/// Text units (UTF-16) the summary may take; Telegram allows 4 096.
const SUMMARY_UNITS: usize = 3500;
/// Text units the list of queued tasks may take (it is ASCII).
const QUEUED_UNITS: usize = 1200;

/// Where a batch's items come from, for the summary.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin {
    /// Lines `first..=last` of a list.
    Lines {
        /// The first line taken.
        first: usize,
        /// The last line of the range.
        last: usize,
    },
    /// Messages of the chat, by id.
    Messages {
        /// How many `-i` asked for.
        asked: usize,
        /// How many were found.
        found: usize,
    },
}

/// One task to create: where it is in the list, and its arguments and document, or why
/// the line is no task.
pub(super) struct Item {
    /// Its line number, or its message's id.
    pub(super) number: i64,
    /// Who sent its message, when not the command's sender.
    pub(super) from: Option<i64>,
    pub(super) task: Result<(TaskArgs, Option<Document>), String>,
}

/// `-b`: a task per line of the replied message or `.txt` file.
pub(super) async fn bulk<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    name: &str,
    kind: TaskKind,
    args: TaskArgs,
    range: BulkRange,
    document: Option<Document>,
) -> String {
    if args.link.is_some() {
        return "⚠️ -b takes its links from the replied message or .txt file, one per line; send the command without a link.".into();
    }
    let text = match list_text(bot, ctx, document.as_ref()).await {
        Ok(t) => t,
        Err(e) => return format!("⚠️ {}", escape(&e)),
    };
    let lines: Vec<&str> = text.lines().collect();
    let (first, last) = match line_range(range, lines.len()) {
        Ok(r) => r,
        Err(e) => return format!("⚠️ -b: {}", escape(&e)),
    };
    let mut defaults = args;
    defaults.bulk = None;
    let items: Vec<Item> = lines[first - 1..last]
        .iter()
        .zip(first..)
        .filter(|(line, _)| !line.trim().is_empty())
        .map(|(line, n)| Item {
            number: i64::try_from(n).unwrap_or(i64::MAX),
            from: None,
            task: parse_line(bot, name, line.trim(), &defaults).map(|a| (a, None)),
        })
        .collect();
    if items.is_empty() {
        return format!(
            "⚠️ -b: lines {first} to {last} of the list hold no link: expected one link per line, each optionally followed by its own flags."
        );
    }
    let folder = defaults.same_dir.clone();
    run(bot, ctx, name, kind, items, Origin::Lines { first, last }, folder.as_deref()).await
}

/// `-i count`: a task per message, from the replied one on.
pub(super) async fn multi<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    name: &str,
    kind: TaskKind,
    args: TaskArgs,
    count: u32,
) -> String {
    if args.link.is_some() {
        return "⚠️ -i takes its links from the replied message and the ones after it; send the command without a link.".into();
    }
    let Some(first) = ctx.reply_to.as_deref().and_then(Seen::of) else {
        return "⚠️ -i needs a reply: to the first of the messages to take, each a link or a .torrent file."
            .into();
    };
    let asked = usize::try_from(count).unwrap_or(usize::MAX);
    let after = first.id;
    let mut messages = vec![first];
    messages.extend(bot.inner.recent.after(ctx.chat, after, asked.saturating_sub(1)));
    let found = messages.len();
    let mut defaults = args;
    defaults.multi = None;
    let items = messages
        .into_iter()
        .map(|m| {
            let mut args = defaults.clone();
            let task = match m.content {
                Content::Word(word) => {
                    args.link = Some(word);
                    Ok((args, None))
                }
                Content::Document(doc) => Ok((args, Some(doc))),
                Content::LongWord => Err("⚠️ the link is longer than 4096 characters".into()),
                Content::Nothing => Err("⚠️ no link or .torrent file in this message".into()),
            };
            Item { number: i64::from(m.id), from: (m.from != ctx.user).then_some(m.from), task }
        })
        .collect();
    run(bot, ctx, name, kind, items, Origin::Messages { asked, found }, defaults.same_dir.as_deref()).await
}

/// The list `-b` reads: the `.txt` document sent or replied to, else the replied
/// message's text or caption.
async fn list_text<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    document: Option<&Document>,
) -> Result<String, String> {
    const FORM: &str = "-b takes a message or a .txt file with one link per line";
    if let Some(doc) = document {
        let name = doc.file_name.as_deref().unwrap_or("");
        let mime = ctx
            .reply_to
            .as_deref()
            .and_then(|m| m.document.as_deref())
            .filter(|d| d.file_id == doc.file_id)
            .and_then(|d| d.mime_type.as_deref());
        if !name.to_ascii_lowercase().ends_with(".txt") && mime != Some("text/plain") {
            return Err(format!("{:?} is not a .txt file: {FORM}", shorten(name)));
        }
        let bytes =
            bot.inner.client.download_file(&doc.file_id, MAX_LIST_BYTES).await.map_err(|e| match e {
                mltb_telegram::Error::TooLarge { .. } => format!(
                    "the list {:?} is larger than {} KiB: split it into smaller files",
                    shorten(name),
                    MAX_LIST_BYTES >> 10
                ),
                e => format!("the list could not be fetched from Telegram: {e}"),
            })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            format!(
                "{:?} is not UTF-8 text (byte {} is not): {FORM}",
                shorten(name),
                e.utf8_error().valid_up_to() + 1
            )
        })?;
        return Ok(text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text));
    }
    let replied = ctx.reply_to.as_deref().ok_or_else(|| {
        format!("-b needs a reply: {FORM}, or send the .txt file with the command as its caption")
    })?;
    replied
        .text
        .clone()
        .or_else(|| replied.caption.clone())
        .ok_or_else(|| format!("the replied message has no text: {FORM}"))
}

/// The 1-based, inclusive line range `range` picks from a list of `lines` lines.
pub(super) fn line_range(range: BulkRange, lines: usize) -> Result<(usize, usize), String> {
    let start = range.start.map_or(1, |s| s as usize);
    if start == 0 || range.end == Some(0) {
        return Err("lines count from 1, got 0: expected a range like 2:10, :10 or 2".into());
    }
    if let Some(end) = range.end
        && (end as usize) < start
    {
        return Err(format!("the range {start}:{end} ends before it starts"));
    }
    if start > lines {
        return Err(format!(
            "the list has {lines} line{}, and the range starts at line {start}",
            if lines == 1 { "" } else { "s" }
        ));
    }
    Ok((start, range.end.map_or(lines, |e| (e as usize).min(lines))))
}

/// One line of a list, read as `/{name} {line}`: its own values win over `defaults`
/// (the command's other flags).
fn parse_line<B: Backend>(
    bot: &Bot<B>,
    name: &str,
    line: &str,
    defaults: &TaskArgs,
) -> Result<TaskArgs, String> {
    let text = format!("/{name}{} {line}", bot.inner.config.telegram.command_suffix);
    match bot.inner.parser.parse(&text, None) {
        Ok(Some(Command { args: Args::Task(own), .. })) => {
            if own.bulk.is_some() || own.multi.is_some() {
                return Err("⚠️ -b and -i cannot be used on a line of a list".into());
            }
            if own.same_dir.is_some() {
                return Err(
                    "⚠️ -m goes on the command, not on a line: it gathers all the lines into one folder"
                        .into(),
                );
            }
            if own.link.is_none() {
                return Err("⚠️ no link on this line: expected a link, then its own flags if any".into());
            }
            Ok(own.or(defaults))
        }
        Err(e) => Err(format!("⚠️ {}", escape(&e.to_string()))),
        Ok(_) => Err("⚠️ this line is not a link".into()),
    }
}

/// Creates a task per item (at most `commands.bulk_limit`), each but the first paying
/// for itself from the sender's command quota, or with `folder` (`-m`) one task that
/// gathers them all; the summary to send.
pub(super) async fn run<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    name: &str,
    kind: TaskKind,
    mut items: Vec<Item>,
    origin: Origin,
    folder: Option<&str>,
) -> String {
    let limit = bot.inner.config.commands.bulk_limit;
    let over: Vec<i64> = items.split_off(limit.min(items.len())).into_iter().map(|i| i.number).collect();
    let taken = items.len();
    let mut queued: Vec<(i64, String)> = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    let mut stopped: Option<Stop> = None;
    let mut waited = Duration::ZERO;
    let mut gathering: Vec<(mltb_store::NewTask, String)> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let label = label(origin, item.number, item.from);
        let (args, document) = match item.task {
            Ok(t) => t,
            Err(why) => {
                skipped.push((label, why));
                continue;
            }
        };
        let task = match prepare(bot, ctx, name, kind, &args, document.as_ref()).await {
            Ok(t) => t,
            Err(why) => {
                skipped.push((label, why));
                continue;
            }
        };
        if folder.is_some() {
            if gathering.first().is_some_and(|(first, _)| first.options != task.options) {
                skipped.push((label, "⚠️ with -m the links share one upload: this one's flags (-sp, -up, -z, -e, -doc, -med) differ from the first's; send it in a command of its own".into()));
            } else {
                gathering.push((task, label));
            }
            continue;
        }
        // The command itself paid for the first task.
        if !queued.is_empty()
            && let Err(why) = take_quota(bot, ctx, &mut waited).await
        {
            stopped = Some(Stop { label, number: item.number, left: taken - index, why });
            break;
        }
        match submit(bot, &task).await {
            Ok(t) => queued.push((t.id, label)),
            Err(why) => skipped.push((label, why)),
        }
    }
    if let Some(folder) = folder
        && !gathering.is_empty()
    {
        let labels: Vec<String> = gathering.iter().map(|(_, label)| label.clone()).collect();
        match gathered(folder, gathering.into_iter().map(|(task, _)| task).collect()) {
            Ok(task) => match submit(bot, &task).await {
                Ok(t) => queued.extend(labels.into_iter().map(|label| (t.id, label))),
                Err(why) => skipped.extend(labels.into_iter().map(|label| (label, why.clone()))),
            },
            Err(why) => skipped.extend(labels.into_iter().map(|label| (label, why.clone()))),
        }
    }
    if !queued.is_empty() {
        bot.inner.board.refresh(ctx.chat);
    }
    let command = format!("/{name}{}", bot.inner.config.telegram.command_suffix);
    let folder = folder.map(mltb_engine::names::folder_name);
    let batch = Batch { command: &command, origin, limit, folder: folder.as_deref() };
    summary(&batch, &queued, &skipped, stopped.as_ref(), &over)
}

/// Takes one command from the sender's quota, waiting for it when the wait is short.
async fn take_quota<B: Backend>(bot: &Bot<B>, ctx: &Ctx, waited: &mut Duration) -> Result<(), String> {
    for _ in 0..3 {
        match bot.inner.limiter.check(ctx.access, ctx.user).await {
            Ok(()) => return Ok(()),
            Err(Some(wait)) if wait <= MAX_QUOTA_WAIT && *waited + wait <= MAX_TOTAL_WAIT => {
                let wait = wait.max(Duration::from_millis(1));
                tokio::time::sleep(wait).await;
                *waited += wait;
            }
            Err(wait) => {
                let when =
                    wait.map_or_else(|| "later".to_owned(), |d| format!("in {:.1} s", d.as_secs_f64()));
                return Err(format!("your command quota is spent (try again {when})"));
            }
        }
    }
    Err("your command quota is spent (try again shortly)".into())
}

/// What a batch's summary is about.
#[derive(Debug, Clone, Copy)]
pub(super) struct Batch<'a> {
    /// The command as the user types it (`/leech1`).
    pub(super) command: &'a str,
    /// Where the items came from.
    pub(super) origin: Origin,
    /// `commands.bulk_limit`.
    pub(super) limit: usize,
    /// The folder `-m` gathered the items into, as one task.
    pub(super) folder: Option<&'a str>,
}

/// Where a batch stopped: the item, and how many were left from it on.
pub(super) struct Stop {
    label: String,
    number: i64,
    left: usize,
    why: String,
}

fn label(origin: Origin, number: i64, from: Option<i64>) -> String {
    match (origin, from) {
        (Origin::Lines { .. }, _) => format!("line {number}"),
        (Origin::Messages { .. }, None) => format!("message {number}"),
        (Origin::Messages { .. }, Some(user)) => format!("message {number} from user {user}"),
    }
}

/// How to ask for the `left` items from `number` on again.
fn rest_hint(command: &str, origin: Origin, number: i64, left: usize) -> String {
    match origin {
        Origin::Lines { last, .. } => {
            format!("reply to the list with <code>{} -b {number}:{last}</code> for them", escape(command))
        }
        Origin::Messages { .. } => {
            format!("reply to message {number} with <code>{} -i {left}</code> for them", escape(command))
        }
    }
}

/// The one reply to a batch: what was queued, what was skipped and why, and what was not
/// taken, within Telegram's message size.
pub(super) fn summary(
    batch: &Batch<'_>,
    queued: &[(i64, String)],
    skipped: &[(String, String)],
    stopped: Option<&Stop>,
    over: &[i64],
) -> String {
    let Batch { command, origin, limit, folder } = *batch;
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let taken = match (folder, queued.first()) {
        (Some(folder), Some((id, _))) => format!(
            "{} gathered into task #{id}, folder <code>{}</code>",
            plural(queued.len(), "link", "links"),
            escape(folder)
        ),
        (Some(_), None) => "no task queued".to_owned(),
        (None, _) => format!("{} queued", plural(queued.len(), "task", "tasks")),
    };
    let mut out = match origin {
        Origin::Lines { first, last } => format!(
            "<b>Bulk</b>: {taken}, {} skipped, from lines {first} to {last} of the list.",
            plural(skipped.len(), "line", "lines"),
        ),
        Origin::Messages { asked, found } => {
            let mut head = format!(
                "<b>Multi</b>: {taken}, {} skipped, from {}.",
                plural(skipped.len(), "message", "messages"),
                plural(found, "message", "messages"),
            );
            if found < asked {
                head.push_str(&format!(
                    "\nFound {found} of the {asked} messages asked for: the bot knows only the messages it has seen since it started (the last {} of each chat), and in a group it sees them only when its privacy mode is off (@BotFather, /setprivacy) or it is an admin.",
                    super::recent::PER_CHAT
                ));
            }
            head
        }
    };
    if !queued.is_empty() {
        out.push_str(if folder.is_some() { "\nGathered: " } else { "\nQueued: " });
        let mut used = 0;
        for (i, (id, label)) in queued.iter().enumerate() {
            let entry = if folder.is_some() { label.clone() } else { format!("#{id} ({label})") };
            if used + entry.len() > QUEUED_UNITS {
                let last = queued.last().map_or(0, |(id, _)| *id);
                if folder.is_some() {
                    out.push_str(&format!(" and {} more", queued.len() - i));
                } else {
                    out.push_str(&format!(" and {} more, up to #{last}", queued.len() - i));
                }
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            used += entry.len() + 2;
            out.push_str(&entry);
        }
    }
    let mut tail = String::new();
    if let Some(stop) = stopped {
        tail.push_str(&format!(
            "\nStopped at {}: {}; {}.",
            escape(&stop.label),
            escape(&stop.why),
            rest_hint(command, origin, stop.number, stop.left + over.len())
        ));
    }
    if let (Some(first), Some(last)) = (over.first(), over.last()) {
        let what = match origin {
            Origin::Lines { .. } if first == last => format!("line {first}"),
            Origin::Lines { .. } => format!("lines {first} to {last}"),
            Origin::Messages { .. } if first == last => format!("message {first}"),
            Origin::Messages { .. } => format!("messages {first} to {last}"),
        };
        let most = if folder.is_some() {
            format!("takes at most {limit} links")
        } else {
            format!("creates at most {limit} tasks")
        };
        tail.push_str(&format!(
            "\nNot taken: {what}: one command {most} (<code>commands.bulk_limit</code>); {}.",
            rest_hint(command, origin, *first, over.len())
        ));
    }
    if !queued.is_empty() {
        tail.push_str("\n/status shows the queued tasks; /cancel <i>id</i> stops one.");
    }
    if !skipped.is_empty() {
        out.push_str(&format!("\nSkipped {}:", skipped.len()));
        let mut used = utf16_len(&text_content(&out)) + utf16_len(&text_content(&tail));
        for (i, (label, why)) in skipped.iter().enumerate() {
            let plain = text_content(why);
            let why = if plain.chars().count() > REASON_CHARS {
                escape(&shorten_to(&plain, REASON_CHARS))
            } else {
                why.clone()
            };
            let line = format!("\n{}: {why}", escape(label));
            let units = utf16_len(&text_content(&line));
            if used + units > SUMMARY_UNITS {
                out.push_str(&format!("\n… and {} more", skipped.len() - i));
                break;
            }
            used += units;
            out.push_str(&line);
        }
    }
    out.push_str(&tail);
    out
}

fn shorten_to(s: &str, chars: usize) -> String {
    let mut out: String = s.chars().take(chars).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: Option<u32>, end: Option<u32>) -> BulkRange {
        BulkRange { start, end }
    }

    #[test]
    fn ranges_count_lines_from_one_and_include_both_ends() {
        assert_eq!(line_range(range(None, None), 5), Ok((1, 5)));
        assert_eq!(line_range(range(Some(2), Some(4)), 5), Ok((2, 4)));
        assert_eq!(line_range(range(None, Some(3)), 5), Ok((1, 3)));
        assert_eq!(line_range(range(Some(3), None), 5), Ok((3, 5)));
        assert_eq!(line_range(range(Some(3), Some(90)), 5), Ok((3, 5)), "an end past the list stops at it");
        assert_eq!(line_range(range(Some(5), Some(5)), 5), Ok((5, 5)));
        assert!(line_range(range(Some(0), None), 5).unwrap_err().contains("lines count from 1"));
        assert!(line_range(range(None, Some(0)), 5).unwrap_err().contains("lines count from 1"));
        assert_eq!(
            line_range(range(Some(4), Some(2)), 5).unwrap_err(),
            "the range 4:2 ends before it starts"
        );
        assert_eq!(
            line_range(range(Some(6), None), 5).unwrap_err(),
            "the list has 5 lines, and the range starts at line 6"
        );
        assert!(line_range(range(None, None), 0).is_err(), "an empty list has no line 1");
    }

    #[test]
    fn the_summary_fits_one_message_however_many_lines_fail() {
        let origin = Origin::Lines { first: 1, last: 900 };
        let line = |n: i64| label(origin, n, None);
        let queued: Vec<(i64, String)> = (1..=50).map(|i| (i + 100, line(i))).collect();
        let skipped: Vec<(String, String)> =
            (51..=900).map(|i| (line(i), format!("⚠️ {}", escape(&"<bad> & worse ".repeat(40))))).collect();
        let over: Vec<i64> = (901..=950).collect();
        let stopped = Stop {
            label: line(60),
            number: 60,
            left: 1,
            why: "your command quota is spent (try again in 2.0 s)".into(),
        };
        let batch = Batch { command: "/leech", origin, limit: 50, folder: None };
        let text = summary(&batch, &queued, &skipped, Some(&stopped), &over);
        let plain = text_content(&text);
        assert!(utf16_len(&plain) <= 4096, "{} units", utf16_len(&plain));
        assert!(
            plain.starts_with("Bulk: 50 tasks queued, 850 lines skipped, from lines 1 to 900 of the list."),
            "{plain}"
        );
        assert!(plain.contains("Queued: #101 (line 1), #102 (line 2)"), "{plain}");
        assert!(plain.contains("Skipped 850:\nline 51: ⚠️ <bad> & worse"), "{plain}");
        assert!(plain.contains(" more\nStopped at line 60: your command quota is spent"), "{plain}");
        assert!(plain.contains("reply to the list with /leech -b 60:900 for them"), "{plain}");
        assert!(
            plain.contains("Not taken: lines 901 to 950: one command creates at most 50 tasks"),
            "{plain}"
        );
        assert!(plain.ends_with("/status shows the queued tasks; /cancel id stops one."), "{plain}");

        // A thousand queued tasks are counted past what fits.
        let queued: Vec<(i64, String)> = (1..=1000).map(|i| (i + 100, line(i))).collect();
        let text = summary(
            &Batch { origin: Origin::Lines { first: 1, last: 1000 }, limit: 1000, ..batch },
            &queued,
            &[],
            None,
            &[901],
        );
        let plain = text_content(&text);
        assert!(utf16_len(&plain) <= 4096, "{} units", utf16_len(&plain));
        assert!(plain.contains("Bulk: 1000 tasks queued, 0 lines skipped,"), "{plain}");
        assert!(plain.contains(" more, up to #1100\n"), "{plain}");
        assert!(plain.contains("Not taken: line 901: "), "{plain}");
    }

    #[test]
    fn a_multi_summary_says_how_many_messages_were_found_and_how_to_ask_for_the_rest() {
        let origin = Origin::Messages { asked: 5, found: 3 };
        let queued = vec![(7, label(origin, 40, None)), (8, label(origin, 41, Some(99)))];
        let skipped =
            vec![(label(origin, 43, None), "⚠️ no link or .torrent file in this message".to_owned())];
        let batch = Batch { command: "/mirror1", origin, limit: 2, folder: None };
        let text = summary(&batch, &queued, &skipped, None, &[44, 45]);
        let plain = text_content(&text);
        assert!(
            plain.starts_with("Multi: 2 tasks queued, 1 message skipped, from 3 messages.\nFound 3 of the 5 messages asked for: the bot knows only the messages it has seen since it started (the last 100 of each chat), and in a group"),
            "{plain}"
        );
        assert!(plain.contains("\nQueued: #7 (message 40), #8 (message 41 from user 99)\n"), "{plain}");
        assert!(plain.contains("\nmessage 43: ⚠️ no link or .torrent file in this message"), "{plain}");
        assert!(
            plain.contains("\nNot taken: messages 44 to 45: one command creates at most 2 tasks (commands.bulk_limit); reply to message 44 with /mirror1 -i 2 for them."),
            "{plain}"
        );
    }

    #[test]
    fn a_gathered_batch_names_its_one_task_and_folder() {
        let origin = Origin::Lines { first: 2, last: 5 };
        let queued: Vec<(i64, String)> = (2..=4).map(|n| (12, label(origin, n, None))).collect();
        let skipped = vec![(label(origin, 5, None), "⚠️ this line is not a link".to_owned())];
        let batch = Batch { command: "/leech", origin, limit: 4, folder: Some("a <b>") };
        let plain = text_content(&summary(&batch, &queued, &skipped, None, &[6]));
        assert!(
            plain.starts_with("Bulk: 3 links gathered into task #12, folder a <b>, 1 line skipped, from lines 2 to 5 of the list.\nGathered: line 2, line 3, line 4\nSkipped 1:\nline 5: ⚠️ this line is not a link"),
            "{plain}"
        );
        assert!(plain.contains("Not taken: line 6: one command takes at most 4 links"), "{plain}");
        let plain = text_content(&summary(&batch, &[], &skipped, None, &[]));
        assert!(plain.starts_with("Bulk: no task queued, 1 line skipped,"), "{plain}");
    }
}
