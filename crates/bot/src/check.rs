//! `mltb --check`: the config and the environment, checked before the bot starts, each
//! finding with what to do about it.
//!
//! It checks that `aria2c` and `rclone` are present (and their versions), that the data
//! and download directories are writable, the bot token's form (never printing it), that
//! the database can be opened (creating an SQLite file as the bot would) and that Redis
//! answers, when configured. Nothing here installs anything.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::config::Config;

/// How a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but worth a look.
    Warn,
    /// The bot will not work this way.
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How it stands.
    pub status: Status,
    /// What was checked (`aria2c`, `data dir`, …).
    pub what: String,
    /// What was found, and for a warning or failure, what to do.
    pub detail: String,
}

impl Finding {
    fn new(status: Status, what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { status, what: what.into(), detail: detail.into() }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        write!(f, "{tag}  {}: {}", self.what, self.detail)
    }
}

/// Options of a check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Whether a bot token is required (not in the sandbox, which makes its own).
    pub need_token: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self { need_token: true }
    }
}

/// Runs every check.
pub async fn run(config: &Config, options: CheckOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    for var in &config.unknown_vars {
        out.push(Finding::new(
            Status::Warn,
            "environment",
            format!("{var} names no config key (a typo?); see docs/configuration.md for the MLTB_ variables"),
        ));
    }
    out.push(token(config, options));
    if config.downloads.aria2_endpoints.is_empty() {
        out.push(program(&config.downloads.aria2c, &["--version"], "aria2c", "aria2").await);
    } else {
        for e in &config.downloads.aria2_endpoints {
            out.push(endpoint(&e.name, &e.url).await);
        }
    }
    out.push(program(&config.mirror.rclone, &["version"], "rclone", "rclone").await);
    // Only -e and -z need 7-Zip: its absence is a warning.
    let mut seven = program(&config.downloads.seven_zip, &["i"], "7z", "p7zip-full").await;
    if seven.status == Status::Fail {
        seven.status = Status::Warn;
        seven.detail.push_str("; until then -e (extract) and -z (zip) fail");
    }
    out.push(seven);
    if let Some(path) = &config.secrets.rclone_config {
        let path = Path::new(path.expose());
        out.push(match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Finding::new(Status::Ok, "rclone config", "MLTB_RCLONE_CONFIG names a readable file"),
            _ => Finding::new(
                Status::Fail,
                "rclone config",
                "MLTB_RCLONE_CONFIG names no readable file; point it at your rclone.conf (`rclone config file` shows it)",
            ),
        });
    }
    out.push(writable("data dir", &config.data_dir));
    out.push(writable("download dir", &config.download_dir()));
    out.push(free_space(config));
    out.push(database(config).await);
    if let Some(url) = &config.secrets.redis_url {
        out.push(redis(url.expose()).await);
    }
    for (what, path) in [("api.tls_cert", &config.api.tls_cert), ("api.tls_key", &config.api.tls_key)] {
        if let Some(p) = path {
            out.push(match std::fs::read(p) {
                Ok(b) if String::from_utf8_lossy(&b).contains("-----BEGIN ") => {
                    Finding::new(Status::Ok, what, format!("{} is a PEM file", p.display()))
                }
                Ok(_) => Finding::new(Status::Fail, what, format!("{} is not a PEM file", p.display())),
                Err(e) => Finding::new(Status::Fail, what, format!("cannot read {}: {e}", p.display())),
            });
        }
    }
    if config.api.enabled && config.secrets.api_token.is_none() {
        out.push(Finding::new(
            Status::Warn,
            "api token",
            "MLTB_API_TOKEN is not set: /api/v1/* refuses every request (/health, /ready and /metrics still answer)",
        ));
    }
    out
}

/// Whether `token` has the form of a Bot API token: the bot's numeric id, `:`, and at
/// least 30 characters of `A-Z a-z 0-9 _ -`.
pub fn token_form_ok(token: &str) -> bool {
    let Some((id, secret)) = token.split_once(':') else { return false };
    !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && secret.len() >= 30
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn token(config: &Config, options: CheckOptions) -> Finding {
    match &config.secrets.bot_token {
        Some(t) if token_form_ok(t.expose()) => {
            let id = t.expose().split(':').next().unwrap_or_default();
            Finding::new(Status::Ok, "bot token", format!("well formed (bot id {id})"))
        }
        Some(_) => Finding::new(
            Status::Fail,
            "bot token",
            "MLTB_BOT_TOKEN is not of the form 123456789:AAE… (digits, a colon, then at least 30 letters, digits, _ or -); copy it again from @BotFather",
        ),
        None if options.need_token => Finding::new(
            Status::Fail,
            "bot token",
            "MLTB_BOT_TOKEN (or MLTB_BOT_TOKEN_FILE) is not set; get a token from @BotFather",
        ),
        None => Finding::new(Status::Ok, "bot token", "not needed here"),
    }
}

/// Runs `program args` and reports its first output line, or how to install it.
async fn program(program: &Path, args: &[&str], what: &str, package: &str) -> Finding {
    let run = tokio::process::Command::new(program).args(args).kill_on_drop(true).output();
    match tokio::time::timeout(Duration::from_secs(10), run).await {
        Ok(Ok(out)) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default().to_owned();
            Finding::new(Status::Ok, what, format!("{first} ({})", program.display()))
        }
        Ok(Ok(out)) => Finding::new(
            Status::Fail,
            what,
            format!(
                "`{} {}` exited with {}; reinstall it: sudo apt-get install {package}",
                program.display(),
                args.join(" "),
                out.status
            ),
        ),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Finding::new(
            Status::Fail,
            what,
            format!(
                "{} was not found; install it: sudo apt-get install {package} (or set its path in the config)",
                program.display()
            ),
        ),
        Ok(Err(e)) => Finding::new(Status::Fail, what, format!("cannot run {}: {e}", program.display())),
        Err(_) => Finding::new(
            Status::Fail,
            what,
            format!("`{} {}` did not answer within 10 s", program.display(), args.join(" ")),
        ),
    }
}

async fn endpoint(name: &str, url: &str) -> Finding {
    let what = format!("aria2 endpoint {name}");
    let Some(addr) = url::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
    else {
        return Finding::new(Status::Fail, what, format!("{url} is not a ws:// URL with a host"));
    };
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Finding::new(Status::Ok, what, format!("{addr} accepts connections")),
        Ok(Err(e)) => Finding::new(
            Status::Fail,
            what,
            format!("cannot connect to {addr}: {e}; is aria2c running with --enable-rpc?"),
        ),
        Err(_) => Finding::new(Status::Fail, what, format!("{addr} did not answer within 5 s")),
    }
}

/// Creates `dir` if missing, then writes and removes a file in it.
fn writable(what: &str, dir: &Path) -> Finding {
    let probe = dir.join(".mltb-check");
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => Finding::new(Status::Ok, what, format!("{} is writable", dir.display())),
        Err(e) => Finding::new(
            Status::Fail,
            what,
            format!(
                "cannot write in {}: {e}; create it and give the bot's user write access, or set another path",
                dir.display()
            ),
        ),
    }
}

fn free_space(config: &Config) -> Finding {
    let dir = config.download_dir();
    match rustix::fs::statvfs(&dir) {
        Ok(s) => {
            let free = s.f_bavail.saturating_mul(s.f_frsize);
            let min = config.queue.min_free_disk.0;
            let shown = mltb_telegram::format::human_size(free);
            if free < min {
                Finding::new(
                    Status::Warn,
                    "free disk",
                    format!(
                        "{shown} free in {}, below queue.min_free_disk ({}): downloads will wait",
                        dir.display(),
                        mltb_telegram::format::human_size(min)
                    ),
                )
            } else {
                Finding::new(Status::Ok, "free disk", format!("{shown} free in {}", dir.display()))
            }
        }
        Err(e) => Finding::new(
            Status::Fail,
            "free disk",
            format!("cannot read the free space of {}: {e}", dir.display()),
        ),
    }
}

async fn database(config: &Config) -> Finding {
    let store_config = mltb_store::StoreConfig::new();
    match &config.secrets.database_url {
        Some(url) => match mltb_store::PostgresStore::connect_postgres(url.expose(), store_config).await {
            Ok(_) => Finding::new(
                Status::Ok,
                "database",
                "PostgreSQL (MLTB_DATABASE_URL) answers and its schema is current",
            ),
            Err(e) => Finding::new(
                Status::Fail,
                "database",
                format!(
                    "cannot use the PostgreSQL database in MLTB_DATABASE_URL: {}",
                    crate::logging::Redactor::new([url.expose()]).redact(&e.to_string())
                ),
            ),
        },
        None => {
            let path = config.sqlite_path();
            match mltb_store::SqliteStore::open_sqlite(&path, store_config).await {
                Ok(_) => Finding::new(
                    Status::Ok,
                    "database",
                    format!("SQLite at {} opens and its schema is current", path.display()),
                ),
                Err(e) => Finding::new(
                    Status::Fail,
                    "database",
                    format!("cannot open SQLite at {}: {e}", path.display()),
                ),
            }
        }
    }
}

async fn redis(url: &str) -> Finding {
    let addr = url::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port().unwrap_or(6379))));
    let Some(addr) = addr else {
        return Finding::new(Status::Fail, "redis", "MLTB_REDIS_URL is not a redis://host:port URL");
    };
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Finding::new(Status::Ok, "redis", format!("{addr} accepts connections")),
        Ok(Err(e)) => Finding::new(Status::Fail, "redis", format!("cannot connect to {addr}: {e}")),
        Err(_) => Finding::new(Status::Fail, "redis", format!("{addr} did not answer within 5 s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_forms() {
        assert!(token_form_ok("123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"));
        for bad in [
            "",
            "123456",
            ":ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
            "12a:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
            "1:short",
            "1:ABC DEF1234ghIkl-zyx57W2v1u123ew11xx",
        ] {
            assert!(!token_form_ok(bad), "{bad}");
        }
    }
}
