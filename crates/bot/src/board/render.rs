//! Pure rendering: the board's text and keyboard from a chat's tasks, a page and a clock.
//! No I/O and no clock reads, so the same input always gives the same message.

use std::ops::Range;
use std::time::Duration;

use frankenstein::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use mltb_engine::{TaskView, Waiting};
use mltb_store::{TaskKind, TaskState};
use mltb_telegram::format::{escape, eta, human_size, progress_bar, speed};

use super::sign::{Action, Button, Signer};

/// Characters of a task's name shown on the board; longer names are cut with `…`.
pub const NAME_CHARS: usize = 80;
/// The most tasks on one page. With [`NAME_CHARS`] and the fixed lines, a page stays
/// under about 3 500 characters, well within Telegram's 4 096.
pub const MAX_PAGE_SIZE: usize = 10;
/// Cancel buttons per keyboard row.
const CANCEL_BUTTONS_PER_ROW: usize = 2;
/// An ETA beyond this is shown as unknown (a stalled transfer).
const MAX_ETA: Duration = Duration::from_secs(100 * 86_400);

/// One task as the board shows it: the engine's [`TaskView`] in a form the board (and
/// its tests) can build.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskLine {
    /// The task's id.
    pub id: i64,
    /// Its chat.
    pub chat: i64,
    /// The user who asked for it.
    pub user: i64,
    /// Mirror or leech.
    pub kind: TaskKind,
    /// Its state.
    pub state: TaskState,
    /// Its name, once known.
    pub name: Option<String>,
    /// Bytes done in the current stage.
    pub done: u64,
    /// Bytes in all in the current stage (0 while unknown).
    pub total: u64,
    /// Bytes per second now.
    pub speed: u64,
    /// Why it waits, when queued.
    pub waiting: Option<Waiting>,
    /// When it was submitted, Unix milliseconds.
    pub created_at: i64,
    /// What 7-Zip is doing, between the download and the upload (`-e`, `-z`).
    pub archiving: Option<mltb_engine::Archiving>,
    /// Whether it waits for its torrent's files to be chosen (`-s`).
    pub choosing: bool,
}

impl TaskLine {
    /// Task `id` of `user` in `chat`, queued, with nothing done yet.
    pub fn new(id: i64, chat: i64, user: i64, kind: TaskKind) -> Self {
        Self {
            id,
            chat,
            user,
            kind,
            state: TaskState::Queued,
            name: None,
            done: 0,
            total: 0,
            speed: 0,
            waiting: None,
            created_at: 0,
            archiving: None,
            choosing: false,
        }
    }

    /// What moves the bytes now: aria2 while downloading or seeding, 7-Zip while
    /// extracting or zipping, Telegram (leech) or rclone (mirror) while uploading,
    /// nothing while queued.
    pub fn engine(&self) -> Option<&'static str> {
        if self.archiving.is_some() {
            return Some("7-Zip");
        }
        match (self.state, self.kind) {
            (TaskState::Downloading | TaskState::Seeding, _) => Some("aria2"),
            (TaskState::Uploading, TaskKind::Leech) => Some("Telegram"),
            (TaskState::Uploading, TaskKind::Mirror) => Some("rclone"),
            _ => None,
        }
    }

    /// The name to show: the task's, cut to [`NAME_CHARS`], or `Task #id`.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(name) if !name.trim().is_empty() => cut(name.trim(), NAME_CHARS),
            _ => format!("Task #{}", self.id),
        }
    }

    /// Time left at the current speed, when it can be told.
    pub fn eta(&self) -> Option<Duration> {
        if self.speed == 0 || self.total <= self.done {
            return None;
        }
        Some(Duration::from_secs((self.total - self.done).div_ceil(self.speed))).filter(|d| *d <= MAX_ETA)
    }
}

impl From<&TaskView> for TaskLine {
    fn from(v: &TaskView) -> Self {
        Self {
            id: v.id,
            chat: v.chat,
            user: v.user,
            kind: v.kind,
            state: v.state,
            name: v.name.clone(),
            done: v.done,
            total: v.total,
            speed: v.speed,
            waiting: v.waiting,
            created_at: v.created_at,
            archiving: v.archiving,
            choosing: v.choosing,
        }
    }
}

/// A cancel waiting for its second press: `user` asked to cancel `task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirm {
    /// The task.
    pub task: i64,
    /// Who asked; only they can confirm.
    pub user: i64,
}

/// Everything a board message depends on.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The chat.
    pub chat: i64,
    /// Its tasks, in the order shown (the driver sorts them by id).
    pub tasks: &'a [TaskLine],
    /// The page asked for, from 0; past the last shows the last.
    pub page: usize,
    /// Tasks per page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: usize,
    /// Now, in Unix milliseconds: elapsed times and the buttons' signatures.
    pub now_ms: i64,
    /// A cancel waiting for confirmation, if any.
    pub confirm: Option<Confirm>,
}

/// A rendered board: HTML text and keyboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The text, Telegram HTML.
    pub text: String,
    /// The buttons.
    pub keyboard: InlineKeyboardMarkup,
    /// The page shown (the one asked for, clamped).
    pub page: usize,
    /// Pages in all (at least 1).
    pub pages: usize,
    /// The tasks on this page, by id.
    pub shown: Vec<i64>,
}

/// How many pages `tasks` tasks take at `page_size` a page (at least 1).
pub fn page_count(tasks: usize, page_size: usize) -> usize {
    tasks.div_ceil(page_size.max(1)).max(1)
}

/// The indexes of the tasks on `page` (clamped to the last page).
pub fn page_range(tasks: usize, page_size: usize, page: usize) -> Range<usize> {
    let size = page_size.max(1);
    let page = page.min(page_count(tasks, size) - 1);
    let start = (page * size).min(tasks);
    start..(start + size).min(tasks)
}

/// Renders the board of `frame.chat`, signing its buttons with `signer`.
///
/// ```
/// use mltb_bot::board::{Frame, Signer, SigningKey, TaskLine, render};
/// use mltb_store::{TaskKind, TaskState};
///
/// let signer = Signer::new(SigningKey::new([3u8; 32])?);
/// let mut task = TaskLine::new(12, 501, 7, TaskKind::Leech);
/// task.state = TaskState::Downloading;
/// task.name = Some("a <b> & c.iso".into());
/// task.done = 512;
/// task.total = 1024;
/// let tasks = [task];
/// let frame = Frame { chat: 501, tasks: &tasks, page: 0, page_size: 4, now_ms: 60_000, confirm: None };
/// let board = render(&frame, &signer);
/// assert!(board.text.contains("a &lt;b&gt; &amp; c.iso"));
/// assert!(board.text.contains("50.0%"));
/// assert_eq!(board.keyboard.inline_keyboard[0][0].text, "✖ Cancel #12");
/// # Ok::<(), mltb_bot::board::Error>(())
/// ```
pub fn render(frame: &Frame<'_>, signer: &Signer) -> Rendered {
    let size = frame.page_size.clamp(1, MAX_PAGE_SIZE);
    let pages = page_count(frame.tasks.len(), size);
    let page = frame.page.min(pages - 1);
    let on_page = &frame.tasks[page_range(frame.tasks.len(), size, page)];
    let confirm = frame.confirm.filter(|c| on_page.iter().any(|t| t.id == c.task));

    let mut text = String::with_capacity(512 * on_page.len() + 256);
    text.push_str(&format!("<b>Tasks: {}</b>", frame.tasks.len()));
    if pages > 1 {
        text.push_str(&format!(" · page {}/{pages}", page + 1));
    }
    text.push_str("\n\n");
    if on_page.is_empty() {
        text.push_str("No active tasks.\n\n");
    }
    for task in on_page {
        task_block(&mut text, task, frame.now_ms);
        if confirm.is_some_and(|c| c.task == task.id) {
            text.push_str("<i>Cancel this task? Confirm with the button below.</i>\n");
        }
        text.push('\n');
    }
    summary(&mut text, frame.tasks);

    let keyboard = keyboard(frame, signer, on_page, confirm, page, pages);
    Rendered { text, keyboard, page, pages, shown: on_page.iter().map(|t| t.id).collect() }
}

fn task_block(out: &mut String, task: &TaskLine, now_ms: i64) {
    out.push_str(&format!("<b>#{}</b> <code>{}</code>\n", task.id, escape(&task.display_name())));
    let archiving = task.archiving.map(|a| a.to_string());
    let state = archiving.as_deref().unwrap_or(state_text(task.state));
    match (task.engine(), task.state) {
        _ if task.choosing => {
            out.push_str(
                "<b>Paused</b>: the download starts once its files are chosen (the link was sent)\n",
            );
        }
        (Some(engine), _) => out.push_str(&format!("<b>{state}</b> with {engine}\n")),
        (None, TaskState::Queued) => {
            out.push_str(&format!("<b>{state}</b>: {}\n", waiting_text(task.waiting)));
        }
        (None, _) => out.push_str(&format!("<b>{state}</b>\n")),
    }
    if task.state != TaskState::Queued {
        let (bar, percent) = if task.total > 0 {
            // Precision loss is far below the one decimal shown.
            #[allow(clippy::cast_precision_loss)]
            let fraction = task.done.min(task.total) as f64 / task.total as f64;
            (progress_bar(fraction, 10), format!("{:.1}%", fraction * 100.0))
        } else {
            (progress_bar(0.0, 10), "?".to_string())
        };
        out.push_str(&format!("{bar} {percent}\n"));
        let total = if task.total > 0 { human_size(task.total) } else { "?".to_string() };
        out.push_str(&format!(
            "{} of {total} · {} · ETA {}\n",
            human_size(task.done),
            speed(task.speed),
            eta(task.eta())
        ));
    }
    let elapsed = u64::try_from(now_ms.saturating_sub(task.created_at) / 1000).unwrap_or(0);
    out.push_str(&format!("Elapsed {}\n", eta(Some(Duration::from_secs(elapsed)))));
}

fn summary(out: &mut String, tasks: &[TaskLine]) {
    let count = |s: TaskState| tasks.iter().filter(|t| t.state == s).count();
    let rate =
        |s: TaskState| tasks.iter().filter(|t| t.state == s).map(|t| t.speed).fold(0u64, u64::saturating_add);
    out.push_str(&format!(
        "Downloading {} · Uploading {} · Queued {}\n↓ {} · ↑ {}",
        count(TaskState::Downloading),
        count(TaskState::Uploading),
        count(TaskState::Queued),
        speed(rate(TaskState::Downloading)),
        speed(rate(TaskState::Uploading)),
    ));
}

fn keyboard(
    frame: &Frame<'_>,
    signer: &Signer,
    on_page: &[TaskLine],
    confirm: Option<Confirm>,
    page: usize,
    pages: usize,
) -> InlineKeyboardMarkup {
    let button = |text: String, b: Button| {
        InlineKeyboardButton::builder().text(text).callback_data(signer.sign(&b).into_inner()).build()
    };
    let at = |action| Button::new(frame.chat, action, frame.now_ms);
    let mut rows: Vec<Vec<InlineKeyboardButton>> = Vec::new();
    if let Some(c) = confirm {
        rows.push(vec![
            button(
                format!("✔ Confirm cancel #{}", c.task),
                at(Action::ConfirmCancel { task: c.task }).for_user(c.user),
            ),
            button("↩ Back".to_string(), at(Action::Back { task: c.task }).for_user(c.user)),
        ]);
    }
    let cancels: Vec<InlineKeyboardButton> = on_page
        .iter()
        .filter(|t| confirm.is_none_or(|c| c.task != t.id))
        .map(|t| button(format!("✖ Cancel #{}", t.id), at(Action::Cancel { task: t.id }).for_user(t.user)))
        .collect();
    rows.extend(cancels.chunks(CANCEL_BUTTONS_PER_ROW).map(<[_]>::to_vec));
    let show = |p: usize| at(Action::Show { page: u16::try_from(p).unwrap_or(u16::MAX) });
    let refresh = button("⟳ Refresh".to_string(), show(page));
    if pages > 1 {
        rows.push(vec![
            button("◀ Prev".to_string(), show((page + pages - 1) % pages)),
            refresh,
            button("Next ▶".to_string(), show((page + 1) % pages)),
        ]);
    } else {
        rows.push(vec![refresh]);
    }
    InlineKeyboardMarkup::builder().inline_keyboard(rows).build()
}

/// A state in words.
pub(crate) fn state_text(state: TaskState) -> &'static str {
    match state {
        TaskState::Queued => "Queued",
        TaskState::Downloading => "Downloading",
        TaskState::Uploading => "Uploading",
        TaskState::Seeding => "Seeding",
        TaskState::Completed => "Completed",
        TaskState::Failed => "Failed",
        TaskState::Cancelled => "Cancelled",
    }
}

fn waiting_text(waiting: Option<Waiting>) -> &'static str {
    match waiting {
        Some(Waiting::All) => "the bot runs as many tasks as it may",
        Some(Waiting::Download) => "every download slot is busy",
        Some(Waiting::Upload) => "every upload slot is busy",
        Some(Waiting::User) => "this user runs as many tasks as they may",
        Some(Waiting::Disk) => "free disk space is low",
        Some(Waiting::Turn) => "earlier tasks go first",
        _ => "waiting for a slot",
    }
}

/// `text` cut to `max` characters, with `…` when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((end, _)) if text.chars().count() > max => format!("{}…", &text[..end]),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use mltb_telegram::format::{MAX_CALLBACK_DATA_BYTES, MAX_MESSAGE_UNITS, text_content, utf16_len};
    use proptest::prelude::*;

    use super::super::sign::SigningKey;
    use super::*;

    const CHAT: i64 = -1_001_234_567_890;
    const NOW_MS: i64 = 1_750_000_000_000;

    fn signer() -> Signer {
        Signer::new(SigningKey::new([5u8; 32]).unwrap())
    }

    fn task(id: i64) -> TaskLine {
        let mut t = TaskLine::new(id, CHAT, 100 + id, TaskKind::Mirror);
        t.created_at = NOW_MS - 65_000;
        t
    }

    fn units(html: &str) -> usize {
        utf16_len(&text_content(html))
    }

    #[test]
    fn a_task_shows_name_state_engine_progress_speed_eta_and_elapsed() {
        let mut t = task(3);
        t.state = TaskState::Uploading;
        t.kind = TaskKind::Leech;
        t.name = Some("movie.mkv".into());
        t.done = 3 << 20;
        t.total = 4 << 20;
        t.speed = 1 << 20;
        let tasks = [t];
        let r = render(
            &Frame { chat: CHAT, tasks: &tasks, page: 0, page_size: 4, now_ms: NOW_MS, confirm: None },
            &signer(),
        );
        let shown = text_content(&r.text);
        for want in [
            "#3 movie.mkv",
            "Uploading with Telegram",
            "■■■■■■■□□□ 75.0%",
            "3.0 MiB of 4.0 MiB · 1.0 MiB/s · ETA 1s",
            "Elapsed 1m 5s",
            "Uploading 1",
        ] {
            assert!(shown.contains(want), "{want:?} not in {shown}");
        }
        assert_eq!(r.pages, 1);
        let labels: Vec<_> = r.keyboard.inline_keyboard.iter().flatten().map(|b| b.text.as_str()).collect();
        assert_eq!(labels, ["✖ Cancel #3", "⟳ Refresh"]);
    }

    #[test]
    fn engines_follow_state_and_kind() {
        let mut t = task(1);
        assert_eq!(t.engine(), None);
        t.state = TaskState::Downloading;
        assert_eq!(t.engine(), Some("aria2"));
        t.state = TaskState::Uploading;
        assert_eq!(t.engine(), Some("rclone"));
        t.kind = TaskKind::Leech;
        assert_eq!(t.engine(), Some("Telegram"));
        t.archiving = Some(mltb_engine::Archiving::Extracting);
        assert_eq!(t.engine(), Some("7-Zip"));
        let tasks = [t];
        let r = render(
            &Frame { chat: CHAT, tasks: &tasks, page: 0, page_size: 4, now_ms: NOW_MS, confirm: None },
            &signer(),
        );
        assert!(text_content(&r.text).contains("Extracting with 7-Zip"), "{}", r.text);
    }

    #[test]
    fn a_task_waiting_for_its_files_to_be_chosen_says_so() {
        let mut t = task(1);
        t.state = TaskState::Downloading;
        t.choosing = true;
        let tasks = [t];
        let r = render(
            &Frame { chat: CHAT, tasks: &tasks, page: 0, page_size: 4, now_ms: NOW_MS, confirm: None },
            &signer(),
        );
        let shown = text_content(&r.text);
        assert!(shown.contains("Paused: the download starts once its files are chosen"), "{shown}");
        assert!(!shown.contains("with aria2"), "{shown}");
    }

    #[test]
    fn queued_tasks_say_why_and_unknown_totals_show_a_question_mark() {
        let mut q = task(1);
        q.waiting = Some(Waiting::Download);
        let mut d = task(2);
        d.state = TaskState::Downloading;
        d.done = 10;
        let tasks = [q, d];
        let r = render(
            &Frame { chat: CHAT, tasks: &tasks, page: 0, page_size: 4, now_ms: NOW_MS, confirm: None },
            &signer(),
        );
        let shown = text_content(&r.text);
        assert!(shown.contains("Queued: every download slot is busy"), "{shown}");
        assert!(shown.contains("□□□□□□□□□□ ?") && shown.contains("10 B of ? · 0 B/s · ETA -"), "{shown}");
    }

    #[test]
    fn names_are_escaped_and_cut() {
        let mut t = task(1);
        t.name = Some(format!("<script>&{}", "x".repeat(200)));
        let tasks = [t];
        let r = render(
            &Frame { chat: CHAT, tasks: &tasks, page: 0, page_size: 4, now_ms: NOW_MS, confirm: None },
            &signer(),
        );
        assert!(r.text.contains("&lt;script&gt;&amp;xx"));
        let name_line = text_content(&r.text).lines().nth(2).unwrap().to_string();
        assert_eq!(name_line.chars().count(), "#1 ".len() + NAME_CHARS, "{name_line}");
        assert!(name_line.ends_with('…'));
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab…");
    }

    #[test]
    fn pages_have_prev_refresh_next_and_wrap() {
        let tasks: Vec<_> = (1..=5).map(task).collect();
        let s = signer();
        let r = render(
            &Frame { chat: CHAT, tasks: &tasks, page: 9, page_size: 2, now_ms: NOW_MS, confirm: None },
            &s,
        );
        assert_eq!((r.page, r.pages, r.shown.clone()), (2, 3, vec![5]));
        assert!(text_content(&r.text).starts_with("Tasks: 5 · page 3/3"));
        let nav = r.keyboard.inline_keyboard.last().unwrap();
        let targets: Vec<_> = nav
            .iter()
            .map(|b| s.verify(b.callback_data.as_deref().unwrap(), CHAT, NOW_MS).unwrap().action)
            .collect();
        assert_eq!(targets, [Action::Show { page: 1 }, Action::Show { page: 2 }, Action::Show { page: 0 }]);
    }

    #[test]
    fn a_pending_confirmation_replaces_the_cancel_button() {
        let tasks: Vec<_> = (1..=3).map(task).collect();
        let s = signer();
        let confirm = Some(Confirm { task: 2, user: 77 });
        let r =
            render(&Frame { chat: CHAT, tasks: &tasks, page: 0, page_size: 4, now_ms: NOW_MS, confirm }, &s);
        let rows = &r.keyboard.inline_keyboard;
        assert_eq!(rows[0][0].text, "✔ Confirm cancel #2");
        let confirm_button = s.verify(rows[0][0].callback_data.as_deref().unwrap(), CHAT, NOW_MS).unwrap();
        assert_eq!(
            (confirm_button.action, confirm_button.user),
            (Action::ConfirmCancel { task: 2 }, Some(77))
        );
        let back = s.verify(rows[0][1].callback_data.as_deref().unwrap(), CHAT, NOW_MS).unwrap();
        assert_eq!((back.action, back.user), (Action::Back { task: 2 }, Some(77)));
        let labels: Vec<_> = rows[1..].iter().flatten().map(|b| b.text.as_str()).collect();
        assert_eq!(labels, ["✖ Cancel #1", "✖ Cancel #3", "⟳ Refresh"]);
        // The cancel button is signed for the task's own user.
        let cancel = s.verify(rows[1][0].callback_data.as_deref().unwrap(), CHAT, NOW_MS).unwrap();
        assert_eq!(cancel.user, Some(101));
        assert!(r.text.contains("Cancel this task?"));
        // A confirmation for a task on another page shows nothing.
        let r =
            render(&Frame { chat: CHAT, tasks: &tasks, page: 1, page_size: 2, now_ms: NOW_MS, confirm }, &s);
        assert!(!r.text.contains("Cancel this task?"));
    }

    fn task_strategy() -> impl Strategy<Value = TaskLine> {
        let name = prop_oneof![Just(None), "\\PC{0,300}".prop_map(Some), "[<>&\"😀]{0,300}".prop_map(Some),];
        (
            any::<i64>(),
            any::<i64>(),
            prop::sample::select(TaskState::ALL.to_vec()),
            prop::sample::select(vec![TaskKind::Leech, TaskKind::Mirror]),
            name,
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<i64>()),
        )
            .prop_map(|(id, user, state, kind, name, (done, total, speed, created_at))| {
                let mut t = TaskLine::new(id, CHAT, user, kind);
                t.state = state;
                t.name = name;
                (t.done, t.total, t.speed, t.created_at) = (done, total, speed, created_at);
                t.waiting = Some(Waiting::User);
                t
            })
    }

    proptest! {
        #[test]
        fn every_page_fits_and_pages_cover_every_task_once(
            tasks in prop::collection::vec(task_strategy(), 0..40),
            page_size in 1usize..=MAX_PAGE_SIZE,
            now_ms in any::<i64>(),
            confirm_at in any::<prop::sample::Index>(),
        ) {
            let s = signer();
            let mut seen = Vec::new();
            let pages = page_count(tasks.len(), page_size);
            let confirm = (!tasks.is_empty()).then(|| {
                let t = &tasks[confirm_at.index(tasks.len())];
                Confirm { task: t.id, user: t.user }
            });
            for page in 0..pages {
                let r = render(&Frame { chat: CHAT, tasks: &tasks, page, page_size, now_ms, confirm }, &s);
                prop_assert_eq!((r.page, r.pages), (page, pages));
                let n = units(&r.text);
                prop_assert!(n <= 3500, "a page of {} units; Telegram allows {}, the board keeps under 3500", n, MAX_MESSAGE_UNITS);
                prop_assert!(!text_content(&r.text).trim().is_empty());
                for b in r.keyboard.inline_keyboard.iter().flatten() {
                    let data = b.callback_data.as_deref().unwrap_or_default();
                    prop_assert!(!data.is_empty() && data.len() <= MAX_CALLBACK_DATA_BYTES);
                    prop_assert!(s.verify(data, CHAT, now_ms).is_ok() || now_ms < 0 || now_ms / 1000 > i64::from(u32::MAX));
                }
                seen.extend(r.shown);
            }
            let all: Vec<i64> = tasks.iter().map(|t| t.id).collect();
            prop_assert_eq!(seen, all);
        }
    }
}
