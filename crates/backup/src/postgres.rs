//! Backups of a PostgreSQL store through `pg_dump` (custom format), in the same container
//! as SQLite's: manifest, SHA-256 per part and over the file, zstd. `verify` runs
//! `pg_restore --list` on the dump; a restore goes into a new, empty database, never over
//! a live one. The programs come from PostgreSQL's client tools (Debian:
//! `postgresql-client`), the same major version as the server or newer.
//!
//! The password is never on a command line (others can read `/proc`): whether it is in
//! the URL's user part or its query (`?password=`), it is handed to the tools in
//! `PGPASSWORD`, and left out of every message and of the manifest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::container::{self, Entry, Manifest};
use crate::error::{Error, Result};
use crate::ops::{BackupInfo, TempFile, lock_dir, verify_with, write_backup};
use crate::util::{now_ms, parent, private_file, run_tool};

/// The dump's name inside a backup.
pub(crate) const PG_ENTRY: &str = "postgres.dump";

/// A PostgreSQL URL split for the client tools: the URL without its password (neither in
/// the user part nor in the query), and the password.
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
        let not_utf8 = || {
            Error::Invalid(
                "the database URL: its password is not UTF-8 once percent-decoded (expected %XX escapes of UTF-8 bytes)"
                    .to_owned(),
            )
        };
        // Percent-decoded as libpq and tokio-postgres do (a `+` stays a `+`).
        let mut password = match parsed.password() {
            Some(p) => Some(percent_decode(p).ok_or_else(not_utf8)?),
            None => None,
        };
        parsed.set_password(None).map_err(|()| bad())?;
        if let Some(query) = parsed.query().map(str::to_owned) {
            let mut kept = Vec::new();
            for pair in query.split('&') {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                match percent_decode(key).as_deref() {
                    // libpq reads the query after the user part: the query's wins.
                    Some("password") => password = Some(percent_decode(value).ok_or_else(not_utf8)?),
                    Some("sslpassword") => {
                        return Err(Error::Invalid(
                            "the database URL: sslpassword (the client key's passphrase) could reach pg_dump only on its command line, where others can read it: use a client key without a passphrase, or a service file (PGSERVICEFILE)"
                                .to_owned(),
                        ));
                    }
                    _ if pair.is_empty() => {}
                    _ => kept.push(pair),
                }
            }
            parsed.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
        }
        Ok(Self { url: parsed.to_string(), password })
    }

    /// One of PostgreSQL's client programs, pointed at this database.
    fn command(&self, bin_dir: Option<&Path>, program: &str) -> Command {
        let mut cmd = tool(bin_dir, program);
        cmd.env_remove("PGPASSWORD");
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd
    }
}

/// PostgreSQL's client tool `program`, from `bin_dir` (`None`: the `PATH`).
fn tool(bin_dir: Option<&Path>, program: &str) -> Command {
    Command::new(bin_dir.map_or_else(|| PathBuf::from(program), |d| d.join(program)))
}

/// `text` with its `%XX` escapes decoded (anything else, `+` included, as it is); `None`
/// when the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text).decode_utf8().ok().map(std::borrow::Cow::into_owned)
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
    // Mode 0600 before pg_dump writes into it (it keeps the mode of a file it truncates).
    drop(private_file(&dump.0)?);
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
    verify_with(&made.path, o.bin_dir.as_deref())?;
    Ok(BackupInfo { took: start.elapsed(), ..made })
}

/// The highest version in a dump's `schema_migrations` table.
fn dump_schema_version(dump: &Path, bin_dir: Option<&Path>) -> Result<i64> {
    let mut cmd = tool(bin_dir, "pg_restore");
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

/// Checks a PostgreSQL dump inside a backup: `pg_restore --list` (from `bin_dir`, or the
/// `PATH`) reads it, and its schema version is the manifest's.
pub(crate) fn verify_dump(
    backup: &Path,
    manifest: &Manifest,
    entry: &Entry,
    bin_dir: Option<&Path>,
) -> Result<()> {
    let copy = TempFile(parent(backup).join(format!(".verify-{}.dump", std::process::id())));
    {
        let mut out = private_file(&copy.0)?;
        container::extract(backup, entry, &mut out, &copy.0)?;
    }
    let mut cmd = tool(bin_dir, "pg_restore");
    cmd.arg("--list").arg(&copy.0);
    let listing =
        run(cmd, "pg_restore", "listing the dump").map_err(|e| Error::damaged(backup, e.to_string()))?;
    if !listing.contains("schema_migrations") {
        return Err(Error::damaged(backup, "the dump holds no schema_migrations table"));
    }
    let found = dump_schema_version(&copy.0, bin_dir).map_err(|e| Error::damaged(backup, e.to_string()))?;
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
    let verified = verify_with(backup, bin_dir)?;
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
    // Beside the backup (verify has just written there), mode 0600, created exclusively:
    // never under a name others can guess in a shared /tmp.
    let dump = TempFile(parent(backup).join(format!(".restore-{}-{}.dump", std::process::id(), now_ms())));
    {
        let mut out = private_file(&dump.0)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_percent_decoded_as_libpq_does_and_a_plus_stays_a_plus() {
        let c = Conn::parse("postgres://mltb:a+b%2Bc%20d@h:5432/db").unwrap();
        assert_eq!(c.password.as_deref(), Some("a+b+c d"));
        assert_eq!(c.url, "postgres://mltb@h:5432/db");
        let c = Conn::parse("postgres://mltb:%C3%A9t%C3%A9@h/db").unwrap();
        assert_eq!(c.password.as_deref(), Some("été"));
        let e = Conn::parse("postgres://mltb:bad%FFsecret@h/db").unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn a_password_in_the_query_leaves_the_url_for_pgpassword() {
        let c = Conn::parse("postgres://mltb@h/db?sslmode=require&password=hunter%2B2&application_name=x+y")
            .unwrap();
        assert_eq!(c.password.as_deref(), Some("hunter+2"));
        assert_eq!(c.url, "postgres://mltb@h/db?sslmode=require&application_name=x+y");
        assert_eq!(format!("{c:?}"), c.url);
        let c = Conn::parse("postgres://mltb:user-part@h/db?password=query-part").unwrap();
        assert_eq!(c.password.as_deref(), Some("query-part"));
        assert_eq!(c.url, "postgres://mltb@h/db");
        let e = Conn::parse("postgres://mltb@h/db?sslpassword=hunter2").unwrap_err().to_string();
        assert!(e.contains("sslpassword") && !e.contains("hunter2"), "{e}");
        let cmd = c.command(None, "pg_dump");
        let env: Vec<_> = cmd.get_envs().collect();
        assert!(
            env.contains(&(std::ffi::OsStr::new("PGPASSWORD"), Some(std::ffi::OsStr::new("query-part"))))
        );
    }
}
