//! The schema, as one list of migrations per dialect. Version `n` of each list must
//! describe the same tables (the shared test suite runs every query on both).
//!
//! Conventions that keep the store's SQL portable: integers are 64-bit (`INTEGER` /
//! `BIGINT`), times are Unix milliseconds, flags are 0/1 integers, enums are checked
//! text, JSON is text.

/// One schema change.
#[derive(Debug)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// The newest schema version this program knows; a database with a newer one is refused.
pub const LATEST_VERSION: i64 = 7;

/// Version 5: `tasks.announced_at`, when the bot told the task's chat how it ended
/// (NULL: not yet). Tasks that ended before this version are taken as announced, so that
/// an upgrade does not announce the whole history again.
const ANNOUNCED_SQLITE: &str = r#"
ALTER TABLE tasks ADD COLUMN announced_at INTEGER;
UPDATE tasks SET announced_at = coalesce(finished_at, updated_at)
    WHERE state IN ('completed', 'failed', 'cancelled');
CREATE INDEX tasks_unannounced ON tasks (id)
    WHERE announced_at IS NULL AND state IN ('completed', 'failed', 'cancelled');
"#;

#[cfg(feature = "postgres")]
const ANNOUNCED_POSTGRES: &str = r#"
ALTER TABLE tasks ADD COLUMN announced_at BIGINT;
UPDATE tasks SET announced_at = coalesce(finished_at, updated_at)
    WHERE state IN ('completed', 'failed', 'cancelled');
CREATE INDEX tasks_unannounced ON tasks (id)
    WHERE announced_at IS NULL AND state IN ('completed', 'failed', 'cancelled');
"#;

/// Version 6: several instances on one database. A task's lease: the instance that
/// holds it (`owner`), until when (`lease_until`, Unix ms), and its fencing token
/// (`fence`, raised at each claim: a write carrying an older one is refused). `roles`:
/// a role one instance holds at a time (the poller), with its fence and the position it
/// saved (the update offset).
const INSTANCES_SQLITE: &str = r#"
ALTER TABLE tasks ADD COLUMN owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_until INTEGER;
ALTER TABLE tasks ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_owner ON tasks (owner) WHERE state IN ('queued', 'downloading', 'uploading', 'seeding');
CREATE TABLE roles (
    role        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    fence       INTEGER NOT NULL,
    lease_until INTEGER NOT NULL,
    position    INTEGER
);
"#;

#[cfg(feature = "postgres")]
const INSTANCES_POSTGRES: &str = r#"
ALTER TABLE tasks ADD COLUMN owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_until BIGINT;
ALTER TABLE tasks ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_owner ON tasks (owner) WHERE state IN ('queued', 'downloading', 'uploading', 'seeding');
CREATE TABLE roles (
    role        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    fence       BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    position    BIGINT
);
"#;

/// Version 7: `tasks.cancel_requested` (0/1): a cancel asked on an instance that does not
/// run the task, for its owner to carry out at its next lease renewal.
const CANCEL_REQUESTED_SQLITE: &str = "ALTER TABLE tasks ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1));";

#[cfg(feature = "postgres")]
const CANCEL_REQUESTED_POSTGRES: &str = "ALTER TABLE tasks ADD COLUMN cancel_requested BIGINT NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1));";

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sql: r#"
CREATE TABLE schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'sudo', 'authorized', 'banned')),
    updated_at INTEGER NOT NULL
);
CREATE TABLE authorized_chats (
    chat_id  INTEGER PRIMARY KEY,
    added_by INTEGER NOT NULL,
    added_at INTEGER NOT NULL
);
CREATE TABLE user_settings (
    user_id     INTEGER PRIMARY KEY,
    as_document INTEGER CHECK (as_document IN (0, 1)),
    split_size  INTEGER CHECK (split_size > 0),
    upload_dest TEXT,
    name_prefix TEXT,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id     INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    source_kind TEXT NOT NULL CHECK (source_kind IN ('url', 'magnet', 'torrent')),
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('mirror', 'leech')),
    name        TEXT,
    options     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'downloading', 'uploading', 'seeding',
                                               'completed', 'failed', 'cancelled')),
    bytes_done  INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER,
    speed       INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    gid         TEXT,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX tasks_unfinished ON tasks (id) WHERE state IN ('queued', 'downloading', 'uploading');
CREATE INDEX tasks_chat ON tasks (chat_id, id);
CREATE TABLE task_files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL CHECK (size >= 0),
    created_at INTEGER NOT NULL
);
CREATE INDEX task_files_task ON task_files (task_id, id);
CREATE TABLE file_parts (
    file_id     INTEGER NOT NULL REFERENCES task_files (id) ON DELETE CASCADE,
    part        INTEGER NOT NULL CHECK (part >= 0),
    size        INTEGER NOT NULL CHECK (size >= 0),
    message_id  INTEGER,
    remote_path TEXT,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (file_id, part)
);
CREATE TABLE status_messages (
    chat_id    INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    actor  INTEGER NOT NULL,
    action TEXT NOT NULL,
    target INTEGER,
    detail TEXT,
    at     INTEGER NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END;
"#,
    },
    Migration {
        version: 2,
        name: "sent files by content hash",
        sql: r#"
CREATE TABLE sent_files (
    sha256    TEXT PRIMARY KEY CHECK (length(sha256) = 64),
    size      INTEGER NOT NULL CHECK (size >= 0),
    file_id   TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sent_at   INTEGER NOT NULL
);
"#,
    },
    Migration {
        version: 3,
        name: "sent files by size and probe",
        sql: "ALTER TABLE sent_files ADD COLUMN probe TEXT;\nCREATE INDEX sent_files_like ON sent_files (size, probe);",
    },
    Migration { version: 4, name: "a task's share link", sql: "ALTER TABLE tasks ADD COLUMN link TEXT;" },
    Migration { version: 5, name: "when a task's end was announced", sql: ANNOUNCED_SQLITE },
    Migration { version: 6, name: "leases and fencing for several instances", sql: INSTANCES_SQLITE },
    Migration { version: 7, name: "a cancel asked of another instance", sql: CANCEL_REQUESTED_SQLITE },
];

#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sql: r#"
CREATE TABLE schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
);
CREATE TABLE users (
    id         BIGINT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'sudo', 'authorized', 'banned')),
    updated_at BIGINT NOT NULL
);
CREATE TABLE authorized_chats (
    chat_id  BIGINT PRIMARY KEY,
    added_by BIGINT NOT NULL,
    added_at BIGINT NOT NULL
);
CREATE TABLE user_settings (
    user_id     BIGINT PRIMARY KEY,
    as_document BIGINT CHECK (as_document IN (0, 1)),
    split_size  BIGINT CHECK (split_size > 0),
    upload_dest TEXT,
    name_prefix TEXT,
    updated_at  BIGINT NOT NULL
);
CREATE TABLE tasks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id     BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    source_kind TEXT NOT NULL CHECK (source_kind IN ('url', 'magnet', 'torrent')),
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('mirror', 'leech')),
    name        TEXT,
    options     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'downloading', 'uploading', 'seeding',
                                               'completed', 'failed', 'cancelled')),
    bytes_done  BIGINT NOT NULL DEFAULT 0,
    bytes_total BIGINT,
    speed       BIGINT NOT NULL DEFAULT 0,
    error       TEXT,
    gid         TEXT,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    updated_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX tasks_unfinished ON tasks (id) WHERE state IN ('queued', 'downloading', 'uploading');
CREATE INDEX tasks_chat ON tasks (chat_id, id);
CREATE TABLE task_files (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id    BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    size       BIGINT NOT NULL CHECK (size >= 0),
    created_at BIGINT NOT NULL
);
CREATE INDEX task_files_task ON task_files (task_id, id);
CREATE TABLE file_parts (
    file_id     BIGINT NOT NULL REFERENCES task_files (id) ON DELETE CASCADE,
    part        BIGINT NOT NULL CHECK (part >= 0),
    size        BIGINT NOT NULL CHECK (size >= 0),
    message_id  BIGINT,
    remote_path TEXT,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (file_id, part)
);
CREATE TABLE status_messages (
    chat_id    BIGINT PRIMARY KEY,
    message_id BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE audit_log (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor  BIGINT NOT NULL,
    action TEXT NOT NULL,
    target BIGINT,
    detail TEXT,
    at     BIGINT NOT NULL
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"#,
    },
    Migration {
        version: 2,
        name: "sent files by content hash",
        sql: r#"
CREATE TABLE sent_files (
    sha256    TEXT PRIMARY KEY CHECK (length(sha256) = 64),
    size      BIGINT NOT NULL CHECK (size >= 0),
    file_id   TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sent_at   BIGINT NOT NULL
);
"#,
    },
    Migration {
        version: 3,
        name: "sent files by size and probe",
        sql: "ALTER TABLE sent_files ADD COLUMN probe TEXT;\nCREATE INDEX sent_files_like ON sent_files (size, probe);",
    },
    Migration { version: 4, name: "a task's share link", sql: "ALTER TABLE tasks ADD COLUMN link TEXT;" },
    Migration { version: 5, name: "when a task's end was announced", sql: ANNOUNCED_POSTGRES },
    Migration { version: 6, name: "leases and fencing for several instances", sql: INSTANCES_POSTGRES },
    Migration { version: 7, name: "a cancel asked of another instance", sql: CANCEL_REQUESTED_POSTGRES },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Tasks in every state, as a version 4 database holds them: id 1 completed, 2
    /// failed, 3 cancelled, 4 downloading.
    const V4_TASKS: &str = "INSERT INTO tasks (chat_id, user_id, source_kind, source, kind, options, state, \
        created_at, updated_at, finished_at) VALUES \
        (1, 1, 'url', 'https://a', 'leech', '{}', 'completed', 10, 20, 20), \
        (1, 1, 'url', 'https://b', 'leech', '{}', 'failed', 10, 30, 30), \
        (1, 1, 'url', 'https://c', 'mirror', '{}', 'cancelled', 10, 40, NULL), \
        (1, 1, 'url', 'https://d', 'mirror', '{}', 'downloading', 10, 50, NULL)";
    const ANNOUNCED: &str = "SELECT id, announced_at FROM tasks ORDER BY id";
    /// Tasks that ended before version 5 count as announced (when they ended, or were
    /// last updated); a running one does not.
    const WANT: [(i64, Option<i64>); 4] = [(1, Some(20)), (2, Some(30)), (3, Some(40)), (4, None)];

    #[test]
    fn version_5_takes_tasks_that_ended_before_it_as_announced_on_sqlite() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        for m in SQLITE.iter().filter(|m| m.version < 5) {
            c.execute_batch(m.sql).unwrap();
        }
        c.execute_batch(V4_TASKS).unwrap();
        c.execute_batch(SQLITE[4].sql).unwrap();
        let mut q = c.prepare(ANNOUNCED).unwrap();
        let got: Vec<(i64, Option<i64>)> =
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, WANT);
        let plan: String = c
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE announced_at IS NULL \
                 AND state IN ('completed', 'failed', 'cancelled') ORDER BY id LIMIT 5",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("tasks_unannounced"), "the partial index serves the sweep: {plan}");
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn version_5_takes_tasks_that_ended_before_it_as_announced_on_postgres() {
        let db = mltb_testkit::TestDatabase::create().await.unwrap();
        let c = db.connect().await.unwrap();
        for m in POSTGRES.iter().filter(|m| m.version < 5) {
            c.batch_execute(m.sql).await.unwrap();
        }
        c.batch_execute(V4_TASKS).await.unwrap();
        c.batch_execute(POSTGRES[4].sql).await.unwrap();
        let got: Vec<(i64, Option<i64>)> =
            c.query(ANNOUNCED, &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(got, WANT);
    }

    #[test]
    fn versions_are_dense_and_end_at_latest() {
        for (i, m) in SQLITE.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
        assert_eq!(SQLITE.last().map(|m| m.version), Some(LATEST_VERSION));
        #[cfg(feature = "postgres")]
        {
            assert_eq!(POSTGRES.len(), SQLITE.len());
            for (a, b) in SQLITE.iter().zip(POSTGRES) {
                assert_eq!((a.version, a.name), (b.version, b.name));
            }
        }
    }
}
