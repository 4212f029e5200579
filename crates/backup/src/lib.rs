//! Verified backups of mltb's data.
//!
//! A backup is one file, `mltb-<UTC time>.mltb-backup`, holding a consistent snapshot of
//! the bot's SQLite database (taken with `VACUUM INTO` while the bot runs), its config
//! file, and a manifest (tool and schema versions, time, sizes, SHA-256 of each part).
//! Each part is compressed as a series of zstd frames; the whole file ends with the
//! SHA-256 of everything before it, so a truncated, bit-flipped or foreign file is told
//! apart from a good one without trusting anything inside it.
//!
//! - [`backup`] writes it atomically (temp file, fsync, rename, fsync of the directory),
//!   under a lock on the backup directory, and verifies it.
//! - [`verify`] recomputes every checksum, opens the database copy and runs
//!   `PRAGMA integrity_check`, and checks the manifest.
//! - [`restore`] writes the database to a new path first, verifies it there, refuses
//!   while the bot holds its lock on the data directory, moves the live database aside
//!   (never overwriting it silently) and only then swaps the restored one into place.
//! - [`list`] and [`prune`] keep backups by a [`Retention`] policy, never deleting the
//!   only good one.
//! - [`backup_postgres`] and [`restore_postgres`] do the same for a PostgreSQL store
//!   through `pg_dump` (custom format) and `pg_restore`, into a new, empty database.
//! - [`Remote`] keeps off-site copies on any rclone remote: upload, list, download for a
//!   restore, and prune by the same policy; [`encrypt`] and [`decrypt`] make the copies
//!   readable only with an age identity.
//! - [`Replicator`] (or [`spawn`], on a thread of its own) is continuous protection: it
//!   ships the database's write-ahead log into a replica directory every second, and
//!   [`restore_point`] restores the newest state or the state at a point in time;
//!   [`verify_replica`] checks a replica without restoring. The database's connections
//!   must leave checkpoints to it (`mltb_store::StoreConfig::external_checkpoints`).
//!
//! ```no_run
//! use mltb_backup::{BackupOptions, backup, restore, RestoreOptions};
//! # fn main() -> mltb_backup::Result<()> {
//! let made = backup(&BackupOptions::new("data/mltb.db", "backups").config("config.toml"))?;
//! println!("{} ({} bytes)", made.path.display(), made.bytes);
//! let done = restore(&RestoreOptions::latest("backups", "data/mltb.db"))?;
//! println!("restored {} in {:?}", done.backup.display(), done.took);
//! # Ok(())
//! # }
//! ```
//!
//! Continuous protection, and a restore to a point in time:
//!
//! ```no_run
//! use mltb_backup::{PointOptions, ReplicaOptions, restore_point};
//! # fn main() -> mltb_backup::Result<()> {
//! let running = mltb_backup::spawn(ReplicaOptions::new("data/mltb.db", "replica"), |synced| {
//!     if let Err(e) = synced {
//!         eprintln!("the log was not shipped: {e}");
//!     }
//! })?;
//! // … the bot runs, its store opened with `external_checkpoints(true)` …
//! running.stop();
//! let done = restore_point(&PointOptions::latest("replica", "restored/mltb.db").at(1_796_406_393_000))?;
//! println!("restored to {} ms after the epoch, {} runs replayed", done.restored_to_unix_ms, done.runs);
//! # Ok(())
//! # }
//! ```

mod age;
mod container;
mod error;
mod ops;
mod postgres;
mod progress;
mod remote;
mod replica;
mod retention;
mod util;
mod wal;

pub use age::{AGE_SUFFIX, decrypt, encrypt};
pub use container::{Entry, FORMAT_VERSION, Manifest, WalRun};
pub use error::{Error, Result};
pub use ops::{
    BOT_LOCK, BackupInfo, BackupOptions, Listed, RestoreOptions, Restored, Verified, backup, list, restore,
    verify,
};
pub use postgres::{PgBackupOptions, PgRestored, backup_postgres, restore_postgres};
pub use progress::{Entered, Progress};
pub use remote::{Remote, RemoteBackup, RemotePruned};
pub use replica::{
    Generation, GenerationChecked, PointOptions, PointRestored, RUN_EXTENSION, ReplicaOptions, Replicator,
    Running, Synced, generations, restore_point, run_time, spawn, verify_replica,
};
pub use retention::{Pruned, Retention, prune};
pub use util::{PrivateDir, parse_utc_stamp, utc_stamp};

/// The file name extension of a backup.
pub const EXTENSION: &str = "mltb-backup";
