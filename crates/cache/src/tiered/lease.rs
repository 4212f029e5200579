//! The cross-instance load lease: `SET <ns>lease:<key> <token> NX PX <ttl>` so that one
//! instance loads a key while the others wait for its value to appear in L2.

use std::fmt::Display;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::redis::{Codec, RedisCache};

const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

pub(crate) fn lease_key<K, V, C>(l2: &RedisCache<K, V, C>, key: &K) -> String
where
    K: Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    format!("{}lease:{key}", l2.namespace())
}

/// `Ok(true)` if this instance now holds the lease.
pub(crate) async fn acquire<K, V, C>(
    l2: &RedisCache<K, V, C>,
    lease: &str,
    token: &str,
    ttl: Duration,
) -> Result<bool>
where
    K: Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let reply: Option<String> =
        l2.run(redis::cmd("SET").arg(lease).arg(token).arg("NX").arg("PX").arg(ms).clone()).await?;
    Ok(reply.is_some())
}

/// Releases the lease if this instance still holds it (best effort).
pub(crate) async fn release<K, V, C>(l2: &RedisCache<K, V, C>, lease: &str, token: &str)
where
    K: Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    let cmd = redis::cmd("EVAL").arg(RELEASE).arg(1).arg(lease).arg(token).clone();
    if let Err(e) = l2.run::<i64>(cmd).await {
        tracing::debug!(error = %e, "load lease not released; it expires on its own");
    }
}

/// Waits for the lease holder's value to appear in L2, and returns it with the time it
/// has left there. `None` when the holder gave up (the lease is gone and no value came)
/// or the lease's time ran out.
pub(crate) async fn wait_for_value<K, V, C>(
    l2: &RedisCache<K, V, C>,
    key: &K,
    lease: &str,
    ttl: Duration,
) -> Option<(V, Option<Duration>)>
where
    K: Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    let deadline = Instant::now() + ttl;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(found) = l2.get_with_ttl(key).await {
            return Some(found);
        }
        let held: Result<bool> = l2.run::<bool>(redis::cmd("EXISTS").arg(lease).clone()).await;
        if !matches!(held, Ok(true)) || Instant::now() >= deadline {
            // Check once more: the holder writes the value before releasing.
            return l2.get_with_ttl(key).await;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
