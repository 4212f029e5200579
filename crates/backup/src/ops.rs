//! Backup, verify, restore and list.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::EXTENSION;
use crate::container::{self, Manifest, Part};
use crate::error::{Error, Result};
use crate::util::{Lock, Staged, now_ms, parent, private_file, read_dir_if_any, utc_stamp};

/// The lock file the bot holds in its data directory while it runs; restore refuses
/// while it is held.
pub const BOT_LOCK: &str = "mltb.lock";
/// The lock file in a backup directory: one backup or prune at a time.
const DIR_LOCK: &str = ".mltb-backup.lock";
/// The database's name inside a backup.
pub(crate) const DB_ENTRY: &str = "mltb.db";
/// The config's name inside a backup.
const CONFIG_ENTRY: &str = "config.toml";
/// How long a snapshot waits for a writer's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What to back up, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupOptions {
    /// The bot's SQLite database.
    pub db: PathBuf,
    /// The directory backups go to.
    pub dir: PathBuf,
    /// The bot's config file, if it has one. It holds no secrets: the bot refuses them in
    /// the file (they come from the environment or `_FILE` paths).
    pub config: Option<PathBuf>,
    /// Verify the backup once written (default `true`).
    pub verify: bool,
}

impl BackupOptions {
    /// A backup of `db` into `dir`, verified once written.
    pub fn new(db: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        Self { db: db.into(), dir: dir.into(), config: None, verify: true }
    }

    /// Includes the config file at `path`.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }
}

/// A backup written.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// What it holds.
    pub manifest: Manifest,
    /// How long it took, verification included.
    pub took: Duration,
}

/// Removes a file when dropped.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Takes a consistent snapshot of the database (`VACUUM INTO`, safe while the bot
/// writes), writes it and the config into one backup file atomically, and verifies it.
///
/// # Errors
/// The database or directory cannot be read or written; another backup of the same
/// directory is running ([`Error::Locked`]); the new backup does not verify.
pub fn backup(o: &BackupOptions) -> Result<BackupInfo> {
    let start = Instant::now();
    std::fs::create_dir_all(&o.dir).map_err(|e| Error::io(&o.dir, e))?;
    let _lock = lock_dir(&o.dir)?;
    if !o.db.is_file() {
        return Err(Error::NotFound(format!(
            "{}: no database there (the bot's is <data_dir>/mltb.db)",
            o.db.display()
        )));
    }
    let created = now_ms();
    let snapshot = TempFile(o.dir.join(format!(".snapshot-{}.db", std::process::id())));
    // Created empty, mode 0600, before SQLite writes a page into it (VACUUM INTO takes
    // an empty file): SQLite would create it readable by everyone.
    drop(private_file(&snapshot.0)?);
    {
        let conn = Connection::open_with_flags(
            &o.db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::sqlite(&o.db, &e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| Error::sqlite(&o.db, &e))?;
        let target = snapshot
            .0
            .to_str()
            .ok_or_else(|| Error::Invalid(format!("{}: not UTF-8", snapshot.0.display())))?;
        conn.execute("VACUUM INTO ?1", [target]).map_err(|e| Error::sqlite(&o.db, &e))?;
    }
    let schema_version = user_version(&snapshot.0)?;
    let source = o.db.display().to_string();
    let made =
        write_backup(&o.dir, created, schema_version, source, (DB_ENTRY, &snapshot.0), o.config.as_deref())?;
    drop(snapshot);
    if o.verify {
        verify(&made.path)?;
    }
    Ok(BackupInfo { took: start.elapsed(), ..made })
}

/// Takes the lock of backup directory `dir` (one backup or prune at a time).
pub(crate) fn lock_dir(dir: &Path) -> Result<Lock> {
    Lock::try_take(
        &dir.join(DIR_LOCK),
        &format!("another mltb-backup is writing to {}; wait for it to end", dir.display()),
    )
}

/// Writes the backup of a snapshot taken at `created` (Unix ms) into `dir`, atomically:
/// the database part `(name, file)`, then the config when given, under one manifest.
/// Its `took` is zero: the caller times the whole backup.
pub(crate) fn write_backup(
    dir: &Path,
    created: u64,
    schema_version: i64,
    source: String,
    database: (&str, &Path),
    config: Option<&Path>,
) -> Result<BackupInfo> {
    let manifest = Manifest {
        format: container::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version,
        created_unix_ms: created,
        source,
        entries: Vec::new(),
        wal: None,
    };
    let mut parts = vec![(database.0, Part::File(database.1))];
    if let Some(config) = config {
        parts.push((CONFIG_ENTRY, Part::File(config)));
    }
    let path = dir.join(format!("mltb-{}.{EXTENSION}", utc_stamp(created)));
    let mut staged = Staged::beside(&path)?;
    let manifest = container::write(&mut staged.file, &staged.temp, manifest, &parts)?;
    staged.commit(&path)?;
    let bytes = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
    Ok(BackupInfo { path, bytes, manifest, took: Duration::ZERO })
}

/// A backup checked whole.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verified {
    /// The file.
    pub path: PathBuf,
    /// What it holds.
    pub manifest: Manifest,
}

/// Checks a backup: the checksum over the whole file, the manifest, every part's size
/// and SHA-256, and the database copy with `PRAGMA integrity_check` (decompressed to a
/// temporary file beside the backup, removed afterwards).
///
/// # Errors
/// [`Error::Damaged`] naming what is wrong; I/O errors.
pub fn verify(path: &Path) -> Result<Verified> {
    verify_with(path, None)
}

/// [`verify`], running PostgreSQL's client tools from `pg_bin_dir` (`None`: the `PATH`)
/// for a PostgreSQL backup.
pub(crate) fn verify_with(path: &Path, pg_bin_dir: Option<&Path>) -> Result<Verified> {
    let manifest = container::open(path, true)?;
    let Some(db) = manifest.entries.iter().find(|e| e.name == DB_ENTRY) else {
        if let Some(dump) = manifest.entries.iter().find(|e| e.name == crate::postgres::PG_ENTRY) {
            crate::postgres::verify_dump(path, &manifest, dump, pg_bin_dir)?;
            for e in manifest.entries.iter().filter(|e| e.name != crate::postgres::PG_ENTRY) {
                container::extract(path, e, &mut std::io::sink(), path)?;
            }
            return Ok(Verified { path: path.to_path_buf(), manifest });
        }
        return Err(Error::damaged(path, "the manifest lists no database"));
    };
    let copy = TempFile(parent(path).join(format!(".verify-{}.db", std::process::id())));
    {
        let mut out = private_file(&copy.0)?;
        container::extract(path, db, &mut out, &copy.0)?;
    }
    check_database(&copy.0).map_err(|why| Error::damaged(path, why))?;
    let found = user_version(&copy.0)?;
    if found != manifest.schema_version {
        return Err(Error::damaged(
            path,
            format!("the database is at schema {found}, the manifest says {}", manifest.schema_version),
        ));
    }
    for e in manifest.entries.iter().filter(|e| e.name != DB_ENTRY) {
        container::extract(path, e, &mut std::io::sink(), path)?;
    }
    Ok(Verified { path: path.to_path_buf(), manifest })
}

/// `PRAGMA integrity_check` of a database file: `Err` with its first findings.
pub(crate) fn check_database(db: &Path) -> std::result::Result<(), String> {
    let conn =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| format!("the database copy does not open: {e}"))?;
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(|e| format!("the database copy: {e}"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(Iterator::collect)
        .map_err(|e| format!("the database copy: {e}"))?;
    if rows == ["ok"] {
        Ok(())
    } else {
        Err(format!("integrity_check: {}", rows.into_iter().take(3).collect::<Vec<_>>().join("; ")))
    }
}

pub(crate) fn user_version(db: &Path) -> Result<i64> {
    let conn =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| Error::sqlite(db, &e))?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| Error::sqlite(db, &e))
}

/// A backup file found in a directory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Listed {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its manifest, read without checking the whole file (that is [`verify`]); or why
    /// it could not be read.
    pub manifest: std::result::Result<Manifest, String>,
}

impl Listed {
    /// When it was taken (Unix ms), from its manifest; 0 when unreadable.
    pub fn created_unix_ms(&self) -> u64 {
        self.manifest.as_ref().map_or(0, |m| m.created_unix_ms)
    }
}

/// The backups in `dir` (files ending `.mltb-backup`), newest first.
///
/// # Errors
/// `dir` cannot be read.
pub fn list(dir: &Path) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    let Some(entries) = read_dir_if_any(dir)? else { return Ok(out) };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(&format!(".{EXTENSION}")) {
            continue;
        }
        let bytes = entry.metadata().map_err(|e| Error::io(&path, e))?.len();
        let manifest = container::open(&path, false).map_err(|e| e.to_string());
        out.push(Listed { path, bytes, manifest });
    }
    out.sort_by(|a, b| b.created_unix_ms().cmp(&a.created_unix_ms()).then_with(|| b.path.cmp(&a.path)));
    Ok(out)
}

/// What to restore, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// The directory of backups.
    pub dir: PathBuf,
    /// The backup to restore; `None`: the newest that verifies.
    pub backup: Option<PathBuf>,
    /// Where the database goes (the bot's `<data_dir>/mltb.db`).
    pub db: PathBuf,
}

impl RestoreOptions {
    /// The newest good backup in `dir`, to `db`.
    pub fn latest(dir: impl Into<PathBuf>, db: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), backup: None, db: db.into() }
    }

    /// The backup `file`, to `db`.
    pub fn file(file: impl Into<PathBuf>, db: impl Into<PathBuf>) -> Self {
        let file = file.into();
        Self { dir: parent(&file).to_path_buf(), backup: Some(file), db: db.into() }
    }
}

/// A restore done.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Restored {
    /// The backup restored.
    pub backup: PathBuf,
    /// What it held.
    pub manifest: Manifest,
    /// Where the database was before, moved aside (with its `-wal`/`-shm` files); `None`
    /// when there was none.
    pub moved_aside: Option<PathBuf>,
    /// Backups skipped as not good (newest first), with why: only when restoring the
    /// latest.
    pub skipped: Vec<(PathBuf, String)>,
    /// How long it took.
    pub took: Duration,
}

/// Restores a backup: refuses while the bot runs on the target's data directory (its
/// [`BOT_LOCK`]), and holds that lock meanwhile; writes the database beside the target
/// under a temporary name and checks it there; moves the live database (and its
/// `-wal`/`-shm`) aside as `<db>.before-restore-<time>`; then renames the restored one
/// into place.
///
/// # Errors
/// [`Error::Locked`] while the bot runs; [`Error::NewerSchema`] for a backup from a
/// newer mltb (by its manifest or by the database in it); [`Error::Damaged`] for a
/// damaged backup, one whose database is at another schema than its manifest says (or,
/// for the latest, when none is good: each one's reason); I/O errors.
pub fn restore(o: &RestoreOptions) -> Result<Restored> {
    let start = Instant::now();
    let _bot = bot_stopped(&o.db)?;
    let mut skipped = Vec::new();
    let candidates: Vec<PathBuf> = match &o.backup {
        Some(file) => vec![file.clone()],
        None => list(&o.dir)?.into_iter().map(|l| l.path).collect(),
    };
    if candidates.is_empty() {
        return Err(Error::NotFound(format!("no backup in {}", o.dir.display())));
    }
    for backup in candidates {
        match restore_one(&backup, &o.db) {
            Ok((manifest, moved_aside)) => {
                return Ok(Restored { backup, manifest, moved_aside, skipped, took: start.elapsed() });
            }
            Err(e @ (Error::Damaged { .. } | Error::NewerSchema { .. })) if o.backup.is_none() => {
                tracing::warn!(backup = %backup.display(), error = %e, "skipped");
                skipped.push((backup, e.to_string()));
            }
            Err(e) => return Err(e),
        }
    }
    let reasons: Vec<String> = skipped.iter().map(|(p, why)| format!("{}: {why}", p.display())).collect();
    Err(Error::damaged(&o.dir, format!("no good backup: {}", reasons.join("; "))))
}

fn restore_one(backup: &Path, db: &Path) -> Result<(Manifest, Option<PathBuf>)> {
    let manifest = container::open(backup, true)?;
    if manifest.schema_version > mltb_store::LATEST_VERSION {
        return Err(Error::NewerSchema {
            path: backup.display().to_string(),
            found: manifest.schema_version,
            supported: mltb_store::LATEST_VERSION,
        });
    }
    let Some(entry) = manifest.entries.iter().find(|e| e.name == DB_ENTRY) else {
        if manifest.entries.iter().any(|e| e.name == crate::postgres::PG_ENTRY) {
            return Err(Error::Invalid(format!(
                "{} holds a PostgreSQL dump, not a SQLite database: restore it with --to-url",
                backup.display()
            )));
        }
        return Err(Error::damaged(backup, "the manifest lists no database"));
    };
    let moved_aside = stage_and_swap(db, backup, Some(manifest.schema_version), |file, temp| {
        let mut out = std::io::BufWriter::new(file);
        container::extract(backup, entry, &mut out, temp)?;
        std::io::Write::flush(&mut out).map_err(|e| Error::io(temp, e))
    })?;
    Ok((manifest, moved_aside))
}

/// Takes the bot's lock on `db`'s data directory (created if missing): the bot is not
/// running there, and will not start while the lock is held.
pub(crate) fn bot_stopped(db: &Path) -> Result<Lock> {
    let data = parent(db);
    std::fs::create_dir_all(data).map_err(|e| Error::io(data, e))?;
    Lock::try_take(
        &data.join(BOT_LOCK),
        &format!(
            "the bot is running on {}: stop it first (a restore never replaces the database under a running bot)",
            data.display()
        ),
    )
}

/// Writes a database beside `db` under a temporary name (mode 0600) with `fill`, makes it
/// durable and checks it (`PRAGMA integrity_check`, and its schema version: `schema`
/// when given, and no newer than this build knows; a failure is blamed on `source`),
/// moves the live database (and its `-wal`/`-shm`) aside as
/// `<db>.before-restore-<time>`, then renames the new one into place. Returns where the
/// old one went.
pub(crate) fn stage_and_swap(
    db: &Path,
    source: &Path,
    schema: Option<i64>,
    fill: impl FnOnce(&mut std::fs::File, &Path) -> Result<()>,
) -> Result<Option<PathBuf>> {
    let mut staged = Staged::beside(db)?;
    fill(&mut staged.file, &staged.temp)?;
    staged.file.sync_all().map_err(|e| Error::io(&staged.temp, e))?;
    check_database(&staged.temp).map_err(|why| Error::damaged(source, why))?;
    // What the bot will find, read from the file itself: a manifest can say anything.
    let found = user_version(&staged.temp)?;
    if let Some(expected) = schema
        && found != expected
    {
        return Err(Error::damaged(
            source,
            format!("the database is at schema {found}, the manifest says {expected}"),
        ));
    }
    if found > mltb_store::LATEST_VERSION {
        return Err(Error::NewerSchema {
            path: source.display().to_string(),
            found,
            supported: mltb_store::LATEST_VERSION,
        });
    }
    // The live database and its journal go aside together: a WAL left beside the
    // restored file would be replayed into it.
    let moved_aside = if db.exists() {
        let aside = PathBuf::from(format!("{}.before-restore-{}", db.display(), utc_stamp(now_ms())));
        std::fs::rename(db, &aside).map_err(|e| Error::io(db, e))?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let side = PathBuf::from(format!("{}{suffix}", db.display()));
            if side.exists() {
                let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                std::fs::rename(&side, &to).map_err(|e| Error::io(&side, e))?;
            }
        }
        Some(aside)
    } else {
        None
    };
    staged.commit(db)?;
    Ok(moved_aside)
}
