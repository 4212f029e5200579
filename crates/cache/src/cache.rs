//! The [`Cache`] seam that every tier implements.

use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use crate::error::Result;
use crate::memory::MemoryCache;

/// A key-value cache: the seam shared by the in-memory L1, a Redis L2 and a tiered cache.
///
/// Methods are async so a remote tier can implement them; the in-memory cache answers
/// without awaiting (and also offers the same operations as plain methods).
pub trait Cache<K, V>: Send + Sync {
    /// The value for `key`, if present and live. A tier that fails to answer reports a
    /// miss (a read never fails).
    fn get(&self, key: &K) -> impl Future<Output = Option<V>> + Send;

    /// Inserts `value`; `ttl` `None` means the cache's default TTL (if any).
    fn insert(&self, key: K, value: V, ttl: Option<Duration>) -> impl Future<Output = Result<()>> + Send;

    /// Removes `key`; `true` if a value was present.
    fn remove(&self, key: &K) -> impl Future<Output = Result<bool>> + Send;

    /// The value for `key`, loading and inserting it on a miss; concurrent misses on one
    /// key run `loader` once and all receive its result or its error (errors are not
    /// cached).
    fn get_or_load<F, Fut, E>(&self, key: K, loader: F) -> impl Future<Output = Result<V>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<V, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send;
}

impl<K, V> Cache<K, V> for MemoryCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    async fn get(&self, key: &K) -> Option<V> {
        MemoryCache::get(self, key)
    }

    async fn insert(&self, key: K, value: V, ttl: Option<Duration>) -> Result<()> {
        match ttl {
            Some(ttl) => MemoryCache::insert_with_ttl(self, key, value, ttl),
            None => MemoryCache::insert(self, key, value),
        }
    }

    async fn remove(&self, key: &K) -> Result<bool> {
        Ok(MemoryCache::remove(self, key).is_some())
    }

    async fn get_or_load<F, Fut, E>(&self, key: K, loader: F) -> Result<V>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<V, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        MemoryCache::get_or_load(self, key, loader).await
    }
}
