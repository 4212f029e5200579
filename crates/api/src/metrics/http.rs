//! The HTTP middleware and its figures: requests by method, route template and status,
//! time to the response head by method and route template, and requests in flight.
//!
//! Every request is recorded in the stripe of the thread that answers it: a lock and a
//! small table that, on a multi-thread runtime, one worker thread uses almost alone,
//! each on its own cache lines. Recording a request writes no line another core is
//! writing too, and takes no lock another core holds; a scrape sums the stripes.
//! (prometheus-client's `Family` and `Histogram` took a shared read lock twice and the
//! histogram's mutex on every request, on lines every core wrote; without them
//! `/health`'s server CPU per request at 100 connections fell by 7%,
//! docs/load-testing.md.)

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use super::Metrics;

/// Bucket bounds of `mltb_http_request_duration_seconds`, in seconds (and `+Inf`).
const LATENCY_BUCKETS: [f64; 13] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Stripes: a power of two, at least the worker threads of most machines this runs on;
/// two threads that share one still count right, only less cheaply.
const STRIPES: usize = 16;

/// The methods with a label of their own, in [`method_index`]'s order, and `other`.
const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"];

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

/// A method's index in [`METHODS`]: the standard ones by name, anything else as `other`
/// (bounded label values).
fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// The figures of one method on one route, in one stripe.
#[derive(Debug, Clone, Default)]
struct Timed {
    /// Requests per bucket of [`LATENCY_BUCKETS`], the last for `+Inf`.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
    /// Requests by status code.
    statuses: Vec<(u16, u64)>,
}

impl Timed {
    fn record(&mut self, seconds: f64, status: u16) {
        let bucket = LATENCY_BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket] += 1;
        self.sum += seconds;
        self.count += 1;
        self.count_status(status, 1);
    }

    fn count_status(&mut self, status: u16, n: u64) {
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, m)) => *m += n,
            None => self.statuses.push((status, n)),
        }
    }

    fn add(&mut self, other: &Self) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
        for &(status, n) in &other.statuses {
            self.count_status(status, n);
        }
    }
}

/// Keeps each stripe on cache lines of its own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

/// A route's figures by method, in [`METHODS`]' order.
type ByMethod = [Option<Box<Timed>>; METHODS.len()];

/// One stripe: per route template, per method.
#[derive(Debug, Default)]
struct Stripe {
    routes: Mutex<HashMap<Box<str>, ByMethod>>,
    /// Requests that entered on this stripe's thread and have not been answered (a
    /// request leaves from the stripe it entered, whichever thread answers it).
    in_flight: AtomicI64,
}

/// The HTTP figures of one API, striped by thread.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    stripes: Box<[Padded<Stripe>]>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self { stripes: (0..STRIPES).map(|_| Padded(Stripe::default())).collect() }
    }
}

std::thread_local! {
    /// The calling thread's stripe, handed out round-robin at its first request.
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Relaxed) % STRIPES
    };
}

impl HttpMetrics {
    fn stripe(&self) -> &Stripe {
        &self.stripes[STRIPE.with(|s| *s)].0
    }

    /// Records one answered request.
    /// `method`: its index in [`METHODS`].
    pub(crate) fn record(&self, method: usize, route: &str, status: u16, seconds: f64) {
        let mut routes = self.stripe().routes.lock().unwrap_or_else(|p| p.into_inner());
        let methods = match routes.get_mut(route) {
            Some(methods) => methods,
            None => routes.entry(route.into()).or_default(),
        };
        methods[method].get_or_insert_default().record(seconds, status);
    }

    /// Requests being answered now.
    fn in_flight(&self) -> i64 {
        self.stripes.iter().map(|s| s.0.in_flight.load(Relaxed)).sum::<i64>().max(0)
    }

    /// Every stripe's figures summed, by route template and method.
    fn totals(&self) -> BTreeMap<(Box<str>, usize), Timed> {
        let mut totals: BTreeMap<(Box<str>, usize), Timed> = BTreeMap::new();
        for stripe in &self.stripes {
            let routes = stripe.0.routes.lock().unwrap_or_else(|p| p.into_inner());
            for (route, methods) in routes.iter() {
                for (method, timed) in methods.iter().enumerate() {
                    if let Some(timed) = timed {
                        totals.entry((route.clone(), method)).or_default().add(timed);
                    }
                }
            }
        }
        totals
    }
}

/// Counts a request in flight until dropped, so a request whose client went away (its
/// future dropped) is not counted forever.
struct InFlight<'a>(&'a AtomicI64);

impl<'a> InFlight<'a> {
    fn enter(metrics: &'a HttpMetrics) -> Self {
        let gauge = &metrics.stripe().in_flight;
        gauge.fetch_add(1, Relaxed);
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Records every request: its route template (never the raw path), method, status and
/// time to the response head.
pub(crate) async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route: Box<str> = match req.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().into(),
        None => UNMATCHED.into(),
    };
    let method = method_index(req.method());
    let in_flight = InFlight::enter(&metrics.http);
    let started = Instant::now();
    let response = next.run(req).await;
    let elapsed = started.elapsed().as_secs_f64();
    drop(in_flight);
    metrics.http.record(method, &route, response.status().as_u16(), elapsed);
    response
}

/// The HTTP families, written from the stripes at each scrape.
pub(crate) struct HttpCollector(pub(crate) Arc<HttpMetrics>);

impl fmt::Debug for HttpCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCollector").finish_non_exhaustive()
    }
}

impl Collector for HttpCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        encode_http(&self.0, &mut enc)
    }
}

/// `mltb_http_requests_total{method, route, status}`,
/// `mltb_http_request_duration_seconds{method, route}` and `mltb_http_requests_in_flight`.
fn encode_http(http: &HttpMetrics, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let totals = http.totals();
    let mut family = enc.encode_descriptor(
        "mltb_http_requests",
        "HTTP requests answered by the API, by method, route template and status",
        None,
        MetricType::Counter,
    )?;
    for ((route, method), timed) in &totals {
        let mut statuses = timed.statuses.clone();
        statuses.sort_unstable();
        for (status, n) in statuses {
            let labels = [("method", METHODS[*method]), ("route", route), ("status", &status.to_string())];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
    }
    let mut family = enc.encode_descriptor(
        "mltb_http_request_duration",
        "Time from a request's arrival to its response head, by method and route template",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for ((route, method), timed) in &totals {
        let labels = [("method", METHODS[*method]), ("route", route)];
        let buckets: Vec<(f64, u64)> =
            LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]).zip(timed.buckets).collect();
        family.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
            timed.sum,
            timed.count,
            &buckets,
            None,
        )?;
    }
    let family = enc.encode_descriptor(
        "mltb_http_requests_in_flight",
        "HTTP requests being answered now",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(http.in_flight()).encode(family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_labelled_by_their_code_and_methods_past_the_standard_ones_share_one() {
        let metrics = Metrics::new();
        let http = &metrics.http;
        for code in [200u16, 202, 303, 404, 410, 429, 503, 418, 599] {
            http.record(method_index(&Method::GET), "/api/v1/tasks", code, 0.002);
        }
        http.record(method_index(&Method::from_bytes(b"BREW").unwrap()), UNMATCHED, 404, 0.0);
        let text = metrics.render_openmetrics();
        for code in [200u16, 202, 303, 404, 410, 429, 503, 418, 599] {
            let line = format!(
                "mltb_http_requests_total{{method=\"GET\",route=\"/api/v1/tasks\",status=\"{code}\"}} 1\n"
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(
            text.contains(
                "mltb_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1\n"
            )
        );
    }

    #[test]
    fn requests_answered_on_many_threads_are_summed_into_one_histogram() {
        let metrics = Metrics::new();
        let http: &HttpMetrics = &metrics.http;
        let threads = 2 * STRIPES + 3;
        // Each thread leaves its request in flight; they leave from this thread below.
        let guards: Vec<InFlight<'_>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        let guard = InFlight::enter(http);
                        for i in 0..100 {
                            // 0.5 ms (first bucket), 3 ms (third), 20 s (+Inf)
                            let seconds = [0.0005, 0.003, 20.0][(t + i) % 3];
                            http.record(0, "/health", 200, seconds);
                        }
                        guard
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total = threads * 100;
        let (fast, mid) = (
            (0..threads).map(|t| (0..100).filter(|i| (t + i) % 3 == 0).count()).sum::<usize>(),
            (0..threads).map(|t| (0..100).filter(|i| (t + i) % 3 == 1).count()).sum::<usize>(),
        );
        let text = metrics.render_openmetrics();
        let has = |line: String| assert!(text.contains(&line), "{line} in {text}");
        has(format!("mltb_http_requests_total{{method=\"GET\",route=\"/health\",status=\"200\"}} {total}\n"));
        has(format!(
            "mltb_http_request_duration_seconds_count{{method=\"GET\",route=\"/health\"}} {total}\n"
        ));
        // Buckets are cumulative.
        has(format!(
            "mltb_http_request_duration_seconds_bucket{{le=\"0.001\",method=\"GET\",route=\"/health\"}} {fast}\n"
        ));
        has(format!(
            "mltb_http_request_duration_seconds_bucket{{le=\"0.005\",method=\"GET\",route=\"/health\"}} {}\n",
            fast + mid
        ));
        has(format!(
            "mltb_http_request_duration_seconds_bucket{{le=\"10.0\",method=\"GET\",route=\"/health\"}} {}\n",
            fast + mid
        ));
        has(format!(
            "mltb_http_request_duration_seconds_bucket{{le=\"+Inf\",method=\"GET\",route=\"/health\"}} {total}\n"
        ));
        has(format!("mltb_http_requests_in_flight {threads}\n"));
        drop(guards);
        assert!(
            metrics.render_openmetrics().contains("mltb_http_requests_in_flight 0\n"),
            "requests that left on another thread"
        );
    }
}
