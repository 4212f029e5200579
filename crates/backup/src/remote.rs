//! Off-site copies through rclone: backups uploaded to any remote rclone knows (S3, B2,
//! Google Drive, SFTP, a mounted disk, …), listed, fetched back for a restore, and kept
//! by the same [`Retention`] policy as a directory.
//!
//! rclone checks each copy against the source's hash when both sides have one, and the
//! upload is confirmed by listing the remote file's size. The remote holds only finished,
//! verified backups: a backup is written and verified locally first.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::EXTENSION;
use crate::age::AGE_SUFFIX;
use crate::error::{Error, Result};
use crate::retention::Retention;
use crate::util::{PrivateDir, Ran, parse_utc_stamp, rename_new, run_tool};

/// A place on an rclone remote that holds backups: `name:path` (a remote of the rclone
/// config) or an inline remote such as `:local:/mnt/usb/backups`.
#[derive(Debug, Clone)]
pub struct Remote {
    target: String,
    rclone: PathBuf,
    config: Option<PathBuf>,
}

/// A backup on a remote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteBackup {
    /// Its file name.
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// When it was taken (Unix ms), from its name.
    pub created_unix_ms: u64,
    /// Whether it is encrypted with age (its name ends `.age`).
    pub encrypted: bool,
}

/// What [`Remote::prune`] did (or would do, dry).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RemotePruned {
    /// Backups kept, newest first.
    pub kept: Vec<String>,
    /// Backups deleted (or to delete, dry).
    pub deleted: Vec<String>,
}

impl Remote {
    /// The remote `target` (`name:path`, or `:backend:path`), used with the `rclone` on the
    /// `PATH` and rclone's default config.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `target` is not an rclone remote.
    pub fn new(target: &str) -> Result<Self> {
        let target = target.trim();
        let named = target.split_once(':').is_some_and(|(name, _)| {
            name.is_empty() || name.chars().all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c))
        });
        if !named || target.chars().any(char::is_control) || target.len() > 4096 {
            return Err(Error::Invalid(format!(
                "{target:?}: expected an rclone remote such as offsite:mltb/backups (a remote of rclone's config) or :local:/mnt/usb/backups"
            )));
        }
        Ok(Self { target: target.to_owned(), rclone: PathBuf::from("rclone"), config: None })
    }

    /// Runs `program` instead of `rclone`.
    pub fn rclone(mut self, program: impl Into<PathBuf>) -> Self {
        self.rclone = program.into();
        self
    }

    /// Uses this rclone config file instead of rclone's default.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// The remote, as given.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// `name` on the remote.
    fn path(&self, name: &str) -> String {
        if self.target.ends_with(':') || self.target.ends_with('/') {
            format!("{}{name}", self.target)
        } else {
            format!("{}/{name}", self.target)
        }
    }

    fn run(&self, args: &[&str]) -> Result<Ran> {
        let mut cmd = Command::new(&self.rclone);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(args);
        run_tool(&mut cmd, "rclone").map_err(|reason| Error::Remote { target: self.target.clone(), reason })
    }

    fn must(&self, args: &[&str], what: &str) -> Result<String> {
        let ran = self.run(args)?;
        if ran.code == 0 { Ok(ran.stdout) } else { Err(self.failed(what, &ran)) }
    }

    fn failed(&self, what: &str, ran: &Ran) -> Error {
        Error::Remote {
            target: self.target.clone(),
            reason: format!("{what} failed (exit {}): {}", ran.code, ran.last_error),
        }
    }

    /// Copies the backup `file` to the remote under its own name, and confirms the
    /// remote file's size. Returns the remote path.
    ///
    /// # Errors
    /// [`Error::Remote`] naming what rclone said.
    pub fn upload(&self, file: &Path) -> Result<String> {
        let name = backup_name(file)?;
        let bytes = std::fs::metadata(file).map_err(|e| Error::io(file, e))?.len();
        let source = file.to_str().ok_or_else(|| Error::Invalid(format!("{}: not UTF-8", file.display())))?;
        let to = self.path(&name);
        self.must(&["copyto", source, &to], "copy")?;
        match self.list()?.into_iter().find(|b| b.name == name) {
            Some(b) if b.bytes == bytes => Ok(to),
            Some(b) => Err(Error::Remote {
                target: self.target.clone(),
                reason: format!("{name} is {} bytes on the remote, {bytes} here", b.bytes),
            }),
            None => Err(Error::Remote {
                target: self.target.clone(),
                reason: format!("{name} is not on the remote after the copy"),
            }),
        }
    }

    /// Copies the backup `file` as [`upload`](Self::upload) does, encrypted first with the
    /// `age` program to `recipients` when there are any (the remote then holds
    /// `<name>.age`; the local backup is left as it is). Returns the remote path.
    ///
    /// # Errors
    /// As [`upload`](Self::upload) and [`encrypt`](crate::encrypt).
    pub fn copy_backup(&self, file: &Path, recipients: &[String], age: &Path) -> Result<String> {
        if recipients.is_empty() {
            return self.upload(file);
        }
        let sealed = crate::encrypt(file, recipients, age)?;
        let at = self.upload(&sealed);
        let _ = std::fs::remove_file(&sealed);
        at
    }

    /// The backups on the remote, newest first (none when the remote path does not
    /// exist yet). Files not named like a backup are left out.
    ///
    /// # Errors
    /// [`Error::Remote`] naming what rclone said.
    pub fn list(&self) -> Result<Vec<RemoteBackup>> {
        let ran = self.run(&["lsjson", "--files-only", &self.target])?;
        // 3: the directory does not exist.
        if ran.code == 3 {
            return Ok(Vec::new());
        }
        if ran.code != 0 {
            return Err(self.failed("list", &ran));
        }
        let entries: Vec<serde_json::Value> =
            serde_json::from_str(&ran.stdout).map_err(|e| Error::Remote {
                target: self.target.clone(),
                reason: format!("rclone lsjson gave something else than a list: {e}"),
            })?;
        let mut found: Vec<RemoteBackup> = entries
            .iter()
            .filter_map(|e| {
                let name = e["Name"].as_str()?;
                let created = stamp_of(name)?;
                Some(RemoteBackup {
                    name: name.to_owned(),
                    bytes: e["Size"].as_u64().unwrap_or(0),
                    created_unix_ms: created,
                    encrypted: name.ends_with(AGE_SUFFIX),
                })
            })
            .collect();
        found.sort_by(|a, b| b.created_unix_ms.cmp(&a.created_unix_ms).then_with(|| b.name.cmp(&a.name)));
        Ok(found)
    }

    /// Copies the backup `name` from the remote into `dir`; returns the local file, mode
    /// 0600. It lands in a private directory first and takes its name in `dir` only when
    /// whole, and never in place of a file already there (a local backup of the same
    /// name stays as it is). It is not checked here: [`verify`](crate::verify) or
    /// [`restore`](crate::restore) does; fetch into a directory of its own to check it
    /// before it sits beside good backups.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a name that is not a backup's, or when `dir` already holds a
    /// file of that name; [`Error::Remote`].
    pub fn download(&self, name: &str, dir: &Path) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        if name.contains(['/', '\\']) || stamp_of(name).is_none() {
            return Err(Error::Invalid(format!(
                "{name:?}: expected a backup's file name, such as mltb-20261203T142233.123Z.{EXTENSION}"
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let local = dir.join(name);
        let exists = || {
            Error::Invalid(format!(
                "{}: already there; a download never replaces a local file: fetch into another directory",
                local.display()
            ))
        };
        if std::fs::symlink_metadata(&local).is_ok() {
            return Err(exists());
        }
        let staging = PrivateDir::create_in(dir, "download")?;
        let fetched = staging.path().join(name);
        let to =
            fetched.to_str().ok_or_else(|| Error::Invalid(format!("{}: not UTF-8", fetched.display())))?;
        self.must(&["copyto", &self.path(name), to], "download")?;
        std::fs::set_permissions(&fetched, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(&fetched, e))?;
        rename_new(&fetched, &local).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists { exists() } else { Error::io(&local, e) }
        })?;
        Ok(local)
    }

    /// Deletes the remote backups `policy` does not keep; the newest is always kept.
    /// `dry`: decide, delete nothing.
    ///
    /// # Errors
    /// [`Error::Remote`]; backups deleted before a failure stay deleted.
    pub fn prune(&self, policy: &Retention, dry: bool) -> Result<RemotePruned> {
        let found = self.list()?;
        let times: Vec<u64> = found.iter().map(|b| b.created_unix_ms).collect();
        let mut keep = policy.select(&times);
        keep.insert(0);
        let mut done = RemotePruned::default();
        for (i, b) in found.into_iter().enumerate() {
            if keep.contains(&i) {
                done.kept.push(b.name);
                continue;
            }
            if !dry {
                self.must(&["deletefile", &self.path(&b.name)], "delete")?;
            }
            done.deleted.push(b.name);
        }
        Ok(done)
    }
}

/// The time in a backup's name (`mltb-<stamp>.mltb-backup`, or with `.age` after it).
fn stamp_of(name: &str) -> Option<u64> {
    let name = name.strip_suffix(AGE_SUFFIX).unwrap_or(name);
    parse_utc_stamp(name.strip_prefix("mltb-")?.strip_suffix(&format!(".{EXTENSION}"))?)
}

fn backup_name(file: &Path) -> Result<String> {
    file.file_name().map(|n| n.to_string_lossy().into_owned()).filter(|n| stamp_of(n).is_some()).ok_or_else(
        || {
            Error::Invalid(format!(
                "{}: expected a backup file, named mltb-<UTC time>.{EXTENSION}",
                file.display()
            ))
        },
    )
}
