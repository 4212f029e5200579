//! Many tasks from one command: `-b` (bulk) takes the lines of the replied message or
//! `.txt` file, one link (and its own flags) per line. Each line is checked like a
//! single link; bad ones are skipped and named by line number, good ones queued, and one
//! reply sums it up. At most `commands.bulk_limit` tasks per command, each counted
//! against the sender's command quota.

use std::time::Duration;

use mltb_store::{Backend, TaskKind};
use mltb_telegram::command::{Args, BulkRange, Command, Document, TaskArgs};
use mltb_telegram::format::{escape, text_content, utf16_len};

use super::Bot;
use super::commands::{Ctx, shorten};
use super::task::{prepare, submit, unsupported};

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
}

/// One task to create: where it is in the list, and its arguments and document, or why
/// the line is no task.
pub(super) struct Item {
    /// Its line number.
    pub(super) number: i64,
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
            task: parse_line(bot, name, line.trim(), &defaults).map(|a| (a, None)),
        })
        .collect();
    if items.is_empty() {
        return format!(
            "⚠️ -b: lines {first} to {last} of the list hold no link: expected one link per line, each optionally followed by its own flags."
        );
    }
    run(bot, ctx, name, kind, items, Origin::Lines { first, last }).await
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
/// for itself from the sender's command quota; the summary to send.
pub(super) async fn run<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    name: &str,
    kind: TaskKind,
    mut items: Vec<Item>,
    origin: Origin,
) -> String {
    let limit = bot.inner.config.commands.bulk_limit;
    let over: Vec<i64> = items.split_off(limit.min(items.len())).into_iter().map(|i| i.number).collect();
    let mut queued: Vec<(i64, i64)> = Vec::new();
    let mut skipped: Vec<(i64, String)> = Vec::new();
    let mut stopped: Option<(i64, String)> = None;
    let mut waited = Duration::ZERO;
    for item in items {
        let (args, document) = match item.task {
            Ok(t) => t,
            Err(why) => {
                skipped.push((item.number, why));
                continue;
            }
        };
        if let Some(refusal) = unsupported(&args) {
            skipped.push((item.number, refusal));
            continue;
        }
        let task = match prepare(bot, ctx, name, kind, &args, document.as_ref()).await {
            Ok(t) => t,
            Err(why) => {
                skipped.push((item.number, why));
                continue;
            }
        };
        // The command itself paid for the first task.
        if !queued.is_empty()
            && let Err(why) = take_quota(bot, ctx, &mut waited).await
        {
            stopped = Some((item.number, why));
            break;
        }
        match submit(bot, &task).await {
            Ok(t) => queued.push((t.id, item.number)),
            Err(why) => skipped.push((item.number, why)),
        }
    }
    if !queued.is_empty() {
        bot.inner.board.refresh(ctx.chat);
    }
    let command = format!("/{name}{}", bot.inner.config.telegram.command_suffix);
    summary(&command, origin, limit, &queued, &skipped, stopped.as_ref(), &over)
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

fn label(origin: Origin, number: i64) -> String {
    match origin {
        Origin::Lines { .. } => format!("line {number}"),
    }
}

/// How to ask for items from `number` on again.
fn rest_hint(command: &str, origin: Origin, number: i64) -> String {
    match origin {
        Origin::Lines { last, .. } => {
            format!("reply to the list with <code>{} -b {number}:{last}</code> for them", escape(command))
        }
    }
}

/// The one reply to a batch: what was queued, what was skipped and why, and what was not
/// taken, within Telegram's message size.
pub(super) fn summary(
    command: &str,
    origin: Origin,
    limit: usize,
    queued: &[(i64, i64)],
    skipped: &[(i64, String)],
    stopped: Option<&(i64, String)>,
    over: &[i64],
) -> String {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut out = match origin {
        Origin::Lines { first, last } => format!(
            "<b>Bulk</b>: {} queued, {} skipped, from lines {first} to {last} of the list.",
            plural(queued.len(), "task", "tasks"),
            plural(skipped.len(), "line", "lines"),
        ),
    };
    if !queued.is_empty() {
        out.push_str("\nQueued: ");
        let mut used = 0;
        for (i, (id, n)) in queued.iter().enumerate() {
            let entry = format!("#{id} ({})", label(origin, *n));
            if used + entry.len() > QUEUED_UNITS {
                let last = queued.last().map_or(0, |(id, _)| *id);
                out.push_str(&format!(" and {} more, up to #{last}", queued.len() - i));
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
    if let Some((n, why)) = stopped {
        tail.push_str(&format!(
            "\nStopped at {}: {}; {}.",
            label(origin, *n),
            escape(why),
            rest_hint(command, origin, *n)
        ));
    }
    if let (Some(first), Some(last)) = (over.first(), over.last()) {
        let what = match origin {
            Origin::Lines { .. } if first == last => format!("line {first}"),
            Origin::Lines { .. } => format!("lines {first} to {last}"),
        };
        tail.push_str(&format!(
            "\nNot taken: {what}: one command creates at most {limit} tasks (<code>commands.bulk_limit</code>); {}.",
            rest_hint(command, origin, *first)
        ));
    }
    if !queued.is_empty() {
        tail.push_str("\n/status shows the queued tasks; /cancel <i>id</i> stops one.");
    }
    if !skipped.is_empty() {
        out.push_str(&format!("\nSkipped {}:", skipped.len()));
        let mut used = utf16_len(&text_content(&out)) + utf16_len(&text_content(&tail));
        for (i, (n, why)) in skipped.iter().enumerate() {
            let plain = text_content(why);
            let why = if plain.chars().count() > REASON_CHARS {
                escape(&shorten_to(&plain, REASON_CHARS))
            } else {
                why.clone()
            };
            let line = format!("\n{}: {why}", label(origin, *n));
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
        let queued: Vec<(i64, i64)> = (1..=50).map(|i| (i + 100, i)).collect();
        let skipped: Vec<(i64, String)> =
            (51..=900).map(|i| (i, format!("⚠️ {}", escape(&"<bad> & worse ".repeat(40))))).collect();
        let over: Vec<i64> = (901..=950).collect();
        let stopped = (60, "your command quota is spent (try again in 2.0 s)".to_owned());
        let text = summary("/leech", origin, 50, &queued, &skipped, Some(&stopped), &over);
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
        let queued: Vec<(i64, i64)> = (1..=1000).map(|i| (i + 100, i)).collect();
        let text =
            summary("/leech", Origin::Lines { first: 1, last: 1000 }, 1000, &queued, &[], None, &[901]);
        let plain = text_content(&text);
        assert!(utf16_len(&plain) <= 4096, "{} units", utf16_len(&plain));
        assert!(plain.contains("Bulk: 1000 tasks queued, 0 lines skipped,"), "{plain}");
        assert!(plain.contains(" more, up to #1100\n"), "{plain}");
        assert!(plain.contains("Not taken: line 901: "), "{plain}");
    }
}
