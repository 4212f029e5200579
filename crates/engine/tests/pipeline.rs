//! The task pipeline with a scripted downloader and the Telegram simulator: queue limits,
//! the whole leech path, cancel at each stage, and resuming after a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mltb_engine::leech::{LeechTarget, TelegramUploader};
use mltb_engine::{
    DownloadId, DownloadRequest, DownloadState, DownloadStatus, Downloader, Engine, EngineConfig,
    QueueLimits, TaskPlanner, Uploader, Waiting,
};
use mltb_store::{NewTask, Part, Source, SqliteBackend, SqliteStore, StoreConfig, Task, TaskKind, TaskState};
use mltb_telegram::Client;
use mltb_telegram::scheduler::Scheduler;
use mltb_telegram_sim::{Sim, SimConfig};
use sha2::{Digest, Sha256};

const CHAT: i64 = 501;

/// A download that writes its bytes a step per poll, and finishes only once opened.
#[derive(Debug, Clone)]
struct Job {
    dir: PathBuf,
    name: String,
    data: Arc<Vec<u8>>,
    written: usize,
    open: bool,
    cancelled: bool,
}

/// Downloads scripted by the test: `url` → content; each needs `open(url)` to finish.
#[derive(Debug, Default)]
struct Scripted {
    content: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    opened: Mutex<Vec<String>>,
    jobs: Mutex<HashMap<String, (String, Job)>>,
    next: Mutex<u64>,
}

impl Scripted {
    fn serve(&self, url: &str, data: Vec<u8>) {
        self.content.lock().unwrap().insert(url.into(), Arc::new(data));
    }

    fn open(&self, url: &str) {
        self.opened.lock().unwrap().push(url.into());
    }

    fn active(&self) -> usize {
        self.jobs.lock().unwrap().values().filter(|(_, j)| !j.cancelled && j.written < j.data.len()).count()
    }

    fn cancelled(&self) -> usize {
        self.jobs.lock().unwrap().values().filter(|(_, j)| j.cancelled).count()
    }
}

#[async_trait::async_trait]
impl Downloader for Scripted {
    async fn start(&self, request: &DownloadRequest) -> mltb_engine::Result<DownloadId> {
        let mltb_engine::DownloadSource::Url(url) = &request.source else { panic!("URLs only") };
        let data = self.content.lock().unwrap().get(&url.url).cloned().expect("a scripted URL");
        let mut next = self.next.lock().unwrap();
        *next += 1;
        let id = format!("g{next}");
        let name = url.url.rsplit('/').next().unwrap().to_string();
        let job = Job { dir: request.dir.clone(), name, data, written: 0, open: false, cancelled: false };
        self.jobs.lock().unwrap().insert(id.clone(), (url.url.clone(), job));
        Ok(DownloadId(id))
    }

    async fn status(&self, id: &DownloadId) -> mltb_engine::Result<DownloadStatus> {
        let opened = self.opened.lock().unwrap().clone();
        let mut jobs = self.jobs.lock().unwrap();
        let (url, job) = jobs.get_mut(&id.0).expect("a known download");
        job.open |= opened.contains(url);
        let step = if job.open {
            job.data.len()
        } else {
            (job.data.len() / 4).min(job.data.len() - 1 - job.written.min(job.data.len() - 1))
        };
        let end = (job.written + step).min(job.data.len());
        std::fs::create_dir_all(&job.dir).unwrap();
        let path = job.dir.join(&job.name);
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        bytes.truncate(job.written);
        bytes.extend_from_slice(&job.data[job.written..end]);
        std::fs::write(&path, &bytes).unwrap();
        job.written = end;
        let mut status = DownloadStatus::new(if end == job.data.len() {
            DownloadState::Complete
        } else {
            DownloadState::Active
        });
        status.name = Some(job.name.clone());
        status.done = end as u64;
        status.total = job.data.len() as u64;
        Ok(status)
    }

    async fn cancel(&self, id: &DownloadId) -> mltb_engine::Result<()> {
        if let Some((_, job)) = self.jobs.lock().unwrap().get_mut(&id.0) {
            job.cancelled = true;
        }
        Ok(())
    }

    async fn resume(&self, id: &DownloadId, request: &DownloadRequest) -> mltb_engine::Result<DownloadId> {
        if self.jobs.lock().unwrap().contains_key(&id.0) { Ok(id.clone()) } else { self.start(request).await }
    }
}

struct Leech {
    scheduler: Scheduler,
    store: Arc<SqliteStore>,
    split: u64,
}

#[async_trait::async_trait]
impl TaskPlanner for Leech {
    async fn uploader(&self, task: &Task) -> mltb_engine::Result<Arc<dyn Uploader>> {
        Ok(Arc::new(TelegramUploader::new(
            self.scheduler.clone(),
            self.store.clone(),
            LeechTarget::new(task.chat, self.split),
        )?))
    }
}

struct Setup {
    sim: Sim,
    store: Arc<SqliteStore>,
    downloads: Arc<Scripted>,
    planner: Arc<Leech>,
    dir: tempfile::TempDir,
}

async fn setup(split: u64) -> Setup {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.add_chat(CHAT);
    let client = Client::builder(sim.token()).api_url(sim.api_url()).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open_sqlite(dir.path().join("mltb.db"), StoreConfig::new()).await.unwrap());
    let planner =
        Arc::new(Leech { scheduler: Scheduler::builder().build(client), store: store.clone(), split });
    Setup { sim, store, downloads: Arc::default(), planner, dir }
}

impl Setup {
    fn config(&self) -> EngineConfig {
        EngineConfig::new(self.dir.path().join("downloads")).poll_interval(Duration::from_millis(20))
    }

    async fn engine(&self, config: EngineConfig) -> Engine<SqliteBackend> {
        Engine::start(self.store.clone(), self.downloads.clone(), self.planner.clone(), config).await.unwrap()
    }
}

fn leech(user: i64, url: &str) -> NewTask {
    NewTask {
        chat: CHAT,
        user,
        source: Source::Url(url.into()),
        kind: TaskKind::Leech,
        name: None,
        options: serde_json::json!({}),
    }
}

fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn state(store: &SqliteStore, id: i64) -> TaskState {
    store.task(id).await.unwrap().unwrap().state
}

#[tokio::test]
async fn a_leech_goes_from_queued_to_completed_with_its_parts_recorded_and_its_directory_removed() {
    let s = setup(1_000_000).await;
    let source = data(2_500_000, 1);
    s.downloads.serve("http://files/a.iso", source.clone());
    s.downloads.open("http://files/a.iso");
    let engine = s.engine(s.config()).await;
    let task = engine.submit(&leech(1, "http://files/a.iso")).await.unwrap();
    engine.wait(task.id).await;
    let stored = s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.name.as_deref(), stored.gid.as_deref()),
        (TaskState::Completed, Some("a.iso"), Some("g1"))
    );
    let files = s.store.task_files(task.id).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].parts.iter().map(|p| p.size).collect::<Vec<_>>(), [1_000_000, 1_000_000, 500_000]);
    assert!(files[0].parts.iter().all(|p| p.message_id.is_some()));
    let hashes: Vec<_> = s.sim.sent().into_iter().filter_map(|o| o.file.map(|f| f.sha256)).collect();
    let want: Vec<_> = source.chunks(1_000_000).map(|c| format!("{:x}", Sha256::digest(c))).collect();
    assert_eq!(hashes, want);
    assert!(!engine.task_dir(task.id).exists(), "the task's directory is removed after success");
    assert_eq!(engine.finished_counts(), (1, 0, 0), "one completed");
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn the_queue_keeps_each_limit_and_force_start_overrides_it() {
    let s = setup(10_000_000).await;
    for (i, u) in ["http://f/1.bin", "http://f/2.bin", "http://f/3.bin", "http://f/4.bin"].iter().enumerate()
    {
        s.downloads.serve(u, data(100_000, i as u32));
    }
    let engine = s.engine(s.config().limits(QueueLimits::new().download(1).all(2).per_user(2))).await;
    let t1 = engine.submit(&leech(1, "http://f/1.bin")).await.unwrap();
    let t2 = engine.submit(&leech(1, "http://f/2.bin")).await.unwrap();
    let t3 = engine.submit(&leech(2, "http://f/3.bin")).await.unwrap();
    until("the first download runs", || {
        engine.tasks().iter().any(|v| v.id == t1.id && v.state == TaskState::Downloading)
    })
    .await;
    assert_eq!(s.downloads.active(), 1);
    until("the others say why they wait", || {
        let v = engine.tasks();
        v.iter().find(|v| v.id == t2.id).and_then(|v| v.waiting) == Some(Waiting::Download)
            && v.iter().find(|v| v.id == t3.id).and_then(|v| v.waiting) == Some(Waiting::Turn)
    })
    .await;
    assert_eq!(engine.queue_counts(), (1, 0, 2));
    assert_eq!(state(&s.store, t2.id).await, TaskState::Queued);
    // /forcestart runs the third beside the first.
    assert!(engine.force_start(t3.id));
    until("the forced task downloads", || s.downloads.active() == 2).await;
    // A forced task still holds its slot: with the first done, the second waits on it.
    s.downloads.open("http://f/1.bin");
    engine.wait(t1.id).await;
    until("the second still waits", || {
        engine.tasks().iter().any(|v| v.id == t2.id && v.waiting == Some(Waiting::Download))
    })
    .await;
    s.downloads.open("http://f/3.bin");
    engine.wait(t3.id).await;
    until("the second starts", || {
        engine.tasks().iter().any(|v| v.id == t2.id && v.state == TaskState::Downloading)
    })
    .await;
    s.downloads.open("http://f/2.bin");
    for t in [&t1, &t2, &t3] {
        engine.wait(t.id).await;
        assert_eq!(state(&s.store, t.id).await, TaskState::Completed);
    }
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn under_the_free_disk_threshold_new_downloads_wait() {
    let s = setup(10_000_000).await;
    s.downloads.serve("http://f/x.bin", data(10_000, 3));
    s.downloads.open("http://f/x.bin");
    let engine = s.engine(s.config().limits(QueueLimits::new().min_free_disk(u64::MAX))).await;
    let task = engine.submit(&leech(1, "http://f/x.bin")).await.unwrap();
    until("the task waits for disk", || {
        engine.tasks().first().and_then(|v| v.waiting) == Some(Waiting::Disk)
    })
    .await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Queued, "waiting, not failed");
    assert_eq!(s.downloads.active(), 0);
    // A forced start is the operator's decision to go ahead.
    engine.force_start(task.id);
    engine.wait(task.id).await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Completed);
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn cancel_stops_a_queued_or_downloading_task_and_removes_its_files() {
    let s = setup(10_000_000).await;
    s.downloads.serve("http://f/slow.bin", data(400_000, 4));
    s.downloads.serve("http://f/next.bin", data(400_000, 5));
    let engine = s.engine(s.config().limits(QueueLimits::new().download(1))).await;
    let running = engine.submit(&leech(1, "http://f/slow.bin")).await.unwrap();
    let queued = engine.submit(&leech(1, "http://f/next.bin")).await.unwrap();
    until("it writes", || engine.task_dir(running.id).join("slow.bin").exists()).await;
    assert!(engine.cancel(queued.id));
    engine.wait(queued.id).await;
    assert_eq!(state(&s.store, queued.id).await, TaskState::Cancelled);
    assert!(engine.cancel(running.id));
    engine.wait(running.id).await;
    assert_eq!(state(&s.store, running.id).await, TaskState::Cancelled);
    assert_eq!(s.downloads.cancelled(), 1, "the download was removed from the downloader");
    assert!(!engine.task_dir(running.id).exists(), "its partial files are gone");
    assert!(!engine.cancel(running.id), "a finished task is not running");
    assert!(s.sim.sent().iter().all(|o| o.file.is_none()), "nothing was uploaded");
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_restart_resumes_an_upload_from_the_first_unconfirmed_part() {
    let s = setup(1_000_000).await;
    let source = data(3_000_000, 6);
    // The store as a killed process left it: uploading, part 0 of 3 confirmed.
    let task = s.store.create_task(&leech(1, "http://f/r.bin")).await.unwrap();
    s.store.mark_started(task.id, "g-old").await.unwrap();
    s.store.mark_uploading(task.id).await.unwrap();
    let file = s.store.add_file(task.id, "r.bin", 3_000_000).await.unwrap();
    s.store
        .add_part(file, &Part { index: 0, size: 1_000_000, message_id: Some(9), remote_path: None })
        .await
        .unwrap();
    let config = s.config();
    let dir = config.download_dir.join(task.id.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("r.bin"), &source).unwrap();

    let engine = s.engine(config).await;
    engine.wait(task.id).await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Completed);
    let hashes: Vec<_> =
        s.sim.sent().into_iter().filter_map(|o| o.file.map(|f| (f.name, f.sha256))).collect();
    let want: Vec<_> = source.chunks(1_000_000).skip(1).map(|c| format!("{:x}", Sha256::digest(c))).collect();
    assert_eq!(hashes.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>(), want, "parts 2 and 3 only");
    assert_eq!(hashes[0].0, "r.bin.002");
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_leaves_tasks_as_they_were_and_a_new_engine_finishes_them() {
    let s = setup(10_000_000).await;
    s.downloads.serve("http://f/p.bin", data(200_000, 7));
    let engine = s.engine(s.config()).await;
    let task = engine.submit(&leech(1, "http://f/p.bin")).await.unwrap();
    until("it downloads", || s.downloads.active() == 1).await;
    engine.shutdown().await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Downloading, "not cancelled, not failed");
    s.downloads.open("http://f/p.bin");
    let engine = s.engine(s.config()).await;
    engine.wait(task.id).await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Completed);
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn the_standard_planner_mirrors_through_rclone_and_leeches_with_the_tasks_split() {
    use mltb_engine::{LeechDefaults, MirrorDefaults, StandardPlanner};
    let s = setup(10_000_000).await;
    let remote = tempfile::tempdir().unwrap();
    let client = Client::builder(s.sim.token()).api_url(s.sim.api_url()).build().unwrap();
    let planner = Arc::new(StandardPlanner::new(
        Scheduler::builder().build(client),
        s.store.clone(),
        LeechDefaults::default(),
        MirrorDefaults::default().destination(format!(":local:{}/Mirror", remote.path().display())),
    ));
    let mirrored = data(300_000, 8);
    let leeched = data(250_000, 9);
    s.downloads.serve("http://f/m.bin", mirrored.clone());
    s.downloads.serve("http://f/l.bin", leeched.clone());
    s.downloads.open("http://f/m.bin");
    s.downloads.open("http://f/l.bin");
    let engine = Engine::start(s.store.clone(), s.downloads.clone(), planner, s.config()).await.unwrap();
    let mut mirror = leech(1, "http://f/m.bin");
    mirror.kind = TaskKind::Mirror;
    let mirror = engine.submit(&mirror).await.unwrap();
    let mut small_split = leech(1, "http://f/l.bin");
    small_split.options = serde_json::json!({ "split_size": 100_000 });
    let small_split = engine.submit(&small_split).await.unwrap();
    for t in [&mirror, &small_split] {
        engine.wait(t.id).await;
        let task = s.store.task(t.id).await.unwrap().unwrap();
        assert_eq!(task.state, TaskState::Completed, "task {}: {:?}", t.id, task.error);
    }
    assert_eq!(std::fs::read(remote.path().join("Mirror/m.bin")).unwrap(), mirrored, "the mirrored bytes");
    let files = s.store.task_files(mirror.id).await.unwrap();
    assert!(
        files[0].parts[0].remote_path.as_deref().is_some_and(|p| p.ends_with("Mirror/m.bin")),
        "{files:?}"
    );
    let sizes: Vec<u64> = s
        .sim
        .sent()
        .into_iter()
        .filter_map(|o| o.file)
        .filter(|f| f.name.starts_with("l.bin"))
        .map(|f| f.size)
        .collect();
    assert_eq!(sizes, [100_000, 100_000, 50_000], "the task's own split size");

    let mut too_big = leech(1, "http://f/l.bin");
    too_big.options = serde_json::json!({ "split_size": 60_000_000 });
    let too_big = engine.submit(&too_big).await.unwrap();
    engine.wait(too_big.id).await;
    let task = s.store.task(too_big.id).await.unwrap().unwrap();
    assert_eq!(task.state, TaskState::Failed);
    assert!(
        task.error.as_deref().is_some_and(|e| e.contains("split size") && e.contains("60000000")),
        "{:?}",
        task.error
    );
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_link_the_egress_policy_refuses_creates_no_task() {
    let s = setup(10_000_000).await;
    let policy = mltb_engine::EgressPolicy::builder().allow("127.0.0.1").build().unwrap();
    let engine = s.engine(s.config().egress(Arc::new(policy))).await;
    for url in [
        "http://127.0.0.2:8080/a.iso",
        "http://2130706434/a.iso",
        "http://[::ffff:10.0.0.1]/a",
        "file:///etc/passwd",
    ] {
        let err = engine.submit(&leech(1, url)).await.expect_err(url);
        assert!(err.to_string().contains("refused") || err.to_string().contains("scheme"), "{url}: {err}");
    }
    assert!(s.store.unfinished_tasks().await.unwrap().is_empty(), "no task was created");
    assert_eq!(s.downloads.active() + s.downloads.cancelled(), 0, "nothing reached the downloader");
    s.downloads.serve("http://127.0.0.1:9/ok.bin", data(1000, 1));
    s.downloads.open("http://127.0.0.1:9/ok.bin");
    let task = engine.submit(&leech(1, "http://127.0.0.1:9/ok.bin")).await.expect("the allowlisted host");
    engine.wait(task.id).await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Completed);
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn names_from_the_network_are_made_safe_before_they_are_uploaded() {
    let s = setup(10_000_000).await;
    let engine = s.engine(s.config()).await;
    let cases = [("http://f/NUL.txt", "_NUL.txt"), ("http://f/cat\u{1}\u{202e}gpj.exe", "cat__gpj.exe")];
    for (seed, (url, want)) in cases.into_iter().enumerate() {
        s.downloads.serve(url, data(1000, (20 + seed as u32) << 20));
        s.downloads.open(url);
        let task = engine.submit(&leech(1, url)).await.unwrap();
        engine.wait(task.id).await;
        assert_eq!(state(&s.store, task.id).await, TaskState::Completed);
        let files = s.store.task_files(task.id).await.unwrap();
        assert_eq!(files[0].path, want, "the stored name");
        let sent = s.sim.sent().into_iter().filter_map(|o| o.file).next_back().unwrap();
        assert_eq!(sent.name, want, "the name Telegram got");
    }
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn cancel_mid_upload_stops_sending_and_removes_the_files() {
    // The simulator's flood limit (1 message a second after a burst of 3) keeps the
    // upload of 8 parts going long enough to cancel it halfway.
    let s = setup(100_000).await;
    s.downloads.serve("http://f/parts.bin", data(800_000, 11 << 20));
    s.downloads.open("http://f/parts.bin");
    let engine = s.engine(s.config()).await;
    let task = engine.submit(&leech(1, "http://f/parts.bin")).await.unwrap();
    let sent = || s.sim.sent().iter().filter(|o| o.file.is_some()).count();
    until("a part is sent", || sent() >= 1).await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Uploading);
    assert!(engine.cancel(task.id));
    engine.wait(task.id).await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Cancelled);
    assert_eq!(engine.finished_counts(), (0, 0, 1), "one cancelled");
    assert!(!engine.task_dir(task.id).exists(), "its files are gone");
    let at_cancel = sent();
    assert!(at_cancel < 8, "the upload stopped before the end ({at_cancel} of 8 parts)");
    engine.shutdown().await;
    assert_eq!(sent(), at_cancel, "nothing was sent after the cancel");
    s.sim.shutdown().await;
}

#[tokio::test]
async fn an_upload_shows_its_speed_and_progress_in_the_tasks_view_and_the_store() {
    // Paced by the simulator's flood limit (1 message a second after a burst of 3), 8
    // parts take seconds to go out: the view shows their speed, as it shows aria2's
    // while downloading (it showed 0 B/s through every upload), and the store holds
    // them for other instances.
    let s = setup(100_000).await;
    s.downloads.serve("http://f/speed.bin", data(800_000, 12 << 20));
    s.downloads.open("http://f/speed.bin");
    let engine = s.engine(s.config()).await;
    let task = engine.submit(&leech(1, "http://f/speed.bin")).await.unwrap();
    let speed = || {
        engine
            .tasks()
            .iter()
            .find(|v| v.id == task.id && v.state == TaskState::Uploading)
            .map_or(0, |v| v.speed)
    };
    until("a speed is shown while uploading", || speed() > 0).await;
    let shown = speed();
    assert!(shown <= 4 * 800_000, "{shown} B/s: more than the whole file in the quarter second a rate spans");
    // The store holds the upload's figures for other instances' boards, not the
    // download's last ones (all 800,000 bytes done).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let t = s.store.task(task.id).await.unwrap().unwrap();
        let p = t.progress;
        if t.state == TaskState::Uploading && p.done > 0 && p.done < 800_000 && p.speed > 0 {
            assert_eq!(p.total, Some(800_000), "{p:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the store shows the upload's progress: {p:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine.wait(task.id).await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Completed);
    engine.shutdown().await;
    s.sim.shutdown().await;
}

/// An uploader that confirms every file at once and hands back a share link, as
/// `rclone link` does for remotes that have links.
#[derive(Debug)]
struct Sharing;

#[async_trait::async_trait]
impl Uploader for Sharing {
    async fn upload(
        &self,
        request: &mltb_engine::UploadRequest,
        _context: mltb_engine::UploadContext<'_>,
    ) -> mltb_engine::Result<mltb_engine::UploadOutcome> {
        let mut outcome = mltb_engine::UploadOutcome::default();
        outcome.link = Some(format!("https://share.example/{}", request.task));
        Ok(outcome)
    }
}

#[async_trait::async_trait]
impl TaskPlanner for Sharing {
    async fn uploader(&self, _task: &Task) -> mltb_engine::Result<Arc<dyn Uploader>> {
        Ok(Arc::new(Sharing))
    }
}

#[tokio::test]
async fn the_share_link_an_uploader_returns_is_recorded_with_the_task() {
    let s = setup(1_000_000).await;
    s.downloads.serve("http://files/b.iso", data(10_000, 2));
    s.downloads.open("http://files/b.iso");
    let engine =
        Engine::start(s.store.clone(), s.downloads.clone(), Arc::new(Sharing), s.config()).await.unwrap();
    let task = engine.submit(&leech(1, "http://files/b.iso")).await.unwrap();
    engine.wait(task.id).await;
    let stored = s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Completed);
    assert_eq!(stored.link, Some(format!("https://share.example/{}", task.id)));
    engine.shutdown().await;
    s.sim.shutdown().await;
}

/// An uploader that copies each file it is given into `into`, under its relative name:
/// what a destination would receive.
#[derive(Debug)]
struct Collect {
    into: PathBuf,
    /// The task directory every uploaded path must be inside.
    downloads: PathBuf,
}

#[async_trait::async_trait]
impl Uploader for Collect {
    async fn upload(
        &self,
        request: &mltb_engine::UploadRequest,
        _context: mltb_engine::UploadContext<'_>,
    ) -> mltb_engine::Result<mltb_engine::UploadOutcome> {
        for file in &request.files {
            assert!(
                file.path.starts_with(&self.downloads),
                "{} is outside the downloads",
                file.path.display()
            );
            let meta = std::fs::symlink_metadata(&file.path).unwrap();
            assert!(meta.is_file(), "{} is not a regular file", file.path.display());
            let to = self.into.join(&file.relative);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&file.path, &to).unwrap();
        }
        Ok(mltb_engine::UploadOutcome::default())
    }
}

#[async_trait::async_trait]
impl TaskPlanner for Collect {
    async fn uploader(&self, _task: &Task) -> mltb_engine::Result<Arc<dyn Uploader>> {
        Ok(Arc::new(Collect { into: self.into.clone(), downloads: self.downloads.clone() }))
    }
}

/// Runs 7-Zip for a test, in `cwd`, with `stdin` as its input.
fn seven_zip(cwd: &std::path::Path, args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("7z")
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("7z is needed for the -z/-e tests: apt-get install p7zip-full (scripts/test installs it)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "7z {args:?}");
}

/// Files relative to `root`, with their bytes, symlinks included (as `-> target`).
fn tree(root: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&path).unwrap().display()).into_bytes());
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

struct Archives {
    s: Setup,
    out: tempfile::TempDir,
    engine: Engine<SqliteBackend>,
    work: tempfile::TempDir,
}

async fn archives(config: impl FnOnce(EngineConfig) -> EngineConfig) -> Archives {
    let s = setup(1_000_000).await;
    let out = tempfile::tempdir().unwrap();
    let planner =
        Arc::new(Collect { into: out.path().to_path_buf(), downloads: s.dir.path().join("downloads") });
    let engine =
        Engine::start(s.store.clone(), s.downloads.clone(), planner, config(s.config())).await.unwrap();
    Archives { s, out, engine, work: tempfile::tempdir().unwrap() }
}

impl Archives {
    /// Serves the file `name` made in the work dir at `http://f/<name>`.
    fn serve(&self, name: &str) {
        let url = format!("http://f/{name}");
        self.s.downloads.serve(&url, std::fs::read(self.work.path().join(name)).unwrap());
        self.s.downloads.open(&url);
    }

    async fn run(&self, name: &str, options: serde_json::Value) -> Task {
        let mut task = leech(1, &format!("http://f/{name}"));
        task.options = options;
        let task = self.engine.submit(&task).await.unwrap();
        self.engine.wait(task.id).await;
        self.s.store.task(task.id).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn extract_unpacks_an_encrypted_zip_and_uploads_its_files_in_a_folder_named_after_it() {
    let a = archives(|c| c).await;
    let src = a.work.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello").unwrap();
    std::fs::write(src.join("sub/b.bin"), data(300_000, 31)).unwrap();
    seven_zip(&src, &["a", "-tzip", "-p", "-mem=AES256", "../pack.zip", "a.txt", "sub"], "pw\npw\n");
    a.serve("pack.zip");

    let task = a.run("pack.zip", serde_json::json!({ "extract": { "password": "pw" } })).await;
    assert_eq!(task.state, TaskState::Completed, "{:?}", task.error);
    let got = tree(a.out.path());
    let want = tree(&src).into_iter().map(|(k, v)| (format!("pack/{k}"), v)).collect();
    assert_eq!(got, want, "the archive's files, under pack/");
    let stored: Vec<String> =
        a.s.store.task_files(task.id).await.unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(stored, ["pack/a.txt", "pack/sub/b.bin"]);
    assert!(!a.engine.task_dir(task.id).exists());

    let wrong = a.run("pack.zip", serde_json::json!({ "extract": { "password": "nope" } })).await;
    assert_eq!(wrong.state, TaskState::Failed);
    let error = wrong.error.unwrap();
    assert!(error.contains("extracting pack.zip: wrong password") && !error.contains("nope"), "{error}");
    let none = a.run("pack.zip", serde_json::json!({ "extract": {} })).await;
    assert!(
        none.error.as_deref().is_some_and(|e| e.contains("give its password as -e PASSWORD")),
        "{none:?}"
    );
    assert_eq!(a.engine.finished_counts(), (1, 2, 0), "one completed, two failed");
    a.engine.shutdown().await;
}

#[tokio::test]
async fn extract_keeps_nothing_an_archive_points_outside_the_task_directory() {
    let a = archives(|c| c).await;
    // `../../escape.txt`, `/abs.txt`, a symlink to /etc and a file beneath it.
    let script = r#"
import zipfile, sys
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('../../escape.txt', 'bad')
    z.writestr('/abs.txt', 'abs')
    z.writestr('ok/fine.txt', 'ok')
    link = zipfile.ZipInfo('link')
    link.external_attr = 0o120777 << 16
    z.writestr(link, '/etc')
"#;
    let made = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(a.work.path().join("evil.zip"))
        .status()
        .expect("python3 makes the hostile zip");
    assert!(made.success());
    a.serve("evil.zip");
    let task = a.run("evil.zip", serde_json::json!({ "extract": {} })).await;
    assert_eq!(task.state, TaskState::Completed, "{:?}", task.error);
    let got = tree(a.out.path());
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        ["evil/abs.txt", "evil/escape.txt", "evil/ok/fine.txt"],
        "only regular files, inside the folder"
    );
    assert!(
        !a.s.dir.path().join("escape.txt").exists() && !a.s.dir.path().join("downloads/escape.txt").exists()
    );
    a.engine.shutdown().await;
}

#[tokio::test]
async fn extract_joins_split_volumes_unpacks_tarballs_and_keeps_other_files() {
    let a = archives(|c| c).await;
    let src = a.work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.bin"), data(700_000, 41)).unwrap();
    // A folder download: a 7z split into 3 volumes, a .tar.gz, and a plain file.
    let folder = a.work.path().join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    seven_zip(&src, &["a", "-t7z", "-mx=0", "-v300k", "../folder/vol.7z", "big.bin"], "");
    seven_zip(&src, &["a", "-ttar", "../data.tar", "big.bin"], "");
    seven_zip(a.work.path(), &["a", "-tgzip", "folder/data.tar.gz", "data.tar"], "");
    std::fs::write(folder.join("notes.txt"), b"plain").unwrap();
    let mut volumes: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    volumes.sort();
    assert_eq!(volumes, ["data.tar.gz", "notes.txt", "vol.7z.001", "vol.7z.002", "vol.7z.003"]);

    // The scripted downloader writes one file per URL (`marker`); the folder is put
    // beside it in the task's directory before the download finishes, as a torrent's
    // files would be.
    let engine = &a.engine;
    a.s.downloads.serve("http://f/marker", b"m".to_vec());
    let mut task = leech(1, "http://f/marker");
    task.options = serde_json::json!({ "extract": {} });
    let task = engine.submit(&task).await.unwrap();
    let dir = engine.task_dir(task.id);
    std::fs::create_dir_all(dir.join("folder")).unwrap();
    for (name, bytes) in tree(&folder) {
        std::fs::write(dir.join("folder").join(name), bytes).unwrap();
    }
    a.s.downloads.open("http://f/marker");
    engine.wait(task.id).await;
    let stored = a.s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Completed, "{:?}", stored.error);
    let got = tree(a.out.path());
    let big = std::fs::read(src.join("big.bin")).unwrap();
    let want: std::collections::BTreeMap<String, Vec<u8>> = [
        ("folder/data/big.bin".to_string(), big.clone()),
        ("folder/notes.txt".to_string(), b"plain".to_vec()),
        ("folder/vol/big.bin".to_string(), big),
        ("marker".to_string(), b"m".to_vec()),
    ]
    .into_iter()
    .collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    assert_eq!(got, want);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_download_named_like_the_engines_own_entries_is_renamed_and_uploaded() {
    // A link (or a torrent) whose name is the engine's archive output folder's: left as
    // it was, `-z` took it for a finished zip step and the upload for a folder of its own.
    let a = archives(|c| c).await;
    let bytes = data(300_000, 77);
    std::fs::write(a.work.path().join(".mltb-out"), &bytes).unwrap();
    a.serve(".mltb-out");
    let plain = a.run(".mltb-out", serde_json::json!({})).await;
    assert_eq!(plain.state, TaskState::Completed, "{:?}", plain.error);
    assert_eq!(tree(a.out.path()).get("_.mltb-out"), Some(&bytes));
    std::fs::remove_file(a.out.path().join("_.mltb-out")).unwrap();

    let zipped = a.run(".mltb-out", serde_json::json!({ "zip": { "password": "pw" } })).await;
    assert_eq!(zipped.state, TaskState::Completed, "{:?}", zipped.error);
    assert_eq!(
        tree(a.out.path()).keys().collect::<Vec<_>>(),
        ["_.mltb-out.zip"],
        "zipped, with the password"
    );
    let check = tempfile::tempdir().unwrap();
    seven_zip(
        check.path(),
        &["x", "-ounpacked", &a.out.path().join("_.mltb-out.zip").display().to_string()],
        "pw\n",
    );
    assert_eq!(std::fs::read(check.path().join("unpacked/_.mltb-out")).unwrap(), bytes);
    a.engine.shutdown().await;
}

#[tokio::test]
async fn zip_bundles_the_download_into_one_encrypted_zip() {
    let a = archives(|c| c).await;
    let bytes = data(500_000, 51);
    std::fs::write(a.work.path().join("movie.mkv"), &bytes).unwrap();
    a.serve("movie.mkv");
    let task = a.run("movie.mkv", serde_json::json!({ "zip": { "password": "s3cret" } })).await;
    assert_eq!(task.state, TaskState::Completed, "{:?}", task.error);
    assert_eq!(tree(a.out.path()).keys().collect::<Vec<_>>(), ["movie.mkv.zip"]);
    let check = tempfile::tempdir().unwrap();
    seven_zip(
        check.path(),
        &["x", "-ounpacked", &a.out.path().join("movie.mkv.zip").display().to_string()],
        "s3cret\n",
    );
    assert_eq!(std::fs::read(check.path().join("unpacked/movie.mkv")).unwrap(), bytes);
    // Without the password the zip does not open.
    let denied = std::process::Command::new("7z")
        .args(["x", "-pwrong", "-ono", &a.out.path().join("movie.mkv.zip").display().to_string()])
        .current_dir(check.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!denied.success(), "the zip is encrypted");
    a.engine.shutdown().await;
}

#[tokio::test]
async fn extract_is_refused_when_the_unpacked_size_would_eat_the_free_disk_reserve() {
    let work = tempfile::tempdir().unwrap();
    // 400 MB of zeros, a few hundred KiB zipped: what a zip bomb looks like, mildly.
    let zeros = work.path().join("zeros.bin");
    std::fs::File::create(&zeros).unwrap().set_len(400 << 20).unwrap();
    seven_zip(work.path(), &["a", "-tzip", "-mx=1", "bomb.zip", "zeros.bin"], "");
    std::fs::remove_file(&zeros).unwrap();
    let probe = tempfile::tempdir().unwrap();
    let free = fs_free(probe.path());
    // Room for the download (and 100 MB of slack), not for what it unpacks to.
    let a =
        archives(|c| c.limits(QueueLimits::default().min_free_disk(free.saturating_sub(200 << 20)))).await;
    std::fs::copy(work.path().join("bomb.zip"), a.work.path().join("bomb.zip")).unwrap();
    a.serve("bomb.zip");
    let task = a.run("bomb.zip", serde_json::json!({ "extract": {} })).await;
    assert_eq!(task.state, TaskState::Failed);
    let error = task.error.unwrap();
    assert!(
        error.contains("not enough disk space") && error.contains("extracting needs 419430400 bytes"),
        "{error}"
    );
    assert!(tree(a.out.path()).is_empty(), "nothing was uploaded");
    a.engine.shutdown().await;
}

fn fs_free(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn a_shutdown_while_zipping_leaves_the_task_uploading_and_the_next_engine_zips_it_again() {
    let a = archives(|c| c).await;
    let bytes = data(60 << 20, 61);
    a.s.downloads.serve("http://f/large.bin", bytes.clone());
    a.s.downloads.open("http://f/large.bin");
    let mut task = leech(1, "http://f/large.bin");
    task.options = serde_json::json!({ "zip": {} });
    let task = a.engine.submit(&task).await.unwrap();
    let zipping = || {
        a.engine
            .tasks()
            .iter()
            .any(|v| v.id == task.id && v.archiving == Some(mltb_engine::Archiving::Zipping))
    };
    until("7-Zip is zipping", zipping).await;
    a.engine.shutdown().await;
    assert_eq!(state(&a.s.store, task.id).await, TaskState::Uploading, "not cancelled, not failed");
    assert!(tree(a.out.path()).is_empty(), "nothing was uploaded yet");
    let planner =
        Arc::new(Collect { into: a.out.path().to_path_buf(), downloads: a.s.dir.path().join("downloads") });
    let engine =
        Engine::start(a.s.store.clone(), a.s.downloads.clone(), planner, a.s.config()).await.unwrap();
    engine.wait(task.id).await;
    assert_eq!(state(&a.s.store, task.id).await, TaskState::Completed);
    let check = tempfile::tempdir().unwrap();
    seven_zip(
        check.path(),
        &["x", "-ounpacked", &a.out.path().join("large.bin.zip").display().to_string()],
        "",
    );
    assert!(
        std::fs::read(check.path().join("unpacked/large.bin")).unwrap() == bytes,
        "the zip holds the download"
    );
    engine.shutdown().await;
}

/// A leech that gathers `urls` (`-m`) into the folder `folder`.
fn gathering(folder: &str, urls: &[&str]) -> NewTask {
    let mut options = mltb_engine::TaskOptions::default();
    options.links =
        urls.iter().map(|u| mltb_engine::Link::new(mltb_engine::LinkSource::Url((*u).into()))).collect();
    NewTask { name: Some(folder.into()), options: options.to_json(), ..leech(1, urls[0]) }
}

impl Scripted {
    /// How many downloads of `url` were started.
    fn started(&self, url: &str) -> usize {
        self.jobs.lock().unwrap().values().filter(|(u, _)| u == url).count()
    }
}

#[tokio::test]
async fn a_gathering_task_downloads_its_links_in_turn_into_one_folder_and_uploads_them_together() {
    let s = setup(10_000_000).await;
    let (one, two, three) = (data(300_000, 11), data(200_000, 12), data(100_000, 13));
    s.downloads.serve("http://f/x/a.bin", one.clone());
    s.downloads.serve("http://f/y/a.bin", two.clone());
    s.downloads.serve("http://f/b.bin", three.clone());
    s.downloads.open("http://f/x/a.bin");
    s.downloads.open("http://f/y/a.bin");
    let engine = s.engine(s.config()).await;
    let task = engine
        .submit(&gathering("../trip", &["http://f/x/a.bin", "http://f/y/a.bin", "http://f/b.bin"]))
        .await
        .unwrap();
    // The progress shown counts the links done before the current one.
    until("the third link shows on top of the first two", || {
        engine.tasks().iter().any(|v| {
            v.id == task.id && v.state == TaskState::Downloading && v.total == 600_000 && v.done > 500_000
        })
    })
    .await;
    s.downloads.open("http://f/b.bin");
    engine.wait(task.id).await;
    let stored = s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.name.as_deref()), (TaskState::Completed, Some("../trip")));
    assert!(stored.gid.as_deref().is_some_and(|g| g.starts_with("2/")), "{:?}", stored.gid);
    let files = s.store.task_files(task.id).await.unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["_.._trip/a (1).bin", "_.._trip/a.bin", "_.._trip/b.bin"]);
    let mut sent: Vec<(String, String)> =
        s.sim.sent().into_iter().filter_map(|o| o.file.map(|f| (f.name, f.sha256))).collect();
    sent.sort();
    let hash = |d: &[u8]| format!("{:x}", Sha256::digest(d));
    assert_eq!(
        sent,
        [("a (1).bin".into(), hash(&two)), ("a.bin".into(), hash(&one)), ("b.bin".into(), hash(&three))]
    );
    assert!(!engine.task_dir(task.id).exists());
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_restart_mid_gathering_downloads_no_link_twice() {
    let s = setup(10_000_000).await;
    s.downloads.serve("http://f/one.bin", data(100_000, 21));
    s.downloads.serve("http://f/two.bin", data(100_000, 22));
    s.downloads.serve("http://f/three.bin", data(100_000, 23));
    s.downloads.open("http://f/one.bin");
    let engine = s.engine(s.config()).await;
    let task = engine
        .submit(&gathering("set", &["http://f/one.bin", "http://f/two.bin", "http://f/three.bin"]))
        .await
        .unwrap();
    until("the second link downloads", || s.downloads.started("http://f/two.bin") == 1).await;
    engine.shutdown().await;
    let stored = s.store.task(task.id).await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Downloading);
    assert!(
        stored.gid.as_deref().is_some_and(|g| g.starts_with("1/")),
        "the link is recorded: {:?}",
        stored.gid
    );

    s.downloads.open("http://f/two.bin");
    s.downloads.open("http://f/three.bin");
    let engine = s.engine(s.config()).await;
    engine.wait(task.id).await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Completed);
    for url in ["http://f/one.bin", "http://f/two.bin", "http://f/three.bin"] {
        assert_eq!(s.downloads.started(url), 1, "{url} was downloaded once");
    }
    let files = s.store.task_files(task.id).await.unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["set/one.bin", "set/three.bin", "set/two.bin"]);
    engine.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn cancel_mid_gathering_stops_the_current_download_and_removes_every_link() {
    let s = setup(10_000_000).await;
    s.downloads.serve("http://f/g1.bin", data(100_000, 31));
    s.downloads.serve("http://f/g2.bin", data(100_000, 32));
    s.downloads.open("http://f/g1.bin");
    let engine = s.engine(s.config()).await;
    let task = engine.submit(&gathering("g", &["http://f/g1.bin", "http://f/g2.bin"])).await.unwrap();
    until("the second link downloads", || s.downloads.started("http://f/g2.bin") == 1).await;
    assert!(engine.cancel(task.id));
    engine.wait(task.id).await;
    assert_eq!(state(&s.store, task.id).await, TaskState::Cancelled);
    assert_eq!(s.downloads.cancelled(), 1, "the second link's download was removed");
    assert!(!engine.task_dir(task.id).exists());
    assert!(s.sim.sent().iter().all(|o| o.file.is_none()), "nothing was uploaded");
    engine.shutdown().await;
    s.sim.shutdown().await;
}

/// Records which instance uploaded which task.
#[derive(Debug)]
struct Recorder {
    instance: &'static str,
    uploads: Arc<Mutex<Vec<(&'static str, i64)>>>,
}

#[async_trait::async_trait]
impl Uploader for Recorder {
    async fn upload(
        &self,
        request: &mltb_engine::UploadRequest,
        _context: mltb_engine::UploadContext<'_>,
    ) -> mltb_engine::Result<mltb_engine::UploadOutcome> {
        if let Some(f) = request.files.iter().find(|f| !f.path.exists()) {
            return Err(
                mltb_engine::ErrorKind::NotFound { what: format!("{} to upload", f.path.display()) }.into()
            );
        }
        self.uploads.lock().unwrap().push((self.instance, request.task));
        Ok(mltb_engine::UploadOutcome::default())
    }
}

struct Recording(Arc<Recorder>);

#[async_trait::async_trait]
impl TaskPlanner for Recording {
    async fn uploader(&self, _task: &Task) -> mltb_engine::Result<Arc<dyn Uploader>> {
        Ok(self.0.clone())
    }
}

/// Instances `a` and `b` on one SQLite file, each with its own downloads, download
/// directory and uploads (recorded together).
struct Pair {
    dir: tempfile::TempDir,
    uploads: Arc<Mutex<Vec<(&'static str, i64)>>>,
}

impl Pair {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), uploads: Arc::default() }
    }

    async fn store(&self, instance: &str) -> Arc<SqliteStore> {
        let config = StoreConfig::new().instance(instance);
        Arc::new(SqliteStore::open_sqlite(self.dir.path().join("mltb.db"), config).await.unwrap())
    }

    async fn engine(
        &self,
        instance: &'static str,
        store: Arc<SqliteStore>,
        downloads: Arc<Scripted>,
        cluster: mltb_engine::Cluster,
    ) -> Engine<SqliteBackend> {
        let planner = Recording(Arc::new(Recorder { instance, uploads: self.uploads.clone() }));
        self.engine_with(instance, store, downloads, cluster, Arc::new(planner)).await
    }

    async fn engine_with(
        &self,
        instance: &'static str,
        store: Arc<SqliteStore>,
        downloads: Arc<Scripted>,
        cluster: mltb_engine::Cluster,
        planner: Arc<dyn TaskPlanner>,
    ) -> Engine<SqliteBackend> {
        self.engine_in(instance, store, downloads, cluster, planner).await
    }

    /// With the download directory `dir` (shared where two engines name the same).
    async fn engine_in(
        &self,
        dir: &str,
        store: Arc<SqliteStore>,
        downloads: Arc<Scripted>,
        cluster: mltb_engine::Cluster,
        planner: Arc<dyn TaskPlanner>,
    ) -> Engine<SqliteBackend> {
        let config = EngineConfig::new(self.dir.path().join(dir))
            .poll_interval(Duration::from_millis(20))
            .cluster(cluster);
        Engine::start(store, downloads, planner, config).await.unwrap()
    }
}

#[tokio::test]
async fn two_instances_share_the_tasks_and_each_is_done_once() {
    let pair = Pair::new();
    let urls: Vec<String> = (0..10).map(|i| format!("http://f/{i}.bin")).collect();
    let (da, db) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    for (i, u) in urls.iter().enumerate() {
        da.serve(u, data(40_000, i as u32));
        db.serve(u, data(40_000, i as u32));
    }
    let cluster = mltb_engine::Cluster::new(Duration::from_millis(600), 5);
    let (sa, sb) = (pair.store("a").await, pair.store("b").await);
    let a = pair.engine("a", sa.clone(), da.clone(), cluster).await;
    let b = pair.engine("b", sb.clone(), db.clone(), cluster).await;
    for u in &urls {
        let t = a.submit(&leech(1, u)).await.unwrap();
        assert_eq!(t.owner, None, "a submitted task is free for any instance to claim");
    }
    // Each claims as many as it may run (5); the downloads wait until opened.
    until("both instances run five tasks", || a.tasks().len() == 5 && b.tasks().len() == 5).await;
    for u in &urls {
        da.open(u);
        db.open(u);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let tasks = sa.tasks_with_files(mltb_store::TaskFilter::Recent(20)).await.unwrap();
        if tasks.iter().filter(|t| t.task.state == TaskState::Completed).count() == 10 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the ten tasks end: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut uploads = pair.uploads.lock().unwrap().clone();
    uploads.sort_by_key(|u| u.1);
    assert_eq!(uploads.iter().map(|u| u.1).collect::<Vec<_>>(), (1..=10).collect::<Vec<i64>>(), "each once");
    let by_a = uploads.iter().filter(|u| u.0 == "a").count();
    assert_eq!((by_a, uploads.len() - by_a), (5, 5), "the work is spread");
    assert_eq!(da.active() + db.active(), 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_dead_instances_task_is_taken_over_and_a_revived_one_stops_without_writing() {
    let pair = Pair::new();
    let url = "http://f/big.bin";
    let (da, db) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    da.serve(url, data(80_000, 7));
    db.serve(url, data(80_000, 7));
    let lease = Duration::from_millis(300);
    let sa = pair.store("a").await;
    let a = pair.engine("a", sa.clone(), da.clone(), mltb_engine::Cluster::new(lease, 4)).await;
    let task = a.submit(&leech(1, url)).await.unwrap();
    until("a runs the task", || a.tasks().iter().any(|v| v.id == task.id && v.done > 0)).await;
    // `a` dies: nothing renews its lease; `b` takes the task over once it runs out.
    a.shutdown().await;
    let sb = pair.store("b").await;
    let b = pair.engine("b", sb.clone(), db.clone(), mltb_engine::Cluster::new(lease, 4)).await;
    until("b takes the task over", || b.tasks().iter().any(|v| v.id == task.id)).await;
    let row = sb.task(task.id).await.unwrap().unwrap();
    assert_eq!((row.owner.as_deref(), row.fence), (Some("b"), 2));
    // What `a` would still write is refused.
    let stale = sa.update_progress(task.id, mltb_store::Progress { done: 1, total: None, speed: 0 }).await;
    assert!(matches!(stale, Err(mltb_store::Error::Fenced { .. })), "{stale:?}");
    db.open(url);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sb.task(task.id).await.unwrap().unwrap().state != TaskState::Completed {
        assert!(tokio::time::Instant::now() < deadline, "b finishes the task");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*pair.uploads.lock().unwrap(), [("b", task.id)], "uploaded once, by b");
    b.shutdown().await;

    // `c` runs a task when another process of the same instance id starts and adopts it
    // (new fence): `c` finds its lease gone, stops without writing, and cleans up here.
    let dc = Arc::new(Scripted::default());
    dc.serve("http://f/c.bin", data(80_000, 9));
    let sc = pair.store("c").await;
    let c = pair.engine("c", sc.clone(), dc.clone(), mltb_engine::Cluster::new(lease, 4)).await;
    let t = c.submit(&leech(1, "http://f/c.bin")).await.unwrap();
    until("c runs it", || c.tasks().iter().any(|v| v.id == t.id && v.done > 0)).await;
    let again = pair.store("c").await;
    assert_eq!(again.adopt_tasks(Duration::from_secs(60)).await.unwrap()[0].task.fence, 2);
    until("c stops the task it lost", || c.tasks().is_empty()).await;
    assert_eq!(dc.cancelled(), 1, "its download is removed");
    assert!(!c.task_dir(t.id).exists(), "its files here are removed");
    let row = sc.task(t.id).await.unwrap().unwrap();
    assert_eq!((row.state, row.fence), (TaskState::Downloading, 2), "the store is left to the new holder");
    assert_eq!(c.finished_counts(), (0, 0, 0), "not counted as an end here");
    c.shutdown().await;
}

/// Several instances on one download directory (a shared filesystem): an instance that
/// lost a task stops its download there but leaves its files, which the new holder goes
/// on with.
#[tokio::test]
async fn a_lost_task_keeps_its_files_where_the_download_directory_is_shared() {
    let pair = Pair::new();
    let lease = Duration::from_millis(300);
    let planner = |instance| -> Arc<dyn TaskPlanner> {
        Arc::new(Recording(Arc::new(Recorder { instance, uploads: pair.uploads.clone() })))
    };
    let (dc, dd) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    dc.serve("http://f/c.bin", data(80_000, 9));
    let sc = pair.store("c").await;
    let cluster = mltb_engine::Cluster::new(lease, 4);
    let c = pair.engine_in("shared", sc.clone(), dc.clone(), cluster, planner("c")).await;
    let t = c.submit(&leech(1, "http://f/c.bin")).await.unwrap();
    until("c runs it", || c.tasks().iter().any(|v| v.id == t.id && v.done > 0)).await;
    // `d` uses the same directory; then the task moves away from `c` (adopted under a new
    // fence, as by a restarted `c`).
    let d = pair.engine_in("shared", pair.store("d").await, dd, cluster, planner("d")).await;
    let again = pair.store("c").await;
    assert_eq!(again.adopt_tasks(Duration::from_secs(60)).await.unwrap()[0].task.fence, 2);
    until("c stops the task it lost", || c.tasks().is_empty()).await;
    assert_eq!(dc.cancelled(), 1, "its download is removed");
    assert!(c.task_dir(t.id).exists(), "its files stay for the new holder");
    c.shutdown().await;
    d.shutdown().await;
}

/// With several instances, every instance sees every unfinished task (`all_tasks`), and
/// cancels any of them: one another instance runs is stopped by it at its next renewal
/// (its download and files go); one that waits for an instance is cancelled at once.
#[tokio::test]
async fn a_task_is_cancelled_from_another_instance() {
    let pair = Pair::new();
    let urls = ["http://f/one.bin", "http://f/two.bin", "http://f/three.bin"];
    let (da, db) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    for (i, u) in urls.iter().enumerate() {
        da.serve(u, data(40_000, i as u32));
        db.serve(u, data(40_000, i as u32));
    }
    let cluster = mltb_engine::Cluster::new(Duration::from_millis(300), 1);
    let (sa, sb) = (pair.store("a").await, pair.store("b").await);
    let a = pair.engine("a", sa.clone(), da.clone(), cluster).await;
    let one = a.submit(&leech(1, urls[0])).await.unwrap();
    until("a runs the first task", || a.tasks().iter().any(|v| v.id == one.id && v.done > 0)).await;
    let b = pair.engine("b", sb.clone(), db.clone(), cluster).await;
    let two = a.submit(&leech(1, urls[1])).await.unwrap();
    until("b runs the second task", || b.tasks().iter().any(|v| v.id == two.id && v.done > 0)).await;
    // Both instances are full: the third waits for one.
    let three = a.submit(&leech(1, urls[2])).await.unwrap();
    let ids = |views: Vec<mltb_engine::TaskView>| views.iter().map(|v| v.id).collect::<Vec<_>>();
    until("b sees every task", || ids(b.all_tasks()) == [one.id, two.id, three.id]).await;
    assert_eq!(ids(b.tasks()), [two.id], "b runs only its own");
    until("b sees a's progress", || b.all_tasks().iter().any(|v| v.id == one.id && v.done > 0)).await;

    assert!(b.cancel_anywhere(three.id).await.unwrap(), "a task no instance holds");
    assert_eq!(state(&sb, three.id).await, TaskState::Cancelled, "cancelled at once");
    assert!(b.cancel_anywhere(one.id).await.unwrap(), "a task a runs");
    a.wait(one.id).await;
    assert_eq!(state(&sa, one.id).await, TaskState::Cancelled);
    assert_eq!(da.cancelled(), 1, "a removed its download");
    assert!(!a.task_dir(one.id).exists(), "and its files");
    assert!(!b.cancel_anywhere(one.id).await.unwrap(), "a finished task is not found");
    assert!(!a.cancel_anywhere(999).await.unwrap());

    db.open(urls[1]);
    until("the second task completes", || b.tasks().is_empty()).await;
    assert_eq!(state(&sb, two.id).await, TaskState::Completed);
    assert_eq!(*pair.uploads.lock().unwrap(), [("b", two.id)], "only the second was uploaded");
    until("no task is left anywhere", || a.all_tasks().is_empty() && b.all_tasks().is_empty()).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// An uploader that never finishes: it waits until its task is stopped.
#[derive(Debug)]
struct Stalled;

#[async_trait::async_trait]
impl Uploader for Stalled {
    async fn upload(
        &self,
        _request: &mltb_engine::UploadRequest,
        context: mltb_engine::UploadContext<'_>,
    ) -> mltb_engine::Result<mltb_engine::UploadOutcome> {
        context.cancel.cancelled().await;
        Err(mltb_engine::ErrorKind::Cancelled.into())
    }
}

#[async_trait::async_trait]
impl TaskPlanner for Stalled {
    async fn uploader(&self, _task: &Task) -> mltb_engine::Result<Arc<dyn Uploader>> {
        Ok(Arc::new(Stalled))
    }
}

/// A task taken over in the middle of its upload, by an instance whose download
/// directory is not the dead one's, downloads its files again there and then uploads.
#[tokio::test]
async fn a_task_taken_over_mid_upload_downloads_again_where_the_files_are_not() {
    let pair = Pair::new();
    let url = "http://f/up.bin";
    let (da, db) = (Arc::new(Scripted::default()), Arc::new(Scripted::default()));
    da.serve(url, data(50_000, 3));
    db.serve(url, data(50_000, 3));
    da.open(url);
    db.open(url);
    let cluster = mltb_engine::Cluster::new(Duration::from_millis(300), 2);
    let sa = pair.store("a").await;
    let a = pair.engine_with("a", sa.clone(), da.clone(), cluster, Arc::new(Stalled)).await;
    let task = a.submit(&leech(1, url)).await.unwrap();
    until("a uploads", || a.tasks().iter().any(|v| v.id == task.id && v.state == TaskState::Uploading)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sa.task_files(task.id).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "a records the files it uploads");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // `a` dies mid-upload; its files stay in its own directory.
    a.shutdown().await;
    assert!(a.task_dir(task.id).exists());
    let sb = pair.store("b").await;
    let b = pair.engine("b", sb.clone(), db.clone(), cluster).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // One read per turn: a second read could find the task completed since the first.
    loop {
        let t = sb.task(task.id).await.unwrap().unwrap();
        if t.state == TaskState::Completed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline && !t.state.is_finished(),
            "b completes the task: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(db.started(url), 1, "b downloaded it again");
    assert_eq!(*pair.uploads.lock().unwrap(), [("b", task.id)], "and uploaded the files it has");
    b.shutdown().await;
}
