//! Continuous protection: the bot's SQLite write-ahead log shipped as it grows, so that
//! a lost database comes back to within seconds of its loss, or to any point in time
//! the replica still covers.
//!
//! A replica directory holds **generations**. A generation is a base snapshot (a
//! backup file, `mltb-<time>.mltb-backup`: the database file's pages as they are on
//! disk) and the **runs** shipped after it (`<seq>.mltb-wal`: whole transactions of
//! log frames, in the same checksummed, compressed container as a backup). Restoring
//! replays the runs over the base, page by page, as SQLite's own checkpoint would.
//!
//! The [`Replicator`] only works because it is the database's only checkpointer: the
//! bot's connections run with `wal_autocheckpoint = 0`
//! (`mltb_store::StoreConfig::external_checkpoints`). It checkpoints while it holds the
//! write lock, after shipping every frame, so the log never restarts over frames it
//! has not shipped. A cost per sync that grows with what was written, not with the
//! database's size; only a new generation copies the whole file.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::container::{self, Manifest, Part, WalRun};
use crate::error::{Error, Result};
use crate::ops::{self, DB_ENTRY};
use crate::util::{Lock, Staged, now_ms, parse_utc_stamp, read_dir_if_any, utc_stamp};
use crate::wal::{self, Cursor, Header};

/// A run file's extension.
pub const RUN_EXTENSION: &str = "mltb-wal";
/// The lock of a replica directory: one replicator at a time.
const LOCK: &str = ".mltb-replica.lock";
/// A run's one part.
const FRAMES: &str = "frames";
/// Frames read into one run at most (whole transactions; a larger one goes whole).
const MAX_RUN: usize = 16 << 20;
/// How long the replicator waits for the bot's writer before a checkpoint.
const BUSY: Duration = Duration::from_secs(5);
/// When shipping keeps failing, the log is checkpointed anyway past this many times
/// the checkpoint threshold, so the bot's disk does not fill; the generation then
/// ends and the next good sync starts a new one.
const FORCE_FACTOR: u32 = 8;
/// How long after a generation failed to start the next try waits.
const RETRY: Duration = Duration::from_secs(30);

/// How a [`Replicator`] works.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplicaOptions {
    /// The bot's SQLite database (in WAL mode).
    pub db: PathBuf,
    /// The replica directory. Put it on another disk than the database: it is what
    /// survives the database's disk.
    pub dir: PathBuf,
    /// How often [`spawn`] syncs (default 1 s): the loss window on losing the disk.
    pub every: Duration,
    /// Log frames after which a sync checkpoints (default 1000, about 4 MiB of 4 KiB
    /// pages, SQLite's own default).
    pub checkpoint_frames: u32,
    /// How often a new generation starts with a fresh base (default 24 h): bounds how
    /// many runs a restore replays.
    pub snapshot_every: Duration,
    /// How far back a point-in-time restore can go (default 72 h): older generations
    /// are deleted once a newer one covers the window.
    pub retain: Duration,
}

impl ReplicaOptions {
    /// Protects `db` into `dir` with the defaults.
    pub fn new(db: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            dir: dir.into(),
            every: Duration::from_secs(1),
            checkpoint_frames: 1000,
            snapshot_every: Duration::from_secs(24 * 3600),
            retain: Duration::from_secs(72 * 3600),
        }
    }

    /// Sets [`every`](Self::every).
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Sets [`checkpoint_frames`](Self::checkpoint_frames).
    pub fn checkpoint_frames(mut self, frames: u32) -> Self {
        self.checkpoint_frames = frames.max(1);
        self
    }

    /// Sets [`snapshot_every`](Self::snapshot_every).
    pub fn snapshot_every(mut self, every: Duration) -> Self {
        self.snapshot_every = every;
        self
    }

    /// Sets [`retain`](Self::retain).
    pub fn retain(mut self, retain: Duration) -> Self {
        self.retain = retain;
        self
    }
}

/// What one [`Replicator::sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Synced {
    /// The generation now being shipped to.
    pub generation: String,
    /// Whether this sync started it (a fresh base was written).
    pub new_generation: bool,
    /// Log frames shipped.
    pub frames: u32,
    /// Bytes written to the replica (runs and base).
    pub bytes: u64,
    /// Whether the log was checkpointed.
    pub checkpointed: bool,
    /// Generations deleted as older than the retention window.
    pub pruned: usize,
    /// When this sync ended (Unix ms): everything committed before it started is in
    /// the replica.
    pub at_unix_ms: u64,
}

/// The generation being shipped to.
#[derive(Debug)]
struct Current {
    id: String,
    dir: PathBuf,
    started_ms: u64,
    /// The log being read and where; `None` until a log with a header is seen.
    log: Option<(Header, Cursor)>,
    next_seq: u64,
}

/// Why the log cannot be continued in the current generation.
enum Ship {
    Done { frames: u32, bytes: u64 },
    Broken(String),
}

/// Ships a database's log into a replica directory (its use: the [crate docs](crate); a
/// replica's layout and guarantees: docs/disaster-recovery.md).
///
/// Blocking: run it on a thread of its own ([`spawn`] does).
#[derive(Debug)]
pub struct Replicator {
    o: ReplicaOptions,
    wal: PathBuf,
    /// Holds the write lock while the last frames are shipped and the log checkpointed.
    /// Its being open also keeps SQLite from checkpointing and deleting the log when the
    /// bot's last connection closes.
    writer: Connection,
    /// Runs the checkpoints.
    ckpt: Connection,
    current: Option<Current>,
    /// A checkpoint followed shipping every frame: the log may restart, once.
    may_restart: bool,
    /// After a generation failed to start: not before this (a base copies the whole
    /// file; retrying it every sync would do little else).
    retry_at: Option<Instant>,
    _lock: Lock,
}

fn connect(db: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let c = Connection::open_with_flags(db, flags).map_err(|e| Error::sqlite(db, &e))?;
    c.busy_timeout(BUSY).map_err(|e| Error::sqlite(db, &e))?;
    let mode: String =
        c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(|e| Error::sqlite(db, &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Invalid(format!(
            "{}: journal mode {mode}, expected wal (the bot's store opens it in WAL mode)",
            db.display()
        )));
    }
    c.execute_batch("PRAGMA wal_autocheckpoint = 0; SELECT count(*) FROM sqlite_schema;")
        .map_err(|e| Error::sqlite(db, &e))?;
    Ok(c)
}

impl Replicator {
    /// Opens the database (which must exist, in WAL mode) and the replica directory
    /// (created if missing, then locked). It continues the newest generation when the
    /// log on disk still follows on from its last run (e.g. after the bot was killed);
    /// otherwise the first [`sync`](Self::sync) starts a new one.
    ///
    /// # Errors
    /// The database is missing or not in WAL mode; another replicator holds the
    /// directory ([`Error::Locked`]); I/O errors.
    pub fn open(o: ReplicaOptions) -> Result<Self> {
        if !o.db.is_file() {
            return Err(Error::NotFound(format!("{}: no database there", o.db.display())));
        }
        std::fs::create_dir_all(&o.dir).map_err(|e| Error::io(&o.dir, e))?;
        let lock = Lock::try_take(
            &o.dir.join(LOCK),
            &format!("another replicator ships to {}; one per replica directory", o.dir.display()),
        )?;
        let writer = connect(&o.db)?;
        let ckpt = connect(&o.db)?;
        let wal = PathBuf::from(format!("{}-wal", o.db.display()));
        let mut r =
            Self { o, wal, writer, ckpt, current: None, may_restart: false, retry_at: None, _lock: lock };
        r.current = r.resume()?;
        Ok(r)
    }

    /// The generation being shipped to, if one has started.
    pub fn generation(&self) -> Option<&str> {
        self.current.as_ref().map(|g| g.id.as_str())
    }

    /// The newest generation, when the log on disk continues its last run.
    fn resume(&self) -> Result<Option<Current>> {
        let Some(g) = generations(&self.o.dir)?.pop() else { return Ok(None) };
        let Some(last) = g.runs.last() else { return Ok(None) };
        let Ok(m) = container::open(last, false) else { return Ok(None) };
        let Some(run) = m.wal else { return Ok(None) };
        let Ok(mut f) = std::fs::File::open(&self.wal) else { return Ok(None) };
        let Some(h) = wal::read_header(&mut f).map_err(|e| Error::io(&self.wal, e))? else { return Ok(None) };
        // Read without its checksum: its numbers may be anything.
        let Some(end) = run.first_frame.checked_add(run.frames) else { return Ok(None) };
        let same = h.salt == run.salt
            && h.ckpt_seq == run.ckpt_seq
            && h.page_size == run.page_size
            && h.big_endian == run.big_endian
            && end > 0
            && wal::frame_checksum(&mut f, &h, end - 1).map_err(|e| Error::io(&self.wal, e))?
                == Some(run.end_checksum);
        if !same {
            tracing::info!(generation = %g.id, "the log does not continue the last run: a new generation starts");
            return Ok(None);
        }
        tracing::info!(generation = %g.id, run = run.seq, "continuing the replica's generation");
        Ok(Some(Current {
            id: g.id,
            dir: g.dir,
            started_ms: g.started_unix_ms,
            log: Some((h, Cursor { frame: end, checksum: run.end_checksum })),
            next_seq: run.seq + 1,
        }))
    }

    /// Ships what the log gained since the last sync; checkpoints it when it is long;
    /// starts a new generation when none runs, when the log no longer continues the
    /// current one (something else checkpointed it, or it was deleted), or when
    /// `snapshot_every` has passed; deletes generations older than `retain`.
    ///
    /// # Errors
    /// The replica cannot be written or the database read. Nothing shipped is lost: the
    /// next sync ships from where this one stopped.
    pub fn sync(&mut self) -> Result<Synced> {
        let mut out = Synced::default();
        let due = self.current.as_ref().is_some_and(|g| {
            now_ms().saturating_sub(g.started_ms) >= self.o.snapshot_every.as_millis() as u64
        });
        if due {
            // The current generation first takes everything up to the switch.
            if let Ok(Ship::Done { frames, bytes }) = self.ship() {
                out.frames += frames;
                out.bytes += bytes;
            }
            self.current = None;
        }
        for _ in 0..2 {
            if self.current.is_none() {
                if let Some(at) = self.retry_at.filter(|at| Instant::now() < *at) {
                    self.relieve();
                    return Err(Error::Invalid(format!(
                        "the last new generation failed; the next try is in {} s",
                        at.saturating_duration_since(Instant::now()).as_secs() + 1
                    )));
                }
                match self.start_generation() {
                    Ok(bytes) => {
                        self.retry_at = None;
                        out.bytes += bytes;
                        out.new_generation = true;
                    }
                    Err(e) => {
                        self.retry_at = Some(Instant::now() + RETRY);
                        self.relieve();
                        return Err(e);
                    }
                }
            }
            match self.ship() {
                Ok(Ship::Done { frames, bytes }) => {
                    out.frames += frames;
                    out.bytes += bytes;
                    break;
                }
                Ok(Ship::Broken(why)) => {
                    tracing::warn!(reason = %why, "the log does not continue the replica: a new generation starts");
                    self.current = None;
                }
                Err(e) => {
                    self.relieve();
                    return Err(e);
                }
            }
        }
        let long = self
            .current
            .as_ref()
            .and_then(|g| g.log)
            .is_some_and(|(_, c)| c.frame >= self.o.checkpoint_frames);
        if long {
            match self.checkpoint()? {
                Some(Ship::Done { frames, bytes }) => {
                    out.frames += frames;
                    out.bytes += bytes;
                    out.checkpointed = true;
                }
                Some(Ship::Broken(why)) => {
                    tracing::warn!(reason = %why, "the log does not continue the replica: a new generation starts");
                    self.current = None;
                }
                None => {}
            }
        }
        if out.new_generation {
            out.pruned = self.prune()?;
        }
        out.generation = self.current.as_ref().map(|g| g.id.clone()).unwrap_or_default();
        out.at_unix_ms = now_ms();
        Ok(out)
    }

    /// When shipping fails for long, checkpoints anyway so the bot's log stays bounded,
    /// and ends the generation (its runs now miss frames).
    fn relieve(&mut self) {
        let frames = self.log_frames().unwrap_or(0);
        if frames < self.o.checkpoint_frames.saturating_mul(FORCE_FACTOR) {
            return;
        }
        tracing::warn!(
            frames,
            "the replica cannot be written: checkpointing anyway; a new generation starts once it can"
        );
        if let Err(e) = self.ckpt.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "the forced checkpoint failed");
        }
        self.current = None;
    }

    /// Frames in the log file now (an upper bound: stale frames count).
    fn log_frames(&self) -> Option<u32> {
        let mut f = std::fs::File::open(&self.wal).ok()?;
        let h = wal::read_header(&mut f).ok()??;
        let len = f.metadata().ok()?.len();
        u32::try_from(len.saturating_sub(wal::HEADER as u64) / h.frame_size()).ok()
    }

    /// Starts a generation: checkpoints (so the file holds a transaction's end), then
    /// writes and verifies a base copy of the database file. Nothing else writes that
    /// file meanwhile: only this replicator checkpoints.
    fn start_generation(&mut self) -> Result<u64> {
        self.checkpoint_locked(false)?;
        let created = now_ms();
        let id = utc_stamp(created);
        let dir = self.o.dir.join(&id);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let based = file_user_version(&self.o.db).and_then(|schema| {
            let made = ops::write_backup(
                &dir,
                created,
                schema,
                self.o.db.display().to_string(),
                (DB_ENTRY, &self.o.db),
                None,
            )?;
            ops::verify(&made.path)?;
            Ok(made)
        });
        let made = match based {
            Ok(made) => made,
            Err(e) => {
                // Nothing of a generation that did not start stays to be mistaken for one.
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        tracing::info!(generation = %id, bytes = made.bytes, "replica generation started");
        // `may_restart` stays: a checkpoint just now put every frame of the log into the
        // base, so the log may restart once.
        self.current = Some(Current { id, dir, started_ms: created, log: None, next_seq: 0 });
        Ok(made.bytes)
    }

    /// Copies the log's new whole transactions into runs.
    fn ship(&mut self) -> Result<Ship> {
        let Some(current) = self.current.as_mut() else { return Ok(Ship::Broken("no generation".into())) };
        let mut f = match std::fs::File::open(&self.wal) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(if current.log.is_some() {
                    Ship::Broken("the log was deleted".into())
                } else {
                    Ship::Done { frames: 0, bytes: 0 }
                });
            }
            Err(e) => return Err(Error::io(&self.wal, e)),
        };
        // No valid header: an empty log, or one being reset; the next sync reads it.
        let Some(h) = wal::read_header(&mut f).map_err(|e| Error::io(&self.wal, e))? else {
            return Ok(Ship::Done { frames: 0, bytes: 0 });
        };
        let mut cur = match current.log {
            None => Cursor { frame: 0, checksum: h.checksum },
            Some((old, cur)) if old == h => cur,
            Some((old, _)) if self.may_restart && old.restarted_once_as(&h) => {
                self.may_restart = false;
                Cursor { frame: 0, checksum: h.checksum }
            }
            Some((old, _)) => {
                return Ok(Ship::Broken(format!(
                    "the log restarted (salt-1 {:08x} → {:08x}) with frames not shipped",
                    old.salt[0], h.salt[0]
                )));
            }
        };
        current.log = Some((h, cur));
        let (mut frames, mut bytes) = (0, 0);
        loop {
            let scan = wal::scan(&mut f, &h, cur, MAX_RUN).map_err(|e| Error::io(&self.wal, e))?;
            let Some(end) = scan.end else { break };
            bytes += write_run(current, &h, cur, end, &scan.frames, &self.o.db)?;
            frames += scan.count;
            cur = end;
            current.log = Some((h, cur));
            current.next_seq += 1;
        }
        Ok(Ship::Done { frames, bytes })
    }

    /// Takes the write lock, ships the last frames, checkpoints, lets go. `None` when
    /// the bot's writer held the lock for longer than the busy timeout (tried again at
    /// the next sync).
    fn checkpoint(&mut self) -> Result<Option<Ship>> {
        self.checkpoint_locked(true)
    }

    fn checkpoint_locked(&mut self, ship: bool) -> Result<Option<Ship>> {
        let db = self.o.db.clone();
        if let Err(e) = self.writer.execute_batch("BEGIN IMMEDIATE") {
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
                return Ok(None);
            }
            return Err(Error::sqlite(&db, &e));
        }
        let shipped = if ship { self.ship() } else { Ok(Ship::Done { frames: 0, bytes: 0 }) };
        let done = match &shipped {
            Ok(Ship::Done { .. }) => self
                .ckpt
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                })
                .map(Some)
                .map_err(|e| Error::sqlite(&db, &e)),
            _ => Ok(None),
        };
        let released = self.writer.execute_batch("ROLLBACK").map_err(|e| Error::sqlite(&db, &e));
        let shipped = shipped?;
        if let Some((log, moved)) = done? {
            tracing::debug!(log, moved, "log checkpointed");
            self.may_restart = true;
        }
        released?;
        Ok(Some(shipped))
    }

    /// Deletes generations wholly older than the retention window; never the newest.
    fn prune(&self) -> Result<usize> {
        let gens = generations(&self.o.dir)?;
        let horizon = now_ms().saturating_sub(self.o.retain.as_millis() as u64);
        let mut pruned = 0;
        for pair in gens.windows(2) {
            // A generation covers up to the next one's start.
            if pair[1].started_unix_ms < horizon && self.generation() != Some(pair[0].id.as_str()) {
                std::fs::remove_dir_all(&pair[0].dir).map_err(|e| Error::io(&pair[0].dir, e))?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }
}

/// `PRAGMA user_version` read from the database file's header (bytes 60–63), not
/// through SQLite, which would also read the log.
fn file_user_version(db: &Path) -> Result<i64> {
    let mut f = std::fs::File::open(db).map_err(|e| Error::io(db, e))?;
    let mut b = [0u8; 64];
    f.seek(SeekFrom::Start(0)).and_then(|_| f.read_exact(&mut b)).map_err(|e| Error::io(db, e))?;
    Ok(i64::from(i32::from_be_bytes([b[60], b[61], b[62], b[63]])))
}

/// Writes one run of whole transactions, durably; returns its size.
fn write_run(
    current: &Current,
    h: &Header,
    from: Cursor,
    to: Cursor,
    frames: &[u8],
    db: &Path,
) -> Result<u64> {
    let path = current.dir.join(format!("{:016x}.{RUN_EXTENSION}", current.next_seq));
    let manifest = Manifest {
        format: container::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version: 0,
        created_unix_ms: now_ms(),
        source: db.display().to_string(),
        entries: Vec::new(),
        wal: Some(WalRun {
            generation: current.id.clone(),
            seq: current.next_seq,
            page_size: h.page_size,
            big_endian: h.big_endian,
            salt: h.salt,
            ckpt_seq: h.ckpt_seq,
            first_frame: from.frame,
            frames: to.frame - from.frame,
            start_checksum: from.checksum,
            end_checksum: to.checksum,
        }),
    };
    let mut staged = Staged::beside(&path)?;
    container::write(&mut staged.file, &staged.temp, manifest, &[(FRAMES, Part::Bytes(frames))])?;
    staged.commit(&path)?;
    std::fs::metadata(&path).map(|m| m.len()).map_err(|e| Error::io(&path, e))
}

/// A generation in a replica directory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Generation {
    /// Its name (the UTC time it started).
    pub id: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its base snapshot.
    pub base: PathBuf,
    /// When it started (Unix ms).
    pub started_unix_ms: u64,
    /// Its runs, in order.
    pub runs: Vec<PathBuf>,
}

/// The generations in replica directory `dir`, oldest first. A directory without a base
/// (one being started) is left out.
///
/// # Errors
/// `dir` cannot be read.
pub fn generations(dir: &Path) -> Result<Vec<Generation>> {
    let mut out = Vec::new();
    let Some(entries) = read_dir_if_any(dir)? else { return Ok(out) };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let id = entry.file_name().to_string_lossy().into_owned();
        let Some(started) = parse_utc_stamp(&id) else { continue };
        let gdir = entry.path();
        if !gdir.is_dir() {
            continue;
        }
        let (mut base, mut runs) = (None, Vec::new());
        for f in std::fs::read_dir(&gdir).map_err(|e| Error::io(&gdir, e))? {
            let f = f.map_err(|e| Error::io(&gdir, e))?;
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if name.ends_with(&format!(".{}", crate::EXTENSION)) {
                base = Some(f.path());
            } else if name.ends_with(&format!(".{RUN_EXTENSION}")) {
                runs.push(f.path());
            }
        }
        runs.sort();
        if let Some(base) = base {
            out.push(Generation { id, dir: gdir, base, started_unix_ms: started, runs });
        }
    }
    out.sort_by_key(|g| g.started_unix_ms);
    Ok(out)
}

/// When the run at `path` was shipped (Unix ms), from its manifest.
///
/// # Errors
/// The file is not a readable run.
pub fn run_time(path: &Path) -> Result<u64> {
    Ok(container::open(path, false)?.created_unix_ms)
}

/// What to restore from a replica, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PointOptions {
    /// The replica directory.
    pub dir: PathBuf,
    /// Where the database goes (the bot's `<data_dir>/mltb.db`).
    pub db: PathBuf,
    /// The point in time (Unix ms): the newest state shipped at or before it; `None`:
    /// the newest state there is.
    pub at_unix_ms: Option<u64>,
}

impl PointOptions {
    /// The newest state in replica `dir`, to `db`.
    pub fn latest(dir: impl Into<PathBuf>, db: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), db: db.into(), at_unix_ms: None }
    }

    /// The state at `unix_ms`.
    pub fn at(mut self, unix_ms: u64) -> Self {
        self.at_unix_ms = Some(unix_ms);
        self
    }
}

/// A restore from a replica, done.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PointRestored {
    /// The generation restored from.
    pub generation: String,
    /// Runs replayed over its base.
    pub runs: u64,
    /// The time of the state restored (Unix ms): the last run replayed, or the base.
    pub restored_to_unix_ms: u64,
    /// Why replay stopped before the last run wanted, when it did (a damaged or
    /// missing run): the restore is then to the run before it.
    pub stopped: Option<String>,
    /// Where the database was before, moved aside; `None` when there was none.
    pub moved_aside: Option<PathBuf>,
    /// How long it took.
    pub took: Duration,
}

/// Restores from a replica: the generation covering the point in time, its base, then
/// its runs in order up to that point, each checked (checksum of the file, the log's
/// own checksum chain, no gap in sequence). Like [`restore`](crate::restore), it refuses
/// while the bot runs, builds the database beside the target, checks it, moves the
/// live one aside and swaps the new one in.
///
/// A damaged or missing run stops the replay there: the database is restored to the
/// run before it, and [`PointRestored::stopped`] says why.
///
/// # Errors
/// [`Error::Locked`] while the bot runs; [`Error::NotFound`] when no generation covers
/// the point; [`Error::Damaged`] for a damaged base; [`Error::NewerSchema`]; I/O errors.
pub fn restore_point(o: &PointOptions) -> Result<PointRestored> {
    let start = Instant::now();
    let _bot = ops::bot_stopped(&o.db)?;
    let at = o.at_unix_ms.unwrap_or(u64::MAX);
    let gens = generations(&o.dir)?;
    let Some(g) = gens.into_iter().rev().find(|g| g.started_unix_ms <= at) else {
        return Err(Error::NotFound(match o.at_unix_ms {
            Some(ms) => {
                format!("no replica generation in {} starts at or before {}", o.dir.display(), utc_stamp(ms))
            }
            None => format!("no replica generation in {}", o.dir.display()),
        }));
    };
    let manifest = container::open(&g.base, true)?;
    if manifest.schema_version > mltb_store::LATEST_VERSION {
        return Err(Error::NewerSchema {
            path: g.base.display().to_string(),
            found: manifest.schema_version,
            supported: mltb_store::LATEST_VERSION,
        });
    }
    let entry = manifest
        .entries
        .iter()
        .find(|e| e.name == DB_ENTRY)
        .ok_or_else(|| Error::damaged(&g.base, "the manifest lists no database"))?;
    let (mut runs, mut restored_to, mut stopped) = (0u64, manifest.created_unix_ms, None);
    // The runs replayed may have migrated the schema past the base's: no expected version.
    let moved_aside = ops::stage_and_swap(&o.db, &g.base, None, |file, temp| {
        {
            let mut out = std::io::BufWriter::new(&mut *file);
            container::extract(&g.base, entry, &mut out, temp)?;
            std::io::Write::flush(&mut out).map_err(|e| Error::io(temp, e))?;
        }
        let mut prev: Option<WalRun> = None;
        for (i, path) in g.runs.iter().enumerate() {
            match replay(path, i as u64, &g.id, prev.as_ref(), at, &*file, temp) {
                Ok(Some((run, when))) => {
                    prev = Some(run);
                    runs += 1;
                    restored_to = when;
                }
                Ok(None) => break,
                Err(why) => {
                    tracing::warn!(run = %path.display(), reason = %why, "replay stopped");
                    stopped = Some(format!("{}: {why}", path.display()));
                    break;
                }
            }
        }
        // The restored file is a whole database: no log goes with it, so it opens in
        // rollback-journal mode (header bytes 18–19) until the bot turns WAL back on.
        file.write_all_at(&[1, 1], 18).map_err(|e| Error::io(temp, e))?;
        let found = ops::user_version(temp)?;
        if found > mltb_store::LATEST_VERSION {
            return Err(Error::NewerSchema {
                path: g.dir.display().to_string(),
                found,
                supported: mltb_store::LATEST_VERSION,
            });
        }
        Ok(())
    })?;
    Ok(PointRestored {
        generation: g.id,
        runs,
        restored_to_unix_ms: restored_to,
        stopped,
        moved_aside,
        took: start.elapsed(),
    })
}

/// A run read and checked: its place, when it was shipped, its frames.
struct Checked {
    run: WalRun,
    shipped: u64,
    frames: Vec<u8>,
}

/// Reads run `path` (expected number `seq` of `generation`, after `prev`) and checks it:
/// the file's checksum, its place (no gap, following on from `prev`), and its frames'
/// own checksum chain. `Ok(None)` when it was shipped after `at`.
fn check_run_file(
    path: &Path,
    seq: u64,
    generation: &str,
    prev: Option<&WalRun>,
    at: u64,
) -> std::result::Result<Option<Checked>, String> {
    let m = container::open(path, true).map_err(|e| e.to_string())?;
    if m.created_unix_ms > at {
        return Ok(None);
    }
    let run = m.wal.ok_or("not a run of log frames")?;
    if run.generation != generation {
        return Err(format!("belongs to generation {}, not {generation}", run.generation));
    }
    if run.seq != seq {
        return Err(format!("is run {}, expected run {seq} (a run is missing)", run.seq));
    }
    if let Some(p) = prev {
        let follows = if run.salt == p.salt {
            p.first_frame.checked_add(p.frames) == Some(run.first_frame)
                && run.start_checksum == p.end_checksum
        } else {
            run.first_frame == 0 && run.salt[0] == p.salt[0].wrapping_add(1)
        };
        if !follows || run.page_size != p.page_size {
            return Err("does not follow on from the run before it".into());
        }
    } else if run.first_frame != 0 {
        return Err(format!("the generation's first run starts at frame {}", run.first_frame));
    }
    let entry = m.entries.iter().find(|e| e.name == FRAMES).ok_or("holds no frames")?;
    // The manifest's size is checked against the bytes as they are decompressed, not
    // trusted for an allocation.
    let mut frames = Vec::with_capacity(usize::try_from(entry.size.min(MAX_RUN as u64)).unwrap_or(0));
    container::extract(path, entry, &mut frames, path).map_err(|e| e.to_string())?;
    let end = wal::check_run(&frames, run.page_size, run.big_endian, run.salt, run.start_checksum)?;
    if end != run.end_checksum {
        return Err("its frames do not end at the checksum its manifest records".into());
    }
    // The count places the next run (it must start where this one ends), so it must be
    // the count of frames the bytes hold.
    let held = frames.len() / (wal::FRAME_HEADER + run.page_size as usize);
    if u32::try_from(held) != Ok(run.frames) {
        return Err(format!("holds {held} frames where its manifest records {}", run.frames));
    }
    Ok(Some(Checked { run, shipped: m.created_unix_ms, frames }))
}

/// Replays run `path` onto `file` after checking it ([`check_run_file`]): `Ok(None)`
/// when it was shipped after `at`; `Err` with what is wrong when it cannot be replayed.
fn replay(
    path: &Path,
    seq: u64,
    generation: &str,
    prev: Option<&WalRun>,
    at: u64,
    file: &std::fs::File,
    temp: &Path,
) -> std::result::Result<Option<(WalRun, u64)>, String> {
    let Some(c) = check_run_file(path, seq, generation, prev, at)? else { return Ok(None) };
    let page = u64::from(c.run.page_size);
    for f in wal::frames(&c.frames, c.run.page_size) {
        file.write_all_at(f.page, (u64::from(f.page_no) - 1) * page)
            .map_err(|e| format!("{}: {e}", temp.display()))?;
        if f.commit_pages != 0 {
            file.set_len(u64::from(f.commit_pages) * page).map_err(|e| format!("{}: {e}", temp.display()))?;
        }
    }
    Ok(Some((c.run, c.shipped)))
}

/// A generation checked whole.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GenerationChecked {
    /// Its name.
    pub id: String,
    /// Runs that check, in order from the first.
    pub good_runs: u64,
    /// When the last good run was shipped (the base's time when none).
    pub reaches_unix_ms: u64,
    /// What is wrong with the base or the first bad run; `None` when all is good.
    pub problem: Option<String>,
}

/// Checks every generation of replica `dir` without restoring: the base as
/// [`verify`](crate::verify) does, then each run as a restore would (the file's
/// checksum, no gap, each following on from the one before, the log's checksum chain).
///
/// # Errors
/// `dir` cannot be read.
pub fn verify_replica(dir: &Path) -> Result<Vec<GenerationChecked>> {
    let mut out = Vec::new();
    for g in generations(dir)? {
        let mut checked = GenerationChecked {
            id: g.id.clone(),
            good_runs: 0,
            reaches_unix_ms: g.started_unix_ms,
            problem: None,
        };
        match ops::verify(&g.base) {
            Err(e) => checked.problem = Some(e.to_string()),
            Ok(_) => {
                let mut prev: Option<WalRun> = None;
                for (i, path) in g.runs.iter().enumerate() {
                    match check_run_file(path, i as u64, &g.id, prev.as_ref(), u64::MAX) {
                        Ok(Some(c)) => {
                            checked.good_runs += 1;
                            checked.reaches_unix_ms = c.shipped;
                            prev = Some(c.run);
                        }
                        Ok(None) => break,
                        Err(why) => {
                            checked.problem = Some(format!("{}: {why}", path.display()));
                            break;
                        }
                    }
                }
            }
        }
        out.push(checked);
    }
    Ok(out)
}

/// A [`Replicator`] syncing on a thread of its own every `every`.
#[derive(Debug)]
pub struct Running {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Syncs a last time and stops the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Opens a [`Replicator`] and syncs it every `o.every` on a thread of its own, handing
/// each sync's outcome to `report`, until [`Running::stop`] (which syncs a last time).
///
/// # Errors
/// As [`Replicator::open`].
pub fn spawn(o: ReplicaOptions, mut report: impl FnMut(&Result<Synced>) + Send + 'static) -> Result<Running> {
    let every = o.every;
    let mut r = Replicator::open(o)?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("mltb-replica".into())
        .spawn(move || {
            report(&r.sync());
            loop {
                let stopping = match rx.recv_timeout(every) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
                    Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => true,
                };
                report(&r.sync());
                if stopping {
                    return;
                }
            }
        })
        .map_err(|e| Error::Invalid(format!("cannot start the replica thread: {e}")))?;
    Ok(Running { stop: Some(tx), thread: Some(thread) })
}
