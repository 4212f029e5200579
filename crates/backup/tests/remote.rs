//! Off-site copies on an rclone remote (real rclone, an inline `:local:` remote standing
//! in for S3 or SFTP): upload, list, download and restore, prune, and bad input.
//! Needs `rclone` (Debian: `apt-get install rclone`).

mod support;

use std::path::Path;

use mltb_backup::{BackupOptions, Error, Remote, RestoreOptions, Retention};
use mltb_store::{SqliteStore, StoreConfig};
use support::task;

async fn store(db: &Path) -> SqliteStore {
    SqliteStore::open_sqlite(db, StoreConfig::new()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_go_to_the_remote_come_back_for_a_restore_and_are_pruned_by_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, dir, cloud) =
        (tmp.path().join("data/mltb.db"), tmp.path().join("backups"), tmp.path().join("cloud"));
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let remote = Remote::new(&format!(":local:{}/mltb", cloud.display())).unwrap();
    assert_eq!(remote.list().unwrap(), [], "a remote path that does not exist yet holds no backup");

    let s = store(&db).await;
    let mut made = Vec::new();
    for n in 1..=3 {
        s.create_task(&task(n)).await.unwrap();
        let b = mltb_backup::backup(&BackupOptions::new(&db, &dir)).unwrap();
        let at = remote.upload(&b.path).unwrap();
        assert!(at.ends_with(&*b.path.file_name().unwrap().to_string_lossy()), "{at}");
        made.push(b);
    }
    drop(s);
    let listed = remote.list().unwrap();
    let names: Vec<&str> = listed.iter().map(|b| b.name.as_str()).collect();
    let mut want: Vec<String> =
        made.iter().map(|b| b.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    want.reverse();
    assert_eq!(names, want, "newest first");
    for (b, m) in listed.iter().zip(made.iter().rev()) {
        assert_eq!((b.bytes, b.created_unix_ms), (m.bytes, m.manifest.created_unix_ms));
    }

    // The machine is lost: the newest backup comes back from the remote and restores.
    std::fs::remove_dir_all(tmp.path().join("data")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let fetched = remote.download(&listed[0].name, &tmp.path().join("fetched")).unwrap();
    let done = mltb_backup::restore(&RestoreOptions::file(&fetched, &db)).unwrap();
    assert_eq!(done.manifest.created_unix_ms, made[2].manifest.created_unix_ms);
    let s = store(&db).await;
    for n in 1..=3 {
        assert!(s.task(n).await.unwrap().is_some(), "task {n} came back from the remote");
    }
    drop(s);

    // Keep the newest one: the two older go, dry run first.
    let policy = Retention::default();
    let dry = remote.prune(&policy, true).unwrap();
    assert_eq!((dry.kept.len(), dry.deleted.len()), (1, 2));
    assert_eq!(remote.list().unwrap().len(), 3, "a dry run deletes nothing");
    let done = remote.prune(&policy, false).unwrap();
    assert_eq!(done.kept, [listed[0].name.clone()]);
    assert_eq!(remote.list().unwrap().len(), 1);
    // Files that are not backups are left alone.
    std::fs::write(cloud.join("mltb/notes.txt"), "mine").unwrap();
    assert_eq!(remote.list().unwrap().len(), 1);
    remote.prune(&policy, false).unwrap();
    assert!(cloud.join("mltb/notes.txt").exists());
}

#[test]
fn bad_remotes_and_names_are_refused_saying_what_was_expected() {
    for bad in ["/just/a/path", "no colon", "a/b:c", ""] {
        let e = Remote::new(bad).unwrap_err();
        assert!(e.to_string().contains("expected an rclone remote such as"), "{bad}: {e}");
    }
    let remote = Remote::new(":local:/nowhere").unwrap();
    for bad in ["../mltb-20261203T142233.123Z.mltb-backup", "notes.txt", "mltb-yesterday.mltb-backup"] {
        let e = remote.download(bad, Path::new("/tmp")).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{bad}: {e}");
    }
    let e = Remote::new("offsite:x").unwrap().rclone("/no/such/rclone").list().unwrap_err();
    assert!(e.to_string().contains("is not installed (Debian: apt-get install rclone)"), "{e}");
    // A remote rclone does not know fails with rclone's own words.
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("rclone.conf");
    std::fs::write(&conf, "").unwrap();
    let e = Remote::new("nosuchremote:x").unwrap().config(&conf).list().unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("nosuchremote:x: rclone: list failed (exit"), "{text}");
}

/// A fresh age identity file in `dir`, and its public key (recipient). Needs `age`
/// (Debian: `apt-get install age`).
fn age_identity(dir: &Path) -> (std::path::PathBuf, String) {
    let path = dir.join("age-key.txt");
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen runs (Debian: apt-get install age)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&path).unwrap();
    let recipient = text.lines().find_map(|l| l.strip_prefix("# public key: ")).unwrap().to_owned();
    (path, recipient)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_copies_hold_no_readable_data_and_open_only_with_the_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, dir) = (tmp.path().join("data/mltb.db"), tmp.path().join("backups"));
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let s = store(&db).await;
    s.create_task(&task(4242)).await.unwrap();
    drop(s);
    let made = mltb_backup::backup(&BackupOptions::new(&db, &dir)).unwrap();
    let (identity, recipient) = age_identity(tmp.path());
    let age = Path::new("age");

    let sealed = mltb_backup::encrypt(&made.path, std::slice::from_ref(&recipient), age).unwrap();
    assert!(sealed.to_string_lossy().ends_with(".mltb-backup.age"));
    let bytes = std::fs::read(&sealed).unwrap();
    let plain = std::fs::read(&made.path).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"), "an age file");
    let manifest_text = b"schema_version";
    assert!(
        plain.windows(manifest_text.len()).any(|w| w == manifest_text),
        "the backup's manifest is readable"
    );
    assert!(!bytes.windows(manifest_text.len()).any(|w| w == manifest_text), "the copy's is not");
    assert!(mltb_backup::verify(&sealed).is_err(), "an encrypted copy is not a backup until decrypted");

    // On the remote, listed as encrypted; back, it decrypts to the same bytes.
    let remote = Remote::new(&format!(":local:{}/cloud", tmp.path().display())).unwrap();
    remote.upload(&sealed).unwrap();
    let listed = remote.list().unwrap();
    assert_eq!((listed.len(), listed[0].encrypted), (1, true));
    assert_eq!(listed[0].created_unix_ms, made.manifest.created_unix_ms);
    let fetched = remote.download(&listed[0].name, &tmp.path().join("fetched")).unwrap();
    let out = tmp.path().join("fetched/plain.mltb-backup");
    mltb_backup::decrypt(&fetched, &identity, &out, age).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), plain);
    mltb_backup::verify(&out).unwrap();

    // Another identity does not open it, and leaves nothing behind.
    let other_dir = tmp.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let (other, _) = age_identity(&other_dir);
    let wrong = tmp.path().join("fetched/wrong.mltb-backup");
    let e = mltb_backup::decrypt(&fetched, &other, &wrong, age).unwrap_err();
    assert!(e.to_string().contains("age failed"), "{e}");
    assert!(!wrong.exists() && !tmp.path().join("fetched/wrong.mltb-backup.partial").exists());
    let e = mltb_backup::encrypt(&made.path, &[], age).unwrap_err();
    assert!(e.to_string().contains("at least one age recipient"), "{e}");
    let e = mltb_backup::encrypt(&made.path, &["not-a-key".into()], age).unwrap_err();
    assert!(e.to_string().contains("age failed"), "{e}");
}
