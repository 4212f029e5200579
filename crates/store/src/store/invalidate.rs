//! Cross-instance cache invalidation: on PostgreSQL, every write that invalidates a
//! cached key also sends `pg_notify(<channel>, <key>)` in its transaction, and every
//! store listens on the channel with one dedicated connection.
//!
//! Payloads: `role:<user id>`, `chat:<chat id>`, `settings:<user id>` (decimal `i64`),
//! optionally followed by `/<origin>`: the sending store's random id (16 hex digits).
//! A store skips its own notifications: it invalidated the key itself after the commit.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mltb_cache::MemoryCache;
use tokio::sync::watch;

use super::{CacheKey, Cached};
use crate::{Error, Result};

/// The default channel for cross-instance invalidations.
pub(crate) const DEFAULT_CHANNEL: &str = "mltb_store_invalidate";

/// Counters of the cross-instance invalidation listener (all zero on SQLite, which has
/// no listener).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidationStats {
    /// Notifications from other stores that named a cached key (each invalidated it).
    pub received: u64,
    /// Notifications of this store's own writes (skipped: the write already
    /// invalidated the key here).
    pub own: u64,
    /// Notifications whose payload was not understood (ignored, logged at debug).
    pub ignored: u64,
    /// Times the listener connected and started listening (1 after the store opened;
    /// each reconnect adds one and cleared the whole cache).
    pub connects: u64,
}

impl CacheKey {
    /// The notification payload naming this key.
    pub(crate) fn payload(&self) -> String {
        match self {
            CacheKey::Role(id) => format!("role:{id}"),
            CacheKey::Chat(id) => format!("chat:{id}"),
            CacheKey::Settings(id) => format!("settings:{id}"),
        }
    }

    /// The key a payload names (and the sending store, if it said), if it is one this
    /// store writes.
    pub(crate) fn parse(payload: &str) -> Option<(CacheKey, Option<&str>)> {
        let (key, origin) = match payload.split_once('/') {
            Some((key, origin)) => (key, Some(origin)),
            None => (payload, None),
        };
        let (kind, id) = key.split_once(':')?;
        let id: i64 = id.parse().ok()?;
        let key = match kind {
            "role" => CacheKey::Role(id),
            "chat" => CacheKey::Chat(id),
            "settings" => CacheKey::Settings(id),
            _ => return None,
        };
        Some((key, origin))
    }
}

/// The read cache and what decides whether it may be trusted; shared with the
/// listener task (which must not own the store).
#[derive(Debug)]
pub(crate) struct CacheState {
    pub(crate) cache: MemoryCache<CacheKey, Cached>,
    /// Bumped by every invalidation, so that a load that raced a write is not kept.
    pub(crate) generation: AtomicU64,
    /// False while a listener is not listening (or was stopped): reads then bypass the
    /// cache, since invalidations from other instances would be missed.
    trusted: AtomicBool,
    stats: watch::Sender<InvalidationStats>,
    /// This store's id in its notifications' payloads, to skip its own.
    origin: String,
}

impl CacheState {
    pub(crate) fn new(cache: MemoryCache<CacheKey, Cached>, trusted: bool) -> Self {
        Self {
            cache,
            generation: AtomicU64::new(0),
            trusted: AtomicBool::new(trusted),
            stats: watch::Sender::new(InvalidationStats::default()),
            origin: format!("{:016x}", RandomState::new().build_hasher().finish()),
        }
    }

    /// The payload telling other stores that `key` changed.
    pub(crate) fn payload(&self, key: &CacheKey) -> String {
        format!("{}/{}", key.payload(), self.origin)
    }

    pub(crate) fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    pub(crate) fn invalidate(&self, key: &CacheKey) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.remove(key);
    }

    /// Stops trusting the cache (the listener is gone) and empties it.
    pub(crate) fn distrust(&self) {
        self.trusted.store(false, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.clear();
    }

    /// The listener is listening again: anything cached before may have missed a
    /// notification, so the cache starts empty.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn trust(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.clear();
        self.trusted.store(true, Ordering::Release);
        self.stats.send_modify(|s| s.connects += 1);
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn received(&self, payload: &str) {
        match CacheKey::parse(payload) {
            Some((_, Some(origin))) if origin == self.origin => self.stats.send_modify(|s| s.own += 1),
            Some((key, _)) => {
                self.invalidate(&key);
                self.stats.send_modify(|s| s.received += 1);
            }
            None => {
                tracing::debug!(payload, "ignored an invalidation notification with an unknown payload");
                self.stats.send_modify(|s| s.ignored += 1);
            }
        }
    }

    pub(crate) fn stats(&self) -> InvalidationStats {
        *self.stats.borrow()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<InvalidationStats> {
        self.stats.subscribe()
    }
}

/// Refuses a channel name that `LISTEN` would not take verbatim: 1 to 63 bytes of
/// lowercase ASCII letters, digits and `_`, not starting with a digit.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn check_channel(channel: &str) -> Result<()> {
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

#[cfg(feature = "postgres")]
pub(crate) use listener::start;

#[cfg(feature = "postgres")]
mod listener {
    use std::future::{Future, poll_fn};
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tokio::task::AbortHandle;
    use tokio_postgres::tls::NoTlsStream;
    use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Socket};

    use super::CacheState;
    use crate::{Error, Result};

    /// First delay before reconnecting; doubles per failed attempt up to the cap.
    const BACKOFF_MIN: Duration = Duration::from_millis(100);
    const BACKOFF_MAX: Duration = Duration::from_secs(30);
    /// Bounds each connection attempt of the listener.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Idle time before TCP keepalive probes on the listener connection.
    const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

    type Conn = (Client, Connection<Socket, NoTlsStream>);

    /// Connects the listener (failing the open if it cannot), then runs it on its own
    /// task until the returned handle aborts it.
    pub(crate) async fn start(
        config: &tokio_postgres::Config,
        channel: &str,
        state: Arc<CacheState>,
    ) -> Result<AbortHandle> {
        let mut config = config.clone();
        config.connect_timeout(CONNECT_TIMEOUT);
        // A silently dead peer would leave the listener deaf while the cache is trusted:
        // TCP keepalives find it (the default waits 2 hours before the first probe).
        config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
        let conn = listen(&config, channel, &state).await?;
        state.trust();
        let task = tokio::spawn(run(config, channel.to_owned(), state, conn));
        Ok(task.abort_handle())
    }

    /// Receives notifications; on a lost connection, distrusts the cache and
    /// reconnects with capped backoff. Runs until aborted (the store closed or dropped).
    async fn run(config: tokio_postgres::Config, channel: String, state: Arc<CacheState>, mut conn: Conn) {
        loop {
            let why = poll_fn(|cx| drain(&mut conn.1, cx, &state)).await;
            state.distrust();
            tracing::warn!(error = %why, "cache invalidation listener lost its connection; reconnecting");
            let mut delay = BACKOFF_MIN;
            conn = loop {
                tokio::time::sleep(delay).await;
                match listen(&config, &channel, &state).await {
                    Ok(conn) => break conn,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?delay, "cache invalidation listener could not reconnect");
                        delay = (delay * 2).min(BACKOFF_MAX);
                    }
                }
            };
            state.trust();
            tracing::info!(channel, "cache invalidation listener reconnected; cache cleared");
        }
    }

    /// Connects and runs `LISTEN <channel>` (the name was checked by `check_channel`).
    async fn listen(config: &tokio_postgres::Config, channel: &str, state: &CacheState) -> Result<Conn> {
        let (client, mut connection) = config.connect(NoTls).await?;
        let sql = format!("LISTEN {channel}");
        {
            let mut listening = pin!(client.batch_execute(&sql));
            poll_fn(|cx| {
                if let Poll::Ready(e) = drain(&mut connection, cx, state) {
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
        state: &CacheState,
    ) -> Poll<Error> {
        loop {
            match connection.poll_message(cx) {
                Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => state.received(n.payload()),
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(e.into()),
                Poll::Ready(None) => {
                    return Poll::Ready(Error::Setup("the listener connection was closed".into()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unknown_ones_are_refused() {
        for key in [CacheKey::Role(42), CacheKey::Chat(-1001234), CacheKey::Settings(i64::MAX)] {
            assert_eq!(CacheKey::parse(&key.payload()), Some((key.clone(), None)));
            let with_origin = format!("{}/00ff", key.payload());
            assert_eq!(CacheKey::parse(&with_origin), Some((key, Some("00ff"))));
        }
        assert_eq!(CacheKey::Chat(-100).payload(), "chat:-100");
        for bad in ["", "role", "role:", "role:x", "user:1", "role:1:2", "ROLE:1", "role: 1", "/x"] {
            assert_eq!(CacheKey::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unknown_payloads_are_counted_and_change_nothing() {
        let cache = MemoryCache::builder_with_weigher(|_: &CacheKey, _: &Cached| 64).build().unwrap();
        let state = CacheState::new(cache, true);
        state.cache.insert(CacheKey::Role(1), Cached::Role(None)).unwrap();
        state.received("nonsense");
        assert_eq!(state.stats(), InvalidationStats { received: 0, own: 0, ignored: 1, connects: 0 });
        assert!(state.cache.contains_key(&CacheKey::Role(1)));
        // Its own notification is skipped: the write already invalidated the key.
        state.received(&state.payload(&CacheKey::Role(1)));
        assert_eq!(state.stats().own, 1);
        assert!(state.cache.contains_key(&CacheKey::Role(1)));
        state.received("role:1/0123456789abcdef");
        assert_eq!(state.stats().received, 1);
        state.cache.insert(CacheKey::Role(1), Cached::Role(None)).unwrap();
        state.received("role:1");
        assert_eq!(state.stats().received, 2);
        assert!(!state.cache.contains_key(&CacheKey::Role(1)));
    }

    #[test]
    fn channel_names_are_checked() {
        assert!(check_channel(DEFAULT_CHANNEL).is_ok());
        assert!(check_channel("_a1").is_ok());
        for bad in ["", "A", "a-b", "1a", "a b", "\"a\""] {
            assert!(check_channel(bad).is_err(), "{bad:?}");
        }
        assert!(check_channel(&"a".repeat(63)).is_ok());
        assert!(check_channel(&"a".repeat(64)).is_err());
    }
}
