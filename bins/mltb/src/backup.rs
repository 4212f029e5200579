//! The bot's own backups (`[backup]`): `mltb-backup`'s library on a schedule, with the
//! metrics the "backup stale" alert reads.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use mltb_api::Metrics;
use mltb_backup::{BackupOptions, Remote, ReplicaOptions, Retention};
use mltb_bot::config::Config;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Unit;
use tokio_util::sync::CancellationToken;

/// The families one schedule feeds.
#[derive(Clone, Default)]
struct Families {
    last_success: Gauge<f64, AtomicU64>,
    duration: Gauge<f64, AtomicU64>,
    size: Gauge,
    failures: Counter,
    offsite_last_success: Gauge<f64, AtomicU64>,
    offsite_failures: Counter,
}

/// Where the schedule copies each backup off site, and to whom it encrypts it.
struct OffSite {
    remote: Remote,
    encrypt_to: Vec<String>,
}

impl OffSite {
    /// Copies a verified backup (encrypted first when recipients are set), then prunes
    /// the remote by `keep`. Blocking.
    fn copy(&self, file: &std::path::Path, keep: &Retention) -> mltb_backup::Result<String> {
        let at = self.remote.copy_backup(file, &self.encrypt_to, std::path::Path::new("age"))?;
        self.remote.prune(keep, false)?;
        Ok(at)
    }
}

/// Starts backups every `backup.every` until `stop`, when set and the store is SQLite,
/// each copied to `backup.remote` when set. Returns whether a schedule started.
///
/// # Errors
/// `backup.remote` is not an rclone remote.
pub(crate) fn spawn(config: &Config, metrics: &Metrics, stop: CancellationToken) -> Result<bool, String> {
    let Some(every) = config.backup.every.map(|s| s.0) else { return Ok(false) };
    if config.secrets.database_url.is_some() {
        tracing::warn!(
            "backup.every is set but the store is PostgreSQL: back it up with `mltb-backup run --postgres`"
        );
        return Ok(false);
    }
    let offsite = match &config.backup.remote {
        Some(target) => Some(OffSite {
            remote: Remote::new(target)
                .map_err(|e| format!("backup.remote: {e}"))?
                .rclone(&config.mirror.rclone),
            encrypt_to: config.backup.encrypt_to.clone(),
        }),
        None => None,
    };
    let f = Families::default();
    let dir = config.backup_dir();
    // After a restart the last good backup is the newest one on disk, not "never" (0),
    // until this run takes its own: set before the family is first scraped.
    if let Some(ms) = newest_backup_ms(&dir) {
        f.last_success.set(ms as f64 / 1000.0);
    }
    metrics.with_registry(|r| {
        r.register_with_unit(
            "mltb_backup_last_success_timestamp",
            "When the last good backup was taken (Unix time)",
            Unit::Seconds,
            f.last_success.clone(),
        );
        r.register_with_unit(
            "mltb_backup_duration",
            "How long the last good backup took, verification included",
            Unit::Seconds,
            f.duration.clone(),
        );
        r.register_with_unit(
            "mltb_backup_size",
            "The size of the last good backup",
            Unit::Bytes,
            f.size.clone(),
        );
        r.register("mltb_backup_failures", "Backups that failed", f.failures.clone());
        if offsite.is_some() {
            r.register_with_unit(
                "mltb_backup_offsite_last_success_timestamp",
                "When the last backup copied to backup.remote was taken (Unix time)",
                Unit::Seconds,
                f.offsite_last_success.clone(),
            );
            r.register(
                "mltb_backup_offsite_failures",
                "Copies to backup.remote that failed",
                f.offsite_failures.clone(),
            );
        }
    });
    let db = config.sqlite_path();
    let mut keep = Retention::default();
    keep.keep_last = config.backup.keep_last;
    keep.keep_daily = config.backup.keep_daily;
    keep.keep_weekly = config.backup.keep_weekly;
    keep.keep_monthly = config.backup.keep_monthly;
    tokio::spawn(run(db, dir, keep, every, f, offsite.map(std::sync::Arc::new), stop));
    Ok(true)
}

async fn run(
    db: PathBuf,
    dir: PathBuf,
    keep: Retention,
    every: Duration,
    f: Families,
    offsite: Option<std::sync::Arc<OffSite>>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (db, dir) = (db.clone(), dir.clone());
        let done = tokio::task::spawn_blocking(move || {
            let made = mltb_backup::backup(&BackupOptions::new(&db, &dir))?;
            let pruned = mltb_backup::prune(&dir, &keep, false);
            Ok::<_, mltb_backup::Error>((made, pruned))
        })
        .await;
        match done {
            Ok(Ok((made, pruned))) => {
                f.last_success.set(made.manifest.created_unix_ms as f64 / 1000.0);
                f.duration.set(made.took.as_secs_f64());
                f.size.set(i64::try_from(made.bytes).unwrap_or(i64::MAX));
                tracing::info!(path = %made.path.display(), bytes = made.bytes, "backup taken and verified");
                if let Err(e) = pruned {
                    tracing::warn!(error = %e, "old backups were not pruned");
                }
                if let Some(off) = &offsite {
                    let (off, path, taken) = (off.clone(), made.path.clone(), made.manifest.created_unix_ms);
                    let copied = tokio::task::spawn_blocking(move || off.copy(&path, &keep)).await;
                    match copied {
                        Ok(Ok(at)) => {
                            f.offsite_last_success.set(taken as f64 / 1000.0);
                            tracing::info!(to = %at, "backup copied off site");
                        }
                        Ok(Err(e)) => {
                            f.offsite_failures.inc();
                            tracing::warn!(error = %e, "the off-site copy failed; the local backup stays");
                        }
                        Err(e) => {
                            f.offsite_failures.inc();
                            tracing::warn!(error = %e, "the off-site copy task failed");
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                f.failures.inc();
                tracing::warn!(error = %e, "backup failed");
            }
            Err(e) => {
                f.failures.inc();
                tracing::warn!(error = %e, "backup task failed");
            }
        }
    }
}

/// When the newest backup in `dir` whose manifest reads was taken (Unix ms). Backups are
/// verified as they are written, so this is the last good one unless a file was damaged
/// since; `mltb-backup verify` checks that.
fn newest_backup_ms(dir: &std::path::Path) -> Option<u64> {
    match mltb_backup::list(dir) {
        Ok(listed) => {
            listed.iter().filter(|l| l.manifest.is_ok()).map(mltb_backup::Listed::created_unix_ms).max()
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "the backups already there could not be listed");
            None
        }
    }
}

/// Starts continuous protection when the config asks for it (`backup.continuous`, or
/// `backup.every` set): the store's log shipped to `backup.replica_dir` every
/// `backup.sync_every`, with its metrics. The store must have been opened with
/// external checkpoints (the launch does that from the same config). Stop the handle
/// after the bot's store has shut down: its last sync ships the last writes.
///
/// # Errors
/// The replica cannot be set up (a bot running on a log nobody checkpoints would fill
/// its disk, so the start stops).
pub(crate) fn protect(config: &Config, metrics: &Metrics) -> Result<Option<mltb_backup::Running>, String> {
    if !config.continuous_protection() {
        return Ok(None);
    }
    let last_sync: Gauge<f64, AtomicU64> = Gauge::default();
    let failures: Counter = Counter::default();
    let shipped: Counter = Counter::default();
    metrics.with_registry(|r| {
        r.register_with_unit(
            "mltb_backup_replica_last_sync_timestamp",
            "When continuous protection last shipped the store's log (Unix time): the newest restorable point",
            Unit::Seconds,
            last_sync.clone(),
        );
        r.register("mltb_backup_replica_sync_failures", "Log syncs that failed", failures.clone());
        r.register_with_unit(
            "mltb_backup_replica_shipped",
            "Bytes written to the replica (log runs and base copies)",
            Unit::Bytes,
            shipped.clone(),
        );
    });
    let o = ReplicaOptions::new(config.sqlite_path(), config.replica_dir())
        .every(config.backup.sync_every.0)
        .snapshot_every(config.backup.snapshot_every.0)
        .retain(config.backup.retain.0);
    let dir = o.dir.clone();
    let running = mltb_backup::spawn(o, move |y| match y {
        Ok(y) => {
            last_sync.set(y.at_unix_ms as f64 / 1000.0);
            shipped.inc_by(y.bytes);
            if y.new_generation {
                tracing::info!(generation = %y.generation, bytes = y.bytes, "continuous protection: new generation");
            }
        }
        Err(e) => {
            failures.inc();
            tracing::warn!(error = %e, "continuous protection: the log was not shipped");
        }
    })
    .map_err(|e| format!("backup.continuous: {e}"))?;
    tracing::info!(dir = %dir.display(), "continuous protection on");
    Ok(Some(running))
}
