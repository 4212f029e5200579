//! PostgreSQL only: refusing a newer schema, concurrent start-ups, choosing the backend
//! from config, cache invalidation across instances (LISTEN/NOTIFY). Runs with the
//! `postgres` feature against `DATABASE_URL` (testkit).
#![cfg(feature = "postgres")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use mltb_query_analyzer::SpanId;
use mltb_store::{
    AnyStore, Backend, BackendKind, Database, Error, Executor, InvalidationStats, Invalidations,
    LATEST_VERSION, Outcome, PostgresBackend, PostgresStore, Role, Statement, Store, StoreConfig,
    UserSettings,
};
use mltb_testkit::TestDatabase;
use support::{Recorder, new_task};

/// How long a test waits for a notification before failing (it normally takes
/// milliseconds; the bound only turns a lost notification into a failure).
const WAIT: Duration = Duration::from_secs(10);

/// Two stores on one database, as two bot instances would be: `a` writes, `b` reads
/// (its queries recorded by `sink`).
struct Instances {
    db: TestDatabase,
    a: PostgresStore,
    b: PostgresStore,
    sink: Arc<Recorder>,
}

async fn instances() -> Instances {
    let db = TestDatabase::create().await.unwrap();
    let a = PostgresStore::connect_postgres(db.url(), StoreConfig::new()).await.unwrap();
    let sink = Recorder::new();
    let b = PostgresStore::connect_postgres(db.url(), support::config(&sink)).await.unwrap();
    // Each store is listening once it has opened.
    assert_eq!(a.invalidation_stats().connects, 1);
    assert_eq!(b.invalidation_stats().connects, 1);
    Instances { db, a, b, sink }
}

/// Waits (bounded by [`WAIT`]) until `store`'s invalidation counters satisfy `done`.
async fn wait_until<B: Backend>(
    store: &Store<B>,
    done: impl FnMut(&InvalidationStats) -> bool,
) -> InvalidationStats {
    let mut watch = store.invalidation_watch();
    let stats = tokio::time::timeout(WAIT, watch.wait_for(done))
        .await
        .expect("timed out waiting for an invalidation")
        .expect("the store is alive");
    *stats
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_as_it_was() {
    let db = TestDatabase::create().await.unwrap();
    let store = PostgresStore::connect_postgres(db.url(), StoreConfig::new()).await.unwrap();
    store.create_task(&new_task(1, "https://kept")).await.unwrap();
    drop(store);
    let client = db.connect().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (42, 'from the future', 0)",
        )
        .await
        .unwrap();
    let err = PostgresStore::connect_postgres(db.url(), StoreConfig::new()).await.unwrap_err();
    match &err {
        Error::NewerSchema { found, supported, location } => {
            assert_eq!((*found, *supported), (42, LATEST_VERSION));
            assert!(location.contains(db.name()), "{location}");
        }
        other => panic!("expected NewerSchema, got {other}"),
    }
    assert!(err.to_string().contains("run the newer program"), "{err}");
    // Untouched: the same migrations and the same task.
    let rows = client.query("SELECT version FROM schema_migrations ORDER BY version", &[]).await.unwrap();
    let applied: Vec<i64> = (1..=LATEST_VERSION).chain([42]).collect();
    assert_eq!(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(), applied);
    let tasks: i64 = client.query_one("SELECT count(*) FROM tasks", &[]).await.unwrap().get(0);
    assert_eq!(tasks, 1);
}

#[tokio::test]
async fn concurrent_start_ups_migrate_once() {
    let db = TestDatabase::create().await.unwrap();
    let opens = (0..4).map(|_| PostgresStore::connect_postgres(db.url(), StoreConfig::new()));
    let stores = futures_util::future::join_all(opens).await;
    for s in &stores {
        assert!(s.is_ok(), "{:?}", s.as_ref().err());
    }
    let client = db.connect().await.unwrap();
    let n: i64 = client.query_one("SELECT count(*) FROM schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(n, LATEST_VERSION);
}

#[tokio::test]
async fn any_store_opens_postgres_from_a_url() {
    let db = TestDatabase::create().await.unwrap();
    let store = AnyStore::open(&Database::Postgres(db.url().to_owned()), StoreConfig::new()).await.unwrap();
    assert_eq!(store.backend().kind(), BackendKind::Postgres);
    assert_eq!(store.invalidation_stats().connects, 1, "AnyStore on PostgreSQL listens too");
    let t = store.create_task(&new_task(1, "https://pg")).await.unwrap();
    assert_eq!(store.unfinished_tasks().await.unwrap()[0].task.id, t.id);

    let err = AnyStore::open(
        &Database::Postgres("postgres://u@127.0.0.1:5432/db?bogus=1".into()),
        StoreConfig::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Invalid { field: "database url", .. }), "{err}");
}

#[tokio::test]
async fn a_role_change_on_one_instance_invalidates_the_others_cache() {
    let Instances { a, b, sink, db: _db } = instances().await;
    let reads = || sink.count_matching("FROM users WHERE id");
    a.set_role(1, 42, Role::Authorized).await.unwrap();
    // B hears of that first write too; let it land before B caches anything.
    wait_until(&b, |s| s.received >= 1).await;

    assert_eq!(b.role(42).await.unwrap(), Some(Role::Authorized));
    assert_eq!(b.role(42).await.unwrap(), Some(Role::Authorized));
    assert_eq!(reads(), 1, "the second read is served from B's cache");

    let before = b.invalidation_stats().received;
    a.set_role(1, 42, Role::Banned).await.unwrap();
    let after = wait_until(&b, |s| s.received > before).await;
    assert_eq!(after.received, before + 1);
    assert_eq!(b.role(42).await.unwrap(), Some(Role::Banned), "B sees the ban at once, not after the TTL");
    assert_eq!(reads(), 2, "the invalidated key was read again");

    // Removing the user is seen the same way.
    let before = b.invalidation_stats().received;
    assert!(a.remove_user(1, 42).await.unwrap());
    wait_until(&b, |s| s.received > before).await;
    assert_eq!(b.role(42).await.unwrap(), None);
    assert_eq!(b.invalidation_stats().ignored, 0);

    // A store skips the notifications of its own writes (it invalidated at once).
    let own = wait_until(&a, |s| s.own >= 3).await;
    assert_eq!((own.own, own.received), (3, 0));
}

#[tokio::test]
async fn removing_a_chat_on_one_instance_is_seen_by_the_other() {
    let Instances { a, b, sink, db: _db } = instances().await;
    let reads = || sink.count_matching("FROM authorized_chats WHERE chat_id");
    assert!(a.authorize_chat(1, -100).await.unwrap());
    wait_until(&b, |s| s.received >= 1).await;

    assert!(b.is_chat_authorized(-100).await.unwrap());
    assert!(b.is_chat_authorized(-100).await.unwrap());
    assert_eq!(reads(), 1, "the second read is served from B's cache");

    let before = b.invalidation_stats().received;
    assert!(a.unauthorize_chat(1, -100).await.unwrap());
    wait_until(&b, |s| s.received > before).await;
    assert!(!b.is_chat_authorized(-100).await.unwrap(), "the /unauth on A holds on B");
    assert_eq!(reads(), 2);

    // Settings too.
    let settings = || sink.count_matching("FROM user_settings WHERE user_id");
    assert_eq!(b.settings(7).await.unwrap(), UserSettings::default());
    assert_eq!(b.settings(7).await.unwrap(), UserSettings::default());
    assert_eq!(settings(), 1);
    let before = b.invalidation_stats().received;
    let new = UserSettings { name_prefix: Some("[mltb] ".into()), ..UserSettings::default() };
    a.put_settings(7, &new).await.unwrap();
    wait_until(&b, |s| s.received > before).await;
    assert_eq!(b.settings(7).await.unwrap(), new);
    assert_eq!(settings(), 2);
}

#[tokio::test]
async fn a_rolled_back_write_sends_no_notification() {
    let Instances { a, b, sink, db } = instances().await;
    let reads = || sink.count_matching("FROM users WHERE id");
    a.set_role(1, 42, Role::Authorized).await.unwrap();
    wait_until(&b, |s| s.received >= 1).await;
    assert_eq!(b.role(42).await.unwrap(), Some(Role::Authorized));

    // Make the audit insert (the last statement of set_role, after the notification)
    // fail, so the transaction that ran pg_notify rolls back.
    let client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
        )
        .await
        .unwrap();
    let before = b.invalidation_stats().received;
    let err = a.set_role(1, 42, Role::Banned).await.unwrap_err();
    let message = match &err {
        Error::Postgres(e) => e.as_db_error().map(|d| d.message().to_owned()),
        _ => None,
    };
    assert_eq!(message.as_deref(), Some("refused by the test"), "{err:?}");
    client.batch_execute("DROP TRIGGER refuse_audit ON audit_log").await.unwrap();

    // A committed write after it is a barrier: notifications arrive in commit order,
    // so once B has this one, it would have had the rolled-back one.
    assert!(a.authorize_chat(1, -5).await.unwrap());
    let after = wait_until(&b, |s| s.received > before).await;
    assert_eq!(after.received, before + 1, "only the committed write was notified");
    assert_eq!(b.role(42).await.unwrap(), Some(Role::Authorized), "still cached, still true");
    assert_eq!(reads(), 1, "B's cached role was not invalidated");
    let role: String = client.query_one("SELECT role FROM users WHERE id = 42", &[]).await.unwrap().get(0);
    assert_eq!(role, "authorized");
}

#[tokio::test]
async fn a_listener_reconnect_clears_the_cache() {
    let Instances { b, sink, db, .. } = instances().await;
    let reads = || sink.count_matching("FROM users WHERE id");
    let client = db.connect().await.unwrap();
    client
        .batch_execute("INSERT INTO users (id, role, updated_at) VALUES (42, 'authorized', 0)")
        .await
        .unwrap();
    assert_eq!(b.role(42).await.unwrap(), Some(Role::Authorized));

    // A change no store notifies (a manual edit) is not seen while the entry lives...
    client.batch_execute("UPDATE users SET role = 'banned' WHERE id = 42").await.unwrap();
    assert_eq!(b.role(42).await.unwrap(), Some(Role::Authorized));
    assert_eq!(reads(), 1);

    // ...but when the listener's connection drops, notifications may have been lost,
    // so the cache is cleared on reconnect.
    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND query = 'LISTEN mltb_store_invalidate'",
            &[&db.name()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "found no listener connection to terminate");
    let stats = wait_until(&b, |s| s.connects >= 2).await;
    assert_eq!(stats.connects, 2);
    assert_eq!(b.role(42).await.unwrap(), Some(Role::Banned));
    assert_eq!(reads(), 2, "read from the database after the reconnect");

    // Notifications flow on the new connection (its own write comes back to it).
    let before = b.invalidation_stats().own;
    b.set_role(1, 42, Role::Sudo).await.unwrap();
    wait_until(&b, |s| s.own > before).await;
}

#[tokio::test]
async fn a_bad_channel_name_is_refused() {
    let db = TestDatabase::create().await.unwrap();
    for bad in ["", "Upper", "has-dash", "9starts_with_digit", &"x".repeat(64)] {
        let config = StoreConfig::new().invalidation_channel(bad);
        let err = PostgresStore::connect_postgres(db.url(), config).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "invalidation channel", .. }), "{bad:?}: {err}");
    }
    // A custom name works, and instances on another channel are not told.
    let a = PostgresStore::connect_postgres(db.url(), StoreConfig::new().invalidation_channel("blue_1"))
        .await
        .unwrap();
    let b = PostgresStore::connect_postgres(db.url(), StoreConfig::new().invalidation_channel("blue_1"))
        .await
        .unwrap();
    let other = PostgresStore::connect_postgres(db.url(), StoreConfig::new()).await.unwrap();
    a.set_role(1, 5, Role::Sudo).await.unwrap();
    wait_until(&b, |s| s.received >= 1).await;
    // A barrier: `other` hears its own later write, so it would have had a's by now.
    other.set_role(1, 6, Role::Sudo).await.unwrap();
    wait_until(&other, |s| s.own >= 1).await;
    assert_eq!(other.invalidation_stats().received, 0, "a write on another channel is not heard");
    assert_eq!(a.invalidation_stats().received, 0, "nor is one on the default channel");
}

#[tokio::test]
async fn a_closed_store_reads_the_database_instead_of_its_cache() {
    let Instances { b, sink, db: _db, .. } = instances().await;
    let reads = || sink.count_matching("FROM users WHERE id");
    assert_eq!(b.role(42).await.unwrap(), None);
    assert_eq!(b.role(42).await.unwrap(), None);
    assert_eq!(reads(), 1);
    // Closing stops the listener: other instances' writes would go unseen, so the
    // cache is no longer used.
    b.close().await;
    assert_eq!(b.role(42).await.unwrap(), None);
    assert_eq!(b.role(42).await.unwrap(), None);
    assert_eq!(reads(), 3);
}

#[tokio::test]
async fn dropping_the_store_stops_its_listener() {
    let Instances { a, b, db: _db, .. } = instances().await;
    let mut watch = b.invalidation_watch();
    let _ = watch.borrow_and_update();
    let clone = b.clone();
    drop(b);
    // A clone keeps the store, and so the listener, alive: it still hears a's writes.
    a.set_role(1, 8, Role::Sudo).await.unwrap();
    tokio::time::timeout(WAIT, watch.changed()).await.unwrap().unwrap();
    assert_eq!(watch.borrow_and_update().received, 1);
    // The last handle gone, the listener task ends and with it the last owner of the
    // counters: the watch reports its sender gone (an event, not a timeout).
    drop(clone);
    let ended = tokio::time::timeout(WAIT, watch.changed()).await.expect("the listener task did not end");
    assert!(ended.is_err(), "the counters' sender was dropped");
}

#[tokio::test]
async fn statements_are_prepared_once_and_replanned_after_a_schema_change() {
    let db = TestDatabase::create().await.unwrap();
    // One connection, so that every read finds what the one before prepared.
    let config = StoreConfig::new().pool(mltb_pool::PoolConfig::new().max_size(1).min_idle(1));
    let store = PostgresStore::connect_postgres(db.url(), config).await.unwrap();
    let task = store.create_task(&new_task(1, "https://example.com/a.iso")).await.unwrap();
    let stats = store.backend().statement_stats();
    let before = (stats.hits(), stats.misses());
    for _ in 0..5 {
        assert_eq!(store.task(task.id).await.unwrap().expect("created").id, task.id);
    }
    assert_eq!((stats.hits() - before.0, stats.misses() - before.1), (4, 1), "prepared once, reused 4 times");
    // A column's type changes under the prepared statement: the read is replanned and
    // retried instead of failing with "cached plan must not change result type".
    let admin = db.connect().await.unwrap();
    admin.batch_execute("ALTER TABLE tasks ALTER COLUMN name TYPE varchar(1000)").await.unwrap();
    for _ in 0..3 {
        assert_eq!(store.task(task.id).await.unwrap().expect("created").id, task.id);
    }
    assert!(stats.invalidations() >= 1, "the stale plan was noticed");
}

/// A backend of the user's own that wraps PostgreSQL and forwards every method, the
/// invalidation hooks too, as any wrapper (metrics, tracing, retries) would.
#[derive(Debug)]
struct Wrapped(PostgresBackend);

impl Backend for Wrapped {
    fn kind(&self) -> BackendKind {
        self.0.kind()
    }

    async fn migrate(&self, exec: &Executor) -> mltb_store::Result<i64> {
        self.0.migrate(exec).await
    }

    async fn run(
        &self,
        exec: &Executor,
        span: Option<SpanId>,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> mltb_store::Result<Vec<Outcome>> {
        self.0.run(exec, span, statements, transaction).await
    }

    async fn listen_for_invalidation(
        &self,
        channel: &str,
        invalidations: Invalidations,
    ) -> mltb_store::Result<Option<tokio::task::AbortHandle>> {
        self.0.listen_for_invalidation(channel, invalidations).await
    }

    fn notify_invalidation(&self, channel: &str, payload: String) -> Option<Statement> {
        self.0.notify_invalidation(channel, payload)
    }
}

#[tokio::test]
async fn a_wrapped_postgres_backend_keeps_cross_instance_invalidation() {
    let db = TestDatabase::create().await.unwrap();
    let a = PostgresStore::connect_postgres(db.url(), StoreConfig::new()).await.unwrap();
    let sink = Recorder::new();
    let pool = mltb_pool::PoolConfig::new().max_size(4).min_idle(1);
    let wrapped = Wrapped(PostgresBackend::connect(db.url(), pool).await.unwrap());
    let b = Store::with_backend(wrapped, support::config(&sink)).await.unwrap();
    // The store found the listener through the trait, not by knowing the type.
    assert_eq!(b.invalidation_stats().connects, 1, "the wrapper's hook started a listener");
    let reads = || sink.count_matching("FROM users WHERE id");
    assert_eq!(b.role(42).await.unwrap(), None);
    assert_eq!(b.role(42).await.unwrap(), None);
    assert_eq!(reads(), 1, "cached while listening");
    // a's write reaches b's cache...
    a.set_role(1, 42, Role::Sudo).await.unwrap();
    wait_until(&b, |s| s.received >= 1).await;
    assert_eq!(b.role(42).await.unwrap(), Some(Role::Sudo));
    // ...and b's writes notify a.
    b.set_role(1, 43, Role::Sudo).await.unwrap();
    wait_until(&a, |s| s.received >= 1).await;
    wait_until(&b, |s| s.own >= 1).await;
}
