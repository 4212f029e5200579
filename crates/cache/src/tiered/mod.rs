//! The tiered cache: L1 in memory over L2 in Redis, read-through and write-through, with
//! invalidation that reaches every instance's L1 over Redis pub/sub.

mod lease;
mod subscriber;

use std::fmt::{self, Display};
use std::future::Future;
use std::hash::Hash;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, ErrorKind, Result};
use crate::flight::Flights;
use crate::memory::MemoryCache;
use crate::redis::{Codec, JsonCodec, RedisCache};

use subscriber::Listener;

/// L1 ([`MemoryCache`]) over L2 ([`RedisCache`]): reads go L1 → L2 → loader and fill the
/// tiers above; writes go to both; every write and remove is published on
/// `<namespace>invalidate`, and every other instance drops that key from its L1.
///
/// # Expiry
/// A value's TTL follows it into every L1: a value read through from L2 is kept in L1
/// for no longer than it has left in Redis (its `PTTL`, read with the value in one round
/// trip), and a value written here for no longer than its TTL in L2 (the one given, or
/// L2's default). The L1's `default_ttl`, if any, caps both.
///
/// # Staleness bound
/// While the subscription is up, another instance stops serving a changed key once the
/// publish reaches it (one Redis round trip). If the subscription drops, L1 is cleared
/// when it comes back. If Redis is unreachable when the write happens, nothing can be
/// published, so the bound is the L1's TTL: give L1 a `default_ttl` (and L2 values a TTL
/// at least as long) to bound how long a deleted value can be served. The same bound
/// covers the one race pub/sub cannot close: a read that fetched the old value from L2
/// just before the write, and fills L1 just after the invalidation arrived.
pub struct TieredCache<K: Hash + Eq, V, C = JsonCodec> {
    inner: Arc<Inner<K, V, C>>,
}

struct Inner<K: Hash + Eq, V, C> {
    l1: MemoryCache<K, V>,
    l2: RedisCache<K, V, C>,
    flights: Flights<K, V>,
    channel: String,
    instance: String,
    listener: Arc<Listener>,
    publish_errors: AtomicU64,
    load_lease: Option<Duration>,
    task: tokio::task::JoinHandle<()>,
}

impl<K: Hash + Eq, V, C> Drop for Inner<K, V, C> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<K: Hash + Eq, V, C> Clone for TieredCache<K, V, C> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<K: Hash + Eq, V, C> fmt::Debug for TieredCache<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCache")
            .field("channel", &self.inner.channel)
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

/// Counters of the tiered layer (each tier keeps its own too).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TieredStats {
    /// Invalidations received from other instances.
    pub invalidations_received: u64,
    /// Invalidations that could not be published.
    pub publish_errors: u64,
    /// Whether the invalidation subscription is up.
    pub subscribed: bool,
}

static INSTANCE: AtomicU64 = AtomicU64::new(0);

impl<K, V, C> TieredCache<K, V, C>
where
    K: FromStr + Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    /// Joins the tiers and subscribes to invalidations (waiting at most the L2 timeout for
    /// the first subscription; after that it retries in the background, so a Redis that
    /// is down now is not an error). Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) if the L2's URL cannot make a pub/sub client.
    pub async fn new(l1: MemoryCache<K, V>, l2: RedisCache<K, V, C>) -> Result<Self> {
        Self::build(l1, l2, None).await
    }

    /// As [`new`](Self::new), and `get_or_load` also takes a Redis lease
    /// (`<namespace>lease:<key>`, `SET NX PX lease_ttl`) so that only one instance runs the
    /// loader for a key at a time; the others wait (up to `lease_ttl`) for its value to
    /// appear in L2. A loader that outlives `lease_ttl` lets another instance load too. If
    /// Redis is unreachable each instance loads for itself.
    ///
    /// # Errors
    /// As [`new`](Self::new), and [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) for a zero `lease_ttl`
    /// or one over 30 years (`mltb_pool::PoolConfig::MAX_DURATION`: a waiter's deadline is
    /// the clock's time plus it).
    pub async fn new_with_load_lease(
        l1: MemoryCache<K, V>,
        l2: RedisCache<K, V, C>,
        lease_ttl: Duration,
    ) -> Result<Self> {
        if lease_ttl.is_zero() {
            return Err(Error::config("lease_ttl", "0s", "a positive duration"));
        }
        if lease_ttl > mltb_pool::PoolConfig::MAX_DURATION {
            return Err(Error::config(
                "lease_ttl",
                format!("{lease_ttl:?}"),
                "at most 30 years (mltb_pool::PoolConfig::MAX_DURATION)",
            ));
        }
        Self::build(l1, l2, Some(lease_ttl)).await
    }

    async fn build(
        l1: MemoryCache<K, V>,
        l2: RedisCache<K, V, C>,
        load_lease: Option<Duration>,
    ) -> Result<Self> {
        let client = redis::Client::open(l2.url()).map_err(|e| {
            Error::config(
                "url",
                mltb_pool::redact_url(l2.url()),
                format!("a redis URL for invalidations ({e})"),
            )
        })?;
        let channel = format!("{}invalidate", l2.namespace());
        let instance = format!(
            "{}-{}-{:x}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        );
        let listener = Arc::new(Listener::default());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(subscriber::run(
            client,
            channel.clone(),
            instance.clone(),
            l1.clone(),
            Arc::clone(&listener),
            l2.timeout(),
            Some(tx),
        ));
        let _ = tokio::time::timeout(l2.timeout() + Duration::from_millis(50), rx).await;
        Ok(Self {
            inner: Arc::new(Inner {
                flights: Flights::new(l1.shard_count()),
                l1,
                l2,
                channel,
                instance,
                listener,
                publish_errors: AtomicU64::new(0),
                load_lease,
                task,
            }),
        })
    }

    /// The memory tier.
    pub fn l1(&self) -> &MemoryCache<K, V> {
        &self.inner.l1
    }

    /// The Redis tier.
    pub fn l2(&self) -> &RedisCache<K, V, C> {
        &self.inner.l2
    }

    /// The tiered layer's counters.
    pub fn stats(&self) -> TieredStats {
        TieredStats {
            invalidations_received: self.inner.listener.received.load(Ordering::SeqCst),
            publish_errors: self.inner.publish_errors.load(Ordering::Relaxed),
            subscribed: self.inner.listener.connected.load(Ordering::SeqCst),
        }
    }

    async fn invalidate_others(&self, key: &K) {
        let msg = subscriber::message(&self.inner.instance, Some(&key.to_string()));
        if self.inner.l2.publish(&self.inner.channel, msg).await.is_err() {
            self.inner.publish_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// L1, then L2 (filling L1 for the time the value has left in L2). Never fails: an
    /// L2 failure is a miss.
    pub async fn get(&self, key: &K) -> Option<V> {
        if let Some(v) = self.inner.l1.get(key) {
            return Some(v);
        }
        let (v, ttl) = self.inner.l2.get_with_ttl(key).await?;
        self.fill_l1(key.clone(), v.clone(), ttl);
        Some(v)
    }

    /// Puts a copy in L1 that expires no later than the value does in L2 (`ttl`, `None`
    /// for never) nor than L1's default TTL.
    fn fill_l1(&self, key: K, value: V, ttl: Option<Duration>) {
        let l1 = &self.inner.l1;
        let ttl = match (ttl, l1.default_ttl()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let r = match ttl {
            Some(ttl) => l1.insert_with_ttl(key, value, ttl),
            None => l1.insert(key, value),
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, "value not cached in L1");
        }
    }

    /// Writes both tiers (L2 best effort, within its timeout) and invalidates the key in
    /// every other instance's L1. `ttl` `None` means L2's default TTL; L1 keeps the value
    /// no longer than that, nor than its own default TTL.
    ///
    /// # Errors
    /// [`ErrorKind::Codec`](crate::ErrorKind::Codec) if the value cannot be encoded for L2. An entry too big for L1
    /// is still written to L2; an L2 failure is logged and counted, not returned.
    pub async fn insert(&self, key: K, value: V, ttl: Option<Duration>) -> Result<()> {
        self.fill_l1(key.clone(), value.clone(), ttl.or(self.inner.l2.default_ttl()));
        match self.inner.l2.insert(key.clone(), value, ttl).await {
            Err(e) if matches!(e.kind(), ErrorKind::Codec { .. }) => return Err(e),
            Err(e) => tracing::debug!(error = %e, "value not written to L2"),
            Ok(()) => {}
        }
        self.invalidate_others(&key).await;
        Ok(())
    }

    /// Removes from both tiers and from every other instance's L1.
    ///
    /// # Errors
    /// [`ErrorKind::Backend`](crate::ErrorKind::Backend) if L2 could not be reached: the key is gone from this L1 but may
    /// live on in L2 and, until their L1 TTL, in other instances.
    pub async fn remove(&self, key: &K) -> Result<bool> {
        let here = self.inner.l1.remove(key).is_some();
        let there = self.inner.l2.remove(key).await?;
        self.invalidate_others(key).await;
        Ok(here || there)
    }

    /// L1 → L2 → `loader`, single-flight in this process (and across instances with a
    /// load lease); the loaded value is written to both tiers.
    ///
    /// # Errors
    /// [`ErrorKind::Load`](crate::ErrorKind::Load) with the loader's error, shared by every waiter, not cached.
    pub async fn get_or_load<F, Fut, E>(&self, key: K, loader: F) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let load_key = key.clone();
        let leased = || async move {
            let Some(ttl) = self.inner.load_lease else {
                let v = loader().await.map_err(Into::into)?;
                self.store(load_key, v.clone()).await;
                return Ok::<V, Box<dyn std::error::Error + Send + Sync>>(v);
            };
            let l2 = &self.inner.l2;
            let lease_key = lease::lease_key(l2, &load_key);
            match lease::acquire(l2, &lease_key, &self.inner.instance, ttl).await {
                Ok(true) => {
                    let result = loader().await.map_err(Into::into);
                    if let Ok(v) = &result {
                        // Written before the release, so a waiter that sees the lease gone
                        // finds the value.
                        self.store(load_key, v.clone()).await;
                    }
                    lease::release(l2, &lease_key, &self.inner.instance).await;
                    result
                }
                Ok(false) => {
                    if let Some((v, left)) = lease::wait_for_value(l2, &load_key, &lease_key, ttl).await {
                        self.fill_l1(load_key, v.clone(), left);
                        return Ok(v);
                    }
                    let v = loader().await.map_err(Into::into)?;
                    self.store(load_key, v.clone()).await;
                    Ok(v)
                }
                Err(_) => {
                    let v = loader().await.map_err(Into::into)?;
                    self.store(load_key, v.clone()).await;
                    Ok(v)
                }
            }
        };
        self.inner
            .flights
            .load(
                key,
                |k, _recheck| async move { self.get(&k).await },
                // The loader above stores (it must, before releasing a lease).
                |_, _| std::future::ready(()),
                leased,
            )
            .await
    }

    async fn store(&self, key: K, value: V) {
        if let Err(e) = self.insert(key, value, None).await {
            tracing::debug!(error = %e, "loaded value not cached");
        }
    }
}

impl<K, V, C> Cache<K, V> for TieredCache<K, V, C>
where
    K: FromStr + Display + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    async fn get(&self, key: &K) -> Option<V> {
        TieredCache::get(self, key).await
    }

    async fn insert(&self, key: K, value: V, ttl: Option<Duration>) -> Result<()> {
        TieredCache::insert(self, key, value, ttl).await
    }

    async fn remove(&self, key: &K) -> Result<bool> {
        TieredCache::remove(self, key).await
    }

    async fn get_or_load<F, Fut, E>(&self, key: K, loader: F) -> Result<V>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<V, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        TieredCache::get_or_load(self, key, loader).await
    }
}
