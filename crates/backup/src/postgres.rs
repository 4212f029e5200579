//! Backups of a PostgreSQL store through `pg_dump` (custom format), in the same container
//! as SQLite's: manifest, SHA-256 per part and over the file, zstd. `verify` runs
//! `pg_restore --list` on the dump; a restore goes into a new, empty database, never over
//! a live one. The programs come from PostgreSQL's client tools (Debian:
//! `postgresql-client`), the same major version as the server or newer.
//!
//! The password is never on a command line (others can read `/proc`): it is handed to
//! the tools in `PGPASSWORD`, and left out of every message and of the manifest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::container::{self, Entry, Manifest};
use crate::error::{Error, Result};
use crate::ops::{BackupInfo, TempFile, lock_dir, verify, write_backup};
use crate::util::{now_ms, parent, run_tool};

/// The dump's name inside a backup.
pub(crate) const PG_ENTRY: &str = "postgres.dump";

/// A PostgreSQL URL split for the client tools: the URL without its password, and the
/// password.
#[derive(Clone)]
struct Conn {
    url: String,
    password: Option<String>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Conn {
    fn parse(url: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(
                "the database URL: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE".to_owned(),
            )
        };
        let mut parsed = url::Url::parse(url.trim()).map_err(|_| bad())?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") || parsed.path().len() < 2 {
            return Err(bad());
        }
        let password = parsed.password().map(|p| {
            url::form_urlencoded::parse(format!("p={p}").as_bytes())
                .next()
                .map_or_else(|| p.to_owned(), |(_, v)| v.into_owned())
        });
        parsed.set_password(None).map_err(|()| bad())?;
        Ok(Self { url: parsed.to_string(), password })
    }

    /// One of PostgreSQL's client programs, pointed at this database.
    fn command(&self, bin_dir: Option<&Path>, program: &str) -> Command {
        let mut cmd = Command::new(bin_dir.map_or_else(|| PathBuf::from(program), |d| d.join(program)));
        cmd.env_remove("PGPASSWORD");
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd
    }
}

/// Runs `cmd`; its stdout, or an error naming `program` and its last line of stderr.
fn run(mut cmd: Command, program: &str, what: &str) -> Result<String> {
    let ran = run_tool(&mut cmd, "postgresql-client").map_err(Error::Invalid)?;
    if ran.code == 0 {
        return Ok(ran.stdout);
    }
    Err(Error::Invalid(format!("{what}: {program} failed: {}", ran.last_error)))
}

/// What to back up from PostgreSQL, and where.
#[derive(Clone)]
#[non_exhaustive]
pub struct PgBackupOptions {
    url: String,
    /// The directory backups go to.
    pub dir: PathBuf,
    /// The bot's config file, if it has one (it holds no secrets).
    pub config: Option<PathBuf>,
    /// Where `pg_dump`, `pg_restore` and `psql` are (`None`: the `PATH`).
    pub bin_dir: Option<PathBuf>,
}

impl std::fmt::Debug for PgBackupOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBackupOptions")
            .field("url", &Conn::parse(&self.url).map(|c| c.url).unwrap_or_default())
            .field("dir", &self.dir)
            .field("config", &self.config)
            .field("bin_dir", &self.bin_dir)
            .finish()
    }
}

impl PgBackupOptions {
    /// A backup of the database at `url` (the bot's `DATABASE_URL`) into `dir`.
    pub fn new(url: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        Self { url: url.into(), dir: dir.into(), config: None, bin_dir: None }
    }

    /// Includes the config file at `path`.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// Runs the client tools from `dir` (e.g. `/usr/lib/postgresql/16/bin`).
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }
}

/// Dumps the database with `pg_dump --format=custom` (a consistent snapshot while the
/// bot runs), writes it and the config into one backup file atomically, and verifies it.
///
/// # Errors
/// A bad URL; the tools missing or failing (their message, never the password); another
/// backup of the directory running; not an mltb database (no `schema_migrations`).
pub fn backup_postgres(o: &PgBackupOptions) -> Result<BackupInfo> {
    let start = Instant::now();
    let conn = Conn::parse(&o.url)?;
    std::fs::create_dir_all(&o.dir).map_err(|e| Error::io(&o.dir, e))?;
    let _lock = lock_dir(&o.dir)?;
    let created = now_ms();
    let dump = TempFile(o.dir.join(format!(".pg-dump-{}.dump", std::process::id())));
    let mut cmd = conn.command(o.bin_dir.as_deref(), "pg_dump");
    cmd.arg("--format=custom").arg("--no-owner").arg("--no-privileges").arg("--file").arg(&dump.0);
    cmd.arg("--dbname").arg(&conn.url);
    run(cmd, "pg_dump", &format!("dumping {conn:?}"))?;
    let schema_version = dump_schema_version(&dump.0, o.bin_dir.as_deref())?;
    let made = write_backup(
        &o.dir,
        created,
        schema_version,
        conn.url.clone(),
        (PG_ENTRY, &dump.0),
        o.config.as_deref(),
    )?;
    drop(dump);
    verify(&made.path)?;
    Ok(BackupInfo { took: start.elapsed(), ..made })
}

/// The highest version in a dump's `schema_migrations` table.
fn dump_schema_version(dump: &Path, bin_dir: Option<&Path>) -> Result<i64> {
    let mut cmd = Command::new(bin_dir.map_or_else(|| PathBuf::from("pg_restore"), |d| d.join("pg_restore")));
    cmd.arg("--data-only").arg("--table=schema_migrations").arg("--file=-").arg(dump);
    let sql = run(cmd, "pg_restore", &format!("reading {}", dump.display()))?;
    let mut rows = sql.lines().skip_while(|l| !l.starts_with("COPY ") || !l.contains("schema_migrations"));
    if rows.next().is_none() {
        return Err(Error::Invalid(format!(
            "{}: no schema_migrations table: not an mltb database",
            dump.display()
        )));
    }
    Ok(rows
        .take_while(|l| *l != "\\.")
        .filter_map(|l| l.split('\t').next().and_then(|v| v.parse::<i64>().ok()))
        .max()
        .unwrap_or(0))
}

/// Checks a PostgreSQL dump inside a backup: `pg_restore --list` reads it, and its
/// schema version is the manifest's.
pub(crate) fn verify_dump(backup: &Path, manifest: &Manifest, entry: &Entry) -> Result<()> {
    let copy = TempFile(parent(backup).join(format!(".verify-{}.dump", std::process::id())));
    {
        let mut out = std::fs::File::create(&copy.0).map_err(|e| Error::io(&copy.0, e))?;
        container::extract(backup, entry, &mut out, &copy.0)?;
    }
    let mut cmd = Command::new("pg_restore");
    cmd.arg("--list").arg(&copy.0);
    let listing =
        run(cmd, "pg_restore", "listing the dump").map_err(|e| Error::damaged(backup, e.to_string()))?;
    if !listing.contains("schema_migrations") {
        return Err(Error::damaged(backup, "the dump holds no schema_migrations table"));
    }
    let found = dump_schema_version(&copy.0, None).map_err(|e| Error::damaged(backup, e.to_string()))?;
    if found != manifest.schema_version {
        return Err(Error::damaged(
            backup,
            format!("the dump is at schema {found}, the manifest says {}", manifest.schema_version),
        ));
    }
    Ok(())
}

/// A PostgreSQL restore done.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgRestored {
    /// What the backup held.
    pub manifest: Manifest,
    /// How long it took, the check included.
    pub took: std::time::Duration,
}

/// Restores a PostgreSQL backup into the database at `url`, which must exist and be
/// empty (no table outside the system schemas): create it (`createdb mltb_restored`),
/// restore, then point the bot's `DATABASE_URL` at it. A live database is never written
/// over. The backup is verified first; the restore runs in one transaction and stops at
/// the first error; the restored schema version is checked.
///
/// # Errors
/// A damaged backup; a SQLite backup; a newer schema; a database that is not empty; the
/// tools failing.
pub fn restore_postgres(backup: &Path, url: &str, bin_dir: Option<&Path>) -> Result<PgRestored> {
    let start = Instant::now();
    let conn = Conn::parse(url)?;
    let verified = verify(backup)?;
    let manifest = verified.manifest;
    let Some(entry) = manifest.entries.iter().find(|e| e.name == PG_ENTRY) else {
        return Err(Error::Invalid(format!(
            "{} holds a SQLite database, not a PostgreSQL dump: restore it with --db",
            backup.display()
        )));
    };
    if manifest.schema_version > mltb_store::LATEST_VERSION {
        return Err(Error::NewerSchema {
            path: backup.display().to_string(),
            found: manifest.schema_version,
            supported: mltb_store::LATEST_VERSION,
        });
    }
    let psql = |sql: &str| {
        let mut cmd = conn.command(bin_dir, "psql");
        cmd.arg("--no-psqlrc").arg("-At").arg("-v").arg("ON_ERROR_STOP=1").arg("-c").arg(sql);
        cmd.arg("--dbname").arg(&conn.url);
        run(cmd, "psql", &format!("querying {conn:?}"))
    };
    let tables = psql(
        "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )?;
    let tables: i64 = tables.trim().parse().unwrap_or(-1);
    if tables != 0 {
        return Err(Error::Invalid(format!(
            "{conn:?} is not empty ({tables} tables): restore into a new database (createdb mltb_restored) and point DATABASE_URL at it; a live database is never written over"
        )));
    }
    let dump =
        TempFile(std::env::temp_dir().join(format!("mltb-restore-{}-{}.dump", std::process::id(), now_ms())));
    {
        let mut out = std::fs::File::create(&dump.0).map_err(|e| Error::io(&dump.0, e))?;
        container::extract(backup, entry, &mut out, &dump.0)?;
    }
    let mut cmd = conn.command(bin_dir, "pg_restore");
    cmd.arg("--no-owner").arg("--no-privileges").arg("--exit-on-error").arg("--single-transaction");
    cmd.arg("--dbname").arg(&conn.url).arg(&dump.0);
    run(cmd, "pg_restore", &format!("restoring into {conn:?}"))?;
    let found: i64 =
        psql("SELECT coalesce(max(version), 0) FROM schema_migrations")?.trim().parse().unwrap_or(-1);
    if found != manifest.schema_version {
        return Err(Error::Invalid(format!(
            "{conn:?}: restored at schema {found}, the backup says {}",
            manifest.schema_version
        )));
    }
    Ok(PgRestored { manifest, took: start.elapsed() })
}
