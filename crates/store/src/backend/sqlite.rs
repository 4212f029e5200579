//! [`SqliteBackend`]: one database file through an `mltb-pool` SQLite pool.

use std::path::{Path, PathBuf};

use mltb_pool::{Pool, PoolConfig, SqliteManager};
use mltb_query_analyzer::SpanId;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::schema::{LATEST_VERSION, SQLITE};
use super::{Backend, BackendKind};
use crate::{Error, Executor, Outcome, Result, Row, Statement, Value};

/// Set on every new connection (the manager's `on_connect` hook). `mltb-pool`'s manager opens connections
/// with `synchronous = NORMAL`, which in WAL mode survives a crash of the process but
/// may lose the last commits on power loss; the store promises that a committed task
/// is there after any restart, so it asks for FULL (one WAL fsync per commit, which
/// batching keeps rare).
const CONNECTION_PRAGMAS: &str = "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";
/// Added when someone else checkpoints the write-ahead log ([`SqliteOptions::autocheckpoint`] off).
const NO_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 0;";

/// How [`SqliteBackend`] opens its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Whether connections checkpoint the write-ahead log themselves every 1000 pages
    /// (SQLite's default, `true`). Off when a replicator copies the log's frames and
    /// checkpoints after copying them (see `StoreConfig::external_checkpoints`).
    pub autocheckpoint: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { autocheckpoint: true }
    }
}

/// SQLite in one file: WAL, `synchronous = FULL`, foreign keys on, a busy timeout,
/// through an [`mltb_pool::Pool`] of [`SqliteManager`] connections.
#[derive(Debug)]
pub struct SqliteBackend {
    pool: Pool<SqliteManager>,
    path: PathBuf,
}

impl SqliteBackend {
    /// Opens (creating if missing, with its parent directories) the database at `path`.
    ///
    /// Before anything writes to an existing file, it is opened read-only and checked:
    /// a file that is not an SQLite database, fails `PRAGMA quick_check`, or carries a
    /// newer schema version is refused ([`Error::Corrupt`], [`Error::NewerSchema`]) and
    /// left byte-for-byte as it was.
    pub async fn open(path: impl AsRef<Path>, pool: PoolConfig) -> Result<Self> {
        Self::open_with(path, pool, SqliteOptions::default()).await
    }

    /// [`open`](Self::open) with `options`.
    pub async fn open_with(path: impl AsRef<Path>, pool: PoolConfig, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let check = path.clone();
        tokio::task::spawn_blocking(move || preflight(&check))
            .await
            .map_err(|e| Error::Setup(format!("the file check did not complete: {e}")))??;
        let manager = SqliteManager::new(&path).on_connect(move |c| {
            c.execute_batch(CONNECTION_PRAGMAS)?;
            if options.autocheckpoint { Ok(()) } else { c.execute_batch(NO_AUTOCHECKPOINT) }
        });
        let pool = Pool::connect(manager, pool).await?;
        Ok(Self { pool, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection pool (for its metrics).
    pub fn pool(&self) -> &Pool<SqliteManager> {
        &self.pool
    }
}

/// Refuses files that are not databases, are damaged or are too new, without writing.
fn preflight(path: &Path) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::Invalid {
                    field: "sqlite path",
                    reason: format!("cannot create the directory {}: {e}", parent.display()),
                })?;
            }
            return Ok(());
        }
        Err(e) => {
            return Err(Error::Invalid {
                field: "sqlite path",
                reason: format!("cannot read {}: {e}", path.display()),
            });
        }
    };
    if meta.len() == 0 {
        return Ok(()); // SQLite treats an empty file as an empty database.
    }
    match inspect(path) {
        Ok(Inspected::Damaged(detail)) => Err(Error::Corrupt { path: path.to_path_buf(), detail }),
        Ok(Inspected::Version(found)) if found > LATEST_VERSION => {
            Err(Error::NewerSchema { location: path.display().to_string(), found, supported: LATEST_VERSION })
        }
        Ok(Inspected::Version(_)) => Ok(()),
        Err(e) if is_corruption(&e) => {
            Err(Error::Corrupt { path: path.to_path_buf(), detail: e.to_string() })
        }
        Err(e) => {
            // Not a verdict on the file (e.g. a WAL that only a read-write connection may
            // recover): the read-write open reports real problems, and the migration
            // transaction repeats the version check before writing anything.
            tracing::debug!(path = %path.display(), error = %e, "read-only check skipped");
            Ok(())
        }
    }
}

enum Inspected {
    Damaged(String),
    Version(i64),
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

/// Opens the file read-only: its integrity (`quick_check`) and schema version.
fn inspect(path: &Path) -> rusqlite::Result<Inspected> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let check: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
    if check != "ok" {
        return Ok(Inspected::Damaged(format!("quick_check: {check}")));
    }
    Ok(Inspected::Version(version.max(recorded_version(&conn)?)))
}

/// The highest version in `schema_migrations`, or 0 without that table.
fn recorded_version(conn: &Connection) -> rusqlite::Result<i64> {
    let has_table: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |r| r.get(0),
    )?;
    if has_table == 0 {
        return Ok(0);
    }
    conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
}

enum Migrated {
    From(i64),
    Newer(i64),
}

impl Backend for SqliteBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    async fn migrate(&self, exec: &Executor) -> Result<i64> {
        let exec = exec.clone();
        let mut conn = self.pool.get().await?;
        let migrated = conn
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                let found = version.max(recorded_version(&tx)?);
                if found > LATEST_VERSION {
                    return Ok(Migrated::Newer(found)); // the transaction rolls back: nothing written
                }
                for m in SQLITE.iter().filter(|m| m.version > found) {
                    exec.run_script(None, m.sql, || tx.execute_batch(m.sql))?;
                    let record = Statement::execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                        vec![Value::Int(m.version), m.name.into(), Value::Int(crate::now_ms())],
                    );
                    run_one(&tx, &exec, None, &record)?;
                }
                if found < LATEST_VERSION {
                    tx.pragma_update(None, "user_version", LATEST_VERSION)?;
                }
                tx.commit()?;
                Ok(Migrated::From(found))
            })
            .await?;
        match migrated {
            Migrated::From(v) => Ok(v),
            Migrated::Newer(found) => Err(Error::NewerSchema {
                location: self.path.display().to_string(),
                found,
                supported: LATEST_VERSION,
            }),
        }
    }

    async fn run(
        &self,
        exec: &Executor,
        span: Option<SpanId>,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<Vec<Outcome>> {
        let exec = exec.clone();
        let mut conn = self.pool.get().await?;
        let out = conn
            .call(move |c| {
                if !transaction {
                    return statements.iter().map(|s| run_one(c, &exec, span, s)).collect();
                }
                // A write transaction takes the write lock up front: a deferred one that
                // upgrades later can fail at once with SQLITE_BUSY instead of waiting.
                let behavior = if statements.iter().all(|s| is_read(s.sql)) {
                    TransactionBehavior::Deferred
                } else {
                    TransactionBehavior::Immediate
                };
                let tx = c.transaction_with_behavior(behavior)?;
                let out =
                    statements.iter().map(|s| run_one(&tx, &exec, span, s)).collect::<Result<Vec<_>, _>>()?;
                tx.commit()?;
                Ok(out)
            })
            .await?;
        Ok(out)
    }
}

fn is_read(sql: &str) -> bool {
    sql.trim_start().get(..6).is_some_and(|s| s.eq_ignore_ascii_case("select"))
}

fn run_one(
    c: &Connection,
    exec: &Executor,
    span: Option<SpanId>,
    s: &Statement,
) -> rusqlite::Result<Outcome> {
    exec.run(span, s, || {
        let mut stmt = c.prepare_cached(s.sql)?;
        let params = rusqlite::params_from_iter(s.params.iter());
        if !s.returns_rows {
            let n = stmt.execute(params)? as u64;
            return Ok((n, Outcome { rows: Vec::new(), affected: n }));
        }
        let columns = stmt.column_count();
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(from_sqlite(row.get_ref(i)?, i)?);
            }
            out.push(Row(values));
        }
        let n = out.len() as u64;
        Ok((n, Outcome { rows: out, affected: n }))
    })
}

fn from_sqlite(v: ValueRef<'_>, i: usize) -> rusqlite::Result<Value> {
    match v {
        ValueRef::Null => Ok(Value::Null),
        ValueRef::Integer(n) => Ok(Value::Int(n)),
        ValueRef::Text(t) => {
            std::str::from_utf8(t).map(|s| Value::Text(s.to_owned())).map_err(rusqlite::Error::Utf8Error)
        }
        other => Err(rusqlite::Error::InvalidColumnType(i, format!("#{i}"), other.data_type())),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}
