//! The PostgreSQL side of cross-instance cache invalidation: one dedicated connection
//! per store runs `LISTEN <channel>` and hands every notification to the store's
//! [`Invalidations`]; writes send `pg_notify(<channel>, <key>)` in their transaction
//! ([`NOTIFY`]).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Socket};

use crate::{Error, Invalidations, Result};

/// The statement that notifies the stores listening on a channel (`?1`) that a key
/// (`?2`, the payload) changed.
pub(super) const NOTIFY: &str = "SELECT pg_notify(?1, ?2)";

/// First delay before reconnecting; doubles per failed attempt up to the cap.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Bounds each connection attempt of the listener.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time before TCP keepalive probes on the listener connection.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

type Conn = (Client, Connection<Socket, NoTlsStream>);

/// Refuses a channel name that `LISTEN` would not take verbatim: 1 to 63 bytes of
/// lowercase ASCII letters, digits and `_`, not starting with a digit.
pub(super) fn check_channel(channel: &str) -> Result<()> {
    let ok = (1..=63).contains(&channel.len())
        && channel.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !channel.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            field: "invalidation channel",
            reason: format!(
                "{channel:?} is not 1 to 63 bytes of lowercase ASCII letters, digits and `_` \
                 starting with a letter or `_`"
            ),
        })
    }
}

/// Connects the listener (failing the open if it cannot), then runs it on its own
/// task until the returned handle aborts it.
pub(super) async fn start(
    config: &tokio_postgres::Config,
    channel: &str,
    invalidations: Invalidations,
) -> Result<AbortHandle> {
    check_channel(channel)?;
    let mut config = config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    // A silently dead peer would leave the listener deaf while the cache is trusted:
    // TCP keepalives find it (the default waits 2 hours before the first probe).
    config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
    let conn = listen(&config, channel, &invalidations).await?;
    invalidations.listening();
    let task = tokio::spawn(run(config, channel.to_owned(), invalidations, conn));
    Ok(task.abort_handle())
}

/// Receives notifications; on a lost connection, distrusts the cache and reconnects
/// with capped backoff. Runs until aborted (the store closed or dropped).
async fn run(config: tokio_postgres::Config, channel: String, invalidations: Invalidations, mut conn: Conn) {
    loop {
        let why = poll_fn(|cx| drain(&mut conn.1, cx, &invalidations)).await;
        invalidations.lost();
        tracing::warn!(error = %why, "cache invalidation listener lost its connection; reconnecting");
        let mut delay = BACKOFF_MIN;
        conn = loop {
            tokio::time::sleep(delay).await;
            match listen(&config, &channel, &invalidations).await {
                Ok(conn) => break conn,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "cache invalidation listener could not reconnect");
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        };
        invalidations.listening();
        tracing::info!(channel, "cache invalidation listener reconnected; cache cleared");
    }
}

/// Connects and runs `LISTEN <channel>` (the name was checked by `check_channel`).
async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    invalidations: &Invalidations,
) -> Result<Conn> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let sql = format!("LISTEN {channel}");
    {
        let mut listening = pin!(client.batch_execute(&sql));
        poll_fn(|cx| {
            if let Poll::Ready(e) = drain(&mut connection, cx, invalidations) {
                return Poll::Ready(Err(e));
            }
            listening.as_mut().poll(cx).map_err(Error::from)
        })
        .await?;
    }
    Ok((client, connection))
}

/// Drives the connection, handling notifications; ready (with why) when it ended.
fn drain(
    connection: &mut Connection<Socket, NoTlsStream>,
    cx: &mut Context<'_>,
    invalidations: &Invalidations,
) -> Poll<Error> {
    loop {
        match connection.poll_message(cx) {
            Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => invalidations.received(n.payload()),
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(e))) => return Poll::Ready(e.into()),
            Poll::Ready(None) => {
                return Poll::Ready(Error::Setup("the listener connection was closed".into()));
            }
            Poll::Pending => return Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_checked() {
        assert!(check_channel("mltb_store_invalidate").is_ok());
        assert!(check_channel("_a1").is_ok());
        for bad in ["", "A", "a-b", "1a", "a b", "\"a\""] {
            assert!(check_channel(bad).is_err(), "{bad:?}");
        }
        assert!(check_channel(&"a".repeat(63)).is_ok());
        assert!(check_channel(&"a".repeat(64)).is_err());
    }
}
