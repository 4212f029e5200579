//! Composes the HTTP API (`mltb-api`) over the running bot: the metrics sources, the
//! readiness checks, the config.

use std::sync::Arc;

use frankenstein::AsyncTelegramApi;
use mltb_api::{
    Api, ApiConfig, BalancerStats, BuildInfo, FnCheck, Metrics, Secret, StoreCheck, TelegramStats, TlsFiles,
};
use mltb_bot::Observer;
use mltb_bot::auth::Access;
use mltb_bot::config::Config;
use mltb_bot::launch::Running;
use mltb_store::AnyBackend;

/// The process's metrics, before the bot starts.
pub(crate) fn new_metrics() -> Arc<Metrics> {
    Arc::new(Metrics::with_build_info(BuildInfo::new(env!("CARGO_PKG_VERSION"))))
}

/// Turns what the bot reports into metrics.
#[derive(Debug)]
pub(crate) struct MetricsObserver(pub(crate) Arc<Metrics>);

impl Observer for MetricsObserver {
    fn command_rejected(&self, role: Access) {
        self.0.rate_limit_rejected("commands", role.name());
    }

    fn transferred(&self, downloaded: u64, uploaded: u64) {
        self.0.add_downloaded_bytes(downloaded);
        self.0.add_uploaded_bytes(uploaded);
    }
}

/// Registers the running bot's sources in `metrics`.
pub(crate) fn register(metrics: &Metrics, running: &Running) {
    for role in [Access::Owner, Access::Sudo, Access::Authorized, Access::Guest] {
        metrics.rate_limit_declare("commands", role.name());
    }
    if running.downloader.balancer().is_some() {
        let downloader = running.downloader.clone();
        metrics
            .add_balancer("aria2", move || downloader.balancer().map(BalancerStats::of).unwrap_or_default());
    }
    let store = running.store.clone();
    metrics.add_cache("store", move || store.cache_stats());
    let store = running.store.clone();
    metrics.add_batcher("store_writes", move || store.write_stats());
    match running.store.backend() {
        AnyBackend::Sqlite(b) => {
            let pool = b.pool().clone();
            metrics.add_pool("sqlite", move || pool.metrics());
        }
        AnyBackend::Postgres(b) => {
            let pool = b.pool().clone();
            metrics.add_pool("postgres", move || pool.metrics());
        }
        _ => {}
    }
    let scheduler = running.scheduler.clone();
    metrics.add_telegram("bot", move || TelegramStats::of(&scheduler));
}

/// Serves the API until `stop` resolves; `None` when `api.enabled` is false.
pub(crate) async fn serve(
    config: &Config,
    running: &Running,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Option<mltb_api::Running>, String> {
    if !config.api.enabled {
        return Ok(None);
    }
    let mut api_config = ApiConfig::new()
        .bind(config.api.bind)
        .rate(config.api.rate.quota())
        .ready_interval(config.api.ready_interval.0);
    if let Some(token) = &config.secrets.api_token {
        api_config =
            api_config.token(Secret::new(token.expose()).map_err(|e| format!("MLTB_API_TOKEN: {e}"))?);
    }
    if let (Some(cert), Some(key)) = (&config.api.tls_cert, &config.api.tls_key) {
        api_config = api_config.tls(TlsFiles::new(cert, key));
    }
    let downloader = running.downloader.clone();
    let aria2 = FnCheck::new("aria2", move || {
        let downloader = downloader.clone();
        async move { downloader.jobs().await.map(drop).map_err(|e| e.to_string()) }
    });
    let client = running.client.clone();
    let telegram = FnCheck::new("telegram", move || {
        let client = client.clone();
        async move { client.get_me().await.map(drop).map_err(|e| e.to_string()) }
    });
    let api = Api::builder(api_config, metrics, Arc::new(running.engine.clone()))
        .ready_check(StoreCheck::new(running.store.clone()))
        .ready_check(aria2)
        .ready_check(telegram)
        .query_analyzer(running.analyzer.clone())
        .download_dir(config.download_dir())
        .build()
        .map_err(|e| format!("api: {e}"))?;
    api.serve(stop).await.map(Some).map_err(|e| format!("api: {e}"))
}
