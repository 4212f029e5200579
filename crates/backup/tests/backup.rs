//! Backups of a store the real store library wrote: the drill (back up, keep writing,
//! destroy, restore, reopen), damaged files, locks, schema versions and retention.

mod support;

use std::path::{Path, PathBuf};

use mltb_backup::{BackupOptions, Error, RestoreOptions, Retention};
use mltb_store::{SqliteStore, StoreConfig};
use support::{mode, noise, rewrite_manifest, task};

async fn store(db: &Path) -> SqliteStore {
    SqliteStore::open_sqlite(db, StoreConfig::new()).await.unwrap()
}

/// Every backup file in `dir` and anything else left there, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drill_back_up_keep_writing_destroy_restore_and_the_store_opens_with_everything_up_to_the_backup()
{
    let tmp = tempfile::tempdir().unwrap();
    let (db, dir) = (tmp.path().join("data/mltb.db"), tmp.path().join("backups"));
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "owner_id = 1\n").unwrap();
    let s = store(&db).await;
    for n in 1..=50 {
        s.create_task(&task(n)).await.unwrap();
    }
    // Taken while the store is open and in use, as the bot would be.
    let made = mltb_backup::backup(&BackupOptions::new(&db, &dir).config(&config)).unwrap();
    assert_eq!(made.manifest.schema_version, mltb_store::LATEST_VERSION);
    assert_eq!(
        made.manifest.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["mltb.db", "config.toml"]
    );
    assert_eq!(
        files(&dir),
        [".mltb-backup.lock".to_string(), made.path.file_name().unwrap().to_string_lossy().into_owned()]
    );
    let after = s.create_task(&task(51)).await.unwrap();
    drop(s);
    // Disaster: the database is gone.
    for f in ["mltb.db", "mltb.db-wal", "mltb.db-shm"] {
        let _ = std::fs::remove_file(db.with_file_name(f));
    }
    let done = mltb_backup::restore(&RestoreOptions::latest(&dir, &db)).unwrap();
    assert_eq!(done.backup, made.path);
    assert!(done.moved_aside.is_none(), "there was nothing to move aside");
    let s = store(&db).await;
    for n in 1..=50 {
        assert!(s.task(n).await.unwrap().is_some_and(|t| t.user == n), "task {n} is back");
    }
    assert!(s.task(after.id).await.unwrap().is_none(), "written after the backup: not in it");
    drop(s);

    // A restore over a live database moves it (and its WAL) aside instead of overwriting.
    let s = store(&db).await;
    s.create_task(&task(99)).await.unwrap();
    drop(s);
    let again = mltb_backup::restore(&RestoreOptions::file(&made.path, &db)).unwrap();
    let aside = again.moved_aside.expect("the live database was moved aside");
    assert!(aside.exists() && aside.to_string_lossy().contains(".before-restore-"), "{}", aside.display());
    let s = store(&aside).await;
    assert_eq!(s.task(51).await.unwrap().map(|t| t.user), Some(99), "what was live is kept aside, whole");
}

/// A good backup, made from a small store, in `dir`.
async fn one_backup(tmp: &Path, dir: &Path) -> PathBuf {
    let db = tmp.join("src/mltb.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let s = store(&db).await;
    s.create_task(&task(1)).await.unwrap();
    drop(s);
    mltb_backup::backup(&BackupOptions::new(&db, dir)).unwrap().path
}

fn damaged(e: &Error) -> String {
    match e {
        Error::Damaged { reason, .. } => reason.clone(),
        other => panic!("expected a damaged backup, got {other}"),
    }
}

#[tokio::test]
async fn truncated_bit_flipped_and_foreign_files_are_found_by_verify_and_refused_by_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backups");
    let good = one_backup(tmp.path(), &dir).await;
    mltb_backup::verify(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let variant = |name: &str, data: &[u8]| {
        let p = tmp.path().join(format!("{name}.mltb-backup"));
        std::fs::write(&p, data).unwrap();
        p
    };
    let truncated = variant("truncated", &bytes[..bytes.len() - 100]);
    let mut flipped_bytes = bytes.clone();
    flipped_bytes[bytes.len() / 2] ^= 0x10;
    let flipped = variant("flipped", &flipped_bytes);
    let foreign = variant("foreign", b"SQLite format 3\0 but not a backup at all, just some bytes");
    let empty = variant("empty", b"");
    for (p, want) in [
        (&truncated, "end marker"),
        (&flipped, "checksum mismatch"),
        (&foreign, "not an mltb backup"),
        (&empty, "truncated"),
    ] {
        let e = mltb_backup::verify(p).unwrap_err();
        assert!(damaged(&e).contains(want), "{}: {e}", p.display());
        let db = tmp.path().join("restored/mltb.db");
        let e = mltb_backup::restore(&RestoreOptions::file(p, &db)).unwrap_err();
        assert!(damaged(&e).contains(want), "{}: {e}", p.display());
        assert!(!db.exists(), "nothing restored from {}", p.display());
    }
    assert_eq!(mltb_backup::list(&dir).unwrap().len(), 1, "the copies made here are outside the backup dir");
}

#[tokio::test]
async fn restoring_the_latest_skips_damaged_backups_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backups");
    let good = one_backup(tmp.path(), &dir).await;
    // A newer backup that got damaged.
    let newer = dir.join("mltb-29991231T000000.000Z.mltb-backup");
    let mut bytes = std::fs::read(&good).unwrap();
    // Same manifest (same time): it sorts first by its newer-looking name; one byte of
    // its data is flipped.
    bytes[20] ^= 0xff;
    std::fs::write(&newer, &bytes).unwrap();
    let db = tmp.path().join("data/mltb.db");
    let done = mltb_backup::restore(&RestoreOptions::latest(&dir, &db)).unwrap();
    assert_eq!(done.backup, good);
    assert_eq!(done.skipped.len(), 1, "{:?}", done.skipped);
    assert!(done.skipped[0].1.contains("checksum mismatch"), "{:?}", done.skipped);
}

#[tokio::test]
async fn a_backup_from_a_newer_schema_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("future.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE t(x); PRAGMA user_version = {};",
        mltb_store::LATEST_VERSION + 1
    ))
    .unwrap();
    drop(conn);
    let made = mltb_backup::backup(&BackupOptions::new(&db, tmp.path().join("b"))).unwrap();
    let e =
        mltb_backup::restore(&RestoreOptions::file(&made.path, tmp.path().join("data/mltb.db"))).unwrap_err();
    assert!(matches!(e, Error::NewerSchema { found, .. } if found == mltb_store::LATEST_VERSION + 1), "{e}");
    assert!(e.to_string().contains("restore it with a newer mltb"), "{e}");
}

fn hold(path: &Path) -> std::fs::File {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    f
}

#[tokio::test]
async fn concurrent_runs_and_a_running_bot_are_locked_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backups");
    let good = one_backup(tmp.path(), &dir).await;
    let held = hold(&dir.join(".mltb-backup.lock"));
    let e = mltb_backup::backup(&BackupOptions::new(tmp.path().join("src/mltb.db"), &dir)).unwrap_err();
    assert!(matches!(e, Error::Locked { .. }) && e.to_string().contains("another mltb-backup"), "{e}");
    let e = mltb_backup::prune(&dir, &Retention::standard(), true).unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    drop(held);

    let db = tmp.path().join("data/mltb.db");
    let bot = hold(&tmp.path().join("data").join(mltb_backup::BOT_LOCK));
    let e = mltb_backup::restore(&RestoreOptions::file(&good, &db)).unwrap_err();
    assert!(e.to_string().contains("the bot is running"), "{e}");
    assert!(!db.exists());
    drop(bot);
    mltb_backup::restore(&RestoreOptions::file(&good, &db)).unwrap();
    assert!(db.exists());
}

#[tokio::test]
async fn prune_keeps_by_policy_and_never_the_only_good_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backups");
    let db = tmp.path().join("src/mltb.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    drop(store(&db).await);
    let mut made = Vec::new();
    for _ in 0..4 {
        made.push(mltb_backup::backup(&BackupOptions::new(&db, &dir)).unwrap().path);
    }
    let mut keep_two = Retention::default();
    keep_two.keep_last = 2;
    let dry = mltb_backup::prune(&dir, &keep_two, true).unwrap();
    assert_eq!(dry.deleted.len(), 2);
    assert_eq!(mltb_backup::list(&dir).unwrap().len(), 4, "a dry run deletes nothing");
    let done = mltb_backup::prune(&dir, &keep_two, false).unwrap();
    assert_eq!(done.kept, [made[3].clone(), made[2].clone()], "the newest two");
    assert!(!made[0].exists() && !made[1].exists());

    // The newest is damaged and a keep-last-1 policy keeps only it: the newest good one
    // stays as well, whatever the policy.
    let mut bytes = std::fs::read(&made[3]).unwrap();
    bytes[30] ^= 1;
    std::fs::write(&made[3], bytes).unwrap();
    let mut keep_one = Retention::default();
    keep_one.keep_last = 1;
    let done = mltb_backup::prune(&dir, &keep_one, false).unwrap();
    assert!(made[2].exists(), "the only good backup is kept: {done:?}");
    assert_eq!(done.kept.len(), 2);
}

#[tokio::test]
async fn a_failed_backup_leaves_no_file_that_looks_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backups");
    let db = tmp.path().join("src/mltb.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    drop(store(&db).await);
    // The config cannot be read: the backup fails after the database part was written.
    let e = mltb_backup::backup(&BackupOptions::new(&db, &dir).config(tmp.path().join("missing.toml")))
        .unwrap_err();
    assert!(e.to_string().contains("missing.toml"), "{e}");
    assert_eq!(files(&dir), [".mltb-backup.lock"], "no backup, no temp file, no snapshot left");
    let e = mltb_backup::backup(&BackupOptions::new(tmp.path().join("nope.db"), &dir)).unwrap_err();
    assert!(e.to_string().contains("no database there"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_backup_cleanly_and_leaves_the_earlier_one_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = mltb_testkit::SmallDisk::mount("2m");
    let dir = disk.path().join("backups");
    let db = tmp.path().join("data/mltb.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let s = store(&db).await;
    s.create_task(&task(1)).await.unwrap();
    drop(s);
    let first = mltb_backup::backup(&BackupOptions::new(&db, &dir)).unwrap();

    // Big enough that the snapshot fits on the disk but the backup file beside it does not
    // (then, grown again, that the snapshot itself does not).
    for (round, filler) in [(1u64, 1_100_000usize), (2, 1_500_000)] {
        {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.execute_batch("CREATE TABLE IF NOT EXISTS filler (b BLOB)").unwrap();
            conn.execute("INSERT INTO filler (b) VALUES (?1)", [noise(filler, round)]).unwrap();
        }
        let e = mltb_backup::backup(&BackupOptions::new(&db, &dir)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("No space left on device") || text.contains("disk is full"),
            "round {round}: the error says the disk is full: {text}"
        );
        assert_eq!(
            files(&dir),
            [".mltb-backup.lock".to_string(), first.path.file_name().unwrap().to_string_lossy().into_owned()],
            "round {round}: no partial file is left behind"
        );
        let listed = mltb_backup::list(&dir).unwrap();
        assert_eq!(listed.len(), 1, "round {round}");
        mltb_backup::verify(&first.path).unwrap();
    }
}

#[tokio::test]
async fn a_database_at_another_schema_than_its_manifest_says_is_refused_before_the_live_one_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("data/mltb.db");
    let good = one_backup(tmp.path(), &tmp.path().join("backups")).await;
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::copy(tmp.path().join("src/mltb.db"), &db).unwrap();
    let live = std::fs::read(&db).unwrap();
    // The database says 99 (a schema no mltb has), the manifest a version this build
    // knows; the checksum is recomputed, so only the database itself tells.
    let src = tmp.path().join("forged.db");
    let conn = rusqlite::Connection::open(&src).unwrap();
    conn.execute_batch("CREATE TABLE t(x); PRAGMA user_version = 99;").unwrap();
    drop(conn);
    let made = mltb_backup::backup(&BackupOptions::new(&src, tmp.path().join("forged"))).unwrap();
    rewrite_manifest(&made.path, |m| m["schema_version"] = 1.into());
    let e = mltb_backup::restore(&RestoreOptions::file(&made.path, &db)).unwrap_err();
    assert!(damaged(&e).contains("the database is at schema 99, the manifest says 1"), "{e}");
    // One a step behind its manifest: refused the same way.
    let behind = tmp.path().join("behind.mltb-backup");
    std::fs::copy(&good, &behind).unwrap();
    rewrite_manifest(&behind, |m| m["schema_version"] = (mltb_store::LATEST_VERSION + 1).into());
    let e = mltb_backup::restore(&RestoreOptions::file(&behind, &db)).unwrap_err();
    assert!(matches!(e, Error::NewerSchema { .. }), "the manifest is checked first: {e}");
    rewrite_manifest(&behind, |m| m["schema_version"] = (mltb_store::LATEST_VERSION - 1).into());
    let e = mltb_backup::restore(&RestoreOptions::file(&behind, &db)).unwrap_err();
    assert!(damaged(&e).contains("the manifest says"), "{e}");
    assert_eq!(std::fs::read(&db).unwrap(), live, "the live database is untouched");
    let left: Vec<_> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("before-restore") || n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "nothing moved aside, no staged file left: {left:?}");
}

#[tokio::test]
async fn backups_and_restored_databases_are_readable_by_their_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backups");
    let good = one_backup(tmp.path(), &dir).await;
    // Whatever the umask would allow, the user data is the owner's alone.
    assert_eq!(mode(&good), 0o600, "{}", good.display());
    let db = tmp.path().join("data/mltb.db");
    mltb_backup::restore(&RestoreOptions::file(&good, &db)).unwrap();
    assert_eq!(mode(&db), 0o600, "{}", db.display());
    for f in files(&dir) {
        assert!(f == ".mltb-backup.lock" || f.ends_with(".mltb-backup"), "left behind: {f}");
    }
}
