//! The status board against the Telegram simulator (flood limits on) and a real engine
//! over SQLite, with a scripted downloader, the real Telegram uploader for leech and a
//! fake rclone uploader for mirror. Every wait is on the simulator's log or the engine,
//! bounded; none is a sleep.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use frankenstein::AsyncTelegramApi;
use frankenstein::updates::UpdateContent;
use mltb_bot::board::{
    Action, Authorizer, Board, BoardConfig, BoardTask, Button, ButtonError, CallbackOutcome, CallbackReply,
    SigningKey, TaskLine,
};
use mltb_engine::leech::{LeechTarget, TelegramUploader};
use mltb_engine::{
    DownloadId, DownloadRequest, DownloadSource, DownloadState, DownloadStatus, Downloader, Engine,
    EngineConfig, ErrorKind, SentPart, TaskPlanner, UploadContext, UploadOutcome, UploadProgress,
    UploadRequest, Uploader,
};
use mltb_store::{NewTask, Source, SqliteBackend, SqliteStore, StoreConfig, Task, TaskKind, TaskState};
use mltb_telegram::Client;
use mltb_telegram::poller::Poller;
use mltb_telegram::scheduler::{Request, Response, RetryPolicy, Scheduler, Transport};
use mltb_telegram_sim::{Fault, Outbound, RateLimits, Sim, SimChat, SimConfig};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(45);
const OWNER: i64 = 99;

// -- a scripted downloader --------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum End {
    Running,
    Finish,
    Fail(String),
    FailAtStart(String),
}

#[derive(Debug, Clone)]
struct Script {
    data: Arc<Vec<u8>>,
    allowed: usize,
    end: End,
}

#[derive(Debug, Default)]
struct DlState {
    scripts: HashMap<String, Script>,
    /// gid → (url, directory)
    jobs: HashMap<String, (String, PathBuf)>,
    next: u64,
}

/// Downloads whose progress and end the test decides.
#[derive(Debug, Default)]
struct Downloads(Mutex<DlState>);

impl Downloads {
    fn serve(&self, url: &str, len: usize) {
        let data = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let script = Script { data: Arc::new(data), allowed: 0, end: End::Running };
        self.0.lock().unwrap().scripts.insert(url.into(), script);
    }

    fn script(&self, url: &str, f: impl FnOnce(&mut Script)) {
        f(self.0.lock().unwrap().scripts.get_mut(url).expect("a served URL"));
    }

    fn progress(&self, url: &str, done: usize) {
        self.script(url, |s| s.allowed = done);
    }

    fn finish(&self, url: &str) {
        self.script(url, |s| s.end = End::Finish);
    }

    fn fail(&self, url: &str, why: &str) {
        self.script(url, |s| s.end = End::Fail(why.into()));
    }

    fn fail_at_start(&self, url: &str, why: &str) {
        self.script(url, |s| s.end = End::FailAtStart(why.into()));
    }
}

#[async_trait::async_trait]
impl Downloader for Downloads {
    async fn start(&self, request: &DownloadRequest) -> mltb_engine::Result<DownloadId> {
        let DownloadSource::Url(url) = &request.source else { panic!("URLs only") };
        let mut st = self.0.lock().unwrap();
        let script = st.scripts.get(&url.url).cloned().expect("a served URL");
        if let End::FailAtStart(why) = script.end {
            return Err(ErrorKind::NotFound { what: why }.into());
        }
        st.next += 1;
        let id = format!("g{}", st.next);
        st.jobs.insert(id.clone(), (url.url.clone(), request.dir.clone()));
        Ok(DownloadId(id))
    }

    async fn status(&self, id: &DownloadId) -> mltb_engine::Result<DownloadStatus> {
        let (url, dir, script) = {
            let st = self.0.lock().unwrap();
            let (url, dir) = st.jobs.get(&id.0).cloned().expect("a known download");
            let script = st.scripts[&url].clone();
            (url, dir, script)
        };
        let name = url.rsplit('/').next().unwrap().to_string();
        let done = if script.end == End::Finish {
            script.data.len()
        } else {
            script.allowed.min(script.data.len() - 1)
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&name), &script.data[..done]).unwrap();
        let mut status = match &script.end {
            End::Fail(why) => {
                let mut s = DownloadStatus::new(DownloadState::Failed);
                s.error = Some(ErrorKind::NotFound { what: why.clone() }.into());
                s
            }
            End::Finish => DownloadStatus::new(DownloadState::Complete),
            _ => DownloadStatus::new(DownloadState::Active),
        };
        status.name = Some(name);
        status.done = done as u64;
        status.total = script.data.len() as u64;
        status.speed = if done > 0 { 1024 } else { 0 };
        Ok(status)
    }

    async fn cancel(&self, _: &DownloadId) -> mltb_engine::Result<()> {
        Ok(())
    }

    async fn resume(&self, id: &DownloadId, request: &DownloadRequest) -> mltb_engine::Result<DownloadId> {
        if self.0.lock().unwrap().jobs.contains_key(&id.0) {
            Ok(id.clone())
        } else {
            self.start(request).await
        }
    }
}

// -- uploaders ---------------------------------------------------------------------------

/// Mirror without rclone: records each file at `remote:mirror/<name>/<file>`.
#[derive(Debug)]
struct FakeMirror;

#[async_trait::async_trait]
impl Uploader for FakeMirror {
    async fn upload(
        &self,
        request: &UploadRequest,
        context: UploadContext<'_>,
    ) -> mltb_engine::Result<UploadOutcome> {
        let total = request.files.iter().map(|f| f.size).sum();
        let mut sent = 0;
        for file in &request.files {
            let path = format!("remote:mirror/{}/{}", request.name, file.relative);
            context.parts.record(file.id, &SentPart::remote(0, file.size, path)).await?;
            sent += file.size;
            (context.progress)(UploadProgress::new(sent, total));
        }
        Ok(UploadOutcome::default())
    }
}

/// Leech through the real Telegram uploader and the shared scheduler; mirror to the fake.
struct Planner {
    scheduler: Scheduler,
    store: Arc<SqliteStore>,
}

#[async_trait::async_trait]
impl TaskPlanner for Planner {
    async fn uploader(&self, task: &Task) -> mltb_engine::Result<Arc<dyn Uploader>> {
        Ok(match task.kind {
            TaskKind::Leech => Arc::new(TelegramUploader::new(
                self.scheduler.clone(),
                self.store.clone(),
                LeechTarget::new(task.chat, 10_000_000),
            )?),
            TaskKind::Mirror => Arc::new(FakeMirror),
        })
    }
}

/// The task's user and the bot's owner may cancel.
struct OwnerOrTaskUser;

#[async_trait::async_trait]
impl Authorizer for OwnerOrTaskUser {
    async fn may_cancel(&self, presser: i64, task: &TaskLine) -> bool {
        presser == task.user || presser == OWNER
    }
}

/// The real client, with every answer published: lets a test wait for what Telegram
/// said to a request (such as "message is not modified"), which the log of accepted
/// calls does not show.
struct Observed {
    client: Client,
    answers: watch::Sender<Vec<(&'static str, Option<String>)>>,
}

impl Transport for Observed {
    async fn execute(&self, request: &Request) -> mltb_telegram::Result<Response> {
        let outcome = self.client.execute(request).await;
        let error = outcome.as_ref().err().map(ToString::to_string);
        self.answers.send_modify(|a| a.push((request.method(), error)));
        outcome
    }
}

// -- the harness ---------------------------------------------------------------------------

struct Harness {
    sim: Sim,
    client: Client,
    scheduler: Scheduler,
    store: Arc<SqliteStore>,
    downloads: Arc<Downloads>,
    engine: Engine<SqliteBackend>,
    poller: Poller,
    key: SigningKey,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn start(chats: &[SimChat]) -> Self {
        let config = SimConfig { rate_limits: Some(RateLimits::default()), ..SimConfig::default() };
        let sim = Sim::start(config).await.unwrap();
        for chat in chats {
            sim.add_chat(chat.clone());
        }
        let client = Client::builder(sim.token()).api_url(sim.api_url()).build().unwrap();
        let scheduler = Scheduler::builder().build(client.clone());
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(SqliteStore::open_sqlite(dir.path().join("mltb.db"), StoreConfig::new()).await.unwrap());
        let downloads = Arc::new(Downloads::default());
        let engine = Self::engine(&store, &downloads, &scheduler, &dir).await;
        let poller = Poller::builder(client.clone()).timeout(10).spawn();
        let key = SigningKey::new(*b"the board's test key, 32+ bytes.").unwrap();
        Self { sim, client, scheduler, store, downloads, engine, poller, key, dir }
    }

    async fn engine(
        store: &Arc<SqliteStore>,
        downloads: &Arc<Downloads>,
        scheduler: &Scheduler,
        dir: &tempfile::TempDir,
    ) -> Engine<SqliteBackend> {
        let planner = Arc::new(Planner { scheduler: scheduler.clone(), store: store.clone() });
        let config = EngineConfig::new(dir.path().join("downloads")).poll_interval(Duration::from_millis(20));
        Engine::start(store.clone(), downloads.clone(), planner, config).await.unwrap()
    }

    fn board(&self, page_size: usize) -> Board<SqliteBackend> {
        let config = BoardConfig::new(self.key.clone()).interval(Duration::from_secs(1)).page_size(page_size);
        Board::builder(self.engine.clone(), self.scheduler.clone(), config)
            .authorizer(OwnerOrTaskUser)
            .build()
            .unwrap()
    }

    /// A board on `scheduler`, refreshing every `interval`, whose clock reads `clock`.
    fn board_at(
        &self,
        scheduler: &Scheduler,
        interval: Duration,
        clock: &Arc<AtomicI64>,
    ) -> Board<SqliteBackend> {
        let config = BoardConfig::new(self.key.clone()).interval(interval);
        let clock = clock.clone();
        Board::builder(self.engine.clone(), scheduler.clone(), config)
            .clock(move || clock.load(Ordering::Relaxed))
            .build()
            .unwrap()
    }

    async fn submit(&self, chat: i64, user: i64, kind: TaskKind, url: &str, len: usize) -> Task {
        self.downloads.serve(url, len);
        let task = NewTask {
            chat,
            user,
            source: Source::Url(url.into()),
            kind,
            name: None,
            options: serde_json::json!({}),
        };
        self.engine.submit(&task).await.unwrap()
    }

    /// Presses a button as a user would, receives the callback query through the poller,
    /// hands it to the board and answers it through the client.
    async fn press(
        &mut self,
        board: &Board<SqliteBackend>,
        chat: i64,
        user: i64,
        message: i32,
        data: &str,
    ) -> CallbackReply {
        self.sim.press_button(chat, user, message, data);
        let update = tokio::time::timeout(WAIT, self.poller.recv()).await.expect("an update in time");
        let UpdateContent::CallbackQuery(query) =
            update.expect("the poller runs").expect("an update").content
        else {
            panic!("expected a callback query")
        };
        let reply = board.handle_callback(&query).await;
        self.client.answer_callback_query(&reply.answer(query.id.clone())).await.unwrap();
        reply
    }

    /// Waits until the simulator's log satisfies `done`; returns the log.
    async fn until(&self, what: &str, done: impl FnMut(&[Outbound]) -> bool) -> Vec<Outbound> {
        support::until_sent(&self.sim, what, done).await
    }

    /// Waits until `chat` has a board message whose text satisfies `text`; returns its
    /// id and the current text and buttons.
    async fn board_showing(
        &self,
        chat: i64,
        what: &str,
        text: impl Fn(&str) -> bool,
    ) -> (i32, String, Vec<(String, String)>) {
        let mut found = None;
        self.until(what, |log| {
            let Some(id) = board_id(log, chat) else { return false };
            let m = self.sim.message(chat, id).unwrap();
            let shown = m.text.clone().unwrap_or_default();
            if m.deleted || !text(&shown) {
                return false;
            }
            found = Some((id, shown, buttons(m.reply_markup.as_ref())));
            true
        })
        .await;
        found.unwrap()
    }

    fn assert_no_429(&self) {
        let stats = self.sim.stats();
        assert_eq!(stats.responses_429, 0, "the simulator answered 429: {stats:?}");
        assert!(stats.max_per_chat_in_any_second <= 1, "{stats:?}");
    }

    async fn shutdown(self, driver: Option<BoardTask>) {
        if let Some(d) = driver {
            d.stop().await;
        }
        self.engine.shutdown().await;
        self.scheduler.shutdown().await;
        let _ = self.poller.shutdown().await;
        self.sim.shutdown().await;
        drop(self.dir);
    }
}

/// The latest board message of `chat`: the last `sendMessage` there with buttons and
/// text starting `Tasks:`.
fn board_id(log: &[Outbound], chat: i64) -> Option<i32> {
    log.iter()
        .rev()
        .find(|o| {
            o.method == "sendMessage"
                && o.chat_id == chat
                && o.reply_markup.is_some()
                && o.text.as_deref().is_some_and(|t| t.starts_with("Tasks:"))
        })
        .and_then(|o| o.message_id)
}

/// `(label, callback data)` of every button.
fn buttons(markup: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let Some(rows) = markup.and_then(|m| m["inline_keyboard"].as_array()) else { return Vec::new() };
    rows.iter()
        .flat_map(|r| r.as_array().cloned().unwrap_or_default())
        .map(|b| (b["text"].as_str().unwrap().to_string(), b["callback_data"].as_str().unwrap().to_string()))
        .collect()
}

fn data_of(buttons: &[(String, String)], label: &str) -> String {
    buttons
        .iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no {label:?} in {buttons:?}"))
        .1
        .clone()
}

fn summary(log: &[Outbound]) -> Vec<String> {
    log.iter()
        .map(|o| {
            format!(
                "{} {} {:?}: {:?}",
                o.method,
                o.chat_id,
                o.message_id,
                o.text.as_deref().map(|t| t.lines().next())
            )
        })
        .collect()
}

fn notices<'a>(log: &'a [Outbound], chat: i64, head: &str) -> Vec<&'a Outbound> {
    log.iter()
        .filter(|o| {
            o.method == "sendMessage"
                && o.chat_id == chat
                && o.text.as_deref().is_some_and(|t| t.starts_with(head))
        })
        .collect()
}

// -- tests -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_appears_progresses_pages_and_goes_when_the_last_task_ends() {
    const CHAT: i64 = 501;
    let mut h = Harness::start(&[SimChat::private(CHAT, "User")]).await;
    let board = h.board(2);
    let driver = board.spawn().unwrap();
    assert!(matches!(board.spawn(), Err(mltb_bot::board::Error::Running)), "one driver per board");
    let urls = ["http://files/one.iso", "http://files/two.iso", "http://files/three.iso"];
    let mut tasks = Vec::new();
    for url in urls {
        tasks.push(h.submit(CHAT, CHAT, TaskKind::Mirror, url, 10_000).await);
    }
    let (id, text, keys) = h
        .board_showing(CHAT, "the board lists three tasks, named, downloading", |t| {
            t.starts_with("Tasks: 3 · page 1/2")
                && t.contains("two.iso")
                && t.matches("Downloading with aria2").count() == 2
        })
        .await;
    assert!(
        text.contains(&format!("#{} one.iso", tasks[0].id))
            && text.contains(&format!("#{} two.iso", tasks[1].id)),
        "{text}"
    );
    assert!(!text.contains("three.iso"), "page 1 holds two tasks: {text}");
    assert!(text.contains("Downloading with aria2"), "{text}");
    let labels: Vec<&str> = keys.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            &*format!("✖ Cancel #{}", tasks[0].id),
            &*format!("✖ Cancel #{}", tasks[1].id),
            "◀ Prev",
            "⟳ Refresh",
            "Next ▶"
        ]
    );
    assert!(keys.iter().all(|(_, d)| d.len() <= 64));

    // Progress shows at the next refresh, in the same message.
    h.downloads.progress(urls[0], 5_000);
    let (same, text, _) = h.board_showing(CHAT, "the board shows progress", |t| t.contains("50.0%")).await;
    assert_eq!(same, id);
    assert!(text.contains("4.9 KiB of 9.8 KiB · 1.0 KiB/s · ETA 5s"), "{text}");

    // The next page holds the third task.
    let reply = h.press(&board, CHAT, CHAT, id, &data_of(&keys, "Next ▶")).await;
    assert_eq!(reply.outcome, CallbackOutcome::Shown { page: 1 });
    let (_, text, keys) = h
        .board_showing(CHAT, "the board shows page 2", |t| {
            t.starts_with("Tasks: 3 · page 2/2") && t.contains("three.iso")
        })
        .await;
    assert!(text.contains(&format!("#{} three.iso", tasks[2].id)) && !text.contains("one.iso"), "{text}");
    assert_eq!(keys[0].0, format!("✖ Cancel #{}", tasks[2].id));

    // `/status` posts the board again at the bottom, on the same page, and deletes the old one.
    board.repost(CHAT);
    let log = h
        .until("the board is posted again", |log| {
            board_id(log, CHAT).is_some_and(|b| b != id)
                && log.iter().any(|o| o.method == "deleteMessage" && o.message_id == Some(id))
        })
        .await;
    let id = board_id(&log, CHAT).unwrap();
    assert!(
        log.iter()
            .rev()
            .find(|o| o.message_id == Some(id))
            .unwrap()
            .text
            .as_deref()
            .unwrap()
            .contains("page 2/2")
    );

    // Each task that completes is announced; the board goes with the last one.
    for url in urls {
        h.downloads.finish(url);
    }
    for t in &tasks {
        h.engine.wait(t.id).await;
        assert_eq!(h.store.task(t.id).await.unwrap().unwrap().state, TaskState::Completed);
    }
    let log = h
        .until("three completion messages and the board deleted", |log| {
            notices(log, CHAT, "Done:").len() == 3
                && log.iter().any(|o| o.method == "deleteMessage" && o.message_id == Some(id))
        })
        .await;
    let done = notices(&log, CHAT, "Done:");
    let one = done.iter().filter_map(|o| o.text.as_deref()).find(|t| t.contains("one.iso")).unwrap();
    assert!(one.starts_with(&format!("Done: one.iso (#{})\n1 file · 9.8 KiB · took", tasks[0].id)), "{one}");
    assert!(one.ends_with("\n1. remote:mirror/one.iso/one.iso (9.8 KiB)"), "{one}");
    assert!(h.sim.message(CHAT, id).unwrap().deleted);
    driver.stop().await;
    assert!(h.store.status_messages().await.unwrap().is_empty(), "a deleted board is forgotten");
    h.assert_no_429();
    h.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_takes_a_confirmation_and_forged_or_misplaced_buttons_cancel_nothing() {
    const CHAT: i64 = -1_001_000_000_002;
    const ELSEWHERE: i64 = -1_001_000_000_003;
    const USER: i64 = 11;
    const STRANGER: i64 = 12;
    let mut h =
        Harness::start(&[SimChat::supergroup(CHAT, "Group"), SimChat::supergroup(ELSEWHERE, "Other")]).await;
    let board = h.board(4);
    let driver = board.spawn().unwrap();
    let task = h.submit(CHAT, USER, TaskKind::Mirror, "http://files/big.bin", 100_000).await;
    let cancel_label = format!("✖ Cancel #{}", task.id);
    let (id, _, keys) = h.board_showing(CHAT, "the board shows the task", |t| t.contains("big.bin")).await;
    let cancel = data_of(&keys, &cancel_label);

    // A stranger may not cancel, a forged button is refused, and so is one from another chat.
    let reply = h.press(&board, CHAT, STRANGER, id, &cancel).await;
    assert_eq!(reply.outcome, CallbackOutcome::NotAllowed { task: task.id });
    assert!(reply.alert);
    let mut forged = cancel.clone().into_bytes();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let reply = h.press(&board, CHAT, USER, id, std::str::from_utf8(&forged).unwrap()).await;
    assert!(
        matches!(
            reply.outcome,
            CallbackOutcome::Invalid(ButtonError::BadSignature | ButtonError::Malformed { .. })
        ),
        "{reply:?}"
    );
    let other_key = mltb_bot::board::Signer::new(SigningKey::new([7u8; 32]).unwrap());
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let foreign =
        other_key.sign(&Button::new(CHAT, Action::ConfirmCancel { task: task.id }, now_ms).for_user(USER));
    let reply = h.press(&board, CHAT, USER, id, foreign.as_str()).await;
    assert_eq!(reply.outcome, CallbackOutcome::Invalid(ButtonError::BadSignature));
    let reply = h.press(&board, ELSEWHERE, USER, id, &cancel).await;
    assert_eq!(
        reply.outcome,
        CallbackOutcome::Invalid(ButtonError::WrongChat { signed: CHAT, pressed: ELSEWHERE })
    );
    // The answers reached Telegram, with their text.
    let answers = h.sim.callback_answers();
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0].text.as_deref(), Some(&*format!("You may not cancel task #{}.", task.id)));
    assert!(answers.iter().all(|a| a.show_alert));

    // The first press asks; only the asker can confirm or go back.
    let reply = h.press(&board, CHAT, USER, id, &cancel).await;
    assert_eq!(reply.outcome, CallbackOutcome::ConfirmAsked { task: task.id });
    let confirm_label = format!("✔ Confirm cancel #{}", task.id);
    let (_, text, keys) =
        h.board_showing(CHAT, "the board asks to confirm", |t| t.contains("Cancel this task?")).await;
    assert!(text.contains("big.bin"));
    let confirm = data_of(&keys, &confirm_label);
    let back = data_of(&keys, "↩ Back");
    assert_eq!(
        h.press(&board, CHAT, STRANGER, id, &confirm).await.outcome,
        CallbackOutcome::NotYours { task: task.id }
    );
    assert_eq!(
        h.press(&board, CHAT, USER, id, &back).await.outcome,
        CallbackOutcome::KeptRunning { task: task.id }
    );
    let (_, _, keys) =
        h.board_showing(CHAT, "the confirmation is gone", |t| !t.contains("Cancel this task?")).await;
    assert!(keys.iter().any(|(l, _)| *l == cancel_label), "{keys:?}");
    assert_eq!(h.engine.tasks().len(), 1, "nothing was cancelled so far");
    assert_eq!(h.store.task(task.id).await.unwrap().unwrap().state, TaskState::Downloading);

    // Ask again (the owner may too) and confirm: the task is cancelled and the board goes.
    assert_eq!(
        h.press(&board, CHAT, OWNER, id, &data_of(&keys, &cancel_label)).await.outcome,
        CallbackOutcome::ConfirmAsked { task: task.id }
    );
    let (_, _, keys) = h
        .board_showing(CHAT, "the board asks the owner to confirm", |t| t.contains("Cancel this task?"))
        .await;
    let reply = h.press(&board, CHAT, OWNER, id, &data_of(&keys, &confirm_label)).await;
    assert_eq!(reply.outcome, CallbackOutcome::Cancelled { task: task.id });
    h.engine.wait(task.id).await;
    assert_eq!(h.store.task(task.id).await.unwrap().unwrap().state, TaskState::Cancelled);
    let log = h
        .until("the board is deleted and the cancel told", |log| {
            log.iter().any(|o| o.method == "deleteMessage" && o.message_id == Some(id))
                && !notices(log, CHAT, "Cancelled:").is_empty()
        })
        .await;
    assert!(notices(&log, CHAT, "Failed:").is_empty() && notices(&log, CHAT, "Done:").is_empty());
    let told = notices(&log, CHAT, "Cancelled:");
    assert_eq!(told.len(), 1);
    assert_eq!(
        told[0].text.as_deref(),
        Some(&*format!("Cancelled: big.bin (#{}) by user {OWNER}\ncc: user {USER}", task.id)),
        "the owner cancelled the user's task"
    );
    // The old confirm button now finds nothing to cancel.
    let reply = h.press(&board, CHAT, OWNER, id, &data_of(&keys, &confirm_label)).await;
    assert_eq!(reply.outcome, CallbackOutcome::NotRunning { task: task.id });
    h.assert_no_429();
    h.shutdown(Some(driver)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_links_every_leeched_message_and_failures_give_their_reason() {
    const CHAT: i64 = -1_001_000_000_004;
    const USER: i64 = 21;
    let h = Harness::start(&[SimChat::supergroup(CHAT, "Leech & <co>")]).await;
    let board = h.board(4);
    let driver = board.spawn().unwrap();
    let leech = h.submit(CHAT, USER, TaskKind::Leech, "http://files/movie.mkv", 300_000).await;
    h.downloads.finish("http://files/movie.mkv");
    h.engine.wait(leech.id).await;
    // Fails while downloading, and fails before the download even starts (too fast to
    // ever be seen running, most likely): both are told.
    let slow = h.submit(CHAT, USER, TaskKind::Mirror, "http://files/gone.iso", 1_000).await;
    h.downloads.progress("http://files/gone.iso", 100);
    h.board_showing(CHAT, "the failing task downloads", |t| t.contains("gone.iso")).await;
    h.downloads.fail("http://files/gone.iso", "HTTP 404 for <gone.iso> & friends");
    h.downloads.serve("http://files/fast.iso", 10);
    h.downloads.fail_at_start("http://files/fast.iso", "no such host");
    let fast = h
        .engine
        .submit(&NewTask {
            chat: CHAT,
            user: USER,
            source: Source::Url("http://files/fast.iso".into()),
            kind: TaskKind::Mirror,
            name: None,
            options: serde_json::json!({}),
        })
        .await
        .unwrap();
    h.engine.wait(slow.id).await;
    h.engine.wait(fast.id).await;

    let log = h
        .until("a completion and two failure messages", |log| {
            notices(log, CHAT, "Done:").len() == 1 && notices(log, CHAT, "Failed:").len() == 2
        })
        .await;
    let part = log.iter().find(|o| o.method == "sendDocument").expect("the leech sent its file");
    let done = notices(&log, CHAT, "Done:")[0];
    let text = done.text.as_deref().unwrap();
    assert!(text.starts_with(&format!("Done: movie.mkv (#{})\n1 file · 293.0 KiB", leech.id)), "{text}");
    let link = format!("https://t.me/c/1000000004/{}", part.message_id.unwrap());
    let entities = done.entities.as_ref().unwrap().to_string();
    assert!(entities.contains(&link), "{entities}");
    // The user is mentioned by id.
    let mention =
        done.entities.as_ref().unwrap().as_array().unwrap().iter().find(|e| e["type"] == "text_mention");
    assert_eq!(mention.expect("a mention")["user"]["id"], USER, "{entities}");
    let failed: Vec<&str> =
        notices(&log, CHAT, "Failed:").iter().map(|o| o.text.as_deref().unwrap()).collect();
    let slow_text = failed.iter().find(|t| t.contains(&format!("(#{})", slow.id))).expect("the slow failure");
    assert!(slow_text.contains("Reason: not found: HTTP 404 for <gone.iso> & friends"), "{slow_text}");
    let fast_text = failed
        .iter()
        .find(|t| t.starts_with(&format!("Failed: Task #{}\n", fast.id)))
        .expect("the fast failure");
    assert!(fast_text.contains("Reason: not found: no such host"), "{fast_text}");
    // A task that started and ended between two looks (here: without the engine at
    // all) is found in the store and told too.
    let unseen = h
        .store
        .create_task(&NewTask {
            chat: CHAT,
            user: USER,
            source: Source::Url("http://files/unseen".into()),
            kind: TaskKind::Leech,
            name: None,
            options: serde_json::json!({}),
        })
        .await
        .unwrap();
    h.store.mark_failed(unseen.id, "refused by the egress policy").await.unwrap();
    let log = h.until("the unseen task's failure", |log| notices(log, CHAT, "Failed:").len() == 3).await;
    let text = notices(&log, CHAT, "Failed:")[2].text.clone().unwrap();
    assert!(
        text.starts_with(&format!("Failed: Task #{}\nReason: refused by the egress policy", unseen.id)),
        "{text}"
    );
    // Each end is told once.
    driver.stop().await;
    assert_eq!(notices(&h.sim.sent(), CHAT, "Failed:").len(), 3);
    h.assert_no_429();
    h.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_stored_board_is_edited_or_posted_again_if_gone() {
    const CHAT: i64 = 503;
    let mut h = Harness::start(&[SimChat::private(CHAT, "User")]).await;
    let task = h.submit(CHAT, CHAT, TaskKind::Mirror, "http://files/long.iso", 50_000).await;
    h.downloads.progress("http://files/long.iso", 10_000);
    // A clock that moves only when told, so two boards render the same message.
    let clock = Arc::new(AtomicI64::new(task.created_at + 90_000));
    let first = h.board_at(&h.scheduler, Duration::from_secs(1), &clock).spawn().unwrap();
    let (id, text, _) = h.board_showing(CHAT, "the first board", |t| t.contains("20.0%")).await;
    assert!(text.contains("Elapsed 1m 30s"), "{text}");
    first.stop().await;
    let stored: Vec<_> =
        h.store.status_messages().await.unwrap().iter().map(|m| (m.chat, m.message_id)).collect();
    assert_eq!(stored, [(CHAT, i64::from(id))]);

    // A restart: a new engine resumes the task (and reports its progress again), a new
    // scheduler knows nothing of the message, a new board takes it over. Its first edit
    // shows what the message shows: Telegram says "message is not modified", which is
    // success, not a reason to post again.
    h.engine.shutdown().await;
    h.engine = Harness::engine(&h.store, &h.downloads, &h.scheduler, &h.dir).await;
    let mut changes = h.engine.changes();
    tokio::time::timeout(WAIT, async {
        while !h.engine.tasks().iter().any(|t| t.done == 10_000) {
            changes.changed().await.unwrap();
        }
    })
    .await
    .expect("the resumed task reports its progress");
    let (answers, mut answered) = watch::channel(Vec::new());
    let scheduler = Scheduler::builder().build(Observed { client: h.client.clone(), answers });
    let mark = h.sim.sent().last().unwrap().seq;
    let second = h.board_at(&scheduler, Duration::from_secs(2), &clock).spawn().unwrap();
    tokio::time::timeout(
        WAIT,
        answered.wait_for(|a| {
            a.iter().any(|(m, e)| {
                *m == "editMessageText" && e.as_deref().is_some_and(|e| e.contains("message is not modified"))
            })
        }),
    )
    .await
    .expect("Telegram saw the identical edit")
    .unwrap();
    // Time moves on: the same message is edited.
    clock.fetch_add(60_000, Ordering::Relaxed);
    h.until("the stored board is edited", |log| {
        log.iter().any(|o| {
            o.seq > mark
                && o.method == "editMessageText"
                && o.message_id == Some(id)
                && o.text.as_deref().is_some_and(|t| t.contains("Elapsed 2m 30s"))
        })
    })
    .await;
    second.stop().await;
    let log = h.sim.sent();
    assert!(
        !log.iter().any(|o| o.seq > mark && o.method == "sendMessage"),
        "no second board: {:#?}",
        summary(&log)
    );

    // The message was deleted while the bot was down: the next start posts a new one.
    scheduler.send(Request::delete_message(CHAT, id)).await.unwrap();
    let third = h.board_at(&scheduler, Duration::from_secs(1), &clock).spawn().unwrap();
    let log = h.until("a new board is posted", |log| board_id(log, CHAT).is_some_and(|b| b != id)).await;
    let new_id = board_id(&log, CHAT).unwrap();
    third.stop().await;
    assert!(answered.borrow().iter().any(|(m, e)| *m == "editMessageText"
        && e.as_deref().is_some_and(|e| e.contains("message to edit not found"))));
    let stored: Vec<_> =
        h.store.status_messages().await.unwrap().iter().map(|m| (m.chat, m.message_id)).collect();
    assert_eq!(stored, [(CHAT, i64::from(new_id))]);
    assert_eq!(h.engine.tasks().len(), 1);

    // A board whose chat has no tasks left is deleted at start.
    assert!(h.engine.cancel(task.id));
    h.engine.wait(task.id).await;
    let fourth = h.board_at(&scheduler, Duration::from_secs(1), &clock).spawn().unwrap();
    h.until("the stale board is deleted", |log| {
        log.iter().any(|o| o.method == "deleteMessage" && o.message_id == Some(new_id))
    })
    .await;
    fourth.stop().await;
    assert!(h.store.status_messages().await.unwrap().is_empty());
    assert!(h.sim.message(CHAT, new_id).unwrap().deleted);
    h.assert_no_429();
    scheduler.shutdown().await;
    h.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ends_while_no_board_ran_are_told_once_at_the_next_start() {
    const CHAT: i64 = 504;
    let h = Harness::start(&[SimChat::private(CHAT, "User")]).await;
    // A task that completed, one that failed and one cancelled (through the engine, as
    // the HTTP API does), while no board ran: the bot was restarting, or down.
    let done = h.submit(CHAT, CHAT, TaskKind::Mirror, "http://files/done.iso", 1_000).await;
    h.downloads.finish("http://files/done.iso");
    let failed = h.submit(CHAT, CHAT, TaskKind::Mirror, "http://files/failed.iso", 1_000).await;
    h.downloads.fail("http://files/failed.iso", "HTTP 500");
    let cancelled = h.submit(CHAT, CHAT, TaskKind::Mirror, "http://files/cancelled.iso", 1_000).await;
    assert!(h.engine.cancel(cancelled.id));
    for t in [&done, &failed, &cancelled] {
        h.engine.wait(t.id).await;
    }
    assert_eq!(h.store.unannounced_tasks(10).await.unwrap().len(), 3);
    assert!(h.sim.sent().is_empty(), "nothing was told yet");

    let first = h.board(4).spawn().unwrap();
    let log = h
        .until("the three ends are told", |log| {
            notices(log, CHAT, "Done:").len() == 1
                && notices(log, CHAT, "Failed:").len() == 1
                && notices(log, CHAT, "Cancelled:").len() == 1
        })
        .await;
    let text = |head| notices(&log, CHAT, head)[0].text.clone().unwrap();
    assert!(text("Done:").starts_with(&format!("Done: done.iso (#{})", done.id)), "{}", text("Done:"));
    assert!(text("Failed:").contains("Reason: not found: HTTP 500"), "{}", text("Failed:"));
    // Cancelled before its download named it; nobody here said who cancelled it.
    assert_eq!(text("Cancelled:"), format!("Cancelled: Task #{}\ncc: user {CHAT}", cancelled.id));
    first.stop().await;
    assert!(h.store.unannounced_tasks(10).await.unwrap().is_empty(), "each is marked as told");

    // Another start tells nothing again; an end that comes while it runs is told.
    let told = h.sim.sent().len();
    let second = h.board(4).spawn().unwrap();
    let late = h.submit(CHAT, CHAT, TaskKind::Mirror, "http://files/late.iso", 1_000).await;
    h.downloads.fail("http://files/late.iso", "gone");
    h.engine.wait(late.id).await;
    let log = h.until("the late failure", |log| notices(log, CHAT, "Failed:").len() == 2).await;
    second.stop().await;
    let again: Vec<_> = log[told..]
        .iter()
        .filter(|o| o.method == "sendMessage" && o.text.as_deref().is_some_and(|t| !t.starts_with("Tasks:")))
        .map(|o| o.text.clone().unwrap())
        .collect();
    assert_eq!(again.len(), 1, "only the late end is new: {again:#?}");
    assert!(again[0].starts_with(&format!("Failed: late.iso (#{})", late.id)), "{again:?}");
    h.assert_no_429();
    h.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_whose_message_failed_to_send_is_tried_again_and_told_once() {
    const CHAT: i64 = 505;
    let h = Harness::start(&[SimChat::private(CHAT, "User")]).await;
    let task = h.submit(CHAT, CHAT, TaskKind::Mirror, "http://files/lost.iso", 1_000).await;
    h.downloads.fail("http://files/lost.iso", "HTTP 404");
    h.engine.wait(task.id).await;
    // A scheduler that does not retry, so the board sees Telegram's two 500s.
    let retry = RetryPolicy { max_retries: 0, ..RetryPolicy::default() };
    let scheduler = Scheduler::builder().retry(retry).build(h.client.clone());
    h.sim.inject_fault_for("sendMessage", Fault::ServerError(500), 2);
    let config = BoardConfig::new(h.key.clone()).interval(Duration::from_secs(1));
    let driver =
        Board::builder(h.engine.clone(), scheduler.clone(), config).build().unwrap().spawn().unwrap();
    let log = h.until("the failure is told", |log| !notices(log, CHAT, "Failed:").is_empty()).await;
    driver.stop().await;
    assert_eq!(h.sim.stats().responses_5xx, 2, "told on the third try");
    assert_eq!(notices(&log, CHAT, "Failed:").len(), 1);
    assert!(h.store.unannounced_tasks(10).await.unwrap().is_empty());
    scheduler.shutdown().await;
    h.shutdown(None).await;
}
