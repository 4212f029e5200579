//! One task's run, from wherever the store says it is to a finished state.

use mltb_store::{Backend, Part, Progress, Task, TaskFile, TaskState};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

use super::queue::{Stage as Slot, free_disk};
use super::{Engine, cancelled};
use crate::archive::{RESERVED_PREFIX, Stage, walk};
use crate::download::{DownloadId, DownloadState};
use crate::leech::store_error;
use crate::rate::Rate;
use crate::upload::{PartLog, SentPart, UploadContext, UploadFile, UploadProgress, UploadRequest};
use crate::{Error, ErrorKind, Result, limits_error};

/// How a run ended.
enum End {
    Done,
    /// The engine is shutting down: leave the task as it is in the store.
    Stopped,
}

pub(super) async fn run<B: Backend>(
    engine: Engine<B>,
    task: Task,
    files: Vec<TaskFile>,
    cancel: CancellationToken,
) {
    let id = task.id;
    let user = task.user;
    let dir = engine.task_dir(id);
    let mut held: Option<Slot> = None;
    let mut result = drive(&engine, &task, files, &cancel, &dir, &mut held).await;
    if matches!(&result, Err(e) if matches!(e.kind(), ErrorKind::Fenced { .. }))
        || (engine.halt(id).is_cancelled() && !engine.inner().stop.is_cancelled())
    {
        // Another instance holds it now: stop here, leave the store to its owner.
        engine.mark_lost(id);
        result = Ok(End::Stopped);
    }
    {
        let inner = engine.inner();
        inner.queue.lock().unwrap_or_else(|p| p.into_inner()).release(id, user, held);
        inner.slots.notify_waiters();
    }
    let store = &engine.inner().store;
    // Which of the engine's finished counters the end goes to.
    let (outcome, slot) = match result {
        Ok(End::Stopped) => return,
        Ok(End::Done) => {
            remove_dir(&dir).await;
            (store.mark_completed(id).await, 0)
        }
        Err(e) if e.is_cancelled() => {
            remove_dir(&dir).await;
            (store.mark_cancelled(id).await, 2)
        }
        Err(e) => {
            tracing::warn!(task = id, error = %e, "task failed");
            if !engine.inner().config.keep_failed {
                remove_dir(&dir).await;
            }
            let text = limits_error(&e.to_string());
            engine.update(id, |v| v.error = Some(text.clone()));
            (store.mark_failed(id, &text).await, 1)
        }
    };
    match outcome {
        Ok(_) => {
            engine.inner().finished[slot].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Err(e) => tracing::error!(task = id, error = %e, "could not record the task's end"),
    }
}

async fn drive<B: Backend>(
    engine: &Engine<B>,
    task: &Task,
    files: Vec<TaskFile>,
    cancel: &CancellationToken,
    dir: &Path,
    held: &mut Option<Slot>,
) -> Result<End> {
    let inner = engine.inner();
    let stop = engine.halt(task.id);
    let mut state = task.state;
    let links = crate::TaskOptions::from_json(&task.options)?.links;
    // Taken over mid-upload from an instance whose download directory is not shared:
    // download again here, then upload from the first part not confirmed.
    let refetch = state == TaskState::Uploading
        && task.gid.is_some()
        && !tokio::fs::try_exists(dir).await.map_err(|e| Error::io(dir.display(), &e))?;
    if refetch {
        tracing::info!(
            task = task.id,
            "its files are not here; downloading them again before the upload resumes"
        );
        engine.update(task.id, |v| v.state = TaskState::Downloading);
    }
    if state == TaskState::Queued {
        if !take(engine, task, Slot::Download, cancel).await? {
            return Ok(End::Stopped);
        }
        *held = Some(Slot::Download);
        tokio::fs::create_dir_all(dir).await.map_err(|e| Error::io(dir.display(), &e))?;
        let complete = if links.is_empty() {
            // The id is recorded before the download exists: after a crash in between,
            // the restart re-attaches by it instead of starting a second download.
            let planned = DownloadId::random();
            let request = inner.planner.download(task, dir).await?.id(planned.clone());
            inner.store.mark_started(task.id, &planned.0).await.map_err(store_error)?;
            let gid = inner.downloader.start(&request).await?;
            if gid != planned {
                inner.store.mark_started(task.id, &gid.0).await.map_err(store_error)?;
            }
            engine.update(task.id, |v| {
                v.state = TaskState::Downloading;
                v.waiting = None;
            });
            download(engine, task, gid, None, 0, cancel).await?.is_some()
        } else {
            gather(engine, task, &links, None, cancel, dir).await?
        };
        if !complete {
            return Ok(End::Stopped);
        }
        free_reserved_names(dir, !links.is_empty()).await?;
        state = TaskState::Uploading;
    } else if state == TaskState::Downloading || refetch {
        inner.queue.lock().unwrap_or_else(|p| p.into_inner()).hold_download(task.id, task.user);
        *held = Some(Slot::Download);
        tokio::fs::create_dir_all(dir).await.map_err(|e| Error::io(dir.display(), &e))?;
        let complete = if links.is_empty() {
            let Some(gid) = task.gid.clone() else {
                return Err(
                    ErrorKind::Download { code: 0, message: "no download id was recorded".into() }.into()
                );
            };
            let known = DownloadId(gid);
            let request = inner.planner.download(task, dir).await?.id(known.clone());
            let gid = inner.downloader.resume(&known, &request).await?;
            if gid != known {
                inner.store.mark_started(task.id, &gid.0).await.map_err(store_error)?;
            }
            download(engine, task, gid, None, 0, cancel).await?.is_some()
        } else {
            gather(engine, task, &links, task.gid.as_deref(), cancel, dir).await?
        };
        if !complete {
            return Ok(End::Stopped);
        }
        free_reserved_names(dir, !links.is_empty()).await?;
        state = TaskState::Uploading;
    } else if state == TaskState::Uploading {
        inner.queue.lock().unwrap_or_else(|p| p.into_inner()).hold_upload(task.id, task.user);
        *held = Some(Slot::Upload);
    }
    if state != TaskState::Uploading || stop.is_cancelled() {
        return Ok(End::Stopped);
    }
    if *held == Some(Slot::Download) {
        if !take(engine, task, Slot::Upload, cancel).await? {
            return Ok(End::Stopped);
        }
        *held = Some(Slot::Upload);
        inner.store.mark_uploading(task.id).await.map_err(store_error)?;
    }
    engine.update(task.id, |v| {
        v.state = TaskState::Uploading;
        v.waiting = None;
        v.done = 0;
        v.speed = 0;
    });
    upload(engine, task, files, cancel, dir).await
}

/// Waits for a slot for `stage`. `Ok(false)`: the engine is stopping.
async fn take<B: Backend>(
    engine: &Engine<B>,
    task: &Task,
    stage: Slot,
    cancel: &CancellationToken,
) -> Result<bool> {
    let inner = engine.inner();
    let halt = engine.halt(task.id);
    loop {
        // Registered before the check, so a slot given back in between is not missed.
        let notified = inner.slots.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let taken =
            inner
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_take(task.id, task.user, stage, || free_disk(&inner.config.download_dir));
        match taken {
            Ok(()) => return Ok(true),
            Err(why) => engine.update(task.id, |v| v.waiting = Some(why)),
        }
        tokio::select! {
            () = &mut notified => {}
            () = cancel.cancelled() => return Err(cancelled()),
            () = halt.cancelled() => return Ok(false),
            // Free disk space changes without a slot being given back.
            () = tokio::time::sleep(inner.config.poll_interval) => {}
        }
    }
}

/// The text the store's `gid` column holds for download `gid`: for the `k`-th link of a
/// task that gathers several, `k/gid`, so that a restart knows which link it belongs to.
fn recorded(link: Option<usize>, gid: &DownloadId) -> String {
    match link {
        Some(k) => format!("{k}/{gid}"),
        None => gid.0.clone(),
    }
}

/// The link and download a gathering task's `gid` column names (see [`recorded`]).
fn parse_recorded(text: &str) -> Option<(usize, DownloadId)> {
    let (k, gid) = text.split_once('/')?;
    Some((k.parse().ok()?, DownloadId(gid.to_owned())))
}

/// Where the `k`-th link of a gathering task downloads to, inside the task's directory
/// (a reserved name: the upload never lists it).
fn link_dir(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("{RESERVED_PREFIX}link-{k}"))
}

/// The file that says the `k`-th link is downloaded, and holds its size in bytes.
fn link_done(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("{RESERVED_PREFIX}link-{k}.done"))
}

/// Downloads a gathering task's links (`-m`) one after another, each into its own
/// directory, then moves their files into one folder named by the task's name.
/// `Ok(false)`: the engine is stopping.
///
/// Crash-safe: a link's `.done` file is written (and synced) once its download is
/// complete, before the next one is recorded; the store's `gid` names the link it
/// belongs to (`k/gid`), so a restart re-attaches to the right download, skips the
/// links already done, and redoes a move only for files not moved yet.
async fn gather<B: Backend>(
    engine: &Engine<B>,
    task: &Task,
    links: &[crate::Link],
    recorded_gid: Option<&str>,
    cancel: &CancellationToken,
    dir: &Path,
) -> Result<bool> {
    let inner = engine.inner();
    let resumed = recorded_gid.and_then(parse_recorded);
    engine.update(task.id, |v| {
        v.state = TaskState::Downloading;
        v.waiting = None;
    });
    let mut before = 0u64;
    for (k, link) in links.iter().enumerate() {
        if let Some(size) = done_size(&link_done(dir, k)).await? {
            before += size;
            continue;
        }
        let into = link_dir(dir, k);
        tokio::fs::create_dir_all(&into).await.map_err(|e| Error::io(into.display(), &e))?;
        let request = inner.planner.download_link(task, link, &into).await?;
        let gid = match &resumed {
            Some((j, known)) if *j == k => {
                let gid = inner.downloader.resume(known, &request.id(known.clone())).await?;
                if gid != *known {
                    inner.store.mark_started(task.id, &recorded(Some(k), &gid)).await.map_err(store_error)?;
                }
                gid
            }
            _ => {
                let planned = DownloadId::random();
                inner.store.mark_started(task.id, &recorded(Some(k), &planned)).await.map_err(store_error)?;
                let gid = inner.downloader.start(&request.id(planned.clone())).await?;
                if gid != planned {
                    inner.store.mark_started(task.id, &recorded(Some(k), &gid)).await.map_err(store_error)?;
                }
                gid
            }
        };
        let Some(size) = download(engine, task, gid, Some(k), before, cancel).await? else {
            return Ok(false);
        };
        write_synced(&link_done(dir, k), size.to_string().as_bytes()).await?;
        before += size;
    }
    let folder = task.name.clone().unwrap_or_else(|| format!("task-{}", task.id));
    merge(dir, &folder, links.len()).await?;
    Ok(true)
}

/// The size a link's `.done` file holds, or `None` when the link is not done.
async fn done_size(path: &Path) -> Result<Option<u64>> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(Some(text.trim().parse().unwrap_or(0))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path.display(), &e)),
    }
}

/// Writes `bytes` to `path` and syncs the file and its directory.
async fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::io(path.display(), &e);
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    if let Some(parent) = path.parent() {
        tokio::fs::File::open(parent).await.map_err(io)?.sync_all().await.map_err(io)?;
    }
    Ok(())
}

/// Renames what the download put at the top of `dir` under the engine's reserved prefix
/// (a torrent or `-n` named `.mltb-out`, say), as [`folder_name`](crate::names::folder_name)
/// names a folder: `_.mltb-out`. Left as it was, the engine would take it for its own
/// entry: a finished archive step (so `-z` or `-e` would be skipped), or a folder the
/// upload never lists. Runs once the download is complete, before any archive step
/// makes entries of its own; a gathering task's (`gathering`) link records are its own.
async fn free_reserved_names(dir: &Path, gathering: bool) -> Result<()> {
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| Error::io(dir.display(), &e))?;
    let links = format!("{RESERVED_PREFIX}link-");
    let mut taken = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(dir.display(), &e))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let engines = gathering && name.starts_with(&links);
        if name.starts_with(RESERVED_PREFIX) && !engines {
            taken.push((entry.path(), name));
        }
    }
    for (from, name) in taken {
        let to = crate::names::unique_in(dir, &crate::names::folder_name(&name))?;
        tokio::fs::rename(&from, &to).await.map_err(|e| Error::io(from.display(), &e))?;
        tracing::info!(from = %name.escape_debug(), to = %to.display(), "renamed a download named like the engine's own entries");
    }
    Ok(())
}

/// Moves what each link downloaded into `dir/<folder>` (the name made safe by
/// [`folder_name`](crate::names::folder_name); a name already taken there gets ` (1)`),
/// and removes the links' directories.
async fn merge(dir: &Path, folder: &str, links: usize) -> Result<()> {
    let target = dir.join(crate::names::folder_name(folder));
    tokio::fs::create_dir_all(&target).await.map_err(|e| Error::io(target.display(), &e))?;
    for k in 0..links {
        let from = link_dir(dir, k);
        let mut entries = match tokio::fs::read_dir(&from).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(from.display(), &e)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(from.display(), &e))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".aria2") {
                continue;
            }
            let to = crate::names::unique_in(&target, &name)?;
            tokio::fs::rename(entry.path(), &to).await.map_err(|e| Error::io(entry.path().display(), &e))?;
        }
        remove_dir(&from).await;
    }
    Ok(())
}

/// Polls a download to its end: `Ok(Some(size))` when complete, `Ok(None)` when the
/// engine is stopping. For the `link`-th link of a gathering task, `before` bytes of its
/// earlier links count towards the progress shown.
async fn download<B: Backend>(
    engine: &Engine<B>,
    task: &Task,
    mut gid: DownloadId,
    link: Option<usize>,
    before: u64,
    cancel: &CancellationToken,
) -> Result<Option<u64>> {
    let inner = engine.inner();
    let mut named = task.name.is_some();
    let options = crate::TaskOptions::from_json(&task.options)?;
    // `-s`: the files chosen (recorded in the options before a restart), once they are.
    let choosing = options.choose && link.is_none();
    let mut chosen = options.select;
    let mut ticker = tokio::time::interval(inner.config.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let halt = engine.halt(task.id);
    engine.set_download(task.id, &gid);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = cancel.cancelled() => {
                if let Err(e) = inner.downloader.cancel(&gid).await {
                    tracing::warn!(task = task.id, error = %e, "could not remove the download");
                }
                return Err(cancelled());
            }
            () = halt.cancelled() => return Ok(None),
        }
        let status = inner.downloader.status(&gid).await?;
        if let Some(next) = status.followed_by.clone() {
            inner.store.mark_started(task.id, &recorded(link, &next)).await.map_err(store_error)?;
            gid = next;
            engine.set_download(task.id, &gid);
            continue;
        }
        if !named && let Some(name) = &status.name {
            let name = crate::limits_name(name);
            inner.store.set_name(task.id, &name).await.map_err(store_error)?;
            named = true;
        }
        let (done, total) = (before + status.done, if status.total > 0 { before + status.total } else { 0 });
        engine.update(task.id, |v| {
            v.done = done;
            v.total = total;
            v.speed = status.speed;
            if v.name.is_none() {
                v.name = status.name.clone();
            }
        });
        let progress = Progress { done, total: (total > 0).then_some(total), speed: status.speed };
        if let Err(e) = inner.store.update_progress(task.id, progress).await {
            tracing::debug!(task = task.id, error = %e, "progress not recorded");
        }
        match status.state {
            DownloadState::Complete => return Ok(Some(status.total.max(status.done))),
            DownloadState::Failed => {
                return Err(status.error.unwrap_or_else(|| {
                    ErrorKind::Download { code: 1, message: "the download failed".into() }.into()
                }));
            }
            // Paused with its file list known: the files are chosen, then it starts.
            DownloadState::Paused if choosing && !status.files.is_empty() => {
                let files = match &chosen {
                    Some(files) => files.clone(),
                    None => match super::choice::wait(engine, task, &gid, &status, cancel).await? {
                        Some(files) => files,
                        None => return Ok(None),
                    },
                };
                inner.downloader.select(&gid, &files).await?;
                chosen = Some(files);
            }
            _ => {}
        }
    }
}

/// Records parts in the store as the destination confirms them.
struct StoreParts<'a, B: Backend> {
    store: &'a mltb_store::Store<B>,
}

#[async_trait::async_trait]
impl<B: Backend> PartLog for StoreParts<'_, B> {
    async fn record(&self, file: i64, part: &SentPart) -> Result<()> {
        let part = Part {
            index: part.index,
            size: part.size,
            message_id: part.message_id,
            remote_path: part.remote_path.clone(),
        };
        self.store.add_part(file, &part).await.map_err(store_error)
    }
}

async fn upload<B: Backend>(
    engine: &Engine<B>,
    task: &Task,
    mut files: Vec<TaskFile>,
    cancel: &CancellationToken,
    dir: &Path,
) -> Result<End> {
    let inner = engine.inner();
    let store = &inner.store;
    let mut root = Stage::root(dir);
    // Files recorded but not here (downloaded again after a takeover): an archive
    // step's output is made again first.
    let mut missing = false;
    for f in &files {
        if !tokio::fs::try_exists(root.join(&f.path)).await.unwrap_or(false) {
            missing = true;
            break;
        }
    }
    if missing {
        root = match archive_stage(engine, task, cancel, dir).await {
            Ok(root) => root,
            Err(e) if e.is_cancelled() && !cancel.is_cancelled() => return Ok(End::Stopped),
            Err(e) => return Err(e),
        };
    }
    if files.is_empty() {
        root = match archive_stage(engine, task, cancel, dir).await {
            Ok(root) => root,
            // Stopped by a shutdown, not a cancel: not the task's end.
            Err(e) if e.is_cancelled() && !cancel.is_cancelled() => return Ok(End::Stopped),
            Err(e) => return Err(e),
        };
        // Recorded before the first byte goes out, so a restart uploads the same list.
        for (relative, size) in tidy_names(&root, walk(&root).await?).await? {
            let id = store.add_file(task.id, &relative, size).await.map_err(store_error)?;
            files.push(TaskFile { id, task: task.id, path: relative, size, parts: Vec::new() });
        }
    }
    if files.is_empty() {
        return Err(ErrorKind::NotFound { what: "the download produced no files".into() }.into());
    }
    let uploads: Vec<UploadFile> = files
        .iter()
        .map(|f| {
            let mut file = UploadFile::new(f.id, root.join(&f.path), f.path.clone(), f.size);
            file.sent = f
                .parts
                .iter()
                .map(|p| {
                    let mut s = SentPart::message(p.index, p.size, p.message_id.unwrap_or_default());
                    s.message_id = p.message_id;
                    s.remote_path = p.remote_path.clone();
                    s
                })
                .collect();
            file
        })
        .collect();
    let name =
        task.name.clone().unwrap_or_else(|| files[0].path.split('/').next().unwrap_or("files").to_string());
    let request = UploadRequest::new(task.id, name, &root, uploads);
    let uploader = inner.planner.uploader(task).await?;
    let parts = StoreParts { store };
    let id = task.id;
    let view = engine.clone();
    // The speed shown while uploading: the uploads report bytes sent, not a rate.
    let rate = std::sync::Mutex::new(Rate::default());
    let progress = move |p: UploadProgress| {
        let speed = rate.lock().unwrap_or_else(|p| p.into_inner()).record(std::time::Instant::now(), p.sent);
        view.update(id, |v| {
            v.done = p.sent;
            v.total = p.total;
            v.speed = speed;
        });
    };
    // Both a cancel and a shutdown stop the upload; only a cancel ends the task.
    let token = CancellationToken::new();
    let guard = token.clone();
    let watcher = {
        let (cancel, stop) = (cancel.clone(), engine.halt(task.id));
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = stop.cancelled() => {}
            }
            guard.cancel();
        })
    };
    let mut context = UploadContext::new(&parts, &progress, token);
    if let Some(lease) = engine.lease_of(task.id) {
        context = context.with_lease(lease);
    }
    // Meanwhile the store gets the view's figures for other instances' boards.
    let result = tokio::select! {
        result = uploader.upload(&request, context) => result,
        never = record_progress(engine, id) => match never {},
    };
    watcher.abort();
    match result {
        Ok(outcome) => {
            if let Some(link) = outcome.link.as_deref()
                && let Err(e) = store.set_link(id, link).await
            {
                tracing::warn!(task = id, error = %e, "the share link was not recorded");
            }
            Ok(End::Done)
        }
        Err(e) if e.is_cancelled() && !cancel.is_cancelled() => Ok(End::Stopped),
        Err(e) => Err(e),
    }
}

/// Records task `id`'s progress, as its view shows it, in the store at each poll
/// interval while it changes (other instances' boards read it there), as the download
/// does at each poll; runs until the caller drops it.
async fn record_progress<B: Backend>(engine: &Engine<B>, id: i64) -> std::convert::Infallible {
    let store = &engine.inner().store;
    let mut ticker = tokio::time::interval(engine.inner().config.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut recorded = None;
    loop {
        ticker.tick().await;
        let Some(now) = engine.with_live(id, |l| Progress {
            done: l.view.done,
            total: (l.view.total > 0).then_some(l.view.total),
            speed: l.view.speed,
        }) else {
            continue;
        };
        if recorded == Some(now) {
            continue;
        }
        match store.update_progress(id, now).await {
            Ok(()) => recorded = Some(now),
            Err(e) => tracing::debug!(task = id, error = %e, "upload progress not recorded"),
        }
    }
}

/// Runs the task's extract and zip steps (`-e`, `-z`), if it has any; returns the
/// directory its files are uploaded from.
async fn archive_stage<B: Backend>(
    engine: &Engine<B>,
    task: &Task,
    cancel: &CancellationToken,
    dir: &Path,
) -> Result<PathBuf> {
    let options = crate::TaskOptions::from_json(&task.options)?;
    if options.extract.is_none() && options.zip.is_none() {
        return Ok(dir.to_path_buf());
    }
    let inner = engine.inner();
    // A shutdown stops 7-Zip as a cancel does; the task stays `uploading` and the stage
    // runs again on the next start.
    let token = cancel.child_token();
    let stop = engine.halt(task.id);
    let watch = {
        let token = token.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            token.cancel();
        })
    };
    // The name the download gave, recorded after this task was read.
    let name = match &task.name {
        Some(name) => Some(name.clone()),
        None => inner.store.task(task.id).await.map_err(store_error)?.and_then(|t| t.name),
    }
    .unwrap_or_else(|| format!("task-{}", task.id));
    let id = task.id;
    let view = engine.clone();
    let progress = move |step: crate::Archiving, done: u64, total: u64| {
        view.update(id, |v| {
            v.archiving = Some(step);
            v.done = done;
            v.total = total;
        });
    };
    // 7-Zip runs in other directories: every path it is given must be absolute.
    let dir = std::path::absolute(dir).map_err(|e| Error::io(dir.display(), &e))?;
    let stage = Stage {
        program: &inner.config.seven_zip,
        dir: &dir,
        name: &name,
        extract: options.extract.as_ref(),
        zip: options.zip.as_ref(),
        reserve: inner.config.limits.min_free_disk,
        cancel: &token,
    };
    let result = stage.run(&progress).await;
    watch.abort();
    engine.update(id, |v| {
        v.archiving = None;
        v.done = 0;
    });
    result
}

/// Renames every file whose path is not already what [`names`](crate::names) makes of
/// it: a name from the network (`Content-Disposition`, torrent metadata) with control
/// characters, reserved names or the like. Clashes get `name (1).ext`. Returns the final
/// relative paths, sorted.
async fn tidy_names(dir: &Path, files: Vec<(PathBuf, u64)>) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::with_capacity(files.len());
    for (path, size) in files {
        // Not UTF-8 (lossy here) never matches its clean form, so it is renamed.
        let relative =
            path.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        let clean = crate::names::sanitize_relative_path(&relative);
        let clean_text =
            clean.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        if clean_text == relative {
            out.push((relative, size));
            continue;
        }
        let parent_rel = clean.parent().unwrap_or_else(|| Path::new(""));
        let parent = crate::names::resolve_inside(dir, parent_rel)?;
        tokio::fs::create_dir_all(&parent).await.map_err(|e| Error::io(parent.display(), &e))?;
        let name = clean.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let target = crate::names::unique_in(&parent, &name)?;
        let from = dir.join(&path);
        tokio::fs::rename(&from, &target).await.map_err(|e| Error::io(from.display(), &e))?;
        let root = tokio::fs::canonicalize(dir).await.map_err(|e| Error::io(dir.display(), &e))?;
        let final_rel = target
            .strip_prefix(&root)
            .or_else(|_| target.strip_prefix(dir))
            .map(|p| p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
            .unwrap_or(clean_text);
        tracing::info!(from = %relative.escape_debug(), to = %final_rel.escape_debug(), "renamed a file from the network");
        out.push((final_rel, size));
    }
    out.sort();
    Ok(out)
}

async fn remove_dir(dir: &Path) {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "could not remove a task's directory"),
    }
}
