//! The invalidation listener: a Redis pub/sub subscription that drops keys other
//! instances changed from this instance's L1, and clears L1 after any gap.

use std::fmt::Display;
use std::hash::Hash;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

use crate::memory::MemoryCache;

/// Shared between the listener task and the cache.
#[derive(Debug, Default)]
pub(crate) struct Listener {
    pub(crate) connected: AtomicBool,
    pub(crate) received: AtomicU64,
    pub(crate) gaps: AtomicU64,
}

/// `"<instance> <key>"`; `"<instance> *"` clears every L1.
pub(crate) fn message(instance: &str, key: Option<&str>) -> String {
    format!("{instance} {}", key.unwrap_or("*"))
}

const RETRY_MAX: Duration = Duration::from_secs(5);

/// Subscribes once; the caller loops. Returns when the subscription ends.
async fn session<K, V>(
    client: &redis::Client,
    channel: &str,
    instance: &str,
    l1: &MemoryCache<K, V>,
    listener: &Listener,
    timeout: Duration,
    subscribed: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> redis::RedisResult<()>
where
    K: FromStr + Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    let mut pubsub = match tokio::time::timeout(timeout, connect).await {
        Ok(r) => r?,
        Err(_) => return Err(redis::RedisError::from(std::io::Error::other("subscribe timed out"))),
    };
    // Whatever was published while we were not listening is lost: start L1 afresh.
    if listener.gaps.fetch_add(1, Ordering::SeqCst) > 0 {
        l1.clear();
    }
    listener.connected.store(true, Ordering::SeqCst);
    if let Some(tx) = subscribed.take() {
        let _ = tx.send(());
    }
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        let Ok(text) = msg.get_payload::<String>() else { continue };
        let Some((from, key)) = text.split_once(' ') else { continue };
        if from == instance {
            continue;
        }
        listener.received.fetch_add(1, Ordering::SeqCst);
        match key.parse::<K>() {
            Ok(k) if key != "*" => {
                l1.remove(&k);
            }
            _ => l1.clear(),
        }
    }
    listener.connected.store(false, Ordering::SeqCst);
    Ok(())
}

/// Listens until aborted, reconnecting with capped exponential backoff.
pub(crate) async fn run<K, V>(
    client: redis::Client,
    channel: String,
    instance: String,
    l1: MemoryCache<K, V>,
    listener: Arc<Listener>,
    timeout: Duration,
    mut subscribed: Option<tokio::sync::oneshot::Sender<()>>,
) where
    K: FromStr + Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let mut backoff = Duration::from_millis(50);
    loop {
        match session(&client, &channel, &instance, &l1, &listener, timeout, &mut subscribed).await {
            Ok(()) => {
                tracing::warn!(%channel, "invalidation subscription ended; reconnecting");
                backoff = Duration::from_millis(50);
            }
            Err(e) => {
                tracing::debug!(%channel, error = %e, "invalidation subscription failed");
                // A caller waiting for the first subscription goes on without it.
                subscribed.take();
            }
        }
        listener.connected.store(false, Ordering::SeqCst);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}
