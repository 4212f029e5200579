//! Continuous protection of a store the real store library writes: the log shipped
//! across checkpoints and log restarts, restores to the last sync and to a point in
//! time, a replicator continuing after a crash, a broken chain starting a new
//! generation, damaged runs, retention, and the drill that measures the loss window.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mltb_backup::{PointOptions, ReplicaOptions, Replicator, generations, restore_point};
use mltb_store::{SqliteStore, StoreConfig};
use support::{noise, rewrite_manifest, task};

/// The bot's store as it runs under continuous protection: it never checkpoints.
async fn protected(db: &Path) -> SqliteStore {
    SqliteStore::open_sqlite(db, StoreConfig::new().external_checkpoints(true)).await.unwrap()
}

async fn plain(db: &Path) -> SqliteStore {
    SqliteStore::open_sqlite(db, StoreConfig::new()).await.unwrap()
}

fn paths(tmp: &Path) -> (PathBuf, PathBuf) {
    let db = tmp.join("data/mltb.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    (db, tmp.join("replica"))
}

/// The disk is lost: the database and its log are gone.
fn destroy(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// Which of tasks `ids` the store at `db` holds, as written (user = id).
async fn present(db: &Path, ids: std::ops::RangeInclusive<i64>) -> Vec<i64> {
    let s = plain(db).await;
    let mut found = Vec::new();
    for n in ids {
        if let Some(t) = s.task(n).await.unwrap() {
            assert_eq!(t.user, n, "task {n} came back as written");
            found.push(n);
        }
    }
    found
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Waits for the wall clock to pass `t` (ms), so that what follows is stamped later.
fn after(t: u64) {
    while now_ms() <= t {
        std::thread::yield_now();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_ships_across_checkpoints_and_a_lost_disk_comes_back_to_the_last_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, replica) = paths(tmp.path());
    let s = protected(&db).await;
    for n in 1..=20 {
        s.create_task(&task(n)).await.unwrap();
    }
    let mut r = Replicator::open(ReplicaOptions::new(&db, &replica).checkpoint_frames(8)).unwrap();
    let first = r.sync().unwrap();
    assert!(first.new_generation && first.bytes > 0, "{first:?}");
    let generation = first.generation.clone();
    let (mut checkpoints, mut frames, mut wal_max) = (0, 0, 0);
    for n in 21..=200 {
        s.create_task(&task(n)).await.unwrap();
        if n % 5 == 0 {
            let y = r.sync().unwrap();
            assert_eq!(y.generation, generation, "one generation across checkpoints and log restarts: {y:?}");
            assert!(!y.new_generation, "{y:?}");
            checkpoints += usize::from(y.checkpointed);
            frames += y.frames;
            wal_max = wal_max.max(std::fs::metadata(format!("{}-wal", db.display())).unwrap().len());
        }
    }
    assert!(checkpoints >= 3, "{checkpoints} checkpoints");
    // The log restarts after each checkpoint instead of growing with every write.
    let page = 4096 + 24;
    assert!(wal_max < u64::from(frames) * page / 2, "log up to {wal_max} bytes for {frames} frames shipped");
    // Written after the last sync: lost with the disk.
    for n in 201..=205 {
        s.create_task(&task(n)).await.unwrap();
    }
    drop(r);
    drop(s);
    destroy(&db);
    let done = restore_point(&PointOptions::latest(&replica, &db)).unwrap();
    assert_eq!(done.generation, generation);
    assert!(done.stopped.is_none(), "{:?}", done.stopped);
    assert!(done.runs >= 36, "{} runs", done.runs);
    assert_eq!(present(&db, 1..=205).await, (1..=200).collect::<Vec<_>>());
    // The bot's own store opens on it and writes on.
    let s = protected(&db).await;
    assert_eq!(s.create_task(&task(201)).await.unwrap().id, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_goes_to_any_point_in_time_the_replica_covers() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, replica) = paths(tmp.path());
    let s = protected(&db).await;
    let mut r = Replicator::open(ReplicaOptions::new(&db, &replica).checkpoint_frames(6)).unwrap();
    let mut points = Vec::new();
    for round in 0..6 {
        for n in round * 10 + 1..=round * 10 + 10 {
            s.create_task(&task(n)).await.unwrap();
        }
        let y = r.sync().unwrap();
        points.push((y.at_unix_ms, round * 10 + 10));
        after(y.at_unix_ms);
    }
    drop(r);
    drop(s);
    for &(at, upto) in points.iter().rev() {
        let done = restore_point(&PointOptions::latest(&replica, &db).at(at)).unwrap();
        assert!(done.restored_to_unix_ms <= at, "{done:?}");
        assert_eq!(present(&db, 1..=60).await, (1..=upto).collect::<Vec<_>>(), "at the sync of task {upto}");
    }
    let e = restore_point(&PointOptions::latest(&replica, &db).at(1)).unwrap_err();
    assert!(e.to_string().contains("no replica generation"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_replicator_continues_its_generation_and_ships_what_was_left() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, replica) = paths(tmp.path());
    let s = protected(&db).await;
    let mut r = Replicator::open(ReplicaOptions::new(&db, &replica)).unwrap();
    for n in 1..=10 {
        s.create_task(&task(n)).await.unwrap();
    }
    let generation = r.sync().unwrap().generation;
    // Starting a generation checkpoints, so the next write restarts the log; a sync
    // after it leaves the last run in the log that stays.
    s.create_task(&task(11)).await.unwrap();
    r.sync().unwrap();
    for n in 12..=20 {
        s.create_task(&task(n)).await.unwrap();
    }
    // One replicator per replica directory.
    let second = Replicator::open(ReplicaOptions::new(&db, &replica)).unwrap_err();
    assert!(second.to_string().contains("another replicator ships to"), "{second}");
    // The replicator dies without a last sync; a new one takes its place.
    drop(r);
    let mut r = Replicator::open(ReplicaOptions::new(&db, &replica)).unwrap();
    assert_eq!(r.generation(), Some(generation.as_str()), "the log still follows on from the last run");
    let y = r.sync().unwrap();
    assert!(!y.new_generation && y.frames > 0, "{y:?}");
    drop(r);
    drop(s);
    destroy(&db);
    restore_point(&PointOptions::latest(&replica, &db)).unwrap();
    assert_eq!(present(&db, 1..=20).await, (1..=20).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_by_someone_else_breaks_the_chain_and_a_new_generation_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, replica) = paths(tmp.path());
    let s = protected(&db).await;
    let mut r = Replicator::open(ReplicaOptions::new(&db, &replica)).unwrap();
    for n in 1..=10 {
        s.create_task(&task(n)).await.unwrap();
    }
    let first = r.sync().unwrap().generation;
    for n in 11..=15 {
        s.create_task(&task(n)).await.unwrap();
    }
    // Another program checkpoints and restarts the log over frames not yet shipped.
    let other = rusqlite::Connection::open(&db).unwrap();
    other.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())).unwrap();
    s.create_task(&task(16)).await.unwrap();
    let y = r.sync().unwrap();
    assert!(y.new_generation && y.generation != first, "{y:?}");
    assert_eq!(generations(&replica).unwrap().len(), 2);
    drop((r, s, other));
    destroy(&db);
    restore_point(&PointOptions::latest(&replica, &db)).unwrap();
    assert_eq!(present(&db, 1..=16).await, (1..=16).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_run_stops_the_replay_before_it_and_says_which() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, replica) = paths(tmp.path());
    let s = protected(&db).await;
    let mut r = Replicator::open(ReplicaOptions::new(&db, &replica)).unwrap();
    r.sync().unwrap();
    for round in 0..4 {
        for n in round * 5 + 1..=round * 5 + 5 {
            s.create_task(&task(n)).await.unwrap();
        }
        r.sync().unwrap();
    }
    drop((r, s));
    let g = generations(&replica).unwrap().pop().unwrap();
    assert!(g.runs.len() >= 4, "{:?}", g.runs);
    // The run holding tasks 11–15 (the last but one) is bit-flipped; then it is cut short.
    let victim = g.runs[g.runs.len() - 2].clone();
    let good = std::fs::read(&victim).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    for bad in [flipped, good[..good.len() - 40].to_vec()] {
        std::fs::write(&victim, &bad).unwrap();
        destroy(&db);
        let done = restore_point(&PointOptions::latest(&replica, &db)).unwrap();
        let why = done.stopped.expect("the replay stopped");
        assert!(why.contains(&victim.display().to_string()), "{why}");
        assert_eq!(present(&db, 1..=20).await, (1..=10).collect::<Vec<_>>(), "{why}");
    }
    // Removed altogether, the gap is found: the next run is not replayed over it.
    std::fs::remove_file(&victim).unwrap();
    destroy(&db);
    let done = restore_point(&PointOptions::latest(&replica, &db)).unwrap();
    assert!(done.stopped.as_deref().is_some_and(|w| w.contains("missing")), "{:?}", done.stopped);
    assert_eq!(present(&db, 1..=20).await, (1..=10).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_generations_start_on_schedule_and_old_ones_go_past_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, replica) = paths(tmp.path());
    let s = protected(&db).await;
    let o = ReplicaOptions::new(&db, &replica).snapshot_every(Duration::ZERO).retain(Duration::ZERO);
    let mut r = Replicator::open(o).unwrap();
    let mut seen = Vec::new();
    for n in 1..=4 {
        s.create_task(&task(n)).await.unwrap();
        let y = r.sync().unwrap();
        assert!(y.new_generation, "{y:?}");
        seen.push(y.generation.clone());
        after(now_ms());
    }
    seen.dedup();
    assert_eq!(seen.len(), 4, "{seen:?}");
    let left = generations(&replica).unwrap();
    assert!(left.len() <= 2, "{:?}", left.iter().map(|g| &g.id).collect::<Vec<_>>());
    assert_eq!(left.last().unwrap().id, seen[3]);
    drop((r, s));
    destroy(&db);
    restore_point(&PointOptions::latest(&replica, &db)).unwrap();
    assert_eq!(present(&db, 1..=4).await, vec![1, 2, 3, 4]);
}

/// The drill under the default settings (a sync every second): the bot's store writes
/// a task every 20 ms while the replicator runs on its thread; the disk is lost at a
/// moment (at a random phase of the sync cycle) the replica is copied; the restore has every task committed before the last
/// sync began, and the loss window (the loss time minus the newest task restored) is
/// printed: the RPO, measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr, reason = "the drill reports the loss window it measured")]
async fn the_drill_measures_the_loss_window_under_the_default_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, replica) = paths(tmp.path());
    let s = protected(&db).await;
    let reports: Arc<Mutex<Vec<u64>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let (seen, failed) = (reports.clone(), failures.clone());
    let running = mltb_backup::spawn(ReplicaOptions::new(&db, &replica), move |y| match y {
        Ok(_) => seen.lock().unwrap().push(now_ms()),
        Err(e) => failed.lock().unwrap().push(e.to_string()),
    })
    .unwrap();
    let mut committed = vec![0u64]; // committed[id] = when task id was committed
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let enough = || reports.lock().unwrap().len() >= 3 || start.elapsed() > Duration::from_secs(30);
    // The loss comes at any phase of the sync cycle: 3 s plus up to one sync period.
    let jitter = u64::from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos()) % 1000;
    let loss = Duration::from_millis(3000 + jitter);
    while start.elapsed() < loss || !enough() {
        tick.tick().await;
        let t = s.create_task(&task(committed.len() as i64)).await.unwrap();
        assert_eq!(t.id as usize, committed.len());
        committed.push(now_ms());
    }
    // The disk is lost now: what the replica holds at this moment is all there is.
    let lost_at = now_ms();
    let kept = tmp.path().join("kept");
    copy_replica(&replica, &kept);
    let syncs = reports.lock().unwrap().clone();
    assert!(failures.lock().unwrap().is_empty(), "{:?}", failures.lock().unwrap());
    assert!(syncs.len() >= 3, "{} syncs in {:?}", syncs.len(), start.elapsed());
    drop(running);
    drop(s);
    destroy(&db);
    let done = restore_point(&PointOptions::latest(&kept, &db)).unwrap();
    assert!(done.stopped.is_none(), "{:?}", done.stopped);
    let last = committed.len() as i64 - 1;
    let back = present(&db, 1..=last).await;
    let newest = *back.last().expect("tasks are back");
    assert_eq!(back, (1..=newest).collect::<Vec<_>>(), "a prefix of the writes, no gaps");
    // Every task committed before the last sync that ended before the loss began.
    let began_by = syncs.iter().rev().filter(|&&t| t <= lost_at).nth(1).copied().unwrap_or(0);
    let must = committed.iter().rposition(|&t| t < began_by).unwrap_or(0) as i64;
    assert!(
        newest >= must,
        "task {newest} is the newest back; {must} was committed before a finished sync began"
    );
    let window = lost_at - committed[newest as usize];
    eprintln!(
        "drill: {last} tasks written, {newest} back; loss window {window} ms (sync every 1 s); restored in {:?}",
        done.took
    );
}

/// Copies a replica's finished files (a run being written is under a dot name).
fn copy_replica(from: &Path, to: &Path) {
    for g in std::fs::read_dir(from).unwrap() {
        let g = g.unwrap();
        if !g.path().is_dir() {
            continue;
        }
        let dest = to.join(g.file_name());
        std::fs::create_dir_all(&dest).unwrap();
        for f in std::fs::read_dir(g.path()).unwrap() {
            let f = f.unwrap();
            if !f.file_name().to_string_lossy().starts_with('.') {
                // A file renamed away between listing and copying is skipped.
                let _ = std::fs::copy(f.path(), dest.join(f.file_name()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_replica_disk_fails_the_sync_leaves_no_half_generation_and_waits_before_retrying() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = mltb_testkit::SmallDisk::mount("2m");
    let (db, _) = paths(tmp.path());
    let replica = disk.path().join("replica");
    let s = protected(&db).await;
    s.create_task(&task(1)).await.unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE filler (b BLOB)").unwrap();
        c.execute("INSERT INTO filler (b) VALUES (?1)", [noise(3_000_000, 0x9e37_79b9_7f4a_7c15)]).unwrap();
    }
    let mut r = Replicator::open(ReplicaOptions::new(&db, &replica)).unwrap();
    let e = r.sync().unwrap_err().to_string();
    assert!(e.contains("No space left on device") || e.contains("disk is full"), "{e}");
    assert!(generations(&replica).unwrap().is_empty(), "no generation that looks started");
    let leftovers: Vec<_> = std::fs::read_dir(&replica)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".mltb-replica.lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The next sync does not copy the whole database again at once.
    let e = r.sync().unwrap_err().to_string();
    assert!(e.contains("the next try is in"), "{e}");
    drop((r, s));
}

/// A replica of a small database written by plain SQLite: one generation, the first
/// sync and then three more, each after a write. The replica directory.
fn small_replica(tmp: &Path) -> PathBuf {
    let (db, replica) = paths(tmp);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE notes(text TEXT); INSERT INTO notes VALUES ('first');",
    )
    .unwrap();
    let mut r = Replicator::open(ReplicaOptions::new(&db, &replica)).unwrap();
    r.sync().unwrap();
    for n in 0..3 {
        conn.execute("INSERT INTO notes VALUES (?1)", [n]).unwrap();
        r.sync().unwrap();
    }
    drop((r, conn));
    replica
}

#[test]
fn a_run_claiming_a_huge_size_is_reported_not_allocated() {
    let tmp = tempfile::tempdir().unwrap();
    let replica = small_replica(tmp.path());
    let g = generations(&replica).unwrap().pop().unwrap();
    rewrite_manifest(&g.runs[0], |m| m["entries"][0]["size"] = (1u64 << 63).into());
    let checked = mltb_backup::verify_replica(&replica).unwrap();
    let why = checked[0].problem.as_deref().expect("the run is found bad");
    assert!(why.contains("claims 9223372036854775808 bytes"), "{why}");
    assert_eq!(checked[0].good_runs, 0);
    let (db, _) = paths(tmp.path());
    let done = restore_point(&PointOptions::latest(&replica, &db)).unwrap();
    assert_eq!(done.runs, 0, "replay stops at the bad run: {:?}", done.stopped);
    assert!(done.stopped.is_some_and(|w| w.contains("claims")));
}

#[test]
fn frame_numbers_that_overflow_break_the_chain_instead_of_panicking() {
    let tmp = tempfile::tempdir().unwrap();
    let replica = small_replica(tmp.path());
    let g = generations(&replica).unwrap().pop().unwrap();
    let n = g.runs.len();
    assert!(n >= 3, "{:?}", g.runs);
    // The last but one claims u32::MAX frames after a first frame above 0: where the
    // last one should start would be past u32. The count is checked against the frames
    // the run holds, so the run itself is found bad, before anything adds to it.
    let mut first = 0;
    let mut held = 0;
    rewrite_manifest(&g.runs[n - 2], |m| {
        first = m["wal"]["first_frame"].as_u64().unwrap();
        held = m["wal"]["frames"].as_u64().unwrap();
        m["wal"]["frames"] = u32::MAX.into();
    });
    assert!(first > 0, "the run follows on from an earlier one");
    let checked = mltb_backup::verify_replica(&replica).unwrap();
    let why = checked[0].problem.as_deref().expect("the run is found bad");
    assert!(why.contains(&format!("holds {held} frames where its manifest records 4294967295")), "{why}");
    assert_eq!(checked[0].good_runs, n as u64 - 2);

    // The last run's own numbers overflow: the replicator starts a new generation
    // rather than continue it.
    rewrite_manifest(&g.runs[n - 1], |m| {
        m["wal"]["first_frame"] = u32::MAX.into();
        m["wal"]["frames"] = 1.into();
    });
    let (db, _) = paths(tmp.path());
    let mut r = Replicator::open(ReplicaOptions::new(&db, &replica)).unwrap();
    assert_eq!(r.generation(), None, "not continued");
    assert!(r.sync().unwrap().new_generation);
}
