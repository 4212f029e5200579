//! Starting the whole bot from its [`Config`]: the store, the Telegram client and
//! scheduler, the egress guard, aria2, the engine, and the [`Bot`]; and stopping it so
//! that every task resumes at the next start.

use std::sync::Arc;

use frankenstein::AsyncTelegramApi;
use mltb_engine::aria2::{Aria2Config, Aria2Downloader, Aria2Endpoint};
use mltb_engine::{
    Downloader, EgressPolicy, EgressProxy, Engine, EngineConfig, LeechDefaults, MirrorDefaults, QueueLimits,
    StandardPlanner,
};
use mltb_store::{AnyBackend, AnyStore, Database, StoreConfig};
use mltb_telegram::Client;
use mltb_telegram::scheduler::Scheduler;

use crate::config::Config;
use crate::{Bot, BotParts, Error};

/// A started bot and what it runs on.
#[derive(Debug)]
pub struct Running {
    /// The bot: [`Bot::run`] it.
    pub bot: Bot<AnyBackend>,
    /// The engine.
    pub engine: Engine<AnyBackend>,
    /// The store.
    pub store: Arc<AnyStore>,
    /// The scheduler every Telegram call goes through.
    pub scheduler: Scheduler,
    /// The Telegram client.
    pub client: Client,
    /// aria2.
    pub downloader: Arc<Aria2Downloader>,
    /// The egress proxy aria2 goes through.
    pub proxy: Arc<EgressProxy>,
    /// The query analyzer every store query goes through.
    pub analyzer: Arc<mltb_query_analyzer::Analyzer>,
    /// The lock on the data directory, held while this runs.
    _lock: DataLock,
}

/// An exclusive `flock` on `<data_dir>/mltb.lock`, held while the bot runs: a second
/// bot on the same data directory is refused, and `mltb-backup restore` refuses to
/// replace the database under a running bot. The kernel drops it when the process dies.
/// Dropping unlocks before closing: a child forked by another thread (aria2c, rclone)
/// holds a copy of the file until its `exec`, and the lock would outlive the drop.
#[derive(Debug)]
struct DataLock {
    file: std::fs::File,
}

impl Drop for DataLock {
    fn drop(&mut self) {
        // Failing to unlock leaves the close to release it, as before.
        let _ = rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock);
    }
}

/// The lock file's name in the data directory (`mltb-backup` checks the same file).
pub const DATA_LOCK: &str = "mltb.lock";

impl DataLock {
    fn take(data_dir: &std::path::Path) -> Result<Self, Error> {
        let path = data_dir.join(DATA_LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Start(format!("cannot open {}: {e}", path.display())))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Self { file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Start(format!(
                "another mltb is running on the data directory {} (it holds {}); stop it first, or give this one another data_dir",
                data_dir.display(),
                path.display()
            ))),
            Err(e) => Err(Error::Start(format!("cannot lock {}: {e}", path.display()))),
        }
    }
}

/// Skew from which this instance's clock is worth a warning: the boards show times to
/// the second.
const CLOCK_SKEW_WARNING_MS: u64 = 1_000;

/// Judges this instance's clock against the database server's (`skew_ms`: the server's
/// ahead of ours). Leases are judged by the server's clock, so skew never lets one
/// instance take another's live tasks; it does shift the times this instance stamps
/// rows with, which boards drawn by another instance compare with their own clock. A
/// second or more is worth a warning.
fn judge_clock_skew(skew_ms: i64) -> Option<String> {
    let off = skew_ms.unsigned_abs();
    (off >= CLOCK_SKEW_WARNING_MS).then(|| {
        format!(
            "this instance's clock is {off} ms {} the database server's: leases are judged by the server's clock and \
             are not affected, but the times this instance stamps (a task's start and end, elapsed times on the \
             boards) are off by as much; keep the clocks in sync (NTP)",
            if skew_ms > 0 { "behind" } else { "ahead of" }
        )
    })
}

/// Starts everything `config` describes. Needs the bot token (`MLTB_BOT_TOKEN`); asks
/// Telegram who the bot is (`getMe`), so a wrong token fails here, clearly.
pub async fn start(config: Config) -> Result<Running, Error> {
    start_observed(config, Arc::new(crate::NoObserver)).await
}

/// [`start`], telling `observer` of command rejections and bytes moved (the binary turns
/// them into metrics).
pub async fn start_observed(config: Config, observer: Arc<dyn crate::Observer>) -> Result<Running, Error> {
    let token = config.secrets.bot_token.clone().ok_or_else(|| {
        Error::Config(
            "MLTB_BOT_TOKEN (or MLTB_BOT_TOKEN_FILE) is not set; get a token from @BotFather".into(),
        )
    })?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        Error::Start(format!("cannot create the data directory {}: {e}", config.data_dir.display()))
    })?;
    let lock = DataLock::take(&config.data_dir)?;

    let database = match &config.secrets.database_url {
        Some(url) => Database::Postgres(url.expose().to_owned()),
        None => Database::Sqlite(config.sqlite_path()),
    };
    let analyzer =
        Arc::new(mltb_query_analyzer::Analyzer::new(mltb_query_analyzer::AnalyzerConfig::default()));
    let store_config = StoreConfig::new()
        .sink(analyzer.clone())
        .cache_ttl(config.cache.ttl.0)
        .cache_bytes(usize::try_from(config.cache.bytes.0).unwrap_or(usize::MAX))
        // Continuous protection's replicator is then the only checkpointer of the log.
        .external_checkpoints(config.continuous_protection());
    let store_config = match &config.instance.id {
        Some(id) => store_config.instance(id.clone()),
        None => store_config,
    };
    let store = Arc::new(AnyStore::open(&database, store_config).await.map_err(|e| {
        Error::Start(format!(
            "cannot open the database: {}",
            crate::logging::Redactor::for_config(&config).redact(&e.to_string())
        ))
    })?);

    let client = Client::builder(token.expose())
        .api_url(&config.telegram.api_url)
        .build()
        .map_err(|e| Error::Config(format!("telegram: {e}")))?;
    let me = client
        .get_me()
        .await
        .map_err(|e| Error::Start(format!("Telegram did not accept the bot token (getMe): {e}")))?
        .result;
    let username = me.username.unwrap_or_default();
    let mut scheduler = Scheduler::builder();
    if let Some(url) = &config.secrets.redis_url {
        // Every instance of this bot on this Redis shares Telegram's limits.
        let shared = crate::limits::SharedTelegramLimits::new(
            url.expose(),
            me.id,
            mltb_telegram::scheduler::Limits::default(),
        )
        .map_err(|e| Error::Config(crate::logging::Redactor::for_config(&config).redact(&e.to_string())))?;
        scheduler = scheduler.shared_limits(Arc::new(shared));
    }
    let scheduler = scheduler.build(client.clone());

    let mut policy = EgressPolicy::builder().schemes(config.downloads.schemes.iter().cloned());
    for entry in &config.downloads.allow {
        policy = policy.allow(entry.clone());
    }
    let policy = policy.build().map_err(|e| Error::Config(format!("downloads.allow: {e}")))?;
    let proxy = Arc::new(
        EgressProxy::start(policy.clone())
            .await
            .map_err(|e| Error::Start(format!("the egress proxy: {e}")))?,
    );
    let downloader = Arc::new(if config.downloads.aria2_endpoints.is_empty() {
        let aria2 = Aria2Config::new(config.data_dir.join("aria2"))
            .program(&config.downloads.aria2c)
            .egress(proxy.clone());
        Aria2Downloader::supervised(aria2).await.map_err(|e| Error::Start(format!("aria2c: {e}")))?
    } else {
        let mut endpoints = Vec::new();
        for e in &config.downloads.aria2_endpoints {
            let secret = match &e.secret_env {
                Some(var) => std::env::var(var).map_err(|_| {
                    Error::Config(format!(
                        "downloads.aria2_endpoints {}: the variable {var} named in secret_env is not set",
                        e.name
                    ))
                })?,
                None => String::new(),
            };
            let endpoint = Aria2Endpoint::new(e.name.clone(), e.url.clone(), secret);
            endpoints.push(if e.unguarded {
                tracing::warn!(
                    endpoint = %e.name,
                    "aria2 endpoint without the egress proxy: its links are checked when submitted, not redirects or later DNS answers"
                );
                endpoint
            } else {
                endpoint.egress(proxy.clone())
            });
        }
        let strategy = "round_robin".parse().map_err(|e| Error::Config(format!("aria2 balancer: {e}")))?;
        Aria2Downloader::endpoints(endpoints, strategy)
            .await
            .map_err(|e| Error::Start(format!("aria2 endpoints: {e}")))?
    });

    let mut leech = LeechDefaults::for_limit(config.upload_limit()).dump_chat(config.leech.dump_chat);
    leech.split_size = config.leech_split_size();
    let mut mirror =
        MirrorDefaults::default().program(&config.mirror.rclone).flags(config.mirror.flags.iter().cloned());
    if let Some(dest) = &config.mirror.destination {
        mirror = mirror.destination(dest.clone());
    }
    if let Some(file) = &config.secrets.rclone_config {
        mirror = mirror.config_file(file.expose());
    }
    let planner = Arc::new(StandardPlanner::new(scheduler.clone(), store.clone(), leech, mirror));
    let q = &config.queue;
    let mut limits = QueueLimits::new().min_free_disk(q.min_free_disk.0);
    if let Some(n) = q.all {
        limits = limits.all(n);
    }
    if let Some(n) = q.download {
        limits = limits.download(n);
    }
    if let Some(n) = q.upload {
        limits = limits.upload(n);
    }
    if let Some(n) = q.per_user {
        limits = limits.per_user(n);
    }
    let mut engine_config = EngineConfig::new(config.download_dir())
        .egress(Arc::new(policy))
        .limits(limits)
        .keep_failed(q.keep_failed)
        .seven_zip(&config.downloads.seven_zip);
    if config.instance.id.is_some() {
        let lease = config.instance.lease.0;
        match store.clock_skew_ms().await {
            Ok(Some(skew)) => {
                if let Some(warning) = judge_clock_skew(skew) {
                    tracing::warn!(skew_ms = skew, "{warning}");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the database server's clock"),
        }
        engine_config = engine_config.cluster(mltb_engine::Cluster::new(lease, config.instance.most));
    }
    let dl: Arc<dyn Downloader> = downloader.clone();
    let engine = Engine::start(store.clone(), dl, planner, engine_config)
        .await
        .map_err(|e| Error::Start(format!("the engine: {e}")))?;
    let (config_key, data_dir) = (config.secrets.callback_key.clone(), config.data_dir.clone());
    let bot = Bot::new(
        BotParts::new(
            config,
            store.clone(),
            engine.clone(),
            client.clone(),
            scheduler.clone(),
            username,
            signing_key(&config_key, &data_dir)?,
        )
        .observer(observer),
    )?;
    Ok(Running { bot, engine, store, scheduler, client, downloader, proxy, analyzer, _lock: lock })
}

impl Running {
    /// Stops the engine (tasks keep their state and resume at the next start), the
    /// scheduler (after what is queued) and the store (after pending writes).
    pub async fn shutdown(self) {
        self.engine.shutdown().await;
        self.scheduler.shutdown().await;
        self.store.close().await;
        if let Ok(downloader) = Arc::try_unwrap(self.downloader) {
            downloader.shutdown().await;
        }
    }
}

/// The status board's signing key: `MLTB_CALLBACK_KEY` (at least 32 bytes), else 32 random
/// bytes kept in `<data_dir>/callback.key` (mode 0600), so that buttons stay valid across
/// restarts.
fn signing_key(
    configured: &Option<crate::config::Secret>,
    data_dir: &std::path::Path,
) -> Result<Vec<u8>, Error> {
    if let Some(key) = configured {
        let bytes = key.expose().as_bytes().to_vec();
        if bytes.len() < 32 {
            return Err(Error::Config(format!(
                "MLTB_CALLBACK_KEY: expected at least 32 bytes, got {}",
                bytes.len()
            )));
        }
        return Ok(bytes);
    }
    let path = data_dir.join("callback.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= 32 => return Ok(bytes),
        Ok(_) => {
            return Err(Error::Start(format!(
                "{} is shorter than 32 bytes; delete it to make a new one",
                path.display()
            )));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::Start(format!("cannot read {}: {e}", path.display())));
        }
        Err(_) => {}
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::Start(format!("no randomness for the signing key: {e}")))?;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::Start(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::Start(format!("cannot write {}: {e}", path.display())))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_skew_of_a_second_warns_and_never_refuses_to_start() {
        assert_eq!(judge_clock_skew(0), None);
        assert_eq!(judge_clock_skew(-999), None);
        let warned = judge_clock_skew(1_000).expect("a second warns");
        assert!(warned.contains("1000 ms behind") && warned.contains("NTP"), "{warned}");
        for skew in [-15_000, i64::MIN] {
            let warned = judge_clock_skew(skew).expect("only ever a warning");
            assert!(warned.contains("ahead of") && warned.contains("not affected"), "{warned}");
        }
    }

    #[test]
    fn the_data_lock_is_exclusive_and_released_on_drop_while_a_copy_of_its_descriptor_lives() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataLock::take(dir.path()).unwrap();
        let e = DataLock::take(dir.path()).unwrap_err();
        assert!(e.to_string().contains("another mltb is running"), "{e}");
        // A child forked by another thread holds such a copy until its exec.
        let copy = held.file.try_clone().unwrap();
        drop(held);
        drop(DataLock::take(dir.path()).expect("released although a copy is open"));
        drop(copy);
    }
}
