//! Locks, durable renames and UTC times.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// An exclusive `flock` on a file, released when dropped (or when the process dies, so a
/// crash never leaves a stale lock).
///
/// Dropping unlocks explicitly before closing: a `flock` belongs to the open file
/// description, and a child forked by another thread holds a copy of it until its
/// `exec` closes it (close-on-exec), so a close alone could leave the lock held for a
/// moment after the drop.
#[derive(Debug)]
pub(crate) struct Lock {
    file: File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Failing to unlock leaves the close to release it, as before.
        let _ = rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock);
    }
}

impl Lock {
    /// Takes the lock on `path` (created if missing) without waiting; `busy` says who
    /// holds it when it is taken.
    pub(crate) fn try_take(path: &Path, busy: &str) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Self { file }),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                Err(Error::Locked { what: busy.to_string(), path: path.display().to_string() })
            }
            Err(e) => Err(Error::io(path, e.into())),
        }
    }

    /// Whether someone holds the lock on `path` now (a missing file: no one).
    #[cfg(test)]
    pub(crate) fn is_held(path: &Path) -> Result<bool> {
        let file = match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(path, e)),
        };
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(false),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(true),
            Err(e) => Err(Error::io(path, e.into())),
        }
    }
}

/// A file being written under a temporary name in its final directory; [`commit`]
/// makes it durable and gives it its name in one step. Dropped uncommitted, it is
/// removed, so nothing that looks complete is left behind.
///
/// [`commit`]: Self::commit
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) file: File,
    pub(crate) temp: PathBuf,
    committed: bool,
}

impl Staged {
    /// A new temporary file beside `target` (same directory, so the rename is atomic),
    /// readable by its owner only (see [`private_file`]).
    pub(crate) fn beside(target: &Path) -> Result<Self> {
        let dir = parent(target);
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = private_file(&temp)?;
        Ok(Self { file, temp, committed: false })
    }

    /// fsync, rename to `target`, fsync of the directory.
    pub(crate) fn commit(mut self, target: &Path) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io(&self.temp, e))?;
        std::fs::rename(&self.temp, target).map_err(|e| Error::io(target, e))?;
        self.committed = true;
        sync_dir(parent(target))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Creates the file `path` (read and write), mode 0600 from the start: it holds user
/// data (a backup, a database copy, a dump), which the umask alone would leave readable
/// by everyone. A file left there by an earlier process of the same id is replaced; the
/// new one is created exclusively (never through a symlink planted there).
pub(crate) fn private_file(path: &Path) -> Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .read(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// A directory only its owner can enter (mode 0700), created new, removed with all it
/// holds when dropped: where a download or a decryption lands before it is checked.
#[derive(Debug)]
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Creates one in `dir` (created if missing), named `.<prefix>-<process id>-<n>`
    /// with `n` new for each one this process makes.
    ///
    /// # Errors
    /// `dir` or the directory cannot be created.
    pub fn create_in(dir: &Path, prefix: &str) -> Result<Self> {
        static MADE: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{prefix}-{}-{n}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self(path))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Gives the file `from` the name `to` unless something is already there: an
/// [`std::io::ErrorKind::AlreadyExists`] error then, and `from` is left as it is. A hard
/// link, which never replaces; where the file system has none, a rename after a check.
pub(crate) fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if std::fs::symlink_metadata(to).is_ok() => {
            Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"))
        }
        Err(_) => std::fs::rename(from, to),
    }
}

/// fsync of a directory, so a rename in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// The entries of directory `dir`; `None` when it does not exist (nothing there yet).
pub(crate) fn read_dir_if_any(dir: &Path) -> Result<Option<std::fs::ReadDir>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// `path`'s directory (`.` for a bare file name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// What a helper program (rclone, pg_dump, age) did: its exit code (-1 when killed), its
/// stdout, and the last non-empty line of its stderr.
pub(crate) struct Ran {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) last_error: String,
}

/// Runs `cmd`. A program that is missing or cannot start is an `Err` with the reason,
/// naming the program and, when missing, the Debian `package` that has it.
pub(crate) fn run_tool(cmd: &mut std::process::Command, package: &str) -> std::result::Result<Ran, String> {
    let program = std::path::PathBuf::from(cmd.get_program());
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{} is not installed (Debian: apt-get install {package})", program.display())
        } else {
            format!("{} could not run: {e}", program.display())
        }
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last_error = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
    Ok(Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        last_error,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date: the inverse of [`civil`].
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The time (Unix ms) of a [`utc_stamp`], or `None` when `s` is not one.
pub fn parse_utc_stamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let part = s.get(from..to)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (hh, mm, ss, ms) = (num(9, 11)?, num(11, 13)?, num(13, 15)?, num(16, 19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(y), m, d);
    let secs = days * 86_400 + i64::from(hh * 3600 + mm * 60 + ss);
    u64::try_from(secs).ok().map(|s| s * 1000 + u64::from(ms))
}

/// `20261203T142233Z` for a time in Unix milliseconds (UTC); milliseconds are appended
/// (`.123`) so that two backups in one second get different names.
pub fn utc_stamp(unix_ms: u64) -> String {
    let secs = (unix_ms / 1000) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(utc_stamp(0), "19700101T000000.000Z");
        // 2026-12-03 14:22:33.123 UTC.
        assert_eq!(utc_stamp(1_796_307_753_123), "20261203T142233.123Z");
        // 2024-02-29 (a leap day) 23:59:59.
        assert_eq!(utc_stamp(1_709_251_199_000), "20240229T235959.000Z");
        assert_eq!(civil(-1), (1969, 12, 31));
        for ms in [0, 1_796_307_753_123, 1_709_251_199_000, 951_782_400_999, 4_102_444_800_000] {
            assert_eq!(parse_utc_stamp(&utc_stamp(ms)), Some(ms), "{}", utc_stamp(ms));
        }
        for bad in [
            "",
            "20261303T142233.123Z",
            "2026120xT142233.123Z",
            "20261203T142233.123",
            "20261203T246000.000Z",
        ] {
            assert_eq!(parse_utc_stamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        assert!(!Lock::is_held(&path).unwrap(), "no file, no holder");
        let held = Lock::try_take(&path, "busy").unwrap();
        assert!(Lock::is_held(&path).unwrap());
        let e = Lock::try_take(&path, "another run is busy").unwrap_err();
        assert!(e.to_string().contains("another run is busy"), "{e}");
        drop(held);
        assert!(!Lock::is_held(&path).unwrap());
    }

    #[test]
    fn a_lock_is_released_on_drop_while_a_copy_of_its_descriptor_lives() {
        // A child forked by another thread holds such a copy until its exec (the
        // stop-25 CI failure: the next backup found the directory still locked).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = Lock::try_take(&path, "busy").unwrap();
        let copy = held.file.try_clone().unwrap();
        drop(held);
        assert!(!Lock::is_held(&path).unwrap(), "released although a copy is open");
        drop(copy);
    }

    #[test]
    fn an_uncommitted_staged_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.bin");
        let staged = Staged::beside(&target).unwrap();
        assert!(staged.temp.exists());
        let temp = staged.temp.clone();
        drop(staged);
        assert!(!temp.exists() && !target.exists());
        let mut staged = Staged::beside(&target).unwrap();
        std::io::Write::write_all(&mut staged.file, b"done").unwrap();
        staged.commit(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"done");
    }
}
