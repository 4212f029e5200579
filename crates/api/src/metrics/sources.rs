//! The collector that turns the crates' stats structs into metric families at scrape
//! time: one collector for every source kind, so that two caches (say) share one family
//! and differ by a label.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use mltb_store::TaskState;
use mltb_telegram::scheduler::{Scheduler, SchedulerStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use super::process::{DiskStats, ProcessStats};
use crate::engine::TaskEngine;

/// A function read at every scrape.
pub(crate) type Source<T> = Arc<dyn Fn() -> T + Send + Sync>;

/// What a Telegram scheduler reports: its counters and how many requests wait in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TelegramStats {
    /// The scheduler's counters.
    pub scheduler: SchedulerStats,
    /// Requests submitted and not yet resolved ([`Scheduler::pending`]).
    pub queue_depth: u64,
}

impl TelegramStats {
    /// The figures of `scheduler` now.
    pub fn of(scheduler: &Scheduler) -> Self {
        Self { scheduler: scheduler.stats(), queue_depth: scheduler.pending() as u64 }
    }
}

/// What a load balancer reports: each member's state and counts, read at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BalancerStats {
    /// Its members.
    pub endpoints: Vec<EndpointStats>,
}

/// One member of a [`BalancerStats`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Its id (an aria2 endpoint's name).
    pub id: String,
    /// Whether active health checks pass.
    pub healthy: bool,
    /// Whether outlier detection has ejected it now.
    pub ejected: bool,
    /// Picks handed out and not yet reported (0 unless the balancer counts them).
    pub in_flight: u64,
    /// Picks reported as successes.
    pub successes: u64,
    /// Picks reported as failures.
    pub failures: u64,
    /// Picks dropped without a report.
    pub dropped: u64,
    /// Ejections in a row (the ejection time multiplier).
    pub ejections_in_a_row: u32,
    /// The peak-EWMA latency estimate, in seconds.
    pub latency_ewma_seconds: f64,
}

impl BalancerStats {
    /// The figures of `balancer` now.
    pub fn of<S: mltb_balancer::Strategy>(balancer: &mltb_balancer::Balancer<S>) -> Self {
        let now = balancer.now_nanos();
        let endpoints = balancer
            .endpoints()
            .iter()
            .map(|e| {
                let (successes, failures, dropped) = e.outcomes();
                EndpointStats {
                    id: e.id().to_owned(),
                    healthy: e.is_healthy(),
                    ejected: e.is_ejected_at(now),
                    in_flight: e.in_flight(),
                    successes,
                    failures,
                    dropped,
                    ejections_in_a_row: e.times_ejected(),
                    latency_ewma_seconds: e.peak_ewma_nanos(now) / 1e9,
                }
            })
            .collect();
        Self { endpoints }
    }
}

/// The registered sources, read by [`SourceCollector`] at every scrape.
#[derive(Default)]
pub(crate) struct Sources {
    pub(crate) engine: Option<Arc<dyn TaskEngine>>,
    pub(crate) telegram: Vec<(String, Source<TelegramStats>)>,
    pub(crate) caches: Vec<(String, Source<mltb_cache::Stats>)>,
    pub(crate) pools: Vec<(String, Source<mltb_pool::Metrics>)>,
    pub(crate) batchers: Vec<(String, Source<mltb_batch::Stats>)>,
    pub(crate) balancers: Vec<(String, Source<BalancerStats>)>,
    pub(crate) query: Option<Source<mltb_query_analyzer::Counters>>,
    pub(crate) disks: Vec<(String, PathBuf)>,
}

/// Reads every source and writes its families.
pub(crate) struct SourceCollector {
    pub(crate) sources: Arc<RwLock<Sources>>,
    pub(crate) started: Instant,
    pub(crate) started_unix: f64,
}

impl fmt::Debug for SourceCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceCollector").finish_non_exhaustive()
    }
}

type Labels = Vec<(&'static str, String)>;

/// Writes one family of counters (`<name>_total`), or nothing if `rows` is empty.
fn counters<V: EncodeCounterValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    rows: Vec<(Labels, V)>,
) -> fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = enc.encode_descriptor(name, help, unit.as_ref(), MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one family of gauges, or nothing if `rows` is empty.
fn gauges<V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    rows: Vec<(Labels, V)>,
) -> fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = enc.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn one<V>(v: V) -> Vec<(Labels, V)> {
    vec![(Vec::new(), v)]
}

fn named<T, V>(list: &[(String, T)], label: &'static str, f: impl Fn(&T) -> V) -> Vec<(Labels, V)> {
    list.iter().map(|(name, t)| (vec![(label, name.clone())], f(t))).collect()
}

/// The states a live task can be in (finished ones leave the engine).
const LIVE_STATES: [TaskState; 4] =
    [TaskState::Queued, TaskState::Downloading, TaskState::Uploading, TaskState::Seeding];

impl Collector for SourceCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let sources = self.sources.read().unwrap_or_else(|p| p.into_inner());
        self.process(&mut enc)?;
        if let Some(engine) = &sources.engine {
            engine_families(&mut enc, engine.as_ref())?;
        }
        telegram_families(&mut enc, &read(&sources.telegram))?;
        cache_families(&mut enc, &read(&sources.caches))?;
        pool_families(&mut enc, &read(&sources.pools))?;
        batch_families(&mut enc, &read(&sources.batchers))?;
        balancer_families(&mut enc, &read(&sources.balancers))?;
        if let Some(query) = &sources.query {
            query_families(&mut enc, &query())?;
        }
        let disks: Vec<(String, DiskStats)> =
            sources.disks.iter().filter_map(|(n, p)| Some((n.clone(), DiskStats::of(p)?))).collect();
        gauges(
            &mut enc,
            "mltb_disk_free",
            "Bytes an unprivileged process may still write on the file system of a directory, by directory role.",
            Some(Unit::Bytes),
            named(&disks, "dir", |d| d.free_bytes),
        )?;
        gauges(
            &mut enc,
            "mltb_disk_size",
            "Size of the file system of a directory, by directory role.",
            Some(Unit::Bytes),
            named(&disks, "dir", |d| d.size_bytes),
        )
    }
}

/// `mltb_balancer_*`: members by state, and per member its picks by outcome, in flight,
/// ejections in a row and latency estimate.
fn balancer_families(enc: &mut DescriptorEncoder<'_>, list: &[(String, BalancerStats)]) -> fmt::Result {
    let mut states = Vec::new();
    let mut outcomes = Vec::new();
    let (mut in_flight, mut ejections, mut latency) = (Vec::new(), Vec::new(), Vec::new());
    for (name, stats) in list {
        let count =
            |f: &dyn Fn(&EndpointStats) -> bool| stats.endpoints.iter().filter(|e| f(e)).count() as u64;
        for (state, n) in [
            ("available", count(&|e| e.healthy && !e.ejected)),
            ("unhealthy", count(&|e| !e.healthy)),
            ("ejected", count(&|e| e.ejected)),
        ] {
            states.push((vec![("balancer", name.clone()), ("state", state.to_owned())], n));
        }
        for e in &stats.endpoints {
            let labels = || vec![("balancer", name.clone()), ("endpoint", e.id.clone())];
            for (outcome, n) in [("success", e.successes), ("failure", e.failures), ("dropped", e.dropped)] {
                let mut l = labels();
                l.push(("outcome", outcome.to_owned()));
                outcomes.push((l, n));
            }
            in_flight.push((labels(), e.in_flight));
            ejections.push((labels(), u64::from(e.ejections_in_a_row)));
            latency.push((labels(), e.latency_ewma_seconds));
        }
    }
    gauges(
        enc,
        "mltb_balancer_endpoints",
        "Balancer members by state: available, unhealthy (health checks), ejected (outlier detection).",
        None,
        states,
    )?;
    counters(
        enc,
        "mltb_balancer_picks",
        "Picks by member and reported outcome: success, failure, dropped without a report.",
        None,
        outcomes,
    )?;
    gauges(
        enc,
        "mltb_balancer_in_flight",
        "Picks handed out and not yet reported, by member.",
        None,
        in_flight,
    )?;
    gauges(
        enc,
        "mltb_balancer_ejections_in_a_row",
        "Times outlier detection ejected a member in a row (its ejection time multiplier).",
        None,
        ejections,
    )?;
    gauges(
        enc,
        "mltb_balancer_latency_ewma",
        "A member's peak-EWMA latency estimate.",
        Some(Unit::Seconds),
        latency,
    )
}

/// Every source's figures, read once per scrape.
fn read<T>(list: &[(String, Source<T>)]) -> Vec<(String, T)> {
    list.iter().map(|(name, f)| (name.clone(), f())).collect()
}

impl SourceCollector {
    fn process(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let p = ProcessStats::read();
        counters(
            enc,
            "process_cpu",
            "User and system CPU time spent.",
            Some(Unit::Seconds),
            one(p.cpu_seconds),
        )?;
        let opt = |v: Option<u64>| v.map(one).unwrap_or_default();
        gauges(
            enc,
            "process_resident_memory",
            "Resident memory size.",
            Some(Unit::Bytes),
            opt(p.resident_memory_bytes),
        )?;
        gauges(
            enc,
            "process_virtual_memory",
            "Virtual memory size.",
            Some(Unit::Bytes),
            opt(p.virtual_memory_bytes),
        )?;
        gauges(enc, "process_open_fds", "Open file descriptors.", None, opt(p.open_fds))?;
        gauges(enc, "process_max_fds", "Limit on open file descriptors.", None, opt(p.max_fds))?;
        gauges(
            enc,
            "process_start_time",
            "When the metrics were set up (close to the process start), in Unix time.",
            Some(Unit::Seconds),
            one(self.started_unix),
        )?;
        gauges(
            enc,
            "mltb_uptime",
            "Time since the metrics were set up.",
            Some(Unit::Seconds),
            one(super::process::seconds(self.started.elapsed())),
        )
    }
}

fn engine_families(enc: &mut DescriptorEncoder<'_>, engine: &dyn TaskEngine) -> fmt::Result {
    let live = engine.live();
    let by_state = |f: &dyn Fn(&mltb_engine::TaskView) -> u64| -> Vec<(Labels, u64)> {
        LIVE_STATES
            .iter()
            .map(|s| {
                (vec![("state", s.as_str().to_owned())], live.iter().filter(|v| v.state == *s).map(f).sum())
            })
            .collect()
    };
    gauges(enc, "mltb_tasks", "Tasks running in this process, by state.", None, by_state(&|_| 1))?;
    gauges(
        enc,
        "mltb_tasks_done",
        "Bytes done in the current stage (download or upload) of the tasks running here, by state.",
        Some(Unit::Bytes),
        by_state(&|v| v.done),
    )?;
    gauges(
        enc,
        "mltb_tasks_size",
        "Bytes in all in the current stage of the tasks running here, by state (0 while unknown).",
        Some(Unit::Bytes),
        by_state(&|v| v.total),
    )?;
    gauges(
        enc,
        "mltb_tasks_speed",
        "Bytes per second moved now by the tasks running here, by state.",
        Some(Unit::Other("bytes_per_second".into())),
        by_state(&|v| v.speed),
    )?;
    let (completed, failed, cancelled) = engine.finished_counts();
    counters(
        enc,
        "mltb_tasks_finished",
        "Tasks this process ran to an end, by how they ended.",
        None,
        vec![
            (vec![("state", "completed".into())], completed),
            (vec![("state", "failed".into())], failed),
            (vec![("state", "cancelled".into())], cancelled),
        ],
    )?;
    let q = engine.queue_counts();
    gauges(
        enc,
        "mltb_queue_slots",
        "Tasks holding a download or upload slot, or waiting for a download slot.",
        None,
        vec![
            (vec![("slot", "download".into())], q.downloading),
            (vec![("slot", "upload".into())], q.uploading),
            (vec![("slot", "waiting".into())], q.waiting),
        ],
    )
}

fn telegram_families(enc: &mut DescriptorEncoder<'_>, list: &[(String, TelegramStats)]) -> fmt::Result {
    let c = |name: &str, help: &str, f: fn(&SchedulerStats) -> u64, enc: &mut DescriptorEncoder<'_>| {
        counters(enc, name, help, None, named(list, "scheduler", |t| f(&t.scheduler)))
    };
    c("mltb_telegram_requests", "Requests submitted to the Telegram scheduler.", |s| s.submitted, enc)?;
    c("mltb_telegram_attempts", "Requests sent to the Bot API, retries included.", |s| s.attempts, enc)?;
    c("mltb_telegram_errors", "Requests that resolved to an error.", |s| s.failed, enc)?;
    c(
        "mltb_telegram_rate_limited",
        "429 Too Many Requests answers from the Bot API.",
        |s| s.rate_limited,
        enc,
    )?;
    c(
        "mltb_telegram_retries",
        "Retries after 5xx answers, network errors and timeouts.",
        |s| s.retried,
        enc,
    )?;
    c(
        "mltb_telegram_edits_coalesced",
        "Edits merged into a later edit of the same message.",
        |s| s.coalesced,
        enc,
    )?;
    c(
        "mltb_telegram_edits_unchanged",
        "Edits skipped because the message already showed that text.",
        |s| s.unchanged,
        enc,
    )?;
    gauges(
        enc,
        "mltb_telegram_queue_depth",
        "Requests submitted to the Telegram scheduler and not yet resolved.",
        None,
        named(list, "scheduler", |t| t.queue_depth),
    )
}

fn cache_families(enc: &mut DescriptorEncoder<'_>, list: &[(String, mltb_cache::Stats)]) -> fmt::Result {
    counters(
        enc,
        "mltb_cache_hits",
        "Cache reads that found a live entry.",
        None,
        named(list, "cache", |s| s.hits),
    )?;
    counters(
        enc,
        "mltb_cache_misses",
        "Cache reads that found nothing or an expired entry.",
        None,
        named(list, "cache", |s| s.misses),
    )?;
    counters(
        enc,
        "mltb_cache_reads_dropped",
        "Cache reads (counted as hits or misses) whose effect on the eviction policy was dropped under concurrent reads.",
        None,
        named(list, "cache", |s| s.reads_dropped),
    )?;
    counters(
        enc,
        "mltb_cache_inserts",
        "Entries written to the cache.",
        None,
        named(list, "cache", |s| s.inserts),
    )?;
    let mut evictions = Vec::new();
    for (name, s) in list {
        let e = &s.evictions;
        for (cause, n) in
            [("size", e.size), ("expired", e.expired), ("replaced", e.replaced), ("removed", e.removed)]
        {
            evictions.push((vec![("cache", name.clone()), ("cause", cause.to_owned())], n));
        }
    }
    counters(enc, "mltb_cache_evictions", "Entries that left the cache, by cause.", None, evictions)?;
    gauges(
        enc,
        "mltb_cache_size",
        "Bytes the cache holds, as weighed.",
        Some(Unit::Bytes),
        named(list, "cache", |s| s.bytes as u64),
    )?;
    gauges(
        enc,
        "mltb_cache_capacity",
        "The cache's byte budget.",
        Some(Unit::Bytes),
        named(list, "cache", |s| s.max_bytes as u64),
    )?;
    gauges(
        enc,
        "mltb_cache_entries",
        "Entries the cache holds.",
        None,
        named(list, "cache", |s| s.entries as u64),
    )
}

fn pool_families(enc: &mut DescriptorEncoder<'_>, list: &[(String, mltb_pool::Metrics)]) -> fmt::Result {
    let mut conns = Vec::new();
    for (name, m) in list {
        conns.push((vec![("pool", name.clone()), ("state", "idle".to_owned())], u64::from(m.idle)));
        conns.push((vec![("pool", name.clone()), ("state", "in_use".to_owned())], u64::from(m.in_use)));
    }
    gauges(enc, "mltb_pool_connections", "Open pool connections, idle or in use.", None, conns)?;
    gauges(
        enc,
        "mltb_pool_max_connections",
        "The pool's maximum size.",
        None,
        named(list, "pool", |m| u64::from(m.max_size)),
    )?;
    gauges(
        enc,
        "mltb_pool_utilization",
        "Mean busy connections over the maximum size, over the pool's trailing window.",
        Some(Unit::Other("ratio".into())),
        named(list, "pool", |m| m.utilization),
    )?;
    gauges(
        enc,
        "mltb_pool_waiting",
        "Checkouts waiting for a connection now.",
        None,
        named(list, "pool", |m| u64::from(m.waiting)),
    )?;
    counters(
        enc,
        "mltb_pool_checkouts",
        "Successful checkouts.",
        None,
        named(list, "pool", |m| m.checkouts),
    )?;
    counters(
        enc,
        "mltb_pool_timeouts",
        "Checkouts that gave up at their timeout.",
        None,
        named(list, "pool", |m| m.timeouts),
    )?;
    counters(
        enc,
        "mltb_pool_unavailable",
        "Checkouts refused at once because the backend was down.",
        None,
        named(list, "pool", |m| m.unavailable),
    )?;
    counters(
        enc,
        "mltb_pool_connect_errors",
        "Failed connection attempts and failed checkout validations.",
        None,
        named(list, "pool", |m| m.connect_errors),
    )?;
    if list.is_empty() {
        return Ok(());
    }
    let unit = Unit::Seconds;
    let mut family = enc.encode_descriptor(
        "mltb_pool_wait",
        "Time from asking for a pool connection to getting one (bucket bounds are exclusive).",
        Some(&unit),
        MetricType::Histogram,
    )?;
    for (name, m) in list {
        let buckets: Vec<(f64, u64)> = m
            .wait
            .buckets()
            .map(|(bound, n)| {
                (if bound == std::time::Duration::MAX { f64::INFINITY } else { bound.as_secs_f64() }, n)
            })
            .collect();
        let labels: Labels = vec![("pool", name.clone())];
        family.encode_family(&labels)?.encode_histogram::<Labels>(
            m.wait.sum.as_secs_f64(),
            m.wait.count,
            &buckets,
            None,
        )?;
    }
    Ok(())
}

fn batch_families(enc: &mut DescriptorEncoder<'_>, list: &[(String, mltb_batch::Stats)]) -> fmt::Result {
    counters(
        enc,
        "mltb_batch_submitted_items",
        "Items accepted by the batcher.",
        None,
        named(list, "batcher", |s| s.submitted),
    )?;
    counters(
        enc,
        "mltb_batch_items",
        "Items handed to the batch handler (items / batches is the mean batch size).",
        None,
        named(list, "batcher", |s| s.dispatched),
    )?;
    let mut batches = Vec::new();
    for (name, s) in list {
        for reason in mltb_batch::FlushReason::ALL {
            batches.push((
                vec![("batcher", name.clone()), ("reason", reason.as_str().to_owned())],
                s.batches_for(reason),
            ));
        }
    }
    counters(enc, "mltb_batch_batches", "Batch handler calls, by why the batch was cut.", None, batches)?;
    counters(
        enc,
        "mltb_batch_failed_batches",
        "Batch handler calls that failed or panicked.",
        None,
        named(list, "batcher", |s| s.failed_batches + s.panicked_batches),
    )?;
    gauges(
        enc,
        "mltb_batch_queue_depth",
        "Items accepted and not yet handed to the handler.",
        None,
        named(list, "batcher", |s| s.queue_depth as u64),
    )?;
    gauges(
        enc,
        "mltb_batch_in_flight",
        "Batch handler calls in flight.",
        None,
        named(list, "batcher", |s| s.in_flight as u64),
    )
}

fn query_families(enc: &mut DescriptorEncoder<'_>, c: &mltb_query_analyzer::Counters) -> fmt::Result {
    counters(enc, "mltb_query_events", "Store queries seen by the query analyzer.", None, one(c.events))?;
    counters(
        enc,
        "mltb_query_n_plus_one_findings",
        "N+1 query patterns found, one per span.",
        None,
        one(c.n_plus_one),
    )?;
    counters(
        enc,
        "mltb_query_duplicate_findings",
        "Duplicate-query patterns found, one per span.",
        None,
        one(c.duplicates),
    )?;
    counters(
        enc,
        "mltb_query_findings_dropped",
        "Findings not kept in the report because it was full.",
        None,
        one(c.findings_dropped),
    )?;
    gauges(
        enc,
        "mltb_query_fingerprints",
        "Distinct query fingerprints tracked.",
        None,
        one(c.fingerprints),
    )?;
    gauges(
        enc,
        "mltb_query_open_spans",
        "Query spans (commands, requests, tasks) open now.",
        None,
        one(c.open_spans),
    )
}
