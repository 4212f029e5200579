//! `MemoryCache::get_or_load`.

use std::future::Future;
use std::hash::Hash;

use crate::error::Result;

use super::MemoryCache;

impl<K, V> MemoryCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value for `key`, loading it on a miss. Concurrent misses on one key run
    /// `loader` once; the others wait for its result. A loaded value is inserted with the
    /// default TTL. A loader error reaches every waiter as
    /// [`ErrorKind::Load`](crate::ErrorKind::Load) and is not cached: the next call loads again.
    /// If the loading caller is cancelled, one of the waiters takes over with its own
    /// loader.
    ///
    /// # Errors
    /// [`ErrorKind::Load`](crate::ErrorKind::Load) with the loader's error. A value too big to
    /// cache is still returned (and not cached).
    pub async fn get_or_load<F, Fut, E>(&self, key: K, loader: F) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.inner
            .flights
            .load(
                key,
                |k, recheck| {
                    // The recheck must not count a second miss for one call.
                    let found = if recheck && !self.contains_key(&k) { None } else { self.get(&k) };
                    std::future::ready(found)
                },
                |k, v| {
                    if let Err(e) = self.insert(k, v) {
                        tracing::debug!(error = %e, "loaded value not cached");
                    }
                    std::future::ready(())
                },
                loader,
            )
            .await
    }
}
