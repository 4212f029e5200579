//! Several instances on one database: task leases with fencing tokens, and roles one
//! instance holds at a time (the Telegram poller) with a saved position (its update
//! offset).
//!
//! - **Claims.** [`Store::claim_tasks`] takes unfinished tasks that nobody holds or whose
//!   lease ran out (`UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` on
//!   PostgreSQL: concurrent claimers skip each other's rows, never wait, never take the
//!   same task). Each claim raises the task's fencing token. The holder renews its
//!   leases ([`Store::renew_tasks`]); a task whose lease runs out is free to claim.
//! - **Fencing.** Once this store holds a task, every write to it (progress,
//!   transitions, name, options, link, files, parts) carries the instance's id and the
//!   token, and is refused with [`Error::Fenced`] when the row says otherwise: a
//!   paused-then-revived instance cannot write over the new owner's progress.
//! - **Roles.** [`Store::acquire_role`] takes a role that is free or expired, renews it
//!   for its holder, and raises its fence on every change of hands;
//!   [`Store::save_position`] only writes under the fence held, and only forward.
//!
//! Leases are judged by the instances' clocks (Unix milliseconds): keep them in sync
//! (NTP), and the lease well above the skew.

use std::collections::HashMap;
use std::time::Duration;

use super::tasks::{files_from_rows, task_from_row};
use super::{Shared, Store, sql};
use crate::{Backend, BackendKind, Error, Result, Row, Statement, TaskWithFiles, Value, limits};

/// The fencing tokens this instance holds, by task, and the tasks of their files.
#[derive(Debug, Default)]
pub(crate) struct Guards {
    instance: Option<String>,
    pub(crate) tasks: HashMap<i64, i64>,
    pub(crate) files: HashMap<i64, i64>,
    /// Held tasks found taken over (their writes are refused), reported once.
    lost: std::collections::HashSet<i64>,
}

impl Guards {
    pub(crate) fn new(instance: Option<String>) -> Self {
        Self { instance, ..Self::default() }
    }

    /// The guard parameters of a write to task `id`: the instance and its token, or
    /// (NULL, -1) when the task is not held here.
    pub(crate) fn of_task(&self, id: i64) -> [Value; 2] {
        match (&self.instance, self.tasks.get(&id)) {
            (Some(owner), Some(fence)) => [Value::Text(owner.clone()), Value::Int(*fence)],
            _ => [Value::Null, Value::Int(-1)],
        }
    }

    /// The guard parameters of a write to file `id` (its task's).
    pub(crate) fn of_file(&self, id: i64) -> [Value; 2] {
        self.files.get(&id).map_or([Value::Null, Value::Int(-1)], |task| self.of_task(*task))
    }

    pub(crate) fn held(&self, id: i64) -> Option<i64> {
        self.tasks.get(&id).copied()
    }

    pub(crate) fn file_added(&mut self, task: i64, file: i64) {
        if self.tasks.contains_key(&task) {
            self.files.insert(file, task);
        }
    }

    fn hold(&mut self, task: &TaskWithFiles) {
        self.tasks.insert(task.task.id, task.task.fence);
        for f in &task.files {
            self.files.insert(f.id, task.task.id);
        }
    }

    pub(crate) fn drop_task(&mut self, id: i64) {
        self.tasks.remove(&id);
        self.lost.remove(&id);
        self.files.retain(|_, t| *t != id);
    }
}

/// What [`Store::renew_tasks`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Renewed {
    /// Tasks still held here, leases renewed.
    pub kept: Vec<i64>,
    /// Tasks held here before that another instance holds now (or that ended): stop
    /// working on them; their writes are refused.
    pub lost: Vec<i64>,
    /// Tasks still held here whose cancel was asked elsewhere
    /// ([`Store::request_cancel`]): cancel them.
    pub cancel: Vec<i64>,
}

/// What [`Store::request_cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRequest {
    /// Nobody held the task (or its holder's lease ran out): it is cancelled now.
    Cancelled,
    /// Another instance holds it: it cancels it at its next lease renewal.
    Asked,
    /// No unfinished task has that id.
    NotFound,
}

/// A role held by one instance at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleLease {
    /// The role, e.g. `poller`.
    pub role: String,
    /// The instance holding it.
    pub holder: String,
    /// Its fencing token: raised each time the role changes hands.
    pub fence: i64,
    /// Until when the lease holds, Unix milliseconds by the clock that judges it (the
    /// database server's on PostgreSQL, see [`StoreConfig::clock`](crate::StoreConfig::clock)).
    pub until: i64,
    /// The position the role saved (the poller's next update offset), if any.
    pub position: Option<i64>,
}

/// A lease's length in milliseconds.
fn millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

fn role_from_row(role: &str, r: &Row) -> Result<RoleLease> {
    Ok(RoleLease {
        role: role.to_owned(),
        holder: r.text(0)?,
        fence: r.int(1)?,
        until: r.int(2)?,
        position: r.opt_int(3)?,
    })
}

impl<B: Backend> Shared<B> {
    pub(crate) fn guards(&self) -> std::sync::MutexGuard<'_, Guards> {
        self.guards.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why a guarded write to task `id` matched no row: [`Error::Fenced`] when this
    /// instance no longer holds it; `None` otherwise (not held here, or still held).
    pub(crate) async fn fenced(&self, id: i64) -> Option<Error> {
        let held = self.guards().held(id)?;
        let instance = self.guards().instance.clone();
        let stmt = Statement::query(sql::TASK_HOLDER, vec![Value::Int(id)]);
        let out = self.backend.run(&self.exec, None, vec![stmt], false).await.ok()?;
        let row = out.first()?.rows.first()?;
        let (owner, fence) = (row.opt_text(0).ok()?, row.int(1).ok()?);
        (owner != instance || fence != held).then_some(Error::Fenced { id })
    }
}

impl<B: Backend> Store<B> {
    /// This store's instance id ([`StoreConfig::instance`](crate::StoreConfig::instance)),
    /// if it has one.
    pub fn instance(&self) -> Option<String> {
        self.inner.shared.guards().instance.clone()
    }

    fn instance_id(&self) -> Result<String> {
        self.instance().ok_or_else(|| Error::Invalid {
            field: "store.instance",
            reason: "claims and roles need an instance id (StoreConfig::instance)".into(),
        })
    }

    /// Whether leases are judged by the database server's clock (PostgreSQL) rather
    /// than this instance's (SQLite: every instance is on the database's machine).
    fn server_clock(&self) -> bool {
        self.inner.shared.backend.kind() == BackendKind::Postgres
    }

    /// What a lease statement writes as its end: on PostgreSQL the lease's length (the
    /// statement adds the server's clock), on SQLite its end by this instance's clock.
    fn lease_end(&self, lease: Duration) -> Value {
        if self.server_clock() {
            Value::Int(millis(lease))
        } else {
            Value::Int(self.inner.shared.now_ms().saturating_add(millis(lease)))
        }
    }

    /// Claims up to `limit` unfinished tasks that no instance holds or whose lease ran
    /// out, oldest first, for `lease`; returns them with their files (and their new
    /// fencing tokens). From now on this store fences every write to them. Leases are
    /// judged by the database server's clock on PostgreSQL (see
    /// [`StoreConfig::clock`](crate::StoreConfig::clock)).
    pub async fn claim_tasks(&self, limit: u32, lease: Duration) -> Result<Vec<TaskWithFiles>> {
        let owner = self.instance_id()?;
        let limit = Value::Int(i64::from(limit));
        let claim = if self.server_clock() {
            Statement::query(
                sql::CLAIM_POSTGRES,
                vec![Value::Text(owner.clone()), self.lease_end(lease), limit],
            )
        } else {
            let now = self.inner.shared.now_ms();
            let params = vec![
                Value::Text(owner.clone()),
                Value::Int(now.saturating_add(millis(lease))),
                Value::Int(now),
                limit,
            ];
            Statement::query(sql::CLAIM_SQLITE, params)
        };
        self.taken(claim, &owner).await
    }

    /// Takes this instance's own unfinished tasks again after its restart (same
    /// instance id), with new fencing tokens, so that anything the previous run still
    /// writes is refused.
    pub async fn adopt_tasks(&self, lease: Duration) -> Result<Vec<TaskWithFiles>> {
        let owner = self.instance_id()?;
        let sql = if self.server_clock() { sql::ADOPT_POSTGRES } else { sql::ADOPT_SQLITE };
        let adopt = Statement::query(sql, vec![Value::Text(owner.clone()), self.lease_end(lease)]);
        self.taken(adopt, &owner).await
    }

    /// The tasks `statement` took (all with one lease end), with their files; held from
    /// now on.
    async fn taken(&self, statement: Statement, owner: &str) -> Result<Vec<TaskWithFiles>> {
        let out = self.run_one(statement).await?;
        let mut tasks = out.rows.iter().map(task_from_row).collect::<Result<Vec<_>>>()?;
        tasks.sort_by_key(|t| t.id);
        let Some(first) = tasks.first() else { return Ok(Vec::new()) };
        // One statement wrote one lease end to every task it took; the tasks held here
        // before carry another.
        let until = first
            .lease_until
            .ok_or_else(|| Error::decode("tasks.lease_until", "a task just taken has none"))?;
        // Only the files of the tasks just taken, not of every task already running here.
        let files = self
            .run_one(Statement::query(
                sql::FILES_TAKEN,
                vec![Value::Text(owner.to_owned()), Value::Int(until)],
            ))
            .await?;
        let mut files = files_from_rows(&files.rows)?;
        let taken: Vec<TaskWithFiles> = tasks
            .into_iter()
            .map(|task| TaskWithFiles { files: files.remove(&task.id).unwrap_or_default(), task })
            .collect();
        let mut guards = self.inner.shared.guards();
        for t in &taken {
            guards.hold(t);
        }
        Ok(taken)
    }

    /// Renews the lease of every unfinished task this instance holds. A task held here
    /// that the database gives to another instance (or another fence) is lost: reported
    /// once in [`Renewed::lost`], and its writes from here are refused until
    /// [`forget_task`](Self::forget_task).
    pub async fn renew_tasks(&self, lease: Duration) -> Result<Renewed> {
        let owner = self.instance_id()?;
        let sql = if self.server_clock() { sql::RENEW_TASKS_POSTGRES } else { sql::RENEW_TASKS_SQLITE };
        let out =
            self.run_one(Statement::query(sql, vec![Value::Text(owner), self.lease_end(lease)])).await?;
        let rows: HashMap<i64, (i64, bool)> =
            out.rows.iter().map(|r| Ok((r.int(0)?, (r.int(1)?, r.int(2)? != 0)))).collect::<Result<_>>()?;
        let mut guards = self.inner.shared.guards();
        let held: Vec<(i64, i64)> = guards.tasks.iter().map(|(t, f)| (*t, *f)).collect();
        let mut renewed = Renewed::default();
        for (task, fence) in held {
            if let Some(&(held_fence, cancel)) = rows.get(&task)
                && held_fence == fence
            {
                renewed.kept.push(task);
                if cancel {
                    renewed.cancel.push(task);
                }
            } else if guards.lost.insert(task) {
                // Its guard stays (with the old token), so that every write still in
                // flight is refused, until `forget_task`.
                renewed.lost.push(task);
            }
        }
        renewed.kept.sort_unstable();
        renewed.lost.sort_unstable();
        renewed.cancel.sort_unstable();
        Ok(renewed)
    }

    /// Cancels task `id` from an instance that does not run it: at once when no
    /// instance holds it (or its holder's lease ran out; its fence rises, so that a
    /// late write of that holder is refused), else by asking its holder, which cancels
    /// it at its next renewal ([`Renewed::cancel`]). Its end is announced as any
    /// other's (`announced_at` stays NULL).
    pub async fn request_cancel(&self, id: i64) -> Result<CancelRequest> {
        let sql = if self.server_clock() { sql::CANCEL_FREE_POSTGRES } else { sql::CANCEL_FREE_SQLITE };
        let free = Statement::execute(sql, vec![Value::Int(id), Value::Int(self.inner.shared.now_ms())]);
        if self.run_one(free).await?.affected > 0 {
            return Ok(CancelRequest::Cancelled);
        }
        let ask = Statement::execute(sql::REQUEST_CANCEL, vec![Value::Int(id)]);
        Ok(if self.run_one(ask).await?.affected > 0 { CancelRequest::Asked } else { CancelRequest::NotFound })
    }

    /// The unfinished tasks this instance does not hold (queued for any instance, or
    /// running on another), oldest first, without their files: what a status board shows
    /// of the other instances' work. Their progress is what their holders last recorded.
    pub async fn tasks_elsewhere(&self) -> Result<Vec<crate::Task>> {
        let owner = self.instance_id()?;
        let out = self.run_one(Statement::query(sql::TASKS_ELSEWHERE, vec![Value::Text(owner)])).await?;
        out.rows.iter().map(task_from_row).collect()
    }

    /// Gives task `id`'s lease up (another instance may claim it at once). `false`
    /// when this instance did not hold it.
    pub async fn release_task(&self, id: i64) -> Result<bool> {
        let owner = self.instance_id()?;
        let Some(fence) = self.inner.shared.guards().held(id) else { return Ok(false) };
        let out = self
            .run_one(Statement::execute(
                sql::RELEASE_TASK,
                vec![Value::Int(id), Value::Text(owner), Value::Int(fence)],
            ))
            .await?;
        self.inner.shared.guards().drop_task(id);
        Ok(out.affected > 0)
    }

    /// Forgets task `id` (lost to another instance, and its work here stopped): its
    /// writes are no longer fenced here.
    pub fn forget_task(&self, id: i64) {
        self.inner.shared.guards().drop_task(id);
    }

    /// The tasks this store holds (or held and lost, until forgotten), with their
    /// fencing tokens.
    pub fn held_tasks(&self) -> Vec<(i64, i64)> {
        let mut held: Vec<(i64, i64)> =
            self.inner.shared.guards().tasks.iter().map(|(t, f)| (*t, *f)).collect();
        held.sort_unstable();
        held
    }

    /// Takes `role` for `lease`, or renews it when this instance holds it already.
    /// `None` while another instance's lease holds. `role` is 1 to 64 bytes
    /// ([`limits::ROLE`](crate::limits::ROLE)) without NUL, else [`Error::Invalid`] or
    /// [`Error::TooLong`] naming `role`.
    pub async fn acquire_role(&self, role: &str, lease: Duration) -> Result<Option<RoleLease>> {
        limits::check_name("role", role, limits::ROLE)?;
        let holder = self.instance_id()?;
        let take = if self.server_clock() {
            Statement::query(
                sql::ACQUIRE_ROLE_POSTGRES,
                vec![role.into(), Value::Text(holder), self.lease_end(lease)],
            )
        } else {
            let now = self.inner.shared.now_ms();
            let params = vec![
                role.into(),
                Value::Text(holder),
                Value::Int(now.saturating_add(millis(lease))),
                Value::Int(now),
            ];
            Statement::query(sql::ACQUIRE_ROLE_SQLITE, params)
        };
        let out = self.run_one(take).await?;
        out.rows.first().map(|r| role_from_row(role, r)).transpose()
    }

    /// Renews a role held under `held`'s fence for `lease`; `false` when it changed
    /// hands since.
    pub async fn renew_role(&self, held: &RoleLease, lease: Duration) -> Result<bool> {
        let sql = if self.server_clock() { sql::RENEW_ROLE_POSTGRES } else { sql::RENEW_ROLE_SQLITE };
        let renew = Statement::execute(
            sql,
            vec![
                held.role.as_str().into(),
                held.holder.as_str().into(),
                Value::Int(held.fence),
                self.lease_end(lease),
            ],
        );
        Ok(self.run_one(renew).await?.affected > 0)
    }

    /// Gives a role up, so another instance may take it at once; `false` when it had
    /// changed hands already.
    pub async fn release_role(&self, held: &RoleLease) -> Result<bool> {
        let release = Statement::execute(
            sql::RELEASE_ROLE,
            vec![held.role.as_str().into(), held.holder.as_str().into(), Value::Int(held.fence)],
        );
        Ok(self.run_one(release).await?.affected > 0)
    }

    /// Saves the role's position (it only moves forward) under `held`'s fence; `false`
    /// when the role changed hands: the write was refused.
    pub async fn save_position(&self, held: &RoleLease, position: i64) -> Result<bool> {
        let save = Statement::execute(
            sql::SAVE_POSITION,
            vec![
                held.role.as_str().into(),
                held.holder.as_str().into(),
                Value::Int(held.fence),
                Value::Int(position),
            ],
        );
        Ok(self.run_one(save).await?.affected > 0)
    }

    /// Who holds `role`, if anyone ever did (the lease may have run out). `role` is
    /// checked as in [`acquire_role`](Self::acquire_role).
    pub async fn role_holder(&self, role: &str) -> Result<Option<RoleLease>> {
        limits::check_name("role", role, limits::ROLE)?;
        let out = self.run_one(Statement::query(sql::ROLE_HOLDER, vec![role.into()])).await?;
        out.rows.first().map(|r| role_from_row(role, r)).transpose()
    }

    /// How far the database server's clock is ahead of this instance's (negative:
    /// behind), in milliseconds, read at the middle of one round trip. Leases are
    /// judged by the server's clock, so skew does not move them; it shows in the times
    /// this instance stamps rows with. `None` on SQLite, where every instance is on the
    /// database's machine.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub async fn clock_skew_ms(&self) -> Result<Option<i64>> {
        if self.inner.shared.backend.kind() != BackendKind::Postgres {
            return Ok(None);
        }
        let before = self.inner.shared.now_ms();
        let out = self.run_one(Statement::query(sql::DATABASE_NOW_POSTGRES, Vec::new())).await?;
        let after = self.inner.shared.now_ms();
        let server = out.rows.first().ok_or_else(|| Error::decode("clock_timestamp()", "no row"))?.int(0)?;
        Ok(Some(server - before.midpoint(after)))
    }
}
