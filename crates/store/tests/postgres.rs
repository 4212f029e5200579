//! PostgreSQL only: refusing a newer schema, concurrent start-ups, choosing the backend
//! from config. Runs with the `postgres` feature against `DATABASE_URL` (testkit).
#![cfg(feature = "postgres")]

mod support;

use mltb_store::{
    AnyStore, Backend, BackendKind, Database, Error, LATEST_VERSION, PostgresStore, StoreConfig,
};
use mltb_testkit::TestDatabase;
use support::new_task;

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
    assert_eq!(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(), vec![1, 42]);
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
