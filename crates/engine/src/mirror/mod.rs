//! Mirror: a task's files copied to an rclone remote, one `rclone copyto` per file, with
//! progress from rclone's JSON stats, the resulting path recorded, and the share link
//! from `rclone link` where the remote offers one.
//!
//! # Example
//!
//! ```no_run
//! use mltb_engine::mirror::{MirrorTarget, RcloneUploader};
//!
//! # fn demo() -> mltb_engine::Result<()> {
//! // The destination from the task (`TaskOptions::upload`) or the bot's default.
//! let target = MirrorTarget::parse("gdrive:Mirror")?
//!     .config_file(Some("/etc/mltb/rclone.conf".into()))
//!     .flags(["--drive-chunk-size", "64M"]);
//! let uploader = RcloneUploader::new(target)?;
//! // engine.upload(...) through the `Uploader` seam.
//! # let _ = uploader;
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! - **One process per file.** `rclone copyto <file> <remote:path/relative>` runs once
//!   per file, so each file is confirmed by rclone's exit status and recorded through the
//!   [`PartLog`](crate::PartLog) before the next starts: after a restart the upload
//!   resumes from the first file not confirmed, and a file that was in flight is copied
//!   again whole (rclone overwrites it). One `rclone copy` of the directory would start
//!   once, but it confirms files only in its log text, which this would have to parse;
//!   the cost of the per-file choice is one process start (and remote login) per file,
//!   which matters only for torrents with thousands of small files.
//! - **Progress** comes from the `stats` object that `--use-json-log` puts on each stats
//!   line (`--stats 1s --stats-log-level NOTICE`); the `level` field is not looked at
//!   for it, as it changed between rclone versions.
//! - **Cancel** kills rclone's process group (rclone runs in a group of its own) and
//!   reaps it before [`ErrorKind::Cancelled`] is returned, so no rclone is left running.
//! - **Secrets.** The config file's path is never logged nor put in an error or `Debug`
//!   output; errors carry rclone's last error line with connection-string secrets
//!   (`pass=…`, `token=…`), URL passwords and the config path removed.
//! - **Paths** on the remote are the task's `path` and each file's relative path, both
//!   refused when absolute or holding `..`.

mod process;
mod redact;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use self::process::Run;
use self::redact::{check_remote_path, redact};
use crate::upload::{SentPart, UploadContext, UploadOutcome, UploadProgress, UploadRequest, Uploader};
use crate::{Error, ErrorKind, Result};

/// How long `rclone link` may take before the upload goes on without a link.
const LINK_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a task's files go: an rclone remote and a path on it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorTarget {
    /// The remote: a configured one (`gdrive:`, `gdrive:Mirror`) or an inline connection
    /// string (`:local:/srv/cloud`, `:webdav,url='http://h:8080':`). It ends with `:` or
    /// a root path under it.
    pub remote: String,
    /// The path under the remote for this task (may be empty): relative, no `..`.
    pub path: String,
    /// The rclone config file (from the bot's config). Never logged.
    pub config_file: Option<PathBuf>,
    /// Extra command-line flags for every rclone call, e.g. `--drive-chunk-size 64M` or
    /// `--bwlimit 10M`. They are not logged either (they may hold a secret).
    pub flags: Vec<String>,
}

impl MirrorTarget {
    /// `path` under `remote`, with rclone's default config file.
    pub fn new(remote: impl Into<String>, path: impl Into<String>) -> Self {
        Self { remote: remote.into(), path: path.into(), config_file: None, flags: Vec::new() }
    }

    /// Splits a destination written as rclone does, `remote:path` (e.g. a task's
    /// [`TaskOptions::upload`](crate::TaskOptions)): `gdrive:Mirror/x` is remote `gdrive:`
    /// and path `Mirror/x`; an inline `:webdav,url='http://h:1':Mirror` is remote
    /// `:webdav,url='http://h:1':` and path `Mirror` (quotes are honoured); the path of
    /// `:local:/srv/cloud` (an absolute local path) stays with the remote.
    pub fn parse(destination: &str) -> Result<Self> {
        let invalid = |expected: &str| -> Error {
            ErrorKind::Config {
                setting: "mirror destination",
                value: format!("{:?}", redact(destination)),
                expected: expected.to_string(),
            }
            .into()
        };
        let end = remote_end(destination)
            .ok_or_else(|| invalid("`remote:path` (e.g. `gdrive:Mirror`) or `:backend,option=value:path`"))?;
        let (remote, path) = destination.split_at(end + 1);
        if remote.len() == 1 || (remote.starts_with(':') && remote.len() < 3) {
            return Err(invalid("a remote name before `:`"));
        }
        let (remote, path) = if path.starts_with('/') {
            // `:local:/abs` or `remote:/abs`: a root on the remote, not a task path.
            (destination.to_string(), String::new())
        } else {
            (remote.to_string(), path.trim_end_matches('/').to_string())
        };
        check_remote_path("mirror path", &path, true)?;
        Ok(Self::new(remote, path))
    }

    /// Uses `config_file` as rclone's config (`--config`).
    pub fn config_file(mut self, config_file: Option<PathBuf>) -> Self {
        self.config_file = config_file;
        self
    }

    /// Adds command-line flags to every rclone call.
    pub fn flags<I, S>(mut self, flags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.flags.extend(flags.into_iter().map(Into::into));
        self
    }

    /// `relative` (a path under [`path`](Self::path)) on the remote: `remote:path/relative`.
    fn destination(&self, relative: &str) -> String {
        let mut out = self.remote.clone();
        for piece in [self.path.trim_matches('/'), relative.trim_matches('/')] {
            if piece.is_empty() {
                continue;
            }
            if !(out.ends_with(':') || out.ends_with('/')) {
                out.push('/');
            }
            out.push_str(piece);
        }
        out
    }

    /// Secret values in the remote's connection string, to scrub from rclone's messages
    /// even where rclone prints them in a shape [`redact`] does not know.
    fn secrets(&self) -> Vec<String> {
        let redacted = redact(&self.remote);
        if redacted == self.remote {
            return Vec::new();
        }
        // Each stretch of the original that the redaction replaced.
        let mut secrets = Vec::new();
        let (original, mut shown) = (self.remote.as_str(), redacted.as_str());
        let mut at = 0;
        while let Some(star) = shown.find(redact::REDACTED) {
            let before = &shown[..star];
            at += before.len();
            let after = &shown[star + redact::REDACTED.len()..];
            // Redaction only replaces values, so the text around them lines up; stop
            // rather than panic should it not.
            let Some(rest) = original.get(at..) else { break };
            let len = match (rest.chars().next(), after.chars().next()) {
                // A quoted value runs to its closing quote.
                (Some(q @ ('\'' | '"')), _) => rest[1..].find(q).map_or(rest.len(), |p| p + 2),
                (_, Some(next)) => rest.find(next).unwrap_or(rest.len()),
                (_, None) => rest.len(),
            };
            let Some(secret) = rest.get(..len) else { break };
            secrets.push(secret.trim_matches(['\'', '"']).to_string());
            at += len;
            shown = after;
        }
        secrets
    }

    fn check(&self) -> Result<()> {
        if remote_end(&self.remote).is_none() {
            return Err(ErrorKind::Config {
                setting: "mirror remote",
                value: format!("{:?}", redact(&self.remote)),
                expected: "an rclone remote such as `gdrive:` or `:local:/srv/cloud`".into(),
            }
            .into());
        }
        check_remote_path("mirror path", &self.path, true)
    }
}

/// The index of the `:` that ends the remote's name in `destination`: the first one for
/// `name:path`; for an inline `:backend,opt='v:1':path`, the first one after the leading
/// `:` that is outside quotes.
fn remote_end(destination: &str) -> Option<usize> {
    if let Some(inline) = destination.strip_prefix(':') {
        let mut quote = None;
        for (i, c) in inline.char_indices() {
            match (quote, c) {
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, ':') => return Some(i + 1),
                _ => {}
            }
        }
        None
    } else {
        let end = destination.find(':')?;
        let name = &destination[..end];
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '@' | ' '));
        valid.then_some(end)
    }
}

impl std::fmt::Debug for MirrorTarget {
    // The config path and the flags may tell where secrets are or hold them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorTarget")
            .field("remote", &redact(&self.remote))
            .field("path", &self.path)
            .field("config_file", &if self.config_file.is_some() { "set" } else { "unset" })
            .field("flags", &self.flags.len())
            .finish()
    }
}

/// The rclone [`Uploader`]: each file of a task copied with its own `rclone copyto`.
#[derive(Clone)]
pub struct RcloneUploader {
    program: PathBuf,
    target: MirrorTarget,
    stats_interval: Duration,
    retries: u32,
    low_level_retries: u32,
    secrets: Arc<[String]>,
}

impl std::fmt::Debug for RcloneUploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RcloneUploader")
            .field("program", &self.program)
            .field("target", &self.target)
            .field("stats_interval", &self.stats_interval)
            .field("retries", &self.retries)
            .field("low_level_retries", &self.low_level_retries)
            .finish_non_exhaustive()
    }
}

impl RcloneUploader {
    /// An uploader to `target`, running `rclone` from PATH, with stats every second,
    /// `--retries 3` and `--low-level-retries 10`. Fails on a remote that is not one, or
    /// a path that is absolute or holds `..`.
    pub fn new(target: MirrorTarget) -> Result<Self> {
        target.check()?;
        let secrets = target.secrets().into();
        Ok(Self {
            program: PathBuf::from("rclone"),
            target,
            stats_interval: Duration::from_secs(1),
            retries: 3,
            low_level_retries: 10,
            secrets,
        })
    }

    /// Runs `program` instead of `rclone` from PATH.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// How often rclone reports progress (`--stats`); at least 100 ms.
    pub fn stats_interval(mut self, every: Duration) -> Self {
        self.stats_interval = every.max(Duration::from_millis(100));
        self
    }

    /// rclone's `--retries` (whole-transfer attempts, at least 1) and
    /// `--low-level-retries` (per HTTP request, at least 1).
    pub fn retries(mut self, retries: u32, low_level_retries: u32) -> Self {
        self.retries = retries.max(1);
        self.low_level_retries = low_level_retries.max(1);
        self
    }

    /// Where files go.
    pub fn target(&self) -> &MirrorTarget {
        &self.target
    }

    fn common_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        if let Some(config) = &self.target.config_file {
            args.push("--config".into());
            args.push(config.clone().into_os_string());
        }
        args.extend(["--use-json-log".into(), "--stats-log-level".into(), "NOTICE".into()]);
        args.extend(self.target.flags.iter().map(OsString::from));
        args
    }

    fn run(&self, args: Vec<OsString>) -> Run<'_> {
        Run {
            program: &self.program,
            args,
            config_file: self.target.config_file.as_deref(),
            secrets: &self.secrets,
        }
    }

    /// Copies one file to `destination`, feeding `on_bytes` with rclone's byte count.
    async fn copy_file(
        &self,
        source: &Path,
        destination: &str,
        relative: &str,
        on_bytes: impl FnMut(u64),
        cancel: &CancellationToken,
    ) -> Result<()> {
        let source = std::path::absolute(source).map_err(|e| Error::io(source.display(), &e))?;
        let mut args: Vec<OsString> = vec!["copyto".into(), source.into_os_string(), destination.into()];
        args.extend(self.common_args());
        args.extend([
            "--stats".into(),
            format!("{}ms", self.stats_interval.as_millis()).into(),
            "--retries".into(),
            self.retries.to_string().into(),
            "--low-level-retries".into(),
            self.low_level_retries.to_string().into(),
        ]);
        let run = self.run(args);
        let finished = run.run("copyto", on_bytes, cancel, None).await?;
        let status = finished.status.and_then(|s| s.code());
        if status == Some(0) {
            return Ok(());
        }
        let line = finished.last_error.unwrap_or_else(|| "rclone gave no error message".into());
        let meaning = status.and_then(exit_meaning).map(|m| format!(" ({m})")).unwrap_or_default();
        Err(ErrorKind::Rclone { code: status, message: format!("{relative}: {line}{meaning}") }.into())
    }

    /// The share link of `destination`, when the remote offers one; `None` otherwise (a
    /// local or WebDAV remote), or when rclone fails or takes too long.
    async fn link(&self, destination: &str, cancel: &CancellationToken) -> Result<Option<String>> {
        let mut args: Vec<OsString> = vec!["link".into(), destination.into()];
        args.extend(self.common_args());
        let run = self.run(args);
        match run.run("link", |_| {}, cancel, Some(LINK_TIMEOUT)).await {
            Ok(finished) if finished.status.is_some_and(|s| s.success()) => {
                let link = finished.stdout.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string);
                Ok(link)
            }
            Ok(finished) => {
                tracing::debug!(
                    error = finished.last_error.as_deref().unwrap_or_default(),
                    "no share link from rclone"
                );
                Ok(None)
            }
            Err(e) if e.is_cancelled() => Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "no share link from rclone");
                Ok(None)
            }
        }
    }
}

/// What rclone's exit codes mean. Codes 1 and 2 are left out: rclone documents 1 as a
/// usage error, but every fatal `Failed to …` exits with it too, so its own line says more.
fn exit_meaning(code: i32) -> Option<&'static str> {
    Some(match code {
        3 => "directory not found",
        4 => "file not found",
        5 => "temporary error, retrying may help",
        6 => "less serious error",
        7 => "fatal error, retrying will not help",
        8 => "transfer limit reached",
        9 => "nothing transferred",
        _ => return None,
    })
}

/// The folder the upload lands in, relative to the target's path: the files' common top
/// folder, the file itself when there is one, or nothing (the path itself).
fn landing(request: &UploadRequest) -> String {
    match request.files.as_slice() {
        [one] => one.relative.clone(),
        files => {
            let mut tops = files.iter().map(|f| f.relative.split_once('/').map(|(top, _)| top));
            match tops.next().flatten() {
                Some(first) if tops.all(|t| t == Some(first)) => first.to_string(),
                _ => String::new(),
            }
        }
    }
}

#[async_trait::async_trait]
impl Uploader for RcloneUploader {
    #[tracing::instrument(skip_all, fields(task = request.task, files = request.files.len()))]
    async fn upload(&self, request: &UploadRequest, context: UploadContext<'_>) -> Result<UploadOutcome> {
        for file in &request.files {
            check_remote_path("file path", &file.relative, false)?;
        }
        let total: u64 = request.files.iter().map(|f| f.size).sum();
        let mut done = 0_u64;
        let mut reported = None;
        let mut report = |sent: u64| {
            // Only forward: a retried transfer starts its count again.
            if reported.is_none_or(|r| sent > r) {
                reported = Some(sent);
                (context.progress)(UploadProgress::new(sent, total));
            }
        };
        let mut outcome = UploadOutcome::default();
        for file in &request.files {
            if !file.sent.is_empty() {
                done += file.size;
                report(done);
                continue;
            }
            if context.cancel.is_cancelled() {
                return Err(ErrorKind::Cancelled.into());
            }
            let destination = self.target.destination(&file.relative);
            let size = file.size;
            self.copy_file(
                &file.path,
                &destination,
                &file.relative,
                |bytes| report(done + bytes.min(size)),
                &context.cancel,
            )
            .await?;
            let remote_path = redact(&destination);
            context.parts.record(file.id, &SentPart::remote(0, size, remote_path)).await?;
            done += size;
            report(done);
            outcome.parts_sent += 1;
        }
        let location = self.target.destination(&landing(request));
        outcome.link = self.link(&location, &context.cancel).await?;
        outcome.location = Some(redact(&location));
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UploadFile;

    #[test]
    fn destinations_split_like_rclone() {
        let t = MirrorTarget::parse("gdrive:Mirror/x/").unwrap();
        assert_eq!((t.remote.as_str(), t.path.as_str()), ("gdrive:", "Mirror/x"));
        let t = MirrorTarget::parse(":webdav,url='http://h:1/a:b':Mirror").unwrap();
        assert_eq!((t.remote.as_str(), t.path.as_str()), (":webdav,url='http://h:1/a:b':", "Mirror"));
        let t = MirrorTarget::parse(":local:/srv/cloud").unwrap();
        assert_eq!((t.remote.as_str(), t.path.as_str()), (":local:/srv/cloud", ""));
        let t = MirrorTarget::parse("my remote:").unwrap();
        assert_eq!((t.remote.as_str(), t.path.as_str()), ("my remote:", ""));
        for bad in
            ["/just/a/path", "no-colon", ":", "::x", ":webdav,url='unclosed:x", "r:../up", "r:a/../../b"]
        {
            let err = MirrorTarget::parse(bad).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Config { .. }), "{bad:?}: {err}");
        }
        let err = MirrorTarget::parse(":webdav,pass='hunter22'").unwrap_err();
        assert!(!err.to_string().contains("hunter22"), "{err}");
    }

    #[test]
    fn destinations_join_remote_path_and_file() {
        let t = MirrorTarget::new("gdrive:", "Mirror/");
        assert_eq!(t.destination("a b/ü.txt"), "gdrive:Mirror/a b/ü.txt");
        assert_eq!(t.destination(""), "gdrive:Mirror");
        assert_eq!(MirrorTarget::new(":local:/srv", "t1").destination("f"), ":local:/srv/t1/f");
        assert_eq!(MirrorTarget::new("r:", "").destination("f"), "r:f");
        assert_eq!(MirrorTarget::new("r:root/", "").destination("f"), "r:root/f");
    }

    #[test]
    fn new_refuses_bad_targets() {
        assert!(RcloneUploader::new(MirrorTarget::new("gdrive:", "ok/path")).is_ok());
        for target in [
            MirrorTarget::new("nocolon", ""),
            MirrorTarget::new("r:", "/abs"),
            MirrorTarget::new("r:", "a/.."),
        ] {
            let err = RcloneUploader::new(target).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Config { .. }), "{err}");
        }
    }

    #[test]
    fn secrets_of_the_remote_are_known() {
        let t = MirrorTarget::new(":webdav,url='http://u:pw1@h',user=bob,pass='hunter22':", "");
        assert_eq!(t.secrets(), vec!["pw1".to_string(), "hunter22".to_string()]);
        assert!(MirrorTarget::new("gdrive:", "").secrets().is_empty());
        // Odd shapes give fewer secrets (redaction still covers them), never a panic.
        for odd in [":webdav,pass='a''b':", ":webdav,url='http://h/***',pass=x:", "pass=", ":x,pass='é"] {
            let _ = MirrorTarget::new(odd, "").secrets();
        }
    }

    #[test]
    fn debug_hides_the_config_path_flags_and_secrets() {
        let t = MirrorTarget::new(":webdav,url='http://h',pass='hunter22':", "p")
            .config_file(Some("/secret/place/rclone.conf".into()))
            .flags(["--webdav-bearer-token", "tok3n"]);
        let uploader = RcloneUploader::new(t.clone()).unwrap();
        for text in [format!("{t:?}"), format!("{uploader:?}")] {
            for hidden in ["/secret/place", "rclone.conf", "hunter22", "tok3n"] {
                assert!(!text.contains(hidden), "{hidden} in {text}");
            }
            assert!(text.contains("config_file: \"set\""), "{text}");
        }
    }

    #[test]
    fn the_landing_folder_is_the_common_top() {
        let request = |paths: &[&str]| {
            let files = paths.iter().enumerate().map(|(i, p)| UploadFile::new(i as i64, *p, *p, 1)).collect();
            UploadRequest::new(1, "t", "/dl/1", files)
        };
        assert_eq!(landing(&request(&["Show/a.mkv", "Show/s/b.mkv"])), "Show");
        assert_eq!(landing(&request(&["a.iso"])), "a.iso");
        assert_eq!(landing(&request(&["a.iso", "b.iso"])), "");
        assert_eq!(landing(&request(&["A/a", "B/b"])), "");
        assert_eq!(landing(&request(&["A/a", "A"])), "");
    }

    #[test]
    fn exit_codes_have_meanings() {
        assert_eq!(exit_meaning(3), Some("directory not found"));
        assert_eq!(exit_meaning(5), Some("temporary error, retrying may help"));
        assert_eq!(exit_meaning(0), None);
        assert_eq!(exit_meaning(1), None);
    }

    proptest::proptest! {
        /// No remote or destination, however odd, makes parsing, joining or the secret
        /// scan panic.
        #[test]
        fn odd_destinations_never_panic(text in ".{0,60}", relative in ".{0,20}") {
            let _ = MirrorTarget::parse(&text);
            let target = MirrorTarget::new(text.clone(), "");
            let _ = target.secrets();
            let _ = target.destination(&relative);
            let _ = format!("{target:?}");
        }
    }
}
