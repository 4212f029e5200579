//! Progress and state writes, coalesced by `mltb-batch` into one transaction per batch.

use super::{Shared, sql};
use crate::{Backend, Error, Progress, Result, Statement, TaskState, Value};

/// One task write waiting for its batch.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Progress { id: i64, done: i64, total: Option<i64>, speed: i64 },
    Transition { id: i64, to: TaskState, text: Option<String> },
}

impl Write {
    pub(crate) fn progress(id: i64, p: Progress) -> Result<Self> {
        Ok(Write::Progress {
            id,
            done: crate::limits::to_i64("progress.done", p.done)?,
            total: p.total.map(|t| crate::limits::to_i64("progress.total", t)).transpose()?,
            speed: crate::limits::to_i64("progress.speed", p.speed)?,
        })
    }

    fn id(&self) -> i64 {
        match self {
            Write::Progress { id, .. } | Write::Transition { id, .. } => *id,
        }
    }

    fn statement(&self, now: i64, guard: [Value; 2]) -> Statement {
        self.unguarded(now).with(guard)
    }

    fn unguarded(&self, now: i64) -> Statement {
        match self {
            Write::Progress { id, done, total, speed } => Statement::execute(
                sql::PROGRESS,
                vec![
                    Value::Int(*id),
                    Value::Int(*done),
                    (*total).into(),
                    Value::Int(*speed),
                    Value::Int(now),
                ],
            ),
            Write::Transition { id, to, text } => {
                let (sql, with_text) = match to {
                    TaskState::Downloading => (sql::TO_DOWNLOADING, true),
                    TaskState::Uploading => (sql::TO_UPLOADING, false),
                    TaskState::Seeding => (sql::TO_SEEDING, false),
                    TaskState::Completed => (sql::TO_COMPLETED, false),
                    TaskState::Failed => (sql::TO_FAILED, true),
                    // `Queued` is only ever the state a task is created in; the store's
                    // API never asks for it.
                    TaskState::Cancelled | TaskState::Queued => (sql::TO_CANCELLED, false),
                };
                let mut params = vec![Value::Int(*id), Value::Int(now)];
                if with_text {
                    params.push(text.clone().into());
                }
                Statement::execute(sql, params)
            }
        }
    }

    fn target(&self) -> &'static str {
        match self {
            Write::Progress { .. } => "updated with progress",
            Write::Transition { to, .. } => to.as_str(),
        }
    }
}

impl<B: Backend> Shared<B> {
    /// Writes a batch in one transaction and gives each write its own result: a write
    /// that matched no row (the task is missing, or its state does not allow it) fails
    /// alone, the others commit.
    pub(crate) async fn apply(&self, items: Vec<Write>) -> Result<Vec<Result<()>>> {
        let now = self.now_ms();
        let statements = {
            let guards = self.guards();
            items.iter().map(|w| w.statement(now, guards.of_task(w.id()))).collect()
        };
        let outcomes = self.backend.run(&self.exec, None, statements, true).await?;
        let mut results = Vec::with_capacity(items.len());
        for (write, outcome) in items.iter().zip(&outcomes) {
            results.push(if outcome.affected > 0 {
                if let Write::Transition { id, to, .. } = write
                    && to.is_finished()
                {
                    // An ended task needs no lease.
                    self.guards().drop_task(*id);
                }
                Ok(())
            } else {
                Err(self.explain(write).await)
            });
        }
        Ok(results)
    }

    /// Why a write matched no row (rare: one query per refused write).
    async fn explain(&self, write: &Write) -> Error {
        let id = write.id();
        if let Some(fenced) = self.fenced(id).await {
            return fenced;
        }
        let stmt = Statement::query(sql::TASK_STATE, vec![Value::Int(id)]);
        match self.backend.run(&self.exec, None, vec![stmt], false).await {
            Ok(out) => match out.first().and_then(|o| o.rows.first()).map(|r| r.text(0)) {
                None => Error::NotFound { what: "task", id },
                Some(Ok(from)) => Error::InvalidTransition { id, from, to: write.target() },
                Some(Err(e)) => e,
            },
            Err(e) => e,
        }
    }
}
