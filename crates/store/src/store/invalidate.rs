//! Cross-instance cache invalidation: on PostgreSQL, every write that invalidates a
//! cached key also sends `pg_notify(<channel>, <key>)` in its transaction, and every
//! store listens on the channel with one dedicated connection.
//!
//! Payloads: `role:<user id>`, `chat:<chat id>`, `settings:<user id>` (decimal `i64`),
//! optionally followed by `/<origin>`: the sending store's random id (16 hex digits).
//! A store skips its own notifications: it invalidated the key itself after the commit.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mltb_cache::MemoryCache;
use tokio::sync::watch;

use super::{CacheKey, Cached};

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

    /// Trusts the cache of a store that has no listener: nothing else writes behind
    /// its back that a listener could have told it about.
    pub(crate) fn trust_without_listener(&self) {
        self.trusted.store(true, Ordering::Release);
    }

    /// The listener is listening again: anything cached before may have missed a
    /// notification, so the cache starts empty.
    fn trust(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.clear();
        self.trusted.store(true, Ordering::Release);
        self.stats.send_modify(|s| s.connects += 1);
    }

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

/// Where a [`Backend`](crate::Backend) that hears other stores' writes delivers them:
/// the store's read cache, handed to
/// [`Backend::listen_for_invalidation`](crate::Backend::listen_for_invalidation).
///
/// The backend reports three things: it is listening ([`listening`](Self::listening):
/// the cache is emptied, as it may have missed writes, then trusted), it stopped
/// hearing ([`lost`](Self::lost): the cache is distrusted and reads go to the database
/// until it listens again), and a notification arrived ([`received`](Self::received)).
#[derive(Debug, Clone)]
pub struct Invalidations {
    state: Arc<CacheState>,
}

impl Invalidations {
    pub(crate) fn new(state: Arc<CacheState>) -> Self {
        Self { state }
    }

    /// The listener is listening (first time, or again after [`lost`](Self::lost)):
    /// the cache starts empty and is trusted from now on.
    pub fn listening(&self) {
        self.state.trust();
    }

    /// The listener stopped hearing notifications: until [`listening`](Self::listening),
    /// reads bypass the cache.
    pub fn lost(&self) {
        self.state.distrust();
    }

    /// A notification's payload, as another store's write sent it (`role:<id>`,
    /// `chat:<id>`, `settings:<id>`, optionally `/<origin>`): the key is dropped from the
    /// cache, unless this store sent it. Unknown payloads are counted and ignored.
    pub fn received(&self, payload: &str) {
        self.state.received(payload);
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
}
