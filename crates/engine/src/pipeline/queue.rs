//! Admission: which task may start downloading or uploading now, under the Python bot's
//! limits (`queue_all`, `queue_download`, `queue_upload`, with force-start) and the two
//! its users asked for (a per-user limit, a free-disk threshold).

use std::collections::{HashMap, VecDeque};
use std::path::Path;

/// The limits; `None` is unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QueueLimits {
    /// Tasks downloading or uploading at once (`queue_all`).
    pub all: Option<usize>,
    /// Tasks downloading at once (`queue_download`).
    pub download: Option<usize>,
    /// Tasks uploading at once (`queue_upload`).
    pub upload: Option<usize>,
    /// Tasks of one user downloading or uploading at once.
    pub per_user: Option<usize>,
    /// Bytes that must stay free on the download directory's disk: below it, new downloads
    /// wait instead of failing.
    pub min_free_disk: u64,
}

impl QueueLimits {
    /// No limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// `queue_all`.
    pub fn all(mut self, n: usize) -> Self {
        self.all = Some(n);
        self
    }

    /// `queue_download`.
    pub fn download(mut self, n: usize) -> Self {
        self.download = Some(n);
        self
    }

    /// `queue_upload`.
    pub fn upload(mut self, n: usize) -> Self {
        self.upload = Some(n);
        self
    }

    /// A per-user limit.
    pub fn per_user(mut self, n: usize) -> Self {
        self.per_user = Some(n);
        self
    }

    /// The free-disk threshold in bytes.
    pub fn min_free_disk(mut self, bytes: u64) -> Self {
        self.min_free_disk = bytes;
        self
    }
}

/// The stage a slot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Download,
    Upload,
}

/// Why a task waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Waiting {
    /// `queue_all` is reached.
    All,
    /// `queue_download` is reached.
    Download,
    /// `queue_upload` is reached.
    Upload,
    /// The user's own limit is reached.
    User,
    /// Free disk space is under the threshold.
    Disk,
    /// Tasks queued before it go first.
    Turn,
}

/// Slots taken, and the tasks waiting in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    limits: QueueLimits,
    downloading: usize,
    uploading: usize,
    by_user: HashMap<i64, usize>,
    /// Tasks (and their users) waiting for a download slot, first come first served.
    waiting: VecDeque<(i64, i64)>,
    forced: std::collections::HashSet<i64>,
}

impl Queue {
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// Puts `task` of `user` in line for a download slot.
    pub(crate) fn enqueue(&mut self, task: i64, user: i64) {
        if !self.waiting.iter().any(|(t, _)| *t == task) {
            self.waiting.push_back((task, user));
        }
    }

    /// Whether `user` has as many tasks running as the per-user limit allows.
    fn user_full(&self, user: i64, moving: usize) -> bool {
        let mine = self.by_user.get(&user).copied().unwrap_or(0);
        self.limits.per_user.is_some_and(|n| mine.saturating_sub(moving) >= n)
    }

    /// The task whose turn it is to download: the first in line that is neither
    /// force-started (those go at once) nor held back by its own user's limit (which must
    /// not hold back other users).
    fn next_in_line(&self) -> Option<i64> {
        self.waiting.iter().find(|(t, u)| !self.forced.contains(t) && !self.user_full(*u, 0)).map(|(t, _)| *t)
    }

    /// Lets a task start regardless of the limits (`/forcestart`).
    pub(crate) fn force(&mut self, task: i64) {
        self.forced.insert(task);
    }

    /// Takes a slot for `task` of `user` if it may start `stage` now; else says why not.
    /// `free_disk` is asked only for downloads, and only when a threshold is set.
    pub(crate) fn try_take(
        &mut self,
        task: i64,
        user: i64,
        stage: Stage,
        free_disk: impl FnOnce() -> Option<u64>,
    ) -> Result<(), Waiting> {
        let forced = self.forced.contains(&task);
        if !forced {
            let moving = usize::from(stage == Stage::Upload);
            if self.user_full(user, moving) {
                return Err(Waiting::User);
            }
            if stage == Stage::Download && self.next_in_line() != Some(task) {
                return Err(Waiting::Turn);
            }
            let active = self.downloading + self.uploading;
            // A task moving from download to upload keeps its place in `all` and per user.
            if self.limits.all.is_some_and(|n| active - moving >= n) {
                return Err(Waiting::All);
            }
            match stage {
                Stage::Download if self.limits.download.is_some_and(|n| self.downloading >= n) => {
                    return Err(Waiting::Download);
                }
                Stage::Upload if self.limits.upload.is_some_and(|n| self.uploading >= n) => {
                    return Err(Waiting::Upload);
                }
                _ => {}
            }
            if stage == Stage::Download
                && self.limits.min_free_disk > 0
                && free_disk().is_some_and(|free| free < self.limits.min_free_disk)
            {
                return Err(Waiting::Disk);
            }
        }
        match stage {
            Stage::Download => {
                self.waiting.retain(|(t, _)| *t != task);
                self.downloading += 1;
                *self.by_user.entry(user).or_default() += 1;
            }
            Stage::Upload => {
                self.downloading = self.downloading.saturating_sub(1);
                self.uploading += 1;
            }
        }
        Ok(())
    }

    /// Marks `task` as holding a download slot without asking (a download re-attached
    /// after a restart).
    pub(crate) fn hold_download(&mut self, task: i64, user: i64) {
        self.waiting.retain(|(t, _)| *t != task);
        self.downloading += 1;
        *self.by_user.entry(user).or_default() += 1;
    }

    /// Marks `task` as holding an upload slot without asking (an upload resumed after a
    /// restart).
    pub(crate) fn hold_upload(&mut self, task: i64, user: i64) {
        self.waiting.retain(|(t, _)| *t != task);
        self.uploading += 1;
        *self.by_user.entry(user).or_default() += 1;
    }

    /// Gives back whatever `task` of `user` held at `stage` (`None`: it held nothing but
    /// its place in line).
    pub(crate) fn release(&mut self, task: i64, user: i64, stage: Option<Stage>) {
        self.waiting.retain(|(t, _)| *t != task);
        self.forced.remove(&task);
        match stage {
            Some(Stage::Download) => self.downloading = self.downloading.saturating_sub(1),
            Some(Stage::Upload) => self.uploading = self.uploading.saturating_sub(1),
            None => return,
        }
        if let Some(n) = self.by_user.get_mut(&user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_user.remove(&user);
            }
        }
    }

    /// Tasks downloading and uploading now.
    pub(crate) fn active(&self) -> (usize, usize) {
        (self.downloading, self.uploading)
    }

    /// Tasks waiting for a download slot.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// Bytes free for an unprivileged writer on the disk holding `path`.
pub(crate) fn free_disk(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &mut Queue, task: i64, user: i64, stage: Stage) -> Result<(), Waiting> {
        q.try_take(task, user, stage, || Some(u64::MAX))
    }

    #[test]
    fn download_slots_are_taken_in_arrival_order() {
        let mut q = Queue::new(QueueLimits::new().download(1));
        q.enqueue(1, 9);
        q.enqueue(2, 9);
        assert_eq!(ok(&mut q, 2, 9, Stage::Download), Err(Waiting::Turn), "2 waits its turn");
        assert_eq!(ok(&mut q, 1, 9, Stage::Download), Ok(()));
        assert_eq!(ok(&mut q, 2, 9, Stage::Download), Err(Waiting::Download));
        q.release(1, 9, Some(Stage::Download));
        assert_eq!(ok(&mut q, 2, 9, Stage::Download), Ok(()));
    }

    #[test]
    fn all_upload_and_user_limits_hold_and_force_start_bypasses_them() {
        let mut q = Queue::new(QueueLimits::new().all(2).upload(1).per_user(1));
        for (t, u) in [(1, 10), (2, 10), (3, 11), (4, 12)] {
            q.enqueue(t, u);
        }
        assert_eq!(ok(&mut q, 3, 11, Stage::Download), Err(Waiting::Turn), "1 and 2 came first");
        assert_eq!(ok(&mut q, 1, 10, Stage::Download), Ok(()));
        assert_eq!(ok(&mut q, 2, 10, Stage::Download), Err(Waiting::User), "user 10 has one running");
        // 2 waits on its own user's limit, which does not hold back user 11.
        assert_eq!(ok(&mut q, 3, 11, Stage::Download), Ok(()));
        assert_eq!(ok(&mut q, 4, 12, Stage::Download), Err(Waiting::All));
        // Moving to upload keeps the task's place in `all`; one upload at a time.
        assert_eq!(ok(&mut q, 1, 10, Stage::Upload), Ok(()));
        assert_eq!(ok(&mut q, 3, 11, Stage::Upload), Err(Waiting::Upload));
        q.force(4);
        assert_eq!(ok(&mut q, 4, 12, Stage::Download), Ok(()), "force-start ignores every limit");
        assert_eq!(q.active(), (2, 1));
    }

    #[test]
    fn under_the_disk_threshold_downloads_wait() {
        let mut q = Queue::new(QueueLimits::new().min_free_disk(1000));
        q.enqueue(1, 1);
        assert_eq!(q.try_take(1, 1, Stage::Download, || Some(999)), Err(Waiting::Disk));
        assert_eq!(q.try_take(1, 1, Stage::Download, || Some(1000)), Ok(()));
    }

    #[test]
    fn free_disk_reads_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_disk(dir.path()).is_some_and(|b| b > 0));
        assert_eq!(free_disk(&dir.path().join("missing")), None);
    }
}
