//! The HTTP middleware: requests by route template and status, latency, in flight.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use prometheus_client::encoding::EncodeLabelSet;

use super::Metrics;

/// Labels of `mltb_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) method: &'static str,
    pub(crate) route: Cow<'static, str>,
    pub(crate) status: Cow<'static, str>,
}

/// Labels of `mltb_http_request_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) method: &'static str,
    pub(crate) route: Cow<'static, str>,
}

/// Labels of `mltb_ready_check_ok`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CheckLabels {
    pub(crate) check: String,
}

/// Labels of `mltb_rate_limit_rejections_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RejectionLabels {
    pub(crate) limiter: String,
    pub(crate) tier: String,
}

/// The route label of requests no route matched: one value, whatever the path, so a
/// scanner cannot grow the metrics without bound.
pub(crate) const UNMATCHED: &str = "unmatched";

/// A method as a label: the standard ones by name, anything else as `other` (bounded
/// label values).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Records every request: its route template (never the raw path), method, status and
/// time to the response head.
pub(crate) async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route: Cow<'static, str> = match req.extensions().get::<MatchedPath>() {
        Some(path) => Cow::Owned(path.as_str().to_owned()),
        None => Cow::Borrowed(UNMATCHED),
    };
    let method = method_label(req.method());
    let in_flight = InFlight::enter(&metrics.http.in_flight);
    let started = Instant::now();
    let response = next.run(req).await;
    let elapsed = started.elapsed().as_secs_f64();
    drop(in_flight);
    // One allocation per request (the route), none for the common statuses: this runs
    // on every request, `/health` included.
    let labels = RouteLabels { method, route };
    metrics.http.duration.get_or_create(&labels).observe(elapsed);
    let status = status_label(response.status());
    metrics.http.requests.get_or_create(&RequestLabels { method, route: labels.route, status }).inc();
    response
}

/// A status as a label, without allocating for the statuses the API answers with.
fn status_label(status: http::StatusCode) -> Cow<'static, str> {
    Cow::Borrowed(match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        303 => "303",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        410 => "410",
        413 => "413",
        429 => "429",
        500 => "500",
        503 => "503",
        other => return Cow::Owned(other.to_string()),
    })
}

/// Counts a request in flight until dropped, so a request whose client went away (its
/// future dropped) is not counted forever.
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_labelled_by_their_code() {
        for code in [200u16, 202, 303, 404, 410, 429, 503, 418, 599] {
            let status = http::StatusCode::from_u16(code).unwrap();
            assert_eq!(status_label(status), code.to_string());
        }
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
