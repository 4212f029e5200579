//! The bot's log: to stderr and to a file (the one `/log` sends), at the config's level,
//! with every secret the bot knows replaced by `[redacted]` before a line is written.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::Config;

/// A log file larger than this at start is moved to `<file>.1` (one old file is kept).
const ROTATE_BYTES: u64 = 10 << 20;
/// What `/log` sends at most: the end of the file.
pub const TAIL_BYTES: u64 = 256 << 10;

/// Replaces known secrets in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<String>>,
}

impl Redactor {
    /// Redacts the config's secrets (and the password of a URL among them).
    pub fn for_config(config: &Config) -> Self {
        let s = &config.secrets;
        Self::new(
            [&s.bot_token, &s.api_token, &s.database_url, &s.redis_url, &s.callback_key]
                .into_iter()
                .flatten()
                .map(crate::config::Secret::expose),
        )
    }

    /// Redacts `secrets`, and the password of each that is a URL. Values shorter than 4
    /// bytes are left alone (they would redact ordinary text).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = Vec::new();
        for value in secrets {
            if let Ok(u) = url::Url::parse(value)
                && let Some(p) = u.password()
                && p.len() >= 4
            {
                out.push(p.to_owned());
            }
            if value.len() >= 4 {
                out.push(value.to_owned());
            }
        }
        let mut secrets = out;
        // Longest first, so that a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets: Arc::new(secrets) }
    }

    /// `text` with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// Writes each buffer to stderr and to the log file, redacted.
#[derive(Debug, Clone)]
struct Sink {
    file: Option<Arc<Mutex<std::fs::File>>>,
    redactor: Redactor,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = self.redactor.redact(&String::from_utf8_lossy(buf));
        let _ = io::stderr().write_all(text.as_bytes());
        if let Some(file) = &self.file {
            let mut f = file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f.write_all(text.as_bytes())?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;
    fn make_writer(&'a self) -> Sink {
        self.clone()
    }
}

/// Starts logging for the process (once; a second call changes nothing). Returns the
/// redactor, for what else the bot shows (`/log`).
pub fn init(config: &Config) -> Result<Redactor, crate::Error> {
    let level = config.log.level.trim();
    let filter: Targets = level
        .parse()
        .map_err(|e| crate::Error::Config(format!("log.level: expected a level such as info or a filter such as info,mltb_engine=debug, got {level:?}: {e}")))?;
    let redactor = Redactor::for_config(config);
    let path = config.log_file();
    let file = open_log(&path)
        .map_err(|e| crate::Error::Start(format!("cannot open the log file {}: {e}", path.display())))?;
    let sink = Sink { file: Some(Arc::new(Mutex::new(file))), redactor: redactor.clone() };
    let layer = tracing_subscriber::fmt::layer().with_writer(sink).with_ansi(false).with_target(true);
    let _ = tracing_subscriber::registry().with(layer).with(filter).try_init();
    Ok(redactor)
}

fn open_log(path: &Path) -> io::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > ROTATE_BYTES) {
        let mut old: PathBuf = path.to_path_buf().into_os_string().into();
        old.as_mut_os_string().push(".1");
        std::fs::rename(path, old)?;
    }
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

/// The last [`TAIL_BYTES`] of the log file, from a line start, redacted.
pub fn tail(path: &Path, redactor: &Redactor) -> io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let text = if start > 0 { text.split_once('\n').map_or("", |(_, rest)| rest) } else { &text };
    Ok(redactor.redact(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    #[test]
    fn secrets_and_url_passwords_are_redacted() {
        let env = Env::from_pairs([
            ("MLTB_OWNER_ID", "1"),
            ("MLTB_BOT_TOKEN", "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"),
            ("MLTB_DATABASE_URL", "postgres://mltb:hunter2hunter2@db/mltb"),
        ]);
        let config = Config::from_toml("", &env).unwrap();
        let r = Redactor::for_config(&config);
        let line = "GET https://api.telegram.org/bot123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11/getMe; pw hunter2hunter2";
        let out = r.redact(line);
        assert!(!out.contains("ABC-DEF") && !out.contains("hunter2"), "{out}");
        assert!(out.contains("[redacted]"));
    }

    #[test]
    fn redaction_removes_the_url_and_its_password() {
        let url = "postgres://u:hunter2@127.0.0.1:1/db";
        let r = Redactor::new([url]);
        assert_eq!(r.redact(&format!("failed: {url}")), "failed: [redacted]");
        assert_eq!(r.redact("auth failed for hunter2"), "auth failed for [redacted]");
    }

    #[test]
    fn the_tail_starts_at_a_line_and_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mltb.log");
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("line {i} token 123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11\n"));
        }
        std::fs::write(&path, &text).unwrap();
        let env = Env::from_pairs([
            ("MLTB_OWNER_ID", "1"),
            ("MLTB_BOT_TOKEN", "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"),
        ]);
        let r = Redactor::for_config(&Config::from_toml("", &env).unwrap());
        let tail = tail(&path, &r).unwrap();
        assert!(
            tail.starts_with("line ") && tail.ends_with("line 19999 token [redacted]\n"),
            "{}",
            &tail[..80]
        );
        assert!(tail.len() as u64 <= TAIL_BYTES && !tail.contains("ABC-DEF"));
    }
}
