//! A fresh PostgreSQL database per test, on the server named by `DATABASE_URL`.
//!
//! Creating a database is cheap (a copy of `template1`) and gives each test an empty
//! schema without cleanup code, so tests can run in parallel against one server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::NoTls;

use crate::util::{random_hex, redact};
use crate::{Error, Result};

/// The server tests use when `DATABASE_URL` is unset or empty.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

const SERVICE: &str = "PostgreSQL";
const HINT: &str = "start PostgreSQL on 127.0.0.1:5432 (e.g. `service postgresql start`) or set \
                    DATABASE_URL=postgres://USER[:PASSWORD]@HOST:PORT/DB to a server where that user may \
                    CREATE DATABASE";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DROP_TIMEOUT: Duration = Duration::from_secs(10);
/// `CREATE DATABASE` fails with 55006 (object in use) while another session is connected
/// to the template; that is transient, so it is retried this many times.
const CREATE_ATTEMPTS: u32 = 5;

/// `DATABASE_URL` when set and not empty, otherwise [`DEFAULT_DATABASE_URL`].
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.into())
}

/// A database created for one test and dropped (with its connections) when this is dropped.
///
/// Its name is `mltb_test_<pid>_<counter>_<random>`, so parallel tests and parallel test
/// processes never share one.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a database on the server named by [`database_url`].
    pub async fn create() -> Result<Self> {
        Self::create_on(&database_url()).await
    }

    /// Creates a database on the server at `admin_url`, connecting to the database that
    /// URL names to issue `CREATE DATABASE`.
    pub async fn create_on(admin_url: &str) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "mltb_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            random_hex(4)
        );
        let url = with_database(admin_url, &name).ok_or_else(|| Error::BadEnv {
            var: "DATABASE_URL",
            value: redact(admin_url),
            detail: "expected a URL of the form postgres://USER[:PASSWORD]@HOST[:PORT]/DB".into(),
        })?;
        let client = connect_url(admin_url).await?;
        let sql = format!("CREATE DATABASE {}", quote_ident(&name));
        let mut attempt = 1;
        loop {
            match client.batch_execute(&sql).await {
                Ok(()) => break,
                Err(e) if attempt < CREATE_ATTEMPTS && is_object_in_use(&e) => {
                    // Another session holds template1 for a moment; this is server state
                    // we cannot await directly, so back off briefly and try again.
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(Error::Other(format!(
                        "CREATE DATABASE {name} on {} failed: {}",
                        redact(admin_url),
                        pg_detail(&e)
                    )));
                }
            }
        }
        tracing::debug!(database = %name, "created test database");
        Ok(Self { name, url, admin_url: admin_url.to_string() })
    }

    /// The URL of this database: the admin URL with its database name replaced.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connects to this database; the connection is driven by a task spawned on the
    /// current tokio runtime and ends when the client is dropped.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        connect_url(&self.url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop is synchronous and may run inside (or outside) any runtime, so the drop
        // runs on a thread of its own with its own runtime, and is waited for with a bound.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().name("mltb-testkit-dropdb".into()).spawn(move || {
            let _ = done_tx.send(drop_database_blocking(&admin_url, &name));
        });
        let handle = match spawned {
            Ok(handle) => handle,
            Err(e) => {
                tracing::warn!(database = %self.name, error = %e, "could not spawn a thread to drop the test database");
                return;
            }
        };
        match done_rx.recv_timeout(DROP_TIMEOUT + Duration::from_secs(1)) {
            Ok(result) => {
                let _ = handle.join();
                match result {
                    Ok(()) => tracing::debug!(database = %self.name, "dropped test database"),
                    Err(e) => {
                        tracing::warn!(database = %self.name, error = %e, "could not drop the test database")
                    }
                }
            }
            Err(_) => {
                tracing::warn!(database = %self.name, "dropping the test database timed out; it may be left behind")
            }
        }
    }
}

fn drop_database_blocking(admin_url: &str, name: &str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("building a runtime to drop a test database", e))?;
    runtime.block_on(async {
        let work = async {
            let client = connect_url(admin_url).await?;
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| Error::Other(format!("DROP DATABASE {name} failed: {}", pg_detail(&e))))
        };
        tokio::time::timeout(DROP_TIMEOUT, work).await.unwrap_or_else(|_| {
            Err(Error::Other(format!("DROP DATABASE {name} took longer than {DROP_TIMEOUT:?}")))
        })
    })
}

/// Connects to `url` and spawns the connection task.
async fn connect_url(url: &str) -> Result<tokio_postgres::Client> {
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e: tokio_postgres::Error| Error::BadEnv {
            var: "DATABASE_URL",
            value: redact(url),
            detail: format!("not a PostgreSQL connection URL: {e}"),
        })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let (client, connection) = config.connect(NoTls).await.map_err(|e| Error::Unreachable {
        service: SERVICE,
        url: redact(url),
        detail: pg_detail(&e),
        hint: HINT,
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "test database connection ended");
        }
    });
    Ok(client)
}

/// `url` with its database (the path) replaced by `name`; `None` unless it is a
/// `postgres://` or `postgresql://` URL.
fn with_database(url: &str, name: &str) -> Option<String> {
    let scheme_end = url.find("://")?;
    if !matches!(&url[..scheme_end], "postgres" | "postgresql") {
        return None;
    }
    let after_scheme = scheme_end + 3;
    let rest = &url[after_scheme..];
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let path_start = after_scheme + authority_len;
    let query_start = url[path_start..].find('?').map_or(url.len(), |i| path_start + i);
    Some(format!("{}/{name}{}", &url[..path_start], &url[query_start..]))
}

/// A double-quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn is_object_in_use(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE)
}

/// The server's message when there is one, else the error and its causes.
fn pg_detail(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exists(name: &str) -> bool {
        let admin = connect_url(&database_url()).await.unwrap();
        let row =
            admin.query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name]).await.unwrap();
        row.get::<_, i64>(0) == 1
    }

    #[tokio::test]
    async fn databases_are_distinct_usable_and_dropped() {
        let a = TestDatabase::create().await.unwrap();
        let b = TestDatabase::create().await.unwrap();
        assert_ne!(a.name(), b.name());
        assert_ne!(a.url(), b.url());
        assert!(a.name().starts_with(&format!("mltb_test_{}_", std::process::id())));
        assert!(a.url().ends_with(&format!("/{}", a.name())), "{}", a.url());

        let client = a.connect().await.unwrap();
        client.batch_execute("CREATE TABLE t (id int primary key); INSERT INTO t VALUES (7)").await.unwrap();
        let row = client.query_one("SELECT id FROM t", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 7);
        let current: String = client.query_one("SELECT current_database()", &[]).await.unwrap().get(0);
        assert_eq!(current, a.name());

        let other = b.connect().await.unwrap();
        let err = other.query_one("SELECT id FROM t", &[]).await.unwrap_err();
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE));

        let (a_name, b_name) = (a.name().to_string(), b.name().to_string());
        assert!(exists(&a_name).await && exists(&b_name).await);
        // `client` is still connected: the drop must force it off.
        drop(a);
        drop(b);
        assert!(!exists(&a_name).await, "{a_name} should be dropped");
        assert!(!exists(&b_name).await, "{b_name} should be dropped");
        drop(client);
    }

    #[tokio::test]
    async fn unreachable_server_names_the_url_without_its_password() {
        let port = crate::free_port().unwrap();
        let url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/test");
        let err = TestDatabase::create_on(&url).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");
    }

    #[test]
    fn database_name_is_replaced_in_the_url() {
        assert_eq!(with_database("postgres://u@h:5432/test", "x").as_deref(), Some("postgres://u@h:5432/x"));
        assert_eq!(
            with_database("postgresql://u:p@h/test?sslmode=disable", "x").as_deref(),
            Some("postgresql://u:p@h/x?sslmode=disable")
        );
        assert_eq!(with_database("postgres://h", "x").as_deref(), Some("postgres://h/x"));
        assert_eq!(
            with_database("postgres://h?connect_timeout=2", "x").as_deref(),
            Some("postgres://h/x?connect_timeout=2")
        );
        assert_eq!(with_database("host=h dbname=test", "x"), None);
        assert_eq!(with_database("mysql://h/test", "x"), None);
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[tokio::test]
    async fn malformed_url_is_a_bad_env_error() {
        let err = TestDatabase::create_on("host=127.0.0.1 dbname=test").await.unwrap_err();
        assert!(matches!(err, Error::BadEnv { var: "DATABASE_URL", .. }), "{err:?}");
    }
}
