//! Tasks, their files and parts, and the chats' status messages.

use std::collections::HashMap;

use super::{Store, Write, sql};
use crate::limits::{self, check, check_opt};
use crate::{
    Backend, Error, NewTask, Part, Progress, Result, Row, SentFile, Source, Statement, StatusMessage, Task,
    TaskFile, TaskFilter, TaskState, TaskWithFiles, Value,
};

fn u64_of(column: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::decode(column, format!("negative value {v}")))
}

pub(super) fn task_from_row(r: &Row) -> Result<Task> {
    let options = r.text(7)?;
    Ok(Task {
        id: r.int(0)?,
        chat: r.int(1)?,
        user: r.int(2)?,
        source: Source::from_parts(&r.text(3)?, r.text(4)?)?,
        kind: r.text(5)?.parse()?,
        name: r.opt_text(6)?,
        options: serde_json::from_str(&options).map_err(|e| Error::decode("tasks.options", e.to_string()))?,
        state: r.text(8)?.parse()?,
        progress: Progress {
            done: u64_of("tasks.bytes_done", r.int(9)?)?,
            total: r.opt_int(10)?.map(|t| u64_of("tasks.bytes_total", t)).transpose()?,
            speed: u64_of("tasks.speed", r.int(11)?)?,
        },
        error: r.opt_text(12)?,
        gid: r.opt_text(13)?,
        created_at: r.int(14)?,
        started_at: r.opt_int(15)?,
        updated_at: r.int(16)?,
        finished_at: r.opt_int(17)?,
        link: r.opt_text(18)?,
        owner: r.opt_text(19)?,
        lease_until: r.opt_int(20)?,
        fence: r.int(21)?,
    })
}

/// Groups `f.id, f.task_id, f.path, f.size, p.part, p.size, p.message_id, p.remote_path`
/// rows (ordered by task, file, part) into files per task.
pub(super) fn files_from_rows(rows: &[Row]) -> Result<HashMap<i64, Vec<TaskFile>>> {
    let mut by_task: HashMap<i64, Vec<TaskFile>> = HashMap::new();
    for r in rows {
        let (id, task) = (r.int(0)?, r.int(1)?);
        let files = by_task.entry(task).or_default();
        if files.last().is_none_or(|f| f.id != id) {
            files.push(TaskFile {
                id,
                task,
                path: r.text(2)?,
                size: u64_of("task_files.size", r.int(3)?)?,
                parts: vec![],
            });
        }
        if let Some(index) = r.opt_int(4)? {
            let part = Part {
                index: u32::try_from(index).map_err(|_| Error::decode("file_parts.part", "out of range"))?,
                size: u64_of("file_parts.size", r.int(5)?)?,
                message_id: r.opt_int(6)?,
                remote_path: r.opt_text(7)?,
            };
            if let Some(file) = files.last_mut() {
                file.parts.push(part);
            }
        }
    }
    Ok(by_task)
}

impl<B: Backend> Store<B> {
    /// Creates a queued task and returns it once its row is committed (durable: a
    /// restart after this returns finds it in [`unfinished_tasks`](Self::unfinished_tasks)).
    pub async fn create_task(&self, task: &NewTask) -> Result<Task> {
        let (source_kind, source) = task.source.parts();
        check("task.source", source, limits::SOURCE)?;
        check_opt("task.name", task.name.as_deref(), limits::NAME)?;
        let options = task.options.to_string();
        check("task.options", &options, limits::OPTIONS)?;
        let now = self.inner.shared.now_ms();
        let insert = Statement::query(
            sql::CREATE_TASK,
            vec![
                Value::Int(task.chat),
                Value::Int(task.user),
                source_kind.into(),
                source.into(),
                task.kind.as_str().into(),
                task.name.clone().into(),
                options.into(),
                Value::Int(now),
            ],
        );
        let out = self.run_one(insert).await?;
        out.rows.first().map_or_else(|| Err(Error::decode("tasks", "no row returned")), task_from_row)
    }

    /// The task, if it exists.
    pub async fn task(&self, id: i64) -> Result<Option<Task>> {
        let out = self.run_one(Statement::query(sql::TASK, vec![Value::Int(id)])).await?;
        out.rows.first().map(task_from_row).transpose()
    }

    async fn transition(&self, id: i64, to: TaskState, text: Option<String>) -> Result<()> {
        self.submit(Write::Transition { id, to, text }).await
    }

    /// Queued (or downloading, when reattaching after a restart) → downloading, with
    /// the aria2 GID. Returns after the commit.
    pub async fn mark_started(&self, id: i64, gid: &str) -> Result<()> {
        check("task.gid", gid, limits::GID)?;
        self.transition(id, TaskState::Downloading, Some(gid.to_owned())).await
    }

    /// Downloading → uploading.
    pub async fn mark_uploading(&self, id: i64) -> Result<()> {
        self.transition(id, TaskState::Uploading, None).await
    }

    /// Downloading or uploading → seeding.
    pub async fn mark_seeding(&self, id: i64) -> Result<()> {
        self.transition(id, TaskState::Seeding, None).await
    }

    /// Downloading, uploading or seeding → completed.
    pub async fn mark_completed(&self, id: i64) -> Result<()> {
        self.transition(id, TaskState::Completed, None).await
    }

    /// Any unfinished state → failed, with why (at most
    /// [`limits::ERROR`](crate::limits::ERROR) bytes).
    pub async fn mark_failed(&self, id: i64, error: &str) -> Result<()> {
        check("task.error", error, limits::ERROR)?;
        self.transition(id, TaskState::Failed, Some(error.to_owned())).await
    }

    /// Any unfinished state → cancelled.
    pub async fn mark_cancelled(&self, id: i64) -> Result<()> {
        self.transition(id, TaskState::Cancelled, None).await
    }

    /// Sets a task's name (once the download knows it), at most
    /// [`limits::NAME`](crate::limits::NAME) bytes.
    pub async fn set_name(&self, id: i64, name: &str) -> Result<()> {
        check("task.name", name, limits::NAME)?;
        let update = Statement::execute(
            sql::SET_NAME,
            vec![Value::Int(id), name.into(), Value::Int(self.inner.shared.now_ms())],
        )
        .with(self.inner.shared.guards().of_task(id));
        if self.run_one(update).await?.affected == 0 {
            return Err(self.refused(id, "task").await);
        }
        Ok(())
    }

    /// Replaces an unfinished task's options (a choice made while it runs, such as the
    /// torrent files picked on the selection page), at most
    /// [`limits::OPTIONS`](crate::limits::OPTIONS) bytes once encoded. A task that has
    /// ended keeps the options it ended with: that is [`Error::NotFound`].
    pub async fn set_options(&self, id: i64, options: &serde_json::Value) -> Result<()> {
        let options = options.to_string();
        check("task.options", &options, limits::OPTIONS)?;
        let update = Statement::execute(
            sql::SET_OPTIONS,
            vec![Value::Int(id), options.into(), Value::Int(self.inner.shared.now_ms())],
        )
        .with(self.inner.shared.guards().of_task(id));
        if self.run_one(update).await?.affected == 0 {
            return Err(self.refused(id, "unfinished task").await);
        }
        Ok(())
    }

    /// Records the share link of a task's result (a mirror's `rclone link`).
    pub async fn set_link(&self, id: i64, link: &str) -> Result<()> {
        check("task.link", link, limits::PATH)?;
        let update = Statement::execute(sql::SET_LINK, vec![Value::Int(id), link.into()])
            .with(self.inner.shared.guards().of_task(id));
        let out = self.run_one(update).await?;
        if out.affected == 0 {
            if let Some(fenced) = self.inner.shared.fenced(id).await {
                return Err(fenced);
            }
            return Err(Error::NotFound { what: "task", id });
        }
        Ok(())
    }

    /// Why a write to task `id` matched no row: fenced, or `what` `id` does not exist.
    async fn refused(&self, id: i64, what: &'static str) -> Error {
        self.inner.shared.fenced(id).await.unwrap_or(Error::NotFound { what, id })
    }

    /// The `file_id` recorded for content with this SHA-256 (lowercase hex), if any.
    pub async fn sent_file(&self, sha256: &str) -> Result<Option<SentFile>> {
        check_sha256(sha256)?;
        let out = self.run_one(Statement::query(sql::SENT_FILE, vec![sha256.into()])).await?;
        out.rows
            .first()
            .map(|r| {
                Ok(SentFile {
                    sha256: r.text(0)?,
                    size: u64_of("sent_files.size", r.int(1)?)?,
                    file_id: r.text(2)?,
                    file_name: r.text(3)?,
                    probe: r.opt_text(4)?,
                })
            })
            .transpose()
    }

    /// Whether content of exactly `size` bytes with this probe (or with none recorded) was
    /// sent: a cheap test, by index, that spares hashing content that cannot match any
    /// record.
    pub async fn has_sent_file_like(&self, size: u64, probe: &str) -> Result<bool> {
        check("sent_file.probe", probe, limits::PROBE)?;
        let size = Value::Int(limits::to_i64("sent_file.size", size)?);
        let query = Statement::query(sql::SENT_FILE_LIKE, vec![size, probe.into()]);
        Ok(!self.run_one(query).await?.rows.is_empty())
    }

    /// Remembers the `file_id` of sent content (replacing an earlier record of the same
    /// content).
    pub async fn remember_sent_file(&self, sent: &SentFile) -> Result<()> {
        check_sha256(&sent.sha256)?;
        check("sent_file.file_id", &sent.file_id, limits::FILE_ID)?;
        check("sent_file.file_name", &sent.file_name, limits::NAME)?;
        if let Some(probe) = &sent.probe {
            check("sent_file.probe", probe, limits::PROBE)?;
        }
        let insert = Statement::execute(
            sql::REMEMBER_SENT_FILE,
            vec![
                sent.sha256.as_str().into(),
                Value::Int(limits::to_i64("sent_file.size", sent.size)?),
                sent.file_id.as_str().into(),
                sent.file_name.as_str().into(),
                Value::Int(self.inner.shared.now_ms()),
                Value::from(sent.probe.as_deref()),
            ],
        );
        self.run_one(insert).await?;
        Ok(())
    }

    /// Forgets the record of sent content (Telegram no longer accepts its `file_id`).
    /// Returns whether there was one.
    pub async fn forget_sent_file(&self, sha256: &str) -> Result<bool> {
        check_sha256(sha256)?;
        Ok(self.run_one(Statement::execute(sql::FORGET_SENT_FILE, vec![sha256.into()])).await?.affected > 0)
    }

    /// Records a task's progress. Concurrent calls (for many tasks) share one
    /// transaction; each caller gets its own result ([`Error::NotFound`] for a missing
    /// task, [`Error::InvalidTransition`] for a finished one). Batched statements serve
    /// many callers, so they are reported outside any span.
    pub async fn update_progress(&self, id: i64, progress: Progress) -> Result<()> {
        self.submit(Write::progress(id, progress)?).await
    }

    /// Records a file the task produced; returns its id.
    pub async fn add_file(&self, task: i64, path: &str, size: u64) -> Result<i64> {
        check("file.path", path, limits::PATH)?;
        let size = limits::to_i64("file.size", size)?;
        let mut params =
            vec![Value::Int(task), path.into(), Value::Int(size), Value::Int(self.inner.shared.now_ms())];
        params.extend(self.inner.shared.guards().of_task(task));
        let out = self.run_one(Statement::query(sql::ADD_FILE, params)).await?;
        match out.rows.first() {
            Some(r) => {
                let id = r.int(0)?;
                self.inner.shared.guards().file_added(task, id);
                Ok(id)
            }
            None => Err(self.refused(task, "task").await),
        }
    }

    /// Records an uploaded part of a file (replacing an earlier record of the same part).
    pub async fn add_part(&self, file: i64, part: &Part) -> Result<()> {
        check_opt("part.remote_path", part.remote_path.as_deref(), limits::PATH)?;
        let insert = Statement::execute(
            sql::ADD_PART,
            vec![
                Value::Int(file),
                Value::Int(part.index.into()),
                Value::Int(limits::to_i64("part.size", part.size)?),
                part.message_id.into(),
                part.remote_path.clone().into(),
                Value::Int(self.inner.shared.now_ms()),
            ],
        );
        let guard = self.inner.shared.guards().of_file(file);
        let insert = insert.with(guard);
        if self.run_one(insert).await?.affected == 0 {
            let task = self.inner.shared.guards().files.get(&file).copied();
            return Err(match task {
                Some(task) => {
                    self.inner.shared.fenced(task).await.unwrap_or(Error::NotFound { what: "file", id: file })
                }
                None => Error::NotFound { what: "file", id: file },
            });
        }
        Ok(())
    }

    /// One task's files with their parts (one query).
    pub async fn task_files(&self, task: i64) -> Result<Vec<TaskFile>> {
        let out = self.run_one(Statement::query(sql::FILES_OF_TASK, vec![Value::Int(task)])).await?;
        Ok(files_from_rows(&out.rows)?.remove(&task).unwrap_or_default())
    }

    /// Tasks with their files and parts: two queries in one transaction, whatever the
    /// number of tasks.
    pub async fn tasks_with_files(&self, filter: TaskFilter) -> Result<Vec<TaskWithFiles>> {
        let (tasks, files, params) = match filter {
            TaskFilter::Unfinished => (sql::TASKS_UNFINISHED, sql::FILES_UNFINISHED, vec![]),
            TaskFilter::Chat(chat) => (sql::TASKS_CHAT, sql::FILES_CHAT, vec![Value::Int(chat)]),
            TaskFilter::Recent(n) => (sql::TASKS_RECENT, sql::FILES_RECENT, vec![Value::Int(n.into())]),
        };
        let out = self
            .run(vec![Statement::query(tasks, params.clone()), Statement::query(files, params)], true)
            .await?;
        let [tasks, files] = out.as_slice() else {
            return Err(Error::decode("(statements)", "expected two outcomes"));
        };
        let mut files = files_from_rows(&files.rows)?;
        tasks
            .rows
            .iter()
            .map(|r| {
                let task = task_from_row(r)?;
                Ok(TaskWithFiles { files: files.remove(&task.id).unwrap_or_default(), task })
            })
            .collect()
    }

    /// Every task a restart must resume (queued, downloading, uploading), oldest first,
    /// with its source, options, GID, progress and files.
    pub async fn unfinished_tasks(&self) -> Result<Vec<TaskWithFiles>> {
        self.tasks_with_files(TaskFilter::Unfinished).await
    }

    /// Finished tasks (completed, failed, cancelled) whose end was not announced yet,
    /// oldest first, at most `limit`: what the bot still has to tell their chats, after a
    /// restart too.
    pub async fn unannounced_tasks(&self, limit: u32) -> Result<Vec<Task>> {
        let query = Statement::query(sql::UNANNOUNCED, vec![Value::Int(limit.into())]);
        self.run_one(query).await?.rows.iter().map(task_from_row).collect()
    }

    /// Records that the end of task `id` is being announced. Returns whether this call
    /// recorded it: `false` when it was already announced, is not finished, or does not
    /// exist. Announcing only after a `true` tells each end once, even with several
    /// callers.
    pub async fn mark_announced(&self, id: i64) -> Result<bool> {
        let update = Statement::execute(
            sql::MARK_ANNOUNCED,
            vec![Value::Int(id), Value::Int(self.inner.shared.now_ms())],
        );
        Ok(self.run_one(update).await?.affected > 0)
    }

    /// Takes back [`mark_announced`](Self::mark_announced) when the announcement could
    /// not be sent, so that it is tried again.
    pub async fn unmark_announced(&self, id: i64) -> Result<()> {
        self.run_one(Statement::execute(sql::UNMARK_ANNOUNCED, vec![Value::Int(id)])).await.map(drop)
    }

    /// Records the chat's live status message.
    pub async fn set_status_message(&self, chat: i64, message_id: i64) -> Result<()> {
        let upsert = Statement::execute(
            sql::UPSERT_STATUS,
            vec![Value::Int(chat), Value::Int(message_id), Value::Int(self.inner.shared.now_ms())],
        );
        self.run_one(upsert).await.map(drop)
    }

    /// Every chat's status message.
    pub async fn status_messages(&self) -> Result<Vec<StatusMessage>> {
        let out = self.run_one(Statement::query(sql::STATUS_MESSAGES, vec![])).await?;
        out.rows
            .iter()
            .map(|r| Ok(StatusMessage { chat: r.int(0)?, message_id: r.int(1)?, updated_at: r.int(2)? }))
            .collect()
    }

    /// Forgets the chat's status message; `false` if there was none.
    pub async fn remove_status_message(&self, chat: i64) -> Result<bool> {
        let out = self.run_one(Statement::execute(sql::DELETE_STATUS, vec![Value::Int(chat)])).await?;
        Ok(out.affected > 0)
    }
}

fn check_sha256(sha256: &str) -> Result<()> {
    if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(Error::Invalid { field: "sent_file.sha256", reason: "expected 64 lowercase hex digits".into() })
    }
}
