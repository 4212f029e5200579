//! The `mltb-backup` binary: help on every subcommand, a backup/list/verify/restore
//! round, and `run` writing the metrics the "backup stale" alert reads.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mltb-backup");

fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).current_dir(dir).args(args).output().expect("mltb-backup runs");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn every_subcommand_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["backup", "verify", "restore", "list", "prune", "run"] {
        let (ok, out) = run(tmp.path(), &[sub, "--help"]);
        assert!(ok && out.contains("Usage: mltb-backup"), "{sub}: {out}");
    }
    let (ok, out) = run(tmp.path(), &["run", "--every", "soon"]);
    assert!(!ok && out.contains("such as 90s"), "{out}");
}

#[test]
fn backup_list_verify_restore_and_run_with_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("data/mltb.db")).unwrap();
    conn.execute_batch("CREATE TABLE notes(text TEXT); INSERT INTO notes VALUES ('kept');").unwrap();
    drop(conn);

    let (ok, out) = run(tmp.path(), &["backup"]);
    assert!(ok && out.contains("verified"), "{out}");
    let (ok, out) = run(tmp.path(), &["list"]);
    assert!(ok && out.contains(".mltb-backup") && out.contains("1 part(s)"), "{out}");
    let (ok, out) = run(tmp.path(), &["verify"]);
    assert!(ok && out.starts_with("ok "), "{out}");

    std::fs::remove_file(tmp.path().join("data/mltb.db")).unwrap();
    let (ok, out) = run(tmp.path(), &["restore"]);
    assert!(ok && out.contains("restored") && out.contains(" s"), "{out}");
    let conn = rusqlite::Connection::open(tmp.path().join("data/mltb.db")).unwrap();
    let text: String = conn.query_row("SELECT text FROM notes", [], |r| r.get(0)).unwrap();
    assert_eq!(text, "kept");

    let (ok, out) =
        run(tmp.path(), &["run", "--every", "1s", "--count", "1", "--metrics-file", "backup.prom"]);
    assert!(ok, "{out}");
    let metrics = std::fs::read_to_string(tmp.path().join("backup.prom")).unwrap();
    let stamp: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mltb_backup_last_success_timestamp_seconds "))
        .expect("the last-success metric")
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - stamp).abs() < 120.0, "{stamp} is about now ({now})");
    assert!(metrics.contains("# TYPE mltb_backup_size_bytes gauge"), "{metrics}");

    // A damaged file is reported and makes verify fail.
    let listed = std::fs::read_dir(tmp.path().join("backups")).unwrap().map(|e| e.unwrap().path());
    let newest = listed.filter(|p| p.extension().is_some_and(|e| e == "mltb-backup")).max().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&newest, bytes).unwrap();
    let (ok, out) = run(tmp.path(), &["verify"]);
    assert!(!ok && out.contains("DAMAGED") && out.contains("checksum mismatch"), "{out}");
}

#[test]
fn off_site_copies_on_an_rclone_remote_list_restore_and_prune() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("data/mltb.db")).unwrap();
    conn.execute_batch("CREATE TABLE notes(text TEXT); INSERT INTO notes VALUES ('off-site');").unwrap();
    drop(conn);
    let remote = format!(":local:{}/cloud", tmp.path().display());

    for _ in 0..2 {
        let (ok, out) = run(tmp.path(), &["backup", "--remote", &remote]);
        assert!(ok && out.contains("verified") && out.contains("copied to :local:"), "{out}");
    }
    let (ok, out) = run(tmp.path(), &["list", "--remote", &remote]);
    assert!(ok && out.lines().count() == 2 && out.contains("bytes  taken 20"), "{out}");

    // The machine is lost, local backups with it: restore from the remote.
    std::fs::remove_dir_all(tmp.path().join("data")).unwrap();
    std::fs::remove_dir_all(tmp.path().join("backups")).unwrap();
    let (ok, out) = run(tmp.path(), &["restore", "--remote", &remote]);
    assert!(ok && out.contains("restored mltb-") && out.contains(&format!("from {remote}")), "{out}");
    let conn = rusqlite::Connection::open(tmp.path().join("data/mltb.db")).unwrap();
    let text: String = conn.query_row("SELECT text FROM notes", [], |r| r.get(0)).unwrap();
    assert_eq!(text, "off-site");

    let (ok, out) = run(
        tmp.path(),
        &[
            "prune",
            "--remote",
            &remote,
            "--keep-last",
            "1",
            "--keep-daily",
            "0",
            "--keep-weekly",
            "0",
            "--keep-monthly",
            "0",
        ],
    );
    assert!(ok && out.contains("deleted :local:") && out.contains("kept 1"), "{out}");

    let (ok, out) = run(tmp.path(), &["list", "--remote", "not a remote"]);
    assert!(!ok && out.contains("expected an rclone remote such as"), "{out}");
}
