//! Backup, verify and restore times of `mltb-backup` for SQLite databases of a given size,
//! beside the floor: the same restore done by hand with `sqlite3 DB ".restore FILE"` from
//! a plain (uncompressed, unchecked) SQLite backup, in the same run.
//!
//! Continuous protection beside them: the first sync (a generation's base copy), and a
//! restore from the replica that replays 20 runs of 50 updated rows over that base.
//!
//! `cargo bench -p mltb-backup --bench backup` runs 100 MB and 1000 MB (sizes in MB as
//! arguments change that); `-- --test` runs one small size as a check. Needs the
//! `sqlite3` program (Debian package `sqlite3`) for the floor; without it the floor is
//! skipped and says so.

#![allow(clippy::print_stdout, reason = "a bench reports its figures on stdout")]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mltb_backup::{BackupOptions, PointOptions, ReplicaOptions, Replicator, RestoreOptions};

const MB: u64 = 1_000_000;

/// A database of about `bytes`: rows of 4 KiB pseudo-random blobs (incompressible, the
/// worst case for the compressor) and text.
fn populate(db: &Path, bytes: u64) {
    let conn = rusqlite::Connection::open(db).expect("create the database");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, body BLOB);",
    )
    .expect("schema");
    let rows = bytes / 4200;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let tx = conn.unchecked_transaction().expect("transaction");
    {
        let mut insert = tx.prepare("INSERT INTO t(name, body) VALUES (?1, ?2)").expect("insert");
        let mut body = vec![0u8; 4096];
        for i in 0..rows {
            for chunk in body.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
            }
            insert.execute(rusqlite::params![format!("file-{i}.iso"), body]).expect("row");
        }
    }
    tx.commit().expect("commit");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").expect("checkpoint");
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    let args: Vec<String> =
        std::env::args().skip(1).filter(|a| !a.starts_with("--") || a == "--test").collect();
    let test = args.iter().any(|a| a == "--test");
    let sizes: Vec<u64> = if test {
        vec![5]
    } else {
        let given: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
        if given.is_empty() { vec![100, 1000] } else { given }
    };
    let sqlite3 = Command::new("sqlite3").arg("-version").output().is_ok_and(|o| o.status.success());
    println!(
        "| size | backup | verify | restore (ours) | restore (sqlite3 .restore, floor) | backup file | replica: base | replica: restore, 20 runs replayed |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for mb in sizes {
        let tmp = tempfile::tempdir_in(std::env::var_os("MLTB_BENCH_DIR").unwrap_or_else(|| ".".into()))
            .expect("a scratch directory");
        let db = tmp.path().join("data/mltb.db");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        populate(&db, mb * MB);
        let size = std::fs::metadata(&db).unwrap().len();
        let dir = tmp.path().join("backups");

        let mut o = BackupOptions::new(&db, &dir);
        o.verify = false;
        let t = Instant::now();
        let made = mltb_backup::backup(&o).expect("backup");
        let backup = t.elapsed();
        let t = Instant::now();
        mltb_backup::verify(&made.path).expect("verify");
        let verify = t.elapsed();

        let target = tmp.path().join("restored/mltb.db");
        let t = Instant::now();
        mltb_backup::restore(&RestoreOptions::file(&made.path, &target)).expect("restore");
        let restore = t.elapsed();

        let floor = if sqlite3 {
            let plain = tmp.path().join("plain.db");
            let ok = Command::new("sqlite3")
                .arg(&db)
                .arg(format!(".backup '{}'", plain.display()))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "sqlite3 .backup");
            let by_hand = tmp.path().join("by-hand.db");
            let t = Instant::now();
            let ok = Command::new("sqlite3")
                .arg(&by_hand)
                .arg(format!(".restore '{}'", plain.display()))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "sqlite3 .restore");
            secs(t.elapsed())
        } else {
            "skipped: apt-get install sqlite3".to_string()
        };
        let (base, replay, runs) = replica(&db, tmp.path(), size / 4200);
        println!(
            "| {} MB | {} | {} | {} | {} | {} MB | {} | {} ({runs} runs) |",
            size / MB,
            secs(backup),
            secs(verify),
            secs(restore),
            floor,
            made.bytes / MB,
            secs(base),
            secs(replay)
        );
    }
}

/// Continuous protection of `db` (`rows` rows): the first sync's time (the base copy),
/// then 20 syncs of 50 rows rewritten each, and the time of a restore replaying them.
fn replica(db: &Path, tmp: &Path, rows: u64) -> (Duration, Duration, u64) {
    let dir = tmp.join("replica");
    let t = Instant::now();
    let mut r = Replicator::open(ReplicaOptions::new(db, &dir)).expect("replicator");
    r.sync().expect("first sync");
    let base = t.elapsed();
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0;").expect("pragma");
    for k in 0..20u64 {
        for j in 0..50u64 {
            let id = ((k * 50 + j) * 7919) % rows.max(1) + 1;
            conn.execute("UPDATE t SET body = randomblob(4096) WHERE id = ?1", [id as i64]).expect("update");
        }
        r.sync().expect("sync");
    }
    drop((r, conn));
    let target = tmp.join("from-replica/mltb.db");
    let t = Instant::now();
    let done =
        mltb_backup::restore_point(&PointOptions::latest(&dir, &target)).expect("restore from the replica");
    assert!(done.stopped.is_none(), "{:?}", done.stopped);
    (base, t.elapsed(), done.runs)
}
