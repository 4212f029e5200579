//! Choosing a torrent's files before its download (`-s`): the task pauses once the file
//! list is known, the selection page shows the list to whoever holds the task's key,
//! and the choice starts the download of those files only.
//!
//! The key is 128 random bits made when the task is submitted and kept in its options,
//! so a link sent before a restart still opens the page after it. A choice is taken
//! once, only while the task waits for it: the page is closed as soon as the download
//! starts, and when the task is cancelled or ends.

use std::path::Path;

use mltb_store::{Backend, Task};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{Engine, TaskOptions, cancelled};
use crate::download::{DownloadId, DownloadStatus};
use crate::leech::store_error;
use crate::{Error, ErrorKind, Result};

/// A file of a torrent waiting for a choice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ChoiceFile {
    /// Its 1-based index, as [`Engine::choose`] takes it.
    pub index: u32,
    /// Its path inside the torrent, `/`-separated (the torrent's folder first).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

impl ChoiceFile {
    /// A file.
    pub fn new(index: u32, path: impl Into<String>, size: u64) -> Self {
        Self { index, path: path.into(), size }
    }
}

/// A task waiting for its files to be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Choice {
    /// The task's id.
    pub task: i64,
    /// The torrent's name, once known.
    pub name: Option<String>,
    /// The torrent's files, by index.
    pub files: Vec<ChoiceFile>,
}

impl Choice {
    /// The choice of task `task`'s files.
    pub fn new(task: i64, name: Option<String>, files: Vec<ChoiceFile>) -> Self {
        Self { task, name, files }
    }
}

/// What a choice starts: how many files, and their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Chosen {
    /// Files chosen.
    pub files: usize,
    /// Their bytes in all.
    pub bytes: u64,
}

impl Chosen {
    /// `files` files of `bytes` bytes in all.
    pub fn new(files: usize, bytes: u64) -> Self {
        Self { files, bytes }
    }
}

/// Why the selection page cannot show a task's files or take a choice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChoiceError {
    /// No task has this id and key (the two are not told apart).
    #[error("no task has this id and key")]
    Unknown,
    /// The file list is not known yet: the torrent's metadata is still downloading.
    #[error("the file list is not known yet: the torrent's metadata is still downloading")]
    NotReady,
    /// The choice was made, or the task was cancelled or ended.
    #[error("the selection is closed: the download has started, or the task was cancelled or ended")]
    Closed,
    /// The files given are not a choice among the torrent's.
    #[error("{0}")]
    Invalid(String),
    /// The store did not answer.
    #[error("the store did not answer: {0}")]
    Store(String),
}

/// The choice a task waits for, held with its live view.
pub(super) struct Open {
    key: String,
    choice: Choice,
    made: Option<oneshot::Sender<Vec<u32>>>,
}

/// Whether two keys are equal, in time that does not depend on where they differ.
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new key: 16 random bytes, hex.
pub(super) fn new_key() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::from(ErrorKind::Io { path: "the OS's randomness".into(), reason: e.to_string() })
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks `files` (1-based) against a torrent of `count` files: at least one, each in
/// range. Returns them sorted, without repeats.
fn checked(files: &[u32], count: usize) -> std::result::Result<Vec<u32>, ChoiceError> {
    if files.is_empty() {
        return Err(ChoiceError::Invalid("choose at least one file".into()));
    }
    if let Some(bad) = files.iter().find(|&&i| i == 0 || i as usize > count) {
        return Err(ChoiceError::Invalid(format!(
            "file {bad} is not one of the torrent's: expected 1 to {count}"
        )));
    }
    let mut files = files.to_vec();
    files.sort_unstable();
    files.dedup();
    Ok(files)
}

impl<B: Backend> Engine<B> {
    /// The file list of task `id`, while it waits for a choice and `key` is its key.
    /// Otherwise why not: [`ChoiceError::Unknown`] for a wrong id or key (checked
    /// against the stored key, so that only the key's holder learns more), `NotReady`
    /// while the metadata downloads, `Closed` once the download started or the task
    /// ended.
    pub async fn choice(&self, id: i64, key: &str) -> std::result::Result<Choice, ChoiceError> {
        let live = self.with_live(id, |l| {
            l.choice.as_ref().map(|open| same_key(key, &open.key).then(|| open.choice.clone()))
        });
        match live {
            Some(Some(Some(choice))) => return Ok(choice),
            Some(Some(None)) => return Err(ChoiceError::Unknown),
            _ => {}
        }
        let task = self.store().task(id).await.map_err(|e| ChoiceError::Store(e.to_string()))?;
        let Some(task) = task else { return Err(ChoiceError::Unknown) };
        let options = TaskOptions::from_json(&task.options).unwrap_or_default();
        if !options.choose_key.as_deref().is_some_and(|k| same_key(key, k)) {
            return Err(ChoiceError::Unknown);
        }
        let running = live.is_some() && !task.state.is_finished();
        if running && options.select.is_none() {
            Err(ChoiceError::NotReady)
        } else {
            Err(ChoiceError::Closed)
        }
    }

    /// Chooses `files` (1-based, as [`choice`](Self::choice) numbers them) of task `id`,
    /// waiting for a choice with key `key`: the download of those files starts, and the
    /// choice closes. Errors as [`choice`](Self::choice), and
    /// [`ChoiceError::Invalid`] for an empty list or an index out of range.
    pub fn choose(&self, id: i64, key: &str, files: &[u32]) -> std::result::Result<Chosen, ChoiceError> {
        let made = self.with_live(id, |l| {
            let Some(open) = l.choice.as_mut() else { return Err(ChoiceError::Closed) };
            if !same_key(key, &open.key) {
                return Err(ChoiceError::Unknown);
            }
            let files = checked(files, open.choice.files.len())?;
            let sender = open.made.take().ok_or(ChoiceError::Closed)?;
            let bytes =
                files.iter().map(|&i| open.choice.files[i as usize - 1].size).fold(0, u64::saturating_add);
            let chosen = Chosen { files: files.len(), bytes };
            sender.send(files).map_err(|_| ChoiceError::Closed)?;
            Ok(chosen)
        });
        // A task not running here has no open choice; whether the key is right is told
        // by `choice`, which reads the store.
        made.unwrap_or(Err(ChoiceError::Closed))
    }

    /// The key of task `id`'s open choice, for the link to its selection page.
    pub fn choice_key(&self, id: i64) -> Option<String> {
        self.with_live(id, |l| l.choice.as_ref().map(|open| open.key.clone())).flatten()
    }
}

/// The files of `status` as the page lists them: paths inside the task's directory.
fn files_of(status: &DownloadStatus, dir: &Path) -> Vec<ChoiceFile> {
    let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    status
        .files
        .iter()
        .zip(1u32..)
        .map(|(f, index)| {
            let relative =
                f.path.strip_prefix(&base).or_else(|_| f.path.strip_prefix(dir)).unwrap_or(&f.path);
            let path =
                relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            ChoiceFile { index, path, size: f.size }
        })
        .collect()
}

/// Waits for the choice of a torrent paused with its file list (`status`): opens it to
/// the selection page, records the files chosen in the task's options, and returns them.
/// `Ok(None)`: the engine is stopping. A torrent of one file needs no choice.
pub(super) async fn wait<B: Backend>(
    engine: &Engine<B>,
    task: &Task,
    gid: &DownloadId,
    status: &DownloadStatus,
    cancel: &CancellationToken,
) -> Result<Option<Vec<u32>>> {
    let inner = engine.inner();
    let mut options = task.options.clone();
    if !options.is_object() {
        options = serde_json::json!({});
    }
    let files = files_of(status, &engine.task_dir(task.id));
    if files.len() <= 1 {
        return Ok(Some(vec![1]));
    }
    let key = match options.get("choose_key").and_then(serde_json::Value::as_str) {
        Some(key) => key.to_owned(),
        None => {
            // A task not submitted through `Engine::submit`: its key is made now.
            let key = new_key()?;
            options["choose_key"] = serde_json::Value::String(key.clone());
            inner.store.set_options(task.id, &options).await.map_err(store_error)?;
            key
        }
    };
    let (made, chosen) = oneshot::channel();
    let total = files.iter().map(|f| f.size).fold(0, u64::saturating_add);
    let choice = Choice { task: task.id, name: status.name.clone().or_else(|| task.name.clone()), files };
    engine.with_live(task.id, |l| l.choice = Some(Open { key, choice, made: Some(made) }));
    // aria2 tells no total for a torrent paused before its start: the files' sizes do.
    engine.update(task.id, |v| {
        v.choosing = true;
        v.total = total;
    });
    tracing::info!(task = task.id, "waiting for the torrent's files to be chosen");
    let close = || {
        engine.with_live(task.id, |l| l.choice = None);
        engine.update(task.id, |v| v.choosing = false);
    };
    let halt = engine.halt(task.id);
    let files = tokio::select! {
        files = chosen => files.ok(),
        () = cancel.cancelled() => {
            close();
            if let Err(e) = inner.downloader.cancel(gid).await {
                tracing::warn!(task = task.id, error = %e, "could not remove the download");
            }
            return Err(cancelled());
        }
        () = halt.cancelled() => return Ok(None),
    };
    close();
    let Some(files) = files else { return Ok(None) };
    options["select"] = serde_json::json!(files);
    inner.store.set_options(task.id, &options).await.map_err(store_error)?;
    tracing::info!(task = task.id, files = files.len(), "files chosen");
    Ok(Some(files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(same_key("ab12", "ab12"));
        assert!(!same_key("ab12", "ab13"));
        assert!(!same_key("ab12", "ab1"));
        assert!(!same_key("", "a"));
        let key = new_key().unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(key, new_key().unwrap());
    }

    #[test]
    fn a_choice_is_checked_sorted_and_without_repeats() {
        assert_eq!(checked(&[4, 2, 4], 5), Ok(vec![2, 4]));
        assert!(matches!(checked(&[], 5), Err(ChoiceError::Invalid(_))));
        let e = checked(&[2, 6], 5).unwrap_err();
        assert_eq!(e, ChoiceError::Invalid("file 6 is not one of the torrent's: expected 1 to 5".into()));
        assert!(matches!(checked(&[0], 5), Err(ChoiceError::Invalid(_))));
    }

    #[test]
    fn files_are_listed_inside_the_task_directory() {
        let mut status = DownloadStatus::new(crate::DownloadState::Paused);
        let dir = Path::new("/d/7");
        for (p, size) in [("/d/7/pack/a.txt", 3), ("/d/7/pack/sub/b.bin", 5)] {
            status.files.push(crate::DownloadedFile { path: p.into(), size, done: 0, selected: true });
        }
        let files = files_of(&status, dir);
        assert_eq!(
            files,
            [
                ChoiceFile { index: 1, path: "pack/a.txt".into(), size: 3 },
                ChoiceFile { index: 2, path: "pack/sub/b.bin".into(), size: 5 },
            ]
        );
    }
}
