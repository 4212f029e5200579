//! Extract and zip a task's files between its download and its upload (`-e`, `-z`),
//! with 7-Zip (`7z`).
//!
//! # Crash safety
//!
//! The stage builds its result in `<task dir>/.mltb-stage` and, once 7-Zip succeeded,
//! renames it to `<task dir>/.mltb-out` in one step; the upload then reads from there.
//! The downloaded files are removed only after that rename. A restart in the middle
//! finds either no `.mltb-out` (the stage runs again from the untouched download) or a
//! complete one (the stage is skipped).
//!
//! # Safety of what comes out
//!
//! - Every archive is listed first; extraction is refused when its unpacked size would
//!   leave less than the queue's free-disk reserve.
//! - 7-Zip writes only under the stage directory (it drops `..` and makes absolute paths
//!   relative); afterwards every symlink, device or other non-regular entry is removed, so
//!   the upload reads only regular files inside the task's directory.
//! - Names starting with `-` cannot be taken for switches: file names follow `--`.
//! - Passwords reach 7-Zip on its standard input, never on its command line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::{Error, ErrorKind, Result};

/// The directory a finished stage leaves its result in, inside the task's directory.
pub(crate) const OUT_DIR: &str = ".mltb-out";
/// The directory a stage works in; removed when a stage starts over.
const STAGE_DIR: &str = ".mltb-stage";
/// How often a running 7-Zip step checks the disk's free space against the reserve.
const DISK_WATCH: std::time::Duration = std::time::Duration::from_millis(100);
/// Prefix of the engine's own entries in a task's directory; never uploaded.
pub(crate) const RESERVED_PREFIX: &str = ".mltb-";

/// A zip or extract step of a task, with its password if any.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pack {
    /// The archive's password: to open it (extract) or to encrypt it (zip, AES-256).
    pub password: Option<String>,
}

impl Pack {
    /// A step with `password`, if any.
    pub fn new(password: Option<String>) -> Self {
        Self { password }
    }
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pack").field("password", &self.password.as_ref().map(|_| "<redacted>")).finish()
    }
}

/// What 7-Zip is doing for a task, for its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Archiving {
    /// Extracting the downloaded archives (`-e`).
    Extracting,
    /// Zipping the files (`-z`).
    Zipping,
}

impl std::fmt::Display for Archiving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Extracting => "Extracting",
            Self::Zipping => "Zipping",
        })
    }
}

/// What a file name says about it as an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Not an archive.
    Plain,
    /// An archive, or the first volume of one: extract it. `base` names the set its
    /// other volumes belong to; `stem` names the folder it extracts into.
    First { base: String, stem: String },
    /// A later volume of a split archive: read through its first volume.
    Later { base: String },
}

/// Archive formats 7-Zip opens, by extension (lower case, without the dot).
const ARCHIVE_EXTENSIONS: &[&str] = &[
    "zip", "7z", "rar", "tar", "gz", "tgz", "bz2", "tbz", "tbz2", "xz", "txz", "zst", "tzst", "lzma", "tlz",
    "z", "iso", "cab", "wim", "arj", "cpio", "rpm", "deb", "lzh", "lha", "dmg", "vhd", "vhdx", "xar", "apk",
];
/// Compressed tarballs written as two extensions: their folder drops both.
const TAR_COMPRESSIONS: &[&str] = &["gz", "bz2", "xz", "zst", "lzma", "z"];

/// Classifies a file name: `a.zip`, `a.part1.rar` and `a.7z.001` are first volumes;
/// `a.part2.rar`, `a.r00`, `a.z01` and `a.7z.002` later ones.
pub(crate) fn kind(name: &str) -> Kind {
    let lower = name.to_ascii_lowercase();
    let Some((before, ext)) = lower.rsplit_once('.').filter(|(b, _)| !b.is_empty()) else {
        return Kind::Plain;
    };
    let cut = |s: &str| name[..s.len()].to_string();
    // `name.001`, `name.7z.002`: numbered volumes (7-Zip joins them from the first).
    if ext.len() == 3 && ext.bytes().all(|b| b.is_ascii_digit()) {
        let base = cut(before);
        return if ext == "001" {
            Kind::First { stem: strip_archive_ext(&base), base }
        } else {
            Kind::Later { base }
        };
    }
    // `name.r00` (RAR) and `name.z01` (split zip): the first volume is `name.rar`/`.zip`.
    if ext.len() == 3
        && (ext.starts_with('r') || ext.starts_with('z'))
        && ext[1..].bytes().all(|b| b.is_ascii_digit())
    {
        return Kind::Later { base: cut(before) };
    }
    if ext == "rar"
        && let Some((set, part)) = before.rsplit_once('.')
        && let Some(number) = part.strip_prefix("part")
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && !set.is_empty()
    {
        let base = cut(set);
        return if number.trim_start_matches('0') == "1" {
            Kind::First { stem: base.clone(), base }
        } else {
            Kind::Later { base }
        };
    }
    if ARCHIVE_EXTENSIONS.contains(&ext) {
        let base = cut(before);
        return Kind::First { stem: strip_archive_ext(name), base };
    }
    Kind::Plain
}

/// `a.tar.gz` → `a`, `a.zip` → `a`, `a` → `a`.
fn strip_archive_ext(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let Some((before, ext)) = lower.rsplit_once('.').filter(|(b, _)| !b.is_empty()) else {
        return name.to_string();
    };
    if !ARCHIVE_EXTENSIONS.contains(&ext) {
        return name.to_string();
    }
    if TAR_COMPRESSIONS.contains(&ext) && before.ends_with(".tar") && before.len() > 4 {
        return name[..before.len() - 4].to_string();
    }
    name[..before.len()].to_string()
}

/// Runs the task's extract and zip steps over `dir`; returns the directory to upload
/// from (`dir` itself when there is nothing to do).
pub(crate) struct Stage<'a> {
    /// 7-Zip's program.
    pub program: &'a Path,
    /// The task's directory, absolute (7-Zip runs in other directories).
    pub dir: &'a Path,
    /// The task's name: the zip is `<name>.zip`.
    pub name: &'a str,
    /// `-e`.
    pub extract: Option<&'a Pack>,
    /// `-z`.
    pub zip: Option<&'a Pack>,
    /// Bytes that must stay free on the disk.
    pub reserve: u64,
    /// Cancels the step (7-Zip is killed).
    pub cancel: &'a CancellationToken,
}

impl Stage<'_> {
    /// Where the upload reads from: `dir/.mltb-out` once a stage has finished there.
    pub(crate) fn root(dir: &Path) -> PathBuf {
        let out = dir.join(OUT_DIR);
        if out.is_dir() { out } else { dir.to_path_buf() }
    }

    /// Runs the steps; `progress(step, done, total)` follows 7-Zip's percentage.
    pub(crate) async fn run(
        &self,
        progress: &(dyn Fn(Archiving, u64, u64) + Send + Sync),
    ) -> Result<PathBuf> {
        let out = self.dir.join(OUT_DIR);
        if out.is_dir() || (self.extract.is_none() && self.zip.is_none()) {
            return Ok(Self::root(self.dir));
        }
        let stage = self.dir.join(STAGE_DIR);
        remove_all(&stage).await?;
        tokio::fs::create_dir_all(&stage).await.map_err(|e| Error::io(stage.display(), &e))?;
        // The tree the zip step reads: the extracted one, or the download.
        let mut source = self.dir.to_path_buf();
        if let Some(pack) = self.extract {
            let tree = stage.join("extracted");
            if self.extract_all(pack, &tree, progress).await? {
                source = tree;
            } else {
                tracing::info!(dir = %self.dir.display(), "-e: no archive among the files; they are uploaded as they are");
                remove_all(&tree).await?;
            }
        }
        let result = if let Some(pack) = self.zip {
            let zipped = stage.join("zipped");
            self.zip_all(pack, &source, &zipped, progress).await?;
            zipped
        } else if source != self.dir {
            source
        } else {
            // `-e` alone over files with no archive among them: upload the download.
            remove_all(&stage).await?;
            return Ok(self.dir.to_path_buf());
        };
        // The one step that makes the stage final, then the inputs go.
        tokio::fs::rename(&result, &out).await.map_err(|e| Error::io(out.display(), &e))?;
        remove_all(&stage).await?;
        remove_inputs(self.dir).await;
        Ok(out)
    }

    /// Extracts every archive under `self.dir` into `tree`, keeping the other files
    /// (hard links, or copies across filesystems). `Ok(false)`: there was no archive.
    async fn extract_all(
        &self,
        pack: &Pack,
        tree: &Path,
        progress: &(dyn Fn(Archiving, u64, u64) + Send + Sync),
    ) -> Result<bool> {
        let files = walk(self.dir).await?;
        let firsts: HashSet<(PathBuf, String)> = files
            .iter()
            .filter_map(|(rel, _)| match kind(&file_name(rel)) {
                Kind::First { base, .. } => Some((parent(rel), base)),
                _ => None,
            })
            .collect();
        if firsts.is_empty() {
            return Ok(false);
        }
        let mut archives = Vec::new();
        for (rel, _) in &files {
            match kind(&file_name(rel)) {
                Kind::First { stem, .. } => archives.push((rel.clone(), stem)),
                // Read through its first volume; kept when that volume is missing.
                Kind::Later { base } if firsts.contains(&(parent(rel), base.clone())) => {}
                _ => link_or_copy(&self.dir.join(rel), &tree.join(rel)).await?,
            }
        }
        // The whole unpacked size must fit before anything is written.
        let mut sizes = Vec::with_capacity(archives.len());
        for (rel, _) in &archives {
            sizes.push(self.listed_size(&self.dir.join(rel), pack).await?);
        }
        let unpacked = sizes.iter().copied().fold(0u64, u64::saturating_add);
        self.check_space(unpacked, "extracting")?;
        let total = unpacked.max(1);
        let mut done_before = 0u64;
        for ((rel, stem), &size) in archives.iter().zip(&sizes) {
            let parent_dir = tree.join(parent(rel));
            tokio::fs::create_dir_all(&parent_dir).await.map_err(|e| Error::io(parent_dir.display(), &e))?;
            let into = crate::names::unique_in(&parent_dir, stem)?;
            let archive = self.dir.join(rel);
            let what = format!("extracting {}", file_name(rel));
            let report = |pct: u64| progress(Archiving::Extracting, done_before + size * pct / 100, total);
            let mut args = vec!["x".into(), "-y".into(), "-bsp1".into(), "-bso0".into(), "-bse2".into()];
            args.push(format!("-o{}", into.display()));
            args.push("--".into());
            args.push(archive.display().to_string());
            self.seven(&what, &args, pack.password.as_deref(), &report).await?;
            // A `.tar.gz` gives a `.tar`: unpack that too, in place.
            if let Some(tar) = lone_tar(&into).await? {
                let args = vec![
                    "x".into(),
                    "-y".into(),
                    "-bsp1".into(),
                    "-bso0".into(),
                    "-bse2".into(),
                    format!("-o{}", into.display()),
                    "--".into(),
                    tar.display().to_string(),
                ];
                self.seven(&what, &args, None, &report).await?;
                tokio::fs::remove_file(&tar).await.map_err(|e| Error::io(tar.display(), &e))?;
            }
            done_before += size;
            progress(Archiving::Extracting, done_before, total);
        }
        keep_regular_files(tree).await?;
        Ok(true)
    }

    /// Zips everything under `source` into `zipped/<name>.zip` (stored, not
    /// compressed: downloads are mostly compressed already), AES-256 with a password.
    async fn zip_all(
        &self,
        pack: &Pack,
        source: &Path,
        zipped: &Path,
        progress: &(dyn Fn(Archiving, u64, u64) + Send + Sync),
    ) -> Result<()> {
        let files = walk(source).await?;
        let total: u64 = files.iter().map(|(_, s)| *s).sum();
        self.check_space(total, "zipping")?;
        tokio::fs::create_dir_all(zipped).await.map_err(|e| Error::io(zipped.display(), &e))?;
        // A folder's rules: a name starting with a dot (`.mltb-out`) gets a `_` before it, so
        // the zip is never taken for one of the engine's own entries.
        let stem = crate::names::folder_name(&crate::names::sanitize_component(
            self.name.trim_end_matches(".zip"),
            200,
        ));
        let archive = zipped.join(format!("{stem}.zip"));
        let mut args: Vec<String> =
            vec!["a".into(), "-tzip".into(), "-mx=0".into(), "-bsp1".into(), "-bso0".into(), "-bse2".into()];
        if pack.password.is_some() {
            args.push("-p".into());
            args.push("-mem=AES256".into());
        }
        args.push("--".into());
        args.push(archive.display().to_string());
        // Relative names inside the zip: 7-Zip runs in `source` and is given its entries.
        let mut tops: Vec<String> = top_entries(source).await?;
        tops.sort();
        if tops.is_empty() {
            return Err(ErrorKind::NotFound { what: "no files to zip".into() }.into());
        }
        args.extend(tops);
        let report = |pct: u64| progress(Archiving::Zipping, total * pct / 100, total);
        self.seven_in(source, "zipping", &args, pack.password.as_deref(), &report).await?;
        progress(Archiving::Zipping, total, total);
        Ok(())
    }

    fn check_space(&self, bytes: u64, what: &str) -> Result<()> {
        let Some(free) = crate::pipeline::free_disk(self.dir) else { return Ok(()) };
        let room = free.saturating_sub(self.reserve);
        if bytes > room {
            return Err(ErrorKind::DiskFull {
                what: format!(
                    "{what} needs {bytes} bytes, and {room} are free above the {} byte reserve",
                    self.reserve
                ),
            }
            .into());
        }
        Ok(())
    }

    /// Whether the disk's free space is under the reserve.
    fn below_reserve(&self) -> bool {
        crate::pipeline::free_disk(self.dir).is_some_and(|free| free < self.reserve)
    }

    /// A step that took the disk below the reserve (7-Zip is killed with its future):
    /// its partial output is removed, and the error says why.
    async fn out_of_room(&self, what: &str) -> Error {
        let stage = self.dir.join(STAGE_DIR);
        if let Err(e) = remove_all(&stage).await {
            tracing::warn!(error = %e, "could not remove a stage that filled the disk");
        }
        ErrorKind::DiskFull {
            what: format!(
                "{what} took the disk's free space below the {} byte reserve: the archive unpacks to more than it lists",
                self.reserve
            ),
        }
        .into()
    }

    /// The unpacked size 7-Zip lists for `archive`.
    async fn listed_size(&self, archive: &Path, pack: &Pack) -> Result<u64> {
        let what =
            format!("listing {}", archive.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let args =
            vec!["l".into(), "-slt".into(), "-bse1".into(), "--".into(), archive.display().to_string()];
        let out = self.run_7z(self.dir, &what, &args, pack.password.as_deref(), None).await?;
        // Entries follow the `----------` line; each has `Size = N` (folders 0 or none).
        let listing = out.split_once("\n----------").map_or("", |(_, rest)| rest);
        Ok(listing
            .lines()
            .filter_map(|l| l.strip_prefix("Size = "))
            .filter_map(|n| n.trim().parse::<u64>().ok())
            .fold(0u64, u64::saturating_add))
    }

    async fn seven(
        &self,
        what: &str,
        args: &[String],
        password: Option<&str>,
        report: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        self.seven_in(self.dir, what, args, password, report).await
    }

    async fn seven_in(
        &self,
        cwd: &Path,
        what: &str,
        args: &[String],
        password: Option<&str>,
        report: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        self.run_7z(cwd, what, args, password, Some(report)).await.map(drop)
    }

    /// Runs 7-Zip; returns its standard output (when `report` is `None`; with a
    /// `report`, the output is its progress, fed to it as percentages).
    async fn run_7z(
        &self,
        cwd: &Path,
        what: &str,
        args: &[String],
        password: Option<&str>,
        report: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<String> {
        // `-spd` after the command: names are names, never wildcards (a downloaded file
        // called `*` would otherwise make `a` take every entry beside it, the engine's
        // own included, and an archive called `*.zip` make `x` open every zip).
        let (command, rest) = args.split_first().map_or((None, args), |(c, r)| (Some(c), r));
        let mut child = tokio::process::Command::new(self.program)
            .args(command)
            .arg("-spd")
            .args(rest)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                let reason = if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "{} is not installed: install the Debian package p7zip-full (or 7zip), or set the engine's 7-Zip program",
                        self.program.display()
                    )
                } else {
                    format!("cannot run {}: {e}", self.program.display())
                };
                Error::from(ErrorKind::Archive { what: what.to_string(), reason })
            })?;
        // The password, if any, on stdin; then stdin closes, so a prompt fails at once.
        let mut stdin = child.stdin.take();
        if let (Some(pw), Some(pipe)) = (password, stdin.as_mut()) {
            // Twice: `a -p` may ask to verify it.
            let line = format!("{pw}\n{pw}\n");
            let _ = pipe.write_all(line.as_bytes()).await;
        }
        drop(stdin);
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let errors = tokio::spawn(async move {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s).await;
            s
        });
        let mut output = Vec::new();
        let mut buf = [0u8; 4096];
        let read = async {
            loop {
                let n = stdout.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                if let Some(report) = report {
                    if let Some(pct) = last_percent(&buf[..n]) {
                        report(pct.min(100));
                    }
                } else if output.len() < 16 << 20 {
                    output.extend_from_slice(&buf[..n]);
                }
            }
            child.wait().await
        };
        // A step that writes (it reports progress) is watched: an archive may unpack to
        // far more than it lists (a `.gz` states its size in a trailer anyone can forge, a
        // `.bz2` states none), so the space check before it is not enough.
        let watch = async {
            if report.is_none() || self.reserve == 0 {
                return std::future::pending().await;
            }
            let mut tick = tokio::time::interval(DISK_WATCH);
            loop {
                tick.tick().await;
                if self.below_reserve() {
                    return;
                }
            }
        };
        let status = tokio::select! {
            status = read => Some(status),
            () = self.cancel.cancelled() => return Err(ErrorKind::Cancelled.into()),
            () = watch => None,
        };
        let status = match status {
            Some(status) => status.map_err(|e| {
                Error::from(ErrorKind::Archive { what: what.to_string(), reason: e.to_string() })
            })?,
            None => {
                let _ = child.kill().await;
                return Err(self.out_of_room(what).await);
            }
        };
        if report.is_some() && self.reserve > 0 && self.below_reserve() {
            return Err(self.out_of_room(what).await);
        }
        let errors = errors.await.unwrap_or_default();
        let output = String::from_utf8_lossy(&output).into_owned();
        if status.success() {
            return Ok(output);
        }
        let text = if errors.trim().is_empty() { &output } else { &errors };
        Err(ErrorKind::Archive {
            what: what.to_string(),
            reason: explain(text, password.is_some(), status.code()),
        }
        .into())
    }
}

/// 7-Zip's failure in words a user can act on.
fn explain(text: &str, had_password: bool, code: Option<i32>) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.contains("wrong password")
        || (!had_password && (lower.contains("enter password") || lower.contains("break signaled")))
    {
        return if had_password {
            "wrong password".into()
        } else {
            "the archive is encrypted: give its password as -e PASSWORD".into()
        };
    }
    if lower.contains("can not open the file as archive") || lower.contains("cannot open the file as archive")
    {
        return "not an archive 7-Zip can open (RAR needs Debian's non-free 7zip-rar package)".into();
    }
    if lower.contains("unsupported method") {
        return "the archive uses a method this 7-Zip cannot unpack (RAR needs Debian's non-free 7zip-rar package)".into();
    }
    if lower.contains("no space left") {
        return "no space left on the disk".into();
    }
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with("ERROR") || l.contains("rror"))
        .or_else(|| text.lines().map(str::trim).rfind(|l| !l.is_empty()))
        .unwrap_or("");
    let mut line: String = line.chars().filter(|c| !c.is_control()).take(300).collect();
    if line.is_empty() {
        line = format!("7-Zip exited with status {}", code.map_or("(killed)".into(), |c| c.to_string()));
    }
    line
}

/// The last `NN%` in 7-Zip's progress output.
fn last_percent(bytes: &[u8]) -> Option<u64> {
    let mut found = None;
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'%' {
            continue;
        }
        let digits = bytes[..i].iter().rev().take_while(|c| c.is_ascii_digit()).count();
        if (1..=3).contains(&digits) {
            let text = std::str::from_utf8(&bytes[i - digits..i]).ok()?;
            found = text.parse().ok();
        }
    }
    found
}

/// Regular files under `dir`, relative, sorted, without the engine's own entries and
/// aria2's control files. Symlinks are not followed.
pub(crate) async fn walk(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries = tokio::fs::read_dir(&d).await.map_err(|e| Error::io(d.display(), &e))?;
        while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(d.display(), &e))? {
            let path = entry.path();
            if d == dir && entry.file_name().to_string_lossy().starts_with(RESERVED_PREFIX) {
                continue;
            }
            let meta = tokio::fs::symlink_metadata(&path).await.map_err(|e| Error::io(path.display(), &e))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && path.extension().is_none_or(|e| e != "aria2") {
                let relative = path.strip_prefix(dir).map(Path::to_path_buf).unwrap_or_default();
                out.push((relative, meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The names directly in `dir` that [`walk`] would enter or list.
async fn top_entries(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| Error::io(dir.display(), &e))?;
    while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(dir.display(), &e))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata().await.map_err(|e| Error::io(entry.path().display(), &e))?;
        if name.starts_with(RESERVED_PREFIX) || name.ends_with(".aria2") || meta.file_type().is_symlink() {
            continue;
        }
        out.push(name);
    }
    Ok(out)
}

/// The one `.tar` an archive unpacked to, when that is all it held.
async fn lone_tar(dir: &Path) -> Result<Option<PathBuf>> {
    let files = walk(dir).await?;
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| Error::io(dir.display(), &e))?;
    let mut count = 0;
    while entries.next_entry().await.map_err(|e| Error::io(dir.display(), &e))?.is_some() {
        count += 1;
    }
    Ok(match files.as_slice() {
        [(rel, _)] if count == 1 && rel.extension().is_some_and(|e| e.eq_ignore_ascii_case("tar")) => {
            Some(dir.join(rel))
        }
        _ => None,
    })
}

/// Removes everything under `dir` that is not a regular file or a directory (symlinks
/// above all: nothing the upload reads may point outside the task's directory).
async fn keep_regular_files(dir: &Path) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries = tokio::fs::read_dir(&d).await.map_err(|e| Error::io(d.display(), &e))?;
        while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(d.display(), &e))? {
            let path = entry.path();
            let meta = tokio::fs::symlink_metadata(&path).await.map_err(|e| Error::io(path.display(), &e))?;
            if meta.is_dir() {
                stack.push(path);
            } else if !meta.is_file() {
                tracing::info!(path = %path.display(), "removed a link or special file an archive held");
                tokio::fs::remove_file(&path).await.map_err(|e| Error::io(path.display(), &e))?;
            }
        }
    }
    Ok(())
}

async fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| Error::io(parent.display(), &e))?;
    }
    if tokio::fs::hard_link(from, to).await.is_err() {
        tokio::fs::copy(from, to).await.map_err(|e| Error::io(to.display(), &e))?;
    }
    Ok(())
}

/// Removes the downloaded files once the stage's result is final (best effort: they go
/// with the task's directory anyway).
async fn remove_inputs(dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name().to_string_lossy().starts_with(RESERVED_PREFIX) {
            continue;
        }
        let path = entry.path();
        let removed = match entry.file_type().await {
            Ok(t) if t.is_dir() => tokio::fs::remove_dir_all(&path).await,
            _ => tokio::fs::remove_file(&path).await,
        };
        if let Err(e) = removed {
            tracing::debug!(path = %path.display(), error = %e, "a downloaded file was not removed");
        }
    }
}

async fn remove_all(path: &Path) -> Result<()> {
    match tokio::fs::remove_dir_all(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path.display(), &e)),
    }
}

fn file_name(rel: &Path) -> String {
    rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn parent(rel: &Path) -> PathBuf {
    rel.parent().map(Path::to_path_buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(base: &str, stem: &str) -> Kind {
        Kind::First { base: base.into(), stem: stem.into() }
    }

    #[test]
    fn names_are_classified_as_archives_and_volumes() {
        assert_eq!(kind("a.zip"), first("a", "a"));
        assert_eq!(kind("Movie.Part1.RAR"), first("Movie", "Movie"));
        assert_eq!(kind("movie.part01.rar"), first("movie", "movie"));
        assert_eq!(kind("movie.part02.rar"), Kind::Later { base: "movie".into() });
        assert_eq!(kind("movie.rar"), first("movie", "movie"));
        assert_eq!(kind("movie.r00"), Kind::Later { base: "movie".into() });
        assert_eq!(kind("a.z01"), Kind::Later { base: "a".into() });
        assert_eq!(kind("a.7z.001"), first("a.7z", "a"));
        assert_eq!(kind("a.7z.002"), Kind::Later { base: "a.7z".into() });
        assert_eq!(kind("data.tar.gz"), first("data.tar", "data"));
        assert_eq!(kind("data.tgz"), first("data", "data"));
        assert_eq!(kind("song.mp3"), Kind::Plain);
        assert_eq!(kind("README"), Kind::Plain);
        assert_eq!(kind(".zip"), Kind::Plain);
        assert_eq!(kind("zip"), Kind::Plain);
        assert_eq!(kind("a.part.rar"), first("a.part", "a.part"));
        assert_eq!(kind("ünï.ZIP"), first("ünï", "ünï"));
    }

    #[test]
    fn progress_is_the_last_percentage_in_a_chunk() {
        assert_eq!(last_percent(b"  0%\x08\x08\x08\x08  20% + big.bin\x08\x08 39% + big"), Some(39));
        assert_eq!(last_percent(b"100%"), Some(100));
        assert_eq!(last_percent(b"no progress %"), None);
    }

    #[test]
    fn failures_are_explained() {
        assert_eq!(explain("ERROR: Wrong password : a.txt", true, Some(2)), "wrong password");
        assert!(
            explain("Enter password (will not be echoed):\nBreak signaled", false, Some(255))
                .contains("-e PASSWORD")
        );
        assert!(
            explain("ERROR: a.bin\nCan not open the file as archive", false, Some(2))
                .contains("not an archive")
        );
        assert_eq!(explain("", false, None), "7-Zip exited with status (killed)");
    }

    fn stage<'a>(
        program: &'a Path,
        dir: &'a Path,
        cancel: &'a CancellationToken,
        pack: &'a Pack,
    ) -> Stage<'a> {
        Stage { program, dir, name: "a", extract: Some(pack), zip: None, reserve: 0, cancel }
    }

    #[tokio::test]
    async fn a_finished_stage_is_final_and_a_broken_one_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"inside").unwrap();
        let made = std::process::Command::new("7z")
            .args(["a", "-tzip", "a.zip", "a.txt"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .status()
            .expect("7z is needed: apt-get install p7zip-full (scripts/test installs it)");
        assert!(made.success());
        std::fs::remove_file(dir.path().join("a.txt")).unwrap();
        // What a crash in the middle of an earlier run leaves behind.
        std::fs::create_dir_all(dir.path().join(STAGE_DIR).join("extracted")).unwrap();
        std::fs::write(dir.path().join(STAGE_DIR).join("extracted/half.bin"), b"half").unwrap();
        let (cancel, pack) = (CancellationToken::new(), Pack::default());
        let seven = PathBuf::from("7z");
        let out = stage(&seven, dir.path(), &cancel, &pack).run(&|_, _, _| {}).await.unwrap();
        assert_eq!(out, dir.path().join(OUT_DIR));
        assert_eq!(std::fs::read(out.join("a/a.txt")).unwrap(), b"inside");
        assert!(!dir.path().join(STAGE_DIR).exists() && !dir.path().join("a.zip").exists());
        assert!(!out.join("a/half.bin").exists(), "the broken stage's files are gone");
        // Once final, a restart does not run 7-Zip again.
        let missing = PathBuf::from("/nonexistent/7z");
        assert_eq!(stage(&missing, dir.path(), &cancel, &pack).run(&|_, _, _| {}).await.unwrap(), out);
        assert_eq!(Stage::root(dir.path()), out);

        let fresh = tempfile::tempdir().unwrap();
        std::fs::write(fresh.path().join("b.zip"), b"PK").unwrap();
        let e = stage(&missing, fresh.path(), &cancel, &pack).run(&|_, _, _| {}).await.unwrap_err();
        assert!(e.to_string().contains("p7zip-full"), "{e}");
        assert_eq!(Stage::root(fresh.path()), fresh.path());
    }

    #[tokio::test]
    async fn a_file_named_like_a_wildcard_is_zipped_alone() {
        // A download whose one top entry is called `*`, beside the engine's own entries.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("*"), b"star").unwrap();
        std::fs::write(dir.path().join("x.aria2"), b"control").unwrap();
        std::fs::create_dir_all(dir.path().join(STAGE_DIR)).unwrap();
        std::fs::write(dir.path().join(STAGE_DIR).join("secret"), b"internal").unwrap();
        let (cancel, pack) = (CancellationToken::new(), Pack::default());
        let seven = PathBuf::from("7z");
        let zipping = Stage {
            program: &seven,
            dir: dir.path(),
            name: "a",
            extract: None,
            zip: Some(&pack),
            reserve: 0,
            cancel: &cancel,
        };
        let out = zipping.run(&|_, _, _| {}).await.unwrap();
        let listed = std::process::Command::new("7z")
            .args(["l", "-slt", "-spd", "--"])
            .arg(out.join("a.zip"))
            .output()
            .expect("7z is needed: apt-get install p7zip-full (scripts/test installs it)");
        let listing = String::from_utf8_lossy(&listed.stdout);
        let names: Vec<&str> = listing.lines().filter_map(|l| l.strip_prefix("Path = ")).skip(1).collect();
        assert_eq!(names, ["*"], "{listing}");
    }

    #[tokio::test]
    async fn an_archive_that_unpacks_to_more_than_it_lists_stops_at_the_reserve() {
        // A `.gz` of 6 MiB of zeros whose trailer says it holds 1 byte, on a disk of 8 MiB
        // with 4 MiB reserved: the listing passes the space check, the unpacking does not.
        let disk = mltb_testkit::SmallDisk::mount("8m");
        let dir = disk.path().join("task");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bomb.bin"), vec![0_u8; 6 << 20]).unwrap();
        let zipped = std::process::Command::new("gzip")
            .args(["-n", "bomb.bin"])
            .current_dir(&dir)
            .status()
            .expect("gzip is needed: apt-get install gzip");
        assert!(zipped.success());
        let gz = dir.join("bomb.bin.gz");
        let mut bytes = std::fs::read(&gz).unwrap();
        let at = bytes.len() - 4;
        bytes[at..].copy_from_slice(&1_u32.to_le_bytes());
        std::fs::write(&gz, &bytes).unwrap();

        let (cancel, pack) = (CancellationToken::new(), Pack::default());
        let seven = PathBuf::from("7z");
        let reserve = 4 << 20;
        let step = Stage { reserve, ..stage(&seven, &dir, &cancel, &pack) };
        let e = step.run(&|_, _, _| {}).await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::DiskFull { .. }), "{e:?}");
        assert!(e.to_string().contains("unpacks to more than it lists"), "{e}");
        assert!(!dir.join(STAGE_DIR).exists(), "the partial output is gone");
        let free = crate::pipeline::free_disk(&dir).unwrap();
        assert!(free >= reserve, "{free} bytes free, under the {reserve} byte reserve");
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        assert!(!format!("{:?}", Pack::new(Some("hunter2".into()))).contains("hunter2"));
    }
}
