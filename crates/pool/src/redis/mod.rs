//! [`RedisManager`]: Redis multiplexed connections that notice when they break.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Client, Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};

use crate::{Error, Result};

/// Opens [`RedisConnection`]s to one Redis server.
///
/// Unlike `bb8-redis`, whose `has_broken` is always false, a connection that saw an
/// error meaning "reconnect" (dropped socket, I/O error) reports itself broken, so the
/// pool closes it on return instead of handing it to the next caller.
#[derive(Debug, Clone)]
pub struct RedisManager {
    client: Client,
}

impl RedisManager {
    /// A manager for `url` (e.g. `redis://127.0.0.1:6379/0`); nothing is contacted yet.
    pub fn new(url: impl IntoConnectionInfo) -> Result<Self> {
        let client = Client::open(url).map_err(|e| Error::invalid("redis url", e.to_string()))?;
        Ok(Self { client })
    }

    /// A manager for the URL `url`, checked now; nothing is contacted yet.
    ///
    /// Unlike [`new`](Self::new), a URL that cannot be used fails with an error that
    /// names it (its password redacted by [`redact_url`](crate::redact_url)) and the
    /// expected form.
    pub fn from_url(url: &str) -> Result<Self> {
        let client = Client::open(url).map_err(|e| {
            Error::invalid(
                "redis url",
                format!(
                    "{:?} is not usable ({e}); expected redis://[:PASSWORD@]HOST:PORT[/DB]",
                    crate::redact_url(url)
                ),
            )
        })?;
        Ok(Self { client })
    }

    /// A manager using an existing client.
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }
}

impl bb8::ManageConnection for RedisManager {
    type Connection = RedisConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<RedisConnection, RedisError> {
        let inner = self.client.get_multiplexed_async_connection().await?;
        Ok(RedisConnection { inner, broken: false })
    }

    async fn is_valid(&self, conn: &mut RedisConnection) -> Result<(), RedisError> {
        redis::cmd("PING").query_async::<()>(conn).await
    }

    fn has_broken(&self, conn: &mut RedisConnection) -> bool {
        conn.broken
    }
}

/// A pooled Redis connection: use it like any async Redis connection
/// (`redis::cmd(..).query_async(&mut *conn)`, `AsyncCommands`).
#[derive(Debug)]
pub struct RedisConnection {
    inner: MultiplexedConnection,
    broken: bool,
}

impl RedisConnection {
    /// Whether a command on this connection failed in a way that needs a new connection.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Marks the connection broken, so the pool closes it on return.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// The multiplexed connection underneath. Errors of commands sent through it
    /// directly are not seen by [`is_broken`](Self::is_broken).
    pub fn get_ref(&self) -> &MultiplexedConnection {
        &self.inner
    }

    fn observe<T>(&mut self, result: &Result<T, RedisError>) {
        if let Err(e) = result
            && (e.is_unrecoverable_error() || e.is_connection_dropped() || e.is_io_error())
        {
            self.broken = true;
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.inner.req_packed_command(cmd).await;
            self.observe(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.inner.req_packed_commands(pipeline, offset, count).await;
            self.observe(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
