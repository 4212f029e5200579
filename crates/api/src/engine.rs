//! [`TaskEngine`]: what the API needs from the task engine, without its backend type.

use mltb_engine::{Choice, ChoiceError, Chosen, Engine, TaskView};
use mltb_store::{Backend, Task, TaskFilter};

/// Tasks downloading, uploading and waiting for a download slot now
/// ([`Engine::queue_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct QueueCounts {
    /// Tasks holding a download slot.
    pub downloading: u64,
    /// Tasks holding an upload slot.
    pub uploading: u64,
    /// Tasks waiting for a download slot.
    pub waiting: u64,
}

impl QueueCounts {
    /// The counts.
    pub fn new(downloading: u64, uploading: u64, waiting: u64) -> Self {
        Self { downloading, uploading, waiting }
    }
}

/// The task engine as the API sees it: live tasks, cancel, queue counts, and the store's
/// rows. Implemented for every [`Engine<B>`](Engine), so the API's state is not generic
/// over the store's backend; tests may implement it over anything.
#[async_trait::async_trait]
pub trait TaskEngine: Send + Sync + 'static {
    /// Every task running in this process, by id ([`Engine::tasks`]).
    fn live(&self) -> Vec<TaskView>;

    /// Cancels a task running here; `false` if it is not running here.
    fn cancel(&self, id: i64) -> bool;

    /// Cancels a task wherever it runs ([`Engine::cancel_anywhere`]: with several
    /// instances, one running on another is cancelled by it); `false` if no unfinished
    /// task has that id. By default, only here.
    async fn cancel_anywhere(&self, id: i64) -> mltb_engine::Result<bool> {
        Ok(self.cancel(id))
    }

    /// The queue's counts now.
    fn queue_counts(&self) -> QueueCounts;

    /// Tasks this process ran to an end: completed, failed, cancelled. Zero by default.
    fn finished_counts(&self) -> (u64, u64, u64) {
        (0, 0, 0)
    }

    /// The stored task `id`, if there is one.
    async fn stored(&self, id: i64) -> mltb_store::Result<Option<Task>>;

    /// Every unfinished task in the store (queued, downloading, uploading), whichever
    /// process runs it, oldest first.
    async fn unfinished(&self) -> mltb_store::Result<Vec<Task>>;

    /// The `limit` most recent tasks in the store, newest first, whatever their state.
    async fn recent(&self, limit: u32) -> mltb_store::Result<Vec<Task>>;

    /// The file list of task `id`, waiting for its torrent's files to be chosen, when
    /// `key` is its key ([`Engine::choice`]). None by default.
    async fn choice(&self, id: i64, key: &str) -> Result<Choice, ChoiceError> {
        let _ = (id, key);
        Err(ChoiceError::Unknown)
    }

    /// Chooses `files` of task `id` and starts their download ([`Engine::choose`]).
    /// Refused by default.
    fn choose(&self, id: i64, key: &str, files: &[u32]) -> Result<Chosen, ChoiceError> {
        let _ = (id, key, files);
        Err(ChoiceError::Unknown)
    }
}

#[async_trait::async_trait]
impl<B: Backend> TaskEngine for Engine<B> {
    fn live(&self) -> Vec<TaskView> {
        self.tasks()
    }

    fn cancel(&self, id: i64) -> bool {
        Engine::cancel(self, id)
    }

    async fn cancel_anywhere(&self, id: i64) -> mltb_engine::Result<bool> {
        Engine::cancel_anywhere(self, id).await
    }

    fn finished_counts(&self) -> (u64, u64, u64) {
        Engine::finished_counts(self)
    }

    fn queue_counts(&self) -> QueueCounts {
        let (d, u, w) = Engine::queue_counts(self);
        QueueCounts::new(d as u64, u as u64, w as u64)
    }

    async fn stored(&self, id: i64) -> mltb_store::Result<Option<Task>> {
        self.store().task(id).await
    }

    async fn unfinished(&self) -> mltb_store::Result<Vec<Task>> {
        Ok(self.store().unfinished_tasks().await?.into_iter().map(|t| t.task).collect())
    }

    async fn choice(&self, id: i64, key: &str) -> Result<Choice, ChoiceError> {
        Engine::choice(self, id, key).await
    }

    fn choose(&self, id: i64, key: &str, files: &[u32]) -> Result<Chosen, ChoiceError> {
        Engine::choose(self, id, key, files)
    }

    async fn recent(&self, limit: u32) -> mltb_store::Result<Vec<Task>> {
        Ok(self
            .store()
            .tasks_with_files(TaskFilter::Recent(limit))
            .await?
            .into_iter()
            .map(|t| t.task)
            .collect())
    }
}
