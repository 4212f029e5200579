//! Restart safety under a real `kill -9`.
//!
//! The binary re-executes itself as a child (selected by an environment variable) that
//! creates tasks, starts some and reports progress on several at once, printing each
//! task's id only after `create_task` (or `mark_started`) returned. The parent kills
//! it with SIGKILL mid-run, then checks the file with `PRAGMA integrity_check`, reopens
//! the store, and finds every task the child said was committed among the unfinished
//! tasks. A plain `main` (no libtest harness) because the child must not run tests.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use futures_util::future::join_all;
use mltb_store::{NewTask, Progress, Source, SqliteStore, StoreConfig, TaskKind, TaskState};

const CHILD_ENV: &str = "MLTB_STORE_CRASH_CHILD";
const NAME: &str = "kill_9_mid_run_loses_no_committed_task";
/// Tasks the parent waits to see committed before it kills the child.
const KILL_AFTER: usize = 150;
/// The child's loop bound (it is killed long before).
const CHILD_MAX_TASKS: u64 = 100_000;

fn main() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(Path::new(&path));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            let _ = writeln!(out, "{NAME}: test");
        }
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-'));
    if filter.is_some_and(|f| !NAME.contains(f.as_str())) {
        let _ = writeln!(
            out,
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n"
        );
        return;
    }
    let _ = writeln!(out, "\nrunning 1 test");
    parent();
    let _ = writeln!(
        out,
        "test {NAME} ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
}

fn new_task(i: u64) -> NewTask {
    NewTask {
        chat: -1,
        user: 1,
        source: Source::Url(format!("https://files.example/{i}.bin")),
        kind: if i.is_multiple_of(2) { TaskKind::Mirror } else { TaskKind::Leech },
        name: Some(format!("{i}.bin")),
        options: serde_json::json!({ "i": i }),
    }
}

fn child(path: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open_sqlite(path, StoreConfig::new()).await.expect("child: open");
        let mut out = std::io::stdout();
        let mut ids = Vec::new();
        for i in 0..CHILD_MAX_TASKS {
            let task = store.create_task(&new_task(i)).await.expect("child: create_task");
            writeln!(out, "committed {}", task.id).and_then(|()| out.flush()).expect("child: stdout");
            ids.push(task.id);
            if i.is_multiple_of(3) {
                store.mark_started(task.id, &format!("{:016x}", task.id)).await.expect("child: mark_started");
                writeln!(out, "started {}", task.id).and_then(|()| out.flush()).expect("child: stdout");
            }
            // Progress for the latest tasks at once: these share write transactions.
            let progress = ids.iter().rev().take(8).map(|&id| {
                store.update_progress(id, Progress { done: i * 1024, total: Some(1 << 30), speed: 1 << 20 })
            });
            for result in join_all(progress).await {
                result.expect("child: update_progress");
            }
        }
    });
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mltb.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().unwrap();
    let mut committed = BTreeSet::new();
    let mut started = BTreeSet::new();
    let mut killed = false;
    // Lines printed before the kill still arrive after it; EOF ends the loop.
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the child's stdout");
        match line.split_once(' ') {
            Some(("committed", id)) => committed.insert(id.parse::<i64>().unwrap()),
            Some(("started", id)) => started.insert(id.parse::<i64>().unwrap()),
            _ => panic!("unexpected line from the child: {line}"),
        };
        if !killed && committed.len() >= KILL_AFTER {
            child.kill().expect("SIGKILL the child"); // std sends SIGKILL on Unix
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "the child stopped by itself after {} tasks: {status}", committed.len());
    assert_eq!(status.signal(), Some(9), "the child must die of SIGKILL: {status}");

    // The file as the crash left it (with its WAL) is a sound database.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store =
            SqliteStore::open_sqlite(&path, StoreConfig::new()).await.expect("reopen after the crash");
        let unfinished = store.unfinished_tasks().await.unwrap();
        let found: BTreeSet<i64> = unfinished.iter().map(|t| t.task.id).collect();
        let lost: Vec<_> = committed.difference(&found).collect();
        assert!(lost.is_empty(), "committed tasks lost in the crash: {lost:?}");
        for t in &unfinished {
            if started.contains(&t.task.id) {
                assert_eq!(t.task.state, TaskState::Downloading, "task {}", t.task.id);
                assert_eq!(t.task.gid, Some(format!("{:016x}", t.task.id)));
            }
            let i = t.task.options["i"].as_u64().expect("options survive");
            assert_eq!(t.task.source, Source::Url(format!("https://files.example/{i}.bin")));
        }
        // The reopened store works: the tasks can be resumed and finished.
        let first = unfinished[0].task.id;
        if unfinished[0].task.state == TaskState::Queued {
            store.mark_started(first, "resumed").await.unwrap();
        }
        store.mark_completed(first).await.unwrap();
        assert!(!store.unfinished_tasks().await.unwrap().iter().any(|t| t.task.id == first));
    });
}
