//! [`Metrics`]: the registry the binary owns, the API's own HTTP metrics, and the
//! sources read at scrape time.

mod http;
mod process;
mod sources;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

pub(crate) use self::http::track;
use self::http::{CheckLabels, HttpCollector, HttpMetrics, RejectionLabels};
pub use self::process::{DiskStats, ProcessStats};
pub use self::sources::{BalancerStats, EndpointStats, TelegramStats};
use self::sources::{SourceCollector, Sources};
use crate::engine::TaskEngine;

/// The `Content-Type` of OpenMetrics text 1.0.0.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What the program was built from: `mltb_build_info{version, commit, rustc} 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildInfo {
    /// The program's version.
    pub version: String,
    /// The git commit, from `MLTB_GIT_COMMIT` at build time (`unknown` without it).
    pub commit: String,
    /// The compiler's `rustc --version`.
    pub rustc: String,
}

impl BuildInfo {
    /// This build, with `version` (pass the binary's `env!("CARGO_PKG_VERSION")`).
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            commit: option_env!("MLTB_GIT_COMMIT").filter(|c| !c.is_empty()).unwrap_or("unknown").to_owned(),
            rustc: env!("MLTB_RUSTC_VERSION").to_owned(),
        }
    }
}

impl Default for BuildInfo {
    fn default() -> Self {
        Self::new(env!("CARGO_PKG_VERSION"))
    }
}

/// The metrics of the whole process, as OpenMetrics text: the binary builds one, adds
/// the sources it has, hands it to the [`Api`](crate::Api), and may register its own
/// metrics in the same registry ([`with_registry`](Self::with_registry)).
///
/// Sources are functions returning a crate's plain stats struct (`mltb_cache::Stats`,
/// `mltb_pool::Metrics`, …); they are read at every scrape, never in between, so a
/// source costs nothing until Prometheus asks. Adding a source again under the same
/// name replaces it.
///
/// ```
/// use mltb_api::Metrics;
///
/// let metrics = Metrics::new();
/// metrics.add_cache("auth", || mltb_cache::Stats::default());
/// metrics.add_downloaded_bytes(4096);
/// metrics.rate_limit_rejected("commands", "guest");
/// metrics.rate_limit_declare("commands", "owner");
///
/// let text = metrics.render_openmetrics();
/// assert!(text.contains("mltb_cache_hits_total{cache=\"auth\"} 0"));
/// assert!(text.contains("mltb_downloaded_bytes_total 4096"));
/// assert!(text.contains("mltb_rate_limit_rejections_total{limiter=\"commands\",tier=\"guest\"} 1"));
/// // Declared series exist at 0, the API's own from the start.
/// assert!(text.contains("mltb_rate_limit_rejections_total{limiter=\"commands\",tier=\"owner\"} 0"));
/// assert!(text.contains("mltb_rate_limit_rejections_total{limiter=\"api\",tier=\"client\"} 0"));
/// assert!(text.ends_with("# EOF\n"));
/// ```
pub struct Metrics {
    registry: Mutex<Registry>,
    sources: Arc<RwLock<Sources>>,
    pub(crate) http: Arc<HttpMetrics>,
    rejections: Family<RejectionLabels, Counter>,
    ready: Family<CheckLabels, Gauge>,
    downloaded: Counter,
    uploaded: Counter,
    started: Instant,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").field("uptime", &self.uptime()).finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the HTTP, rate-limit, transfer, process and build-info families
    /// (the build info of [`BuildInfo::default`]).
    pub fn new() -> Self {
        Self::with_build_info(BuildInfo::default())
    }

    /// As [`new`](Self::new), with `info` as the build info.
    pub fn with_build_info(info: BuildInfo) -> Self {
        let mut registry = Registry::default();
        // Collectors' families follow the registry's own in the exposition.
        let http = Arc::new(HttpMetrics::default());
        registry.register_collector(Box::new(HttpCollector(http.clone())));
        let rejections = Family::<RejectionLabels, Counter>::default();
        registry.register(
            "mltb_rate_limit_rejections",
            "Requests refused by a rate limiter, by limiter and tier",
            rejections.clone(),
        );
        // The API's own series exists from the start, at 0.
        drop(rejections.get_or_create(&RejectionLabels { limiter: "api".into(), tier: "client".into() }));
        let ready = Family::<CheckLabels, Gauge>::default();
        registry.register(
            "mltb_ready_check_ok",
            "1 when the readiness check passed at its last run, 0 when it failed, by check (run by /ready and every api ready_interval)",
            ready.clone(),
        );
        let (downloaded, uploaded) = (Counter::default(), Counter::default());
        registry.register_with_unit(
            "mltb_downloaded",
            "Bytes downloaded by tasks, as reported by the downloaders",
            Unit::Bytes,
            downloaded.clone(),
        );
        registry.register_with_unit(
            "mltb_uploaded",
            "Bytes uploaded by tasks (Telegram and rclone), as reported by the uploaders",
            Unit::Bytes,
            uploaded.clone(),
        );
        registry.register(
            "mltb_build",
            "What the program was built from",
            Info::new(vec![("version", info.version), ("commit", info.commit), ("rustc", info.rustc)]),
        );
        let sources = Arc::new(RwLock::new(Sources::default()));
        let started = Instant::now();
        let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        registry.register_collector(Box::new(SourceCollector {
            sources: sources.clone(),
            started,
            started_unix,
        }));
        Self {
            registry: Mutex::new(registry),
            sources,
            http,
            rejections,
            ready,
            downloaded,
            uploaded,
            started,
        }
    }

    /// Registers metrics of the binary's own into the same registry (names must not
    /// clash with the ones listed in the crate docs).
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.registry.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The task engine: `mltb_tasks{state}`, the bytes and speed of live tasks, and the
    /// queue's slots. [`ApiBuilder::build`](crate::ApiBuilder::build) sets it.
    pub fn set_engine(&self, engine: Arc<dyn TaskEngine>) {
        self.write().engine = Some(engine);
    }

    /// A Telegram scheduler, labelled `scheduler="<name>"` (use
    /// [`TelegramStats::of`]).
    pub fn add_telegram(&self, name: &str, source: impl Fn() -> TelegramStats + Send + Sync + 'static) {
        upsert(&mut self.write().telegram, name, Arc::new(source));
    }

    /// A load balancer, labelled `balancer="<name>"` and `endpoint` per member (e.g.
    /// [`BalancerStats::of`] over the aria2 downloader's balancer).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// use mltb_api::{BalancerStats, Metrics};
    /// use mltb_balancer::{Backend, Balancer, RoundRobin};
    ///
    /// let backends = [Backend::new("a", "127.0.0.1:6800"), Backend::new("b", "127.0.0.1:6801")];
    /// let balancer = Arc::new(Balancer::new(RoundRobin::new(), backends).unwrap());
    /// balancer.pick().unwrap().success(Duration::from_millis(20));
    /// balancer.pick().unwrap().failure(Duration::from_millis(900));
    ///
    /// let metrics = Metrics::new();
    /// let b = balancer.clone();
    /// metrics.add_balancer("aria2", move || BalancerStats::of(&b));
    /// let text = metrics.render_openmetrics();
    /// assert!(text.contains("mltb_balancer_endpoints{balancer=\"aria2\",state=\"available\"} 2"));
    /// let picks = |outcome: &str| {
    ///     text.lines()
    ///         .filter(|l| l.starts_with("mltb_balancer_picks_total{") && l.contains(&format!("outcome=\"{outcome}\"")))
    ///         .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
    ///         .sum::<u64>()
    /// };
    /// assert_eq!((picks("success"), picks("failure")), (1, 1));
    /// assert!(text.contains("# UNIT mltb_balancer_latency_ewma_seconds seconds"));
    /// ```
    pub fn add_balancer(&self, name: &str, source: impl Fn() -> BalancerStats + Send + Sync + 'static) {
        upsert(&mut self.write().balancers, name, Arc::new(source));
    }

    /// A cache, labelled `cache="<name>"` (e.g. `Store::cache_stats`).
    pub fn add_cache(&self, name: &str, source: impl Fn() -> mltb_cache::Stats + Send + Sync + 'static) {
        upsert(&mut self.write().caches, name, Arc::new(source));
    }

    /// A connection pool, labelled `pool="<name>"` (e.g. `Pool::metrics`).
    pub fn add_pool(&self, name: &str, source: impl Fn() -> mltb_pool::Metrics + Send + Sync + 'static) {
        upsert(&mut self.write().pools, name, Arc::new(source));
    }

    /// A batcher, labelled `batcher="<name>"` (e.g. `Store::write_stats`).
    pub fn add_batcher(&self, name: &str, source: impl Fn() -> mltb_batch::Stats + Send + Sync + 'static) {
        upsert(&mut self.write().batchers, name, Arc::new(source));
    }

    /// The query analyzer's counters (`Analyzer::counters`, which is cheap; not
    /// `report`).
    pub fn set_query_analyzer(
        &self,
        source: impl Fn() -> mltb_query_analyzer::Counters + Send + Sync + 'static,
    ) {
        self.write().query = Some(Arc::new(source));
    }

    /// A directory whose file system's free space is exported, labelled `dir="<name>"`
    /// (e.g. `downloads`).
    pub fn add_disk(&self, name: &str, dir: impl Into<PathBuf>) {
        upsert(&mut self.write().disks, name, dir.into());
    }

    /// Counts one request refused by `limiter` (`api`, `commands`, …) for `tier`
    /// (`guest`, `authorized`, …): `mltb_rate_limit_rejections_total`. The API counts its
    /// own under `limiter="api", tier="client"`; `mltb-ratelimit` keeps no such count, so
    /// the bot calls this where its checks fail.
    pub fn rate_limit_rejected(&self, limiter: &str, tier: &str) {
        self.rejection(limiter, tier).inc();
    }

    /// Makes `mltb_rate_limit_rejections_total{limiter, tier}` exist at 0 before its first
    /// rejection, so that queries and alerts over it see a series from the start (a
    /// family with no series exports nothing at all). The API's own is declared already.
    pub fn rate_limit_declare(&self, limiter: &str, tier: &str) {
        self.rejection(limiter, tier);
    }

    fn rejection(&self, limiter: &str, tier: &str) -> Counter {
        self.rejections
            .get_or_create(&RejectionLabels { limiter: limiter.to_owned(), tier: tier.to_owned() })
            .clone()
    }

    /// Adds `bytes` to `mltb_downloaded_bytes_total` (the binary feeds it from its
    /// downloaders' progress).
    pub fn add_downloaded_bytes(&self, bytes: u64) {
        self.downloaded.inc_by(bytes);
    }

    /// Adds `bytes` to `mltb_uploaded_bytes_total`.
    pub fn add_uploaded_bytes(&self, bytes: u64) {
        self.uploaded.inc_by(bytes);
    }

    /// Bytes counted so far by [`add_downloaded_bytes`](Self::add_downloaded_bytes) and
    /// [`add_uploaded_bytes`](Self::add_uploaded_bytes).
    pub fn transferred_bytes(&self) -> (u64, u64) {
        (self.downloaded.get(), self.uploaded.get())
    }

    /// Records how each readiness check stands (`mltb_ready_check_ok{check}`).
    pub fn record_ready(&self, readiness: &crate::Readiness) {
        for c in &readiness.checks {
            self.ready.get_or_create(&CheckLabels { check: c.name.clone() }).set(i64::from(c.ok));
        }
    }

    /// Time since these metrics were made.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Every family as OpenMetrics text 1.0.0, ending in `# EOF`.
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail, and the collectors only fail on write errors.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }

    /// Every family in the Prometheus text format 0.0.4 (for scrapers and tools that do
    /// not read OpenMetrics, such as `promtool check metrics`).
    pub fn render_prometheus_text(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Sources> {
        self.sources.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn upsert<T>(list: &mut Vec<(String, T)>, name: &str, value: T) {
    match list.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => list.push((name.to_owned(), value)),
    }
}
