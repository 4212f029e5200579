//! [`Pool`]: bb8 behind a fair gate, with a checkout timeout and metrics.

mod guard;
mod health;
mod sink;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bb8::{ManageConnection, RunError};
use tokio::sync::Semaphore;
use tokio::time::Instant;

pub use guard::Pooled;
use guard::Ticket;
use health::{Health, Reading, Verdict};
use sink::Sink;

use crate::metrics::Recorder;
use crate::{Error, ErrorKind, Metrics, PoolConfig, Result};

/// The first slice of a checkout's wait handed to bb8 before it is asked again; later
/// slices double up to [`MAX_SLICE`]. See the crate docs' `# Design` on the bb8 hang.
const FIRST_SLICE: Duration = Duration::from_millis(50);
const MAX_SLICE: Duration = Duration::from_secs(2);

/// State shared by a pool, its checked-out connections and its error sink.
#[derive(Debug)]
pub(crate) struct Shared {
    /// One permit per connection the pool may have; a checkout holds one throughout.
    gate: Semaphore,
    recorder: Recorder,
    config: PoolConfig,
    /// Backend health, used by `fail_fast` pools.
    health: Health,
}

/// A pool of connections made by a [`ManageConnection`] manager, with a checkout
/// timeout and [`Metrics`]. Cheap to clone; clones share the pool.
pub struct Pool<M: ManageConnection> {
    inner: bb8::Pool<M>,
    shared: Arc<Shared>,
}

impl<M: ManageConnection> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: Arc::clone(&self.shared) }
    }
}

impl<M: ManageConnection> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("state", &self.state()).field("config", &self.shared.config).finish()
    }
}

/// How many connections a pool has and how they are used, right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct State {
    /// The pool's `max_size`.
    pub max_size: u32,
    /// Open connections, idle or checked out.
    pub connections: u32,
    /// Open connections waiting in the pool.
    pub idle: u32,
    /// Connections checked out.
    pub in_use: u32,
    /// Checkouts waiting for a connection.
    pub waiting: u32,
}

impl<M> Pool<M>
where
    M: ManageConnection,
    M::Error: std::error::Error + Send + Sync + 'static,
{
    /// A pool that opens its `min_idle` connections in the background, so it starts
    /// even while the backend is down. Must be called inside a tokio runtime.
    pub fn new(manager: M, config: PoolConfig) -> Result<Self> {
        let (builder, shared) = Self::prepare(&config, "Pool::new")?;
        Ok(Self { inner: builder.build_unchecked(manager), shared })
    }

    /// A pool whose `min_idle` connections are open when this returns; fails with
    /// [`ErrorKind::Connect`] if one cannot be opened within `connection_timeout`, or
    /// with the manager's [`ErrorKind::InvalidConfig`] when one of this crate's
    /// managers refuses its own setting.
    pub async fn connect(manager: M, config: PoolConfig) -> Result<Self> {
        let (builder, shared) = Self::prepare(&config, "Pool::connect")?;
        let inner = builder.build(manager).await.map_err(connect_error)?;
        Ok(Self { inner, shared })
    }

    fn prepare(config: &PoolConfig, caller: &'static str) -> Result<(bb8::Builder<M>, Arc<Shared>)> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ErrorKind::NoRuntime(caller).into());
        }
        let shared = Arc::new(Shared {
            gate: Semaphore::new(config.max_size as usize),
            recorder: Recorder::new(config.max_size, config.metrics_window),
            config: config.clone(),
            health: Health::default(),
        });
        let builder = config.to_bb8().error_sink(Box::new(Sink(Arc::clone(&shared))));
        Ok((builder, shared))
    }

    /// Checks a connection out, waiting at most `connection_timeout`.
    ///
    /// Fails with [`ErrorKind::Timeout`] when every connection stayed busy, or
    /// [`ErrorKind::Unavailable`] when the backend could not be reached; both are
    /// [`is_timeout`](Error::is_timeout) and [`is_retryable`](Error::is_retryable).
    /// With [`PoolConfig::fail_fast`], `Unavailable` comes at once while the backend is
    /// known to be down.
    pub async fn get(&self) -> Result<Pooled<'_, M>> {
        self.get_timeout(self.shared.config.connection_timeout).await
    }

    /// Like [`get`](Self::get) with a timeout of its own. A timeout too long to add to
    /// the clock (such as `Duration::MAX`) means no deadline.
    pub async fn get_timeout(&self, timeout: Duration) -> Result<Pooled<'_, M>> {
        self.acquire(Cow::Borrowed(&self.shared), timeout, || self.inner.get()).await
    }

    /// Like [`get`](Self::get), returning a connection that keeps the pool alive and
    /// borrows nothing, to move into a spawned task.
    pub async fn get_owned(&self) -> Result<Pooled<'static, M>> {
        let timeout = self.shared.config.connection_timeout;
        self.acquire(Cow::Owned(Arc::clone(&self.shared)), timeout, || self.inner.get_owned()).await
    }

    async fn acquire<'c, F, Fut>(
        &self,
        shared: Cow<'c, Arc<Shared>>,
        timeout: Duration,
        mut get: F,
    ) -> Result<Pooled<'c, M>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bb8::PooledConnection<'c, M>, RunError<M::Error>>>,
    {
        let asked = Instant::now();
        // `None`: the timeout reaches past the clock's end, so there is no deadline.
        let deadline = asked.checked_add(timeout);
        let recorder = &self.shared.recorder;
        // With fail_fast: the reading the checkout started from, to notice connects that
        // fail while it waits; and, if it is the probe, the guard that ends the probe.
        let mut baseline = None;
        let mut _probe = None;
        if self.shared.config.fail_fast {
            let reading = self.reading();
            match self.shared.health.admit(reading, asked, self.shared.config.probe_interval) {
                Verdict::Go => {}
                Verdict::Probe(guard) => _probe = Some(guard),
                Verdict::Refuse => return Err(self.refused(asked)),
            }
            baseline = Some(reading);
        }
        match self.shared.gate.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(_) => {
                recorder.start_waiting();
                let acquired = match deadline {
                    Some(deadline) => {
                        tokio::time::timeout_at(deadline, self.shared.gate.acquire()).await.ok()
                    }
                    None => Some(self.shared.gate.acquire().await),
                };
                recorder.stop_waiting();
                match acquired {
                    Some(Ok(permit)) => permit.forget(),
                    // The gate is never closed; treat it like running out of time.
                    Some(Err(_)) | None => return Err(self.timed_out(asked)),
                }
            }
        }
        // From here on the ticket gives the permit back on every path.
        let mut ticket = Ticket::new(shared);
        let mut slice = FIRST_SLICE;
        // The first attempt reuses `asked`: a clock read is a visible part of a checkout.
        let mut now = asked;
        loop {
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Err(self.timed_out(asked));
            }
            let slice_end = deadline.map_or(now + slice, |deadline| deadline.min(now + slice));
            let attempt = match &baseline {
                None => tokio::time::timeout_at(slice_end, get()).await,
                Some(base) => {
                    // Register for failure wake-ups before looking, so none is missed.
                    let failed = self.shared.health.failed.notified();
                    let mut failed = std::pin::pin!(failed);
                    failed.as_mut().enable();
                    if self.reading().failed_since(base) {
                        return Err(self.refused(asked));
                    }
                    tokio::select! {
                        biased;
                        attempt = tokio::time::timeout_at(slice_end, get()) => attempt,
                        () = &mut failed => {
                            // Dropping bb8's `get` is cancellation safe; its connect
                            // attempt goes on in bb8's own task.
                            if self.reading().failed_since(base) {
                                return Err(self.refused(asked));
                            }
                            now = Instant::now();
                            continue;
                        }
                    }
                }
            };
            match attempt {
                Ok(Ok(conn)) => {
                    ticket.check_out(asked);
                    return Ok(Pooled::new(conn, ticket));
                }
                Ok(Err(RunError::User(e))) => recorder.connect_error(e.to_string()),
                // bb8's own timer, or our slice: ask again (a lost wake-up in bb8 costs
                // at most one slice instead of the whole timeout).
                Ok(Err(RunError::TimedOut)) | Err(_) => slice = (slice * 2).min(MAX_SLICE),
            }
            now = Instant::now();
        }
    }

    /// A checkout refused before its timeout because the backend is down (`fail_fast`).
    fn refused(&self, asked: Instant) -> Error {
        let recorder = &self.shared.recorder;
        recorder.refused_unavailable();
        let last_error = recorder.last_error().unwrap_or_else(|| "a connect attempt failed".into());
        Error::from(ErrorKind::Unavailable { waited: asked.elapsed(), last_error })
    }

    /// Counters for the fail-fast decisions, read now.
    fn reading(&self) -> Reading {
        let s = self.inner.state();
        let invalid = s.statistics.connections_closed_invalid;
        Reading {
            idle: s.idle_connections,
            created: s.statistics.connections_created,
            failures: self.shared.recorder.connect_errors().saturating_sub(invalid),
        }
    }

    fn timed_out(&self, asked: Instant) -> Error {
        let recorder = &self.shared.recorder;
        recorder.timed_out();
        let waited = asked.elapsed();
        let config = &self.shared.config;
        // Errors from just before the checkout count too: bb8 may be backing off
        // between connect attempts for up to half the connection timeout.
        let since = asked.checked_sub(config.connection_timeout).unwrap_or(asked);
        let short_of_connections = self.inner.state().connections < config.max_size;
        match recorder.last_error_since(since) {
            Some(last_error) if short_of_connections => ErrorKind::Unavailable { waited, last_error }.into(),
            _ => ErrorKind::Timeout { waited, max_size: config.max_size }.into(),
        }
    }
}

/// The error of a pool whose first connections could not be opened: a manager of this
/// crate refusing one of its own settings (such as `SqliteManager::busy_timeout`) is
/// that config error, which retrying will not mend; anything else is [`ErrorKind::Connect`].
fn connect_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    match e.downcast::<Error>() {
        Ok(own) if own.is_config() => *own,
        Ok(own) => ErrorKind::Connect(own).into(),
        Err(other) => ErrorKind::Connect(other).into(),
    }
}

impl<M: ManageConnection> Pool<M> {
    /// How many connections are open, idle, in use and awaited.
    pub fn state(&self) -> State {
        let s = self.inner.state();
        State {
            max_size: self.shared.config.max_size,
            connections: s.connections,
            idle: s.idle_connections,
            in_use: self.shared.recorder.in_use(),
            waiting: self.shared.recorder.waiting(),
        }
    }

    /// A snapshot of the pool's counters, utilization and latency histograms.
    pub fn metrics(&self) -> Metrics {
        let c = &self.shared.config;
        self.shared.recorder.snapshot(c.max_size, c.target_utilization, c.metrics_window, &self.inner.state())
    }

    /// The configuration the pool was built with.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// The bb8 pool underneath, e.g. for `dedicated_connection`. Checkouts made
    /// through it bypass this pool's gate and metrics.
    pub fn get_ref(&self) -> &bb8::Pool<M> {
        &self.inner
    }
}
