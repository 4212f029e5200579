//! Secrets read from a file named by a `_FILE` variable (a Docker or Kubernetes secret),
//! as the bot and `mltb-backup` read the store's database URL and the bot's other
//! secrets: one rule for every program that opens the store.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// The most a secret file may hold: far more than any token, URL or rclone config.
pub const MAX_FILE: u64 = 1 << 20;

/// The secret in the file at `path`: a regular file (a FIFO or a device such as
/// `/dev/zero` would block or never end) of at most [`MAX_FILE`] bytes, its text without
/// one trailing line end (`\n` or `\r\n`), which must leave something. The error says
/// which file and why, and never holds the file's text.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("url");
/// std::fs::write(&path, "postgres://mltb@db/mltb\n")?;
/// let path = path.display().to_string();
/// assert_eq!(mltb_store::secret::read_file(&path).unwrap(), "postgres://mltb@db/mltb");
/// std::fs::write(&path, "\r\n")?;
/// assert!(mltb_store::secret::read_file(&path).unwrap_err().contains("is empty"));
/// assert!(mltb_store::secret::read_file("/dev/zero").unwrap_err().contains("not a regular file"));
/// std::fs::write(&path, vec![b'x'; mltb_store::secret::MAX_FILE as usize + 1])?;
/// assert!(mltb_store::secret::read_file(&path).unwrap_err().contains("more than 1048576 bytes"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_file(path: &str) -> Result<String, String> {
    let cannot = |e: std::io::Error| format!("cannot read the secret file {path}: {e}");
    // Opened without waiting (opening a FIFO would wait for a writer) and judged by what
    // was opened, so that nothing put in the file's place after a check is read.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed())
        .open(path)
        .map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(format!("the secret file {path} is not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_FILE + 1).read_to_string(&mut text).map_err(cannot)?;
    if text.len() as u64 > MAX_FILE {
        return Err(format!(
            "the secret file {path} holds more than {MAX_FILE} bytes; a secret file holds one secret"
        ));
    }
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(format!("the secret file {path} is empty"));
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO is refused at once: opening it for reading would wait for a writer.
    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("secret");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.display().to_string();
        std::thread::spawn(move || tx.send(read_file(&path)));
        let answer = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("read_file returns");
        assert!(answer.unwrap_err().contains("is not a regular file"));
    }
}
