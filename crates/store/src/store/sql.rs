//! Every statement the store runs, written once for both backends: numbered `?N`
//! placeholders (rewritten to `$N` for PostgreSQL), `ON CONFLICT` upserts and
//! `RETURNING`, which SQLite (3.35+) and PostgreSQL share. `CAST(?N AS BIGINT)` where
//! PostgreSQL could not infer a parameter's type. Dialect-specific SQL (DDL) lives in
//! `backend/schema.rs`.

macro_rules! task_columns {
    () => {
        "id, chat_id, user_id, source_kind, source, kind, name, options, state, bytes_done, bytes_total, \
         speed, error, gid, created_at, started_at, updated_at, finished_at, link, owner, lease_until, fence"
    };
}

macro_rules! file_columns {
    () => {
        "f.id, f.task_id, f.path, f.size, p.part, p.size, p.message_id, p.remote_path \
         FROM task_files f LEFT JOIN file_parts p ON p.file_id = f.id"
    };
}

// ---- users, chats, settings -------------------------------------------------------

pub(crate) const ROLE: &str = "SELECT role FROM users WHERE id = ?1";
pub(crate) const UPSERT_ROLE: &str = "INSERT INTO users (id, role, updated_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at";
pub(crate) const DELETE_USER: &str = "DELETE FROM users WHERE id = ?1";
pub(crate) const USERS: &str = "SELECT id, role, updated_at FROM users ORDER BY id";

pub(crate) const CHAT_AUTHORIZED: &str = "SELECT count(*) FROM authorized_chats WHERE chat_id = ?1";
pub(crate) const AUTHORIZE_CHAT: &str = "INSERT INTO authorized_chats (chat_id, added_by, added_at) \
     VALUES (?1, ?2, ?3) ON CONFLICT (chat_id) DO NOTHING";
pub(crate) const UNAUTHORIZE_CHAT: &str = "DELETE FROM authorized_chats WHERE chat_id = ?1";
pub(crate) const CHATS: &str = "SELECT chat_id FROM authorized_chats ORDER BY chat_id";

pub(crate) const SETTINGS: &str =
    "SELECT as_document, split_size, upload_dest, name_prefix FROM user_settings WHERE user_id = ?1";
pub(crate) const UPSERT_SETTINGS: &str = "INSERT INTO user_settings \
     (user_id, as_document, split_size, upload_dest, name_prefix, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (user_id) DO UPDATE SET as_document = excluded.as_document, split_size = excluded.split_size, \
     upload_dest = excluded.upload_dest, name_prefix = excluded.name_prefix, updated_at = excluded.updated_at";

pub(crate) const AUDIT: &str =
    "INSERT INTO audit_log (actor, action, target, detail, at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id";
pub(crate) const AUDIT_LOG: &str =
    "SELECT id, actor, action, target, detail, at FROM audit_log ORDER BY id DESC LIMIT ?1";

// ---- tasks ---------------------------------------------------------------------------

pub(crate) const CREATE_TASK: &str = concat!(
    "INSERT INTO tasks (chat_id, user_id, source_kind, source, kind, name, options, state, created_at, \
     updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?8) RETURNING ",
    task_columns!()
);
pub(crate) const TASK: &str = concat!("SELECT ", task_columns!(), " FROM tasks WHERE id = ?1");
pub(crate) const TASK_STATE: &str = "SELECT state FROM tasks WHERE id = ?1";

pub(crate) const TASKS_UNFINISHED: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM tasks WHERE state IN ('queued', 'downloading', 'uploading') ORDER BY id"
);
pub(crate) const FILES_UNFINISHED: &str = concat!(
    "SELECT ",
    file_columns!(),
    " WHERE f.task_id IN (SELECT id FROM tasks WHERE state IN ('queued', 'downloading', 'uploading')) \
     ORDER BY f.task_id, f.id, p.part"
);
pub(crate) const TASKS_CHAT: &str =
    concat!("SELECT ", task_columns!(), " FROM tasks WHERE chat_id = ?1 ORDER BY id");
pub(crate) const FILES_CHAT: &str = concat!(
    "SELECT ",
    file_columns!(),
    " WHERE f.task_id IN (SELECT id FROM tasks WHERE chat_id = ?1) ORDER BY f.task_id, f.id, p.part"
);
pub(crate) const TASKS_RECENT: &str =
    concat!("SELECT ", task_columns!(), " FROM tasks ORDER BY id DESC LIMIT ?1");
pub(crate) const FILES_RECENT: &str = concat!(
    "SELECT ",
    file_columns!(),
    " WHERE f.task_id IN (SELECT id FROM tasks ORDER BY id DESC LIMIT ?1) ORDER BY f.task_id, f.id, p.part"
);
pub(crate) const FILES_OF_TASK: &str =
    concat!("SELECT ", file_columns!(), " WHERE f.task_id = ?1 ORDER BY f.task_id, f.id, p.part");

pub(crate) const ADD_FILE: &str = "INSERT INTO task_files (task_id, path, size, created_at) \
     SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), CAST(?3 AS BIGINT), CAST(?4 AS BIGINT) \
     WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ?1 \
    AND (CAST(?6 AS BIGINT) < 0 OR (owner = CAST(?5 AS TEXT) AND fence = ?6))) RETURNING id";
pub(crate) const ADD_PART: &str = "INSERT INTO file_parts (file_id, part, size, message_id, remote_path, uploaded_at) \
     SELECT CAST(?1 AS BIGINT), CAST(?2 AS BIGINT), CAST(?3 AS BIGINT), CAST(?4 AS BIGINT), CAST(?5 AS TEXT), \
     CAST(?6 AS BIGINT) WHERE EXISTS (SELECT 1 FROM task_files f JOIN tasks t ON t.id = f.task_id WHERE f.id = ?1 \
    AND (CAST(?8 AS BIGINT) < 0 OR (t.owner = CAST(?7 AS TEXT) AND t.fence = ?8))) \
     ON CONFLICT (file_id, part) DO UPDATE SET size = excluded.size, message_id = excluded.message_id, \
     remote_path = excluded.remote_path, uploaded_at = excluded.uploaded_at";

/// Progress of a task that has not finished: `?1` id, `?2` done, `?3` total, `?4` speed, `?5` now.
pub(crate) const PROGRESS: &str = "UPDATE tasks SET bytes_done = ?2, bytes_total = ?3, speed = ?4, updated_at = ?5 \
     WHERE id = ?1 AND state IN ('queued', 'downloading', 'uploading', 'seeding') \
    AND (CAST(?7 AS BIGINT) < 0 OR (owner = CAST(?6 AS TEXT) AND fence = ?7))";

/// Transitions: `?1` id, `?2` now, `?3` gid (downloading) or error (failed).
///
/// Every write to a task ends with its fence guard, two parameters after the others:
/// the instance's id and the fencing token it holds for the task (negative: the write is
/// not fenced, as on a single instance).
pub(crate) const TO_DOWNLOADING: &str = "UPDATE tasks SET state = 'downloading', gid = ?3, \
     started_at = coalesce(started_at, ?2), updated_at = ?2 WHERE id = ?1 AND state IN ('queued', 'downloading') \
    AND (CAST(?5 AS BIGINT) < 0 OR (owner = CAST(?4 AS TEXT) AND fence = ?5))";
pub(crate) const TO_UPLOADING: &str = "UPDATE tasks SET state = 'uploading', updated_at = ?2 \
     WHERE id = ?1 AND state IN ('downloading', 'uploading') \
    AND (CAST(?4 AS BIGINT) < 0 OR (owner = CAST(?3 AS TEXT) AND fence = ?4))";
pub(crate) const TO_SEEDING: &str = "UPDATE tasks SET state = 'seeding', updated_at = ?2 \
     WHERE id = ?1 AND state IN ('downloading', 'uploading', 'seeding') \
    AND (CAST(?4 AS BIGINT) < 0 OR (owner = CAST(?3 AS TEXT) AND fence = ?4))";
pub(crate) const TO_COMPLETED: &str = "UPDATE tasks SET state = 'completed', speed = 0, updated_at = ?2, \
     finished_at = ?2 WHERE id = ?1 AND state IN ('downloading', 'uploading', 'seeding') \
    AND (CAST(?4 AS BIGINT) < 0 OR (owner = CAST(?3 AS TEXT) AND fence = ?4))";
pub(crate) const TO_FAILED: &str = "UPDATE tasks SET state = 'failed', error = ?3, speed = 0, updated_at = ?2, \
     finished_at = ?2 WHERE id = ?1 AND state IN ('queued', 'downloading', 'uploading', 'seeding') \
    AND (CAST(?5 AS BIGINT) < 0 OR (owner = CAST(?4 AS TEXT) AND fence = ?5))";
pub(crate) const TO_CANCELLED: &str = "UPDATE tasks SET state = 'cancelled', speed = 0, updated_at = ?2, \
     finished_at = ?2 WHERE id = ?1 AND state IN ('queued', 'downloading', 'uploading', 'seeding') \
    AND (CAST(?4 AS BIGINT) < 0 OR (owner = CAST(?3 AS TEXT) AND fence = ?4))";

/// A task's name: `?1` id, `?2` name, `?3` now.
pub(crate) const SET_NAME: &str = "UPDATE tasks SET name = ?2, updated_at = ?3 WHERE id = ?1 \
    AND (CAST(?5 AS BIGINT) < 0 OR (owner = CAST(?4 AS TEXT) AND fence = ?5))";

/// An unfinished task's options: `?1` id, `?2` options (JSON), `?3` now.
pub(crate) const SET_OPTIONS: &str = "UPDATE tasks SET options = ?2, updated_at = ?3 \
     WHERE id = ?1 AND state IN ('queued', 'downloading', 'uploading', 'seeding') \
    AND (CAST(?5 AS BIGINT) < 0 OR (owner = CAST(?4 AS TEXT) AND fence = ?5))";

/// Finished tasks whose end was not announced, oldest first: `?1` at most.
pub(crate) const UNANNOUNCED: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM tasks WHERE announced_at IS NULL AND state IN ('completed', 'failed', 'cancelled') \
     ORDER BY id LIMIT ?1"
);
/// `?1` id, `?2` now: only a finished task not announced yet.
pub(crate) const MARK_ANNOUNCED: &str = "UPDATE tasks SET announced_at = ?2 WHERE id = ?1 \
     AND announced_at IS NULL AND state IN ('completed', 'failed', 'cancelled')";
pub(crate) const UNMARK_ANNOUNCED: &str = "UPDATE tasks SET announced_at = NULL WHERE id = ?1";

// ---- sent files ------------------------------------------------------------------------

pub(crate) const SENT_FILE: &str =
    "SELECT sha256, size, file_id, file_name, probe FROM sent_files WHERE sha256 = ?1";
pub(crate) const REMEMBER_SENT_FILE: &str = "INSERT INTO sent_files (sha256, size, file_id, file_name, sent_at, probe) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (sha256) DO UPDATE SET size = excluded.size, \
     file_id = excluded.file_id, file_name = excluded.file_name, sent_at = excluded.sent_at, \
     probe = excluded.probe";
pub(crate) const SENT_FILE_LIKE: &str =
    "SELECT 1 FROM sent_files WHERE size = ?1 AND (probe = ?2 OR probe IS NULL) LIMIT 1";
pub(crate) const SET_LINK: &str = "UPDATE tasks SET link = ?2 WHERE id = ?1 \
    AND (CAST(?4 AS BIGINT) < 0 OR (owner = CAST(?3 AS TEXT) AND fence = ?4))";
pub(crate) const FORGET_SENT_FILE: &str = "DELETE FROM sent_files WHERE sha256 = ?1";

// ---- status messages -------------------------------------------------------------------

pub(crate) const UPSERT_STATUS: &str = "INSERT INTO status_messages (chat_id, message_id, updated_at) \
     VALUES (?1, ?2, ?3) ON CONFLICT (chat_id) DO UPDATE SET message_id = excluded.message_id, \
     updated_at = excluded.updated_at";
pub(crate) const STATUS_MESSAGES: &str =
    "SELECT chat_id, message_id, updated_at FROM status_messages ORDER BY chat_id";
pub(crate) const DELETE_STATUS: &str = "DELETE FROM status_messages WHERE chat_id = ?1";

// ---- several instances: task leases, roles --------------------------------------------

/// The unfinished tasks nobody holds (or whose lease ran out), oldest first, claimed:
/// `?1` owner, `?2` lease until, `?3` now, `?4` at most. SQLite runs one writer at a time.
pub(crate) const CLAIM_SQLITE: &str = concat!(
    "UPDATE tasks SET owner = ?1, lease_until = ?2, fence = fence + 1 WHERE id IN (SELECT id FROM tasks \
     WHERE state IN ('queued', 'downloading', 'uploading', 'seeding') \
     AND (owner IS NULL OR lease_until IS NULL OR lease_until < ?3) ORDER BY id LIMIT ?4) RETURNING ",
    task_columns!()
);
/// The database server's clock at the statement's start, in Unix milliseconds: what
/// PostgreSQL judges leases by (one value for every row a statement writes).
macro_rules! server_now {
    () => {
        "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)"
    };
}

/// [`CLAIM_SQLITE`] on PostgreSQL, judged by the server's clock: `?1` owner, `?2` the
/// lease in milliseconds, `?3` at most. Rows another claimer has locked are skipped, so
/// concurrent claims never wait on each other nor take the same task.
pub(crate) const CLAIM_POSTGRES: &str = concat!(
    "UPDATE tasks SET owner = ?1, lease_until = ",
    server_now!(),
    " + ?2, fence = fence + 1 WHERE id IN (SELECT id FROM tasks \
     WHERE state IN ('queued', 'downloading', 'uploading', 'seeding') \
     AND (owner IS NULL OR lease_until IS NULL OR lease_until < ",
    server_now!(),
    ") ORDER BY id LIMIT ?3 FOR UPDATE SKIP LOCKED) RETURNING ",
    task_columns!()
);
/// An instance's own unfinished tasks, taken again after its restart with a new fence:
/// `?1` owner, `?2` lease until.
pub(crate) const ADOPT_SQLITE: &str = concat!(
    "UPDATE tasks SET lease_until = ?2, fence = fence + 1 WHERE owner = ?1 \
     AND state IN ('queued', 'downloading', 'uploading', 'seeding') RETURNING ",
    task_columns!()
);
/// [`ADOPT_SQLITE`] on PostgreSQL: `?1` owner, `?2` the lease in milliseconds.
pub(crate) const ADOPT_POSTGRES: &str = concat!(
    "UPDATE tasks SET lease_until = ",
    server_now!(),
    " + ?2, fence = fence + 1 WHERE owner = ?1 \
     AND state IN ('queued', 'downloading', 'uploading', 'seeding') RETURNING ",
    task_columns!()
);
/// The files of the tasks one claim or adoption just took: `?1` owner, `?2` the lease
/// end it wrote (the tasks it took share it; those held before carry another).
pub(crate) const FILES_TAKEN: &str = concat!(
    "SELECT ",
    file_columns!(),
    " WHERE f.task_id IN (SELECT id FROM tasks WHERE owner = ?1 AND lease_until = ?2 \
     AND state IN ('queued', 'downloading', 'uploading', 'seeding')) ORDER BY f.task_id, f.id, p.part"
);
/// Renews every unfinished task an owner holds: `?1` owner, `?2` lease until.
pub(crate) const RENEW_TASKS_SQLITE: &str = "UPDATE tasks SET lease_until = ?2 WHERE owner = ?1 \
     AND state IN ('queued', 'downloading', 'uploading', 'seeding') RETURNING id, fence, cancel_requested";
/// [`RENEW_TASKS_SQLITE`] on PostgreSQL: `?1` owner, `?2` the lease in milliseconds.
pub(crate) const RENEW_TASKS_POSTGRES: &str = concat!(
    "UPDATE tasks SET lease_until = ",
    server_now!(),
    " + ?2 WHERE owner = ?1 \
     AND state IN ('queued', 'downloading', 'uploading', 'seeding') RETURNING id, fence, cancel_requested"
);
/// Cancels an unfinished task that no instance holds (or whose lease ran out), raising
/// its fence so that a late write of its last holder is refused: `?1` id, `?2` now.
pub(crate) const CANCEL_FREE_SQLITE: &str = "UPDATE tasks SET state = 'cancelled', updated_at = ?2, \
     finished_at = ?2, owner = NULL, lease_until = NULL, fence = fence + 1 WHERE id = ?1 \
     AND state IN ('queued', 'downloading', 'uploading', 'seeding') \
     AND (owner IS NULL OR lease_until IS NULL OR lease_until < ?2)";
/// [`CANCEL_FREE_SQLITE`] on PostgreSQL: the lease judged by the server's clock, the
/// row stamped by the instance's (`?2`).
pub(crate) const CANCEL_FREE_POSTGRES: &str = concat!(
    "UPDATE tasks SET state = 'cancelled', updated_at = ?2, \
     finished_at = ?2, owner = NULL, lease_until = NULL, fence = fence + 1 WHERE id = ?1 \
     AND state IN ('queued', 'downloading', 'uploading', 'seeding') \
     AND (owner IS NULL OR lease_until IS NULL OR lease_until < ",
    server_now!(),
    ")"
);
/// Asks a held task's owner to cancel it: `?1` id.
pub(crate) const REQUEST_CANCEL: &str = "UPDATE tasks SET cancel_requested = 1 WHERE id = ?1 \
     AND state IN ('queued', 'downloading', 'uploading', 'seeding')";
/// Unfinished tasks this instance does not hold: `?1` this instance.
pub(crate) const TASKS_ELSEWHERE: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM tasks WHERE state IN ('queued', 'downloading', 'uploading', 'seeding') \
     AND (owner IS NULL OR owner <> ?1) ORDER BY id"
);
/// Gives a task's lease up: `?1` id, `?2` owner, `?3` fence.
pub(crate) const RELEASE_TASK: &str =
    "UPDATE tasks SET owner = NULL, lease_until = NULL WHERE id = ?1 AND owner = ?2 AND fence = ?3";
/// Who holds a task: `?1` id.
pub(crate) const TASK_HOLDER: &str = "SELECT owner, fence FROM tasks WHERE id = ?1";

/// Takes a role, or renews it: free, expired, or already held by the same holder (whose
/// fence stays while its lease holds; any other take raises it). `?1` role, `?2`
/// holder, `?3` lease until, `?4` now. No row: another holder's lease holds.
pub(crate) const ACQUIRE_ROLE_SQLITE: &str = "INSERT INTO roles (role, holder, fence, lease_until) \
     VALUES (?1, ?2, 1, ?3) \
     ON CONFLICT (role) DO UPDATE SET fence = CASE WHEN roles.holder = excluded.holder \
     AND roles.lease_until >= ?4 THEN roles.fence ELSE roles.fence + 1 END, holder = excluded.holder, \
     lease_until = excluded.lease_until WHERE roles.holder = excluded.holder OR roles.lease_until < ?4 \
     RETURNING holder, fence, lease_until, position";
/// [`ACQUIRE_ROLE_SQLITE`] on PostgreSQL, judged by the server's clock: `?1` role, `?2`
/// holder, `?3` the lease in milliseconds.
pub(crate) const ACQUIRE_ROLE_POSTGRES: &str = concat!(
    "INSERT INTO roles (role, holder, fence, lease_until) VALUES (?1, ?2, 1, ",
    server_now!(),
    " + ?3) ON CONFLICT (role) DO UPDATE SET fence = CASE WHEN roles.holder = excluded.holder \
     AND roles.lease_until >= ",
    server_now!(),
    " THEN roles.fence ELSE roles.fence + 1 END, holder = excluded.holder, \
     lease_until = excluded.lease_until WHERE roles.holder = excluded.holder OR roles.lease_until < ",
    server_now!(),
    " RETURNING holder, fence, lease_until, position"
);
/// Renews a role held under a fence: `?1` role, `?2` holder, `?3` fence, `?4` until.
pub(crate) const RENEW_ROLE_SQLITE: &str =
    "UPDATE roles SET lease_until = ?4 WHERE role = ?1 AND holder = ?2 AND fence = ?3";
/// [`RENEW_ROLE_SQLITE`] on PostgreSQL: `?4` the lease in milliseconds.
pub(crate) const RENEW_ROLE_POSTGRES: &str = concat!(
    "UPDATE roles SET lease_until = ",
    server_now!(),
    " + ?4 WHERE role = ?1 AND holder = ?2 AND fence = ?3"
);
/// Gives a role up: `?1` role, `?2` holder, `?3` fence.
pub(crate) const RELEASE_ROLE: &str =
    "UPDATE roles SET lease_until = 0 WHERE role = ?1 AND holder = ?2 AND fence = ?3";
/// Saves a role's position, which only moves forward: `?1` role, `?2` holder, `?3` fence,
/// `?4` position.
pub(crate) const SAVE_POSITION: &str = "UPDATE roles SET position = CASE WHEN position IS NULL OR position < ?4 \
     THEN ?4 ELSE position END WHERE role = ?1 AND holder = ?2 AND fence = ?3";
/// A role's holder: `?1` role.
pub(crate) const ROLE_HOLDER: &str = "SELECT holder, fence, lease_until, position FROM roles WHERE role = ?1";

/// The database server's clock now, in Unix milliseconds (PostgreSQL: the time of the
/// call, not of the transaction's start).
pub(crate) const DATABASE_NOW_POSTGRES: &str =
    "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
