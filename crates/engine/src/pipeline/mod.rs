//! The task pipeline: queued → downloading → uploading → completed / failed / cancelled,
//! every transition persisted through `mltb-store`, the queue limits, cancel at any stage,
//! and recovery of every unfinished task when the engine starts.

mod choice;
mod options;
mod planner;
mod queue;

pub(crate) use queue::free_disk;
mod run;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mltb_store::{Backend, NewTask, Source, Store, Task, TaskKind, TaskState};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::choice::{Choice, ChoiceError, ChoiceFile, Chosen};
pub use self::options::{Link, LinkSource, TaskOptions};
pub use self::planner::{LeechDefaults, MirrorDefaults, StandardPlanner};
use self::queue::Queue;
pub use self::queue::{QueueLimits, Waiting};
use crate::download::{DownloadId, DownloadRequest, DownloadSource, Downloader, UrlSource};
use crate::egress::EgressPolicy;
use crate::leech::store_error;
use crate::upload::Uploader;
use crate::{ErrorKind, Result};

/// How the engine runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Where tasks download to: each task in `<download_dir>/<task id>`. The engine never
    /// writes outside it.
    pub download_dir: PathBuf,
    /// The queue limits.
    pub limits: QueueLimits,
    /// How often downloads are polled for progress.
    pub poll_interval: Duration,
    /// Whether a failed task's directory is kept (to inspect or retry); removed if not.
    pub keep_failed: bool,
    /// The egress policy links are checked against when a task is submitted (`None`: no
    /// check here; the proxy aria2 goes through still applies its own).
    pub egress: Option<Arc<EgressPolicy>>,
    /// 7-Zip's program, for tasks that extract or zip (`-e`, `-z`): `7z` on the `PATH`
    /// by default (Debian's p7zip-full or 7zip package).
    pub seven_zip: PathBuf,
    /// Several instances on one database (the store opened with an instance id): tasks
    /// are claimed with leases instead of all run here (see [`Cluster`]). `None`: this
    /// engine runs every task in the store.
    pub cluster: Option<Cluster>,
}

/// How an engine shares a database's tasks with other instances: it claims unfinished
/// tasks nobody holds (or whose lease ran out) up to `most` running here, renews its
/// leases every third of `lease`, and stops (without touching the store) a task whose
/// lease another instance took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cluster {
    /// How long a lease holds without renewal: past it, another instance takes the
    /// task over.
    pub lease: Duration,
    /// Most tasks running here at once (queued here, downloading, uploading).
    pub most: usize,
}

impl Cluster {
    /// Leases of `lease`, at most `most` tasks here.
    pub fn new(lease: Duration, most: usize) -> Self {
        Self { lease, most: most.max(1) }
    }
}

impl EngineConfig {
    /// Tasks under `download_dir`, no limits, polled every second, failed tasks' files
    /// removed.
    pub fn new(download_dir: impl Into<PathBuf>) -> Self {
        Self {
            download_dir: download_dir.into(),
            limits: QueueLimits::default(),
            poll_interval: Duration::from_secs(1),
            keep_failed: false,
            egress: None,
            seven_zip: PathBuf::from("7z"),
            cluster: None,
        }
    }

    /// Shares the database's tasks with other instances (the store must have an
    /// instance id).
    pub fn cluster(mut self, cluster: Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Checks every submitted link against `policy` before the task is created.
    pub fn egress(mut self, policy: Arc<EgressPolicy>) -> Self {
        self.egress = Some(policy);
        self
    }

    /// The queue limits.
    pub fn limits(mut self, limits: QueueLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How often downloads are polled (default 1 s; from 1 ms to a day, a value outside
    /// taken as the nearer end: a zero period cannot be ticked, and a deadline a
    /// `Duration::MAX` away overflows the clock).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.clamp(Duration::from_millis(1), Duration::from_secs(24 * 60 * 60));
        self
    }

    /// The 7-Zip program tasks extract and zip with.
    pub fn seven_zip(mut self, program: impl Into<PathBuf>) -> Self {
        self.seven_zip = program.into();
        self
    }

    /// Keep a failed task's directory.
    pub fn keep_failed(mut self, keep: bool) -> Self {
        self.keep_failed = keep;
        self
    }
}

/// Turns a stored task into work: what to download, and where its files go. The bot
/// implements [`uploader`](Self::uploader) (a Telegram uploader for leech, rclone for
/// mirror); [`download`](Self::download) has the standard mapping.
#[async_trait::async_trait]
pub trait TaskPlanner: Send + Sync {
    /// What to download for `task` into `dir`: the task's source with its options.
    async fn download(&self, task: &Task, dir: &Path) -> Result<DownloadRequest> {
        let options = TaskOptions::from_json(&task.options)?;
        let link = Link { source: LinkSource::from(&task.source), name: task.name.clone() };
        request_of(&link, &options, dir).await
    }

    /// What to download for one of the links of a task that gathers several (`-m`, see
    /// [`TaskOptions::links`]) into `dir`: the link with the task's options.
    async fn download_link(&self, task: &Task, link: &Link, dir: &Path) -> Result<DownloadRequest> {
        let options = TaskOptions::from_json(&task.options)?;
        request_of(link, &options, dir).await
    }

    /// Where `task`'s files go.
    async fn uploader(&self, task: &Task) -> Result<Arc<dyn Uploader>>;
}

/// The standard mapping of a link and a task's options to a download into `dir`.
async fn request_of(link: &Link, options: &TaskOptions, dir: &Path) -> Result<DownloadRequest> {
    let source = match &link.source {
        LinkSource::Url(url) => {
            let mut source = UrlSource::new(url.clone());
            source.headers = options.headers.clone();
            if let Some(user) = &options.user {
                source = source.basic_auth(user.clone(), options.password.clone().unwrap_or_default());
            }
            DownloadSource::Url(source)
        }
        LinkSource::Magnet(magnet) => DownloadSource::Magnet(magnet.clone()),
        LinkSource::Torrent(path) => {
            let bytes = tokio::fs::read(path).await.map_err(|e| crate::Error::io(path, &e))?;
            DownloadSource::Torrent(bytes)
        }
    };
    let mut request = DownloadRequest::new(source, dir);
    request.name = link.name.clone();
    request.select = options.select.clone();
    // A task that gathers several links (`-m`) downloads them all.
    request.choose = options.choose && options.select.is_none() && options.links.is_empty();
    Ok(request)
}

/// A task as the status board shows it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TaskView {
    /// The task's id.
    pub id: i64,
    /// Its chat.
    pub chat: i64,
    /// Its user.
    pub user: i64,
    /// Its name, once known.
    pub name: Option<String>,
    /// Its state.
    pub state: TaskState,
    /// Mirror or leech: with the state, it says which program moves the bytes (aria2
    /// while downloading; Telegram or rclone while uploading).
    pub kind: TaskKind,
    /// When it was submitted, in Unix milliseconds (the store's `created_at`): the
    /// status board shows the time elapsed since.
    pub created_at: i64,
    /// Bytes done in the current stage.
    pub done: u64,
    /// Bytes in all in the current stage (0 while unknown).
    pub total: u64,
    /// Bytes per second now.
    pub speed: u64,
    /// Why it waits, when queued.
    pub waiting: Option<Waiting>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// What 7-Zip is doing, while the task extracts or zips its files between the
    /// download and the upload (its state is then `uploading`; `done`/`total` follow
    /// 7-Zip).
    pub archiving: Option<crate::Archiving>,
    /// Whether it waits, paused, for its torrent's files to be chosen on the selection
    /// page (`-s`; see [`Engine::choice`]).
    pub choosing: bool,
}

impl TaskView {
    fn of(task: &Task) -> Self {
        Self {
            id: task.id,
            chat: task.chat,
            user: task.user,
            name: task.name.clone(),
            state: task.state,
            kind: task.kind,
            created_at: task.created_at,
            done: 0,
            total: 0,
            speed: 0,
            waiting: None,
            error: None,
            archiving: None,
            choosing: false,
        }
    }
}

struct Live {
    view: TaskView,
    cancel: CancellationToken,
    /// Stops its runner without touching the store: a shutdown, or its lease lost.
    halt: CancellationToken,
    /// Whether another instance took its lease over.
    lost: bool,
    /// The download it polls now, to remove when the task is lost.
    download: Option<DownloadId>,
    /// The choice of files it waits for, if it does.
    choice: Option<choice::Open>,
    /// Several instances: until when (Unix ms) its lease surely holds here; uploads send
    /// nothing past it.
    lease: Arc<std::sync::atomic::AtomicI64>,
}

pub(crate) struct Inner<B: Backend> {
    pub(crate) store: Arc<Store<B>>,
    pub(crate) downloader: Arc<dyn Downloader>,
    pub(crate) planner: Arc<dyn TaskPlanner>,
    pub(crate) config: EngineConfig,
    pub(crate) queue: Mutex<Queue>,
    /// Woken whenever a slot is given back or a task is forced.
    pub(crate) slots: Notify,
    /// Wakes the claimer (a task was submitted, or one ended here).
    claim: Notify,
    live: Mutex<HashMap<i64, Live>>,
    /// Several instances: the unfinished tasks this one does not hold, as the store last
    /// showed them (refreshed on the claimer's beat).
    elsewhere: Mutex<Vec<TaskView>>,
    version: watch::Sender<u64>,
    /// Stops every runner without touching the store (shutdown, not cancel).
    pub(crate) stop: CancellationToken,
    tracker: TaskTracker,
    /// Tasks ended here: completed, failed, cancelled.
    pub(crate) finished: [std::sync::atomic::AtomicU64; 3],
}

/// The task engine. Cheap to clone.
pub struct Engine<B: Backend> {
    inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for Engine<B> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<B: Backend> std::fmt::Debug for Engine<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl<B: Backend> Engine<B> {
    /// Starts the engine and resumes every unfinished task in the store: queued tasks
    /// queue again in their order, downloads re-attach through
    /// [`Downloader::resume`], uploads resume from the first part not confirmed.
    pub async fn start(
        store: Arc<Store<B>>,
        downloader: Arc<dyn Downloader>,
        planner: Arc<dyn TaskPlanner>,
        config: EngineConfig,
    ) -> Result<Self> {
        tokio::fs::create_dir_all(&config.download_dir)
            .await
            .map_err(|e| crate::Error::io(config.download_dir.display(), &e))?;
        let inner = Arc::new(Inner {
            store,
            downloader,
            planner,
            queue: Mutex::new(Queue::new(config.limits.clone())),
            config,
            slots: Notify::new(),
            claim: Notify::new(),
            live: Mutex::new(HashMap::new()),
            elsewhere: Mutex::new(Vec::new()),
            version: watch::Sender::new(0),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            finished: Default::default(),
        });
        let engine = Self { inner };
        if engine.inner.config.cluster.is_some()
            && let Some(id) = engine.inner.store.instance()
        {
            // Marks the download directory as used by this instance: one that holds
            // other instances' marks is shared (see `drop_lost`).
            let mark = engine.inner.config.download_dir.join(format!("{INSTANCE_MARK}{id}"));
            tokio::fs::write(&mark, b"").await.map_err(|e| crate::Error::io(mark.display(), &e))?;
        }
        let asked = mltb_store::now_ms();
        let (unfinished, holds) = match engine.inner.config.cluster {
            // Its own tasks, from before a restart, with new fencing tokens.
            Some(c) => {
                (engine.inner.store.adopt_tasks(c.lease).await.map_err(store_error)?, holds_until(asked, c))
            }
            None => (engine.inner.store.unfinished_tasks().await.map_err(store_error)?, i64::MAX),
        };
        for t in unfinished {
            tracing::info!(task = t.task.id, state = %t.task.state, "resuming");
            engine.spawn(t.task, t.files, holds);
        }
        if let Some(cluster) = engine.inner.config.cluster {
            let claimer = engine.clone();
            engine.inner.tracker.spawn(async move { claimer.claim_loop(cluster).await });
        }
        Ok(engine)
    }

    /// Creates a task (committed before this returns) and queues it. With an egress
    /// policy, a link it refuses is an error ([`ErrorKind::Refused`]) and no task is
    /// created; a task that gathers several links (`-m`) is refused if any one is.
    ///
    /// A task that asks to choose its torrent's files ([`TaskOptions::choose`]) gets the
    /// key of its selection page here ([`TaskOptions::choose_key`]).
    pub async fn submit(&self, task: &NewTask) -> Result<Task> {
        let mut task = std::borrow::Cow::Borrowed(task);
        if let Some(options) = task.options.as_object()
            && options.get("choose").and_then(serde_json::Value::as_bool) == Some(true)
            && options.get("choose_key").is_none_or(serde_json::Value::is_null)
        {
            let key = choice::new_key()?;
            task.to_mut().options["choose_key"] = serde_json::Value::String(key);
        }
        let task = task.as_ref();
        if let Some(policy) = &self.inner.config.egress {
            if let Source::Url(url) = &task.source {
                policy.check_url(url).await?;
            }
            for link in TaskOptions::from_json(&task.options)?.links {
                if let LinkSource::Url(url) = &link.source {
                    policy.check_url(url).await?;
                }
            }
        }
        let task = self.inner.store.create_task(task).await.map_err(store_error)?;
        if self.inner.config.cluster.is_some() {
            // Any instance may claim it: this one looks at once.
            self.inner.claim.notify_one();
        } else {
            self.spawn(task.clone(), Vec::new(), i64::MAX);
        }
        Ok(task)
    }

    /// Runs `task` here. `lease`: until when (Unix ms, this instance's clock) its lease
    /// surely holds; `i64::MAX` without several instances.
    fn spawn(&self, task: Task, files: Vec<mltb_store::TaskFile>, lease: i64) {
        let cancel = CancellationToken::new();
        if task.state == TaskState::Queued {
            self.inner.queue.lock().unwrap_or_else(|p| p.into_inner()).enqueue(task.id, task.user);
        }
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).insert(
            task.id,
            Live {
                view: TaskView::of(&task),
                cancel: cancel.clone(),
                halt: self.inner.stop.child_token(),
                lost: false,
                download: None,
                choice: None,
                lease: Arc::new(std::sync::atomic::AtomicI64::new(lease)),
            },
        );
        self.bump();
        let engine = self.clone();
        self.inner.tracker.spawn(async move {
            let id = task.id;
            run::run(engine.clone(), task, files, cancel).await;
            // A lost task's download and files go before it leaves the engine's view, so
            // that a task no longer shown has nothing left here.
            let lost = engine.with_live(id, |l| l.lost.then(|| l.download.clone())).flatten();
            if let Some(download) = lost {
                engine.drop_lost(id, download).await;
            }
            engine.inner.live.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            engine.bump();
            engine.inner.claim.notify_one();
        });
    }

    /// Cancels a task at any stage: its download, its upload and its files go. Returns
    /// whether the task was running here.
    pub fn cancel(&self, id: i64) -> bool {
        let live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
        match live.get(&id) {
            Some(l) => {
                l.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels task `id` wherever it runs. Here, as [`cancel`](Self::cancel); with
    /// several instances ([`EngineConfig::cluster`]), a task no instance holds is
    /// cancelled in the store at once, and one another instance runs is cancelled by it
    /// at its next lease renewal (within a third of the lease). Returns whether an
    /// unfinished task `id` was found.
    pub async fn cancel_anywhere(&self, id: i64) -> Result<bool> {
        if self.cancel(id) {
            return Ok(true);
        }
        if self.inner.config.cluster.is_none() {
            return Ok(false);
        }
        match self.inner.store.request_cancel(id).await.map_err(store_error)? {
            mltb_store::CancelRequest::Cancelled => {
                self.inner.elsewhere.lock().unwrap_or_else(|p| p.into_inner()).retain(|v| v.id != id);
                self.bump();
                Ok(true)
            }
            mltb_store::CancelRequest::Asked => Ok(true),
            mltb_store::CancelRequest::NotFound => Ok(false),
        }
    }

    /// Lets a queued task start now, whatever the limits (`/forcestart`). Returns whether
    /// the task was running here.
    pub fn force_start(&self, id: i64) -> bool {
        if !self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&id) {
            return false;
        }
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner()).force(id);
        self.inner.slots.notify_waiters();
        true
    }

    /// Every task running here (queued, downloading, uploading), by id.
    pub fn tasks(&self) -> Vec<TaskView> {
        let live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut views: Vec<TaskView> = live.values().map(|l| l.view.clone()).collect();
        views.sort_by_key(|v| v.id);
        views
    }

    /// Every unfinished task: those running here ([`tasks`](Self::tasks)) and, with
    /// several instances, those queued for any instance or running on another, as the
    /// store last showed them (their progress as their holders last recorded it, at
    /// most a third of the lease old). What a status board shows; by id.
    pub fn all_tasks(&self) -> Vec<TaskView> {
        let mut views = self.tasks();
        let elsewhere = self.inner.elsewhere.lock().unwrap_or_else(|p| p.into_inner());
        let here: std::collections::HashSet<i64> = views.iter().map(|v| v.id).collect();
        views.extend(elsewhere.iter().filter(|v| !here.contains(&v.id)).cloned());
        views.sort_by_key(|v| v.id);
        views
    }

    /// Changes whenever a task's view changes: the status board waits on it.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// Tasks this engine ran to an end since it started: completed, failed, cancelled
    /// (each counted once its end is recorded in the store).
    pub fn finished_counts(&self) -> (u64, u64, u64) {
        let f = &self.inner.finished;
        (
            f[0].load(std::sync::atomic::Ordering::Relaxed),
            f[1].load(std::sync::atomic::Ordering::Relaxed),
            f[2].load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Tasks downloading, uploading and waiting for a download slot now.
    pub fn queue_counts(&self) -> (usize, usize, usize) {
        let q = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        let (d, u) = q.active();
        (d, u, q.waiting())
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store<B>> {
        &self.inner.store
    }

    /// Waits until task `id` is no longer running here (finished, or never was).
    pub async fn wait(&self, id: i64) {
        let mut changes = self.changes();
        while self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&id) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops every task runner without changing any task: they resume at the next
    /// start. Downloads keep their partial data.
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }

    pub(crate) fn update(&self, id: i64, f: impl FnOnce(&mut TaskView)) {
        if let Some(l) = self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&id) {
            f(&mut l.view);
        }
        self.bump();
    }

    /// The token that stops task `id`'s runner without touching the store (the
    /// engine's own when the task does not run here).
    pub(crate) fn halt(&self, id: i64) -> CancellationToken {
        self.with_live(id, |l| l.halt.clone()).unwrap_or_else(|| self.inner.stop.clone())
    }

    /// Marks task `id` as lost to another instance (its runner stops; its files here go).
    pub(crate) fn mark_lost(&self, id: i64) {
        self.with_live(id, |l| {
            l.lost = true;
            l.halt.cancel();
        });
    }

    /// With several instances, until when (Unix ms) task `id`'s lease surely holds here.
    pub(crate) fn lease_of(&self, id: i64) -> Option<Arc<std::sync::atomic::AtomicI64>> {
        self.inner.config.cluster?;
        self.with_live(id, |l| l.lease.clone())
    }

    /// Records the download task `id` polls now.
    pub(crate) fn set_download(&self, id: i64, download: &DownloadId) {
        self.with_live(id, |l| l.download = Some(download.clone()));
    }

    /// Claims and renews tasks until the engine stops (see [`Cluster`]).
    async fn claim_loop(&self, cluster: Cluster) {
        let every = (cluster.lease / 3).max(Duration::from_millis(10));
        loop {
            let asked = mltb_store::now_ms();
            match self.inner.store.renew_tasks(cluster.lease).await {
                Ok(renewed) => {
                    let holds = holds_until(asked, cluster);
                    for id in &renewed.kept {
                        self.with_live(*id, |l| l.lease.store(holds, std::sync::atomic::Ordering::Release));
                    }
                    for id in renewed.lost {
                        tracing::warn!(task = id, "another instance took this task over; stopping it here");
                        self.mark_lost(id);
                    }
                    for id in renewed.cancel {
                        tracing::info!(task = id, "cancelled from another instance");
                        self.cancel(id);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not renew the task leases"),
            }
            let running = self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).len();
            let free = cluster.most.saturating_sub(running);
            if free > 0 {
                let asked = mltb_store::now_ms();
                match self
                    .inner
                    .store
                    .claim_tasks(u32::try_from(free).unwrap_or(u32::MAX), cluster.lease)
                    .await
                {
                    Ok(claimed) => {
                        for t in claimed {
                            tracing::info!(task = t.task.id, state = %t.task.state, fence = t.task.fence, "claimed");
                            self.spawn(t.task, t.files, holds_until(asked, cluster));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not claim tasks"),
                }
            }
            self.look_elsewhere().await;
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.inner.claim.notified() => {}
                () = self.inner.stop.cancelled() => return,
            }
        }
    }

    /// Refreshes the view of the tasks this instance does not hold; a change is
    /// announced on [`changes`](Self::changes).
    async fn look_elsewhere(&self) {
        let tasks = match self.inner.store.tasks_elsewhere().await {
            Ok(tasks) => tasks,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the other instances' tasks");
                return;
            }
        };
        let views: Vec<TaskView> = tasks
            .iter()
            .map(|t| {
                let mut v = TaskView::of(t);
                v.done = t.progress.done;
                v.total = t.progress.total.unwrap_or(0);
                v.speed = t.progress.speed;
                v
            })
            .collect();
        let changed = {
            let mut elsewhere = self.inner.elsewhere.lock().unwrap_or_else(|p| p.into_inner());
            let changed = *elsewhere != views;
            *elsewhere = views;
            changed
        };
        if changed {
            self.bump();
        }
    }

    /// A task lost to another instance, its runner stopped: its download here goes, and
    /// its files too unless the download directory is shared (then the new holder goes
    /// on with them); the store stops fencing its writes.
    async fn drop_lost(&self, id: i64, download: Option<DownloadId>) {
        if let Some(d) = download
            && let Err(e) = self.inner.downloader.cancel(&d).await
        {
            tracing::debug!(task = id, error = %e, "could not remove the lost task's download");
        }
        if self.shares_downloads().await {
            // The new holder works on these files (a shared filesystem): they stay.
            tracing::info!(
                task = id,
                "the download directory is shared; the lost task's files stay for its holder"
            );
        } else if let Err(e) = tokio::fs::remove_dir_all(self.task_dir(id)).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!(task = id, error = %e, "could not remove the lost task's files");
        }
        self.inner.store.forget_task(id);
    }

    /// Whether another instance uses this download directory too (its mark is there):
    /// then a lost task's files are the new holder's. An unreadable directory counts as
    /// shared, so that nothing is removed on a guess.
    async fn shares_downloads(&self) -> bool {
        let own = self.inner.store.instance().map(|id| format!("{INSTANCE_MARK}{id}"));
        let Ok(mut entries) = tokio::fs::read_dir(&self.inner.config.download_dir).await else { return true };
        loop {
            match entries.next_entry().await {
                Ok(Some(entry)) => {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with(INSTANCE_MARK) && Some(name.as_ref()) != own.as_deref() {
                        return true;
                    }
                }
                Ok(None) => return false,
                Err(_) => return true,
            }
        }
    }

    /// Runs `f` on task `id`'s live entry, if it runs here.
    fn with_live<T>(&self, id: i64, f: impl FnOnce(&mut Live) -> T) -> Option<T> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&id).map(f)
    }

    fn bump(&self) {
        self.inner.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn inner(&self) -> &Inner<B> {
        &self.inner
    }

    /// The directory of task `id`.
    pub fn task_dir(&self, id: i64) -> PathBuf {
        self.inner.config.download_dir.join(id.to_string())
    }
}

/// The start of the name of the empty file each instance leaves in its download
/// directory (`.mltb-instance-<id>`): several instances' marks there mean the directory
/// is shared.
const INSTANCE_MARK: &str = ".mltb-instance-";

/// Until when (Unix ms, this instance's clock) a lease taken or renewed by a request
/// sent at `asked` surely holds here. The database wrote its end at least `lease` after
/// `asked`, by whichever clock judges it (the server's on PostgreSQL): measured from
/// the request here, it does not depend on the clocks agreeing. This instance stops
/// counting on it a quarter of the lease earlier: room for the time between reading
/// its clock and acting on the answer.
fn holds_until(asked: i64, cluster: Cluster) -> i64 {
    let lease = i64::try_from(cluster.lease.as_millis()).unwrap_or(i64::MAX);
    asked.saturating_add(lease).saturating_sub(lease / 4)
}

pub(crate) fn cancelled() -> crate::Error {
    ErrorKind::Cancelled.into()
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn a_poll_interval_is_kept_between_a_millisecond_and_a_day() {
        let at = |d| EngineConfig::new("/tmp/dl").poll_interval(d).poll_interval;
        assert_eq!(at(Duration::ZERO), Duration::from_millis(1));
        assert_eq!(at(Duration::MAX), Duration::from_secs(24 * 60 * 60));
        assert_eq!(at(Duration::from_millis(250)), Duration::from_millis(250));
    }
}
