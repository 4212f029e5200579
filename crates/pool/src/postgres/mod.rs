//! [`PostgresManager`]: tokio-postgres clients without TLS.

use tokio_postgres::{Client, Config, NoTls};

use crate::{Error, Result};

/// Opens `tokio_postgres::Client`s (no TLS; for a server on loopback or a private
/// network). Each client's connection task is spawned on the current runtime.
///
/// Validation runs an empty query (one round trip, no result set); a client whose
/// connection task has ended — the server closed it or the backend was terminated —
/// reports itself broken.
#[derive(Debug, Clone)]
pub struct PostgresManager {
    config: Config,
}

impl PostgresManager {
    /// A manager for a connection string (`postgres://user@host/db` or
    /// `host=... user=...`); nothing is contacted yet.
    pub fn new(url: &str) -> Result<Self> {
        let config = url.parse::<Config>().map_err(|e| Error::invalid("postgres url", e.to_string()))?;
        Ok(Self { config })
    }

    /// A manager from a parsed config.
    pub fn from_config(config: Config) -> Self {
        Self { config }
    }
}

impl bb8::ManageConnection for PostgresManager {
    type Connection = Client;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        });
        Ok(client)
    }

    async fn is_valid(&self, client: &mut Client) -> Result<(), tokio_postgres::Error> {
        client.simple_query("").await.map(drop)
    }

    fn has_broken(&self, client: &mut Client) -> bool {
        client.is_closed()
    }
}
