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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_is_backed_up_and_restored_with_the_url_from_the_environment() {
    use mltb_store::{NewTask, PostgresStore, Source, StoreConfig, TaskKind};
    let live =
        mltb_testkit::postgres::TestDatabase::create().await.expect("PostgreSQL (DATABASE_URL) is reachable");
    let s = PostgresStore::connect_postgres(live.url(), StoreConfig::new()).await.unwrap();
    let task = NewTask {
        chat: 1,
        user: 7,
        source: Source::Url("https://example.org/a.iso".into()),
        kind: TaskKind::Mirror,
        name: None,
        options: serde_json::json!({}),
    };
    s.create_task(&task).await.unwrap();
    drop(s);
    let tmp = tempfile::tempdir().unwrap();
    let with_url = |url: &str, args: &[&str]| {
        let out = Command::new(BIN)
            .current_dir(tmp.path())
            .env("MLTB_DATABASE_URL", url)
            .args(args)
            .output()
            .expect("mltb-backup runs");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, out) = with_url(live.url(), &["backup", "--postgres"]);
    assert!(ok && out.contains("verified"), "{out}");
    let (ok, out) = run(tmp.path(), &["verify"]);
    assert!(ok && out.starts_with("ok "), "{out}");
    let (ok, out) = with_url(live.url(), &["restore", "--postgres"]);
    assert!(!ok && out.contains("is not empty"), "a live database is never written over: {out}");
    let fresh = mltb_testkit::postgres::TestDatabase::create().await.unwrap();
    let (ok, out) = with_url(fresh.url(), &["restore", "--postgres"]);
    assert!(ok && out.contains("restored") && out.contains("into the PostgreSQL database"), "{out}");
    let restored = PostgresStore::connect_postgres(fresh.url(), StoreConfig::new()).await.unwrap();
    assert_eq!(restored.task(1).await.unwrap().map(|t| t.user), Some(7));
    let out = Command::new(BIN)
        .current_dir(tmp.path())
        .env_remove("MLTB_DATABASE_URL")
        .env_remove("MLTB_DATABASE_URL_FILE")
        .args(["backup", "--postgres"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("needs the database's URL in MLTB_DATABASE_URL"), "{err}");
}

#[test]
fn encrypted_off_site_copies_restore_only_with_the_identity() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("data/mltb.db")).unwrap();
    conn.execute_batch("CREATE TABLE notes(text TEXT); INSERT INTO notes VALUES ('sealed');").unwrap();
    drop(conn);
    let key = tmp.path().join("key.txt");
    let out =
        Command::new("age-keygen").arg("-o").arg(&key).output().expect("age-keygen (apt-get install age)");
    assert!(out.status.success());
    let text = std::fs::read_to_string(&key).unwrap();
    let recipient = text.lines().find_map(|l| l.strip_prefix("# public key: ")).unwrap().to_owned();
    let remote = format!(":local:{}/cloud", tmp.path().display());

    let (ok, out) = run(tmp.path(), &["backup", "--remote", &remote, "--encrypt-to", &recipient]);
    assert!(ok && out.contains(".mltb-backup.age"), "{out}");
    let (ok, out) = run(tmp.path(), &["list", "--remote", &remote]);
    assert!(ok && out.contains(".mltb-backup.age"), "{out}");
    std::fs::remove_dir_all(tmp.path().join("data")).unwrap();
    let (ok, out) = run(tmp.path(), &["restore", "--remote", &remote, "--dir", "fetched"]);
    assert!(!ok && out.contains("is encrypted: give --identity FILE"), "{out}");
    let key = key.display().to_string();
    let (ok, out) =
        run(tmp.path(), &["restore", "--remote", &remote, "--dir", "fetched", "--identity", &key]);
    assert!(ok && out.contains("restored"), "{out}");
    let conn = rusqlite::Connection::open(tmp.path().join("data/mltb.db")).unwrap();
    let text: String = conn.query_row("SELECT text FROM notes", [], |r| r.get(0)).unwrap();
    assert_eq!(text, "sealed");
    let (ok, out) = run(tmp.path(), &["backup", "--encrypt-to", &recipient]);
    assert!(!ok && out.contains("give --remote too"), "{out}");
}

#[test]
fn a_replica_is_listed_and_restored_to_its_newest_state_or_a_point_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    let db = tmp.path().join("data/mltb.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE notes(text TEXT); INSERT INTO notes VALUES ('first');",
    )
    .unwrap();
    let mut r =
        mltb_backup::Replicator::open(mltb_backup::ReplicaOptions::new(&db, tmp.path().join("replica")))
            .unwrap();
    r.sync().unwrap();
    conn.execute("INSERT INTO notes VALUES ('second')", []).unwrap();
    let at = r.sync().unwrap().at_unix_ms;
    while std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 <= at
    {
        std::thread::yield_now();
    }
    conn.execute("INSERT INTO notes VALUES ('third')", []).unwrap();
    r.sync().unwrap();
    drop((r, conn));
    let notes = || -> Vec<String> {
        let c = rusqlite::Connection::open(&db).unwrap();
        let mut st = c.prepare("SELECT text FROM notes ORDER BY rowid").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };

    let (ok, out) = run(tmp.path(), &["list", "--replica", "replica"]);
    assert!(ok && out.contains(" from ") && out.contains("run(s)"), "{out}");
    let (ok, out) = run(tmp.path(), &["verify", "--replica", "replica"]);
    assert!(ok && out.starts_with("ok ") && out.contains("3 run(s)"), "{out}");
    for f in ["mltb.db", "mltb.db-wal", "mltb.db-shm"] {
        let _ = std::fs::remove_file(tmp.path().join("data").join(f));
    }
    // --at in ISO form: the state of the second sync.
    let stamp = mltb_backup::utc_stamp(at);
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..19]
    );
    let (ok, out) = run(tmp.path(), &["restore", "--replica", "replica", "--at", &iso]);
    assert!(ok && out.contains("restored") && out.contains("run(s) replayed"), "{out}");
    assert_eq!(notes(), ["first", "second"]);
    let (ok, out) = run(tmp.path(), &["restore", "--replica", "replica"]);
    assert!(ok && out.contains("is now") && out.contains(".before-restore-"), "{out}");
    assert_eq!(notes(), ["first", "second", "third"]);
    let (ok, out) = run(tmp.path(), &["restore", "--replica", "replica", "--at", "yesterday"]);
    assert!(!ok && out.contains("expected a UTC time"), "{out}");
    let (ok, out) = run(tmp.path(), &["restore", "--at", &iso]);
    assert!(!ok && out.contains("--replica"), "--at needs --replica: {out}");
    // A damaged run is found by verify, which names it and how far the replica is good.
    let g = mltb_backup::generations(&tmp.path().join("replica")).unwrap().pop().unwrap();
    let last = g.runs.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(last, bytes).unwrap();
    let (ok, out) = run(tmp.path(), &["verify", "--replica", "replica"]);
    assert!(!ok && out.contains("DAMAGED") && out.contains("2 run(s)") && out.contains("checksum"), "{out}");
}

#[test]
fn a_progress_bar_shows_on_a_terminal_and_never_in_a_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("data/mltb.db")).unwrap();
    conn.execute_batch("CREATE TABLE blobs(b BLOB); INSERT INTO blobs VALUES (randomblob(3000000));")
        .unwrap();
    drop(conn);
    // A pipe: results only, no bar, no carriage returns.
    let (ok, out) = run(tmp.path(), &["backup"]);
    assert!(ok && !out.contains('\r') && !out.contains("MB/s"), "{out:?}");
    // A terminal (`script` gives the program a pseudo-terminal): the bar, up to 100%.
    let shown = Command::new("script")
        .current_dir(tmp.path())
        .args(["-qec", &format!("{BIN} backup"), "/dev/null"])
        .output()
        .expect("`script` runs (Debian: apt-get install bsdutils)");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{text}");
    assert!(text.contains("… backing up") && text.contains("100%") && text.contains("MB/s"), "{text:?}");
    assert!(text.contains("verified"), "the result follows the bar: {text:?}");
}

#[test]
fn a_damaged_remote_copy_never_replaces_the_good_local_backup_of_the_same_name() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("data/mltb.db")).unwrap();
    conn.execute_batch("CREATE TABLE notes(text TEXT); INSERT INTO notes VALUES ('local');").unwrap();
    drop(conn);
    let remote = format!(":local:{}/cloud", tmp.path().display());
    let (ok, out) = run(tmp.path(), &["backup", "--remote", &remote]);
    assert!(ok && out.contains("copied to"), "{out}");
    let name = std::fs::read_dir(tmp.path().join("cloud")).unwrap().next().unwrap().unwrap().file_name();
    let local = tmp.path().join("backups").join(&name);
    let good = std::fs::read(&local).unwrap();
    // The remote copy rots.
    let cloud = tmp.path().join("cloud").join(&name);
    let mut bytes = std::fs::read(&cloud).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&cloud, bytes).unwrap();

    let (ok, out) = run(tmp.path(), &["restore", "--remote", &remote]);
    assert!(!ok && out.contains("checksum mismatch"), "{out}");
    assert!(std::fs::read(&local).unwrap() == good, "the local backup is as it was");
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "the damaged copy is removed, nothing else is left: {left:?}");
    let (ok, out) = run(tmp.path(), &["verify"]);
    assert!(ok && out.starts_with("ok "), "{out}");

    // A good remote copy restores, and the local one of its name stays as it is.
    std::fs::copy(&local, &cloud).unwrap();
    std::fs::write(&local, b"not what the remote holds").unwrap();
    let (ok, out) = run(tmp.path(), &["restore", "--remote", &remote]);
    assert!(ok && out.contains("restored") && out.contains("not kept"), "{out}");
    assert!(std::fs::read(&local).unwrap() == b"not what the remote holds", "the local file stays");
}

#[test]
fn verify_tells_a_damaged_backup_from_one_it_cannot_check() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("data/mltb.db")).unwrap();
    conn.execute_batch("CREATE TABLE notes(text TEXT);").unwrap();
    drop(conn);
    let (ok, out) = run(tmp.path(), &["backup"]);
    assert!(ok, "{out}");
    // A file that cannot be opened (a directory named like a backup): not a verdict.
    std::fs::create_dir(tmp.path().join("mltb-20200101T000000.000Z.mltb-backup")).unwrap();
    let (ok, out) = run(tmp.path(), &["verify", "mltb-20200101T000000.000Z.mltb-backup"]);
    assert!(!ok && out.contains("cannot check") && !out.contains("DAMAGED"), "{out}");
    assert!(out.contains("could not be checked"), "{out}");
}

#[test]
fn the_database_url_file_follows_the_bots_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let with = |vars: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(tmp.path()).env_remove("MLTB_DATABASE_URL").env_remove("MLTB_DATABASE_URL_FILE");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.args(["backup", "--postgres"]).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let file = tmp.path().join("url");
    std::fs::write(&file, "postgres://mltb@127.0.0.1:1/mltb\n").unwrap();
    let path = file.display().to_string();
    let (ok, err) =
        with(&[("MLTB_DATABASE_URL", "postgres://x@127.0.0.1:1/y"), ("MLTB_DATABASE_URL_FILE", &path)]);
    assert!(!ok && err.contains("both MLTB_DATABASE_URL and MLTB_DATABASE_URL_FILE"), "{err}");
    let (ok, err) = with(&[("MLTB_DATABASE_URL_FILE", "/dev/zero")]);
    assert!(!ok && err.contains("/dev/zero is not a regular file"), "{err}");
    std::fs::write(&file, "\n").unwrap();
    let (ok, err) = with(&[("MLTB_DATABASE_URL_FILE", &path)]);
    assert!(!ok && err.contains(&format!("the secret file {path} is empty")), "{err}");
    std::fs::write(&file, vec![b'x'; usize::try_from(mltb_store::secret::MAX_FILE).unwrap() + 1]).unwrap();
    let (ok, err) = with(&[("MLTB_DATABASE_URL_FILE", &path)]);
    assert!(!ok && err.contains("holds more than"), "{err}");
}
