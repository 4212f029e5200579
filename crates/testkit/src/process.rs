//! Shared pieces for spawning external programs.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Finds `program` on PATH or fails with an install hint.
pub(crate) fn find_program(program: &'static str, hint: &'static str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or(Error::NotInstalled { program, hint })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Polls `probe` until it succeeds or `timeout` passes, backing off from 5 ms to 100 ms.
///
/// This waits for a condition the program reports itself, so it is synchronisation, not
/// a sleep standing in for it.
pub(crate) async fn wait_ready<F, Fut, T>(program: &'static str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, String>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        match probe().await {
            Ok(value) => return Ok(value),
            Err(detail) if start.elapsed() >= timeout => {
                return Err(Error::NotReady { program, waited: start.elapsed(), detail });
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// The last `max` bytes of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}
