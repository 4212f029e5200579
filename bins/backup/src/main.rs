//! `mltb-backup`: verified backups of the mltb bot's data.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program reports on its terminal"
)]

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use mltb_backup::{BackupOptions, PgBackupOptions, Remote, RestoreOptions, Retention};

/// Verified backups of the mltb bot's data: a consistent snapshot of its SQLite store
/// and its config in one checksummed, compressed file; verify, restore and retention.
#[derive(Debug, Parser)]
#[command(name = "mltb-backup", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Take a backup now (safe while the bot runs), then verify it.
    Backup(BackupArgs),
    /// Check backups whole: checksums, manifest, and the database's integrity_check.
    Verify {
        /// Backup files; with none, every backup in --dir.
        files: Vec<PathBuf>,
        /// The backup directory.
        #[arg(long, default_value = "backups")]
        dir: PathBuf,
        /// A continuous-protection replica directory: check each generation's base and
        /// every run (checksums, no gap, the log's checksum chain) instead.
        #[arg(long, conflicts_with = "files")]
        replica: Option<PathBuf>,
    },
    /// Restore a backup (the newest good one by default) to the database path; refuses
    /// while the bot runs, and moves the current database aside instead of overwriting it.
    Restore {
        /// The backup directory.
        #[arg(long, default_value = "backups")]
        dir: PathBuf,
        /// The backup to restore (a file; with --remote, a name on the remote); the newest
        /// good one when absent.
        #[arg(long)]
        backup: Option<PathBuf>,
        /// Where the database goes.
        #[arg(long, default_value = "data/mltb.db")]
        db: PathBuf,
        /// Restore a PostgreSQL backup into the database named by MLTB_DATABASE_URL (or
        /// MLTB_DATABASE_URL_FILE), which must be new and empty (createdb), instead of --db.
        #[arg(long)]
        postgres: bool,
        /// Restore from continuous protection's replica directory (the bot's
        /// backup.replica_dir) instead of a backup: its newest state, or the one at --at.
        #[arg(long, conflicts_with_all = ["backup", "postgres", "remote"])]
        replica: Option<PathBuf>,
        /// With --replica: the point in time, UTC (`2026-12-04T18:01:25Z`, optionally with
        /// `.123` milliseconds, or a backup-name stamp `20261204T180125.000Z`).
        #[arg(long, requires = "replica", value_parser = parse_time)]
        at: Option<u64>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List backups, newest first; with --replica, the replica's generations.
    List {
        /// The backup directory.
        #[arg(long, default_value = "backups")]
        dir: PathBuf,
        /// A continuous-protection replica directory: list its generations (oldest first)
        /// and the span of time each covers.
        #[arg(long, conflicts_with = "remote")]
        replica: Option<PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Delete backups the retention policy does not keep (never the only good one).
    Prune {
        /// The backup directory.
        #[arg(long, default_value = "backups")]
        dir: PathBuf,
        #[command(flatten)]
        keep: Keep,
        /// Say what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Back up and prune on a schedule, writing metrics for Prometheus's textfile
    /// collector after each run.
    Run {
        #[command(flatten)]
        backup: BackupArgs,
        /// Time between backups: `90s`, `30m`, `24h`.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        every: Duration,
        #[command(flatten)]
        keep: Keep,
        /// Where to write the metrics (`*.prom`, atomically).
        #[arg(long)]
        metrics_file: Option<PathBuf>,
        /// Stop after this many runs (default: run until killed).
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(Debug, Args)]
struct BackupArgs {
    /// The bot's database.
    #[arg(long, default_value = "data/mltb.db")]
    db: PathBuf,
    /// The backup directory.
    #[arg(long, default_value = "backups")]
    dir: PathBuf,
    /// The bot's config file, to include (it holds no secrets).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Back up the PostgreSQL store named by MLTB_DATABASE_URL (or a file named by
    /// MLTB_DATABASE_URL_FILE) with pg_dump, instead of --db.
    #[arg(long)]
    postgres: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

#[derive(Debug, Args)]
struct RemoteArgs {
    /// An rclone remote for off-site copies (`offsite:mltb/backups`, or an inline
    /// `:sftp,host=…:backups`): backup and run copy each backup there after verifying it;
    /// list, restore and prune work on the remote instead of --dir.
    #[arg(long)]
    remote: Option<String>,
    /// The rclone program.
    #[arg(long, default_value = "rclone")]
    rclone: PathBuf,
    /// Encrypt the off-site copies to this age recipient (`age1…`, or an SSH public key);
    /// repeat for several. The local backups stay as they are.
    #[arg(long = "encrypt-to", value_name = "RECIPIENT")]
    encrypt_to: Vec<String>,
    /// The age identity (secret key) file that opens encrypted copies, for restore.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// The age program.
    #[arg(long, default_value = "age")]
    age: PathBuf,
}

impl RemoteArgs {
    fn remote(&self) -> Result<Option<OffSite<'_>>, String> {
        let Some(target) = self.remote.as_deref() else {
            if !self.encrypt_to.is_empty() || self.identity.is_some() {
                return Err("--encrypt-to and --identity are for off-site copies: give --remote too".into());
            }
            return Ok(None);
        };
        let remote = Remote::new(target).map_err(|e| e.to_string())?.rclone(&self.rclone);
        Ok(Some(OffSite { remote, args: self }))
    }
}

/// An rclone remote, with the encryption its copies get.
struct OffSite<'a> {
    remote: Remote,
    args: &'a RemoteArgs,
}

impl OffSite<'_> {
    /// Copies a verified backup off site (encrypted first when asked); the remote path.
    fn copy(&self, file: &Path) -> Result<String, String> {
        self.remote.copy_backup(file, &self.args.encrypt_to, &self.args.age).map_err(|e| e.to_string())
    }

    /// Fetches `name` into a private directory of its own inside `dir`, decrypted when it
    /// is encrypted: never over a backup already in `dir`, which may be the good copy of
    /// a damaged remote one.
    fn fetch(&self, name: &str, dir: &Path) -> Result<Fetched, String> {
        let staging = mltb_backup::PrivateDir::create_in(dir, "fetch").map_err(|e| e.to_string())?;
        let file = self.remote.download(name, staging.path()).map_err(|e| e.to_string())?;
        let mut fetched = Fetched { file, staging };
        let Some(plain) = name.strip_suffix(mltb_backup::AGE_SUFFIX) else { return Ok(fetched) };
        let Some(identity) = &self.args.identity else {
            return Err(format!(
                "{name} is encrypted: give --identity FILE, the age secret key it was encrypted to"
            ));
        };
        let out = fetched.staging.path().join(plain);
        mltb_backup::decrypt(&fetched.file, identity, &out, &self.args.age).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&fetched.file);
        fetched.file = out;
        Ok(fetched)
    }
}

/// A backup fetched from a remote into a private directory (`<dir>/.fetch-…`, mode 0700),
/// removed with it when dropped; [`keep`](Self::keep) links it into `dir` first.
struct Fetched {
    staging: mltb_backup::PrivateDir,
    file: PathBuf,
}

impl Fetched {
    /// Once it has restored (so verified), gives it its place in `dir` beside the local
    /// backups, unless a file of its name is there already: that one is never replaced.
    fn keep(&self, dir: &Path) {
        let Some(name) = self.file.file_name() else { return };
        let to = dir.join(name);
        // A hard link never replaces what is there.
        match std::fs::hard_link(&self.file, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                println!("the fetched copy was not kept: {} is already there", to.display());
            }
            Err(e) => println!("the fetched copy was not kept as {}: {e}", to.display()),
        }
    }
}

#[derive(Debug, Args)]
struct Keep {
    /// Keep the newest N backups.
    #[arg(long, default_value_t = 3)]
    keep_last: usize,
    /// Keep the newest backup of each of the last N days.
    #[arg(long, default_value_t = 7)]
    keep_daily: usize,
    /// Keep the newest backup of each of the last N weeks.
    #[arg(long, default_value_t = 4)]
    keep_weekly: usize,
    /// Keep the newest backup of each of the last N months.
    #[arg(long, default_value_t = 6)]
    keep_monthly: usize,
}

impl Keep {
    fn policy(&self) -> Retention {
        let mut r = Retention::default();
        r.keep_last = self.keep_last;
        r.keep_daily = self.keep_daily;
        r.keep_weekly = self.keep_weekly;
        r.keep_monthly = self.keep_monthly;
        r
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 =
        n.parse().map_err(|_| format!("{s:?}: expected a number and a unit, such as 90s, 30m or 24h"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => return Err(format!("{s:?}: expected a unit s, m, h or d, such as 24h")),
    }
    .ok_or_else(|| format!("{s:?}: too large"))?;
    if secs == 0 {
        return Err(format!("{s:?}: expected more than zero"));
    }
    Ok(Duration::from_secs(secs))
}

/// A long step shown on a terminal: what it does and a progress bar of the bytes it goes
/// through (compressed, checked, restored), redrawn every 200 ms on stderr, cleared when
/// the step ends (when this is dropped). Nothing at all when stderr is not a terminal.
#[derive(Default)]
struct Step {
    entered: Option<mltb_backup::Entered>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Step {
    fn drop(&mut self) {
        drop(self.entered.take());
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `f`, shown on a terminal as step `what` (see [`Step`]), cleared before it returns
/// so what the caller prints next has the line to itself.
fn shown<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let _step = step(what);
    f()
}

/// Starts showing step `what` (see [`Step`]); hold the result while it runs.
fn step(what: &str) -> Step {
    if !std::io::stderr().is_terminal() {
        return Step::default();
    }
    let progress = mltb_backup::Progress::new();
    let entered = progress.enter();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let what = what.to_owned();
    let thread = std::thread::spawn(move || {
        let start = Instant::now();
        loop {
            eprint!("\r\x1b[2K{}", bar(&what, progress.done(), progress.total(), start.elapsed()));
            let _ = std::io::Write::flush(&mut std::io::stderr());
            match rx.recv_timeout(Duration::from_millis(200)) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => break,
            }
        }
        eprint!("\r\x1b[2K{}\r\x1b[2K", bar(&what, progress.done(), progress.total(), start.elapsed()));
    });
    Step { entered: Some(entered), stop: Some(tx), thread: Some(thread) }
}

/// `… what [#######         ] 42% 420.0 / 1000.0 MB 35.0 MB/s`.
fn bar(what: &str, done: u64, total: u64, took: Duration) -> String {
    const WIDTH: usize = 24;
    let share = if total == 0 { 0.0 } else { (done as f64 / total as f64).min(1.0) };
    let filled = (share * WIDTH as f64) as usize;
    let rate = done as f64 / 1e6 / took.as_secs_f64().max(1e-3);
    format!(
        "… {what} [{}{}] {:>3.0}% {:.1} / {:.1} MB {rate:.1} MB/s",
        "#".repeat(filled),
        " ".repeat(WIDTH - filled),
        share * 100.0,
        done as f64 / 1e6,
        total as f64 / 1e6
    )
}

/// Takes a backup as `a` says: of the SQLite file, or with `--postgres` of the
/// PostgreSQL store.
fn take_backup(a: &BackupArgs) -> Result<mltb_backup::BackupInfo, String> {
    if a.postgres {
        let mut o = PgBackupOptions::new(database_url()?, &a.dir);
        if let Some(c) = &a.config {
            o = o.config(c);
        }
        return mltb_backup::backup_postgres(&o).map_err(|e| e.to_string());
    }
    let mut o = BackupOptions::new(&a.db, &a.dir);
    if let Some(c) = &a.config {
        o = o.config(c);
    }
    mltb_backup::backup(&o).map_err(|e| e.to_string())
}

/// The PostgreSQL URL, as the bot reads it: `MLTB_DATABASE_URL`, or the file named by
/// `MLTB_DATABASE_URL_FILE`, not both. Never printed.
fn database_url() -> Result<String, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    database_url_from(var("MLTB_DATABASE_URL"), var("MLTB_DATABASE_URL_FILE"))
}

const NO_URL: &str = "--postgres needs the database's URL in MLTB_DATABASE_URL (or a file named by MLTB_DATABASE_URL_FILE), as the bot reads it";

/// [`database_url`] from the variable's value (`direct`) and the file's name (`file`),
/// with the bot's rules: one of them; the file read by `mltb_store::secret::read_file`;
/// not blank.
fn database_url_from(direct: Option<String>, file: Option<String>) -> Result<String, String> {
    match (direct, file) {
        (Some(_), Some(_)) => Err(
            "both MLTB_DATABASE_URL and MLTB_DATABASE_URL_FILE are set; set one of them (as the bot requires)"
                .into(),
        ),
        (Some(url), None) => Ok(url.trim().to_owned()),
        (None, Some(path)) => {
            let text = mltb_store::secret::read_file(&path)
                .map_err(|why| format!("MLTB_DATABASE_URL_FILE: {why}"))?;
            if text.trim().is_empty() {
                return Err(format!("MLTB_DATABASE_URL_FILE: the secret file {path} is empty"));
            }
            Ok(text.trim().to_owned())
        }
        (None, None) => Err(NO_URL.into()),
    }
}

/// A UTC time for --at: `2026-12-04T18:01:25Z`, with optional `.123`, or a backup
/// stamp `20261204T180125.000Z`. Unix milliseconds.
fn parse_time(s: &str) -> Result<u64, String> {
    let compact: String = s.chars().filter(|c| *c != '-' && *c != ':').collect();
    let stamp = match compact.find('.') {
        Some(_) => compact,
        None => compact.strip_suffix('Z').map(|t| format!("{t}.000Z")).unwrap_or(compact),
    };
    mltb_backup::parse_utc_stamp(&stamp)
        .ok_or_else(|| format!("expected a UTC time such as 2026-12-04T18:01:25Z, got {s:?}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mltb-backup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Backup(a) => {
            let remote = a.remote.remote()?;
            let what =
                if a.postgres { "the PostgreSQL store".to_owned() } else { a.db.display().to_string() };
            let made = shown(&format!("backing up {what} to {}", a.dir.display()), || take_backup(&a))?;
            println!(
                "{} ({} bytes, schema {}, {:.2} s, verified)",
                made.path.display(),
                made.bytes,
                made.manifest.schema_version,
                made.took.as_secs_f64()
            );
            if let Some(off) = remote {
                let at = shown(&format!("copying to {}", off.remote.target()), || off.copy(&made.path))?;
                println!("copied to {at}");
            }
            Ok(())
        }
        Command::Verify { replica: Some(replica), .. } => {
            let checked = shown(&format!("verifying the replica {}", replica.display()), || {
                mltb_backup::verify_replica(&replica)
            })
            .map_err(|e| e.to_string())?;
            if checked.is_empty() {
                return Err(format!("no replica generation in {}", replica.display()));
            }
            let mut bad = 0;
            for g in &checked {
                let reaches = mltb_backup::utc_stamp(g.reaches_unix_ms);
                match &g.problem {
                    None => println!("ok       {}  {} run(s), up to {reaches}", g.id, g.good_runs),
                    Some(why) => {
                        bad += 1;
                        println!("DAMAGED  {}  good up to {reaches} ({} run(s)): {why}", g.id, g.good_runs);
                    }
                }
            }
            if bad > 0 { Err(format!("{bad} of {} generations are damaged", checked.len())) } else { Ok(()) }
        }
        Command::Verify { files, dir, .. } => {
            let files = if files.is_empty() {
                mltb_backup::list(&dir).map_err(|e| e.to_string())?.into_iter().map(|l| l.path).collect()
            } else {
                files
            };
            if files.is_empty() {
                return Err(format!("no backup in {}", dir.display()));
            }
            let (mut bad, mut unchecked) = (0, 0);
            for f in &files {
                match shown(&format!("verifying {}", f.display()), || mltb_backup::verify(f)) {
                    Ok(v) => println!("ok       {} (schema {})", f.display(), v.manifest.schema_version),
                    Err(e @ mltb_backup::Error::Damaged { .. }) => {
                        bad += 1;
                        println!("DAMAGED  {e}");
                    }
                    // Not a verdict on the backup: the check itself could not run.
                    Err(e) => {
                        unchecked += 1;
                        println!("cannot check  {}: {e}", f.display());
                    }
                }
            }
            match (bad, unchecked) {
                (0, 0) => Ok(()),
                (0, n) => Err(format!("{n} of {} backups could not be checked", files.len())),
                (b, 0) => Err(format!("{b} of {} backups are damaged", files.len())),
                (b, n) => {
                    Err(format!("{b} of {} backups are damaged, {n} could not be checked", files.len()))
                }
            }
        }
        Command::Restore { replica: Some(replica), at, db, .. } => {
            let mut o = mltb_backup::PointOptions::latest(&replica, &db);
            if let Some(at) = at {
                o = o.at(at);
            }
            let what = format!("restoring {} from the replica {}", db.display(), replica.display());
            let done = shown(&what, || mltb_backup::restore_point(&o)).map_err(|e| e.to_string())?;
            if let Some(why) = &done.stopped {
                println!("replay stopped early: {why}");
            }
            if let Some(aside) = &done.moved_aside {
                println!("the database that was there is now {}", aside.display());
            }
            println!(
                "restored {} to its state at {} (generation {}, {} run(s) replayed) in {:.2} s",
                db.display(),
                mltb_backup::utc_stamp(done.restored_to_unix_ms),
                done.generation,
                done.runs,
                done.took.as_secs_f64()
            );
            Ok(())
        }
        Command::Restore { dir, backup, db, postgres, remote, .. } => {
            if postgres {
                let mut fetched = None;
                let file = match (backup, remote.remote()?) {
                    (Some(file), None) => file,
                    (name, Some(remote)) => {
                        fetched.insert(fetch(&remote, name.as_deref(), &dir)?).file.clone()
                    }
                    (None, None) => mltb_backup::list(&dir)
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .find(|l| {
                            l.manifest
                                .as_ref()
                                .is_ok_and(|m| m.entries.iter().any(|e| e.name == "postgres.dump"))
                        })
                        .map(|l| l.path)
                        .ok_or_else(|| format!("no PostgreSQL backup in {}", dir.display()))?,
                };
                let url = database_url()?;
                let what = format!("restoring {} into the database of MLTB_DATABASE_URL", file.display());
                let done = shown(&what, || mltb_backup::restore_postgres(&file, &url, None))
                    .map_err(|e| e.to_string())?;
                if let Some(f) = &fetched {
                    f.keep(&dir);
                }
                println!(
                    "restored {} (schema {}) into the PostgreSQL database in {:.2} s",
                    file.display(),
                    done.manifest.schema_version,
                    done.took.as_secs_f64()
                );
                return Ok(());
            }
            if let Some(remote) = remote.remote()? {
                return restore_remote(&remote, backup.as_deref(), &dir, &db);
            }
            let o = match backup {
                Some(file) => RestoreOptions::file(file, &db),
                None => RestoreOptions::latest(&dir, &db),
            };
            let done = shown(&format!("restoring to {}", db.display()), || mltb_backup::restore(&o))
                .map_err(|e| e.to_string())?;
            for (p, why) in &done.skipped {
                println!("skipped  {}: {why}", p.display());
            }
            if let Some(aside) = &done.moved_aside {
                println!("the database that was there is now {}", aside.display());
            }
            println!(
                "restored {} to {} in {:.2} s",
                done.backup.display(),
                db.display(),
                done.took.as_secs_f64()
            );
            Ok(())
        }
        Command::List { replica: Some(replica), .. } => {
            let generations = mltb_backup::generations(&replica).map_err(|e| e.to_string())?;
            if generations.is_empty() {
                return Err(format!("no replica generation in {}", replica.display()));
            }
            for g in generations {
                let last = match g.runs.last() {
                    Some(run) => mltb_backup::run_time(run)
                        .map_or_else(|e| format!("UNREADABLE last run: {e}"), mltb_backup::utc_stamp),
                    None => mltb_backup::utc_stamp(g.started_unix_ms),
                };
                println!("{}  from {} to {}  {} run(s)", g.dir.display(), g.id, last, g.runs.len());
            }
            Ok(())
        }
        Command::List { dir, remote, .. } => {
            if let Some(OffSite { remote, .. }) = remote.remote()? {
                for b in remote.list().map_err(|e| e.to_string())? {
                    println!(
                        "{}  {} bytes  taken {}",
                        b.name,
                        b.bytes,
                        mltb_backup::utc_stamp(b.created_unix_ms)
                    );
                }
                return Ok(());
            }
            for l in mltb_backup::list(&dir).map_err(|e| e.to_string())? {
                match &l.manifest {
                    Ok(m) => println!(
                        "{}  {} bytes  schema {}  {} part(s)",
                        l.path.display(),
                        l.bytes,
                        m.schema_version,
                        m.entries.len()
                    ),
                    Err(why) => println!("{}  {} bytes  UNREADABLE: {why}", l.path.display(), l.bytes),
                }
            }
            Ok(())
        }
        Command::Prune { dir, keep, dry_run, remote } => {
            if let Some(OffSite { remote, .. }) = remote.remote()? {
                let done = remote.prune(&keep.policy(), dry_run).map_err(|e| e.to_string())?;
                let verb = if dry_run { "would delete" } else { "deleted" };
                for name in &done.deleted {
                    println!("{verb} {}", remote_path(&remote, name));
                }
                println!("kept {}", done.kept.len());
                return Ok(());
            }
            let done = mltb_backup::prune(&dir, &keep.policy(), dry_run).map_err(|e| e.to_string())?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            for p in &done.deleted {
                println!("{verb} {}", p.display());
            }
            for (p, why) in &done.unreadable {
                println!("left alone (unreadable) {}: {why}", p.display());
            }
            println!("kept {}", done.kept.len());
            Ok(())
        }
        Command::Run { backup, every, keep, metrics_file, count } => {
            let remote = backup.remote.remote()?;
            let mut runs = 0u64;
            let mut last_success: Option<(u64, f64, u64)> = None;
            loop {
                let started = Instant::now();
                match take_backup(&backup) {
                    Ok(made) => {
                        println!(
                            "{} ({} bytes, {:.2} s)",
                            made.path.display(),
                            made.bytes,
                            made.took.as_secs_f64()
                        );
                        last_success =
                            Some((made.manifest.created_unix_ms, made.took.as_secs_f64(), made.bytes));
                        if let Err(e) = mltb_backup::prune(&backup.dir, &keep.policy(), false) {
                            eprintln!("mltb-backup: prune: {e}");
                        }
                        if let Some(off) = &remote {
                            let copied = off.copy(&made.path).and_then(|at| {
                                off.remote.prune(&keep.policy(), false).map(|_| at).map_err(|e| e.to_string())
                            });
                            match copied {
                                Ok(at) => println!("copied to {at}"),
                                Err(e) => eprintln!("mltb-backup: off-site copy: {e}"),
                            }
                        }
                    }
                    Err(e) => eprintln!("mltb-backup: backup failed: {e}"),
                }
                if let Some(path) = &metrics_file
                    && let Err(e) = write_metrics(path, last_success, runs + 1)
                {
                    eprintln!("mltb-backup: {e}");
                }
                runs += 1;
                if count.is_some_and(|c| runs >= c) {
                    return Ok(());
                }
                std::thread::sleep(every.saturating_sub(started.elapsed()));
            }
        }
    }
}

fn remote_path(remote: &Remote, name: &str) -> String {
    format!("{}/{name}", remote.target().trim_end_matches('/'))
}

/// Fetches backup `name` (or the newest) from `remote` into a private directory in `dir`.
fn fetch(off: &OffSite<'_>, name: Option<&Path>, dir: &Path) -> Result<Fetched, String> {
    let name = match name {
        Some(n) => n.to_string_lossy().into_owned(),
        None => off
            .remote
            .list()
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .map(|b| b.name)
            .ok_or_else(|| format!("no backup on {}", off.remote.target()))?,
    };
    off.fetch(&name, dir)
}

/// Fetches a backup from `remote` (`name`, or the newest, then older ones while they do
/// not verify) into a private directory in `dir`, restores it to `db`, then keeps it in
/// `dir` unless a file of its name is there. A copy that does not restore is removed; a
/// local backup is never replaced by a fetched one.
fn restore_remote(off: &OffSite<'_>, name: Option<&Path>, dir: &Path, db: &Path) -> Result<(), String> {
    let remote = &off.remote;
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string_lossy().into_owned()],
        None => remote.list().map_err(|e| e.to_string())?.into_iter().map(|b| b.name).collect(),
    };
    if names.is_empty() {
        return Err(format!("no backup on {}", remote.target()));
    }
    let mut failures = Vec::new();
    for name in &names {
        let fetched = shown(&format!("fetching {name} from {}", remote.target()), || off.fetch(name, dir))?;
        match mltb_backup::restore(&RestoreOptions::file(&fetched.file, db)) {
            Ok(done) => {
                fetched.keep(dir);
                for f in &failures {
                    println!("skipped  {f}");
                }
                if let Some(aside) = &done.moved_aside {
                    println!("the database that was there is now {}", aside.display());
                }
                println!(
                    "restored {} from {} to {} in {:.2} s",
                    name,
                    remote.target(),
                    db.display(),
                    done.took.as_secs_f64()
                );
                return Ok(());
            }
            Err(e @ mltb_backup::Error::Damaged { .. }) => failures.push(e.to_string()),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("no backup on {} restores: {}", remote.target(), failures.join("; ")))
}

/// The textfile collector's format, written atomically (temp file, rename).
fn write_metrics(path: &Path, last: Option<(u64, f64, u64)>, runs: u64) -> Result<(), String> {
    let mut text = String::new();
    text.push_str("# HELP mltb_backup_runs_total Backup runs since this mltb-backup started.\n");
    text.push_str("# TYPE mltb_backup_runs_total counter\n");
    text.push_str(&format!("mltb_backup_runs_total {runs}\n"));
    if let Some((ms, secs, bytes)) = last {
        text.push_str(
            "# HELP mltb_backup_last_success_timestamp_seconds When the last good backup was taken.\n",
        );
        text.push_str("# TYPE mltb_backup_last_success_timestamp_seconds gauge\n");
        text.push_str(&format!("mltb_backup_last_success_timestamp_seconds {:.3}\n", ms as f64 / 1000.0));
        text.push_str("# HELP mltb_backup_duration_seconds How long the last good backup took, verification included.\n");
        text.push_str("# TYPE mltb_backup_duration_seconds gauge\n");
        text.push_str(&format!("mltb_backup_duration_seconds {secs:.3}\n"));
        text.push_str("# HELP mltb_backup_size_bytes The size of the last good backup.\n");
        text.push_str("# TYPE mltb_backup_size_bytes gauge\n");
        text.push_str(&format!("mltb_backup_size_bytes {bytes}\n"));
    }
    let temp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&temp, text).map_err(|e| format!("{}: {e}", temp.display()))?;
    std::fs::rename(&temp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_say_the_form() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").unwrap_err().contains("such as 90s"));
        assert!(parse_duration("5y").unwrap_err().contains("unit"));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration("213503982334602d"), Err("\"213503982334602d\": too large".into()));
        assert!(parse_duration("18446744073709551615h").unwrap_err().contains("too large"));
        assert_eq!(parse_duration("213503982334601d"), Ok(Duration::from_secs(213_503_982_334_601 * 86_400)));
    }

    #[test]
    fn a_url_file_loses_one_trailing_newline_and_is_read_as_the_bot_reads_it() {
        let tmp = std::env::temp_dir().join(format!("mltb-backup-url-{}", std::process::id()));
        std::fs::write(&tmp, "postgres://u@h/d\r\n").unwrap();
        let path = tmp.display().to_string();
        assert_eq!(database_url_from(None, Some(path.clone())), Ok("postgres://u@h/d".into()));
        assert_eq!(database_url_from(Some("postgres://v@h/d".into()), None), Ok("postgres://v@h/d".into()));
        assert!(database_url_from(Some("a".into()), Some(path)).unwrap_err().contains("set one of them"));
        assert!(database_url_from(None, None).unwrap_err().contains("needs the database's URL"));
        let _ = std::fs::remove_file(&tmp);
    }
}
