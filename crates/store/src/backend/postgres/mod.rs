//! [`PostgresBackend`]: a PostgreSQL database through an `mltb-pool` pool.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::sync::Arc;

use bytes::BytesMut;
use mltb_pool::{Pool, PoolConfig, PostgresManager, StatementCache, StatementStats};
use mltb_query_analyzer::SpanId;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{GenericClient, IsolationLevel};

use super::schema::{LATEST_VERSION, POSTGRES};
use super::{Backend, BackendKind};
use crate::{Error, Executor, Invalidations, Outcome, Result, Row, Statement, Value};

mod listener;

/// Serializes migrations of one database across processes (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x6d6c_7462_5f73_746f; // "mltb_sto"

/// PostgreSQL through an [`mltb_pool::Pool`] of [`PostgresManager`] clients (no TLS).
#[derive(Debug)]
pub struct PostgresBackend {
    pool: Pool<PostgresManager>,
    statements: Arc<StatementStats>,
    location: String,
    /// For the invalidation listener's own connection. Boxed: it is large, and
    /// `AnyBackend` holds this by value.
    config: Box<tokio_postgres::Config>,
}

impl PostgresBackend {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/db`);
    /// the bot reads it from `DATABASE_URL`.
    pub async fn connect(url: &str, pool: PoolConfig) -> Result<Self> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| Error::Invalid { field: "database url", reason: format!("{e}") })?;
        let location = format!("PostgreSQL database {:?}", config.get_dbname().unwrap_or("(default)"));
        let manager = PostgresManager::from_config(config.clone());
        let statements = Arc::clone(manager.statement_stats());
        let pool = Pool::connect(manager, pool).await?;
        Ok(Self { pool, statements, location, config: Box::new(config) })
    }

    /// The connection pool (for its metrics).
    pub fn pool(&self) -> &Pool<PostgresManager> {
        &self.pool
    }

    /// Hits and misses of the connections' prepared-statement caches: each statement
    /// text is prepared once per connection, then runs in one round trip.
    pub fn statement_stats(&self) -> &StatementStats {
        &self.statements
    }
}

/// `?1` → `$1`. The store's SQL never has a `?` inside a literal.
fn dialect(sql: &'static str) -> Cow<'static, str> {
    if sql.contains('?') { Cow::Owned(sql.replace('?', "$")) } else { Cow::Borrowed(sql) }
}

impl Backend for PostgresBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    async fn migrate(&self, exec: &Executor) -> Result<i64> {
        let mut client = self.pool.get().await?;
        let cache = Arc::clone(client.statements());
        let tx = client.transaction().await?;
        let lock = Statement::query("SELECT pg_advisory_xact_lock(?1)", vec![Value::Int(MIGRATION_LOCK)]);
        run_one(&tx, &cache, exec, None, &lock).await?;
        let exists = Statement::query("SELECT to_regclass('schema_migrations')::text", vec![]);
        let exists = run_one(&tx, &cache, exec, None, &exists).await?;
        let found = if exists.rows.first().and_then(|r| r.opt_text(0).ok().flatten()).is_some() {
            let max = Statement::query("SELECT coalesce(max(version), 0) FROM schema_migrations", vec![]);
            run_one(&tx, &cache, exec, None, &max)
                .await?
                .rows
                .first()
                .map(|r| r.int(0))
                .transpose()?
                .unwrap_or(0)
        } else {
            0
        };
        if found > LATEST_VERSION {
            // Dropping the transaction rolls it back: nothing was written.
            return Err(Error::NewerSchema {
                location: self.location.clone(),
                found,
                supported: LATEST_VERSION,
            });
        }
        for m in POSTGRES.iter().filter(|m| m.version > found) {
            exec.run_script_async(None, m.sql, tx.batch_execute(m.sql)).await?;
            let record = Statement::execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                vec![Value::Int(m.version), m.name.into(), Value::Int(crate::now_ms())],
            );
            run_one(&tx, &cache, exec, None, &record).await?;
        }
        tx.commit().await?;
        // The schema changed under any statement this connection prepared before.
        if found < LATEST_VERSION {
            cache.clear();
        }
        Ok(found)
    }

    async fn run(
        &self,
        exec: &Executor,
        span: Option<SpanId>,
        statements: Vec<Statement>,
        transaction: bool,
    ) -> Result<Vec<Outcome>> {
        let mut client = self.pool.get().await?;
        let cache = Arc::clone(client.statements());
        let mut out = Vec::with_capacity(statements.len());
        if transaction {
            // Reads that belong together (a list and its files) see one snapshot.
            let reads_only = statements.iter().all(|s| is_read(s.sql));
            let tx = if reads_only {
                client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await?
            } else {
                client.transaction().await?
            };
            for s in &statements {
                // A statement whose plan went stale has aborted the transaction: the
                // cache is cleared, and the caller's retry prepares afresh.
                out.push(run_one(&tx, &cache, exec, span, s).await?);
            }
            tx.commit().await?;
        } else {
            for s in &statements {
                let outcome = match run_one(&**client, &cache, exec, span, s).await {
                    // The cache is already cleared: prepare afresh, once.
                    Err(Error::Postgres(e)) if StatementCache::is_stale_error(&e) => {
                        run_one(&**client, &cache, exec, span, s).await
                    }
                    other => other,
                };
                out.push(outcome?);
            }
        }
        Ok(out)
    }

    /// `LISTEN <channel>` on a dedicated connection (reconnecting with backoff when it
    /// drops), after checking that `channel` is 1 to 63 bytes of lowercase ASCII
    /// letters, digits and `_`, not starting with a digit.
    async fn listen_for_invalidation(
        &self,
        channel: &str,
        invalidations: Invalidations,
    ) -> Result<Option<tokio::task::AbortHandle>> {
        listener::start(&self.config, channel, invalidations).await.map(Some)
    }

    /// `SELECT pg_notify(<channel>, <payload>)`.
    fn notify_invalidation(&self, channel: &str, payload: String) -> Option<Statement> {
        Some(Statement::query(listener::NOTIFY, vec![Value::Text(channel.to_owned()), Value::Text(payload)]))
    }
}

fn is_read(sql: &str) -> bool {
    sql.trim_start().get(..6).is_some_and(|s| s.eq_ignore_ascii_case("select"))
}

/// Runs one statement, prepared through the connection's cache: one round trip once the
/// connection has prepared this text. An error that says the cached plan is stale clears
/// the cache ([`StatementCache::invalidate_on`]).
async fn run_one<C: GenericClient + Sync>(
    c: &C,
    cache: &StatementCache,
    exec: &Executor,
    span: Option<SpanId>,
    s: &Statement,
) -> Result<Outcome> {
    let sql = dialect(s.sql);
    let params: Vec<&(dyn ToSql + Sync)> = s.params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    exec.run_async(span, s, async {
        let prepared = cache.prepare(c, sql.as_ref()).await?;
        if !s.returns_rows {
            let n = c.execute(&prepared, &params).await.inspect_err(|e| {
                cache.invalidate_on(e);
            })?;
            return Ok((n, Outcome { rows: Vec::new(), affected: n }));
        }
        let rows = c.query(&prepared, &params).await.inspect_err(|e| {
            cache.invalidate_on(e);
        })?;
        let rows = rows.iter().map(from_postgres).collect::<Result<Vec<_>>>()?;
        let n = rows.len() as u64;
        Ok((n, Outcome { rows, affected: n }))
    })
    .await
}

fn from_postgres(row: &tokio_postgres::Row) -> Result<Row> {
    let mut values = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_();
        let v = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?.map(|n| Value::Int(n.into()))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?.map(|n| Value::Int(n.into()))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(|b| Value::Int(b.into()))
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
            row.try_get::<_, Option<String>>(i)?.map(Value::Text)
        } else if *ty == Type::VOID {
            None
        } else {
            return Err(Error::decode(col.name(), format!("unsupported column type {ty}")));
        };
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) if *ty == Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
            Value::Int(n) if *ty == Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
            Value::Int(n) if *ty == Type::BOOL => (*n != 0).to_sql(ty, out),
            Value::Int(n) => n.to_sql(ty, out),
            Value::Text(s) => s.as_str().to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [Type::INT8, Type::INT4, Type::INT2, Type::BOOL, Type::TEXT, Type::VARCHAR, Type::NAME].contains(ty)
    }

    to_sql_checked!();
}
