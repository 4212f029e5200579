//! `/health`, `/ready`, `/metrics`, `/api/v1/stats`, `/api/v1/diagnostics/queries`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use mltb_store::TaskState;
use serde::Serialize;

use super::{ApiError, AppState};
use crate::metrics::{DiskStats, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE, ProcessStats};
use crate::model::{ByteCounts, DiskInfo, Stats, TaskCounts};

#[derive(Serialize)]
struct Health {
    status: &'static str,
    uptime_seconds: f64,
}

/// `GET /health`: the process answers.
///
/// Its state is the metrics alone (one reference count per request, not the whole
/// [`AppState`]): it is the route load balancers and probes call most.
pub(crate) async fn health(
    State(metrics): State<std::sync::Arc<crate::metrics::Metrics>>,
) -> Json<impl Serialize> {
    Json(Health { status: "ok", uptime_seconds: metrics.uptime().as_secs_f64() })
}

/// `GET /ready`: 200 when every check passes, else 503; the body names each check. The
/// checks run at most once a second ([`FRESH`](crate::ready::FRESH)); a failed check's
/// own reason is shown only to a client with the token (everyone else reads
/// [`WITHHELD`](crate::ready::WITHHELD)).
pub(crate) async fn ready(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let report = s.ready.get().await;
    let readiness = if s.auth.admits(&headers) { &report.detailed } else { &report.open };
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness)).into_response()
}

/// Whether the client asked for the Prometheus text format rather than OpenMetrics:
/// only when it names `text/plain` and not `application/openmetrics-text`.
fn wants_prometheus_text(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    accept.contains("text/plain") && !accept.contains("application/openmetrics-text")
}

/// `GET /metrics`: OpenMetrics text, or Prometheus text 0.0.4 when that is all the
/// client accepts.
pub(crate) async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let metrics = s.metrics.clone();
    let prometheus = wants_prometheus_text(&headers);
    // Collectors read /proc and statvfs: keep that off the async workers.
    let rendered = tokio::task::spawn_blocking(move || {
        if prometheus { metrics.render_prometheus_text() } else { metrics.render_openmetrics() }
    })
    .await;
    match rendered {
        Ok(body) => {
            let content_type =
                if prometheus { PROMETHEUS_TEXT_CONTENT_TYPE } else { OPENMETRICS_CONTENT_TYPE };
            ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, "rendering metrics failed".into()).into_response()
        }
    }
}

/// `GET /api/v1/stats`.
pub(crate) async fn stats(State(s): State<AppState>) -> Json<Stats> {
    let live = s.engine.live();
    let mut tasks = TaskCounts::default();
    let mut bytes = ByteCounts::default();
    for v in &live {
        match v.state {
            TaskState::Queued => tasks.queued += 1,
            TaskState::Downloading => tasks.downloading += 1,
            TaskState::Uploading => tasks.uploading += 1,
            TaskState::Seeding => tasks.seeding += 1,
            _ => {}
        }
        // Sizes come from torrents: crafted ones may sum past u64::MAX.
        bytes.live_done = bytes.live_done.saturating_add(v.done);
        bytes.live_size = bytes.live_size.saturating_add(v.total);
        bytes.live_speed = bytes.live_speed.saturating_add(v.speed);
    }
    (bytes.downloaded, bytes.uploaded) = s.metrics.transferred_bytes();
    let dir = s.download_dir.clone();
    let (disk, process) = tokio::task::spawn_blocking(move || {
        let disk =
            dir.and_then(|d| Some(DiskInfo { stats: DiskStats::of(&d)?, dir: d.display().to_string() }));
        (disk, ProcessStats::read())
    })
    .await
    .unwrap_or_default();
    Json(Stats {
        uptime_seconds: s.metrics.uptime().as_secs_f64(),
        tasks,
        queue: s.engine.queue_counts(),
        bytes,
        disk,
        process,
    })
}

/// `GET /api/v1/diagnostics/queries`: the query analyzer's report.
pub(crate) async fn queries(State(s): State<AppState>) -> Result<Response, ApiError> {
    let analyzer =
        s.analyzer.clone().ok_or_else(|| ApiError::not_found("no query analyzer is configured"))?;
    // The report replays query samples through a cache model: not on an async worker.
    let report = tokio::task::spawn_blocking(move || analyzer.report())
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("the report failed: {e}")))?;
    Ok(Json(report).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn openmetrics_unless_only_text_plain_is_asked_for() {
        assert!(!wants_prometheus_text(&HeaderMap::new()));
        assert!(!wants_prometheus_text(&accept("*/*")));
        assert!(wants_prometheus_text(&accept("text/plain;version=0.0.4")));
        assert!(!wants_prometheus_text(&accept(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
    }
}
