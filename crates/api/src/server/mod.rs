//! [`Api`]: built from a config, the metrics, the engine and readiness checks; served
//! over TCP or TLS 1.3 until a shutdown future resolves.

mod tls;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt;
use mltb_query_analyzer::Analyzer;
use mltb_ratelimit::KeyedLimiter;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ApiConfig;
use crate::engine::TaskEngine;
use crate::error::ErrorKind;
use crate::metrics::Metrics;
use crate::ready::{self, ReadyCheck};
use crate::routes::{self, AppState, Auth};
use crate::{Error, Result};

/// Builds an [`Api`]; see [`Api::builder`].
pub struct ApiBuilder {
    config: ApiConfig,
    metrics: Arc<Metrics>,
    engine: Arc<dyn TaskEngine>,
    checks: Vec<Arc<dyn ReadyCheck>>,
    analyzer: Option<Arc<Analyzer>>,
    download_dir: Option<PathBuf>,
}

impl fmt::Debug for ApiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiBuilder")
            .field("config", &self.config)
            .field("checks", &self.checks.iter().map(|c| c.name().to_owned()).collect::<Vec<_>>())
            .field("download_dir", &self.download_dir)
            .finish_non_exhaustive()
    }
}

impl ApiBuilder {
    /// Adds a readiness check (`/ready` runs them all; see [`ReadyCheck`]).
    pub fn ready_check(mut self, check: impl ReadyCheck) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// The query analyzer behind `/api/v1/diagnostics/queries` (without one, that route
    /// answers 404). [`build`](Self::build) also exports its counters.
    pub fn query_analyzer(mut self, analyzer: Arc<Analyzer>) -> Self {
        self.analyzer = Some(analyzer);
        self
    }

    /// The download directory, whose disk `/api/v1/stats` reports;
    /// [`build`](Self::build) also exports it as `mltb_disk_free_bytes{dir="downloads"}`.
    pub fn download_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.download_dir = Some(dir.into());
        self
    }

    /// Checks the config, loads the TLS files if any, builds the rate limiter and the
    /// router, and registers the engine (and the query analyzer and download directory,
    /// when given) as metric sources.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a setting out of range (named), [`ErrorKind::Tls`] for a
    /// certificate or key that cannot be read or used (the file named).
    pub fn build(self) -> Result<Api> {
        self.config.validate()?;
        let tls = self.config.tls.as_ref().map(tls::server_config).transpose()?;
        let limiter = KeyedLimiter::<IpAddr>::new(self.config.rate, self.config.rate_max_clients)
            .map_err(|e| Error::config("api.rate", e.to_string()))?;
        self.metrics.set_engine(self.engine.clone());
        if let Some(analyzer) = &self.analyzer {
            let analyzer = analyzer.clone();
            self.metrics.set_query_analyzer(move || analyzer.counters());
        }
        if let Some(dir) = &self.download_dir {
            self.metrics.add_disk("downloads", dir.clone());
        }
        if self.config.token.is_none() {
            tracing::warn!("no API token is configured: /api/* answers 403");
        }
        let checks =
            Arc::new(ready::Cache::new(self.checks.into(), self.config.ready_timeout, self.metrics.clone()));
        let ready = ReadyLoop { checks: checks.clone(), every: self.config.ready_interval };
        let auth = Arc::new(Auth::new(self.config.token.as_ref()));
        let state = AppState {
            engine: self.engine,
            metrics: self.metrics,
            ready: checks,
            auth: auth.clone(),
            analyzer: self.analyzer,
            download_dir: self.download_dir.map(Arc::from),
            max_finished: self.config.max_finished,
        };
        // Made here, cancelled when serving stops: long-lived responses (the dashboard's
        // event stream) end with it, so the graceful shutdown does not wait on them.
        let stop = CancellationToken::new();
        let router = routes::router(
            state,
            auth,
            Arc::new(limiter),
            self.config.protect_metrics,
            self.config.has_tls(),
            stop.clone(),
        );
        Ok(Api { config: self.config, router, tls, ready, stop })
    }
}

/// Runs the readiness checks every `every` (recording them in the metrics, and as
/// `/ready`'s next answer), so the gauges stay current when nobody asks `/ready`.
struct ReadyLoop {
    checks: Arc<ready::Cache>,
    every: std::time::Duration,
}

impl ReadyLoop {
    fn spawn(self, stop: CancellationToken) {
        if self.every.is_zero() || self.checks.is_empty() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                self.checks.refresh().await;
            }
        });
    }
}

/// The HTTP API, ready to serve.
///
/// ```no_run
/// use std::sync::Arc;
/// use mltb_api::{Api, ApiConfig, Metrics, TaskEngine};
/// use tokio_util::sync::CancellationToken;
///
/// # async fn run(engine: Arc<dyn TaskEngine>) -> mltb_api::Result<()> {
/// let metrics = Arc::new(Metrics::new());
/// let api = Api::builder(ApiConfig::new(), metrics, engine).build()?;
/// let stop = CancellationToken::new();
/// let running = api.serve(stop.clone().cancelled_owned()).await?;
/// let _addr = running.local_addr();
/// stop.cancel(); // on SIGTERM, say
/// running.wait().await?;
/// # Ok(()) }
/// ```
pub struct Api {
    config: ApiConfig,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    ready: ReadyLoop,
    stop: CancellationToken,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api").field("config", &self.config).field("tls", &self.tls.is_some()).finish()
    }
}

impl Api {
    /// A builder for the API over `engine`, exporting into `metrics`.
    pub fn builder(config: ApiConfig, metrics: Arc<Metrics>, engine: Arc<dyn TaskEngine>) -> ApiBuilder {
        ApiBuilder { config, metrics, engine, checks: Vec::new(), analyzer: None, download_dir: None }
    }

    /// The router, to serve by other means or drive in tests (requests then have no
    /// peer address, and share one rate-limit bucket).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Binds the configured address and serves on a spawned task until `shutdown`
    /// resolves; then stops accepting, ends the dashboard's event streams, lets requests
    /// in progress finish, and ends.
    /// Returns once listening, with the bound address.
    ///
    /// # Errors
    /// [`ErrorKind::Bind`] when the address cannot be bound.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Running> {
        let addr = self.config.bind;
        let tcp =
            TcpListener::bind(addr).await.map_err(|source| Error::from(ErrorKind::Bind { addr, source }))?;
        let local = tcp.local_addr().map_err(|source| Error::from(ErrorKind::Bind { addr, source }))?;
        if !local.ip().is_loopback() && self.tls.is_none() {
            tracing::warn!(%local, "the API listens beyond loopback without TLS: the token travels in clear text");
        }
        let stop = self.stop;
        let signal = {
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        };
        let app = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let task = match self.tls {
            None => {
                let listener = tcp.tap_io(|s| {
                    let _ = s.set_nodelay(true);
                });
                tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(signal).await })
            }
            Some(config) => {
                let stop = stop.clone();
                let listener =
                    tls::TlsListener::start(tcp, config, self.config.handshake_timeout, stop.clone())
                        .map_err(|source| Error::from(ErrorKind::Bind { addr, source }))?
                        .tap_io(|_| {});
                tokio::spawn(async move {
                    let served = axum::serve(listener, app).with_graceful_shutdown(signal).await;
                    stop.cancel();
                    served
                })
            }
        };
        self.ready.spawn(stop.clone());
        tracing::info!(%local, tls = self.config.tls.is_some(), "API listening");
        Ok(Running { local, task, stop })
    }
}

/// A serving [`Api`].
#[derive(Debug)]
pub struct Running {
    local: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
    stop: CancellationToken,
}

impl Running {
    /// The address it listens on (the port chosen, when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether the shutdown future has resolved (the server is stopping or stopped).
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Waits until the server has stopped: the shutdown future resolved and every
    /// request in progress finished.
    ///
    /// # Errors
    /// [`ErrorKind::Serve`] if serving failed.
    pub async fn wait(self) -> Result<()> {
        match self.task.await {
            Ok(served) => served.map_err(|e| ErrorKind::Serve(e).into()),
            Err(e) => Err(ErrorKind::Serve(std::io::Error::other(e.to_string())).into()),
        }
    }
}
