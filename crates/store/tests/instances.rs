//! Several instances on one database: task claims with leases and fencing tokens, a
//! restarted instance adopting its own tasks, a role held by one instance at a time with
//! a position saved under its fence. On SQLite (two stores on one file) and PostgreSQL
//! (`DATABASE_URL`; there also concurrent claimers never take the same task).

mod support;

use std::time::Duration;

use mltb_store::{AnyStore, CancelRequest, Database, Error, Part, Progress, StoreConfig, TaskState};
use support::new_task;

/// Where the instances' database is.
enum Db {
    Sqlite(tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres(mltb_testkit::TestDatabase),
}

impl Db {
    fn sqlite() -> Self {
        Db::Sqlite(tempfile::tempdir().unwrap())
    }

    #[cfg(feature = "postgres")]
    async fn postgres() -> Self {
        Db::Postgres(mltb_testkit::TestDatabase::create().await.unwrap())
    }

    /// A store of instance `id` on the database.
    async fn open(&self, id: &str) -> AnyStore {
        self.open_with(id, StoreConfig::new()).await
    }

    /// A store of instance `id` whose clock is `offset_ms` ahead of this machine's
    /// (behind when negative).
    async fn open_skewed(&self, id: &str, offset_ms: i64) -> AnyStore {
        self.open_with(id, StoreConfig::new().clock(move || mltb_store::now_ms() + offset_ms)).await
    }

    async fn open_with(&self, id: &str, config: StoreConfig) -> AnyStore {
        let db = match self {
            Db::Sqlite(dir) => Database::Sqlite(dir.path().join("mltb.db")),
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => Database::Postgres(db.url().to_owned()),
        };
        AnyStore::open(&db, config.instance(id)).await.unwrap()
    }
}

const LONG: Duration = Duration::from_secs(600);
/// A lease that runs out at once.
const GONE: Duration = Duration::from_millis(0);

/// Claims on `store` until it gets task `id` (its lease elsewhere must run out first:
/// at most a few milliseconds).
async fn claim_when_free(store: &AnyStore, id: i64) -> mltb_store::TaskWithFiles {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(t) = store.claim_tasks(10, LONG).await.unwrap().into_iter().find(|t| t.task.id == id) {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "task {id} never became free to claim");
        tokio::task::yield_now().await;
    }
}

fn progress(done: u64) -> Progress {
    Progress { done, total: Some(100), speed: 1 }
}

async fn claims_leases_and_fencing(db: Db) {
    let a = db.open("a").await;
    let b = db.open("b").await;
    for i in 0..5 {
        a.create_task(&new_task(1, &format!("https://x.test/{i}"))).await.unwrap();
    }
    // Claims split the tasks, oldest first; a claimed task is not claimed again.
    let got: Vec<(i64, i64)> =
        a.claim_tasks(2, LONG).await.unwrap().iter().map(|t| (t.task.id, t.task.fence)).collect();
    assert_eq!(got, [(1, 1), (2, 1)]);
    let got: Vec<i64> = b.claim_tasks(2, LONG).await.unwrap().iter().map(|t| t.task.id).collect();
    assert_eq!(got, [3, 4]);
    let task1 = a.task(1).await.unwrap().unwrap();
    assert_eq!((task1.owner.as_deref(), task1.fence), (Some("a"), 1));
    assert!(task1.lease_until.is_some_and(|u| u > task1.created_at));

    // Task 5, claimed by `a` with a lease that runs out, is taken over by `b`.
    assert_eq!(a.claim_tasks(1, GONE).await.unwrap()[0].task.id, 5);
    a.mark_started(5, "0123456789abcdef").await.unwrap();
    let file = a.add_file(5, "five.bin", 100).await.unwrap();
    a.add_part(file, &Part { index: 0, size: 50, message_id: Some(1), remote_path: None }).await.unwrap();
    a.update_progress(5, progress(50)).await.unwrap();
    let taken = claim_when_free(&b, 5).await;
    assert_eq!(taken.task.fence, 2, "a takeover raises the fence");
    assert_eq!((taken.files.len(), taken.files[0].parts.len()), (1, 1), "it comes with its files and parts");
    b.update_progress(5, progress(70)).await.unwrap();

    // The old holder's writes are refused, whatever they are; the new owner's stand.
    let fenced = |r: mltb_store::Result<()>, what: &str| {
        assert!(matches!(r, Err(Error::Fenced { id: 5 })), "{what}: {r:?}");
    };
    fenced(a.update_progress(5, progress(99)).await, "progress");
    fenced(a.mark_uploading(5).await, "a transition");
    fenced(a.set_name(5, "stale").await, "a name");
    fenced(a.set_options(5, &serde_json::json!({})).await, "options");
    fenced(a.add_file(5, "stale.bin", 1).await.map(drop), "a file");
    fenced(
        a.add_part(file, &Part { index: 1, size: 50, message_id: Some(2), remote_path: None }).await,
        "a part",
    );
    fenced(a.mark_completed(5).await, "the end");
    let five = b.task(5).await.unwrap().unwrap();
    assert_eq!(
        (five.state, five.progress.done, five.name, five.owner.as_deref()),
        (TaskState::Downloading, 70, None, Some("b"))
    );
    assert_eq!(b.task_files(5).await.unwrap()[0].parts.len(), 1, "no stale part");
    let err = a.update_progress(5, progress(1)).await.unwrap_err();
    assert!(err.to_string().contains("held by another instance"), "{err}");

    // Renewing tells `a` it lost task 5, once; its own stay.
    let renewed = a.renew_tasks(LONG).await.unwrap();
    assert_eq!((renewed.kept, renewed.lost), (vec![1, 2], vec![5]));
    assert!(a.renew_tasks(LONG).await.unwrap().lost.is_empty(), "reported once");
    fenced(a.update_progress(5, progress(2)).await, "still refused until forgotten");
    a.forget_task(5);
    assert_eq!(a.held_tasks(), [(1, 1), (2, 1)]);

    // `a` restarts under the same id: it adopts its tasks with new fences; the old run's
    // writes are refused.
    let a2 = db.open("a").await;
    let adopted: Vec<(i64, i64)> =
        a2.adopt_tasks(LONG).await.unwrap().iter().map(|t| (t.task.id, t.task.fence)).collect();
    assert_eq!(adopted, [(1, 2), (2, 2)]);
    assert!(matches!(a.update_progress(1, progress(5)).await, Err(Error::Fenced { id: 1 })));
    a2.update_progress(1, progress(6)).await.unwrap();

    // A released task is free at once; an ended one is no longer held.
    assert!(b.release_task(3).await.unwrap());
    assert!(!b.release_task(3).await.unwrap(), "not held any more");
    let got: Vec<i64> = a2.claim_tasks(5, LONG).await.unwrap().iter().map(|t| t.task.id).collect();
    assert_eq!(got, [3]);
    a2.mark_cancelled(2).await.unwrap();
    assert_eq!(a2.held_tasks(), [(1, 2), (3, 2)]);
    assert_eq!(a2.renew_tasks(LONG).await.unwrap().kept, [1, 3]);

    // Without an instance id there is nothing to claim with.
    let plain = match &db {
        Db::Sqlite(dir) => {
            AnyStore::open(&Database::Sqlite(dir.path().join("mltb.db")), StoreConfig::new()).await.unwrap()
        }
        #[cfg(feature = "postgres")]
        Db::Postgres(pg) => {
            AnyStore::open(&Database::Postgres(pg.url().to_owned()), StoreConfig::new()).await.unwrap()
        }
    };
    let err = plain.claim_tasks(1, LONG).await.unwrap_err();
    assert!(err.to_string().contains("instance id"), "{err}");
}

async fn a_role_is_held_by_one_instance_and_its_position_saved_under_its_fence(db: Db) {
    let a = db.open("a").await;
    let b = db.open("b").await;
    assert_eq!(a.role_holder("poller").await.unwrap(), None);
    let held = a.acquire_role("poller", LONG).await.unwrap().expect("a free role is taken");
    assert_eq!((held.holder.as_str(), held.fence, held.position), ("a", 1, None));
    assert_eq!(b.acquire_role("poller", LONG).await.unwrap(), None, "held by a");
    let again = a.acquire_role("poller", LONG).await.unwrap().unwrap();
    assert_eq!(again.fence, 1, "renewed by its holder, the fence stays");
    assert!(a.renew_role(&held, LONG).await.unwrap());

    assert!(a.save_position(&held, 10).await.unwrap());
    assert!(a.save_position(&held, 5).await.unwrap());
    assert_eq!(b.role_holder("poller").await.unwrap().unwrap().position, Some(10), "only forward");

    // Its lease runs out: `b` takes it with a new fence and the saved position.
    let short = a.acquire_role("poller", GONE).await.unwrap().unwrap();
    assert_eq!(short.fence, 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let taken = loop {
        if let Some(t) = b.acquire_role("poller", LONG).await.unwrap() {
            break t;
        }
        assert!(tokio::time::Instant::now() < deadline, "the role never became free");
        tokio::task::yield_now().await;
    };
    assert_eq!((taken.holder.as_str(), taken.fence, taken.position), ("b", 2, Some(10)));
    // The old holder can neither save nor renew.
    assert!(!a.save_position(&held, 20).await.unwrap());
    assert!(!a.renew_role(&held, LONG).await.unwrap());
    assert!(!a.release_role(&held).await.unwrap());
    assert_eq!(a.acquire_role("poller", LONG).await.unwrap(), None);
    assert!(b.save_position(&taken, 11).await.unwrap());
    // Given up, it is free at once.
    assert!(b.release_role(&taken).await.unwrap());
    let back = a.acquire_role("poller", LONG).await.unwrap().unwrap();
    assert_eq!((back.fence, back.position), (3, Some(11)));
}

/// Instance ids and role names are checked before they reach the database: empty, too
/// long or with a NUL byte is refused naming `store.instance` or `role` (a NUL made every
/// claim on PostgreSQL fail with an encoding error that named neither).
async fn bad_instance_ids_and_role_names_are_refused_by_name(db: Db) {
    let database = match &db {
        Db::Sqlite(dir) => Database::Sqlite(dir.path().join("mltb.db")),
        #[cfg(feature = "postgres")]
        Db::Postgres(pg) => Database::Postgres(pg.url().to_owned()),
    };
    let long = "i".repeat(65);
    for id in ["", "a\0b", long.as_str()] {
        let err = AnyStore::open(&database, StoreConfig::new().instance(id)).await.unwrap_err();
        assert!(err.is_bad_input(), "{id:?}: {err:?}");
        assert!(err.to_string().contains("store.instance"), "{id:?}: {err}");
    }
    let a = db.open(&"a".repeat(64)).await;
    assert_eq!(a.instance().map(|i| i.len()), Some(64), "64 bytes are fine");
    let long = "r".repeat(65);
    for role in ["", "po\0ller", long.as_str()] {
        let err = a.acquire_role(role, LONG).await.unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field: "role", .. } | Error::TooLong { field: "role", .. }),
            "{err:?}"
        );
        let err = a.role_holder(role).await.unwrap_err();
        assert!(err.is_bad_input() && err.to_string().contains("role"), "{err:?}");
    }
    let role = "r".repeat(64);
    assert!(a.acquire_role(&role, LONG).await.unwrap().is_some());
    assert!(a.role_holder(&role).await.unwrap().is_some());
}

/// A cancel asked on an instance that does not run the task: a free task (never
/// claimed, or its lease ran out) is cancelled at once with its fence raised; a held one
/// is reported to its holder at its next renewal; a finished or unknown one is not found.
/// Each instance sees the other's tasks with their recorded progress.
async fn cancels_from_elsewhere_and_tasks_elsewhere(db: Db) {
    let a = db.open("a").await;
    let b = db.open("b").await;
    for i in 0..3 {
        a.create_task(&new_task(1, &format!("https://x.test/{i}"))).await.unwrap();
    }
    // a holds 1 for long and 2 with a lease that runs out; nobody holds 3.
    assert_eq!(a.claim_tasks(1, LONG).await.unwrap()[0].task.id, 1);
    assert_eq!(a.claim_tasks(1, GONE).await.unwrap()[0].task.id, 2);
    a.update_progress(1, progress(40)).await.unwrap();
    let seen: Vec<(i64, Option<String>, u64)> =
        b.tasks_elsewhere().await.unwrap().into_iter().map(|t| (t.id, t.owner, t.progress.done)).collect();
    assert_eq!(seen, [(1, Some("a".into()), 40), (2, Some("a".into()), 0), (3, None, 0)]);
    let mine: Vec<i64> = a.tasks_elsewhere().await.unwrap().iter().map(|t| t.id).collect();
    assert_eq!(mine, [3], "a's own tasks are not elsewhere for a");

    assert_eq!(b.request_cancel(3).await.unwrap(), CancelRequest::Cancelled);
    assert_eq!(b.task(3).await.unwrap().unwrap().state, TaskState::Cancelled);
    // Task 2's lease ran out: cancelled at once, and a's late write is refused.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(b.request_cancel(2).await.unwrap(), CancelRequest::Cancelled);
    let task2 = b.task(2).await.unwrap().unwrap();
    assert_eq!((task2.state, task2.owner, task2.fence), (TaskState::Cancelled, None, 2));
    assert!(matches!(a.update_progress(2, progress(9)).await, Err(Error::Fenced { id: 2 })));
    // Task 1 is held: its holder is asked, and cancels it itself.
    assert_eq!(b.request_cancel(1).await.unwrap(), CancelRequest::Asked);
    assert_eq!(b.task(1).await.unwrap().unwrap().state, TaskState::Queued);
    let renewed = a.renew_tasks(LONG).await.unwrap();
    assert_eq!(renewed.cancel, [1]);
    assert!(renewed.kept.contains(&1));
    a.mark_cancelled(1).await.unwrap();
    assert_eq!(a.renew_tasks(LONG).await.unwrap().cancel, Vec::<i64>::new());
    assert_eq!(b.request_cancel(1).await.unwrap(), CancelRequest::NotFound, "already finished");
    assert_eq!(b.request_cancel(99).await.unwrap(), CancelRequest::NotFound);
    assert!(b.tasks_elsewhere().await.unwrap().is_empty());
    // The chats are told of each end, once.
    let unannounced: Vec<i64> = b.unannounced_tasks(10).await.unwrap().iter().map(|t| t.id).collect();
    assert_eq!(unannounced, [1, 2, 3]);
}

#[tokio::test]
async fn sqlite_cancels_from_elsewhere() {
    cancels_from_elsewhere_and_tasks_elsewhere(Db::sqlite()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_cancels_from_elsewhere() {
    cancels_from_elsewhere_and_tasks_elsewhere(Db::postgres().await).await;
}

/// An hour: far more than any lease here.
const HOUR_MS: i64 = 3_600_000;

/// On PostgreSQL leases and roles are judged by the server's clock: an instance whose
/// clock is an hour ahead does not take another's live task or role, and one whose
/// clock is an hour behind takes a task whose lease has run out, and stamps its rows by
/// its own clock.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_judges_leases_by_the_servers_clock_whatever_the_instances_clocks() {
    let db = Db::postgres().await;
    let a = db.open("a").await;
    let ahead = db.open_skewed("ahead", HOUR_MS).await;
    let behind = db.open_skewed("behind", -HOUR_MS).await;
    let id = a.create_task(&new_task(1, "https://x.test/1")).await.unwrap().id;
    assert_eq!(a.claim_tasks(1, LONG).await.unwrap()[0].task.id, id);
    assert!(ahead.claim_tasks(10, LONG).await.unwrap().is_empty(), "a's lease of 10 minutes holds");
    assert_eq!(ahead.request_cancel(id).await.unwrap(), CancelRequest::Asked, "held: its holder is asked");
    let held = a.acquire_role("poller", LONG).await.unwrap().expect("a free role");
    assert_eq!(ahead.acquire_role("poller", LONG).await.unwrap(), None, "a's role holds");

    // The server's clock, not a's, wrote the lease's end.
    let task = a.task(id).await.unwrap().unwrap();
    let until = task.lease_until.expect("claimed");
    let skew = a.clock_skew_ms().await.unwrap().expect("PostgreSQL");
    let expected = mltb_store::now_ms() + skew + 600_000;
    assert!((until - expected).abs() < 5_000, "lease end {until}, expected about {expected}");

    // A lease that has run out by the server's clock is taken, even by a clock behind.
    let b = db.open("b").await;
    let id2 = b.create_task(&new_task(1, "https://x.test/2")).await.unwrap().id;
    assert_eq!(b.claim_tasks(1, GONE).await.unwrap()[0].task.id, id2);
    let taken = claim_when_free(&behind, id2).await;
    assert_eq!(taken.task.owner.as_deref(), Some("behind"));
    let stamped = behind.task(id2).await.unwrap().unwrap();
    assert!(
        stamped.lease_until.is_some_and(|u| u > mltb_store::now_ms() + 500_000),
        "the lease runs 10 minutes by the server's clock, not an hour less: {stamped:?}"
    );
    let c = db.open_skewed("c", -HOUR_MS).await;
    let id3 = c.create_task(&new_task(1, "https://x.test/3")).await.unwrap().id;
    let created = c.task(id3).await.unwrap().unwrap().created_at;
    assert!(created < mltb_store::now_ms() - HOUR_MS + 60_000, "rows are stamped by the instance's clock");
    assert!(a.renew_role(&held, LONG).await.unwrap());
}

/// On SQLite every instance is on the database's machine, and leases are judged by the
/// instance's clock ([`StoreConfig::clock`]): one set an hour ahead sees a lease of 10
/// minutes as run out.
#[tokio::test]
async fn sqlite_judges_leases_by_the_instances_clock() {
    let db = Db::sqlite();
    let a = db.open("a").await;
    let ahead = db.open_skewed("ahead", HOUR_MS).await;
    let id = a.create_task(&new_task(1, "https://x.test/1")).await.unwrap().id;
    assert_eq!(a.claim_tasks(1, LONG).await.unwrap()[0].task.id, id);
    assert!(db.open("b").await.claim_tasks(10, LONG).await.unwrap().is_empty(), "held by a");
    assert_eq!(ahead.claim_tasks(10, LONG).await.unwrap()[0].task.id, id);
}

/// The clock skew against the database server: none to read on SQLite (one machine);
/// on PostgreSQL, a server on this machine reads this machine's clock, so the skew is
/// within the round trip's rounding (a second is far more than enough).
#[tokio::test]
async fn sqlite_has_no_clock_skew_to_read() {
    let db = Db::sqlite();
    assert_eq!(db.open("a").await.clock_skew_ms().await.unwrap(), None);
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_reads_the_servers_clock_skew() {
    let db = Db::postgres().await;
    let skew = db.open("a").await.clock_skew_ms().await.unwrap().expect("PostgreSQL reads its clock");
    assert!(skew.abs() < 1_000, "a server on this machine is {skew} ms off its clock");
}

#[tokio::test]
async fn sqlite_claims_leases_and_fencing() {
    claims_leases_and_fencing(Db::sqlite()).await;
}

#[tokio::test]
async fn sqlite_roles() {
    a_role_is_held_by_one_instance_and_its_position_saved_under_its_fence(Db::sqlite()).await;
}

#[tokio::test]
async fn sqlite_bad_instance_ids_and_role_names() {
    bad_instance_ids_and_role_names_are_refused_by_name(Db::sqlite()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_bad_instance_ids_and_role_names() {
    bad_instance_ids_and_role_names_are_refused_by_name(Db::postgres().await).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_claims_leases_and_fencing() {
    claims_leases_and_fencing(Db::postgres().await).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_roles() {
    a_role_is_held_by_one_instance_and_its_position_saved_under_its_fence(Db::postgres().await).await;
}

/// Five instances claim 200 tasks at once, ten at a time, until none is left: every
/// task is claimed exactly once; five take one role at once: exactly one gets it.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_take_the_same_task_and_one_role_has_one_holder() {
    let db = Db::postgres().await;
    let first = db.open("setup").await;
    for i in 0..200 {
        first.create_task(&new_task(1, &format!("https://x.test/{i}"))).await.unwrap();
    }
    let mut stores = Vec::new();
    for i in 0..5 {
        stores.push(db.open(&format!("i{i}")).await);
    }
    let claimers = stores.iter().map(|s| async move {
        let mut mine = Vec::new();
        loop {
            let got = s.claim_tasks(10, LONG).await.unwrap();
            if got.is_empty() {
                return mine;
            }
            mine.extend(got.into_iter().map(|t| t.task.id));
        }
    });
    let claimed: Vec<Vec<i64>> = futures_util::future::join_all(claimers).await;
    let mut all: Vec<i64> = claimed.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<i64>>(), "each task once");
    assert!(claimed.iter().filter(|c| !c.is_empty()).count() >= 2, "the work is spread: {claimed:?}");
    for (i, s) in stores.iter().enumerate() {
        let owned = s.held_tasks().len();
        assert_eq!(owned, claimed[i].len());
    }

    let takes = stores.iter().map(|s| s.acquire_role("poller", LONG));
    let held: Vec<_> = futures_util::future::join_all(takes).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(held.iter().flatten().count(), 1, "{held:?}");
}
