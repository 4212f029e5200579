//! One rclone command as a child process: its JSON log read from stderr for progress and
//! for the last error, killed with its process group on cancel.

use std::ffi::OsString;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::redact::redact;
use crate::{Error, ErrorKind, Result};

/// The longest stderr line kept whole; longer ones (never seen from rclone) are cut.
const MAX_LINE: usize = 64 * 1024;
/// The longest error message kept from rclone.
const MAX_MESSAGE: usize = 1000;
/// The most of stdout read (`rclone link` prints one URL).
const MAX_STDOUT: u64 = 64 * 1024;

/// What rclone said on a run that finished.
#[derive(Debug, Default)]
pub(super) struct Finished {
    /// How rclone exited.
    pub(super) status: Option<ExitStatus>,
    /// Its last error line, redacted.
    pub(super) last_error: Option<String>,
    /// Its stdout (for `rclone link`).
    pub(super) stdout: String,
}

/// How to run rclone, and what must not show in what it says.
pub(super) struct Run<'a> {
    pub(super) program: &'a Path,
    pub(super) args: Vec<OsString>,
    /// The config file's path, replaced in messages.
    pub(super) config_file: Option<&'a Path>,
    /// Secret values known to be in the arguments, replaced in messages.
    pub(super) secrets: &'a [String],
}

impl Run<'_> {
    /// Runs rclone to its end, feeding `on_bytes` with the `stats.bytes` of each stats
    /// line. On `cancel`, kills rclone's process group, reaps it, and returns
    /// [`ErrorKind::Cancelled`]; a bounded `timeout` (for `rclone link`) does the same
    /// with [`ErrorKind::Timeout`].
    pub(super) async fn run(
        &self,
        what: &str,
        mut on_bytes: impl FnMut(u64),
        cancel: &CancellationToken,
        timeout: Option<Duration>,
    ) -> Result<Finished> {
        let mut command = Command::new(self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a cancel kills whatever it may have started too.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| spawn_error(self.program, &e))?;
        let pid = child.id();
        let (Some(stderr), Some(mut stdout)) = (child.stderr.take(), child.stdout.take()) else {
            kill(pid, &mut child).await;
            return Err(ErrorKind::Rclone {
                code: None,
                message: "rclone's output pipes are missing".into(),
            }
            .into());
        };
        let mut last_error = None;
        let mut out = Vec::new();
        let read = async {
            let read_out = async {
                // Bounded: `rclone link` prints one line.
                let _ = (&mut stdout).take(MAX_STDOUT).read_to_end(&mut out).await;
            };
            let read_err = read_log(stderr, &mut on_bytes, &mut last_error);
            tokio::join!(read_out, read_err);
        };
        let deadline = async {
            match timeout {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        let stopped = tokio::select! {
            () = cancel.cancelled() => Some(ErrorKind::Cancelled),
            () = deadline => Some(ErrorKind::Timeout {
                what: format!("rclone {what}"),
                after: timeout.unwrap_or_default(),
            }),
            () = read => None,
        };
        if let Some(kind) = stopped {
            kill(pid, &mut child).await;
            return Err(kind.into());
        }
        // Both pipes are closed: rclone has exited or is about to.
        let status = tokio::select! {
            () = cancel.cancelled() => {
                kill(pid, &mut child).await;
                return Err(ErrorKind::Cancelled.into());
            }
            status = child.wait() => status.map_err(|e| ErrorKind::Rclone {
                code: None,
                message: format!("waiting for rclone {what}: {e}"),
            })?,
        };
        Ok(Finished {
            status: Some(status),
            last_error: last_error.map(|m| self.scrub(&m)),
            stdout: String::from_utf8_lossy(&out).into_owned(),
        })
    }

    /// `message` without secrets: connection-string secrets, URL passwords, the values
    /// known to be secret, and the config file's path.
    pub(super) fn scrub(&self, message: &str) -> String {
        let mut text = redact(message);
        for secret in self.secrets.iter().filter(|s| s.len() >= 3) {
            text = text.replace(secret.as_str(), super::redact::REDACTED);
        }
        if let Some(config) = self.config_file {
            let config = config.to_string_lossy();
            if !config.is_empty() {
                text = text.replace(config.as_ref(), "<rclone config>");
            }
        }
        crate::cut(&text, MAX_MESSAGE)
    }
}

/// Kills rclone's process group, then rclone itself, and reaps it, so no rclone process
/// is left once this returns.
async fn kill(pid: Option<u32>, child: &mut tokio::process::Child) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw) {
        // The child is not reaped yet, so its pid (and group id) cannot have been reused.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

fn spawn_error(program: &Path, e: &std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::Config {
            setting: "rclone program",
            value: program.display().to_string(),
            expected: "an rclone executable (install it with `apt-get install rclone`)".into(),
        }
        .into()
    } else {
        ErrorKind::Rclone { code: None, message: format!("could not start {}: {e}", program.display()) }
            .into()
    }
}

/// Reads rclone's log to its end: each stats line's `stats.bytes` goes to `on_bytes`, and
/// the last error line is kept.
async fn read_log(
    stderr: impl AsyncRead + Unpin,
    on_bytes: &mut impl FnMut(u64),
    last_error: &mut Option<String>,
) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() >= MAX_LINE {
            // Skip the rest of an overlong line.
            let mut rest = Vec::new();
            if reader.read_until(b'\n', &mut rest).await.is_err() {
                return;
            }
        }
        match parse_line(&String::from_utf8_lossy(&line)) {
            Line::Stats { bytes, last_error: error } => {
                if let Some(bytes) = bytes {
                    on_bytes(bytes);
                }
                if let Some(error) = error {
                    last_error.get_or_insert(error);
                }
            }
            Line::Error(message) => *last_error = Some(message),
            Line::Other => {}
        }
    }
}

/// What one stderr line says.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// A stats line: bytes so far, and the last error it names.
    Stats { bytes: Option<u64>, last_error: Option<String> },
    /// An error.
    Error(String),
    /// Anything else (notices, info).
    Other,
}

/// Parses a line of rclone's stderr. JSON lines (`--use-json-log`) carry `stats` on stats
/// lines, whatever their `level` (1.60 logs NOTICE as `warning`, newer rclone as
/// `notice`); an error is a JSON line at level error or above. Fatal errors
/// (`Failed to copyto: …`) are printed as plain text, `2006/01/02 15:04:05 ` first.
pub(super) fn parse_line(line: &str) -> Line {
    let line = line.trim();
    if line.is_empty() {
        return Line::Other;
    }
    if line.starts_with('{') {
        let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(line) else {
            return Line::Other;
        };
        if let Some(stats) = object.get("stats") {
            let bytes = stats.get("bytes").and_then(serde_json::Value::as_u64);
            let last_error = stats
                .get("lastError")
                .and_then(serde_json::Value::as_str)
                .filter(|e| !e.is_empty())
                .map(str::to_string);
            return Line::Stats { bytes, last_error };
        }
        let level = object.get("level").and_then(serde_json::Value::as_str).unwrap_or_default();
        let message = object.get("msg").and_then(serde_json::Value::as_str).unwrap_or_default();
        return if matches!(level, "error" | "critical" | "fatal" | "panic" | "emergency" | "alert")
            && !message.is_empty()
        {
            Line::Error(message.trim().to_string())
        } else {
            Line::Other
        };
    }
    let text = strip_timestamp(line);
    let text =
        ["ERROR : ", "CRITICAL: ", "Fatal error: "].iter().find_map(|p| text.strip_prefix(p)).unwrap_or(text);
    if text.starts_with("NOTICE") || text.starts_with("INFO") || text.starts_with("DEBUG") {
        Line::Other
    } else {
        Line::Error(text.trim().to_string())
    }
}

/// `line` without Go's `2006/01/02 15:04:05 ` log prefix.
fn strip_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    let shaped = b.len() > 20
        && b[4] == b'/'
        && b[7] == b'/'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b' '
        && b[..4].iter().all(u8::is_ascii_digit);
    if shaped { &line[20..] } else { line }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_give_bytes_whatever_the_level() {
        let v160 = r#"{"level":"warning","msg":"\nTransferred: ...","source":"accounting/stats.go:482","stats":{"bytes":4222976,"eta":null,"speed":0,"totalBytes":30000000,"transferring":[{"bytes":4222976,"name":"big.bin"}]},"time":"2026-12-02T21:13:42+00:00"}"#;
        assert_eq!(parse_line(v160), Line::Stats { bytes: Some(4_222_976), last_error: None });
        let newer = r#"{"level":"notice","msg":"x","stats":{"bytes":7,"totalBytes":9,"lastError":"boom"}}"#;
        assert_eq!(parse_line(newer), Line::Stats { bytes: Some(7), last_error: Some("boom".into()) });
    }

    #[test]
    fn errors_come_from_json_levels_and_plain_fatal_lines() {
        let attempt = r#"{"level":"error","msg":"Attempt 1/3 failed with 1 errors and: connection refused","source":"cmd/cmd.go:283"}"#;
        assert_eq!(
            parse_line(attempt),
            Line::Error("Attempt 1/3 failed with 1 errors and: connection refused".into())
        );
        let notice = r#"{"level":"warning","msg":"Config file \"/root/.config/rclone/rclone.conf\" not found - using defaults"}"#;
        assert_eq!(parse_line(notice), Line::Other);
        assert_eq!(
            parse_line(
                "2026/12/02 21:14:42 Failed to copyto: read metadata failed: dial tcp: connection refused\n"
            ),
            Line::Error("Failed to copyto: read metadata failed: dial tcp: connection refused".into())
        );
        assert_eq!(parse_line("2026/12/02 21:14:42 NOTICE: something"), Line::Other);
        assert_eq!(
            parse_line("2026/12/02 21:14:42 ERROR : a.txt: failed"),
            Line::Error("a.txt: failed".into())
        );
        assert_eq!(parse_line("   "), Line::Other);
        assert_eq!(parse_line("{not json"), Line::Other);
    }

    #[test]
    fn scrub_removes_secrets_and_the_config_path() {
        let secrets = vec!["hunter22".to_string()];
        let run = Run {
            program: Path::new("rclone"),
            args: Vec::new(),
            config_file: Some(Path::new("/etc/mltb/rclone.conf")),
            secrets: &secrets,
        };
        let text = run.scrub(
            "Failed to load config file \"/etc/mltb/rclone.conf\": token hunter22 for :webdav,pass='x':",
        );
        assert_eq!(text, "Failed to load config file \"<rclone config>\": token *** for :webdav,pass=***:");
    }
}
