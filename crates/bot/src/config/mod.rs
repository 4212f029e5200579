//! The bot's configuration: one TOML file, every key optional but the owner's id, with
//! `MLTB_…` environment overrides and secrets only from the environment.
//!
//! `docs/configuration.md` documents every key, and `config.example.toml` at the
//! repository's root is a commented file with every default.
//!
//! - A key `k` of section `[s]` is overridden by `MLTB_S_K` (upper case), a top-level key
//!   by `MLTB_K`: `MLTB_OWNER_ID=123`, `MLTB_QUEUE_ALL=4`, `MLTB_LEECH_SPLIT_SIZE=2000MiB`.
//!   Values are read as TOML where the key is not text (`MLTB_AUTH_SUDO_USERS=[1, 2]`).
//! - Secrets (the bot token, the API token, the database and Redis URLs, the rclone
//!   config path, the button-signing key) come only from `MLTB_…` variables or from the
//!   files that `MLTB_…_FILE` variables name; the config file may not hold them. They
//!   are [`Secret`]s, which never print.
//! - With no file and only `MLTB_BOT_TOKEN` and `MLTB_OWNER_ID` set, the defaults are the
//!   embedded ones: SQLite in `./data`, caches in memory only, an `aria2c` the bot spawns,
//!   and the cloud Bot API's 50 MB leech split.
//!
//! ```
//! use mltb_bot::config::{Config, Env};
//!
//! let env = Env::from_pairs([("MLTB_BOT_TOKEN", "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"), ("MLTB_OWNER_ID", "42")]);
//! let config = Config::from_toml("[queue]\nall = 4\n", &env).unwrap();
//! assert_eq!(config.owner_id, 42);
//! assert_eq!(config.queue.all, Some(4));
//! assert_eq!(config.leech_split_size(), 50_000_000);
//! assert_eq!(format!("{:?}", config.secrets.bot_token), "Some([redacted])");
//! ```

mod secret;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use self::secret::{SECRET_VARS, Secret, Secrets};
pub use self::values::{QuotaText, Size, Span};

/// The cloud Bot API's upload limit: 50 MB.
pub const CLOUD_UPLOAD_LIMIT: u64 = 50_000_000;
/// A local Bot API server's upload limit: 2000 MiB.
pub const LOCAL_UPLOAD_LIMIT: u64 = 2000 * 1024 * 1024;

/// The environment the config reads: `MLTB_…` variables.
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// This process's `MLTB_…` variables (a value that is not UTF-8 is read lossily).
    pub fn from_process() -> Self {
        Self(
            std::env::vars_os()
                .filter_map(|(k, v)| {
                    let k = k.to_str()?.to_owned();
                    k.starts_with("MLTB_").then(|| (k, v.to_string_lossy().into_owned()))
                })
                .collect(),
        )
    }

    /// Exactly these variables (for tests and embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

/// One problem with the configuration: the key or variable, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key (`queue.all`), variable (`MLTB_QUEUE_ALL`) or file it concerns.
    pub key: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found, so that one run shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the configuration has {} problem(s):", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The bot's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The owner's Telegram user id (required; `MLTB_OWNER_ID`).
    pub owner_id: i64,
    /// Where the bot keeps its database, downloads and logs (default `./data`).
    pub data_dir: PathBuf,
    /// How the bot talks to Telegram.
    pub telegram: TelegramSection,
    /// Who may use the bot, besides the owner.
    pub auth: AuthSection,
    /// Command quotas per role.
    pub commands: CommandsSection,
    /// The database.
    pub store: StoreSection,
    /// `[instance]`: several instances of one bot on one database.
    pub instance: InstanceSection,
    /// The in-memory cache (and Redis, when `MLTB_REDIS_URL` is set).
    pub cache: CacheSection,
    /// Downloads: aria2 and the egress guard.
    pub downloads: DownloadsSection,
    /// Queue limits.
    pub queue: QueueSection,
    /// Leech (uploads to Telegram).
    pub leech: LeechSection,
    /// Mirror (uploads through rclone).
    pub mirror: MirrorSection,
    /// The live status board.
    pub status: StatusSection,
    /// `[backup]`
    pub backup: BackupSection,
    /// The HTTP API.
    pub api: ApiSection,
    /// Logging.
    pub log: LogSection,
    /// Secrets, from the environment only.
    #[serde(skip)]
    pub secrets: Secrets,
    /// `MLTB_…` variables that name no key (a typo, or another program's).
    #[serde(skip)]
    pub unknown_vars: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            owner_id: 0,
            data_dir: PathBuf::from("./data"),
            telegram: TelegramSection::default(),
            auth: AuthSection::default(),
            commands: CommandsSection::default(),
            store: StoreSection::default(),
            instance: InstanceSection::default(),
            cache: CacheSection::default(),
            downloads: DownloadsSection::default(),
            queue: QueueSection::default(),
            leech: LeechSection::default(),
            mirror: MirrorSection::default(),
            status: StatusSection::default(),
            backup: BackupSection::default(),
            api: ApiSection::default(),
            log: LogSection::default(),
            secrets: Secrets::default(),
            unknown_vars: Vec::new(),
        }
    }
}

/// `[telegram]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TelegramSection {
    /// The Bot API's base URL (default `https://api.telegram.org`); a local
    /// `telegram-bot-api` server's URL lifts the upload limit to 2000 MiB.
    pub api_url: String,
    /// Whether `api_url` is a local Bot API server (default false).
    pub local_api: bool,
    /// A suffix every command must carry (`/mirror1` with suffix `1`), so that several
    /// bots in one group each answer their own (default none).
    pub command_suffix: String,
    /// How long one `getUpdates` long poll waits (default 30 s).
    pub poll_timeout: Span,
}

impl Default for TelegramSection {
    fn default() -> Self {
        Self {
            api_url: "https://api.telegram.org".into(),
            local_api: false,
            command_suffix: String::new(),
            poll_timeout: Span(std::time::Duration::from_secs(30)),
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthSection {
    /// Chats authorized from the start (more are added with `/auth`).
    pub authorized_chats: Vec<i64>,
    /// Users who are sudo from the start (more are added with `/addsudo`).
    pub sudo_users: Vec<i64>,
    /// After refusing someone, stay silent to them for this long (default 1 h).
    pub refusal_silence: Span,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            authorized_chats: Vec::new(),
            sudo_users: Vec::new(),
            refusal_silence: Span(std::time::Duration::from_secs(3600)),
        }
    }
}

/// `[commands]`: how many commands each role may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CommandsSection {
    /// The owner (default `100/1s`).
    pub owner: QuotaText,
    /// Sudo users (default `20/1s`).
    pub sudo: QuotaText,
    /// Authorized users and chats (default `10/1s`).
    pub authorized: QuotaText,
    /// Everyone else, whose commands are refused (default `1/10s`).
    pub guest: QuotaText,
    /// The most tasks one `/mirror` or `/leech` with `-b` (bulk) or `-i` (multi) creates
    /// (default 50; 1 to 1000). Each task also counts against the sender's quota.
    pub bulk_limit: usize,
}

/// The largest `commands.bulk_limit` accepted.
pub const MAX_BULK_LIMIT: usize = 1000;

impl Default for CommandsSection {
    fn default() -> Self {
        let q = |s: &str| QuotaText::parse(s).unwrap_or_else(|e| unreachable!("built-in quota {s}: {e}"));
        Self {
            owner: q("100/1s"),
            sudo: q("20/1s"),
            authorized: q("10/1s"),
            guest: q("1/10s"),
            bulk_limit: 50,
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreSection {
    /// The SQLite file (default `<data_dir>/mltb.db`); unused when `MLTB_DATABASE_URL`
    /// names a PostgreSQL database.
    pub sqlite_path: Option<PathBuf>,
}

/// `[instance]`: several instances of one bot (same token) on one database
/// (PostgreSQL), each with its own data directory and aria2. One instance polls
/// Telegram at a time; tasks are claimed with leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct InstanceSection {
    /// This instance's id, unique among the running instances (1 to 64 letters,
    /// digits, `.`, `_`, `-`). Unset (the default): one instance runs everything.
    pub id: Option<String>,
    /// How long the poller role and a task's lease hold without renewal: a dead
    /// instance's work is taken over after it (default 15 s; at least 1 s).
    pub lease: Span,
    /// Most tasks this instance runs at once (default 8).
    pub most: usize,
}

impl Default for InstanceSection {
    fn default() -> Self {
        Self { id: None, lease: Span(std::time::Duration::from_secs(15)), most: 8 }
    }
}

/// `[cache]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheSection {
    /// The in-memory cache's budget (default 4 MiB; at least 64 KiB).
    pub bytes: Size,
    /// How long a cached authorization lives (default 5 min).
    pub ttl: Span,
}

impl Default for CacheSection {
    fn default() -> Self {
        Self { bytes: Size(4 << 20), ttl: Span(std::time::Duration::from_secs(300)) }
    }
}

/// The smallest `cache.bytes` accepted: the store's cache splits its budget into up to
/// 64 shards, and each share must hold a few entries (64 bytes and up).
pub const MIN_CACHE_BYTES: u64 = 64 << 10;

/// `[downloads]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DownloadsSection {
    /// Where tasks download to (default `<data_dir>/downloads`).
    pub dir: Option<PathBuf>,
    /// The `aria2c` program the bot spawns (default `aria2c`, found on `PATH`).
    pub aria2c: PathBuf,
    /// The 7-Zip program `-e` and `-z` run (default `7z`, found on `PATH`).
    pub seven_zip: PathBuf,
    /// aria2 daemons to use instead of spawning one; picked per task by the balancer.
    pub aria2_endpoints: Vec<Aria2Endpoint>,
    /// Link schemes accepted (default `http`, `https`, `ftp`; magnets and torrents are
    /// always accepted).
    pub schemes: Vec<String>,
    /// Hosts, IPs or CIDRs allowed although private, loopback or link-local (default
    /// none: such links are refused).
    pub allow: Vec<String>,
}

impl Default for DownloadsSection {
    fn default() -> Self {
        Self {
            dir: None,
            aria2c: PathBuf::from("aria2c"),
            seven_zip: PathBuf::from("7z"),
            aria2_endpoints: Vec::new(),
            schemes: vec!["http".into(), "https".into(), "ftp".into()],
            allow: Vec::new(),
        }
    }
}

/// One configured aria2 daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Aria2Endpoint {
    /// A short name (letters, digits, `-`, `_`), part of each download's id.
    pub name: String,
    /// Its RPC URL, `ws://host:port/jsonrpc`.
    pub url: String,
    /// The environment variable holding its RPC secret, if it has one.
    pub secret_env: Option<String>,
    /// Lets the daemon download without the egress proxy (default `false`). Its downloads
    /// otherwise go through the bot's proxy, which judges every connection, redirects
    /// and DNS answers included, and which listens on a loopback address: only a daemon
    /// on this host reaches it. With `true`, links are checked when submitted, but a
    /// redirect or a later DNS answer may still lead the daemon to a private address.
    #[serde(default)]
    pub unguarded: bool,
}

/// `[queue]`: how many tasks run at once (none of them set: no limit; each one set: at
/// least 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct QueueSection {
    /// Tasks downloading or uploading at once (`queue_all`).
    pub all: Option<usize>,
    /// Tasks downloading at once (`queue_download`).
    pub download: Option<usize>,
    /// Tasks uploading at once (`queue_upload`).
    pub upload: Option<usize>,
    /// Tasks of one user running at once.
    pub per_user: Option<usize>,
    /// Free space to keep on the download disk: below it new downloads wait (default
    /// 1 GiB).
    pub min_free_disk: Size,
    /// Keep a failed task's files (default false: removed).
    pub keep_failed: bool,
    /// Only the owner and sudo users may `/forcestart` a task past the queue limits
    /// (default false: a task's own user may too, as in the Python bot).
    pub force_start_admins_only: bool,
}

impl Default for QueueSection {
    fn default() -> Self {
        Self {
            all: None,
            download: None,
            upload: None,
            per_user: None,
            min_free_disk: Size(1 << 30),
            keep_failed: false,
            force_start_admins_only: false,
        }
    }
}

/// `[leech]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LeechSection {
    /// Files above this are split (default: 50 MB, or 2000 MiB with a local Bot API
    /// server; never above the API's limit).
    pub split_size: Option<Size>,
    /// A chat that receives every upload instead of the task's chat.
    pub dump_chat: Option<i64>,
    /// Send videos as media instead of documents (default false).
    pub as_media: bool,
}

/// `[mirror]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MirrorSection {
    /// The default destination, `remote:path` (a task may name its own with `-up`).
    pub destination: Option<String>,
    /// The `rclone` program (default `rclone`, found on `PATH`).
    pub rclone: PathBuf,
    /// Extra flags for every rclone transfer.
    pub flags: Vec<String>,
}

impl Default for MirrorSection {
    fn default() -> Self {
        Self { destination: None, rclone: PathBuf::from("rclone"), flags: Vec::new() }
    }
}

/// `[status]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StatusSection {
    /// How often a status board is refreshed (default 10 s; at least 3 s).
    pub interval: Span,
    /// Tasks per board page (default 4).
    pub page_size: usize,
}

impl Default for StatusSection {
    fn default() -> Self {
        Self { interval: Span(std::time::Duration::from_secs(10)), page_size: 4 }
    }
}

/// `[backup]`: backups of the SQLite store taken by the bot itself (`mltb-backup`'s
/// library), off unless `every` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BackupSection {
    /// How often (at least 1 min); none: the bot takes no backups (run `mltb-backup`).
    pub every: Option<Span>,
    /// Where backups go (default `<data_dir>/backups`).
    pub dir: Option<PathBuf>,
    /// Keep the newest N (default 3).
    pub keep_last: usize,
    /// Keep the newest of each of the last N days (default 7).
    pub keep_daily: usize,
    /// Keep the newest of each of the last N weeks (default 4).
    pub keep_weekly: usize,
    /// Keep the newest of each of the last N months (default 6).
    pub keep_monthly: usize,
    /// An rclone remote (`offsite:mltb/backups`) each verified backup is also copied to,
    /// pruned by the same policy; none: the backups stay local.
    pub remote: Option<String>,
    /// age recipients (`age1…`, or SSH public keys) the off-site copies are encrypted to;
    /// empty: copied as they are.
    pub encrypt_to: Vec<String>,
    /// Continuous protection: ship the store's write-ahead log to `replica_dir` every
    /// `sync_every`, for a restore to within seconds or to a point in time. Unset: on
    /// exactly when `every` is set. SQLite only.
    pub continuous: Option<bool>,
    /// Where the log is shipped (default `<backup dir>/replica`). Another disk than the
    /// data directory's is what makes it survive that disk.
    pub replica_dir: Option<PathBuf>,
    /// How often the log is shipped (default 1 s, at least 100 ms): the loss window.
    pub sync_every: Span,
    /// How often the replica starts over from a fresh copy of the database (default
    /// 24 h, at least 1 min): bounds what a restore replays.
    pub snapshot_every: Span,
    /// How far back a point-in-time restore can go (default 72 h).
    pub retain: Span,
}

impl Default for BackupSection {
    fn default() -> Self {
        Self {
            every: None,
            dir: None,
            keep_last: 3,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
            remote: None,
            encrypt_to: Vec::new(),
            continuous: None,
            replica_dir: None,
            sync_every: Span(std::time::Duration::from_secs(1)),
            snapshot_every: Span(std::time::Duration::from_secs(24 * 3600)),
            retain: Span(std::time::Duration::from_secs(72 * 3600)),
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiSection {
    /// Serve the HTTP API (default true).
    pub enabled: bool,
    /// Where it listens (default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// A PEM certificate chain: with `tls_key`, the API serves TLS 1.3 only.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Requests per client (default `20/1s burst 40`).
    pub rate: QuotaText,
    /// How often the readiness checks run in the background for the
    /// `mltb_ready_check_ok` metric, besides each `/ready` request (default 15 s; at
    /// least 1 s).
    pub ready_interval: Span,
    /// The address users reach the API at (`https://bot.example.org`), for the links the
    /// bot sends to the torrent file-selection page (`-s`). Default: `http://` (or
    /// `https://` with TLS) and the address the API listens on.
    pub public_url: Option<String>,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            rate: QuotaText::parse("20/1s burst 40").unwrap_or_else(|e| unreachable!("built-in quota: {e}")),
            ready_interval: Span(std::time::Duration::from_secs(15)),
            public_url: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LogSection {
    /// `error`, `warn`, `info`, `debug` or `trace`, or a filter such as
    /// `info,mltb_engine=debug` (default `info`).
    pub level: String,
    /// The log file `/log` sends (default `<data_dir>/mltb.log`).
    pub file: Option<PathBuf>,
}

impl Default for LogSection {
    fn default() -> Self {
        Self { level: "info".into(), file: None }
    }
}

/// What an environment override's text becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Always text.
    Text,
    /// TOML (a number, a boolean, a list), else text.
    Toml,
}

/// Every key, as (section, key, kind); the section is empty for top-level keys.
const KEYS: &[(&str, &str, Kind)] = &[
    ("", "owner_id", Kind::Toml),
    ("", "data_dir", Kind::Text),
    ("telegram", "api_url", Kind::Text),
    ("telegram", "local_api", Kind::Toml),
    ("telegram", "command_suffix", Kind::Text),
    ("telegram", "poll_timeout", Kind::Toml),
    ("auth", "authorized_chats", Kind::Toml),
    ("auth", "sudo_users", Kind::Toml),
    ("auth", "refusal_silence", Kind::Toml),
    ("commands", "owner", Kind::Text),
    ("commands", "sudo", Kind::Text),
    ("commands", "authorized", Kind::Text),
    ("commands", "guest", Kind::Text),
    ("commands", "bulk_limit", Kind::Toml),
    ("store", "sqlite_path", Kind::Text),
    ("instance", "id", Kind::Text),
    ("instance", "lease", Kind::Text),
    ("instance", "most", Kind::Toml),
    ("cache", "bytes", Kind::Toml),
    ("cache", "ttl", Kind::Toml),
    ("downloads", "dir", Kind::Text),
    ("downloads", "aria2c", Kind::Text),
    ("downloads", "seven_zip", Kind::Text),
    ("downloads", "aria2_endpoints", Kind::Toml),
    ("downloads", "schemes", Kind::Toml),
    ("downloads", "allow", Kind::Toml),
    ("queue", "all", Kind::Toml),
    ("queue", "download", Kind::Toml),
    ("queue", "upload", Kind::Toml),
    ("queue", "per_user", Kind::Toml),
    ("queue", "min_free_disk", Kind::Toml),
    ("queue", "keep_failed", Kind::Toml),
    ("queue", "force_start_admins_only", Kind::Toml),
    ("leech", "split_size", Kind::Toml),
    ("leech", "dump_chat", Kind::Toml),
    ("leech", "as_media", Kind::Toml),
    ("mirror", "destination", Kind::Text),
    ("mirror", "rclone", Kind::Text),
    ("mirror", "flags", Kind::Toml),
    ("status", "interval", Kind::Toml),
    ("status", "page_size", Kind::Toml),
    ("backup", "every", Kind::Text),
    ("backup", "dir", Kind::Text),
    ("backup", "keep_last", Kind::Toml),
    ("backup", "keep_daily", Kind::Toml),
    ("backup", "keep_weekly", Kind::Toml),
    ("backup", "keep_monthly", Kind::Toml),
    ("backup", "remote", Kind::Text),
    ("backup", "encrypt_to", Kind::Toml),
    ("backup", "continuous", Kind::Toml),
    ("backup", "replica_dir", Kind::Text),
    ("backup", "sync_every", Kind::Text),
    ("backup", "snapshot_every", Kind::Text),
    ("backup", "retain", Kind::Text),
    ("api", "enabled", Kind::Toml),
    ("api", "bind", Kind::Text),
    ("api", "tls_cert", Kind::Text),
    ("api", "tls_key", Kind::Text),
    ("api", "rate", Kind::Text),
    ("api", "ready_interval", Kind::Toml),
    ("api", "public_url", Kind::Text),
    ("log", "level", Kind::Text),
    ("log", "file", Kind::Text),
];

/// The environment variable that overrides `section.key`.
pub fn env_var(section: &str, key: &str) -> String {
    if section.is_empty() { format!("MLTB_{key}") } else { format!("MLTB_{section}_{key}") }
        .to_ascii_uppercase()
}

/// Every key as `section.key` (or `key` at the top level), with its variable.
pub fn keys() -> impl Iterator<Item = (String, String)> {
    KEYS.iter()
        .map(|(s, k, _)| (if s.is_empty() { (*k).to_owned() } else { format!("{s}.{k}") }, env_var(s, k)))
}

/// Variables that are not overrides but are read by the bot or its scripts.
const OTHER_VARS: &[&str] = &["MLTB_CONFIG"];

impl Config {
    /// Reads the config file at `path` (none: defaults only), then the environment.
    pub fn load(path: Option<&Path>, env: &Env) -> Result<Self, ConfigErrors> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| {
                ConfigErrors(vec![ConfigError::new(
                    p.display().to_string(),
                    format!("cannot read the config file: {e}"),
                )])
            })?,
            None => String::new(),
        };
        let origin = path.map_or_else(|| "the config".to_owned(), |p| p.display().to_string());
        Self::parse(&text, &origin, env)
    }

    /// Reads config text (TOML), then the environment.
    pub fn from_toml(text: &str, env: &Env) -> Result<Self, ConfigErrors> {
        Self::parse(text, "the config", env)
    }

    fn parse(text: &str, origin: &str, env: &Env) -> Result<Self, ConfigErrors> {
        let mut problems = Vec::new();
        let mut table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                return Err(ConfigErrors(vec![ConfigError::new(origin, format!("not valid TOML: {e}"))]));
            }
        };
        refuse_secrets_in_file(&mut table, &mut problems);
        let secrets = Secrets::from_env(env, &mut problems);
        let unknown_vars = apply_env(&mut table, env, &mut problems);
        let mut config: Config = match toml::Value::Table(table).try_into() {
            Ok(c) => c,
            Err(e) => {
                problems.push(ConfigError::new(origin, e.to_string().trim().to_owned()));
                return Err(ConfigErrors(problems));
            }
        };
        config.secrets = secrets;
        config.unknown_vars = unknown_vars;
        config.validate(&mut problems);
        if problems.is_empty() { Ok(config) } else { Err(ConfigErrors(problems)) }
    }

    fn validate(&self, problems: &mut Vec<ConfigError>) {
        let mut bad = |key: &str, message: String| problems.push(ConfigError::new(key, message));
        if self.owner_id <= 0 {
            bad(
                "owner_id",
                "required: your numeric Telegram user id (ask @userinfobot), in the config or MLTB_OWNER_ID"
                    .into(),
            );
        }
        let limit = self.upload_limit();
        if let Some(Size(split)) = self.leech.split_size
            && (split == 0 || split > limit)
        {
            let api = if self.telegram.local_api { "a local Bot API server" } else { "the cloud Bot API" };
            bad(
                "leech.split_size",
                format!("expected 1 byte to {limit} bytes (the upload limit of {api}), got {split}"),
            );
        }
        if let Some(remote) = &self.backup.remote
            && remote.split_once(':').is_none_or(|(name, _)| name.contains('/'))
        {
            bad(
                "backup.remote",
                format!("expected an rclone remote such as offsite:mltb/backups, got {remote:?}"),
            );
        }
        if !self.backup.encrypt_to.is_empty() && self.backup.remote.is_none() {
            bad("backup.encrypt_to", "encrypts the off-site copies: set backup.remote too".into());
        }
        for r in &self.backup.encrypt_to {
            if !r.starts_with("age1") && !r.starts_with("ssh-") {
                bad(
                    "backup.encrypt_to",
                    format!("expected age public keys (age1…) or SSH public keys, got {r:?}"),
                );
            }
        }
        if let Some(id) = &self.instance.id
            && (id.is_empty()
                || id.len() > 64
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
        {
            bad("instance.id", format!("expected 1 to 64 letters, digits, '.', '_' or '-', got {id:?}"));
        }
        if self.instance.lease.0 < std::time::Duration::from_secs(1) {
            bad("instance.lease", format!("expected at least 1s, got {:?}", self.instance.lease.0));
        }
        for (key, limit) in [
            ("queue.all", self.queue.all),
            ("queue.download", self.queue.download),
            ("queue.upload", self.queue.upload),
            ("queue.per_user", self.queue.per_user),
        ] {
            // No task would ever start under a limit of 0.
            if limit == Some(0) {
                bad(key, "expected at least 1, or leave it unset for no limit".into());
            }
        }
        if self.cache.bytes.0 < MIN_CACHE_BYTES {
            bad(
                "cache.bytes",
                format!("expected at least 64KiB ({MIN_CACHE_BYTES} bytes), got {}", self.cache.bytes.0),
            );
        }
        if self.instance.most == 0 {
            bad("instance.most", "expected at least 1 task".into());
        }
        if let Some(url) = &self.api.public_url {
            match url::Url::parse(url) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && u.query().is_none()
                        && u.fragment().is_none() => {}
                _ => bad(
                    "api.public_url",
                    format!(
                        "expected an http:// or https:// address such as https://bot.example.org, got {url:?}"
                    ),
                ),
            }
        }
        if self.api.ready_interval.0 < std::time::Duration::from_secs(1) {
            bad("api.ready_interval", format!("expected at least 1s, got {:?}", self.api.ready_interval.0));
        }
        if self.status.interval.0 < std::time::Duration::from_secs(3) {
            bad(
                "status.interval",
                format!("expected at least 3s (Telegram's edit limits), got {:?}", self.status.interval.0),
            );
        }
        if let Some(every) = self.backup.every
            && every.0 < std::time::Duration::from_secs(60)
        {
            bad("backup.every", format!("expected at least 1m, got {:?}", every.0));
        }
        if self.backup.sync_every.0 < std::time::Duration::from_millis(100) {
            bad("backup.sync_every", format!("expected at least 100ms, got {:?}", self.backup.sync_every.0));
        }
        if self.backup.snapshot_every.0 < std::time::Duration::from_secs(60) {
            bad(
                "backup.snapshot_every",
                format!("expected at least 1m, got {:?}", self.backup.snapshot_every.0),
            );
        }
        if self.backup.continuous == Some(true) && self.secrets.database_url.is_some() {
            bad(
                "backup.continuous",
                "ships SQLite's log; the store is PostgreSQL: use its own WAL archiving (docs/disaster-recovery.md)"
                    .into(),
            );
        }
        if self.status.page_size == 0 || self.status.page_size > 20 {
            bad(
                "status.page_size",
                format!("expected 1 to 20 tasks per page, got {}", self.status.page_size),
            );
        }
        if !(1..=MAX_BULK_LIMIT).contains(&self.commands.bulk_limit) {
            bad(
                "commands.bulk_limit",
                format!("expected 1 to {MAX_BULK_LIMIT} tasks per command, got {}", self.commands.bulk_limit),
            );
        }
        if self.telegram.poll_timeout.0 > std::time::Duration::from_secs(50) {
            bad("telegram.poll_timeout", "expected at most 50s (Telegram's longest long poll)".into());
        }
        if url::Url::parse(&self.telegram.api_url).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
            bad("telegram.api_url", format!("expected an http(s) URL, got {:?}", self.telegram.api_url));
        }
        if !self.telegram.command_suffix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bad("telegram.command_suffix", "expected letters, digits or _ only".into());
        }
        if self.api.tls_cert.is_some() != self.api.tls_key.is_some() {
            bad("api.tls_cert", "tls_cert and tls_key go together: set both for TLS, or neither".into());
        }
        for scheme in &self.downloads.schemes {
            if !matches!(scheme.as_str(), "http" | "https" | "ftp" | "sftp") {
                bad("downloads.schemes", format!("expected http, https, ftp or sftp, got {scheme:?}"));
            }
        }
        for (i, e) in self.downloads.aria2_endpoints.iter().enumerate() {
            let key = format!("downloads.aria2_endpoints[{i}]");
            if e.name.is_empty() || !e.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bad(&key, format!("name: expected letters, digits, - or _, got {:?}", e.name));
            }
            match url::Url::parse(&e.url) {
                Ok(u) if matches!(u.scheme(), "ws" | "wss") => {
                    if !e.unguarded && !is_loopback_host(&u) {
                        bad(
                            &key,
                            format!(
                                "url: {:?} is not on this host, so its downloads cannot go through the egress \
                                 proxy that checks redirects and DNS answers (it listens on a loopback address); \
                                 run the daemon on this host, or set unguarded = true to have its links checked \
                                 only when submitted",
                                e.url
                            ),
                        );
                    }
                }
                _ => bad(&key, format!("url: expected ws://host:port/jsonrpc, got {:?}", e.url)),
            }
        }
        if let Some(t) = &self.secrets.api_token
            && !(16..=512).contains(&t.expose().len())
        {
            bad(
                "MLTB_API_TOKEN",
                format!("expected 16 to 512 bytes (a long random string), got {} bytes", t.expose().len()),
            );
        }
        if let Some(k) = &self.secrets.callback_key
            && k.expose().len() < 32
        {
            bad(
                "MLTB_CALLBACK_KEY",
                format!("expected at least 32 bytes (a long random string), got {} bytes", k.expose().len()),
            );
        }
        if self.log.level.trim().is_empty() {
            bad("log.level", "expected error, warn, info, debug or trace".into());
        }
        if let Some(dest) = &self.mirror.destination
            && let Err(e) = mltb_engine::mirror::MirrorTarget::parse(dest)
        {
            bad("mirror.destination", e.to_string());
        }
    }

    /// The upload limit of the configured Bot API: 2000 MiB for a local server, 50 MB
    /// for the cloud one.
    pub fn upload_limit(&self) -> u64 {
        if self.telegram.local_api { LOCAL_UPLOAD_LIMIT } else { CLOUD_UPLOAD_LIMIT }
    }

    /// The leech split size: the configured one, else the API's upload limit.
    pub fn leech_split_size(&self) -> u64 {
        self.leech.split_size.map_or_else(|| self.upload_limit(), |s| s.0)
    }

    /// The SQLite file.
    pub fn sqlite_path(&self) -> PathBuf {
        self.store.sqlite_path.clone().unwrap_or_else(|| self.data_dir.join("mltb.db"))
    }

    /// Where the bot's own backups go.
    pub fn backup_dir(&self) -> PathBuf {
        self.backup.dir.clone().unwrap_or_else(|| self.data_dir.join("backups"))
    }

    /// Whether the store's log is shipped continuously (`backup.continuous`, or by
    /// default when `backup.every` is set), which needs the SQLite store.
    pub fn continuous_protection(&self) -> bool {
        self.secrets.database_url.is_none() && self.backup.continuous.unwrap_or(self.backup.every.is_some())
    }

    /// Where continuous protection ships the log.
    pub fn replica_dir(&self) -> PathBuf {
        self.backup.replica_dir.clone().unwrap_or_else(|| self.backup_dir().join("replica"))
    }

    /// The download directory.
    pub fn download_dir(&self) -> PathBuf {
        self.downloads.dir.clone().unwrap_or_else(|| self.data_dir.join("downloads"))
    }

    /// The log file.
    pub fn log_file(&self) -> PathBuf {
        self.log.file.clone().unwrap_or_else(|| self.data_dir.join("mltb.log"))
    }

    /// The configuration as TOML, secrets left out (for `mltb --print-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot show the config: {e}\n"))
    }
}

/// The config file may not hold secrets: each key that looks like one is refused, naming
/// the variable to use, and taken out so that the rest of the file is still checked.
fn refuse_secrets_in_file(table: &mut toml::Table, problems: &mut Vec<ConfigError>) {
    fn var_for(key: &str) -> Option<&'static str> {
        SECRET_VARS.iter().find(|(name, _)| *name == key).map(|(_, var)| *var).or(match key {
            "token" => Some("MLTB_BOT_TOKEN"),
            "rclone_config_path" => Some("MLTB_RCLONE_CONFIG"),
            _ => None,
        })
    }
    let mut refuse = |path: String, var: &str| {
        problems.push(ConfigError::new(
            path,
            format!("secrets are read only from the environment: remove it from the file and set {var} (or {var}_FILE)"),
        ));
    };
    table.retain(|key, value| {
        if let Some(var) = var_for(key) {
            refuse(key.to_string(), var);
            return false;
        }
        if let toml::Value::Table(section) = value {
            section.retain(|inner, _| match var_for(inner) {
                Some(var) => {
                    refuse(format!("{key}.{inner}"), var);
                    false
                }
                None => true,
            });
        }
        true
    });
}

/// Applies `MLTB_…` overrides to `table`; returns the variables that name no key.
fn apply_env(table: &mut toml::Table, env: &Env, problems: &mut Vec<ConfigError>) -> Vec<String> {
    let mut unknown = Vec::new();
    for (var, raw) in env.iter() {
        let is_secret =
            SECRET_VARS.iter().any(|(_, s)| var == s || var.strip_suffix("_FILE").is_some_and(|v| v == *s));
        if is_secret || OTHER_VARS.contains(&var.as_str()) {
            continue;
        }
        let Some((section, key, kind)) = KEYS.iter().find(|(s, k, _)| env_var(s, k) == *var) else {
            unknown.push(var.clone());
            continue;
        };
        let value = match kind {
            Kind::Text => toml::Value::String(raw.clone()),
            Kind::Toml => match format!("v = {raw}").parse::<toml::Table>() {
                Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.clone())),
                Err(_) => toml::Value::String(raw.clone()),
            },
        };
        let target = if section.is_empty() {
            &mut *table
        } else {
            let entry =
                table.entry((*section).to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => t,
                _ => {
                    problems.push(ConfigError::new(*section, format!("expected a [{section}] section")));
                    continue;
                }
            }
        };
        target.insert((*key).to_owned(), value);
    }
    unknown
}

#[cfg(test)]
mod tests;

/// Whether `url` names this host: `localhost` or a loopback address.
fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
