//! Backups of a PostgreSQL store the real store library wrote: `pg_dump`, verify with
//! `pg_restore --list`, restore into a new database (never over a live one). Needs
//! PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`) and its
//! client tools (Debian: `apt-get install postgresql-client`).

mod support;

use mltb_backup::{Error, PgBackupOptions};
use mltb_store::{PostgresStore, StoreConfig};
use mltb_testkit::postgres::TestDatabase;
use support::task;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_is_dumped_verified_and_restored_into_a_new_database_only() {
    let live = TestDatabase::create().await.expect("PostgreSQL (DATABASE_URL) is reachable");
    let s = PostgresStore::connect_postgres(live.url(), StoreConfig::new()).await.unwrap();
    for n in 1..=20 {
        s.create_task(&task(n)).await.unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backups");
    let url = live.url().to_owned();
    let made = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || mltb_backup::backup_postgres(&PgBackupOptions::new(url, dir))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(made.manifest.schema_version, mltb_store::LATEST_VERSION);
    assert_eq!(made.manifest.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["postgres.dump"]);
    let after = s.create_task(&task(21)).await.unwrap();
    mltb_backup::verify(&made.path).unwrap();
    assert_eq!(mltb_backup::list(&dir).unwrap().len(), 1);

    // The live database is never written over.
    let path = made.path.clone();
    let url = live.url().to_owned();
    let e = tokio::task::spawn_blocking(move || mltb_backup::restore_postgres(&path, &url, None))
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("is not empty") && e.to_string().contains("createdb"), "{e}");

    // Into a new, empty database: everything up to the backup, nothing after.
    let fresh = TestDatabase::create().await.unwrap();
    let (path, url) = (made.path.clone(), fresh.url().to_owned());
    let done = tokio::task::spawn_blocking(move || mltb_backup::restore_postgres(&path, &url, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.manifest.schema_version, mltb_store::LATEST_VERSION);
    let restored = PostgresStore::connect_postgres(fresh.url(), StoreConfig::new()).await.unwrap();
    for n in 1..=20 {
        assert!(restored.task(n).await.unwrap().is_some_and(|t| t.user == n), "task {n} is back");
    }
    assert!(restored.task(after.id).await.unwrap().is_none(), "written after the backup: not in it");

    // A SQLite restore of it is refused, naming the right way; a damaged dump is caught.
    let e = mltb_backup::restore(&mltb_backup::RestoreOptions::file(&made.path, tmp.path().join("x.db")))
        .unwrap_err();
    assert!(e.to_string().contains("holds a PostgreSQL dump"), "{e}");
    let mut bytes = std::fs::read(&made.path).unwrap();
    bytes.truncate(bytes.len() - 10);
    let cut = tmp.path().join("cut.mltb-backup");
    std::fs::write(&cut, bytes).unwrap();
    assert!(matches!(mltb_backup::verify(&cut), Err(Error::Damaged { .. })));
}

#[test]
fn a_bad_url_or_a_password_never_shows_in_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = mltb_backup::backup_postgres(&PgBackupOptions::new("mysql://x/y", tmp.path())).unwrap_err();
    assert!(e.to_string().contains("expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"), "{e}");
    // A closed port: pg_dump fails, and its message does not carry the password.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://mltb:hunter2-secret@127.0.0.1:{port}/mltb");
    let e = mltb_backup::backup_postgres(&PgBackupOptions::new(url, tmp.path())).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("pg_dump failed") && !text.contains("hunter2"), "{text}");
    assert!(!format!("{:?}", PgBackupOptions::new("postgres://u:hunter2@h/d", "b")).contains("hunter2"));
}

/// A `bin_dir` of wrappers that log each call (the program, its arguments and
/// `PGPASSWORD`) to `calls.log` beside them, then run the real tool from the `PATH`.
fn logging_bin_dir(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("pg-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["pg_dump", "pg_restore", "psql"] {
        let real = String::from_utf8(
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let script = bin.join(tool);
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"{tool} $* PGPASSWORD=$PGPASSWORD\" >> '{}'\nexec {} \"$@\"\n",
                bin.join("calls.log").display(),
                real.trim()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_come_from_bin_dir_and_a_password_in_the_query_goes_only_to_pgpassword() {
    let live = TestDatabase::create().await.expect("PostgreSQL (DATABASE_URL) is reachable");
    let s = PostgresStore::connect_postgres(live.url(), StoreConfig::new()).await.unwrap();
    s.create_task(&task(1)).await.unwrap();
    drop(s);
    let tmp = tempfile::tempdir().unwrap();
    let bin = logging_bin_dir(tmp.path());
    let dir = tmp.path().join("backups");
    // Trust authentication ignores it; what matters is where it shows.
    let secret = "hunter2-in-query";
    let with_password = |url: &str| {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}password={secret}")
    };
    let (url, d, b) = (with_password(live.url()), dir.clone(), bin.clone());
    let made = tokio::task::spawn_blocking(move || {
        mltb_backup::backup_postgres(&PgBackupOptions::new(url, d).bin_dir(b))
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!made.manifest.source.contains(secret), "{}", made.manifest.source);
    assert!(!std::fs::read(&made.path).unwrap().windows(secret.len()).any(|w| w == secret.as_bytes()));
    let (path, url, b) = (made.path.clone(), with_password(live.url()), bin.clone());
    let e = tokio::task::spawn_blocking(move || mltb_backup::restore_postgres(&path, &url, Some(&b)))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not empty") && !e.contains(secret), "{e}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = format!("postgres://mltb@127.0.0.1:{port}/mltb?password={secret}");
    let e = mltb_backup::backup_postgres(&PgBackupOptions::new(&closed, tmp.path())).unwrap_err().to_string();
    assert!(e.contains("pg_dump failed") && !e.contains(secret), "{e}");
    assert!(!format!("{:?}", PgBackupOptions::new(closed, "b")).contains(secret));

    let calls = std::fs::read_to_string(bin.join("calls.log")).unwrap();
    for line in calls.lines() {
        let (args, password) = line.split_once(" PGPASSWORD=").unwrap();
        assert!(!args.contains(secret), "on a command line: {line}");
        if args.contains("--dbname") {
            assert_eq!(password, secret, "the password reaches the tool: {line}");
        }
    }
    // Every pg_restore ran from bin_dir: reading the schema version, verify's listing
    // (after the backup and before the restore), and the restore's own.
    assert!(calls.lines().filter(|l| l.starts_with("pg_restore --list")).count() >= 2, "{calls}");
    assert!(calls.lines().any(|l| l.starts_with("pg_restore --data-only")), "{calls}");
}
