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
