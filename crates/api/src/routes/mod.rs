//! The router: open routes, `/api/*` behind the token and the rate limit, and the HTTP
//! metrics around everything.

mod auth;
mod dashboard;
mod select;
mod system;
mod tasks;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use http::{HeaderValue, StatusCode, header};
use mltb_query_analyzer::Analyzer;
use mltb_ratelimit::{KeyedLimiter, RateLimitError, RateLimitLayer, RateLimiter};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;

pub(crate) use self::auth::Auth;
pub(crate) use self::dashboard::Sessions;
use crate::engine::TaskEngine;
use crate::metrics::Metrics;
use crate::model::ErrorBody;
use crate::ready;

/// What every handler may read.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<dyn TaskEngine>,
    pub(crate) metrics: Arc<Metrics>,
    /// The readiness checks and their last report.
    pub(crate) ready: Arc<ready::Cache>,
    /// The token check (`/ready` shows check errors to the token's holder).
    pub(crate) auth: Arc<Auth>,
    pub(crate) analyzer: Option<Arc<Analyzer>>,
    /// Shared, so that cloning the state (each request does) does not copy the path.
    pub(crate) download_dir: Option<Arc<std::path::Path>>,
    pub(crate) max_finished: u32,
}

/// An error answer: a status and `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl ApiError {
    pub(crate) fn bad_request(text: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, text.into())
    }

    pub(crate) fn not_found(text: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, text.into())
    }

    pub(crate) fn store(e: &mltb_store::Error) -> Self {
        tracing::warn!(error = %e, "store read failed");
        Self(StatusCode::SERVICE_UNAVAILABLE, format!("the store did not answer: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

/// The rate limiter's key: the client's IP address (the unspecified address when the
/// connection's peer is unknown, e.g. a router driven without a socket).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The whole router. `stop` ends the dashboard's event streams (when serving stops).
pub(crate) fn router(
    state: AppState,
    auth: Arc<Auth>,
    limiter: Arc<KeyedLimiter<IpAddr>>,
    protect_metrics: bool,
    secure: bool,
    stop: CancellationToken,
) -> Router {
    let metrics = state.metrics.clone();
    let on_limited = {
        let metrics = metrics.clone();
        move |e: RateLimitError<Infallible>| {
            let metrics = metrics.clone();
            async move { limited(&metrics, &e) }
        }
    };
    let api = Router::new()
        .route("/api/v1/tasks", get(tasks::list))
        .route("/api/v1/tasks/{id}", get(tasks::get))
        .route("/api/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/api/v1/stats", get(system::stats))
        .route("/api/v1/diagnostics/queries", get(system::queries))
        // Unknown paths under /api answer 404 only to a client with the token.
        .route("/api", any(no_route))
        .route("/api/{*rest}", any(no_route))
        .layer(axum::middleware::from_fn_with_state(auth.clone(), auth::require_token))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(on_limited.clone()))
                .layer(RateLimitLayer::new(limiter.clone(), client_ip)),
        );
    // The dashboard shares the API's per-client rate limit (it also guards the login).
    let dashboard = dashboard::routes(dashboard::Dashboard {
        app: state.clone(),
        auth: auth.clone(),
        sessions: Arc::new(Sessions::default()),
        secure,
        stop,
        looks: Arc::default(),
    })
    .layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(on_limited.clone()))
            .layer(RateLimitLayer::new(limiter.clone(), client_ip)),
    );
    // The file-selection page: open to whoever holds a task's key, under the same limit.
    let select = select::routes(state.clone()).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(on_limited))
            .layer(RateLimitLayer::new(limiter.clone(), client_ip)),
    );
    // Probes ask /ready freely (its checks run at most once a second); a request with a
    // token, which may read the checks' errors, is limited like /api/*, so that /ready
    // does not let anyone guess tokens faster than /api/* does.
    let ready_route = get(system::ready)
        .layer(axum::middleware::from_fn_with_state((limiter, metrics.clone()), limit_token_holders));
    let mut metrics_route = get(system::metrics);
    if protect_metrics {
        metrics_route = metrics_route.layer(axum::middleware::from_fn_with_state(auth, auth::require_token));
    }
    let health = Router::new().route("/health", get(system::health)).with_state(metrics.clone());
    Router::new()
        .route("/ready", ready_route)
        .route("/metrics", metrics_route)
        .merge(api)
        .fallback(no_route)
        .with_state(state)
        .merge(health)
        .merge(dashboard)
        .merge(select)
        .layer(axum::middleware::from_fn_with_state(metrics, crate::metrics::track))
}

/// The sum of `values`, u64::MAX when it would overflow (sizes and speeds come from
/// torrents and downloaders, which may report anything).
pub(crate) fn saturating_sum(values: impl IntoIterator<Item = u64>) -> u64 {
    values.into_iter().fold(0, u64::saturating_add)
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

/// Puts a request that carries an `Authorization` header through the per-client limit.
async fn limit_token_holders(
    axum::extract::State((limiter, metrics)): axum::extract::State<(Arc<KeyedLimiter<IpAddr>>, Arc<Metrics>)>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION)
        && let Err(denied) = limiter.check(&client_ip(&req))
    {
        return too_many(&metrics, denied.retry_after());
    }
    next.run(req).await
}

/// 429 with `Retry-After` in whole seconds (rounded up), counted as a rejection.
fn limited(metrics: &Metrics, e: &RateLimitError<Infallible>) -> Response {
    too_many(metrics, e.retry_after())
}

fn too_many(metrics: &Metrics, retry_after: Option<Duration>) -> Response {
    metrics.rate_limit_rejected("api", "client");
    let wait = retry_after.unwrap_or(Duration::from_secs(1));
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError(StatusCode::TOO_MANY_REQUESTS, format!("rate limited; retry after {secs} s"))
        .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_saturate_instead_of_overflowing() {
        assert_eq!(saturating_sum([1, 2, 3]), 6);
        assert_eq!(saturating_sum([]), 0);
        assert_eq!(saturating_sum([u64::MAX - 1, u64::MAX - 1]), u64::MAX);
        assert_eq!(saturating_sum([u64::MAX, 1, 0]), u64::MAX);
    }
}
