//! Single-flight loads: concurrent misses on one key share one run of the loader.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::error::{Error, ErrorKind, Result};

type Outcome<V> = Option<Result<V>>;
type FlightMap<K, V> = Mutex<HashMap<K, watch::Receiver<Outcome<V>>, hashbrown::DefaultHashBuilder>>;

/// Keeps each lock on its own cache lines.
#[repr(align(128))]
struct Padded<T>(T);

/// Loads in progress, sharded by key hash, each key with the channel its result will be
/// published on. Shared by every tier's `get_or_load`.
pub(crate) struct Flights<K, V> {
    shards: Box<[Padded<FlightMap<K, V>>]>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl<K, V> fmt::Debug for Flights<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flights").field("shards", &self.shards.len()).finish()
    }
}

enum Role<V> {
    Lead(watch::Sender<Outcome<V>>),
    Wait(watch::Receiver<Outcome<V>>),
}

/// Takes the key out of the in-flight map when the leader finishes or is dropped
/// mid-load; a dropped leader's waiters see the channel close and try again.
struct LeaderGuard<'a, K: Hash + Eq, V> {
    map: &'a FlightMap<K, V>,
    key: &'a K,
}

impl<K: Hash + Eq, V> Drop for LeaderGuard<'_, K, V> {
    fn drop(&mut self) {
        self.map.lock().remove(self.key);
    }
}

impl<K, V> Flights<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Padded(Mutex::new(HashMap::with_hasher(hashbrown::DefaultHashBuilder::default()))))
                .collect(),
            hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    /// `lookup(key, false)` first; on a miss the first caller runs `loader`, hands a value to
    /// `store`, and publishes the outcome to every caller that missed meanwhile. A loader
    /// error reaches them all as [`ErrorKind::Load`](crate::ErrorKind::Load) and is not stored. If the leader is
    /// dropped mid-load, a waiter takes over with its own loader. The leader looks up
    /// once more, with `recheck` true, after claiming the key (a lookup that counts
    /// stats should not count that one again).
    pub(crate) async fn load<L, LF, S, SF, F, Fut, E>(
        &self,
        key: K,
        lookup: L,
        store: S,
        loader: F,
    ) -> Result<V>
    where
        L: Fn(K, bool) -> LF,
        LF: Future<Output = Option<V>>,
        S: FnOnce(K, V) -> SF,
        SF: Future<Output = ()>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut loader = Some(loader);
        let hash = self.hasher.hash_one(&key);
        let idx = ((u128::from(hash) * self.shards.len() as u128) >> 64) as usize;
        let map = &self.shards[idx].0;
        loop {
            if let Some(v) = lookup(key.clone(), false).await {
                return Ok(v);
            }
            let role = {
                let mut m = map.lock();
                match m.get(&key) {
                    Some(rx) => Role::Wait(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        m.insert(key.clone(), rx);
                        Role::Lead(tx)
                    }
                }
            };
            match role {
                Role::Wait(mut rx) => {
                    if let Ok(outcome) = rx.wait_for(Option::is_some).await
                        && let Some(result) = outcome.clone()
                    {
                        return result;
                    }
                    // The leader was dropped before publishing: try again.
                }
                Role::Lead(tx) => {
                    let _guard = LeaderGuard { map, key: &key };
                    // Another leader may have finished between our miss and our claim.
                    if let Some(v) = lookup(key.clone(), true).await {
                        let _ = tx.send(Some(Ok(v.clone())));
                        return Ok(v);
                    }
                    let Some(load) = loader.take() else {
                        // Unreachable: a caller leads at most once, as leading returns.
                        let why = std::io::Error::other("single-flight: loader already used");
                        return Err(Error::new(ErrorKind::Load(Arc::new(why))));
                    };
                    let result = load().await.map_err(|e| Error::new(ErrorKind::Load(Arc::from(e.into()))));
                    if let Ok(v) = &result {
                        store(key.clone(), v.clone()).await;
                    }
                    let _ = tx.send(Some(result.clone()));
                    return result;
                }
            }
        }
    }
}
